# Socket fuzzing (issue 5): random and mutated byte streams over real sockets.
#
#   make fuzz                             100 000 cases against a sim board with short timeouts
#   make fuzz FUZZ_CASES=5000 FUZZ_SEED=7 another slice, another seed (case i is the same bytes every run)
#   make fuzz BOARD_IP=192.168.1.50       against a board (FUZZ_CONCURRENCY=2 suits its 6 slots)
#
# `make test` runs a 5000-case slice (host_tests/wire/test_fuzz.py) and the hypothesis properties.

FUZZ_CASES ?= 100000
FUZZ_SEED ?= 1
FUZZ_CONCURRENCY ?= $(if $(BOARD_IP),2,8)

help-fuzz:
	@echo "  make fuzz      - $(FUZZ_CASES) random/mutated byte streams over sockets (FUZZ_SEED=$(FUZZ_SEED), BOARD_IP=...)"

fuzz: venv
	@echo "==> harness.fuzz_socket: $(FUZZ_CASES) cases, seed $(FUZZ_SEED), $(FUZZ_CONCURRENCY) at once, against $(if $(BOARD_IP),$(BOARD_IP):$(BOARD_PORT),a sim board)"
	@$(call harness,fuzz_socket) --cases $(FUZZ_CASES) --seed $(FUZZ_SEED) --concurrency $(FUZZ_CONCURRENCY) \
		$(if $(BOARD_IP),--host $(BOARD_IP) --port $(BOARD_PORT))

.PHONY: fuzz help-fuzz
