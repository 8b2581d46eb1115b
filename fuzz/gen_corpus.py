#!/usr/bin/env python3
"""Write the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

Seeds are derived from tests/fixtures (nothing binary is committed): the small
GPT-2 fixtures whole, a few hand-built GGUFs that use every metadata value type,
nested arrays, an explicit alignment and an unsorted tensor directory, and, for
the structured targets, byte strings in their input layouts. Stdlib only.
Run: python3 fuzz/gen_corpus.py  (idempotent; existing corpus files are kept).
"""
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures", "gpt2")
OUT = os.path.join(ROOT, "fuzz", "corpus")


def s(b):
    if isinstance(b, str):
        b = b.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, ty, payload):
    return s(key) + struct.pack("<I", ty) + payload


def arr(elem_ty, items):
    return struct.pack("<IQ", elem_ty, len(items)) + b"".join(items)


def gguf(kvs, tensors, align=32, version=3):
    """tensors: list of (name, dims, type, offset, data_bytes_len)."""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    for name, dims, ty, off, _ in tensors:
        out += s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ty, off)
    out += b"\0" * ((-len(out)) % align)
    end = max((off + n for _, _, _, off, n in tensors), default=0)
    return out + bytes((i * 37) & 0xFF for i in range(end))


def synthetic():
    every = [
        kv("u8", 0, b"\x07"), kv("i8", 1, b"\xf9"), kv("u16", 2, struct.pack("<H", 513)),
        kv("i16", 3, struct.pack("<h", -2)), kv("u32", 4, struct.pack("<I", 70000)),
        kv("i32", 5, struct.pack("<i", -70000)), kv("f32", 6, struct.pack("<f", 1.5)),
        kv("bool", 7, b"\x01"), kv("str", 8, s("hello")), kv("u64", 10, struct.pack("<Q", 1 << 40)),
        kv("i64", 11, struct.pack("<q", -(1 << 40))), kv("f64", 12, struct.pack("<d", 0.25)),
        kv("arr.u32", 9, arr(4, [struct.pack("<I", i) for i in range(5)])),
        kv("arr.str", 9, arr(8, [s("a"), s("bc"), s("")])),
        kv("arr.bool", 9, arr(7, [b"\x00", b"\x01"])),
        kv("arr.nested", 9, arr(9, [arr(9, [arr(4, [struct.pack("<I", 1)])]), arr(8, [s("x")])])),
        kv("arr.empty", 9, arr(12, [])),
        kv("general.alignment", 4, struct.pack("<I", 64)),
    ]
    tensors = [
        ("w.f32", [4, 2], 0, 0, 32),
        ("w.q8_0", [32, 2], 8, 64, 68),
        ("w.q4_k", [256], 12, 192, 144),
        ("w.f16.4d", [2, 1, 2, 2], 1, 384, 16),
    ]
    yield "every_type.gguf", gguf(every, tensors, align=64)
    unsorted = [tensors[2], tensors[0], tensors[3], tensors[1]]
    yield "unsorted.gguf", gguf(every[:3] + every[-1:], unsorted, align=64)
    yield "empty.gguf", gguf([], [])
    yield "v2_kv_only.gguf", gguf(every[:6], [], version=2)


