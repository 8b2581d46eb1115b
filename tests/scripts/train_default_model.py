#!/usr/bin/env python3
"""Train embergpt's bundled default model and export it as a Q8_0 GGUF file.

What it does
------------
1. Reads ``<repo>/../shared/data/tinyshakespeare.txt`` (resolved relative to this
   script's location). The first 90 % of the characters are the training split, the
   last 10 % the validation split (the file is pure ASCII, so characters == bytes).
2. Trains a GPT-2 style byte-level BPE vocabulary of 512 tokens on the training split:
     * ids 0..255 are the 256 byte tokens: token id ``b`` is byte ``b`` and its string
       is ``bytes_to_unicode()[b]`` (GPT-2's byte -> printable unicode mapping).
       NOTE: this is *not* the order of GPT-2's own encoder.json (which lists the
       printable bytes first); we deliberately use id == byte value.
     * ids 256..510 are 255 merges learnt greedily on the pre-token counts of the
       training split (GPT-2 pre-tokenizer regex, applied with the ``regex`` module).
       At every step the most frequent adjacent pair is merged; ties are broken by
       the lexicographically smallest pair ``(left, right)`` compared as Python
       strings (unicode code points of the byte-level strings, left first, then
       right). A pair whose concatenation already is a token is never chosen (it
       would create a duplicate token string); the script reports how many such pairs
       were skipped (0 for this corpus). The new token's string is ``left + right``
       and its id is ``256 + rank``.
     * id 511 is the control token ``<|endoftext|>`` (bos == eos == 511).
   The encoder is GPT-2's: pre-tokenize with the regex, map bytes to the unicode
   alphabet, then inside each pre-token repeatedly merge the adjacent pair of lowest
   merge rank (all its occurrences, left to right), exactly like GPT-2's ``bpe()``.
   decode(encode(x)) == x is checked on the validation text, and the encoder is
   cross-checked against ``transformers.GPT2Tokenizer`` loaded from the same
   vocab/merges (the reference GPT-2 implementation).
3. Trains ``transformers.GPT2LMHeadModel`` (vocab 512, ctx 256, d=128, 4 layers,
   4 heads, gelu_new, tied embeddings, no dropout; ~0.9 M parameters) with AdamW,
   linear warm-up + cosine decay, on random 256-token windows of the training split.
   The number of steps is fixed (``--steps``), never derived from the wall clock, so
   the run is deterministic for a given seed.
4. Exports GGUF v3 in llama.cpp's ``gpt2`` layout to ``cli/assets/shakespeare-q8_0.gguf``
   (matrices Q8_0, position embeddings / norms / biases F32, no ``output.weight``
   because the LM head is tied to ``token_embd``), reads it back with
   ``gguf.GGUFReader`` and checks every key and tensor.
5. Writes fixtures into ``tests/fixtures/default_model/``:
     * ``golden.json``: prompt ids and 40-token greedy continuations (argmax, ties ->
       lowest id, float32, full recompute, no KV cache) from the fp32 trained weights
       and from the weights dequantized from the Q8_0 file;
     * ``tokenizer_cases.json``: encoder test cases (30 validation lines + odd strings);
     * ``TRAINING.md``: a summary of the run, including a 300-character sample
       (temperature 0.8, torch.Generator seeded with 1234, prompt "ROMEO:").

How to run
----------
    python3 tests/scripts/train_default_model.py            # full run (~7 min on 2 idle cores)
    python3 tests/scripts/train_default_model.py --steps 20 --out-dir /tmp/x   # smoke test

Requirements: ``pip install torch transformers safetensors gguf tiktoken numpy regex``.

Determinism
-----------
Every source of randomness is seeded (``random``, ``numpy``, ``torch``), the thread
count is pinned to 2 and ``torch.use_deterministic_algorithms(True)`` is set, so two
runs on the same machine with the same package versions produce bit-identical files.
Float32 CPU training can still differ across machines, CPU instruction sets (the
BLAS/oneDNN kernels pick different code paths), thread counts and torch versions, so
the weights (and therefore the GGUF, golden continuations and sample) are only
guaranteed reproducible on the same setup. The tokenizer and all tokenizer fixtures
are pure Python and fully reproducible everywhere.
"""

import argparse
import hashlib
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from collections import Counter

import numpy as np
import regex as re

SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(SCRIPT_DIR, "..", ".."))
DATA_PATH = os.path.abspath(os.path.join(REPO_ROOT, "..", "shared", "data", "tinyshakespeare.txt"))

GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
EOT = "<|endoftext|>"
N_BYTES = 256
N_MERGES = 255
VOCAB_SIZE = N_BYTES + N_MERGES + 1  # 512
EOT_ID = VOCAB_SIZE - 1  # 511

