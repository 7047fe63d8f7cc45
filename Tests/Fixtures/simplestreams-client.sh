#!/usr/bin/env bash
# Installs the reference simplestreams client (sstream-query, sstream-mirror of PyPI's python-simplestreams)
# in a virtual environment of its own: OUT/simplestreams/bin/sstream-query.
#
# Usage: simplestreams-client.sh OUT
#
# OUT/simplestreams/.complete marks a finished install; if present the script exits at once.
set -euo pipefail
OUT=${1:?usage: $0 OUT}
VENV=$OUT/simplestreams
VERSION=0.1.0.post59
if [ "$(cat "$VENV/.complete" 2>/dev/null)" = "$VERSION" ]; then
    exit 0
fi
# A virtual environment cannot be moved (its scripts name its path): made in place, marked when done.
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check "python-simplestreams==$VERSION"
chmod -R a+rX "$VENV"
echo "$VERSION" >"$VENV/.complete"
echo "== sstream-query $VERSION in $VENV"
