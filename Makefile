# Allot - quick start: `make run` (install deps, build, serve on 127.0.0.1:7411 with data in
# ./data) and `make test` (build and pass every test, plain and under ASan+UBSan).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
LISTEN ?= 127.0.0.1:7411
DATA_DIR ?= ./data
CTEST_FLAGS ?= --output-on-failure

FUZZ_SECONDS ?= 3600
FUZZ_SMOKE_RUNS ?= 50000
FUZZ_SMOKE_SEED ?= 1
FUZZ_TARGETS := fuzz_request fuzz_wal_record fuzz_json

.PHONY: all deps build build-debug build-asan build-fuzz run test test-release test-asan \
	fuzz fuzz-smoke clean format bench install deb

all: build

deps:
	@tools/install-deps.sh

build/release/CMakeCache.txt: | deps
	@cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null

build: deps build/release/CMakeCache.txt
	@cmake --build build/release -j$(JOBS)

build-asan: deps
	@cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Asan >/dev/null
	@cmake --build build/asan -j$(JOBS)

run: build
	./build/release/allotd --listen $(LISTEN) --data-dir $(DATA_DIR)

test-release: build
	cd build/release && ctest $(CTEST_FLAGS)

# Under the sanitizers the crash test does 40 kills instead of 100 (each restart is slower).
test-asan: build-asan
	cd build/asan && ALLOT_CRASH_KILLS=$${ALLOT_CRASH_KILLS:-40} \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest $(CTEST_FLAGS)

# libFuzzer targets (clang, ASan+UBSan); seeds in tests/fuzz/corpus. `make fuzz` explores with
# random seeds for FUZZ_SECONDS per target, growing build/fuzz/corpus; `make fuzz-smoke` (in
# `make test`) is deterministic: every checked-in seed once, then FUZZ_SMOKE_RUNS inputs from the
# seeds alone with the fixed FUZZ_SMOKE_SEED. A crash leaves its input in build/fuzz/ (crash-*):
# fix it and add the input to the seeds as a regression.
build-fuzz: deps
	@cmake -S . -B build/fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug -DALLOT_FUZZ=ON >/dev/null
	@cmake --build build/fuzz -j$(JOBS) --target $(FUZZ_TARGETS)

fuzz: build-fuzz
	@tools/fuzz-run.sh explore $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-smoke: build-fuzz
	@tools/fuzz-run.sh smoke $(FUZZ_SMOKE_RUNS) $(FUZZ_SMOKE_SEED) $(FUZZ_TARGETS)

# Every test, in a Release build and again under AddressSanitizer + UndefinedBehaviorSanitizer,
# then the fuzz targets' seeds and a short fixed-seed run of each.
test: test-release test-asan fuzz-smoke

# Load tools for the peak-sale benchmarks (docs/benchmarks.md); needs redis-server and hiredis.
bench:
	@ALLOT_BENCH_DEPS=1 tools/install-deps.sh
	@cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release >/dev/null
	@cmake --build build/release -j$(JOBS) --target allot-bench allotd
	@echo "run: bench/compare.sh   (or build/release/bench/allot-bench --help)"

# Install allotd, allot, allot-wal, the systemd unit, a default config and the docs (see
# docs/operations.md): `make install PREFIX=/usr DESTDIR=/tmp/stage`. Default PREFIX /usr/local.
PREFIX ?= /usr/local
install: build
	DESTDIR="$(DESTDIR)" cmake --install build/release --prefix "$(PREFIX)"

# The Debian package build/allot_VERSION_ARCH.deb (an `allot` system user, the unit enabled).
deb: build
	@tools/make-deb.sh build/release build

format:
	clang-format -i core/*.h core/*/*.[ch] net/*.[ch] persist/*.[ch] client/*.[ch] tools/*.c tests/*/*.[ch]

clean:
	rm -rf build
