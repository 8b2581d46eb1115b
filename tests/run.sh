#!/usr/bin/env bash
# The whole embergpt test suite. Installs its own prerequisites when missing
# (rustup targets and components, apt packages, cargo tools, the SmolLM2 model),
# then runs every check and test. Usage:
#
#   bash tests/run.sh            everything (CI runs exactly this via .ci/run)
#
# Environment: FUZZ_SECONDS (per fuzz target, default 45).
# Needs only rustup (and apt for the system packages); about 35-45 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
T0=$(date +%s)
step() { printf '\n==== [%4ss] %s ====\n' "$(( $(date +%s) - T0 ))" "$*"; }

# ------------------------------------------------------------------ prerequisites
step "prerequisites"
SUDO=""; if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
apt_pkgs=(build-essential pkg-config cmake valgrind
          gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user
          gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
          bochs bochsbios vgabios bochs-term)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing apt packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
targets=(thumbv7em-none-eabihf thumbv8m.main-none-eabihf thumbv6m-none-eabi
         riscv32imac-unknown-none-elf aarch64-unknown-linux-gnu wasm32-wasip1)
have=$(rustup target list --installed)
for t in "${targets[@]}"; do grep -qx "$t" <<<"$have" || rustup target add "$t"; done
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
command -v node >/dev/null || { echo "node (>= 20) is required for the wasm32 tests" >&2; exit 1; }
bash tests/scripts/fetch_smollm2.sh          # SmolLM2-135M Q4_1 into .models/ (pip)
if ! command -v cbindgen >/dev/null || [ "$(cbindgen --version | awk '{print $2}')" != 0.29.4 ]; then
  cargo install cbindgen --version 0.29.4 --locked
fi

# ------------------------------------------------------------------ static checks
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy -D warnings (host, all features)"
cargo clippy --workspace --all-targets --features std,capi -- -D warnings
step "cargo clippy -D warnings (the arch kernels: aarch64, wasm32, Cortex-M DSP and Helium)"
# The crate-wide no-panic lints (src/lib.rs) also cover code that only compiles for these.
cargo clippy --lib --target aarch64-unknown-linux-gnu -- -D warnings
cargo clippy --lib --target wasm32-wasip1 -- -D warnings
cargo clippy --lib --target thumbv7em-none-eabihf --features dsp -- -D warnings
cargo clippy --lib --target thumbv8m.main-none-eabihf --features dsp,helium -- -D warnings
step "no_std core builds for bare-metal targets"
for t in thumbv7em-none-eabihf thumbv6m-none-eabi riscv32imac-unknown-none-elf; do
  echo "-- $t"; cargo build --lib --no-default-features --target "$t"
done
step "header drift (cbindgen 0.29.4)"
c-examples/check-header.sh

# ------------------------------------------------------------------ host tests
step "cargo test (workspace, host: golden, kernels, tokenizer, sampler, C examples, CLI)"
cargo test --workspace --features std,capi

# ------------------------------------------------------------------ other CPUs and targets
step "x86_64 detection and fallback under qemu (-cpu Haswell = avx2, -cpu Nehalem = scalar)"
tests/scripts/qemu_x86.sh
# AVX-512/VNNI kernels execute only under Bochs here (no AVX-512 on this CPU or in QEMU).
step "x86_64 AVX-512 VNNI / AVX2 tables and forced-backend logits under Bochs (tigerlake)"
tests/scripts/bochs_x86.sh
step "cross targets: aarch64 (qemu -cpu max / cortex-a53), wasm32-wasip1 (node)"
tests/scripts/cross_test.sh

step "Cortex-M: firmware on mps2-an386 (M4F) and mps3-an547 (M55), on-target kernel tests, footprint"
c-examples/cortex-m/ci.sh

# ------------------------------------------------------------------ hardening
step "fuzz smoke (cargo-fuzz, nightly): ${FUZZ_SECONDS:-45} s per target"
FUZZ_SECONDS="${FUZZ_SECONDS:-45}" bash tests/scripts/fuzz_smoke.sh
step "Miri (nightly): parser, arena, context, scalar kernels"
bash tests/scripts/miri.sh
step "AddressSanitizer (nightly): the SIMD kernel tests"
bash tests/scripts/asan_kernels.sh

step "all checks passed in $(( $(date +%s) - T0 )) s"
