#!/usr/bin/env python3
"""Generate tests/fixtures/smollm2/tokenizer.json: SmolLM2 token ids from Hugging Face `tokenizers`.

Reference: a `tokenizers.Tokenizer` rebuilt from the SmolLM2-135M-Instruct GGUF's own vocabulary
and merges (``tokenizer.ggml.tokens`` / ``merges`` / ``token_type``) with the pipeline of SmolLM2's
published ``tokenizer.json``: no normalizer, pre-tokenizer
``Sequence[Digits(individual_digits=True), ByteLevel(add_prefix_space=False, use_regex=True)]``,
BPE model (no dropout, no unk, no byte fallback), control tokens (type 3) added as special tokens.
As a cross-check, ``transformers.AutoTokenizer.from_pretrained(..., gguf_file=...)`` is run too
and its disagreements are printed (transformers' GGUF converter does not rebuild the Digits step,
so it is not the reference for numbers).

Cases (each ``{"name", "text", "parse_special", "ids"}``):
* the first 200 lines of ../shared/data/tinyshakespeare.txt as one text, and line by line;
* hand-made hard cases: digits, numbers in text, white space before digits, unicode, emoji,
  contractions, long runs; chat markup with ``parse_special`` true (specials become their ids)
  and false (their text is ordinary BPE; the reference then has no added tokens).

Usage: python3 tests/scripts/gen_smollm2_tokenizer_fixture.py
  (needs .models/SmolLM2-135M-Instruct.Q4_1.gguf: tests/scripts/fetch_smollm2.sh; offline).
"""

import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gguf  # noqa: E402
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, ".models", "SmolLM2-135M-Instruct.Q4_1.gguf")
TEXT = os.path.join(ROOT, "..", "shared", "data", "tinyshakespeare.txt")
OUT = os.path.join(ROOT, "tests", "fixtures", "smollm2", "tokenizer.json")


def field_strings(r, key):
    return [str(x) for x in r.fields[key].contents()]


def build(with_specials):
    r = gguf.GGUFReader(MODEL)
    assert r.fields["tokenizer.ggml.pre"].contents() == "smollm"
    tokens = field_strings(r, "tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in field_strings(r, "tokenizer.ggml.merges")]
    types = list(r.fields["tokenizer.ggml.token_type"].contents())
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    if with_specials:
        tok.add_special_tokens(
            [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3]
        )
    return tok


def cases():
    with open(TEXT, encoding="utf-8") as f:
        lines = f.read().split("\n")[:200]
    out = [("shakespeare_200_lines", "\n".join(lines) + "\n", False)]
    out += [(f"line_{i}", l, False) for i, l in enumerate(lines) if l]
    hard = [
        ("digits", "12345"),
        ("digits_long", "3141592653589793238462643383279"),
        ("numbers_in_text", "In 1999 there were 42 apples, 3.14 pies and 1,000,000 reasons."),
        ("space_before_digits", "a  1  22   333\t4\n5 \n 6"),
        ("trailing_digit_space", "x1 "),
        ("unicode_numbers", "x²½ Ⅷ ٣٤ ¾"),
        ("unicode_words", "Ünïcödé wörds, Ελληνικά, русский, 日本語のテキスト, 한국어."),
        ("emoji", "hi 😀😀 there 👍🏽!"),
        ("contractions", "I'm sure they'll've said it's THEY'RE 'tis"),
        ("whitespace", "  leading\n\n\ntrailing   \t\r\n  "),
        ("code", "def f(x):\n    return x**2 + 10  # square\n"),
        ("long_run", "a" * 3000 + " " * 500 + "9" * 50),
        ("markup_plain", "<|im_start|>user\nHi<|im_end|>\n<|endoftext|>"),
    ]
    out += [(n, t, False) for n, t in hard]
    special = [
        ("chat_markup", "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"),
        ("specials_adjacent", "<|im_end|><|im_start|><|endoftext|>x<|im_end|>12"),
        ("specials_in_words", "abc<|im_start|>def <|endoftext|> 7<filename>a.rs<gh_stars>10"),
        ("special_prefix_only", "<|im_sta <|im_end"),
    ]
    out += [(n, t, True) for n, t in special]
    return out


def main():
    if not os.path.exists(MODEL):
        sys.exit(f"{MODEL} missing: run tests/scripts/fetch_smollm2.sh")
    plain, with_sp = build(False), build(True)
    result = []
    for name, text, ps in cases():
        tok = with_sp if ps else plain
        ids = tok.encode(text, add_special_tokens=False).ids
        assert tok.decode(ids, skip_special_tokens=False) == text, name
        result.append({"name": name, "text": text, "parse_special": ps, "ids": ids})
    try:
        from transformers import AutoTokenizer

        hf = AutoTokenizer.from_pretrained(os.path.dirname(MODEL), gguf_file=os.path.basename(MODEL))
        bad = [c["name"] for c in result if c["parse_special"] and hf.encode(c["text"], add_special_tokens=False) != c["ids"]]
        bad += [c["name"] for c in result if not c["parse_special"] and "<|" not in c["text"] and hf.encode(c["text"], add_special_tokens=False) != c["ids"]]
        print(f"transformers (gguf_file) disagrees on {len(bad)} cases: {bad}")
    except Exception as e:  # informational only
        print(f"transformers cross-check not run: {e}")
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump({"model": os.path.basename(MODEL), "reference": f"tokenizers", "cases": result}, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}: {len(result)} cases, {sum(len(c['ids']) for c in result)} ids")


if __name__ == "__main__":
    main()
