#!/usr/bin/env python3
"""Generate golden fixtures for embergpt's Llama architecture and its converter.

Everything goes to tests/fixtures/llama/; the Rust tests (tests/llama.rs) read
them without Python. The GGUF files themselves are NOT made here: the tests
convert the inputs with `embergpt convert` (the CLI's library code), so the
converter is under test too. Every reference below comes from transformers.

1. stories260K (../shared/data/stories260K.bin, a llama2.c checkpoint):
   the llama2.c arrays are loaded into a transformers `LlamaForCausalLM` in
   float64. llama2.c (like Meta's original Llama) rotates consecutive pairs
   (x[2i], x[2i+1]), i.e. GGUF order; HF's rotate_half pairs (x[i], x[i+d/2]),
   so the HF model gets wq/wk permuted exactly as HF's
   convert_llama_weights_to_hf.py does. An independent numpy float64 forward
   pass written after llama2.c's run.c (consecutive pairs, unpermuted weights)
   must agree with the HF logits, which pins the permutation direction.
     -> stories260K.logits.bin   f32 [n][512] for `tokens`
     -> greedy continuations in manifest.json

2. hf-tiny/ : a random Llama checkpoint with grouped-query attention (4 heads,
   2 kv heads, head_dim 16, untied output), saved with save_pretrained
   (safetensors) plus a small byte-level BPE tokenizer.json.
     -> hf-tiny.f32.logits.bin   reference from the float32 weights
     -> hf-tiny.q8_0.logits.bin  reference from the weights after a Q8_0
        round trip of every matrix (gguf-py's quantizer = ggml's reference),
        so only the engine's own error remains.

3. gpt2-tiny/ : a random GPT-2 checkpoint (save_pretrained) with vocab.json +
   merges.txt of a small byte-level BPE vocabulary.
     -> gpt2-tiny.f32.logits.bin

4. SmolLM2-135M-Instruct Q4_1 GGUF (fetched by tests/scripts/fetch_smollm2.sh
   into .models/): transformers loads the GGUF (dequantizing it) and runs in
   float64. The prompts are tokenized with the GGUF's own tokenizer (through
   transformers) and stored as ids.
     -> smollm2.logits.bin        f32 [n][49152]
     -> smollm2.q8act.logits.bin  the same with llama.cpp's run-time int8
        activation quantization emulated (see q8_blocks), which is what a
        quantized-weight engine computes by design
     -> greedy continuations (both) in manifest.json

Run from the repository root (no network; about 3 minutes):

    bash tests/scripts/fetch_smollm2.sh
    python3 tests/scripts/gen_llama_fixtures.py

Versions used: torch 2.15.0, transformers 5.24.0, gguf 0.19.0, numpy 2.4.6,
tokenizers 0.23.3, accelerate (transformers needs it to load a GGUF).
"""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import gguf  # noqa: E402
from gguf import GGMLQuantizationType as QT  # noqa: E402
from transformers import (  # noqa: E402
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
)

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests" / "fixtures" / "llama"
SHARED = REPO.parent / "shared" / "data"
SMOL = REPO / ".models" / "SmolLM2-135M-Instruct.Q4_1.gguf"

torch.set_num_threads(1)
torch.manual_seed(0)


# transformers' LlamaRMSNorm computes in float32 whatever the model's dtype;
# make it compute in the input's dtype so the float64 reference is float64
# throughout (SDPA attention on CPU computes in the input's dtype already).
def _rms_norm_in_dtype(self, h):
    var = h.pow(2).mean(-1, keepdim=True)
    return self.weight * (h * torch.rsqrt(var + self.variance_epsilon))


import transformers.models.llama.modeling_llama as _llama  # noqa: E402

_llama.LlamaRMSNorm.forward = _rms_norm_in_dtype


def save_f32(name: str, a: np.ndarray) -> None:
    a.astype("<f4").tofile(OUT / name)


def greedy(model, prompt: list[int], n_new: int) -> list[int]:
    """Greedy continuation with transformers' own generate (KV cache on)."""
    ids = torch.tensor([prompt])
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        do_sample=False,
        max_new_tokens=n_new,
        min_new_tokens=n_new,
        pad_token_id=0,
        eos_token_id=None,
    )
    return out[0, len(prompt):].tolist()


