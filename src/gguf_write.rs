//! A small GGUF v3 writer (feature `std`): for tools, benches and tests that
//! need to produce model files. The core never writes files.

extern crate std;
use crate::quant::GgmlType;
use std::string::String;
use std::vec::Vec;

/// A metadata value to write.
#[derive(Clone, Debug, PartialEq)]
pub enum MetaValue {
    U32(u32),
    I32(i32),
    F32(f32),
    U64(u64),
    Bool(bool),
    Str(String),
    /// Array of strings.
    StrArray(Vec<String>),
    /// Array of i32.
    I32Array(Vec<i32>),
    /// Array of f32.
    F32Array(Vec<f32>),
}

/// Builds a GGUF file in memory.
#[derive(Debug, Default)]
pub struct GgufWriter {
    kv: Vec<(String, MetaValue)>,
    /// (name, type, ne, bytes)
    tensors: Vec<(String, GgmlType, Vec<u64>, Vec<u8>)>,
    alignment: usize,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl GgufWriter {
    /// An empty file with the default alignment (32).
    pub fn new() -> Self {
        GgufWriter {
            alignment: 32,
            ..Default::default()
        }
    }

    /// Add a metadata entry.
    pub fn kv(&mut self, key: &str, v: MetaValue) -> &mut Self {
        self.kv.push((key.into(), v));
        self
    }

    /// Add a tensor with ggml dims `ne` (`ne[0]` = row length) and its raw bytes.
    pub fn tensor(&mut self, name: &str, ty: GgmlType, ne: &[u64], data: Vec<u8>) -> &mut Self {
        self.tensors.push((name.into(), ty, ne.to_vec(), data));
        self
    }

    /// Add a 2-D or 1-D f32 tensor, quantizing rows to `ty`.
    pub fn tensor_f32(
        &mut self,
        name: &str,
        ty: GgmlType,
        ne: &[u64],
        values: &[f32],
    ) -> crate::Result<&mut Self> {
        let cols = ne[0] as usize;
        let rb = ty.row_bytes(cols).ok_or(crate::Error::BadBlockShape)?;
        let rows = values.len() / cols;
        let mut data = std::vec![0u8; rb * rows];
        for (src, dst) in values.chunks_exact(cols).zip(data.chunks_exact_mut(rb)) {
            crate::quant::quantize_row(ty, src, dst)?;
        }
        Ok(self.tensor(name, ty, ne, data))
    }

    /// Serialise the file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(b"GGUF");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.kv.len() as u64).to_le_bytes());
        for (k, v) in &self.kv {
            put_str(&mut out, k);
            match v {
                MetaValue::U32(x) => {
                    out.extend_from_slice(&4u32.to_le_bytes());
                    out.extend_from_slice(&x.to_le_bytes());
                }
                MetaValue::I32(x) => {
                    out.extend_from_slice(&5u32.to_le_bytes());
                    out.extend_from_slice(&x.to_le_bytes());
                }
                MetaValue::F32(x) => {
                    out.extend_from_slice(&6u32.to_le_bytes());
                    out.extend_from_slice(&x.to_le_bytes());
                }
                MetaValue::Bool(x) => {
                    out.extend_from_slice(&7u32.to_le_bytes());
                    out.push(*x as u8);
                }
                MetaValue::Str(s) => {
                    out.extend_from_slice(&8u32.to_le_bytes());
                    put_str(&mut out, s);
                }
                MetaValue::U64(x) => {
                    out.extend_from_slice(&10u32.to_le_bytes());
                    out.extend_from_slice(&x.to_le_bytes());
                }
                MetaValue::StrArray(a) => {
                    out.extend_from_slice(&9u32.to_le_bytes());
                    out.extend_from_slice(&8u32.to_le_bytes());
                    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                    for s in a {
                        put_str(&mut out, s);
                    }
                }
                MetaValue::I32Array(a) => {
                    out.extend_from_slice(&9u32.to_le_bytes());
                    out.extend_from_slice(&5u32.to_le_bytes());
                    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                    for x in a {
                        out.extend_from_slice(&x.to_le_bytes());
                    }
                }
                MetaValue::F32Array(a) => {
                    out.extend_from_slice(&9u32.to_le_bytes());
                    out.extend_from_slice(&6u32.to_le_bytes());
                    out.extend_from_slice(&(a.len() as u64).to_le_bytes());
                    for x in a {
                        out.extend_from_slice(&x.to_le_bytes());
                    }
                }
            }
        }
        let align = self.alignment as u64;
        let mut offset = 0u64;
        for (name, ty, ne, data) in &self.tensors {
            put_str(&mut out, name);
            out.extend_from_slice(&(ne.len() as u32).to_le_bytes());
            for d in ne {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&(*ty as u32).to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset = (offset + data.len() as u64).div_ceil(align) * align;
        }
        while !(out.len() as u64).is_multiple_of(align) {
            out.push(0);
        }
        for (_, _, _, data) in &self.tensors {
            out.extend_from_slice(data);
            while !(out.len() as u64).is_multiple_of(align) {
                out.push(0);
            }
        }
        out
    }
}

/// A deterministic xorshift generator for synthetic weights.
#[derive(Clone, Debug)]
pub struct XorShift(pub u64);

impl XorShift {
    /// Next value uniform in [-1, 1).
    pub fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 23) as f32) - 1.0
    }
}