# Model / training hyper-parameters.
N_CTX = 256
N_EMBD = 128
N_LAYER = 4
N_HEAD = 4
N_FF = 4 * N_EMBD
LN_EPS = 1e-5
SEED = 1337
DEFAULT_STEPS = 700  # ~0.55 s/step on 2 idle cores -> ~7 min (far slower on a loaded machine)
BATCH_SIZE = 32
SEQ_LEN = 256  # = n_ctx, so every position embedding is trained
PEAK_LR = 3e-3
MIN_LR = 3e-4
WARMUP_STEPS = 60
WEIGHT_DECAY = 0.1
GRAD_CLIP = 1.0
EVAL_EVERY = 100
EVAL_BATCHES = 8  # batches of the periodic (cheap) train/val estimate

GOLDEN_PROMPTS = ["ROMEO:", "First Citizen:\nBefore we proceed"]
GOLDEN_NEW_TOKENS = 40
SAMPLE_PROMPT = "ROMEO:"
SAMPLE_CHARS = 300
SAMPLE_TEMPERATURE = 0.8
SAMPLE_SEED = 1234


# --------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------
def bytes_to_unicode():
    """GPT-2's reversible byte -> unicode-character mapping (from openai/gpt-2 encoder.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(2**8):
        if b not in bs:
            bs.append(b)
            cs.append(2**8 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_ENCODER = bytes_to_unicode()
BYTE_DECODER = {v: k for k, v in BYTE_ENCODER.items()}
PAT = re.compile(GPT2_PAT)


def pretokenize(text):
    return PAT.findall(text)


def to_byte_unicode(piece):
    return "".join(BYTE_ENCODER[b] for b in piece.encode("utf-8"))


def merge_word(word, pair, new):
    """Replace every non-overlapping occurrence of ``pair`` in ``word``, left to right."""
    first, second = pair
    out = []
    i = 0
    n = len(word)
    while i < n:
        if i < n - 1 and word[i] == first and word[i + 1] == second:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def train_bpe(text, n_merges):
    """Greedy byte-level BPE on pre-token counts. Returns (merges, skipped_duplicates)."""
    counts = Counter(to_byte_unicode(p) for p in pretokenize(text))
    words = {tuple(w): c for w, c in counts.items()}
    existing = set(BYTE_ENCODER.values())
    merges = []
    skipped = 0
    # Pair statistics maintained incrementally; pair -> count, pair -> set of words.
    stats = Counter()
    where = {}
    for w, c in words.items():
        for a, b in zip(w, w[1:]):
            stats[(a, b)] += c
            where.setdefault((a, b), set()).add(w)
    banned = set()
    while len(merges) < n_merges:
        best = None
        best_key = None
        for pair, c in stats.items():
            if c <= 0 or pair in banned:
                continue
            key = (-c, pair)
            if best_key is None or key < best_key:
                best_key, best = key, pair
        if best is None:
            raise RuntimeError("ran out of pairs to merge")
        new = best[0] + best[1]
        if new in existing:
            banned.add(best)
            skipped += 1
            continue
        merges.append(best)
        existing.add(new)
        for w in list(where.get(best, ())):
            if w not in words:
                continue
            c = words.pop(w)
            for a, b in zip(w, w[1:]):
                stats[(a, b)] -= c
                where[(a, b)].discard(w)
            nw = merge_word(w, best, new)
            words[nw] = words.get(nw, 0) + c
            for a, b in zip(nw, nw[1:]):
                stats[(a, b)] += c
                where.setdefault((a, b), set()).add(nw)
        stats.pop(best, None)
        where.pop(best, None)
    return merges, skipped


class Tokenizer:
    def __init__(self, merges):
        self.merges = list(merges)
        self.bpe_ranks = {m: i for i, m in enumerate(self.merges)}
        self.tokens = [BYTE_ENCODER[b] for b in range(256)] + [a + b for a, b in self.merges] + [EOT]
        assert len(self.tokens) == VOCAB_SIZE
        assert len(set(self.tokens)) == VOCAB_SIZE, "duplicate token strings"
        self.encoder = {t: i for i, t in enumerate(self.tokens)}
        self.cache = {}

    def bpe(self, token):
        """GPT-2's bpe(): merge the lowest-rank adjacent pair until none is mergeable."""
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            bigram = min(pairs, key=lambda p: self.bpe_ranks.get(p, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            word = merge_word(word, bigram, bigram[0] + bigram[1])
        self.cache[token] = word
        return word

    def encode(self, text):
        ids = []
        for piece in pretokenize(text):
            for t in self.bpe(to_byte_unicode(piece)):
                ids.append(self.encoder[t])
        return ids

    def token_bytes(self, i):
        if i == EOT_ID:
            return b""  # control token: contributes no text bytes
        return bytes(BYTE_DECODER[c] for c in self.tokens[i])

    def decode(self, ids):
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")


def crosscheck_with_transformers(tok, texts):
    """Load our vocab/merges into transformers' reference GPT2Tokenizer and compare."""
    from transformers import GPT2Tokenizer

    with tempfile.TemporaryDirectory() as d:
        vocab_path = os.path.join(d, "vocab.json")
        merges_path = os.path.join(d, "merges.txt")
        with open(vocab_path, "w", encoding="utf-8") as f:
            json.dump({t: i for i, t in enumerate(tok.tokens)}, f, ensure_ascii=False)
        with open(merges_path, "w", encoding="utf-8") as f:
            f.write("#version: 0.2\n")
            for a, b in tok.merges:
                f.write(f"{a} {b}\n")
        ref = GPT2Tokenizer(vocab_path, merges_path, unk_token=EOT, bos_token=EOT, eos_token=EOT)
        for t in texts:
            got = tok.encode(t)
            want = ref.encode(t) if t else []
            if got != want:
                raise AssertionError(f"encoder mismatch with GPT2Tokenizer on {t[:60]!r}")


# --------------------------------------------------------------------------------------
# Model helpers
# --------------------------------------------------------------------------------------
def make_config():
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=VOCAB_SIZE,
        n_positions=N_CTX,
        n_embd=N_EMBD,
        n_layer=N_LAYER,
        n_head=N_HEAD,
        n_inner=N_FF,
        activation_function="gelu_new",
        layer_norm_epsilon=LN_EPS,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        tie_word_embeddings=True,
        bos_token_id=EOT_ID,
        eos_token_id=EOT_ID,
    )


def make_model():
    from transformers import GPT2LMHeadModel

    try:
        model = GPT2LMHeadModel(make_config(), attn_implementation="eager")
    except TypeError:
        model = GPT2LMHeadModel(make_config())
    return model


def lr_at(step, total):
    if step < WARMUP_STEPS:
        return PEAK_LR * (step + 1) / WARMUP_STEPS
    progress = (step - WARMUP_STEPS) / max(1, total - WARMUP_STEPS)
    return MIN_LR + 0.5 * (PEAK_LR - MIN_LR) * (1.0 + math.cos(math.pi * min(1.0, progress)))


def logits_of(model, x):
    return model(input_ids=x).logits


def evaluate_windows(model, data, tok_nbytes, seq_len, batch_size, max_windows=None):
    """Mean NLL per token and bits per byte over non-overlapping windows of ``data``."""
    import torch
    import torch.nn.functional as F

    n_win = (len(data) - 1) // seq_len
    if max_windows is not None:
        n_win = min(n_win, max_windows)
    total_nll = 0.0
    total_tok = 0
    total_bytes = 0
    model.eval()
    with torch.no_grad():
        for s in range(0, n_win, batch_size):
            idx = range(s, min(n_win, s + batch_size))
            xs = np.stack([data[i * seq_len : i * seq_len + seq_len] for i in idx])
            ys = np.stack([data[i * seq_len + 1 : i * seq_len + seq_len + 1] for i in idx])
            x = torch.from_numpy(xs.astype(np.int64))
            y = torch.from_numpy(ys.astype(np.int64))
            logits = logits_of(model, x)
            nll = F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), y.reshape(-1), reduction="sum")
            total_nll += float(nll)
            total_tok += y.numel()
            total_bytes += int(tok_nbytes[ys].sum())
    model.train()
    return total_nll / total_tok, total_nll / math.log(2) / total_bytes


