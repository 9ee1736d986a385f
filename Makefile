# Shortcuts for the scripts; the scripts are the source of truth.
#   make            build (scripts/build)
#   make test       install what is missing, build, run every test (scripts/test)
#   make fuzz       run every libFuzzer target for FUZZ_SECONDS (default 60) each
#   make fuzz FUZZ_SECONDS=600 FUZZ_TARGETS="http1_parser config"
#   make soak       mixed traffic against one `tronada serve` for SOAK_SECONDS (default 300)
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?=
SOAK_SECONDS ?= 300

.PHONY: build test fuzz soak
build:
	./scripts/build
test:
	./scripts/test
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz $(FUZZ_TARGETS)
soak:
	/usr/bin/python3 scripts/soak --seconds $(SOAK_SECONDS)
