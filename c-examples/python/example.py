"""Greedy decoding on token ids through the C library (ctypes).

    EMBERGPT_LIB=target/capi/release/libembergpt.so python3 c-examples/python/example.py MODEL [STEPS]
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import embergpt  # noqa: E402


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/gpt2/a.q8_0.gguf"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    with open(path, "rb") as f:
        model = embergpt.Model(f.read())
    info = model.info()
    ctx = embergpt.Context(model, n_batch=min(32, info.n_ctx))
    print(f"python: embergpt {embergpt.version()}, {info.architecture.decode()} "
          f"n_vocab={info.n_vocab} weights={embergpt.type_name(info.weight_type)} "
          f"arena={ctx.arena_size} backend={ctx.backend}")
    prompt = [1 % info.n_vocab, 2 % info.n_vocab, 3 % info.n_vocab]
    ctx.eval(prompt)
    out = []
    for _ in range(steps):
        t = embergpt.argmax(ctx.logits())
        out.append(t)
        ctx.eval([t])
    print("generated: " + " ".join(str(t) for t in out))


if __name__ == "__main__":
    main()
