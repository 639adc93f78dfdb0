# plait - thin wrapper around meson so the README's commands work on a fresh
# Debian 12 machine: `make demo` and `make test` install what they need first.

BUILD ?= build
MESON_FLAGS ?=
# The libFuzzer build (clang, ASan+UBSan) of tests/fuzz, and how long `make fuzz`
# runs each target (`make test` runs each for the meson option fuzz_seconds, 5 s).
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60

BUILD_PKGS = meson ninja-build pkg-config gcc libc6-dev libcurl4-openssl-dev libjansson-dev \
	libarchive-dev libssl-dev zlib1g-dev libzstd-dev libdeflate-dev libisal-dev
TEST_PKGS = libcmocka-dev docker-registry skopeo umoci openssl apache2-utils python3 \
	ca-certificates curl jq time busybox-static buildah zstd xz-utils bzip2 qemu-user-static clang \
	uidmap attr openssh-server openssh-client docker.io git podman strace
DEMO_PKGS = docker-registry umoci qemu-user-static busybox-static curl python3

# Install the Debian packages in $(1) that are missing (apt-get update first).
define ensure_pkgs
	@missing=""; for p in $(1); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "plait: installing Debian packages:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "plait: run as root to install packages" >&2; exit 1; fi; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi
endef

.PHONY: all build deps test-deps demo-deps test unit integration test-asan fuzz fuzz-deps fuzz-build demo bench bench-build bench-build-multi bench-buildkit bench-gzip bench-rootless bench-ci-cache bench-nodes clean

all: build

deps:
	$(call ensure_pkgs,$(BUILD_PKGS))

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_FLAGS)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

test-deps:
	$(call ensure_pkgs,$(BUILD_PKGS) $(TEST_PKGS))

test: test-deps build fuzz-build
	FUZZ_BUILD=$(FUZZ_BUILD) bash tests/run.sh $(BUILD)

unit: test-deps build
	bash tests/run.sh $(BUILD) unit

integration: test-deps build
	bash tests/run.sh $(BUILD) integration

# Every unit and integration test against an ASan+UBSan build of plait (each test
# script runs that build's binary); any report fails its test.
ASAN_BUILD ?= build-asan
$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined

test-asan: test-deps $(ASAN_BUILD)/build.ninja
	ASAN_OPTIONS=detect_leaks=1 bash tests/run.sh $(ASAN_BUILD)

fuzz-deps:
	$(call ensure_pkgs,$(BUILD_PKGS) clang)

$(FUZZ_BUILD)/build.ninja: | fuzz-deps
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false

fuzz-build: fuzz-deps $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) fuzz-targets

# Each target for FUZZ_SECONDS; what they find is kept in $(FUZZ_BUILD)/corpus.
fuzz: fuzz-build
	PLAIT_FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_CORPUS=$(abspath $(FUZZ_BUILD))/corpus \
		meson test -C $(FUZZ_BUILD) --suite fuzz --no-rebuild --num-processes 1 \
		--timeout-multiplier 1000 --print-errorlogs

demo-deps:
	$(call ensure_pkgs,$(BUILD_PKGS) $(DEMO_PKGS))

demo: demo-deps build
	bash examples/demo.sh $(BUILD)/cmd/plait

bench: test-deps build
	bash bench/copy.sh $(BUILD)/cmd/plait

bench-build: test-deps build
	bash bench/build.sh $(BUILD)/cmd/plait

bench-build-multi: test-deps build
	MULTI=1 bash bench/build.sh $(BUILD)/cmd/plait

# plait against BuildKit (Debian's docker.io: a private dockerd the script
# starts and stops); WORKLOADS=build,build2,ml ROUNDS=3 by default.
bench-buildkit: test-deps build
	bash bench/buildkit.sh $(BUILD)/cmd/plait

bench-gzip: test-deps build
	bash bench/gzip.sh $(BUILD)

bench-rootless: test-deps build
	bash bench/rootless.sh $(BUILD)/cmd/plait

bench-ci-cache: test-deps build
	bash bench/ci-cache.sh $(BUILD)/cmd/plait

# a two-platform build on two builder nodes (a loopback sshd) against this host
bench-nodes: test-deps build
	bash bench/nodes.sh $(BUILD)/cmd/plait

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
