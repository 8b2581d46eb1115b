#!/usr/bin/env bash
# Cross-target tests: aarch64 under qemu-user (with and without dotprod) and
# wasm32-wasip1 (+simd128) under Node's WASI. Installs nothing; CI provides:
#   apt:    gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user   (and Node >= 20)
#   rustup: rustup target add aarch64-unknown-linux-gnu wasm32-wasip1
# Runners, linker and the wasm +simd128 flag come from .cargo/config.toml.
#
# Usage: tests/scripts/cross_test.sh [aarch64] [wasm32]   (default: both)
#
# Tests are built at opt-level 2 (debug assertions and overflow checks stay on):
# the unoptimized build runs the fixture tests about 10x slower under emulation.
set -euo pipefail
cd "$(dirname "$0")/../.."

export CARGO_PROFILE_DEV_OPT_LEVEL="${CARGO_PROFILE_DEV_OPT_LEVEL:-2}"
# --show-output: print each passing test's output (the SKIPPED lines, golden stats).
TESTS=(--lib --test golden --test kernels_cross -- --show-output)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(aarch64 wasm32)

need() { command -v "$1" >/dev/null || { echo "cross_test: missing $1 ($2)" >&2; exit 2; }; }

ran=()
run() { # description, env assignments..., -- cargo args...
    local what="$1"; shift
    echo "=== $what"
    echo "+ $*"
    env "$@"
    ran+=("$what: ok")
}

for t in "${targets[@]}"; do
    case "$t" in
    aarch64)
        need aarch64-linux-gnu-gcc "apt gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
        need qemu-aarch64 "apt qemu-user"
        tgt=aarch64-unknown-linux-gnu
        # -cpu max: NEON + dotprod (the config's runner); the dotprod backend must be there.
        run "aarch64 -cpu max (neon, dotprod)" \
            CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu" \
            EMBERGPT_EXPECT_BACKENDS=neon,dotprod \
            cargo test --target "$tgt" "${TESTS[@]}"
        # -cpu cortex-a53: ARMv8.0, no dotprod. Detection is at run time, so the
        # same binaries run; dotprod must be reported unavailable (its tests skip).
        run "aarch64 -cpu cortex-a53 (neon only)" \
            CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -cpu cortex-a53 -L /usr/aarch64-linux-gnu" \
            EMBERGPT_EXPECT_BACKENDS=neon EMBERGPT_EXPECT_MISSING=dotprod \
            cargo test --target "$tgt" "${TESTS[@]}"
        ;;
    wasm32)
        need node "Node >= 20 with node:wasi"
        run "wasm32-wasip1 +simd128 (node WASI)" \
            EMBERGPT_EXPECT_BACKENDS=simd128 EMBERGPT_EXPECT_MISSING=neon,dotprod \
            cargo test --target wasm32-wasip1 "${TESTS[@]}"
        ;;
    *)
        echo "cross_test: unknown target group '$t' (aarch64, wasm32)" >&2
        exit 2
        ;;
    esac
done

echo "=== cross_test summary"
printf '  %s\n' "${ran[@]}"