def exact_rope(model) -> None:
    """transformers computes RoPE's angles in float32 even for a float64 model
    (LlamaRotaryEmbedding.forward casts to float); recompute the inverse
    frequencies and the angles in float64 so the reference is float64 throughout."""
    rot = model.model.rotary_emb
    cfg = model.config
    hd = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    theta = cfg.rope_parameters["rope_theta"] if getattr(cfg, "rope_parameters", None) \
        else cfg.rope_theta
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    rot.inv_freq = inv
    if hasattr(rot, "original_inv_freq"):
        rot.original_inv_freq = inv

    def forward(x, position_ids):
        freqs = position_ids[..., None].double() * inv
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos().to(x.dtype), emb.sin().to(x.dtype)

    rot.forward = forward


def logits_of(model, tokens: list[int]) -> np.ndarray:
    with torch.no_grad():
        return model(torch.tensor([tokens])).logits[0].double().numpy()


# --------------------------------------------------------------------------
# 1. stories260K
# --------------------------------------------------------------------------


def read_llama2c(path: Path):
    raw = path.read_bytes()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq = struct.unpack("<7i", raw[:28])
    shared = vocab > 0
    vocab = abs(vocab)
    f = np.frombuffer(raw[28:], dtype="<f4").astype(np.float64)
    hs = dim // n_heads
    kv_dim = hs * n_kv
    off = 0

    def take(*shape):
        nonlocal off
        n = int(np.prod(shape))
        a = f[off:off + n].reshape(shape)
        off += n
        return a

    w = dict(
        emb=take(vocab, dim),
        rms_att=take(n_layers, dim),
        wq=take(n_layers, dim, dim),
        wk=take(n_layers, kv_dim, dim),
        wv=take(n_layers, kv_dim, dim),
        wo=take(n_layers, dim, dim),
        rms_ffn=take(n_layers, dim),
        w1=take(n_layers, hidden, dim),
        w2=take(n_layers, dim, hidden),
        w3=take(n_layers, hidden, dim),
        rms_final=take(dim),
    )
    take(seq, hs // 2)
    take(seq, hs // 2)
    w["cls"] = w["emb"] if shared else take(vocab, dim)
    assert off == f.size, "trailing data in llama2.c checkpoint"
    hp = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads, n_kv=n_kv,
              vocab=vocab, seq=seq, shared=shared)
    return hp, w


def meta_to_hf(w: np.ndarray, n_heads: int) -> np.ndarray:
    """HF's convert_llama_weights_to_hf.py permute: consecutive pairs -> halves."""
    out_dim, in_dim = w.shape
    return (w.reshape(n_heads, out_dim // n_heads // 2, 2, in_dim)
             .transpose(0, 2, 1, 3).reshape(out_dim, in_dim))


def llama2c_forward(hp, w, tokens, eps=1e-5, theta=10000.0):
    """numpy float64 forward after llama2.c run.c (consecutive-pair RoPE)."""
    dim, nh, nkv = hp["dim"], hp["n_heads"], hp["n_kv"]
    hs = dim // nh
    n = len(tokens)

    def rms(x, g):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * g

    def rope(x, pos):  # x: [n, heads, hs]
        i = np.arange(0, hs, 2)
        freq = 1.0 / theta ** (i / hs)
        ang = pos[:, None] * freq[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        y = np.empty_like(x)
        y[..., 0::2] = x0 * c - x1 * s
        y[..., 1::2] = x0 * s + x1 * c
        return y

    pos = np.arange(n, dtype=np.float64)
    x = w["emb"][tokens]
    for l in range(hp["n_layers"]):
        h = rms(x, w["rms_att"][l])
        q = rope((h @ w["wq"][l].T).reshape(n, nh, hs), pos)
        k = rope((h @ w["wk"][l].T).reshape(n, nkv, hs), pos)
        v = (h @ w["wv"][l].T).reshape(n, nkv, hs)
        rep = nh // nkv
        k = np.repeat(k, rep, axis=1)
        v = np.repeat(v, rep, axis=1)
        att = np.einsum("qhd,khd->hqk", q, k) / np.sqrt(hs)
        att += np.triu(np.full((n, n), -np.inf), 1)[None]
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = np.einsum("hqk,khd->qhd", att, v).reshape(n, dim)
        x = x + o @ w["wo"][l].T
        h = rms(x, w["rms_ffn"][l])
        g = h @ w["w1"][l].T
        x = x + ((g / (1 + np.exp(-g))) * (h @ w["w3"][l].T)) @ w["w2"][l].T
    return rms(x, w["rms_final"]) @ w["cls"].T


def hf_from_llama2c(hp, w) -> LlamaForCausalLM:
    cfg = LlamaConfig(
        vocab_size=hp["vocab"], hidden_size=hp["dim"], intermediate_size=hp["hidden"],
        num_hidden_layers=hp["n_layers"], num_attention_heads=hp["n_heads"],
        num_key_value_heads=hp["n_kv"], max_position_embeddings=hp["seq"],
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=hp["shared"],
        attention_bias=False, mlp_bias=False, hidden_act="silu",
        bos_token_id=1, eos_token_id=2, attn_implementation="sdpa",
    )
    m = LlamaForCausalLM(cfg).double().eval()
    t = lambda a: torch.tensor(np.ascontiguousarray(a), dtype=torch.float64)  # noqa: E731
    sd = {"model.embed_tokens.weight": t(w["emb"]), "model.norm.weight": t(w["rms_final"])}
    for l in range(hp["n_layers"]):
        p = f"model.layers.{l}."
        sd[p + "input_layernorm.weight"] = t(w["rms_att"][l])
        sd[p + "self_attn.q_proj.weight"] = t(meta_to_hf(w["wq"][l], hp["n_heads"]))
        sd[p + "self_attn.k_proj.weight"] = t(meta_to_hf(w["wk"][l], hp["n_kv"]))
        sd[p + "self_attn.v_proj.weight"] = t(w["wv"][l])
        sd[p + "self_attn.o_proj.weight"] = t(w["wo"][l])
        sd[p + "post_attention_layernorm.weight"] = t(w["rms_ffn"][l])
        sd[p + "mlp.gate_proj.weight"] = t(w["w1"][l])
        sd[p + "mlp.up_proj.weight"] = t(w["w3"][l])
        sd[p + "mlp.down_proj.weight"] = t(w["w2"][l])
    sd["lm_head.weight"] = t(w["cls"])
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert not unexpected and all("rotary" in k for k in missing), (missing, unexpected)
    exact_rope(m)
    return m


def stories(manifest: dict) -> None:
    hp, w = read_llama2c(SHARED / "stories260K.bin")
    model = hf_from_llama2c(hp, w)
    # A real story start: BOS then the model's own greedy text, then random ids,
    # so the logits cover both likely and unlikely contexts (48 positions).
    story = [1] + greedy(model, [1], 31)
    rng = np.random.default_rng(260)
    tokens = story + rng.integers(3, hp["vocab"], 16).tolist()
    ref = logits_of(model, tokens)
    indep = llama2c_forward(hp, w, np.array(tokens))
    err = np.abs(ref - indep).max()
    assert err < 1e-9, f"HF (permuted) vs llama2.c-order numpy forward: {err}"
    save_f32("stories260K.logits.bin", ref)
    prompts = [[1], [1] + story[1:6], [1] + tokens[40:44]]
    manifest["stories260K"] = dict(
        n_vocab=hp["vocab"], tokens=tokens,
        greedy=[dict(prompt=p, continuation=greedy(model, p, 40)) for p in prompts],
    )
    print(f"stories260K: {len(tokens)} tokens, HF vs numpy llama2.c forward {err:.2e}")


# --------------------------------------------------------------------------
# 2./3. tiny random HF checkpoints
# --------------------------------------------------------------------------

# A small byte-level BPE vocabulary: the 256 GPT-2 byte symbols, then merges.
def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def tiny_bpe(n_merges: int):
    sym = bytes_to_unicode()
    vocab = {sym[b]: i for i, b in enumerate(range(256))}
    merges = []
    pairs = ["Ġ t", "h e", "Ġt he", "i n", "a n", "e r", "Ġ a", "o n", "r e", "Ġ s",
             "e n", "a t", "o u", "Ġ w", "i s", "Ġ b", "e d", "Ġ o", "i t", "n d",
             "Ġ h", "e s", "Ġ c", "o r", "Ġ f", "Ġ m", "in g", "l l", "Ġ p", "a r",
             "Ġ d", "l e"]
    for p in pairs[:n_merges]:
        a, b = p.split(" ")
        merges.append(p)
        vocab[a + b] = len(vocab)
    return vocab, merges


def tiny_llama(manifest: dict) -> None:
    d = OUT / "hf-tiny"
    d.mkdir(parents=True, exist_ok=True)
    vocab, merges = tiny_bpe(30)
    vocab["<s>"] = len(vocab)
    vocab["</s>"] = len(vocab)
    cfg = LlamaConfig(
        vocab_size=len(vocab), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16,
        max_position_embeddings=64, rms_norm_eps=1e-6, rope_theta=10000.0,
        tie_word_embeddings=False, bos_token_id=vocab["<s>"], eos_token_id=vocab["</s>"],
        attn_implementation="sdpa",
    )
    torch.manual_seed(7)
    m = LlamaForCausalLM(cfg).float().eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith(("embed_tokens.weight", "lm_head.weight")):
                # Token vectors with log-normal norms, like a trained model's
                # (as in gen_gpt2_fixtures.py): heavy-tailed logits with a clear
                # winner at most positions instead of an isotropic Gaussian
                # vocabulary's near-ties, which any rounding would reorder.
                row = torch.exp(0.5 * torch.randn(p.shape[0], 1))
                p.copy_(row * torch.randn_like(p) / p.shape[1] ** 0.5 * 3.0)
            elif p.ndim == 2:
                # std 1/sqrt(fan_in): each projection's gain near 1, as in trained models.
                p.copy_(torch.randn_like(p) / p.shape[1] ** 0.5)
            else:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
    m.save_pretrained(d, safe_serialization=True)
    tok = {
        "version": "1.0",
        "added_tokens": [
            {"id": vocab["<s>"], "content": "<s>", "special": True, "single_word": False,
             "lstrip": False, "rstrip": False, "normalized": False},
            {"id": vocab["</s>"], "content": "</s>", "special": True, "single_word": False,
             "lstrip": False, "rstrip": False, "normalized": False},
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": merges},
    }
    (d / "tokenizer.json").write_text(json.dumps(tok, ensure_ascii=False, indent=1))
    (d / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": True}, indent=1))
    # Independent check of what was saved: reload from disk.
    m2 = LlamaForCausalLM.from_pretrained(d, attn_implementation="sdpa").double().eval()
    exact_rope(m2)
    rng = np.random.default_rng(64)
    tokens = rng.integers(0, cfg.vocab_size, 40).tolist()
    ref = logits_of(m2, tokens)
    save_f32("hf-tiny.f32.logits.bin", ref)
    # Q8_0 round trip of every matrix, as `embergpt convert --type q8_0` stores them.
    with torch.no_grad():
        for name, p in m2.named_parameters():
            if p.ndim == 2:
                a = p.detach().float().numpy()
                q = gguf.quants.quantize(a, QT.Q8_0)
                p.copy_(torch.tensor(gguf.quants.dequantize(q, QT.Q8_0), dtype=torch.float64))
    save_f32("hf-tiny.q8_0.logits.bin", logits_of(m2, tokens))
    manifest["hf-tiny"] = dict(n_vocab=cfg.vocab_size, tokens=tokens, n_head=4, n_head_kv=2,
                               n_layer=2, n_embd=64, n_ff=96)
    size = sum(f.stat().st_size for f in d.iterdir())
    print(f"hf-tiny: {size} bytes on disk, vocab {cfg.vocab_size}")


def tiny_gpt2(manifest: dict) -> None:
    d = OUT / "gpt2-tiny"
    d.mkdir(parents=True, exist_ok=True)
    vocab, merges = tiny_bpe(32)
    vocab["<|endoftext|>"] = len(vocab)
    cfg = GPT2Config(vocab_size=len(vocab), n_positions=48, n_embd=64, n_layer=2, n_head=4,
                     bos_token_id=len(vocab) - 1, eos_token_id=len(vocab) - 1)
    torch.manual_seed(11)
    m = GPT2LMHeadModel(cfg).float().eval()
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.ndim == 2:
                p.copy_(torch.randn_like(p) * 0.15)
            elif name.endswith("weight"):
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(0.05 * torch.randn_like(p))
    m.save_pretrained(d, safe_serialization=True)
    (d / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
    (d / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    m2 = GPT2LMHeadModel.from_pretrained(d).double().eval()
    rng = np.random.default_rng(2)
    tokens = rng.integers(0, cfg.vocab_size, 30).tolist()
    save_f32("gpt2-tiny.f32.logits.bin", logits_of(m2, tokens))
    manifest["gpt2-tiny"] = dict(n_vocab=cfg.vocab_size, tokens=tokens)
    size = sum(f.stat().st_size for f in d.iterdir())
    print(f"gpt2-tiny: {size} bytes on disk, vocab {cfg.vocab_size}")


# --------------------------------------------------------------------------
# 4. SmolLM2-135M-Instruct (GGUF as shipped)
# --------------------------------------------------------------------------

def smollm2(manifest: dict) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not SMOL.exists():
        sys.exit(f"{SMOL} missing: run tests/scripts/fetch_smollm2.sh first")
    tok = AutoTokenizer.from_pretrained(SMOL.parent, gguf_file=SMOL.name)
    model = AutoModelForCausalLM.from_pretrained(
        SMOL.parent, gguf_file=SMOL.name, dtype=torch.float32, attn_implementation="sdpa"
    ).double().eval()
    exact_rope(model)
    chat = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                   tokenize=False, add_generation_prompt=True)
    texts = [
        "The quick brown fox",
        "Once upon a time, there was a little robot who",
        chat,
    ]
    prompts = [tok(t, add_special_tokens=False)["input_ids"] for t in texts]
    logit_tokens = tok("Rust is a systems programming language that runs blazingly fast",
                       add_special_tokens=False)["input_ids"][:16]
    ref = logits_of(model, logit_tokens)
    save_f32("smollm2.logits.bin", ref)
    greedy_out = []
    for t, p in zip(texts, prompts):
        c = greedy(model, p, 24)
        greedy_out.append(dict(text=t, prompt=p, continuation=c))
        print(f"smollm2 greedy: {t!r} -> {tok.decode(c)!r}")
    # The same model with llama.cpp's run-time activation quantization emulated:
    # the input of every matrix product is rounded to 32-element int8 blocks
    # (scale amax/127 stored as f16, round half to even), as embergpt and
    # llama.cpp do before their Q4_1 x Q8_1 / Q8_0 x Q8_0 dot products.
    hooks = [mod.register_forward_pre_hook(lambda _m, a: (q8_blocks(a[0]),) + a[1:])
             for mod in model.modules() if isinstance(mod, torch.nn.Linear)]
    save_f32("smollm2.q8act.logits.bin", logits_of(model, logit_tokens))
    for g, p in zip(greedy_out, prompts):
        g["continuation_q8act"] = greedy(model, p, 24)
        print(f"smollm2 greedy (q8 activations): {tok.decode(g['continuation_q8act'])!r}")
    for h in hooks:
        h.remove()
    manifest["smollm2"] = dict(file=SMOL.name, n_vocab=int(ref.shape[1]), tokens=logit_tokens,
                               greedy=greedy_out)


def q8_blocks(x: torch.Tensor) -> torch.Tensor:
    """Round x (last dim a multiple of 32) the way ggml's quantize_row_q8_0/q8_1 do."""
    xb = x.float().reshape(*x.shape[:-1], -1, 32)
    d = xb.abs().amax(-1, keepdim=True) / 127
    inv = torch.where(d != 0, 1.0 / d, torch.zeros_like(d))
    q = torch.round(xb * inv)  # half to even, like the scalar kernel's rintf
    return (q * d.half().float()).reshape(x.shape).to(x.dtype)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    manifest: dict = {}
    stories(manifest)
    tiny_llama(manifest)
    tiny_gpt2(manifest)
    if "--no-smollm2" not in sys.argv:
        smollm2(manifest)
    else:
        old = OUT / "manifest.json"
        if old.exists():
            manifest["smollm2"] = json.loads(old.read_text())["smollm2"]
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