def write(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    fx = {n: open(os.path.join(FIX, n), "rb").read()
          for n in ["a.q4_0.gguf", "c.q4_0.gguf", "a.q8_0.gguf"]}
    for n, b in fx.items():
        write("gguf_parse", n, b)
    for n, b in synthetic():
        write("gguf_parse", n, b)

    # model_eval: [fixture, ctx byte, n_patches, patches..., tokens...]
    for f in range(5):
        for ctxb in (0x00, 0x07, 0x4d, 0x7f):
            write("model_eval", f"fx{f}_c{ctxb:02x}", bytes([f, ctxb, 0]) + bytes(range(3, 11)))
        # One structural patch: the u64 at offset 8 (tensor count), unchanged value class.
        write("model_eval", f"fx{f}_patch", bytes([f, 0x0f, 1, 2, 8, 0, 0, 28, 0, 0, 0, 1, 2, 3]))

    # arena_context: [model, n_ctx u16, n_batch u16, flags, shift u16, len i32, token]
    seeds = [
        (0, 0, 32, 0, 0, 0), (0, 8, 4, 1, 3, -1), (1, 48, 48, 1, 17, 0), (2, 1, 1, 0, 63, -64),
        (0, 33, 4, 0, 0, 0), (1, 4, 0, 0, 0, 0), (2, 4, 8, 0, 0, 0), (0, 4, 2, 0x0a, 5, 3),
    ]
    for i, (m, nc, nb, fl, sh, ln) in enumerate(seeds):
        write("arena_context", f"seed{i}",
              struct.pack("<BHHBHiB", m, nc, nb, fl, sh, ln, 7))

    # tokenizer: [flags (bit 0 BPE vocabulary, bit 1 id mode, bit 2 the SentencePiece
    # vocabulary), text or 3-byte ids]
    texts = [b"Hello world<|endoftext|> and more", b"\xff\xfe caf\xc3\xa9 \xe2\x82 \xf0\x9f\x98\x80!",
             b"ROMEO:\nBut soft, what light through yonder window breaks?\n\n",
             b"   12345 it's  they'll\t\r\n", b"<|endoftext|><|endoftext|x",
             b"<s>the \xe6\x97\xa5\xe6\x9c\xac in  and</s> \xe2\x96\x81x"]
    for t in (0, 1, 4):
        for i, text in enumerate(texts):
            write("tokenizer", f"t{t}_text{i}", bytes([t]) + text)
        write("tokenizer", f"t{t}_ids", bytes([t | 2, 1, 0, 0, 0xff, 0xff, 0x7f, 5, 0, 0xff, 10, 2, 0]))

    # sampler: [n_vocab u16, temp, top_k u16, top_p, min_p, rep, pres, freq (floats: a
    # byte < 0x80 picks a boundary value), last_n, seed u32, flag, n_accept, accepts u32..., logits]
    sam = [
        bytes([8, 0, 0x03, 40, 0, 0x0e, 0x0d, 0x05, 0x03, 0x03, 10, 1, 0, 0, 0, 1, 2]) + bytes([1, 0, 0, 0, 2, 0, 0, 0]) + bytes([0x81, 0x90, 0x85, 0x90, 0x00, 0x02]),
        bytes([0, 2, 0x08, 0, 1, 0x05, 0x03, 0x07, 0x07, 0x07, 16, 9, 9, 9, 9, 1, 0]) + bytes([0x85, 0x86, 0x87]),
        bytes([5, 0, 0x03, 0, 0, 0x05, 0x03, 0x05, 0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0x00]),
        bytes([44, 1, 0x8c, 0, 1, 0x0e, 0x0d, 0x08, 0x87, 0x88, 32, 3, 0, 0, 0, 1, 3]) + bytes(12) + bytes(range(0x80, 0xc0)),
    ]
    for i, b in enumerate(sam):
        write("sampler", f"seed{i}", b)

    # capi_sequence: [ctx byte, batch byte, sampler byte, seed, ops...] (see checks.rs)
    ops = bytes([0, 2, 3, 1, 2, 3, 1, 2, 2, 4, 5, 3, 0, 0, 0, 2, 0, 1,
                 4, 0, 5]) + b"hello" + bytes([1, 9, 0, 3, 1, 1]) + b"e" + bytes([0, 2, 7, 9, 2,
                 10, 0, 2, 0, 0, 1, 3, 1, 0, 5, 1, 1, 0, 6, 1, 1, 7, 0x10, 0, 0, 0, 0,
                 6, 0x60, 1, 0, 4, 5, 0x40, 3, 0x10, 2, 3, 11, 0x08, 12, 0, 13, 3, 0, 0, 0, 0, 7])
    for i, head in enumerate([bytes([0x1b, 0x03, 0, 0]), bytes([0x05, 0x81, 1, 3]), bytes([0x0b, 0xc2, 3, 0x05, 0x0e, 0x00, 0x05, 40, 8, 1])]):
        write("capi_sequence", f"seed{i}", head + ops)
        write("capi_sequence", f"gen{i}", head + bytes([9, 0, 0, 0, 0, 5, 1, 2, 3, 4, 5, 2, 9, 0, 4, 0, 0x20, 0]))
    print("corpus written to", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