def greedy(model, prompt_ids, n_new):
    import torch

    ids = list(prompt_ids)
    model.eval()
    with torch.no_grad():
        for _ in range(n_new):
            ctx = ids[-N_CTX:]
            logits = logits_of(model, torch.tensor([ctx], dtype=torch.long))[0, -1]
            # torch.argmax returns the first maximal index -> ties resolve to the lowest id.
            ids.append(int(torch.argmax(logits)))
    return ids[len(prompt_ids):]


def sample_text(model, tok, prompt, n_chars, temperature, seed):
    import torch

    gen = torch.Generator().manual_seed(seed)
    ids = tok.encode(prompt)
    n_prompt = len(ids)
    model.eval()
    with torch.no_grad():
        while True:
            new_text = tok.decode(ids[n_prompt:])
            if len(new_text) >= n_chars:
                break
            ctx = ids[-N_CTX:]
            logits = logits_of(model, torch.tensor([ctx], dtype=torch.long))[0, -1].double()
            probs = torch.softmax(logits / temperature, dim=-1)
            ids.append(int(torch.multinomial(probs, 1, generator=gen)))
    return prompt + tok.decode(ids[n_prompt:])[:n_chars]


# --------------------------------------------------------------------------------------
# GGUF export
# --------------------------------------------------------------------------------------
Q8_TENSORS = ("attn_qkv", "attn_output", "ffn_up", "ffn_down")


