#!/usr/bin/env bash
# Runs every test: prepares what the end-to-end tests need (the ordinary user, the image fixtures,
# a loopback nginx), runs `swift test`, and stops the server again.
set -euo pipefail
fixtures=${1:?fixtures folder}
user=${2:-coop-test}
shift 2 || true
cd "$(dirname "$0")/.."

state=$(mktemp -d /tmp/coop-server.XXXXXX)
chmod 0755 "$state"
stop_server() {
    Tests/Fixtures/serve.sh stop "$state" >/dev/null 2>&1 || true
    rm -rf "$state"
}
trap stop_server EXIT

if [ "$(id -u)" = 0 ]; then
    Tests/Fixtures/make-test-user.sh "$user" >/dev/null
    # What an administrator does once per user: subordinate ids (four ranges: isolated fleets need more
    # than one) and a cgroup subtree of its own.
    .build/debug/coop setup-host --user "$user" --ranges 4 >/dev/null
    Tests/Fixtures/serve.sh start "$fixtures/www" "$state" >/dev/null
else
    echo "not root: tests that need root, the test user or the image server are skipped" >&2
fi
export COOP_FIXTURES=$fixtures COOP_SERVER_STATE=$state COOP_TEST_USER=$user
swift build --build-tests
if [ "$(id -u)" = 0 ] && [ $# = 0 ]; then
    # The unit tests need no root: they run as the ordinary user first, and fail the run if they cannot.
    echo "== unit tests as $user"
    setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups env -i PATH=/usr/bin:/bin HOME=/tmp \
        "$(swift build --show-bin-path)/coopPackageTests.xctest" --testing-library swift-testing --filter CoopUnitTests
fi
swift test --skip-build "$@"
