#!/usr/bin/env bash
# Run embergpt's AVX-512 VNNI / AVX-VNNI / AVX2 kernel tables where they really
# execute: this machine's CPU has no AVX-512 and QEMU emulates none, so boot a
# bare-metal payload (tests/x86-bare) in Bochs with CPU model `tigerlake`
# (AVX2 + FMA + F16C + AVX-512 F/BW/VL/VNNI; Bochs 2.7 has no AVX-VNNI model,
# so that table is reported as skipped by the payload) and check every function
# of every table Kernels::new returns, and whole-model logits per forced
# backend, against the scalar reference bit for bit.
#
# Needs: bochs bochsbios vgabios bochs-term (apt; Debian's bochs needs one GUI
# plugin to start, the run itself is headless: rfb display, no client), binutils
# (as, ld, objcopy), cargo. Exits 0 only when the payload prints its PASS line.
# Usage: tests/scripts/bochs_x86.sh        (BOCHS_TIMEOUT seconds, default 600)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)

skip() {
    echo "SKIPPED: $*"
    [ "${CI:-}" = "true" ] && { echo "bochs_x86: FAILED (CI=true: Bochs must run)"; exit 1; }
    exit 0
}
[ "$(uname -m)" = "x86_64" ] || skip "not an x86_64 host"

SUDO=""; if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi
missing=()
for p in bochs bochsbios vgabios bochs-term binutils; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing apt packages: ${missing[*]}"
    { $SUDO apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; } ||
        skip "could not install ${missing[*]}"
fi
command -v bochs >/dev/null || skip "bochs not installed (apt-get install bochs bochsbios vgabios)"
BIOS=/usr/share/bochs/BIOS-bochs-latest
VGA=/usr/share/vgabios/vgabios.bin
[ -f "$BIOS" ] && [ -f "$VGA" ] || skip "Bochs BIOS images missing ($BIOS, $VGA)"

# ---- build the payload (host target, freestanding; see tests/x86-bare/.cargo/config.toml)
T0=$(date +%s)
# fmt and clippy too: the root workspace's checks do not cover this crate.
# The flags live in tests/x86-bare/.cargo/config.toml; environment overrides
# (RUSTFLAGS would replace them, CARGO_TARGET_DIR move the ELF) are cleared.
(cd tests/x86-bare &&
    unset RUSTFLAGS CARGO_ENCODED_RUSTFLAGS CARGO_BUILD_RUSTFLAGS CARGO_BUILD_TARGET \
        CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS CARGO_TARGET_DIR CARGO_BUILD_TARGET_DIR &&
    cargo fmt --check && cargo clippy --release --quiet -- -D warnings &&
    cargo build --release --quiet)
ELF=tests/x86-bare/target/x86_64-unknown-linux-gnu/release/x86-bare
OUT=tests/x86-bare/target/bochs
mkdir -p "$OUT"
objcopy -O binary "$ELF" "$OUT/payload.bin"
size=$(stat -c %s "$OUT/payload.bin")
sectors=$(( (size + 511) / 512 ))
# The boot sector copies the payload to 1 MiB .. (identity-mapped 1 GiB; the
# payload's .bss follows it). 16-bit sector count.
[ "$sectors" -lt 65536 ] || { echo "payload too large ($size bytes)"; exit 1; }
as --64 --defsym PAYLOAD_SECTORS="$sectors" tests/x86-bare/boot.S -o "$OUT/boot.o"
ld -Ttext=0x7c00 --oformat binary "$OUT/boot.o" -o "$OUT/boot.bin"
[ "$(stat -c %s "$OUT/boot.bin")" = 512 ] || { echo "boot sector is not 512 bytes"; exit 1; }
rm -f "$OUT/disk.img.lock"   # left behind when a timed-out Bochs was killed
cat "$OUT/boot.bin" "$OUT/payload.bin" > "$OUT/disk.img"
# a whole number of 16-head, 63-sector cylinders
cyl=$(( ($(stat -c %s "$OUT/disk.img") + 516095) / 516096 ))
truncate -s $(( cyl * 516096 )) "$OUT/disk.img"
T1=$(date +%s)
echo "bochs_x86: payload $size bytes ($sectors sectors), built in $(( T1 - T0 )) s"

# ---- run Bochs headless
cat > "$OUT/bochsrc" <<EOF
megs: 256
romimage: file=$BIOS
vgaromimage: file=$VGA
cpu: model=tigerlake, count=1, ips=200000000, reset_on_triple_fault=0
display_library: rfb, options="timeout=0"
ata0-master: type=disk, path=$ROOT/$OUT/disk.img, mode=flat, cylinders=$cyl, heads=16, spt=63
boot: disk
port_e9_hack: enabled=1
speaker: enabled=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
clock: sync=none
log: $ROOT/$OUT/bochs.log
panic: action=fatal
error: action=report
info: action=ignore
EOF
# Debian's Bochs is built with its debugger, which waits for a command first.
printf 'continue\nquit\n' > "$OUT/debugger.rc"
status=0
timeout "${BOCHS_TIMEOUT:-600}" bochs -q -f "$OUT/bochsrc" -rc "$OUT/debugger.rc" \
    </dev/null >"$OUT/stdout.txt" 2>"$OUT/stderr.txt" || status=$?
T2=$(date +%s)
# The payload's own lines (port 0xE9 goes to Bochs's stdout).
awk '/^x86-bare/ {on = 1} on {print} /^x86-bare: (PASS|FAIL)/ {exit}' "$OUT/stdout.txt"
echo "bochs_x86: Bochs ran $(( T2 - T1 )) s (exit $status; 1 is its normal exit through the shutdown port)"
if [ "$status" = 124 ]; then
    echo "bochs_x86: FAILED (timeout after ${BOCHS_TIMEOUT:-600} s)"
    tail -20 "$OUT/stdout.txt"; exit 1
fi
if grep -q '^x86-bare: PASS' "$OUT/stdout.txt"; then
    echo "bochs_x86: OK"
    exit 0
fi
echo "bochs_x86: FAILED (no PASS line)"
grep -q '^x86-bare' "$OUT/stdout.txt" || {
    echo "--- Bochs stdout"; tail -20 "$OUT/stdout.txt"
    echo "--- Bochs stderr"; tail -20 "$OUT/stderr.txt"
    echo "--- Bochs log"; grep -v '^\s*$' "$OUT/bochs.log" | tail -20
}
exit 1
