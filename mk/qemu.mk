# The QEMU board (issue 17): the real MicroPython esp32 port for the ESP32-C3 from ../shared/qemu-c3
# (QEMU_C3_DIR) with the current firmware/ in its filesystem, in its own network namespace.
QEMU_NS ?= nostall_qemu
QEMU_ADDR ?= 10.0.3.2

help-qemu:
	@echo "  make qemu-board - the current firmware on the emulated ESP32-C3 (real esp32 port, ESP-IDF lwIP) in the"
	@echo "                    namespace QEMU_NS=$(QEMU_NS) at QEMU_ADDR=$(QEMU_ADDR):80, until Ctrl-C (root; ../shared/qemu-c3)"

qemu-board: venv
	@case "$(QEMU_ADDR)" in *[!0-9.]*|'') echo "error: QEMU_ADDR must be an IPv4 address like 10.0.3.2"; exit 1;; esac
	@$(call harness,qemu) --ns $(QEMU_NS) --addr $(QEMU_ADDR)

.PHONY: help-qemu qemu-board
