#!/usr/bin/env python3
"""Generate tests/fixtures/tokenizer/llama_cases.json: SentencePiece ("llama") token ids from llama.cpp.

Reference: llama.cpp's own tokenizer (``llm_tokenizer_spm``, via ctypes on ``libllama.so``:
``llama_model_load_from_file`` with ``vocab_only``, ``llama_tokenize(add_special=False,
parse_special=...)``, ``llama_detokenize(remove_special=False, unparse_special=True)``) on the
stories260K GGUF that ``embergpt convert`` writes (tok512: 512 pieces with scores, ``<0xXX>``
byte tokens, ``<unk>``/``<s>``/``</s>``).

Cross-check: Hugging Face transformers' GGUF loader
(``AutoTokenizer.from_pretrained(dir, gguf_file=...)``, a Llama tokenizer built from the same
tokens and scores) on every valid-UTF-8 case without ``parse_special``; its ids are stored as
``hf_ids`` and the disagreements are printed. They are expected (at generation: 37 of 442, all of
these two kinds): transformers' Metaspace does not add the prefix ``▁`` when the text already
starts with a space (llama.cpp always does), and transformers always matches the text of
``<s>``/``</s>``/``<unk>`` as those tokens (llama.cpp only with ``parse_special``).

Cases (each ``{"name", "parse_special", "text" | "hex", ["repeat"], "ids", ["decoded_hex"],
["hf_agrees", "hf_ids"]}``: the input is ``text`` (UTF-8) or ``hex`` (other bytes), repeated ``repeat`` times;
``decoded_hex`` is llama.cpp's detokenization of ``ids`` when it differs from the input;
``hf_ids`` are transformers' ids when they differ from llama.cpp's):
* 300 lines of ../shared/data/tinyshakespeare.txt, and 40 paragraphs of 10 lines;
* stories-like English sentences;
* 200 random strings (fixed seed) over an alphabet of hard pieces (spaces, ``▁``, CJK, emoji,
  invalid bytes, special-token text), with and without ``parse_special``;
* hard cases: empty, leading/trailing/multiple spaces, newlines, tabs, CJK, emoji (byte
  fallback), invalid UTF-8, very long words and runs (thousands of bytes), special-token
  text with and without ``parse_special``.

Usage:
  cargo run --release -p embergpt-cli -- convert ../shared/data/stories260K.bin \\
      --tokenizer ../shared/data/tok512.bin -o /tmp/stories260K.gguf
  LLAMA_LIB=/path/to/llama.cpp/build/bin python3 tests/scripts/gen_llama_tokenizer_fixture.py \\
      /tmp/stories260K.gguf
(``LLAMA_LIB`` is the directory of ``libllama.so``; the ctypes bindings come from a
llama-cpp-python source tree, ``LLAMA_CPP_PY``, default its parent ``../../..``.)
"""

import ctypes
import json
import os
import shutil
import sys
import tempfile
import types

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEXT = os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare.txt")
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "llama_cases.json")
LIB = os.environ.get(
    "LLAMA_LIB", "/tmp/lcppsrc/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin"
)
PY = os.environ.get("LLAMA_CPP_PY", os.path.abspath(os.path.join(LIB, "..", "..", "..", "..")))


def load_llama(path):
    os.environ["LLAMA_CPP_LIB_PATH"] = LIB
    pkg = types.ModuleType("llama_cpp")  # skip the package __init__ (it needs extra deps)
    pkg.__path__ = [os.path.join(PY, "llama_cpp")]
    sys.modules["llama_cpp"] = pkg
    import llama_cpp.llama_cpp as L  # noqa: E402

    L.llama_backend_init()
    p = L.llama_model_default_params()
    p.vocab_only = True
    m = L.llama_model_load_from_file(path.encode(), p)
    assert m, "llama.cpp could not load " + path
    v = L.llama_model_get_vocab(m)

    def tokenize(b, parse_special):
        n = len(b) + 16
        buf = (L.llama_token * n)()
        k = L.llama_tokenize(v, b, len(b), buf, n, False, parse_special)
        assert k >= 0, k
        return list(buf[:k])

    def detokenize(ids):
        arr = (L.llama_token * max(1, len(ids)))(*ids)
        cap = 8 * len(ids) + 64
        out = ctypes.create_string_buffer(cap)
        k = L.llama_detokenize(v, arr, len(ids), out, cap, False, True)
        assert k >= 0, k
        return out.raw[:k]

    return tokenize, detokenize


def load_hf(path):
    from transformers import AutoTokenizer

    d = tempfile.mkdtemp()
    shutil.copy(path, os.path.join(d, "m.gguf"))
    return AutoTokenizer.from_pretrained(d, gguf_file="m.gguf")


STORIES = [
    "Once upon a time, there was a little girl named Lily.",
    "She loved to play outside in the park with her friends.",
    'One day, Tim saw a big red ball. "Can I play?" he asked.',
    "The cat was happy. It jumped and ran and played all day!",
    "Mom said, \"Don't forget your hat, it's cold outside.\"",
    "They were best friends forever. The end.",
    "Ben and Sue went to the store to buy some milk and eggs.",
    "The sun was shining and the birds were singing in the trees.",
]

