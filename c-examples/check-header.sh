#!/bin/sh
# Regenerate include/embergpt.h with the pinned cbindgen into a temporary file and
# fail if it differs from the checked-in header (CI runs this).
#   c-examples/check-header.sh         check
#   c-examples/check-header.sh --fix   rewrite include/embergpt.h
# Needs cbindgen 0.29.4: cargo install cbindgen --version 0.29.4 --locked
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
want="0.29.4"
if ! command -v cbindgen > /dev/null 2>&1; then
    if [ -n "${CI:-}" ]; then
        echo "check-header: cbindgen missing (CI must install cbindgen $want)" >&2
        exit 1
    fi
    echo "SKIPPED: check-header: cbindgen not installed (cargo install cbindgen --version $want --locked)"
    exit 0
fi
have=$(cbindgen --version | awk '{print $2}')
if [ "$have" != "$want" ]; then
    echo "check-header: cbindgen $have found, $want required" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$root"
cbindgen --quiet --config cbindgen.toml --output "$tmp/embergpt.h" src/capi.rs
if [ "${1:-}" = "--fix" ]; then
    cp "$tmp/embergpt.h" include/embergpt.h
    echo "check-header: include/embergpt.h regenerated"
    exit 0
fi
if ! diff -u include/embergpt.h "$tmp/embergpt.h"; then
    echo "check-header: include/embergpt.h is stale; run c-examples/check-header.sh --fix" >&2
    exit 1
fi
echo "check-header: include/embergpt.h is up to date"
