"""Generation through the C library (ctypes).

    EMBERGPT_LIB=target/capi/release/libembergpt.so python3 c-examples/python/example.py MODEL [STEPS] [PROMPT]

A model with a tokenizer (the bundled cli/assets/shakespeare-q8_0.gguf) generates
text from PROMPT, streamed as it comes (seed 42); a model without one (the test
fixtures) decodes greedily on token ids.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import embergpt  # noqa: E402


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/gpt2/a.q8_0.gguf"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    prompt = sys.argv[3] if len(sys.argv) > 3 else "ROMEO:"
    with open(path, "rb") as f:
        model = embergpt.Model(f.read())
    info = model.info()
    ctx = embergpt.Context(model, n_batch=min(32, info.n_ctx))
    print(f"python: embergpt {embergpt.version()}, {info.architecture.decode()} "
          f"n_vocab={info.n_vocab} weights={embergpt.type_name(info.weight_type)} "
          f"arena={ctx.arena_size} backend={ctx.backend}")
    try:
        tok = embergpt.Tokenizer(model)
    except embergpt.EmberError as e:
        if e.status != 91:  # NO_TOKENIZER
            raise
        tok = None
    if tok is not None:
        sampler = embergpt.Sampler(model, seed=42)
        out = sys.stdout.buffer
        out.write(prompt.encode())
        r, _ = embergpt.generate(ctx, tok, sampler, tok.tokenize(prompt), max_tokens=steps,
                                 on_token=lambda t, b: out.write(b) and out.flush() and False)
        out.write(b"\n")
        print(f"[{r['stop_reason']} after {r['n_sampled']} tokens]")
        return
    prompt_ids = [1 % info.n_vocab, 2 % info.n_vocab, 3 % info.n_vocab]
    ctx.eval(prompt_ids)
    out = []
    for _ in range(steps):
        t = embergpt.argmax(ctx.logits())
        out.append(t)
        ctx.eval([t])
    print("generated: " + " ".join(str(t) for t in out))


if __name__ == "__main__":
    main()
