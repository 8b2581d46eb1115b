//! Models: hyperparameters, weight views borrowed from the GGUF bytes, and the
//! checks that every tensor has the shape the hyperparameters imply.
//!
//! A [`Model`] is small and `Copy`: it holds the validated [`Gguf`], the
//! hyperparameters and the global tensors. Per-layer tensors are located once
//! per context (into the context's arena, see [`LayerRefs`]) so that neither the
//! model nor the forward pass ever searches the tensor directory by name.

pub mod gpt2;
pub mod llama;

use crate::error::{Error, Result};
use crate::gguf::{Gguf, TensorInfo};
use crate::kernels::Matrix;
use crate::quant::GgmlType;

/// Most layers a model may have.
pub const MAX_LAYERS: usize = 256;
/// Largest accepted embedding, feed-forward or context size.
pub const MAX_DIM: usize = 1 << 20;
/// Largest accepted vocabulary.
pub const MAX_VOCAB: usize = 1 << 22;

/// Supported architectures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    /// GPT-2: LayerNorm, learned positions, fused QKV with biases, GELU MLP.
    Gpt2,
    /// Llama: RMSNorm, RoPE, separate Q/K/V (grouped-query), SwiGLU MLP, no biases.
    Llama,
}

impl Arch {
    /// The `general.architecture` string.
    pub const fn name(self) -> &'static str {
        match self {
            Arch::Gpt2 => "gpt2",
            Arch::Llama => "llama",
        }
    }
}

/// Hyperparameters read from the metadata (and the embedding tensor).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hparams {
    /// Architecture.
    pub arch: Arch,
    /// Vocabulary size (rows of `token_embd`).
    pub n_vocab: usize,
    /// Training context length.
    pub n_ctx: usize,
    /// Embedding width.
    pub n_embd: usize,
    /// Feed-forward width.
    pub n_ff: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Key/value heads (equal to `n_head` without grouped-query attention).
    pub n_head_kv: usize,
    /// Normalisation epsilon.
    pub eps: f32,
    /// Dimensions of each head that RoPE rotates (0: no RoPE, as in GPT-2).
    pub n_rot: usize,
    /// RoPE base frequency (`theta`).
    pub rope_freq_base: f32,
}

impl Hparams {
    /// Width of one head.
    /// (0 for `n_head == 0`, which a loaded model never has.)
    pub fn head_dim(&self) -> usize {
        self.n_embd.checked_div(self.n_head).unwrap_or(0)
    }
    /// Width of the key (and value) projection.
    pub fn kv_dim(&self) -> usize {
        self.head_dim().saturating_mul(self.n_head_kv)
    }
}

/// Per-layer tensor kinds (the union over architectures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum LayerKind {
    AttnNormW,
    AttnNormB,
    AttnQkvW,
    AttnQkvB,
    AttnOutW,
    AttnOutB,
    FfnNormW,
    FfnNormB,
    FfnUpW,
    FfnUpB,
    FfnDownW,
    FfnDownB,
    AttnQW,
    AttnKW,
    AttnVW,
    FfnGateW,
}

/// Number of [`LayerKind`]s.
pub const N_LAYER_KINDS: usize = 16;

/// Bit set of the [`LayerKind`]s an architecture requires in every layer
/// (and the only ones it accepts).
const fn layer_mask(arch: Arch) -> u32 {
    const fn bits(kinds: &[LayerKind]) -> u32 {
        let mut m = 0;
        let mut rest = kinds;
        while let [k, tail @ ..] = rest {
            m |= 1 << *k as u32;
            rest = tail;
        }
        m
    }
    use LayerKind as K;
    match arch {
        Arch::Gpt2 => bits(&[
            K::AttnNormW,
            K::AttnNormB,
            K::AttnQkvW,
            K::AttnQkvB,
            K::AttnOutW,
            K::AttnOutB,
            K::FfnNormW,
            K::FfnNormB,
            K::FfnUpW,
            K::FfnUpB,
            K::FfnDownW,
            K::FfnDownB,
        ]),
        Arch::Llama => bits(&[
            K::AttnNormW,
            K::AttnQW,
            K::AttnKW,
            K::AttnVW,
            K::AttnOutW,
            K::FfnNormW,
            K::FfnGateW,
            K::FfnUpW,
            K::FfnDownW,
        ]),
    }
}

