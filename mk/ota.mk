# Over-the-air updates (issue 19): a firmware image or an app bundle onto one board (BOARD_IP) or a
# fleet (HOSTS: one host[:port] a line; TARGETS: a Prometheus file_sd JSON file), JOBS at a time,
# with a progress bar, the version before and after, a summary table; the exit code is 0 only if
# every board came back healthy (host_tests/harness/ota.py). FILE is told apart by content: the
# build's micropython.bin (the app image, not the merged firmware.bin) by default.
FILE ?=
HOSTS ?=
TARGETS ?=
JOBS ?= 4
FORCE ?= 0
TOKEN ?=
OTA_TIMEOUT ?= 90
OTA_DEFAULT_FILE = $(BUILD_ROOT)/firmware-$(BOARD)/micropython.bin

# A bad variable stops make ota here, with one line, before anything is done.
ota_nondigits = $(subst 9,,$(subst 8,,$(subst 7,,$(subst 6,,$(subst 5,,$(subst 4,,$(subst 3,,$(subst 2,,$(subst 1,,$(subst 0,,$(1)))))))))))
ota_count = $(if $(filter 1,$(words $(1))),$(if $(call ota_nondigits,$(1)),,$(if $(subst 0,,$(1)),y)))
ifneq ($(filter ota,$(MAKECMDGOALS)),)
ifeq ($(words $(BOARD_IP) $(HOSTS) $(TARGETS)),0)
$(error make ota: name the board with BOARD_IP=x.x.x.x, or a fleet with HOSTS=<file> or TARGETS=<file_sd.json>)
endif
ifneq ($(words $(BOARD_IP) $(HOSTS) $(TARGETS)),1)
$(error make ota: BOARD_IP, HOSTS and TARGETS each name the boards: give one of them (one value))
endif
ifeq ($(call ota_count,$(JOBS)),)
$(error make ota: JOBS=$(JOBS) is not a whole number of boards at once, 1 or more)
endif
ifeq ($(call ota_count,$(OTA_TIMEOUT)),)
$(error make ota: OTA_TIMEOUT=$(OTA_TIMEOUT) is not a whole number of seconds, 1 or more)
endif
ifeq ($(filter 0 1,$(FORCE)),)
$(error make ota: FORCE=$(FORCE): 1 sends a lower version than a board runs, 0 (the default) refuses it)
endif
endif

# The token goes to the tool in its environment, not on its command line (ps, make -n).
ifneq ($(TOKEN),)
ota: export NOSTALL_TOKEN = $(TOKEN)
endif

help-ota:
	@echo "  make ota BOARD_IP=x.x.x.x - update a board over the air: FILE=<micropython.bin or app bundle> (default: the"
	@echo "                              build's $(OTA_DEFAULT_FILE)), TOKEN=..., FORCE=1 allows a downgrade;"
	@echo "                              a fleet: HOSTS=<file> or TARGETS=<file_sd.json>, JOBS=$(JOBS) at a time"
	@echo "  make app-bundle           - firmware/'s Python as an app bundle for make ota FILE=... (stock MicroPython too):"
	@echo "                              $(APP_BUNDLE), .mpy for BOARD=$(BOARD)'s CPU"

# The firmware's Python (main.py aside) as an app bundle: a tar with manifest.json (SHA-256 per
# file) first, modules compiled for the board's CPU (host_tests/harness/appbundle.py).
APP_BUNDLE = $(BUILD_ROOT)/app-$(BOARD).tar

app-bundle: venv
	@$(call harness,appbundle) --board $(BOARD) --out $(APP_BUNDLE)

ota: venv
	@$(call harness,ota) $(if $(BOARD_IP),--host $(BOARD_IP) --port $(BOARD_PORT))$(if $(HOSTS),--hosts '$(HOSTS)')$(if \
		$(TARGETS),--targets '$(TARGETS)') $(if $(FILE),--file '$(FILE)',--default-file '$(OTA_DEFAULT_FILE)') \
		--jobs $(JOBS) --timeout $(OTA_TIMEOUT)$(if $(filter 1,$(FORCE)), --force)

.PHONY: help-ota ota app-bundle