def gguf_tensors(model):
    """Map HF GPT-2 weights to llama.cpp gpt2 names, numpy arrays of shape [out, in]."""
    sd = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    out = [
        ("token_embd.weight", sd["transformer.wte.weight"]),
        ("position_embd.weight", sd["transformer.wpe.weight"]),
    ]
    for i in range(N_LAYER):
        p = f"transformer.h.{i}."
        b = f"blk.{i}."
        out += [
            (b + "attn_norm.weight", sd[p + "ln_1.weight"]),
            (b + "attn_norm.bias", sd[p + "ln_1.bias"]),
            (b + "attn_qkv.weight", sd[p + "attn.c_attn.weight"].T),
            (b + "attn_qkv.bias", sd[p + "attn.c_attn.bias"]),
            (b + "attn_output.weight", sd[p + "attn.c_proj.weight"].T),
            (b + "attn_output.bias", sd[p + "attn.c_proj.bias"]),
            (b + "ffn_norm.weight", sd[p + "ln_2.weight"]),
            (b + "ffn_norm.bias", sd[p + "ln_2.bias"]),
            (b + "ffn_up.weight", sd[p + "mlp.c_fc.weight"].T),
            (b + "ffn_up.bias", sd[p + "mlp.c_fc.bias"]),
            (b + "ffn_down.weight", sd[p + "mlp.c_proj.weight"].T),
            (b + "ffn_down.bias", sd[p + "mlp.c_proj.bias"]),
        ]
    out += [
        ("output_norm.weight", sd["transformer.ln_f.weight"]),
        ("output_norm.bias", sd["transformer.ln_f.bias"]),
    ]
    return [(n, np.ascontiguousarray(a, dtype=np.float32)) for n, a in out]


def is_q8(name):
    parts = name.split(".")
    return name == "token_embd.weight" or (parts[0] == "blk" and parts[2] in Q8_TENSORS and parts[3] == "weight")


def expected_metadata(tok):
    return {
        "general.architecture": "gpt2",
        "general.name": "embergpt-shakespeare",
        "general.license": "MIT OR Apache-2.0",
        "general.file_type": 7,
        "gpt2.context_length": N_CTX,
        "gpt2.embedding_length": N_EMBD,
        "gpt2.feed_forward_length": N_FF,
        "gpt2.block_count": N_LAYER,
        "gpt2.attention.head_count": N_HEAD,
        "gpt2.attention.layer_norm_epsilon": LN_EPS,
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "gpt-2",
        "tokenizer.ggml.tokens": tok.tokens,
        "tokenizer.ggml.token_type": [1] * (VOCAB_SIZE - 1) + [3],
        "tokenizer.ggml.merges": [f"{a} {b}" for a, b in tok.merges],
        "tokenizer.ggml.bos_token_id": EOT_ID,
        "tokenizer.ggml.eos_token_id": EOT_ID,
    }


def write_gguf(path, model, tok):
    import gguf
    from gguf import GGMLQuantizationType, GGUFValueType

    os.makedirs(os.path.dirname(path), exist_ok=True)
    w = gguf.GGUFWriter(path, "gpt2")  # writes general.architecture
    w.add_string("general.name", "embergpt-shakespeare")
    w.add_string("general.license", "MIT OR Apache-2.0")
    w.add_uint32("general.file_type", 7)  # LLAMA_FTYPE_MOSTLY_Q8_0
    w.add_uint32("gpt2.context_length", N_CTX)
    w.add_uint32("gpt2.embedding_length", N_EMBD)
    w.add_uint32("gpt2.feed_forward_length", N_FF)
    w.add_uint32("gpt2.block_count", N_LAYER)
    w.add_uint32("gpt2.attention.head_count", N_HEAD)
    w.add_float32("gpt2.attention.layer_norm_epsilon", LN_EPS)
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_string("tokenizer.ggml.pre", "gpt-2")
    w.add_array("tokenizer.ggml.tokens", tok.tokens)
    meta = expected_metadata(tok)
    if _writer_supports_subtype(w):  # explicit INT32 element type
        w.add_key_value("tokenizer.ggml.token_type", meta["tokenizer.ggml.token_type"], GGUFValueType.ARRAY,
                        sub_type=GGUFValueType.INT32)
    else:  # older gguf-py: python ints are written as INT32
        w.add_array("tokenizer.ggml.token_type", meta["tokenizer.ggml.token_type"])
    w.add_array("tokenizer.ggml.merges", meta["tokenizer.ggml.merges"])
    w.add_uint32("tokenizer.ggml.bos_token_id", EOT_ID)
    w.add_uint32("tokenizer.ggml.eos_token_id", EOT_ID)

    for name, arr in gguf_tensors(model):
        if is_q8(name):
            q = gguf.quants.quantize(arr, GGMLQuantizationType.Q8_0)  # uint8 [rows, row_bytes]
            w.add_tensor(name, q, raw_shape=_raw_shape_arg(q, arr), raw_dtype=GGMLQuantizationType.Q8_0)
        else:
            w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def _writer_supports_subtype(w):
    import inspect

    try:
        return "sub_type" in inspect.signature(w.add_key_value).parameters
    except (TypeError, ValueError):
        return False