const LAYER_NAMES: [(&str, LayerKind); N_LAYER_KINDS] = [
    ("attn_norm.weight", LayerKind::AttnNormW),
    ("attn_norm.bias", LayerKind::AttnNormB),
    ("attn_qkv.weight", LayerKind::AttnQkvW),
    ("attn_qkv.bias", LayerKind::AttnQkvB),
    ("attn_output.weight", LayerKind::AttnOutW),
    ("attn_output.bias", LayerKind::AttnOutB),
    ("ffn_norm.weight", LayerKind::FfnNormW),
    ("ffn_norm.bias", LayerKind::FfnNormB),
    ("ffn_up.weight", LayerKind::FfnUpW),
    ("ffn_up.bias", LayerKind::FfnUpB),
    ("ffn_down.weight", LayerKind::FfnDownW),
    ("ffn_down.bias", LayerKind::FfnDownB),
    ("attn_q.weight", LayerKind::AttnQW),
    ("attn_k.weight", LayerKind::AttnKW),
    ("attn_v.weight", LayerKind::AttnVW),
    ("ffn_gate.weight", LayerKind::FfnGateW),
];

/// Global tensor kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GlobalKind {
    TokenEmbd,
    PosEmbd,
    OutputNormW,
    OutputNormB,
    Output,
}

const GLOBAL_NAMES: [(&str, GlobalKind); 5] = [
    ("token_embd.weight", GlobalKind::TokenEmbd),
    ("position_embd.weight", GlobalKind::PosEmbd),
    ("output_norm.weight", GlobalKind::OutputNormW),
    ("output_norm.bias", GlobalKind::OutputNormB),
    ("output.weight", GlobalKind::Output),
];

enum Slot {
    Global(GlobalKind),
    Layer(usize, LayerKind),
}

/// Map a tensor name to its slot (`blk.N.<kind>` or a global name).
fn classify(name: &[u8]) -> Option<Slot> {
    if let Some(rest) = name.strip_prefix(b"blk.") {
        let dot = rest.iter().position(|&c| c == b'.')?;
        let (num, kind) = rest.split_at_checked(dot)?;
        let kind = kind.get(1..)?; // after the '.'
        if num.is_empty() || num.len() > 3 || (num.len() > 1 && num.first() == Some(&b'0')) {
            return None;
        }
        let mut l = 0usize;
        for &c in num {
            if !c.is_ascii_digit() {
                return None;
            }
            l = l * 10 + (c - b'0') as usize;
        }
        let k = LAYER_NAMES.iter().find(|(n, _)| n.as_bytes() == kind)?.1;
        return Some(Slot::Layer(l, k));
    }
    GLOBAL_NAMES
        .iter()
        .find(|(n, _)| n.as_bytes() == name)
        .map(|&(_, k)| Slot::Global(k))
}

/// Where a tensor lies in the file: byte range and type (plain data, kept in the arena).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TensorRef {
    /// Offset of the first byte in the file.
    pub off: usize,
    /// Length in bytes (0 = absent).
    pub len: usize,
    /// ggml type id.
    pub ty: usize,
    /// `ne[0]`.
    pub cols: usize,
    /// `ne[1]`.
    pub rows: usize,
}

/// The tensors of one layer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct LayerRefs {
    /// Indexed by [`LayerKind`].
    pub t: [TensorRef; N_LAYER_KINDS],
}

// SAFETY: repr(C) structs of usize only: no padding, every bit pattern valid.
unsafe impl crate::arena::Pod for LayerRefs {}

impl LayerRefs {
    /// The tensor of `kind` (every [`LayerKind`] has a slot; the fallback is dead).
    #[inline(always)]
    pub(crate) fn get(&self, kind: LayerKind) -> TensorRef {
        self.t.get(kind as usize).copied().unwrap_or_default()
    }
}

/// `s[r]`, or [`Error::ShapeMismatch`]: the forward passes slice their arena
/// buffers through this, so a broken shape invariant is an error, not a panic.
#[inline(always)]
pub(crate) fn part<T, R: core::slice::SliceIndex<[T], Output = [T]>>(
    s: &[T],
    r: R,
) -> Result<&[T]> {
    s.get(r).ok_or(Error::ShapeMismatch)
}

