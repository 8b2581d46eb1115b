"""Tests of the C library through ctypes (run by `make -C c-examples test`).

Checks the C API's logits against the independent PyTorch references in
tests/fixtures/gpt2 (same criteria as tests/golden.rs), that batched and
token-by-token evaluation agree bit for bit, error statuses, struct sizes, and
that one model can serve contexts on several threads at once.
"""
import ctypes
import json
import math
import os
import re
import struct
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import embergpt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIX = os.path.join(ROOT, "tests", "fixtures", "gpt2")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def f32_file(path):
    b = read(path)
    return list(struct.unpack("<%df" % (len(b) // 4), b))


def bits(values):
    return struct.pack("<%df" % len(values), *values)


def compare(ours, ref, n_vocab):
    mean = sum(ref) / len(ref)
    std = math.sqrt(sum((v - mean) ** 2 for v in ref) / len(ref))
    max_abs, min_cos, agree, rows = 0.0, 1.0, 0, 0
    for r in range(len(ref) // n_vocab):
        a = ours[r * n_vocab:(r + 1) * n_vocab]
        b = ref[r * n_vocab:(r + 1) * n_vocab]
        max_abs = max(max_abs, max(abs(x - y) for x, y in zip(a, b)))
        dot = sum(x * y for x, y in zip(a, b))
        cos = dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))
        min_cos = min(min_cos, cos)
        agree += embergpt.argmax(a) == embergpt.argmax(b)
        rows += 1
    return max_abs, std, min_cos, agree, rows


def test_golden_and_bit_identity():
    manifest = json.loads(read(os.path.join(FIX, "manifest.json")))
    for m in manifest["models"]:
        name, n_vocab, tokens = m["name"], m["n_vocab"], m["tokens"]
        for ty in m["types"]:
            model = embergpt.Model(read(os.path.join(FIX, f"{name}.{ty}.gguf")))
            info = model.info()
            check(info.n_vocab == n_vocab and info.n_ctx == m["n_ctx"]
                  and info.n_layer == m["n_layer"] and info.n_head == m["n_head"]
                  and info.n_embd == m["n_embd"] and info.n_ff == m["n_ff"]
                  and bool(info.tied_output) == m["tied"], f"{name}.{ty} info")
            check(embergpt.type_name(info.weight_type) == ty, f"{name}.{ty} weight_type")
            ctx = embergpt.Context(model, n_batch=len(tokens), logits_all=True)
            ctx.eval_all(tokens)
            rows = ctx.all_logits()
            ours = [v for r in rows for v in r]
            ref = f32_file(os.path.join(FIX, f"{name}.{ty}.logits.bin"))
            max_abs, std, min_cos, agree, n = compare(ours, ref, n_vocab)
            print(f"{name}.{ty}: max|diff| {max_abs:.3e} = {max_abs / std:.3e} x std, "
                  f"min cos {min_cos:.6f}, argmax {agree}/{n}")
            if ty == "f32":
                check(max_abs <= 1e-4 * std, f"{name}.{ty} golden")
            elif ty == "f16":
                check(max_abs <= 1e-2 * std, f"{name}.{ty} golden")
            else:
                check(min_cos >= 0.999 and agree * 100 >= 95 * n, f"{name}.{ty} golden")
            # Decoding token by token gives the same bits as one batch.
            ctx.reset()
            for i, t in enumerate(tokens):
                ctx.eval([t])
                check(bits(ctx.logits()) == bits(rows[i]), f"{name}.{ty} decode row {i}")
            # A rewind to a shared prefix and re-run reproduces the same bits.
            ctx.rewind(5)
            ctx.eval(tokens[5:12])
            check(bits(ctx.logits()) == bits(rows[11]), f"{name}.{ty} rewind")


def test_errors_and_sizes():
    model = embergpt.Model(read(os.path.join(FIX, "a.q8_0.gguf")))
    info = model.info()
    p = embergpt._default_params()
    check(p.struct_size == ctypes.sizeof(embergpt.ContextParams), "params struct_size")
    check(embergpt.version() == re.search(r'^version = "(.*)"', read(os.path.join(ROOT, "Cargo.toml"))
                                          .decode(), re.M).group(1), "version")
    check(model.tensor_type("token_embd.weight") == 8, "tensor type")
    ctx = embergpt.Context(model, n_batch=4)

    def status_of(f):
        try:
            f()
        except embergpt.EmberError as e:
            return e.status
        return 0

    check(status_of(ctx.logits) == 75, "logits before eval -> NO_LOGITS")
    check(status_of(lambda: ctx.eval([info.n_vocab])) == 70, "token out of range")
    check(status_of(lambda: ctx.eval([])) == 73, "empty input")
    check(status_of(lambda: ctx.rewind(1)) == 72, "rewind past end")
    check(status_of(lambda: ctx.eval([0] * (info.n_ctx + 1))) == 71, "context full")
    check(status_of(lambda: ctx.eval_all([1, 2])) == 74, "eval_all without logits_all")
    check(status_of(lambda: embergpt.Context(model, n_ctx=info.n_ctx + 1)) == 51, "n_ctx too big")
    check(status_of(lambda: embergpt.Model(b"GGUF")) == 1, "truncated model")
    check(status_of(lambda: embergpt.Model(b"NOPE" * 8)) == 2, "bad magic")
    check(status_of(lambda: model.tensor_type("nope")) == 33, "missing tensor")
    check(embergpt.status_str(123456) == "unknown status", "unknown status")
    ctx.eval([1, 2, 3])
    check(len(ctx.logits()) == info.n_vocab and ctx.n_past == 3, "usable after errors")


def test_threads_share_a_model():
    """One model, one context per thread, run concurrently: same logits as alone."""
    model = embergpt.Model(read(os.path.join(FIX, "b.q4_0.gguf")))
    tokens = [5, 6, 7, 8, 9, 10, 11, 12]
    alone = embergpt.Context(model, n_batch=8)
    alone.eval(tokens)
    want = bits(alone.logits())
    results = [None] * 4

    def work(i):
        c = embergpt.Context(model, n_batch=8)
        for _ in range(5):
            c.reset()
            c.eval(tokens)
        results[i] = bits(c.logits())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(all(r == want for r in results), "threads sharing a model")


if __name__ == "__main__":
    test_golden_and_bit_identity()
    test_errors_and_sizes()
    test_threads_share_a_model()
    if failures:
        print(f"python: {len(failures)} checks failed")
        sys.exit(1)
    print("python: all checks passed")