def _raw_shape_arg(q, logical):
    """Shape argument for GGUFWriter.add_tensor with raw quantized data.

    Older gguf-py expects the logical (element) shape; newer releases (which have
    ``quant_shape_from_byte_shape``) convert a uint8 tensor's *byte* shape themselves
    and reject the logical shape. Pass whatever the installed version expects; the
    read-back check verifies the resulting logical shape either way.
    """
    import gguf

    if hasattr(gguf, "quant_shape_from_byte_shape") or hasattr(getattr(gguf, "quants", None), "quant_shape_from_byte_shape"):
        return q.shape
    return logical.shape


def _field_value(reader, key):
    from gguf import GGUFValueType

    f = reader.fields[key]
    t = f.types[0]
    if t == GGUFValueType.ARRAY:
        sub = f.types[-1]
        vals = [f.parts[i] for i in f.data]
        if sub == GGUFValueType.STRING:
            return [bytes(v).decode("utf-8") for v in vals], (t, sub)
        return [v.tolist()[0] for v in vals], (t, sub)
    v = f.parts[f.data[0]]
    if t == GGUFValueType.STRING:
        return bytes(v).decode("utf-8"), (t,)
    return v.tolist()[0], (t,)


def verify_gguf(path, model, tok):
    """Read the file back; check metadata, types, shapes; return dequantized tensors."""
    import gguf
    from gguf import GGMLQuantizationType, GGUFValueType as V

    r = gguf.GGUFReader(path)
    ver, _ = _field_value(r, "GGUF.version")
    assert ver == 3, ver
    want_types = {
        "general.architecture": (V.STRING,), "general.name": (V.STRING,), "general.license": (V.STRING,),
        "general.file_type": (V.UINT32,), "gpt2.context_length": (V.UINT32,), "gpt2.embedding_length": (V.UINT32,),
        "gpt2.feed_forward_length": (V.UINT32,), "gpt2.block_count": (V.UINT32,),
        "gpt2.attention.head_count": (V.UINT32,), "gpt2.attention.layer_norm_epsilon": (V.FLOAT32,),
        "tokenizer.ggml.model": (V.STRING,), "tokenizer.ggml.pre": (V.STRING,),
        "tokenizer.ggml.tokens": (V.ARRAY, V.STRING), "tokenizer.ggml.token_type": (V.ARRAY, V.INT32),
        "tokenizer.ggml.merges": (V.ARRAY, V.STRING), "tokenizer.ggml.bos_token_id": (V.UINT32,),
        "tokenizer.ggml.eos_token_id": (V.UINT32,),
    }
    for key, want in expected_metadata(tok).items():
        got, types = _field_value(r, key)
        assert types == want_types[key], (key, types)
        if isinstance(want, float):
            assert abs(got - want) < 1e-12, (key, got)
        else:
            assert got == want, key
    expected = gguf_tensors(model)
    assert [t.name for t in r.tensors] == [n for n, _ in expected]
    deq = {}
    for t, (name, arr) in zip(r.tensors, expected):
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))  # GGUF dims are reversed
        assert shape == arr.shape, (name, shape, arr.shape)
        want_type = GGMLQuantizationType.Q8_0 if is_q8(name) else GGMLQuantizationType.F32
        assert t.tensor_type == want_type, (name, t.tensor_type)
        if want_type == GGMLQuantizationType.F32:
            d = np.asarray(t.data, dtype=np.float32).reshape(shape)
            assert np.array_equal(d, arr), name
        else:
            d = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(shape).astype(np.float32)
            err = float(np.max(np.abs(d - arr)))
            # Q8_0: |err| <= scale/2 = max|block|/254 (+ f16 rounding of the scale)
            assert err <= float(np.max(np.abs(arr))) / 127.0, (name, err)
        deq[name] = d
    return deq


