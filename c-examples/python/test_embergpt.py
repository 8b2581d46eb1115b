"""Tests of the C library through ctypes (run by `make -C c-examples test`).

Checks the C API's logits against the independent PyTorch references in
tests/fixtures/gpt2 (same criteria as tests/golden.rs), that batched and
token-by-token evaluation agree bit for bit, error statuses, struct sizes, and
that one model can serve contexts on several threads at once; then the text
functions: tokenization against tiktoken's ids (tests/fixtures/tokenizer/
hard_cases.json, including invalid UTF-8 and special tokens) with exact round
trips, generation against a manual sample/eval loop, stop strings, callback stops
and exceptions, and (with a text model) text equal to the C generate example's,
which tests/c_examples.rs checks against the Rust API.
"""
import subprocess
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


VOCAB = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "gpt2-vocab.gguf")


def test_tokenizer_against_tiktoken():
    tok = embergpt.Tokenizer.from_gguf(read(VOCAB))
    info = tok.info()
    check(info.n_vocab == 50257 and info.eos == 50256, "tokenizer info")
    cases = json.loads(read(os.path.join(ROOT, "tests", "fixtures", "tokenizer",
                                         "hard_cases.json")))["cases"]
    n = 0
    for c in cases:
        text = bytes.fromhex(c["text_hex"]) if "text_hex" in c else c["text"].encode()
        ids = tok.tokenize(text, c["special"])
        check(ids == c["ids"], f"tokenize {c['name']!r}")
        check(tok.detokenize(ids) == text, f"round trip {c['name']!r}")
        n += 1
    check(tok.piece(15496) == b"Hello" and tok.piece(50256) == b"<|endoftext|>", "pieces")
    check(tok.detokenize([15496, 50256], skip_special=True) == b"Hello", "skip special")
    try:
        tok.piece(50257)
        check(False, "piece out of range")
    except embergpt.EmberError as e:
        check(e.status == 70, "piece out of range status")
    print(f"python: {n} tokenizer cases equal tiktoken's ids")


def test_generate():
    """The fixture model (ids < 256: GPT-2 byte tokens) with the GPT-2 vocabulary."""
    model = embergpt.Model(read(os.path.join(FIX, "a.q8_0.gguf")))
    tok = embergpt.Tokenizer.from_gguf(read(VOCAB))
    ctx = embergpt.Context(model, n_batch=8)
    greedy = embergpt.Sampler(model, greedy=True)
    prompt = [5, 17, 42]
    # Manual loop: argmax, eval.
    ctx.eval(prompt)
    manual = []
    for _ in range(6):
        t = greedy.sample(ctx.logits())
        manual.append(t)
        ctx.eval([t])
    ctx.reset()
    seen = []
    r, text = embergpt.generate(ctx, tok, greedy, prompt, max_tokens=6,
                                on_token=lambda t, b: seen.append(t) and False)
    check(seen == manual and r["stop_reason"] == "budget" and r["n_sampled"] == 6,
          "generate == manual greedy loop")
    check(r["unevaluated"] == manual[-1] and ctx.n_past == 3 + 5, "last token unevaluated")
    check(text == tok.detokenize(manual), "generated text == detokenized ids")
    # A stop string taken from the middle of that text cuts it at its first occurrence.
    if len(text) >= 4:
        stop = text[2:4]
        ctx.reset()
        greedy.reset()
        r2, text2 = embergpt.generate(ctx, tok, greedy, prompt, max_tokens=6, stop=[stop])
        check(r2["stop_reason"] == "stop_string" and r2["stop_index"] == 0
              and text2 == text[:text.find(stop)], "stop string")
    # Seeded sampling is reproducible.
    outs = []
    for _ in range(2):
        ctx.reset()
        s = embergpt.Sampler(model, seed=1234)
        outs.append(embergpt.generate(ctx, tok, s, prompt, max_tokens=10)[1])
    check(outs[0] == outs[1], "seeded generation reproducible")
    # The callback stops; an exception in it reaches the caller.
    ctx.reset()
    r3, _ = embergpt.generate(ctx, tok, greedy, prompt, on_token=lambda t, b: True)
    check(r3["stop_reason"] == "callback" and r3["n_emitted"] == 1, "callback stop")

    def boom(t, b):
        raise ValueError("boom")
    ctx.reset()
    try:
        embergpt.generate(ctx, tok, greedy, prompt, on_token=boom)
        check(False, "exception propagates")
    except ValueError:
        pass
    # Too many stop strings: BAD_PARAMETER, nothing evaluated.
    ctx.reset()
    try:
        embergpt.generate(ctx, tok, greedy, prompt, stop=["x"] * 9)
        check(False, "too many stops")
    except embergpt.EmberError as e:
        check(e.status == 53 and ctx.n_past == 0, "too many stops status")