/// `&mut s[r]`, or [`Error::ShapeMismatch`] (see [`part`]).
#[inline(always)]
pub(crate) fn part_mut<T, R: core::slice::SliceIndex<[T], Output = [T]>>(
    s: &mut [T],
    r: R,
) -> Result<&mut [T]> {
    s.get_mut(r).ok_or(Error::ShapeMismatch)
}

/// Expected `(ne0, ne1)` of a layer tensor, and whether it is a matrix.
fn layer_shape(hp: &Hparams, k: LayerKind) -> (usize, usize, bool) {
    let (d, ff) = (hp.n_embd, hp.n_ff);
    match k {
        LayerKind::AttnNormW
        | LayerKind::AttnNormB
        | LayerKind::AttnOutB
        | LayerKind::FfnNormW
        | LayerKind::FfnNormB
        | LayerKind::FfnDownB => (d, 1, false),
        LayerKind::AttnQkvW => (d, d + 2 * hp.kv_dim(), true),
        LayerKind::AttnQkvB => (d + 2 * hp.kv_dim(), 1, false),
        LayerKind::AttnOutW | LayerKind::AttnQW => (d, d, true),
        LayerKind::AttnKW | LayerKind::AttnVW => (d, hp.kv_dim(), true),
        LayerKind::FfnUpW | LayerKind::FfnGateW => (d, ff, true),
        LayerKind::FfnUpB => (ff, 1, false),
        LayerKind::FfnDownW => (ff, d, true),
    }
}

/// Check a tensor's shape and type: matrices any supported type; vectors F32.
fn check(t: &TensorInfo<'_>, ne0: usize, ne1: usize, matrix: bool) -> Result<()> {
    let dims_ok = t.ne[0] == ne0 && t.ne[1] == ne1 && t.ne[2] == 1 && t.ne[3] == 1;
    if !dims_ok || (!matrix && t.n_dims != 1) {
        return Err(Error::ShapeMismatch);
    }
    if matrix && !t.ty.is_supported() || !matrix && t.ty != GgmlType::F32 {
        return Err(Error::UnsupportedTensorType);
    }
    Ok(())
}

fn matrix<'a>(t: &TensorInfo<'a>) -> Matrix<'a> {
    Matrix {
        ty: t.ty,
        rows: t.ne[1],
        cols: t.ne[0],
        data: t.data,
    }
}

/// An optional dimension: `default` when the key is absent, checked like [`dim`] otherwise.
fn optional(g: &Gguf<'_>, key: &str, default: usize, max: usize) -> Result<usize> {
    match g.get(key) {
        None => Ok(default),
        Some(_) => dim(g, key, max),
    }
}

fn dim(g: &Gguf<'_>, key: &str, max: usize) -> Result<usize> {
    let v = g.get_u64(key)?;
    if v == 0 || v > max as u64 {
        return Err(Error::BadHyperparameters);
    }
    Ok(v as usize)
}

/// A validated model borrowed from GGUF bytes.
#[derive(Clone, Copy, Debug)]
pub struct Model<'a> {
    gguf: Gguf<'a>,
    hp: Hparams,
    /// `[n_vocab][n_embd]`.
    pub(crate) token_embd: Matrix<'a>,
    /// `[n_ctx][n_embd]` (GPT-2).
    pub(crate) pos_embd: Option<Matrix<'a>>,
    /// `[n_embd]` f32 bytes.
    pub(crate) output_norm_w: &'a [u8],
    /// `[n_embd]` f32 bytes (GPT-2).
    pub(crate) output_norm_b: Option<&'a [u8]>,
    /// `[n_vocab][n_embd]`: `output.weight`, or `token_embd` when tied.
    pub(crate) output: Matrix<'a>,
    tied: bool,
}

impl<'a> Model<'a> {
    /// Parse, validate and load a model from GGUF bytes (zero-copy).
    pub fn load(bytes: &'a [u8]) -> Result<Self> {
        Self::from_gguf(Gguf::parse(bytes)?)
    }

