#!/usr/bin/env bash
# The whole embergpt test suite. Installs its own prerequisites when missing
# (rustup targets and components, apt packages, cargo tools), then runs every
# check. Usage: bash tests/run.sh        (CI runs exactly this via .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
step() { printf '\n==== %s ====\n' "$*"; }
SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO=sudo

# ---------------------------------------------------------------- prerequisites
step "prerequisites"
need_targets=(thumbv7em-none-eabihf)
installed=$(rustup target list --installed)
for t in "${need_targets[@]}"; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt

# ---------------------------------------------------------------- static checks
step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --features std -- -D warnings
step "no_std build for thumbv7em-none-eabihf"
cargo build --lib --no-default-features --target thumbv7em-none-eabihf

# ---------------------------------------------------------------- tests
step "cargo test (workspace)"
cargo test --workspace --features std

step "all checks passed"