def model_from_gguf_tensors(deq):
    import torch

    m = make_model()
    sd = m.state_dict()
    mapping = {
        "transformer.wte.weight": ("token_embd.weight", False),
        "transformer.wpe.weight": ("position_embd.weight", False),
        "transformer.ln_f.weight": ("output_norm.weight", False),
        "transformer.ln_f.bias": ("output_norm.bias", False),
    }
    for i in range(N_LAYER):
        p, b = f"transformer.h.{i}.", f"blk.{i}."
        mapping.update({
            p + "ln_1.weight": (b + "attn_norm.weight", False), p + "ln_1.bias": (b + "attn_norm.bias", False),
            p + "attn.c_attn.weight": (b + "attn_qkv.weight", True), p + "attn.c_attn.bias": (b + "attn_qkv.bias", False),
            p + "attn.c_proj.weight": (b + "attn_output.weight", True), p + "attn.c_proj.bias": (b + "attn_output.bias", False),
            p + "ln_2.weight": (b + "ffn_norm.weight", False), p + "ln_2.bias": (b + "ffn_norm.bias", False),
            p + "mlp.c_fc.weight": (b + "ffn_up.weight", True), p + "mlp.c_fc.bias": (b + "ffn_up.bias", False),
            p + "mlp.c_proj.weight": (b + "ffn_down.weight", True), p + "mlp.c_proj.bias": (b + "ffn_down.bias", False),
        })
    with torch.no_grad():
        for k, v in sd.items():
            if k == "lm_head.weight":
                continue  # tied to wte
            if k.endswith(".attn.bias") or k.endswith(".attn.masked_bias"):
                continue  # causal-mask buffers of older transformers
            src, transpose = mapping[k]
            a = deq[src].T if transpose else deq[src]
            v.copy_(torch.from_numpy(np.array(a, dtype=np.float32, order="C")))
    m.tie_weights()
    assert m.lm_head.weight.data_ptr() == m.transformer.wte.weight.data_ptr()
    m.eval()
    return m


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--out-dir", default=None, help="write outputs under this directory instead of the repo (testing)")
    args = ap.parse_args()
    t_start = time.time()

    import torch
    import transformers
    import gguf

    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)

    base = os.path.abspath(args.out_dir) if args.out_dir else REPO_ROOT
    gguf_path = os.path.join(base, "cli", "assets", "shakespeare-q8_0.gguf")
    fix_dir = os.path.join(base, "tests", "fixtures", "default_model")
    os.makedirs(fix_dir, exist_ok=True)

    with open(DATA_PATH, "r", encoding="utf-8") as f:
        text = f.read()
    n_split = int(len(text) * 0.9)
    train_text, val_text = text[:n_split], text[n_split:]
    print(f"data: {DATA_PATH} ({len(text)} chars; train {len(train_text)}, val {len(val_text)})", flush=True)

    # ---- tokenizer ----
    t0 = time.time()
    merges, skipped = train_bpe(train_text, N_MERGES)
    tok = Tokenizer(merges)
    print(f"bpe: {len(merges)} merges in {time.time() - t0:.1f}s (skipped duplicate pairs: {skipped}); "
          f"first merges: {merges[:8]}", flush=True)
    train_ids = np.array(tok.encode(train_text), dtype=np.int32)
    val_ids = np.array(tok.encode(val_text), dtype=np.int32)
    assert tok.decode(val_ids.tolist()) == val_text, "decode(encode(val)) != val"
    assert tok.decode(train_ids.tolist()) == train_text, "decode(encode(train)) != train"
    print(f"tokens: train {len(train_ids)} ({len(train_text) / len(train_ids):.3f} bytes/token), val {len(val_ids)}; "
          "round trip OK", flush=True)
    tok_nbytes = np.array([len(tok.token_bytes(i)) for i in range(VOCAB_SIZE)], dtype=np.int64)

    odd_strings = ["", "  multiple   spaces\n\n", "it's I'LL don't", "12345 67", "café naïve — 日本語 🙂"]
    val_lines = [l for l in val_text.split("\n") if l.strip()]
    stride = len(val_lines) // 30
    case_lines = [val_lines[i * stride + stride // 2] for i in range(30)]
    cases = case_lines + odd_strings
    for c in odd_strings:
        assert tok.decode(tok.encode(c)) == c, c
    crosscheck_with_transformers(tok, cases + [val_text])
    print("tokenizer matches transformers.GPT2Tokenizer on cases and validation text", flush=True)
    _dump_json(os.path.join(fix_dir, "tokenizer_cases.json"), {
            "description": "embergpt default-model tokenizer cases: GPT-2 byte-level BPE, vocab 512 "
                           "(id b = byte b for 0..255, merges 256..510, <|endoftext|> = 511). "
                           "30 lines of the validation split (non-empty lines %d + %d*i) + odd strings." % (stride // 2, stride),
            "cases": [{"text": c, "ids": tok.encode(c)} for c in cases],
        })

    # ---- model ----
    model = make_model()
    n_params = sum(p.numel() for p in model.parameters())  # tied weights counted once
    print(f"model: {n_params} parameters", flush=True)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "wpe" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "wpe" not in n)]
    opt = torch.optim.AdamW([
        {"params": decay, "weight_decay": WEIGHT_DECAY},
        {"params": no_decay, "weight_decay": 0.0},
    ], lr=PEAK_LR, betas=(0.9, 0.95), eps=1e-8)
    rng = np.random.RandomState(SEED)
    train_eval = train_ids[: len(val_ids)]  # fixed slice for periodic train-loss estimates
    model.train()
    t_train = time.time()
    recent = []
    for step in range(args.steps):
        lr = lr_at(step, args.steps)
        for g in opt.param_groups:
            g["lr"] = lr
        offs = rng.randint(0, len(train_ids) - SEQ_LEN - 1, size=BATCH_SIZE)
        xs = np.stack([train_ids[o : o + SEQ_LEN] for o in offs]).astype(np.int64)
        ys = np.stack([train_ids[o + 1 : o + SEQ_LEN + 1] for o in offs]).astype(np.int64)
        x, y = torch.from_numpy(xs), torch.from_numpy(ys)
        logits = logits_of(model, x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB_SIZE), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        recent.append(loss.item())
        if step % 10 == 0 and step % EVAL_EVERY != 0:
            print(f"step {step:5d} loss {loss.item():.4f} lr {lr:.2e} ({time.time() - t_train:.0f}s)", flush=True)
        if step % EVAL_EVERY == 0 or step == args.steps - 1:
            tl, _ = evaluate_windows(model, train_eval, tok_nbytes, N_CTX, BATCH_SIZE, EVAL_BATCHES * BATCH_SIZE // 4)
            vl, vb = evaluate_windows(model, val_ids, tok_nbytes, N_CTX, BATCH_SIZE, EVAL_BATCHES * BATCH_SIZE // 4)
            print(f"step {step:5d} loss {loss.item():.4f} | est train {tl:.4f} val {vl:.4f} ({vb:.3f} bpb) "
                  f"lr {lr:.2e} ({time.time() - t_train:.0f}s)", flush=True)
    train_seconds = time.time() - t_train
    model.eval()
    final_train_loss, final_train_bpb = evaluate_windows(model, train_eval, tok_nbytes, N_CTX, BATCH_SIZE)
    final_val_loss, final_val_bpb = evaluate_windows(model, val_ids, tok_nbytes, N_CTX, BATCH_SIZE)
    last_batch_mean = float(np.mean(recent[-20:]))
    print(f"final: train {final_train_loss:.4f} nats/token ({final_train_bpb:.4f} bpb), "
          f"val {final_val_loss:.4f} nats/token ({final_val_bpb:.4f} bpb), mean of last 20 batch losses "
          f"{last_batch_mean:.4f}; training loop {train_seconds:.0f}s", flush=True)

    # ---- export ----
    write_gguf(gguf_path, model, tok)
    gguf_size = os.path.getsize(gguf_path)
    assert gguf_size <= 2 * 1024 * 1024, gguf_size
    with open(gguf_path, "rb") as f:
        gguf_sha = hashlib.sha256(f.read()).hexdigest()
    deq = verify_gguf(gguf_path, model, tok)
    qmodel = model_from_gguf_tensors(deq)
    q_val_loss, q_val_bpb = evaluate_windows(qmodel, val_ids, tok_nbytes, N_CTX, BATCH_SIZE)
    print(f"gguf: {gguf_path} {gguf_size} bytes sha256 {gguf_sha}; read back OK; "
          f"q8_0-dequant val {q_val_loss:.4f} ({q_val_bpb:.4f} bpb)", flush=True)

    # ---- golden ----
    golden = []
    for prompt in GOLDEN_PROMPTS:
        pids = tok.encode(prompt)
        g_fp = greedy(model, pids, GOLDEN_NEW_TOKENS)
        g_q = greedy(qmodel, pids, GOLDEN_NEW_TOKENS)
        first_diff = next((i for i, (a, b) in enumerate(zip(g_fp, g_q)) if a != b), None)
        golden.append({
            "prompt": prompt,
            "prompt_ids": pids,
            "n_new_tokens": GOLDEN_NEW_TOKENS,
            "greedy_fp32": g_fp,
            "greedy_fp32_text": tok.decode(g_fp),
            "greedy_q8_0_dequant": g_q,
            "greedy_q8_0_dequant_text": tok.decode(g_q),
            "agree": g_fp == g_q,
            "first_disagreement_index": first_diff,
        })
        print(f"golden {prompt!r}: agree={g_fp == g_q}\n  fp32: {tok.decode(g_fp)!r}\n  q8_0: {tok.decode(g_q)!r}", flush=True)
    _dump_json(os.path.join(fix_dir, "golden.json"), {
            "description": "Greedy (argmax, ties -> lowest id) continuations computed in PyTorch float32, eval mode, "
                           "full recompute (no KV cache), from the trained fp32 weights and from the weights "
                           "dequantized from cli/assets/shakespeare-q8_0.gguf.",
            "model_file": "cli/assets/shakespeare-q8_0.gguf",
            "model_sha256": gguf_sha,
            "vocab_size": VOCAB_SIZE,
            "eot_id": EOT_ID,
            "cases": golden,
        })

    sample = sample_text(model, tok, SAMPLE_PROMPT, SAMPLE_CHARS, SAMPLE_TEMPERATURE, SAMPLE_SEED)
    print("sample:\n" + sample, flush=True)
    total_seconds = time.time() - t_start

    cmd = "python3 tests/scripts/train_default_model.py" + (f" --steps {args.steps}" if args.steps != DEFAULT_STEPS else "")
    md = f"""# Default model: `cli/assets/shakespeare-q8_0.gguf`

Generated by `tests/scripts/train_default_model.py` (see its docstring for every detail).

| | |
|---|---|
| command | `{cmd}` (from the repository root) |
| python | {platform.python_version()} ({platform.machine()}) |
| torch | {torch.__version__} |
| transformers | {transformers.__version__} |
| gguf (gguf-py) | {_pkg_version("gguf")} |
| numpy | {np.__version__} |
| threads | 2 (`torch.set_num_threads(2)`), `torch.use_deterministic_algorithms(True)` |
| seed | {SEED} (`random`, `numpy`, `torch`) |
| data | `../shared/data/tinyshakespeare.txt`, first 90 % train ({len(train_text)} chars, {len(train_ids)} tokens), last 10 % validation ({len(val_text)} chars, {len(val_ids)} tokens) |
| tokenizer | GPT-2 byte-level BPE, 512 tokens: id b = byte b (string `bytes_to_unicode()[b]`), 255 merges (ids 256..510, greedy by pair frequency, ties -> lexicographically smallest pair), `<\\|endoftext\\|>` = 511 |
| model | GPT-2: n_ctx {N_CTX}, n_embd {N_EMBD}, n_layer {N_LAYER}, n_head {N_HEAD}, n_ff {N_FF}, gelu_new, LayerNorm eps 1e-5, tied embeddings, no dropout |
| parameters | {n_params:,} |
| optimiser | AdamW (betas 0.9/0.95, weight decay {WEIGHT_DECAY} on matrices), lr {PEAK_LR} peak, {WARMUP_STEPS} warm-up steps, cosine to {MIN_LR}, grad clip {GRAD_CLIP} |
| batch | {BATCH_SIZE} x {SEQ_LEN} tokens, random windows |
| steps | {args.steps} |
| training loop wall clock | {train_seconds:.0f} s |
| whole script wall clock | {total_seconds:.0f} s |
| final train loss | {final_train_loss:.4f} nats/token ({final_train_bpb:.4f} bits/byte), on the first {len(train_eval)} training tokens; mean of last 20 batch losses {last_batch_mean:.4f} |
| final validation loss | {final_val_loss:.4f} nats/token ({final_val_bpb:.4f} bits/byte), full validation split, non-overlapping 256-token windows |
| validation loss, Q8_0 dequantized | {q_val_loss:.4f} nats/token ({q_val_bpb:.4f} bits/byte) |
| GGUF | v3, {gguf_size:,} bytes, sha256 `{gguf_sha}` |
| greedy fp32 vs Q8_0-dequant agree | {", ".join(f"{g['prompt']!r}: {g['agree']}" for g in golden)} |

Wall clock depends heavily on machine load: about 0.55 s per step on 2 idle cores (~7 min
for 700 steps); the step count is fixed, so a loaded machine only makes the run slower.

Determinism: the run is seeded and uses a fixed step count, so it is reproducible on the
same machine with the same package versions; float32 CPU training may still differ
across machines, CPU instruction sets, thread counts and torch versions.

## Sample

Prompt `ROMEO:`, temperature {SAMPLE_TEMPERATURE}, `torch.Generator().manual_seed({SAMPLE_SEED})`, fp32 weights,
first {SAMPLE_CHARS} generated characters:

```text
{sample}
```
"""
    with open(os.path.join(fix_dir, "TRAINING.md"), "w", encoding="utf-8") as f:
        f.write(md)
    print(f"done in {total_seconds:.0f}s", flush=True)


def _dump_json(path, obj):
    """json.dump with one line per list element of ``obj["cases"]`` (compact id lists)."""
    head = {k: v for k, v in obj.items() if k != "cases"}
    lines = json.dumps(head, ensure_ascii=False, indent=1)[:-2].rstrip("\n")
    body = ",\n".join("  " + json.dumps(c, ensure_ascii=False) for c in obj["cases"])
    with open(path, "w", encoding="utf-8") as f:
        f.write(lines + ',\n "cases": [\n' + body + "\n ]\n}\n")
    with open(path, "r", encoding="utf-8") as f:
        assert json.load(f) == obj


def _pkg_version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