    /// Load a model from an already parsed file.
    pub fn from_gguf(g: Gguf<'a>) -> Result<Self> {
        let arch = match g.get_str("general.architecture")? {
            b"gpt2" => Arch::Gpt2,
            b"llama" => Arch::Llama,
            _ => return Err(Error::UnsupportedArchitecture),
        };
        let k = |suffix: &str| arch_key(arch, suffix);
        let n_ctx = dim(&g, &k(".context_length"), MAX_DIM)?;
        let n_embd = dim(&g, &k(".embedding_length"), MAX_DIM)?;
        let n_ff = dim(&g, &k(".feed_forward_length"), MAX_DIM)?;
        let n_layer = dim(&g, &k(".block_count"), MAX_LAYERS)?;
        let n_head = dim(&g, &k(".attention.head_count"), MAX_DIM)?;
        let (n_head_kv, eps, n_rot, rope_freq_base) = match arch {
            Arch::Gpt2 => (
                n_head,
                g.get_f32(&k(".attention.layer_norm_epsilon"))?,
                0,
                0.0,
            ),
            Arch::Llama => {
                // llama.cpp's defaults: no GQA, RoPE over the whole head, base 10000.
                let n_head_kv = optional(&g, &k(".attention.head_count_kv"), n_head, MAX_DIM)?;
                let head_dim = n_embd / n_head;
                let n_rot = optional(&g, &k(".rope.dimension_count"), head_dim, MAX_DIM)?;
                let base = match g.get(&k(".rope.freq_base")) {
                    None => 10000.0,
                    Some(v) => v.as_f32().ok_or(Error::BadMetadataType)?,
                };
                let eps = g.get_f32(&k(".attention.layer_norm_rms_epsilon"))?;
                if n_head % n_head_kv != 0 || n_rot % 2 != 0 || n_rot > head_dim {
                    return Err(Error::BadHyperparameters);
                }
                if !(base.is_finite() && base > 1.0) {
                    return Err(Error::BadHyperparameters);
                }
                (n_head_kv, eps, n_rot, base)
            }
        };
        if n_embd % n_head != 0 || !(eps > 0.0 && eps < 1.0) {
            return Err(Error::BadHyperparameters);
        }
        let te = g.tensor("token_embd.weight").ok_or(Error::MissingTensor)?;
        let n_vocab = te.ne[1];
        if n_vocab == 0 || n_vocab > MAX_VOCAB {
            return Err(Error::BadHyperparameters);
        }
        if let Some(v) = g.get(&k(".vocab_size")) {
            if v.as_u64().ok_or(Error::BadMetadataType)? != n_vocab as u64 {
                return Err(Error::ShapeMismatch);
            }
        }
        let hp = Hparams {
            arch,
            n_vocab,
            n_ctx,
            n_embd,
            n_ff,
            n_layer,
            n_head,
            n_head_kv,
            eps,
            n_rot,
            rope_freq_base,
        };
        let is_gpt2 = arch == Arch::Gpt2;

        let mut token_embd = None;
        let mut pos_embd = None;
        let mut norm_w = None;
        let mut norm_b = None;
        let mut output = None;
        let mut present = [0u32; MAX_LAYERS];
        for t in g.tensors() {
            match classify(t.name).ok_or(Error::UnexpectedTensor)? {
                Slot::Global(kind) => {
                    let gpt2_only = matches!(kind, GlobalKind::PosEmbd | GlobalKind::OutputNormB);
                    if gpt2_only && !is_gpt2 {
                        return Err(Error::UnexpectedTensor);
                    }
                    let (slot_is_set, ne0, ne1, is_matrix) = match kind {
                        GlobalKind::TokenEmbd => (token_embd.is_some(), n_embd, n_vocab, true),
                        GlobalKind::PosEmbd => (pos_embd.is_some(), n_embd, n_ctx, true),
                        GlobalKind::OutputNormW => (norm_w.is_some(), n_embd, 1, false),
                        GlobalKind::OutputNormB => (norm_b.is_some(), n_embd, 1, false),
                        GlobalKind::Output => (output.is_some(), n_embd, n_vocab, true),
                    };
                    if slot_is_set {
                        return Err(Error::DuplicateName);
                    }
                    check(&t, ne0, ne1, is_matrix)?;
                    match kind {
                        GlobalKind::TokenEmbd => token_embd = Some(matrix(&t)),
                        GlobalKind::PosEmbd => pos_embd = Some(matrix(&t)),
                        GlobalKind::OutputNormW => norm_w = Some(t.data),
                        GlobalKind::OutputNormB => norm_b = Some(t.data),
                        GlobalKind::Output => output = Some(matrix(&t)),
                    }
                }
                Slot::Layer(l, kind) => {
                    let bit = 1u32 << kind as usize;
                    if l >= n_layer || layer_mask(arch) & bit == 0 {
                        return Err(Error::UnexpectedTensor);
                    }
                    let seen = present.get_mut(l).ok_or(Error::UnexpectedTensor)?;
                    if *seen & bit != 0 {
                        return Err(Error::DuplicateName);
                    }
                    *seen |= bit;
                    let (ne0, ne1, m) = layer_shape(&hp, kind);
                    check(&t, ne0, ne1, m)?;
                }
            }
        }
        let required = layer_mask(arch);
        let present = present.get(..n_layer).ok_or(Error::BadHyperparameters)?;
        if present.iter().any(|&m| m & required != required) {
            return Err(Error::MissingTensor);
        }
        let token_embd = token_embd.ok_or(Error::MissingTensor)?;
        if is_gpt2 && (pos_embd.is_none() || norm_b.is_none()) {
            return Err(Error::MissingTensor);
        }
        let output_norm_w = norm_w.ok_or(Error::MissingTensor)?;
        let output_norm_b = norm_b;
        let tied = output.is_none();
        let output = output.unwrap_or(token_embd);
        if !output.ty.is_supported() {
            return Err(Error::UnsupportedTensorType);
        }
        Ok(Model {
            gguf: g,
            hp,
            token_embd,
            pos_embd,
            output_norm_w,
            output_norm_b,
            output,
            tied,
        })
    }