HARD = [
    ("empty", b""),
    ("space", b" "),
    ("two spaces", b"  "),
    ("spaces around", b"  a  b "),
    ("trailing spaces", b"Hello world   "),
    ("leading spaces", b"   Hello"),
    ("newline", b"\n"),
    ("newlines", b"Hello\n\nworld\n"),
    ("crlf", b"line one\r\nline two\r\n"),
    ("tabs", b"a\tb\t\tc"),
    ("punctuation", b"Hello, world! (Yes.) 'quoted' \"double\" - dash; semi: colon?"),
    ("digits", b"In 1984 there were 3.14159 apples and 1,000,000 pears."),
    ("accents", "café naïve résumé Ångström".encode()),
    ("cjk", "日本語のテキストと中文".encode()),
    ("emoji", "Hi 😀👍🏽 family: 👨‍👩‍👧".encode()),
    ("mixed unicode", "ΑΒΓ абв ℕ∀∃ ﬁ ½".encode()),
    ("lower one eighth block", "a\u2581b \u2581".encode()),
    ("nul and controls", b"a\x00b\x01\x7f"),
    ("invalid lone bytes", b"\xff\xfe abc \x80"),
    ("invalid truncated", b"ab\xe2\x82 cd\xf0\x9f"),
    ("invalid overlong", b"\xc0\xaf x \xed\xa0\x80"),
    ("lead before space", b"\xc3 x"),
    ("byte token text", b"<0x41> <0xZZ>"),
    ("long word", (b"Supercalifragilisticexpialidocious", 20)),
    ("letters 5000", (b"a", 5000)),
    ("letters the x1000", (b"the", 1000)),
    ("spaces 3000", (b" ", 3000)),
    ("digits 2000", (b"0123456789", 200)),
    ("cjk 1000", ("語".encode(), 1000)),
    ("emoji 500", ("😀".encode(), 500)),
    ("words 800", (b"once upon a time ", 800)),
]

SPECIAL = [
    ("bos text", b"<s>Hello"),
    ("specials", b"<s>hi</s>x"),
    ("special in middle", b"Hello <s> world</s>"),
    ("adjacent specials", b"<s></s><s>"),
    ("unk text", b"a<unk>b"),
    ("partial special", b"<s hi </s"),
]


def random_cases(n):
    """Short random byte strings (fixed seed) from an alphabet of hard pieces."""
    import random

    rng = random.Random(20261129)
    alphabet = [b"a", b"e", b"t", b"h", b"o", b"n", b"s", b" ", b" ", b"  ", b"\n", b"\t", b".", b",",
                "▁".encode(), "語".encode(), "é".encode(), "😀".encode(), b"\x80", b"\xff", b"\xc3",
                b"\xe2", b"<s>", b"</s>", b"<unk>", b"<", b">", b"0", b"7", b"The", b" the", b"ing"]
    out = []
    for i in range(n):
        k = rng.randrange(0, 24)
        out.append(("random %d" % i, b"".join(rng.choice(alphabet) for _ in range(k))))
    return out


def text_fields(b, rep):
    """The case's text: ``text`` (UTF-8) or ``hex``, or ``repeat`` times the unit."""
    if rep is not None:
        return {"repeat": rep[1], **text_fields(rep[0], None)}
    try:
        return {"text": b.decode("utf-8")}
    except UnicodeDecodeError:
        return {"hex": b.hex()}


def main():
    gguf_path = sys.argv[1]
    tokenize, detokenize = load_llama(gguf_path)
    hf = load_hf(gguf_path)
    with open(TEXT, encoding="utf-8") as f:
        lines = [ln for ln in f.read().split("\n")]
    cases = []
    for i, ln in enumerate(lines[:300]):
        cases.append(("shakespeare line %d" % i, ln.encode()))
    for i in range(40):
        cases.append(("shakespeare paragraph %d" % i, "\n".join(lines[400 + 10 * i : 410 + 10 * i]).encode()))
    for i, s in enumerate(STORIES):
        cases.append(("story %d" % i, s.encode()))
    cases += HARD
    cases += random_cases(200)
    out = []
    n_hf = n_hf_agree = 0
    for name, b in cases:
        rep = None
        if isinstance(b, tuple):
            rep = b
            b = b[0] * b[1]
        for parse_special in (False, True):
            ids = tokenize(b, parse_special)
            if parse_special and ids == out[-1]["ids"]:
                continue  # the same without specials in the text
            c = {"name": name, "parse_special": parse_special}
            c.update(text_fields(b, rep))
            c["ids"] = ids
            dec = detokenize(ids)
            if dec != b:
                c["decoded_hex"] = dec.hex()
            if not parse_special:
                try:
                    text = b.decode("utf-8")
                except UnicodeDecodeError:
                    text = None
                if text is not None:
                    h = hf.encode(text, add_special_tokens=False)
                    n_hf += 1
                    c["hf_agrees"] = h == ids
                    if h == ids:
                        n_hf_agree += 1
                    else:
                        c["hf_ids"] = h
                        print("HF disagrees: %s %r\n  llama.cpp %s\n  hf        %s" % (name, text[:40], ids[:12], h[:12]))
            out.append(c)
    for name, b in SPECIAL:
        for parse_special in (False, True):
            ids = tokenize(b, parse_special)
            c = {"name": name, "parse_special": parse_special}
            c.update(text_fields(b, None))
            c["ids"] = ids
            dec = detokenize(ids)
            if dec != b:
                c["decoded_hex"] = dec.hex()
            out.append(c)
    doc = {
        "reference": "llama.cpp llm_tokenizer_spm (libllama via ctypes), add_special=false",
        "gguf": "embergpt convert stories260K.bin --tokenizer tok512.bin",
        "hf_checked": n_hf,
        "hf_agree": n_hf_agree,
        "cases": out,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print("wrote %s: %d cases; transformers agrees on %d of %d" % (OUT, len(out), n_hf_agree, n_hf))


if __name__ == "__main__":
    main()
