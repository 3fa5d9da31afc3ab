# Quidditch: the two commands a newcomer needs are `make serve` and `make test`.
# Both install missing Debian packages first (scripts/deps.sh skips what is present).
#   make            Release build into build/ (build/qwasm, build/quidditch, build/qctl)
#   make serve      build, then start the product on its embedded default
#   make cluster    build, then etcd + 3 data nodes + a coordinator on 127.0.0.1:9200
#   make test       Release build + the ASan/UBSan test build (build/asan); every test on both
#   make bench      Release build, then the benchmarks (bench/)
#   make fuzz       libFuzzer targets with clang-19 for FUZZ_SECONDS (default 60) each
JOBS ?= $(shell nproc)
SPEC ?= $(abspath ../shared/wasm-spec)
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?=

.PHONY: all build deps deps-build serve cluster test test-release bench fuzz clean

all: build

deps-build:
	@scripts/deps.sh build

deps:
	@scripts/deps.sh all

build: deps-build
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DQD_WASM_SPEC_DIR=$(SPEC) $(CMAKE_FLAGS) >/dev/null
	@cmake --build build -j$(JOBS)

serve: build
	@scripts/serve.sh

cluster: deps build
	@scripts/cluster.sh

test: deps
	@cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DQD_WASM_SPEC_DIR=$(SPEC) $(CMAKE_FLAGS) >/dev/null
	@cmake --build build -j$(JOBS)
	@cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug -DQD_SANITIZE=ON -DQD_WASM_SPEC_DIR=$(SPEC) $(CMAKE_FLAGS) >/dev/null
	@cmake --build build/asan -j$(JOBS)
	@cd build/asan && ctest --output-on-failure -j$(JOBS)
	@echo "== the same tests on the Release build (optimisation-dependent bugs hide from -O0)"
	@cd build && ctest --output-on-failure -j$(JOBS)

test-release: build
	@cd build && ctest --output-on-failure -j$(JOBS)

bench: deps build
	@scripts/bench.sh

fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf build