    /// Hyperparameters.
    pub fn hparams(&self) -> &Hparams {
        &self.hp
    }
    /// The parsed file.
    pub fn gguf(&self) -> &Gguf<'a> {
        &self.gguf
    }
    /// Whether the output layer reuses `token_embd`.
    pub fn is_tied(&self) -> bool {
        self.tied
    }

    /// Fill one [`LayerRefs`] per layer from the tensor directory (one pass).
    pub(crate) fn fill_layer_refs(&self, table: &mut [LayerRefs]) -> Result<()> {
        if table.len() != self.hp.n_layer {
            return Err(Error::BadParameter);
        }
        let base = self.gguf.bytes().as_ptr() as usize;
        for t in self.gguf.tensors() {
            if let Some(Slot::Layer(l, kind)) = classify(t.name) {
                let slot = table
                    .get_mut(l)
                    .ok_or(Error::UnexpectedTensor)?
                    .t
                    .get_mut(kind as usize)
                    .ok_or(Error::UnexpectedTensor)?;
                *slot = TensorRef {
                    off: t.data.as_ptr() as usize - base,
                    len: t.data.len(),
                    ty: t.ty as usize,
                    cols: t.ne[0],
                    rows: t.ne[1],
                };
            }
        }
        Ok(())
    }

    /// Resolve a [`TensorRef`] to a matrix view.
    pub(crate) fn matrix_of(&self, r: &TensorRef) -> Matrix<'a> {
        let data = self.gguf.bytes().get(r.off..r.off + r.len).unwrap_or(&[]);
        Matrix {
            ty: GgmlType::from_u32(r.ty as u32).unwrap_or(GgmlType::F32),
            rows: r.rows,
            cols: r.cols,
            data,
        }
    }

    /// Resolve a [`TensorRef`] of an F32 vector to its bytes.
    pub(crate) fn vector_of(&self, r: &TensorRef) -> &'a [u8] {
        self.gguf.bytes().get(r.off..r.off + r.len).unwrap_or(&[])
    }
}

/// `"<arch><suffix>"`, e.g. `gpt2.block_count` (suffixes here are short constants).
fn arch_key(arch: Arch, suffix: &str) -> heapless::String<64> {
    let mut s = heapless::String::new();
    let _ = s.push_str(arch.name());
    let _ = s.push_str(suffix);
    s
}
