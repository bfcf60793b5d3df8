# Board TCP emulator: real lwIP (Debian's source package, built with the
# board's options) between test clients and the firmware on the unix port.
# Needs root, /dev/net/tun, gcc, ip (iproute2) and apt-get source.
# The gateway's C sources are in host_tests/lwipgw/, its Python side in
# host_tests/harness/emu/.
#
#   make emu                   build .cache/emu/lwipgw-msl$(EMU_MSL)
#   make emu EMU_MSL=60000     the IDF default MSL, as a second binary
#   make emu-test              pytest host_tests/emulator
#   make bench-emu             stall length, MSL 60000 vs 6000 (~2 min)
#   make abort-check           build .cache/emu/abort-check-lock{0,1}: the firmware's abortive
#                              close and unacked query (boards/cmodules/nostall_tcp) on lwIP
#                              with its sockets

EMU_DIR := host_tests/lwipgw
EMU_CACHE := .cache/emu
LWIP_CACHE := .cache/lwip
LWIP_STAMP := $(LWIP_CACHE)/.stamp
# TCP_MSL follows the firmware's sdkconfig overlay, else 6000 ms.
EMU_OVERLAY := $(firstword $(wildcard sdkconfig.overlay firmware/sdkconfig.overlay firmware/*/sdkconfig.overlay))
EMU_MSL_DEFAULT := $(or $(if $(EMU_OVERLAY),$(shell sed -n 's/^CONFIG_LWIP_TCP_MSL=\([0-9][0-9]*\).*/\1/p' $(EMU_OVERLAY) | tail -n 1)),6000)
EMU_MSL ?= $(EMU_MSL_DEFAULT)
# FIN_WAIT_2 timeout likewise (CONFIG_LWIP_TCP_FIN_WAIT_TIMEOUT), else the IDF default 20000 ms.
EMU_FIN_WAIT := $(or $(if $(EMU_OVERLAY),$(shell sed -n 's/^CONFIG_LWIP_TCP_FIN_WAIT_TIMEOUT=\([0-9][0-9]*\).*/\1/p' $(EMU_OVERLAY) | tail -n 1)),20000)
EMU_BIN = $(EMU_CACHE)/lwipgw-msl$(EMU_MSL)
EMU_SRCS := $(EMU_DIR)/lwipgw.c $(EMU_DIR)/hostio.c $(EMU_DIR)/hostio.h $(EMU_DIR)/weather.c $(EMU_DIR)/weather.h $(EMU_DIR)/lwipopts.h $(EMU_DIR)/arch/cc.h $(wildcard mk/emu.mk) $(EMU_OVERLAY)
EMU_CFLAGS := -O2 -g -Wall -Wextra -Wno-unused-parameter
# lwIP pieces the gateway needs: core, IPv4, Ethernet framing.
EMU_LWIP_SRCS = core/*.c core/ipv4/*.c netif/ethernet.c

help-emu:
	@echo "  make emu       - build the lwIP board TCP emulator (EMU_MSL=$(EMU_MSL) ms)"
	@echo "  make emu-test  - emulator tests (stall control, no-stall, soak, abortive close; EMU_SOAK_COUNT=1000)"
	@echo "  make bench-emu - stall length with TCP_MSL 60000 vs 6000"
	@echo "  make abort-check - build the lwIP check of the firmware's abortive close (_nostall_tcp)"

emu-check:
	@[ "$$(id -u)" = 0 ] || { echo "error: the emulator needs root (TAP devices, network namespaces): run make emu as root"; exit 1; }
	@[ -c /dev/net/tun ] || { echo "error: /dev/net/tun missing: load the tun module (or give the container /dev/net/tun)"; exit 1; }
	@command -v gcc >/dev/null || { echo "error: gcc not found: apt-get install gcc"; exit 1; }
	@command -v ip >/dev/null || { echo "error: ip not found: apt-get install iproute2"; exit 1; }
	@case "$(EMU_MSL)" in ''|*[!0-9]*) echo "error: EMU_MSL must be milliseconds, got '$(EMU_MSL)'"; exit 1;; esac

$(LWIP_STAMP): host_tests/harness/emu/fetch_lwip.py
	@echo "==> lwIP source: Debian package 'lwip' into $(LWIP_CACHE)"
	@$(call harness,emu.fetch_lwip,python3) $(LWIP_CACHE) $@

# One binary per MSL, rebuilt only when our sources or the lwIP tree change.
$(EMU_CACHE)/lwipgw-msl%: $(EMU_SRCS) $(LWIP_STAMP)
	@mkdir -p $(EMU_CACHE)
	@src=$$(cat $(LWIP_STAMP))/src; \
	echo "==> gcc: $@ (lwIP from $$src, TCP_MSL=$* ms, TCP_FIN_WAIT_TIMEOUT=$(EMU_FIN_WAIT) ms, MEMP_NUM_TCP_PCB=12)"; \
	cd $$src && srcs=$$(echo $(EMU_LWIP_SRCS)) && cd - >/dev/null && \
	gcc $(EMU_CFLAGS) -DEMU_TCP_MSL=$* -DEMU_TCP_FIN_WAIT_TIMEOUT=$(EMU_FIN_WAIT) -I$(EMU_DIR) -I$$src/include \
	    $$(for f in $$srcs; do echo $$src/$$f; done) $(EMU_DIR)/lwipgw.c $(EMU_DIR)/hostio.c $(EMU_DIR)/weather.c \
	    -o $@.tmp || { echo "error: compiling the emulator failed (see gcc output above)"; rm -f $@.tmp; exit 1; }; \
	mv $@.tmp $@

# abort_check: boards/cmodules/nostall_tcp/tcp_abort_idle.c (abort and the unacked query),
# unchanged, on the same lwIP tree with its tcpip thread and sockets (NO_SYS=0,
# host_tests/lwipgw/abort/), one binary per LWIP_TCPIP_CORE_LOCKING: 0 as on the board (ESP-IDF's
# default), 1 for tcpip_api_call's other path. Run by host_tests/emulator/test_tcp_abort.py (root,
# /dev/net/tun).
ABORT_DIR := $(EMU_DIR)/abort
ABORT_MOD := boards/cmodules/nostall_tcp
ABORT_BINS := $(EMU_CACHE)/abort-check-lock0 $(EMU_CACHE)/abort-check-lock1
ABORT_OWN := $(ABORT_DIR)/abort_check.c $(ABORT_DIR)/linux.c $(ABORT_DIR)/sys_arch.c \
	$(ABORT_MOD)/tcp_abort_idle.c $(EMU_DIR)/hostio.c
ABORT_SRCS := $(ABORT_OWN) $(ABORT_DIR)/linux.h $(ABORT_DIR)/lwipopts.h $(ABORT_DIR)/arch/sys_arch.h \
	$(ABORT_MOD)/tcp_abort_idle.h $(EMU_DIR)/hostio.h $(EMU_DIR)/arch/cc.h $(wildcard mk/emu.mk) $(EMU_OVERLAY)
# lwIP with its threads: the gateway's pieces plus the netconn and socket API.
ABORT_LWIP_SRCS = $(EMU_LWIP_SRCS) api/*.c
# abort/ before lwipgw/: its lwipopts.h wins; lwipgw/ gives arch/cc.h and hostio.h.
ABORT_INC = -I$(ABORT_DIR) -I$(EMU_DIR) -I$(ABORT_MOD)

$(EMU_CACHE)/abort-check-lock%: $(ABORT_SRCS) $(LWIP_STAMP)
	@mkdir -p $(EMU_CACHE)
	@case "$*" in 0|1) ;; *) echo "error: $@: LWIP_TCPIP_CORE_LOCKING is 0 or 1"; exit 1;; esac
	@src=$$(cat $(LWIP_STAMP))/src; \
	echo "==> gcc: $@ (lwIP from $$src with sockets, LWIP_TCPIP_CORE_LOCKING=$*, TCP_MSL=$(EMU_MSL) ms)"; \
	cd $$src && srcs=$$(echo $(ABORT_LWIP_SRCS)) && cd - >/dev/null && \
	gcc $(EMU_CFLAGS) -pthread -DABORT_CORE_LOCKING=$* -DABORT_TCP_MSL=$(EMU_MSL) $(ABORT_INC) -I$$src/include \
	    $$(for f in $$srcs; do echo $$src/$$f; done) $(ABORT_OWN) \
	    -o $@.tmp || { echo "error: compiling abort_check failed (see gcc output above)"; rm -f $@.tmp; exit 1; }; \
	mv $@.tmp $@

abort-check:
	@command -v gcc >/dev/null || { echo "error: gcc not found: apt-get install gcc"; exit 1; }
	@$(MAKE) -s --no-print-directory $(ABORT_BINS)
	@echo "==> ready: $(ABORT_BINS) (run as root: they make their own network namespace)"

emu: emu-check
	@$(MAKE) -s --no-print-directory $(EMU_BIN)
	@echo "==> emulator ready: $(EMU_BIN) (TCP_MSL=$(EMU_MSL) ms)"

emu-test: venv emu
	@echo "==> pytest host_tests/emulator"
	@$(VPY) -m pytest host_tests/emulator -v

bench-emu: venv emu-check
	@$(MAKE) --no-print-directory emu EMU_MSL=6000
	@$(MAKE) --no-print-directory emu EMU_MSL=60000
	@echo "==> stall length with TCP_MSL 60000 vs 6000 (naive close-first server; takes ~2 min)"
	@$(call harness,emu.bench_stall)

emu-clean:
	@echo "==> removing $(EMU_CACHE) (the lwIP source in $(LWIP_CACHE) stays)"
	@rm -rf $(EMU_CACHE)

.PHONY: emu emu-check emu-test bench-emu emu-clean help-emu abort-check