def test_text_model():
    """With a model that has a tokenizer: the same text as the C generate example."""
    path = os.environ.get("EMBERGPT_TEXT_MODEL", os.path.join(ROOT, "cli", "assets",
                                                              "shakespeare-q8_0.gguf"))
    exe = os.environ.get("EMBERGPT_GENERATE", os.path.join(ROOT, "c-examples", "build",
                                                           "generate"))
    if not os.path.exists(path) or not os.path.exists(exe):
        if os.environ.get("CI"):
            check(False, f"{path} or {exe} missing and CI is set")
        print(f"SKIPPED: python text-model test: {path} or {exe} not found")
        return
    model = embergpt.Model(read(path))
    info = model.info()
    tok = embergpt.Tokenizer(model)
    ctx = embergpt.Context(model, n_batch=min(32, info.n_ctx))
    sampler = embergpt.Sampler(model, seed=42)
    prompt = "ROMEO:"
    ids = tok.tokenize(prompt)
    check(tok.detokenize(ids) == prompt.encode(), "text model round trip")
    r, text = embergpt.generate(ctx, tok, sampler, ids, max_tokens=48)
    c_out = subprocess.run([exe, path, prompt, "48"], capture_output=True, check=True).stdout
    check(c_out == prompt.encode() + text + b"\n", "python generate == C generate")
    print(f"python: text model: {r['n_sampled']} tokens, {r['stop_reason']}: {text[:60]!r}...")
    bundled = os.path.join(ROOT, "cli", "assets", "shakespeare-q8_0.gguf")
    if not os.path.exists(bundled) or not os.path.samefile(path, bundled):
        print("python: not the bundled model: its golden checks are skipped")
        return
    # The bundled model against its independent references: tokenizer cases, and greedy
    # continuations computed by PyTorch on the dequantized Q8_0 weights.
    fix = os.path.join(ROOT, "tests", "fixtures", "default_model")
    for c in json.loads(read(os.path.join(fix, "tokenizer_cases.json")))["cases"]:
        check(tok.tokenize(c["text"]) == c["ids"], f"default-model tokenize {c['text']!r}")
        check(tok.detokenize(c["ids"]) == c["text"].encode(), f"round trip {c['text']!r}")
    greedy = embergpt.Sampler(model, greedy=True)
    for c in json.loads(read(os.path.join(fix, "golden.json")))["cases"]:
        ids = tok.tokenize(c["prompt"])
        check(ids == c["prompt_ids"], f"golden prompt ids {c['prompt']!r}")
        ctx.reset()
        greedy.reset()
        out = []
        r, text = embergpt.generate(ctx, tok, greedy, ids, max_tokens=c["n_new_tokens"],
                                    stop_at_eos=False,
                                    on_token=lambda t, b: t != embergpt.NO_TOKEN and out.append(t))
        check(out == c["greedy_q8_0_dequant"], f"golden greedy ids {c['prompt']!r}")
        check(text.decode("utf-8", "replace") == c["greedy_q8_0_dequant_text"],
              f"golden greedy text {c['prompt']!r}")
    print("python: default model: tokenizer cases and PyTorch greedy continuations match")


if __name__ == "__main__":
    test_golden_and_bit_identity()
    test_errors_and_sizes()
    test_threads_share_a_model()
    test_tokenizer_against_tiktoken()
    test_generate()
    test_text_model()
    if failures:
        print(f"python: {len(failures)} checks failed")
        sys.exit(1)
    print("python: all checks passed")
