#!/usr/bin/env python3
"""Write GPT-2 124M-shaped GGUF files with random weights, for benchmarks only.

Shapes are GPT-2 small's (d=768, 12 layers, 12 heads, ff=3072, vocab 50257,
context 1024, tied output); weights are N(0, 0.02), norms 1, biases 0. The
matrices are stored as Q8_0 / Q4_0 (llama.cpp's `gpt2` layout, the same one
tests/scripts/gen_gpt2_fixtures.py writes), everything else F32. A byte-level
GPT-2 tokenizer table is not included: embergpt's benches feed token ids.

usage: make_bench_gpt2.py OUT_DIR [q8_0 q4_0 ...]
writes OUT_DIR/gpt2-124m.<type>.gguf (skips files that already exist)

`write(path, name, vocab=True)` adds a synthetic byte-level BPE vocabulary
(256 byte tokens, then two-byte tokens with their merges) so that llama.cpp,
which insists on a tokenizer, loads the same weights (bench_vs_llamacpp.py).
"""
import sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT

E, L, H, FF, V, C = 768, 12, 12, 3072, 50257, 1024
TYPES = {"q8_0": (QT.Q8_0, 7), "q4_0": (QT.Q4_0, 2), "q4_1": (QT.Q4_1, 3), "f16": (QT.F16, 1)}


def tensors(rng):
    n = lambda *s: (rng.standard_normal(s, dtype=np.float32) * 0.02)
    yield "token_embd.weight", n(V, E), True
    yield "position_embd.weight", n(C, E), False
    for i in range(L):
        b = f"blk.{i}."
        yield b + "attn_norm.weight", np.ones(E, np.float32), False
        yield b + "attn_norm.bias", np.zeros(E, np.float32), False
        yield b + "attn_qkv.weight", n(3 * E, E), True
        yield b + "attn_qkv.bias", np.zeros(3 * E, np.float32), False
        yield b + "attn_output.weight", n(E, E), True
        yield b + "attn_output.bias", np.zeros(E, np.float32), False
        yield b + "ffn_norm.weight", np.ones(E, np.float32), False
        yield b + "ffn_norm.bias", np.zeros(E, np.float32), False
        yield b + "ffn_up.weight", n(FF, E), True
        yield b + "ffn_up.bias", np.zeros(FF, np.float32), False
        yield b + "ffn_down.weight", n(E, FF), True
        yield b + "ffn_down.bias", np.zeros(E, np.float32), False
    yield "output_norm.weight", np.ones(E, np.float32), False
    yield "output_norm.bias", np.zeros(E, np.float32), False


def bytes_to_unicode():
    """GPT-2's byte -> printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def add_vocab(w):
    chars = bytes_to_unicode()
    tokens = list(chars)
    merges = []
    for a in chars:
        for b in chars:
            if len(tokens) == V:
                break
            tokens.append(a + b)
            merges.append(f"{a} {b}")
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_types([1] * V)
    w.add_token_merges(merges)
    w.add_bos_token_id(V - 1)
    w.add_eos_token_id(V - 1)


def write(path, name, vocab=False):
    qt, ftype = TYPES[name]
    w = gguf.GGUFWriter(str(path), "gpt2")
    w.add_name("bench-gpt2-124m-random")
    w.add_context_length(C)
    w.add_embedding_length(E)
    w.add_feed_forward_length(FF)
    w.add_block_count(L)
    w.add_head_count(H)
    w.add_layer_norm_eps(1e-5)
    w.add_file_type(ftype)
    if vocab:
        add_vocab(w)
    rng = np.random.default_rng(124)
    for tname, arr, typed in tensors(rng):
        if typed and qt == QT.F16:
            w.add_tensor(tname, arr.astype(np.float16))
        elif typed:
            w.add_tensor(tname, gguf.quants.quantize(arr, qt), raw_dtype=qt)
        else:
            w.add_tensor(tname, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for name in sys.argv[2:] or ["q8_0", "q4_0"]:
        path = out / f"gpt2-124m.{name}.gguf"
        if path.exists():
            print(f"{path} exists")
            continue
        write(path, name)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
