#!/usr/bin/env python3
"""Generate golden test fixtures for embergpt's GPT-2 architecture support.

What it makes (all under tests/fixtures/gpt2/):

  * Three tiny random-weight GPT-2 models ("a", "b", "c"), each written as GGUF
    (GGUF v3, alignment 32, llama.cpp's `gpt2` tensor layout and metadata) in
    five weight types: f32, f16, q8_0, q4_0, q4_1
      -> {model}.{type}.gguf
        a: n_embd=64, n_head=4, n_layer=2, vocab=256, n_ctx=32, n_ff=256, tied output
        b: n_embd=96, n_head=3, n_layer=2, vocab=160, n_ctx=48, n_ff=384, UNTIED
           (separate `output.weight`)
        c: n_embd=64, n_head=2, n_layer=3, vocab=200, n_ctx=40, n_ff=128, tied
           (n_ff != 4*n_embd, so `gpt2.feed_forward_length` must be honoured)
    In the f16/q8_0/q4_0/q4_1 files the 2-D matrices token_embd, attn_qkv,
    attn_output, ffn_up, ffn_down (and output) have that type; position_embd,
    all norm weights/biases and all biases stay F32.
  * Reference logits for each file: the weights exactly as stored in that file
    (read back with gguf.GGUFReader, dequantized with gguf.quants.dequantize),
    loaded into a transformers GPT2LMHeadModel and run in float64 on a fixed
    20-token sequence; saved as little-endian float32, row-major
    [n_tokens][n_vocab]
      -> {model}.{type}.logits.bin
  * manifest.json describing the models, the token sequence and the types.

Self-checks performed by the script (it aborts on failure):
  * gguf-py's Q8_0/Q4_0/Q4_1 quantizer is byte-identical to an independent
    re-implementation of ggml's reference quantizers (quantize_row_q*_ref in
    ggml-quants.c) on every quantized tensor.
  * every tensor read back from every file has the intended GGML type, shape
    and (for f32/f16) values; metadata keys/values are as intended.
  * the f32 file, read back and loaded into the torch model, reproduces the
    original model's logits to 1e-6.
  * an independent numpy float64 forward pass that uses the GGUF tensors with
    GGUF/ggml semantics (W is [out][in], y = W x) matches the torch logits,
    which checks the transposes and the fused QKV split.
  * output is deterministic (fixed seeds, single thread, no timestamps).

How to run (from the repository root):

    python3 tests/scripts/gen_gpt2_fixtures.py

Needs (versions used to produce the committed fixtures):

    pip install torch==2.15.0 transformers==5.24.0 gguf==0.19.0 numpy==2.4.6

(safetensors 0.8.0 and tiktoken 0.14.0 were installed too but are not used.)
No network access is needed (HF_HUB_OFFLINE=1 is set; nothing is downloaded).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import gguf  # noqa: E402
from gguf import GGMLQuantizationType as QT  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = REPO_ROOT / "tests" / "fixtures" / "gpt2"

N_TOKENS = 20
LN_EPS = 1e-5

MODELS = [
    dict(name="a", n_embd=64, n_head=4, n_layer=2, n_vocab=256, n_ctx=32, n_ff=256, tied=True, seed=1001),
    dict(name="b", n_embd=96, n_head=3, n_layer=2, n_vocab=160, n_ctx=48, n_ff=384, tied=False, seed=2002),
    dict(name="c", n_embd=64, n_head=2, n_layer=3, n_vocab=200, n_ctx=40, n_ff=128, tied=True, seed=3003),
]

# (file suffix, GGML type of the big matrices, llama.cpp general.file_type)
TYPES = [
    ("f32", QT.F32, 0),
    ("f16", QT.F16, 1),
    ("q8_0", QT.Q8_0, 7),
    ("q4_0", QT.Q4_0, 2),
    ("q4_1", QT.Q4_1, 3),
]


# --------------------------------------------------------------------------
# Independent re-implementation of ggml's reference quantizers (float32
# arithmetic exactly as in ggml-quants.c quantize_row_q*_ref), used only to
# cross-check gguf.quants.quantize.
# --------------------------------------------------------------------------

def _ref_blocks(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    assert x.shape[-1] % 32 == 0
    return x.reshape(-1, 32)


def _safe_inv(d: np.ndarray) -> np.ndarray:
    out = np.zeros_like(d)
    nz = d != 0
    out[nz] = np.float32(1.0) / d[nz]
    return out


def _pack_nibbles(q: np.ndarray) -> np.ndarray:
    # byte j of a block = element j (low nibble) | element j+16 (high nibble)
    return (q[:, :16] | (q[:, 16:] << 4)).astype(np.uint8)


def ref_quantize(x: np.ndarray, qtype: QT) -> bytes:
    b = _ref_blocks(x)
    if qtype == QT.Q8_0:
        amax = np.abs(b).max(axis=1)
        d = (amax / np.float32(127)).astype(np.float32)
        idv = _safe_inv(d)
        v = b * idv[:, None]
        # roundf: round half away from zero
        q = (np.sign(v) * np.floor(np.abs(v).astype(np.float64) + 0.5)).astype(np.int8)
        out = np.concatenate([d.astype(np.float16).view(np.uint8).reshape(-1, 2), q.view(np.uint8)], axis=1)
    elif qtype == QT.Q4_0:
        idx = np.abs(b).argmax(axis=1)  # first index of max |v| (strict '<' in C)
        mx = b[np.arange(len(b)), idx]
        d = (mx / np.float32(-8)).astype(np.float32)
        idv = _safe_inv(d)
        v = (b * idv[:, None]).astype(np.float32) + np.float32(8.5)
        q = np.minimum(15, np.trunc(v).astype(np.int32)).astype(np.uint8)
        out = np.concatenate([d.astype(np.float16).view(np.uint8).reshape(-1, 2), _pack_nibbles(q)], axis=1)
    elif qtype == QT.Q4_1:
        mn = b.min(axis=1)
        mx = b.max(axis=1)
        d = ((mx - mn) / np.float32(15)).astype(np.float32)
        idv = _safe_inv(d)
        v = ((b - mn[:, None]) * idv[:, None]).astype(np.float32) + np.float32(0.5)
        q = np.minimum(15, np.trunc(v).astype(np.int32)).astype(np.uint8)
        out = np.concatenate([
            d.astype(np.float16).view(np.uint8).reshape(-1, 2),
            mn.astype(np.float16).view(np.uint8).reshape(-1, 2),
            _pack_nibbles(q),
        ], axis=1)
    else:
        raise ValueError(qtype)
    return out.tobytes()


# --------------------------------------------------------------------------
# Model construction
# --------------------------------------------------------------------------

def build_model(spec: dict) -> GPT2LMHeadModel:
    torch.manual_seed(spec["seed"])
    cfg = GPT2Config(
        vocab_size=spec["n_vocab"],
        n_positions=spec["n_ctx"],
        n_embd=spec["n_embd"],
        n_layer=spec["n_layer"],
        n_head=spec["n_head"],
        n_inner=spec["n_ff"] if spec["n_ff"] != 4 * spec["n_embd"] else None,
        activation_function="gelu_new",
        layer_norm_epsilon=LN_EPS,
        tie_word_embeddings=spec["tied"],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation="eager",
    )
    model = GPT2LMHeadModel(cfg)
    model.eval()

    # Re-initialise every parameter from a seeded numpy generator so that the
    # values do not depend on torch's init code, and every tensor matters.
    rng = np.random.default_rng(spec["seed"])
    with torch.no_grad():
        for name, p in model.named_parameters():  # tied lm_head is deduplicated
            shape = tuple(p.shape)
            if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
                v = 1.0 + 0.1 * rng.standard_normal(shape)
            elif name.endswith(".bias"):
                v = 0.05 * rng.standard_normal(shape)
            elif name.endswith("attn.c_attn.weight"):
                # a bit smaller so attention is not completely one-hot
                v = 0.12 * rng.standard_normal(shape)
            elif name.endswith(("c_proj.weight", "c_fc.weight")):
                # Conv1D weights are [in, out]: std 1/sqrt(fan_in) keeps each
                # projection's gain near 1, as in trained models. A fixed 0.2
                # (gain 1.6 to 3.2 per matmul) makes the random network chaotic,
                # so it amplifies the int8 rounding of run-time activation
                # quantization until near-tied logits swap order.
                v = rng.standard_normal(shape) / np.sqrt(shape[0])
            elif name.endswith(("wte.weight", "lm_head.weight")):
                # Token vectors with log-normal norms: like a trained model's
                # output layer (frequent tokens have larger logits), so the
                # logits are heavy-tailed with a clear winner at most positions
                # instead of the near-ties of an isotropic Gaussian vocabulary.
                row = np.exp(0.5 * rng.standard_normal((shape[0], 1)))
                v = 0.2 * row * rng.standard_normal(shape)
            else:
                v = 0.2 * rng.standard_normal(shape)
            p.copy_(torch.from_numpy(v.astype(np.float32)))

    if spec["tied"]:
        assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()
    else:
        assert model.lm_head.weight.data_ptr() != model.transformer.wte.weight.data_ptr()
        assert not torch.equal(model.lm_head.weight, model.transformer.wte.weight)
    return model


def model_to_gguf_tensors(model: GPT2LMHeadModel, spec: dict) -> list[tuple[str, np.ndarray]]:
    """HF parameters -> ordered list of (gguf name, float32 numpy array [out, in])."""
    sd = {k: v.detach().cpu().numpy().astype(np.float32) for k, v in model.state_dict().items()}
    t: list[tuple[str, np.ndarray]] = []
    t.append(("token_embd.weight", sd["transformer.wte.weight"]))
    t.append(("position_embd.weight", sd["transformer.wpe.weight"]))
    for i in range(spec["n_layer"]):
        h = f"transformer.h.{i}."
        b = f"blk.{i}."
        t += [
            (b + "attn_norm.weight", sd[h + "ln_1.weight"]),
            (b + "attn_norm.bias", sd[h + "ln_1.bias"]),
            (b + "attn_qkv.weight", sd[h + "attn.c_attn.weight"].T),  # Conv1D [in,out] -> [out,in]
            (b + "attn_qkv.bias", sd[h + "attn.c_attn.bias"]),
            (b + "attn_output.weight", sd[h + "attn.c_proj.weight"].T),
            (b + "attn_output.bias", sd[h + "attn.c_proj.bias"]),
            (b + "ffn_norm.weight", sd[h + "ln_2.weight"]),
            (b + "ffn_norm.bias", sd[h + "ln_2.bias"]),
            (b + "ffn_up.weight", sd[h + "mlp.c_fc.weight"].T),
            (b + "ffn_up.bias", sd[h + "mlp.c_fc.bias"]),
            (b + "ffn_down.weight", sd[h + "mlp.c_proj.weight"].T),
            (b + "ffn_down.bias", sd[h + "mlp.c_proj.bias"]),
        ]
    t.append(("output_norm.weight", sd["transformer.ln_f.weight"]))
    t.append(("output_norm.bias", sd["transformer.ln_f.bias"]))
    if not spec["tied"]:
        t.append(("output.weight", sd["lm_head.weight"]))
    return [(n, np.ascontiguousarray(a, dtype=np.float32)) for n, a in t]


def expected_shape(name: str, spec: dict) -> tuple[int, ...]:
    e, ff, V, C = spec["n_embd"], spec["n_ff"], spec["n_vocab"], spec["n_ctx"]
    base = name.split(".", 2)[-1] if name.startswith("blk.") else name
    table = {
        "token_embd.weight": (V, e), "position_embd.weight": (C, e),
        "output_norm.weight": (e,), "output_norm.bias": (e,), "output.weight": (V, e),
        "attn_norm.weight": (e,), "attn_norm.bias": (e,),
        "attn_qkv.weight": (3 * e, e), "attn_qkv.bias": (3 * e,),
        "attn_output.weight": (e, e), "attn_output.bias": (e,),
        "ffn_norm.weight": (e,), "ffn_norm.bias": (e,),
        "ffn_up.weight": (ff, e), "ffn_up.bias": (ff,),
        "ffn_down.weight": (e, ff), "ffn_down.bias": (e,),
    }
    return table[base]


def is_typed_matrix(name: str) -> bool:
    return name.endswith(("token_embd.weight", "attn_qkv.weight", "attn_output.weight",
                          "ffn_up.weight", "ffn_down.weight")) or name == "output.weight"


def load_gguf_tensors_into_model(model: GPT2LMHeadModel, spec: dict, tensors: dict[str, np.ndarray]) -> None:
    def P(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    m = model.transformer
    with torch.no_grad():
        m.wte.weight.copy_(P(tensors["token_embd.weight"]))
        m.wpe.weight.copy_(P(tensors["position_embd.weight"]))
        for i, blk in enumerate(m.h):
            b = f"blk.{i}."
            blk.ln_1.weight.copy_(P(tensors[b + "attn_norm.weight"]))
            blk.ln_1.bias.copy_(P(tensors[b + "attn_norm.bias"]))
            blk.attn.c_attn.weight.copy_(P(tensors[b + "attn_qkv.weight"].T))
            blk.attn.c_attn.bias.copy_(P(tensors[b + "attn_qkv.bias"]))
            blk.attn.c_proj.weight.copy_(P(tensors[b + "attn_output.weight"].T))
            blk.attn.c_proj.bias.copy_(P(tensors[b + "attn_output.bias"]))
            blk.ln_2.weight.copy_(P(tensors[b + "ffn_norm.weight"]))
            blk.ln_2.bias.copy_(P(tensors[b + "ffn_norm.bias"]))
            blk.mlp.c_fc.weight.copy_(P(tensors[b + "ffn_up.weight"].T))
            blk.mlp.c_fc.bias.copy_(P(tensors[b + "ffn_up.bias"]))
            blk.mlp.c_proj.weight.copy_(P(tensors[b + "ffn_down.weight"].T))
            blk.mlp.c_proj.bias.copy_(P(tensors[b + "ffn_down.bias"]))
        m.ln_f.weight.copy_(P(tensors["output_norm.weight"]))
        m.ln_f.bias.copy_(P(tensors["output_norm.bias"]))
        if spec["tied"]:
            assert "output.weight" not in tensors
            assert model.lm_head.weight.data_ptr() == m.wte.weight.data_ptr()
        else:
            model.lm_head.weight.copy_(P(tensors["output.weight"]))


def run_logits(model: GPT2LMHeadModel, tokens: list[int]) -> np.ndarray:
    """Run in float64 on a copy; returns float64 logits [n_tokens, n_vocab]."""
    import copy
    m = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        out = m(torch.tensor([tokens], dtype=torch.long), use_cache=False)
    return out.logits[0].detach().cpu().numpy().astype(np.float64)


# --------------------------------------------------------------------------
# Independent numpy forward pass with GGUF semantics (float64)
# --------------------------------------------------------------------------

def numpy_forward(tensors: dict[str, np.ndarray], spec: dict, tokens: list[int]) -> np.ndarray:
    T = {k: v.astype(np.float64) for k, v in tensors.items()}
    e, H = spec["n_embd"], spec["n_head"]
    hd = e // H
    n = len(tokens)

    def ln(x, w, b):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + LN_EPS) * w + b

    def gelu_tanh(x):
        return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))

    def linear(x, name):  # W rows are [out][in]: y = x W^T + b
        return x @ T[name + ".weight"].T + T[name + ".bias"]

    x = T["token_embd.weight"][tokens] + T["position_embd.weight"][:n]
    mask = np.triu(np.ones((n, n), dtype=bool), k=1)
    for i in range(spec["n_layer"]):
        b = f"blk.{i}."
        h = ln(x, T[b + "attn_norm.weight"], T[b + "attn_norm.bias"])
        qkv = linear(h, b + "attn_qkv")
        q, k, v = qkv[:, :e], qkv[:, e:2 * e], qkv[:, 2 * e:]
        att_out = np.zeros((n, e))
        for hh in range(H):
            sl = slice(hh * hd, (hh + 1) * hd)
            s = q[:, sl] @ k[:, sl].T / np.sqrt(hd)
            s[mask] = -np.inf
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            att_out[:, sl] = s @ v[:, sl]
        x = x + linear(att_out, b + "attn_output")
        h = ln(x, T[b + "ffn_norm.weight"], T[b + "ffn_norm.bias"])
        x = x + linear(gelu_tanh(linear(h, b + "ffn_up")), b + "ffn_down")
    x = ln(x, T["output_norm.weight"], T["output_norm.bias"])
    out_w = T["output.weight"] if "output.weight" in T else T["token_embd.weight"]
    return x @ out_w.T


# --------------------------------------------------------------------------
# GGUF writing / reading
# --------------------------------------------------------------------------

def write_gguf(path: Path, spec: dict, tensors: list[tuple[str, np.ndarray]], qtype: QT, ftype: int) -> dict[str, QT]:
    w = gguf.GGUFWriter(str(path), "gpt2")  # writes general.architecture
    w.add_name(f"fixture-{spec['name']}")
    w.add_context_length(spec["n_ctx"])
    w.add_embedding_length(spec["n_embd"])
    w.add_feed_forward_length(spec["n_ff"])
    w.add_block_count(spec["n_layer"])
    w.add_head_count(spec["n_head"])
    w.add_layer_norm_eps(LN_EPS)
    w.add_file_type(ftype)

    intended: dict[str, QT] = {}
    for name, arr in tensors:
        t = qtype if is_typed_matrix(name) else QT.F32
        intended[name] = t
        if t == QT.F32:
            w.add_tensor(name, arr.astype(np.float32))
        elif t == QT.F16:
            w.add_tensor(name, arr.astype(np.float16))
        else:
            q = gguf.quants.quantize(arr, t)
            assert q.dtype == np.uint8
            ref = ref_quantize(arr, t)
            if q.tobytes() != ref:
                raise SystemExit(f"gguf-py {t.name} quantizer differs from ggml reference on {name}")
            # uint8 byte array + raw_dtype: gguf-py derives the logical float shape
            w.add_tensor(name, q, raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return intended


def read_gguf(path: Path, spec: dict, intended: dict[str, QT], ftype: int,
              originals: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    r = gguf.GGUFReader(str(path))

    # metadata
    def field(key):
        f = r.fields[key]
        return f.contents()

    want = {
        "general.architecture": "gpt2",
        "general.name": f"fixture-{spec['name']}",
        "gpt2.context_length": spec["n_ctx"],
        "gpt2.embedding_length": spec["n_embd"],
        "gpt2.feed_forward_length": spec["n_ff"],
        "gpt2.block_count": spec["n_layer"],
        "gpt2.attention.head_count": spec["n_head"],
        "general.file_type": ftype,
    }
    for k, v in want.items():
        got = field(k)
        assert got == v, (path, k, got, v)
        if isinstance(v, int):
            assert r.fields[k].types == [gguf.GGUFValueType.UINT32], (k, r.fields[k].types)
    eps_f = r.fields["gpt2.attention.layer_norm_epsilon"]
    assert eps_f.types == [gguf.GGUFValueType.FLOAT32]
    assert np.float32(field("gpt2.attention.layer_norm_epsilon")) == np.float32(LN_EPS)
    extra = set(r.fields) - set(want) - {"gpt2.attention.layer_norm_epsilon"}
    assert all(k.startswith("GGUF.") for k in extra), extra  # only header pseudo-fields
    assert field("GGUF.version") == 3, field("GGUF.version")

    out: dict[str, np.ndarray] = {}
    names = [t.name for t in r.tensors]
    assert names == list(intended), (names, list(intended))
    for t in r.tensors:
        assert t.tensor_type == intended[t.name], (path, t.name, t.tensor_type, intended[t.name])
        shape = tuple(int(x) for x in reversed(list(t.shape)))  # GGUF ne[] is reversed
        assert shape == expected_shape(t.name, spec), (path, t.name, shape)
        assert t.data_offset % 32 == 0
        deq = gguf.quants.dequantize(np.array(t.data), t.tensor_type)
        deq = np.array(deq, dtype=np.float32).reshape(shape)
        orig = originals[t.name]
        if t.tensor_type == QT.F32:
            assert np.array_equal(deq, orig), t.name
        elif t.tensor_type == QT.F16:
            assert np.array_equal(deq, orig.astype(np.float16).astype(np.float32)), t.name
        else:
            assert np.array_equal(deq, gguf.quants.dequantize(gguf.quants.quantize(orig, t.tensor_type),
                                                               t.tensor_type).reshape(shape)), t.name
        out[t.name] = deq
    return out


def main() -> int:
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    OUT_DIR.mkdir(parents=True, exist_ok=True)

    manifest = {"models": []}
    report = []
    for spec in MODELS:
        for dim in (spec["n_embd"], spec["n_ff"]):
            assert dim % 32 == 0
        assert spec["n_embd"] % spec["n_head"] == 0
        assert N_TOKENS < spec["n_ctx"]

        model = build_model(spec)
        tok_rng = np.random.default_rng(spec["seed"] + 7)
        tokens = [int(x) for x in tok_rng.integers(0, spec["n_vocab"], size=N_TOKENS)]

        orig_logits = run_logits(model, tokens)
        tensors = model_to_gguf_tensors(model, spec)
        originals = dict(tensors)

        np_logits = numpy_forward(originals, spec, tokens)
        err = np.abs(np_logits - orig_logits).max()
        assert err < 1e-9, f"numpy GGUF-semantics forward disagrees with torch: {err}"

        for tname, qtype, ftype in TYPES:
            gpath = OUT_DIR / f"{spec['name']}.{tname}.gguf"
            intended = write_gguf(gpath, spec, tensors, qtype, ftype)
            stored = read_gguf(gpath, spec, intended, ftype, originals)

            ref_model = build_model(spec)  # fresh module, weights overwritten below
            load_gguf_tensors_into_model(ref_model, spec, stored)
            logits = run_logits(ref_model, tokens)

            np_l = numpy_forward(stored, spec, tokens)
            err = np.abs(np_l - logits).max()
            assert err < 1e-9, f"{gpath.name}: numpy forward disagrees with torch: {err}"
            if tname == "f32":
                err = np.abs(logits - orig_logits).max()
                assert err < 1e-6, f"f32 round trip does not reproduce original logits: {err}"

            assert logits.shape == (N_TOKENS, spec["n_vocab"])
            lpath = OUT_DIR / f"{spec['name']}.{tname}.logits.bin"
            lpath.write_bytes(logits.astype("<f4").tobytes(order="C"))

            diff = np.abs(logits - orig_logits).max()
            report.append((gpath.name, float(logits.std()), float(diff)))
            print(f"{spec['name']}.{tname}: logits std {logits.std():.4f}, "
                  f"max |diff| vs f32-original {diff:.4g}, "
                  f"argmax agreement {np.mean(logits.argmax(-1) == orig_logits.argmax(-1)):.2f}")

        manifest["models"].append({
            "name": spec["name"],
            "n_vocab": spec["n_vocab"],
            "n_ctx": spec["n_ctx"],
            "n_embd": spec["n_embd"],
            "n_head": spec["n_head"],
            "n_layer": spec["n_layer"],
            "n_ff": spec["n_ff"],
            "tied": spec["tied"],
            "tokens": tokens,
            "types": [t for t, _, _ in TYPES],
        })

    # one model per line, keys in a fixed order: small diffs, easy to read
    lines = ",\n".join("    " + json.dumps(m) for m in manifest["models"])
    (OUT_DIR / "manifest.json").write_text('{"models": [\n' + lines + "\n]}\n")
    assert json.loads((OUT_DIR / "manifest.json").read_text()) == manifest

    print("\nfiles:")
    for p in sorted(OUT_DIR.iterdir()):
        print(f"  {p.name:24s} {p.stat().st_size:8d}  sha256 {hashlib.sha256(p.read_bytes()).hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
