#!/usr/bin/env python3
"""Manual interoperability check: llama.cpp loads what `embergpt convert` and
`embergpt quantize` write, and reproduces the transformers reference logits of
tests/fixtures/llama/ (not part of the test suite: it needs a llama.cpp build).

llama.cpp comes from the PyPI sdist of llama-cpp-python (its vendor/ folder);
build only the library, then point this script at it:

    pip download --no-deps --no-binary=llama-cpp-python llama-cpp-python==0.3.36 -d /tmp/l
    cd /tmp/l && tar xzf llama_cpp_python-0.3.36.tar.gz
    cd llama_cpp_python-0.3.36/vendor/llama.cpp
    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \\
        -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF \\
        -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DGGML_OPENMP=OFF -DLLAMA_BUILD_COMMON=OFF
    cmake --build build --target llama -j2          # about 10 minutes on 2 cores
    pip install --target /tmp/pydeps diskcache jinja2 typing_extensions
    cd <repo> && PYTHONPATH=/tmp/pydeps:/tmp/l/llama_cpp_python-0.3.36 \\
        LLAMA_CPP_LIB_PATH=/tmp/l/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin \\
        python3 tests/scripts/check_llama_cpp.py

It converts the fixtures with the release CLI (cargo run), runs llama.cpp on
every file and prints max|diff|, min cosine and argmax agreement per file.
"""

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from llama_cpp import Llama

REPO = Path(__file__).resolve().parents[2]
FIX = REPO / "tests" / "fixtures" / "llama"
SHARED = REPO.parent / "shared" / "data"
SMOL = REPO / ".models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def cli(*args: str) -> None:
    subprocess.run(["cargo", "run", "-q", "--release", "-p", "embergpt-cli", "--", *args],
                   cwd=REPO, check=True)


def logits(path: Path, tokens: list[int]) -> np.ndarray:
    m = Llama(str(path), n_ctx=128, n_batch=64, n_threads=2, logits_all=True, verbose=False)
    m.eval(tokens)
    return np.array(m.scores[: len(tokens)], dtype=np.float64)


def report(name: str, ours: np.ndarray, ref: np.ndarray) -> None:
    ref = ref.reshape(ours.shape)
    mx = np.abs(ours - ref).max()
    cos = min((a @ b) / np.linalg.norm(a) / np.linalg.norm(b) for a, b in zip(ours, ref))
    agree = (ours.argmax(1) == ref.argmax(1)).sum()
    print(f"llama.cpp {name}: max|diff| {mx:.3e} = {mx / ref.std():.3e} x std, "
          f"min cos {cos:.7f}, argmax {agree}/{len(ref)}")


def main() -> None:
    man = json.loads((FIX / "manifest.json").read_text())
    ref = lambda f: np.fromfile(FIX / f, "<f4").astype(np.float64)  # noqa: E731
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        st = man["stories260K"]["tokens"]
        for ty in ["f32", "q8_0"]:
            out = d / f"stories.{ty}.gguf"
            cli("convert", str(SHARED / "stories260K.bin"), "-o", str(out), "--type", ty,
                "--tokenizer", str(SHARED / "tok512.bin"))
            report(f"stories260K {ty} (convert)", logits(out, st), ref("stories260K.logits.bin"))
        out = d / "hf-tiny.gguf"
        cli("convert", str(FIX / "hf-tiny"), "-o", str(out))
        report("hf-tiny f32 (convert)", logits(out, man["hf-tiny"]["tokens"]),
               ref("hf-tiny.f32.logits.bin"))
        out = d / "gpt2-tiny.gguf"
        cli("convert", str(FIX / "gpt2-tiny"), "-o", str(out))
        report("gpt2-tiny f32 (convert)", logits(out, man["gpt2-tiny"]["tokens"]),
               ref("gpt2-tiny.f32.logits.bin"))
        if SMOL.exists():
            toks = man["smollm2"]["tokens"]
            q41 = logits(SMOL, toks)
            report("SmolLM2 Q4_1 as shipped vs float", q41, ref("smollm2.logits.bin"))
            report("SmolLM2 Q4_1 as shipped vs int8-act", q41, ref("smollm2.q8act.logits.bin"))
            out = d / "smol.q8_0.gguf"
            cli("quantize", str(SMOL), str(out), "--type", "q8_0")
            report("SmolLM2 q8_0 (quantize) vs float", logits(out, toks), ref("smollm2.logits.bin"))


if __name__ == "__main__":
    main()
