#!/usr/bin/env bash
# Prove run-time detection and fallback on x86_64 CPUs this machine is not:
# run the kernel and golden tests under QEMU user mode as the cargo runner,
#   -cpu Haswell  (AVX2 + FMA + F16C, no AVX-512, no AVX-VNNI) -> detect() must pick avx2
#   -cpu Nehalem  (SSE4.2, no AVX at all)                      -> detect() must pick scalar
# and assert the pick inside the test (EMBERGPT_EXPECT_BEST, read by
# tests/kernels.rs::detected_backend_is_the_expected_one).
#
# Needs qemu-x86_64 (Debian: apt-get install qemu-user). Usage: tests/scripts/qemu_x86.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v qemu-x86_64 >/dev/null; then
    echo "SKIPPED: qemu-x86_64 not installed (apt-get install qemu-user)"
    [ "${CI:-}" = "true" ] && exit 1
    exit 0
fi
if [ "$(uname -m)" != "x86_64" ]; then
    echo "SKIPPED: not an x86_64 host"
    exit 0
fi
for pair in "Haswell avx2" "Nehalem scalar"; do
    set -- $pair
    echo "== qemu-x86_64 -cpu $1: expecting Backend::detect() = $2"
    log=$(mktemp)
    status=0
    CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="qemu-x86_64 -cpu $1" \
    EMBERGPT_EXPECT_BEST="$2" \
        cargo test --release --test kernels --test golden -- --nocapture >"$log" 2>&1 || status=$?
    grep -E "detect\(\)|SKIPPED: backend avx|^test |test result|panicked|FAILED" "$log" | sort | uniq
    rm -f "$log"
    [ "$status" = 0 ] || { echo "FAILED under -cpu $1"; exit 1; }
done
echo "qemu_x86: detection and fallback OK"