/// A GPT-2-shaped model with random weights (matrices in `ty`, the rest F32),
/// e.g. `(50257, 1024, 768, 12, 12)` for GPT-2 124M. For benches and tests.
pub fn random_gpt2(
    n_vocab: usize,
    n_ctx: usize,
    n_embd: usize,
    n_head: usize,
    n_layer: usize,
    ty: GgmlType,
    seed: u64,
) -> crate::Result<Vec<u8>> {
    let mut rng = XorShift(seed | 1);
    let mut rand =
        |n: usize, scale: f32| -> Vec<f32> { (0..n).map(|_| rng.next_f32() * scale).collect() };
    let (d, ff) = (n_embd as u64, 4 * n_embd as u64);
    let s = 1.0 / (n_embd as f32).sqrt();
    let mut w = GgufWriter::new();
    w.kv("general.architecture", MetaValue::Str("gpt2".into()))
        .kv("general.name", MetaValue::Str("random-gpt2".into()))
        .kv("gpt2.context_length", MetaValue::U32(n_ctx as u32))
        .kv("gpt2.embedding_length", MetaValue::U32(n_embd as u32))
        .kv("gpt2.feed_forward_length", MetaValue::U32(ff as u32))
        .kv("gpt2.block_count", MetaValue::U32(n_layer as u32))
        .kv("gpt2.attention.head_count", MetaValue::U32(n_head as u32))
        .kv("gpt2.attention.layer_norm_epsilon", MetaValue::F32(1e-5));
    let v = n_vocab as u64;
    w.tensor_f32(
        "token_embd.weight",
        ty,
        &[d, v],
        &rand(n_vocab * n_embd, 0.1),
    )?;
    w.tensor_f32(
        "position_embd.weight",
        GgmlType::F32,
        &[d, n_ctx as u64],
        &rand(n_ctx * n_embd, 0.01),
    )?;
    let ones: Vec<f32> = std::vec![1.0; n_embd];
    for l in 0..n_layer {
        let p = |s: &str| std::format!("blk.{l}.{s}");
        let f = GgmlType::F32;
        w.tensor_f32(&p("attn_norm.weight"), f, &[d], &ones)?;
        w.tensor_f32(&p("attn_norm.bias"), f, &[d], &rand(n_embd, 0.01))?;
        w.tensor_f32(
            &p("attn_qkv.weight"),
            ty,
            &[d, 3 * d],
            &rand(3 * n_embd * n_embd, s),
        )?;
        w.tensor_f32(&p("attn_qkv.bias"), f, &[3 * d], &rand(3 * n_embd, 0.01))?;
        w.tensor_f32(
            &p("attn_output.weight"),
            ty,
            &[d, d],
            &rand(n_embd * n_embd, s),
        )?;
        w.tensor_f32(&p("attn_output.bias"), f, &[d], &rand(n_embd, 0.01))?;
        w.tensor_f32(&p("ffn_norm.weight"), f, &[d], &ones)?;
        w.tensor_f32(&p("ffn_norm.bias"), f, &[d], &rand(n_embd, 0.01))?;
        w.tensor_f32(
            &p("ffn_up.weight"),
            ty,
            &[d, ff],
            &rand(4 * n_embd * n_embd, s),
        )?;
        w.tensor_f32(&p("ffn_up.bias"), f, &[ff], &rand(4 * n_embd, 0.01))?;
        w.tensor_f32(
            &p("ffn_down.weight"),
            ty,
            &[ff, d],
            &rand(4 * n_embd * n_embd, s / 2.0),
        )?;
        w.tensor_f32(&p("ffn_down.bias"), f, &[d], &rand(n_embd, 0.01))?;
    }
    w.tensor_f32("output_norm.weight", GgmlType::F32, &[d], &ones)?;
    w.tensor_f32("output_norm.bias", GgmlType::F32, &[d], &rand(n_embd, 0.01))?;
    Ok(w.to_bytes())
}
