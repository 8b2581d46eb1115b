#!/usr/bin/env python3
"""embergpt's CLI bench and llama.cpp's llama-bench side by side on the same GGUF files.

The models are GPT-2 124M-shaped with random weights (tests/scripts/make_bench_gpt2.py,
plus a synthetic byte-level BPE vocabulary because llama.cpp insists on one): one Q8_0
and one with every matrix Q4_0 (token embedding included; norms, biases and the position
embedding stay F32 in both engines). For every round, type and thread count the two engines
run one after the other (alternating, so a change in machine load hits both), each doing a
prefill of -p tokens in one batch and -n single-token decode steps, after one untimed
warm-up run in the same process (llama-bench's default; `embergpt bench --warmup 1`).
Reported: the median over rounds of prefill and decode tokens/s, and the ratios
embergpt / llama.cpp.

Both decode tests run the same way: llama-bench's tg test decodes -n tokens from an empty
context (positions 0..n), and embergpt runs with --tg-empty to do the same (plus an argmax
over the logits each step). --tg-after-prompt makes embergpt decode after its -p prompt
instead (attention over p..p+n positions), which is slower and no longer the same test.

llama.cpp: any build of `llama-bench` (cmake -DLLAMA_BUILD_TOOLS=ON, target llama-bench;
the sources also ship inside PyPI's llama-cpp-python sdist under vendor/llama.cpp). Pass
--llama-bench PATH or set LLAMA_BENCH; without it the llama.cpp columns say "not run".

usage: bench_vs_llamacpp.py [--dir /tmp/embergpt-bench] [--types q8_0 q4_0]
                            [--threads 1 2] [-p 128] [-n 64] [--rounds 3]
                            [--llama-bench PATH] [--tg-after-prompt]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
import make_bench_gpt2 as mk  # noqa: E402


def embergpt_bin():
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "embergpt-cli"], cwd=ROOT,
                   check=True)
    return ROOT / "target" / "release" / "embergpt"


def embergpt_run(exe, model, p, n, t, tg_empty=True):
    cmd = [str(exe), "bench", "-m", str(model), "-p", str(p), "-n", str(n), "-t", str(t),
           "--reps", "1", "--warmup", "1", "--mem-read", "--json"] + (["--tg-empty"] if tg_empty else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    j = json.loads(out.strip().splitlines()[-1])
    return (j["pp_tps"], j["tg_tps"], j.get("backend", "?"), j.get("peak_rss_bytes"),
            j.get("weight_bytes_per_token"), j.get("mem_read_gbps"))


def llama_run(exe, model, p, n, t):
    cmd = [str(exe), "-m", str(model), "-p", str(p), "-n", str(n), "-t", str(t), "-r", "1",
           "-o", "json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    pp = tg = None
    for r in json.loads(out):
        if r.get("n_prompt") == p and r.get("n_gen") == 0:
            pp = r["avg_ts"]
        if r.get("n_gen") == n and r.get("n_prompt") == 0:
            tg = r["avg_ts"]
    return pp, tg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/tmp/embergpt-bench")
    ap.add_argument("--types", nargs="+", default=["q8_0", "q4_0"])
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("-p", type=int, default=128)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--llama-bench", default=os.environ.get("LLAMA_BENCH")
                    or shutil.which("llama-bench"))
    ap.add_argument("--tg-after-prompt", action="store_true",
                    help="embergpt decodes after the prompt (not llama-bench's tg test)")
    a = ap.parse_args()

    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    exe = embergpt_bin()
    models = {}
    for ty in a.types:
        models[ty] = d / f"gpt2-124m-vocab.{ty}.gguf"
        if not models[ty].exists():
            print(f"writing {models[ty]}", file=sys.stderr)
            mk.write(models[ty], ty, vocab=True)
    if not a.llama_bench:
        print("llama-bench not found (--llama-bench PATH or LLAMA_BENCH): llama.cpp not run",
              file=sys.stderr)

    res = {}  # (ty, t) -> lists
    for rnd in range(a.rounds):
        for ty in a.types:
            for t in a.threads:
                r = res.setdefault((ty, t), {"epp": [], "etg": [], "lpp": [], "ltg": [],
                                             "backend": "?", "rss": None, "wb": None, "mem": []})
                epp, etg, backend, rss, wb, mem = embergpt_run(exe, models[ty], a.p, a.n, t,
                                                            not a.tg_after_prompt)
                r["epp"].append(epp)
                r["etg"].append(etg)
                r["backend"], r["rss"], r["wb"] = backend, rss, wb
                if mem:
                    r["mem"].append(mem)
                if a.llama_bench:
                    lpp, ltg = llama_run(a.llama_bench, models[ty], a.p, a.n, t)
                    r["lpp"].append(lpp)
                    r["ltg"].append(ltg)
                print(f"round {rnd + 1} {ty} t{t}: embergpt {epp:.1f}/{etg:.1f}"
                      + (f", llama.cpp {lpp:.1f}/{ltg:.1f}" if a.llama_bench else ""),
                      file=sys.stderr)

    med = lambda v: statistics.median(v) if v else None  # noqa: E731
    fmt = lambda v: f"{v:.1f}" if v is not None else "not run"  # noqa: E731
    ratio = lambda x, y: f"{x / y:.2f}x" if x and y else "-"  # noqa: E731
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    tg = "after the prompt (embergpt)" if a.tg_after_prompt else "from an empty context"
    print(f"GPT-2 124M-shaped random model, prompt {a.p} tokens in one batch, {a.n} decode "
          f"steps {tg}; median of {a.rounds} alternating rounds; load average at the end {load:.1f}")
    print()
    print("| type | threads | embergpt prefill | llama.cpp prefill | ratio "
          "| embergpt decode | llama.cpp decode | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for (ty, t), r in res.items():
        epp, etg, lpp, ltg = med(r["epp"]), med(r["etg"]), med(r["lpp"]), med(r["ltg"])
        print(f"| {ty} | {t} | {fmt(epp)} | {fmt(lpp)} | {ratio(epp, lpp)} | {fmt(etg)} "
              f"| {fmt(ltg)} | {ratio(etg, ltg)} |")
    print()
    print("tokens/s; embergpt backend: "
          + ", ".join(sorted({r["backend"] for r in res.values()})))
    for ty in a.types:
        r1, r2 = res.get((ty, 1)), res.get((ty, 2))
        if r1 and r2:
            print(f"{ty}: embergpt 2 threads / 1 thread decode {med(r2['etg']) / med(r1['etg']):.2f}x"
                  + (f", llama.cpp {med(r2['ltg']) / med(r1['ltg']):.2f}x" if r1["ltg"] else ""))
        wb = next((res[(ty, t)]["wb"] for t in a.threads if res[(ty, t)]["wb"]), None)
        if wb:
            # GB/s of weights the median decode run read, per thread count.
            dec = {t: med(res[(ty, t)]["etg"]) * wb / 1e9 for t in a.threads}
            print(f"{ty}: a decode step reads {wb / 1e6:.1f} MB of weights; embergpt decode "
                  + ", ".join(f"{t} thread{'s' if t > 1 else ''} {g:.1f} GB/s"
                              for t, g in dec.items()))
            mems = {t: med(res[(ty, t)]["mem"]) for t in a.threads if res[(ty, t)]["mem"]}
            if mems:
                # The machine's ceiling beside decode: a plain read of the same bytes
                # (`embergpt bench --mem-read`), once per run, in the same rounds.
                print(f"{ty}: memory read (the model's bytes, no arithmetic) "
                      + ", ".join(f"{t} thread{'s' if t > 1 else ''} {g:.1f} GB/s "
                                  f"(decode {100 * dec[t] / g:.0f}% of it)"
                                  for t, g in mems.items()))
        rss = next((res[(ty, t)]["rss"] for t in a.threads if res[(ty, t)]["rss"]), None)
        if rss:
            print(f"{ty}: embergpt peak RSS {rss / 2**20:.1f} MiB "
                  f"(model file {models[ty].stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
