# Coop: `make demo` runs the main job on a fresh machine, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := build

# Debian packages coop needs to build, test and benchmark (installed by `make deps` when root).
PACKAGES := libcurl4-openssl-dev libarchive-dev libgpgme-dev liblzma-dev libssl-dev pkg-config \
	gnupg xz-utils uidmap mmdebstrap nginx-light busybox-static openssl ca-certificates curl wget python3 \
	lxc libpam-cgfs hyperfine bubblewrap crun valgrind zstd gcc libc6-dev python3-matplotlib \
	passt nftables lxd dnsmasq-base squashfs-tools-ng python3-venv

FIXTURES ?= /var/tmp/coop-fixtures
TEST_USER ?= coop-test

.PHONY: build release deps demo test unit lint format bench fixtures clean install

build:
	swift build

# The Swift runtime and Foundation linked in: every command starts about 4 ms sooner. The linker then
# passes on a warning about mktemp that is in the toolchain's own Foundation archive, not in coop.
release:
	swift build -c release --static-swift-stdlib

# Installs what is missing; a no-op when everything is there or when not root.
deps:
	@missing=$$(for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then echo "missing packages (install as root): $$missing" >&2; exit 1; fi; \
	echo "installing: $$missing"; \
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing
	@# Incus's client (its simplestreams reader, for the interop tests) is in bookworm-backports only.
	@if ! dpkg -s incus-client >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		. /etc/os-release; \
		if [ "$$VERSION_CODENAME" = bookworm ]; then \
			printf '%s\n' '# coop: incus-client, for the interop tests' 'Types: deb' \
				'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' 'Components: main' \
				'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
				>/etc/apt/sources.list.d/coop-backports.sources; \
			apt-get update -q; \
		fi; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
			$$( [ "$$VERSION_CODENAME" = bookworm ] && echo -t bookworm-backports ) incus-client; \
	fi

fixtures: deps build
	Tests/Fixtures/build-images.sh $(FIXTURES)
	Tests/Fixtures/build-guests.sh $(FIXTURES) .build/debug/coop
	Tests/Fixtures/simplestreams-client.sh $(FIXTURES)

demo: deps release
	Tests/demo.sh $(TEST_USER)

# First the traces of earlier runs go (Tests/Fixtures/clean-slate.sh; the fixtures stay), so that every run
# sees what a fresh machine sees.
test:
	Tests/Fixtures/clean-slate.sh $(TEST_USER)
	$(MAKE) deps build fixtures lint
	Tests/run-tests.sh $(FIXTURES) $(TEST_USER)

# The unit tests alone: no root, no fixtures, no server.
unit:
	swift test --filter CoopUnitTests

lint:
	swift format lint --strict --recursive Package.swift Sources Tests
	Tests/module-graph.py

format:
	swift format format --in-place --recursive Package.swift Sources Tests

bench: deps release fixtures
	BENCH_PLOT=$(CURDIR)/docs/benchmarks-create.png bench/create.sh $(FIXTURES) $(TEST_USER)
	bench/build.sh
	bench/runtime.sh $(FIXTURES) $(TEST_USER)
	BENCH_PLOT=$(CURDIR)/docs/benchmarks-fleet.png bench/fleet.sh $(FIXTURES) $(TEST_USER)

clean:
	rm -rf .build

PREFIX ?= /usr/local
# Installs the binary with its remotes and keys: PREFIX/bin/coop, PREFIX/libexec/coop/coop-supervisor,
# PREFIX/share/coop/.
install: release
	install -D -m 0755 "$$(swift build -c release --static-swift-stdlib --show-bin-path)/coop" "$(DESTDIR)$(PREFIX)/bin/coop"
	install -D -m 0755 "$$(swift build -c release --static-swift-stdlib --show-bin-path)/coop-supervisor" \
		"$(DESTDIR)$(PREFIX)/libexec/coop/coop-supervisor"
	install -D -m 0644 images.index "$(DESTDIR)$(PREFIX)/share/coop/images.index"
	install -d -m 0755 "$(DESTDIR)$(PREFIX)/share/coop/keys"
	install -m 0644 keys/*.asc "$(DESTDIR)$(PREFIX)/share/coop/keys/"
