#!/usr/bin/env python3
"""embergpt's CLI bench and llama.cpp side by side on the same GGUF.

The model is GPT-2 124M-shaped with random weights (tests/scripts/make_bench_gpt2.py,
plus a synthetic byte-level BPE vocabulary because llama.cpp insists on one).
Both engines get the same prompt token ids (the CLI's formula), prefill them in
one batch, then decode single tokens. Reported: prefill and decode tokens/s,
best of --reps.

llama.cpp comes from the PyPI package `llama-cpp-python` (it compiles llama.cpp
on install: `pip install --target DIR llama-cpp-python`, then pass --llama-path DIR
or have it importable). Without it the llama.cpp column says "not installed".

usage: bench_vs_llamacpp.py [--dir /tmp/embergpt-bench] [--types q8_0 q4_0]
                            [--threads 1 2] [-p 32] [-n 16] [--reps 3] [--llama-path DIR]
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import make_bench_gpt2 as mk  # noqa: E402


def prompt_ids(p, vocab):
    return [(i * 2654435761 + 17) % vocab for i in range(p)]


def embergpt_bench(model, p, n, t, reps):
    cmd = ["cargo", "run", "-q", "--release", "-p", "embergpt-cli", "--", "bench", "-m", str(model),
           "-p", str(p), "-n", str(n), "-t", str(t), "--reps", str(reps), "--json"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    j = json.loads(out.strip().splitlines()[-1])
    return j["pp_tps"], j["tg_tps"], j.get("backend", "?")


def llama_bench(model, p, n, t, reps):
    from llama_cpp import Llama  # noqa: imported late: optional
    llm = Llama(model_path=str(model), n_ctx=p + n, n_batch=p, n_threads=t, n_threads_batch=t,
                verbose=False)
    prompt = prompt_ids(p, mk.V)
    best_pp = best_tg = 0.0
    for _ in range(reps):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        best_pp = max(best_pp, p / (time.perf_counter() - t0))
        t1 = time.perf_counter()
        for i in range(n):
            llm.eval([(i * 31) % mk.V])
        best_tg = max(best_tg, n / (time.perf_counter() - t1))
    return best_pp, best_tg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/embergpt-bench")
    ap.add_argument("--types", nargs="+", default=["q8_0", "q4_0"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("-p", type=int, default=32)
    ap.add_argument("-n", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--llama-path")
    a = ap.parse_args()
    if a.llama_path:
        sys.path.insert(0, a.llama_path)
    try:
        import llama_cpp  # noqa: F401
        have_llama = True
    except ImportError:
        have_llama = False
        print("llama-cpp-python not importable: llama.cpp column skipped", file=sys.stderr)

    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    rows = []
    for ty in a.types:
        model = d / f"gpt2-124m-vocab.{ty}.gguf"
        if not model.exists():
            print(f"writing {model}", file=sys.stderr)
            mk.write(model, ty, vocab=True)
        for t in a.threads:
            epp, etg, backend = embergpt_bench(model, a.p, a.n, t, a.reps)
            if have_llama:
                lpp, ltg = llama_bench(model, a.p, a.n, t, a.reps)
                lcol = f"{lpp:.1f} | {ltg:.1f}"
            else:
                lcol = "not installed | not installed"
            rows.append(f"| {ty} | {t} | {backend} | {epp:.1f} | {etg:.1f} | {lcol} |")
    print(f"GPT-2 124M-shaped random model, prompt {a.p} tokens, {a.n} decode steps, best of {a.reps}")
    print("| type | threads | embergpt backend | embergpt prefill tok/s | embergpt decode tok/s "
          "| llama.cpp prefill tok/s | llama.cpp decode tok/s |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
