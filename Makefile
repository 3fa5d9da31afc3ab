# Quidditch: the two commands a newcomer needs are `make serve` and `make test`.
# Both install missing Debian packages first (scripts/deps.sh skips what is present).
#   make            Release build into build/ (build/qwasm, build/quidditch, build/qctl)
#   make serve      build, then start the product on its embedded default
#   make cluster    build, then etcd + 3 data nodes + a coordinator on 127.0.0.1:9200
#   make test       Release build + the ASan/UBSan test build (build/asan); every test on both
#   make bench      Release build, then the benchmarks (bench/)
#   make bench-large  Release build, then bench_search on 10M documents (not in CI: hours, and
#                     ~30 GiB of temp files in TMPDIR)
#   make chaos      Release build, then the long replica fault test (scripts/chaos.sh: data nodes
#                   killed at random, the leader coordinator killed, etcd restarted)
#   make fuzz       libFuzzer targets with clang-19 for FUZZ_SECONDS (default 60) each
#   make test-switch  the interpreter with switch dispatch (QD_DISPATCH_SWITCH=ON, build/switch):
#                     the engine's tests (unit wasm + udf, spec suite, qwasm CLI, fuzz replays)
#   make test-clang   the whole tree built by clang-19 (Release + QD_ASSERTS=ON, build/clang):
#                     every test
#   make ci         what .ci/run runs: test, test-switch, test-clang (skips fail: QD_NO_SKIP=1)
JOBS ?= $(shell nproc)
SPEC ?= $(abspath ../shared/wasm-spec)
FUZZ_SECONDS ?= 60
CMAKE_FLAGS ?=
CONFIGURE = cmake -S . -DQD_WASM_SPEC_DIR=$(SPEC) $(CMAKE_FLAGS)
CTEST = scripts/ctest.sh
# the tests the interpreter's dispatch can change (test-switch)
ENGINE_TESTS = ^(wasm|udf|diff)/|^spec$$|^qwasm_cli$$|^fuzz_regress$$|^fuzz_jit_regress$$|^examples/

.PHONY: all build deps deps-build serve cluster test test-release test-switch test-clang ci bench bench-large chaos fuzz \
        clean

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
	@$(CONFIGURE) -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build -j$(JOBS)
	@$(CONFIGURE) -B build/asan -DCMAKE_BUILD_TYPE=Debug -DQD_SANITIZE=ON >/dev/null
	@cmake --build build/asan -j$(JOBS)
	@$(CTEST) build/asan -j$(JOBS)
	@echo "== the same tests on the Release build (optimisation-dependent bugs hide from -O0)"
	@$(CTEST) build -j$(JOBS)

test-release: build
	@$(CTEST) build -j$(JOBS)

test-switch: deps
	@$(CONFIGURE) -B build/switch -DCMAKE_BUILD_TYPE=Release -DQD_DISPATCH_SWITCH=ON >/dev/null
	@cmake --build build/switch -j$(JOBS)
	@echo "== switch dispatch (QD_DISPATCH_SWITCH=ON): the engine's tests"
	@$(CTEST) build/switch -j$(JOBS) -R '$(ENGINE_TESTS)'

test-clang: deps
	@$(CONFIGURE) -B build/clang -DCMAKE_C_COMPILER=clang-19 -DCMAKE_BUILD_TYPE=Release \
	  -DQD_ASSERTS=ON >/dev/null
	@cmake --build build/clang -j$(JOBS)
	@echo "== clang-19 (Release, QD_ASSERTS=ON): every test"
	@$(CTEST) build/clang -j$(JOBS)

ci:
	@QD_NO_SKIP=1 $(MAKE) --no-print-directory test
	@QD_NO_SKIP=1 $(MAKE) --no-print-directory test-switch
	@QD_NO_SKIP=1 $(MAKE) --no-print-directory test-clang

bench: deps build
	@scripts/bench.sh

bench-large: deps build
	@build/bench/bench_search 10000000

chaos: deps build
	@scripts/chaos.sh

fuzz: deps
	@scripts/fuzz.sh $(FUZZ_SECONDS)

clean:
	rm -rf build
