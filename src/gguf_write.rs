//! A small GGUF v3 writer (feature `std`; the format embergpt reads and llama.cpp
//! loads), shared by the CLI's converter, benches and tests. The core never writes files.
//!
//! Layout: header (`GGUF`, version 3, tensor count, metadata count), metadata
//! entries, tensor directory, padding to the alignment, then the tensor data,
//! each tensor starting on a multiple of the alignment (offsets are relative to
//! the start of the data section). All numbers little-endian.

extern crate std;
use crate::gguf::{ArrayView, Value, ValueType};
use crate::GgmlType;
use std::io::{self, Write};
use std::path::Path;
use std::string::{String, ToString};
use std::vec;
use std::vec::Vec;

/// Default `general.alignment`.
pub const ALIGNMENT: usize = 32;

/// One tensor to write: ggml dimension order (`dims[0]` is the row length).
pub struct Tensor {
    pub name: String,
    pub dims: Vec<usize>,
    pub ty: GgmlType,
    pub data: Vec<u8>,
}

/// Metadata and tensors collected in memory, then written in one go.
#[derive(Default)]
pub struct GgufWriter {
    kv: Vec<u8>,
    keys: Vec<String>,
    tensors: Vec<Tensor>,
    alignment: usize,
}

fn put_str(buf: &mut Vec<u8>, s: &[u8]) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s);
}

impl GgufWriter {
    /// An empty file with the default alignment.
    pub fn new() -> Self {
        GgufWriter {
            alignment: ALIGNMENT,
            ..Default::default()
        }
    }

    /// Keys written so far, in order.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    fn key(&mut self, key: &str, ty: ValueType) {
        assert!(
            !self.keys.iter().any(|k| k == key),
            "duplicate metadata key {key}"
        );
        self.keys.push(key.to_string());
        put_str(&mut self.kv, key.as_bytes());
        self.kv.extend_from_slice(&(ty as u32).to_le_bytes());
    }

    pub fn add_u32(&mut self, key: &str, v: u32) {
        self.key(key, ValueType::U32);
        self.kv.extend_from_slice(&v.to_le_bytes());
    }
    pub fn add_i32(&mut self, key: &str, v: i32) {
        self.key(key, ValueType::I32);
        self.kv.extend_from_slice(&v.to_le_bytes());
    }
    pub fn add_f32(&mut self, key: &str, v: f32) {
        self.key(key, ValueType::F32);
        self.kv.extend_from_slice(&v.to_le_bytes());
    }
    pub fn add_bool(&mut self, key: &str, v: bool) {
        self.key(key, ValueType::Bool);
        self.kv.push(v as u8);
    }
    pub fn add_str(&mut self, key: &str, v: &str) {
        self.key(key, ValueType::String);
        put_str(&mut self.kv, v.as_bytes());
    }
    fn array_head(&mut self, key: &str, elem: ValueType, n: usize) {
        self.key(key, ValueType::Array);
        self.kv.extend_from_slice(&(elem as u32).to_le_bytes());
        self.kv.extend_from_slice(&(n as u64).to_le_bytes());
    }
    pub fn add_str_array<S: AsRef<[u8]>>(&mut self, key: &str, v: &[S]) {
        self.array_head(key, ValueType::String, v.len());
        for s in v {
            put_str(&mut self.kv, s.as_ref());
        }
    }
    pub fn add_f32_array(&mut self, key: &str, v: &[f32]) {
        self.array_head(key, ValueType::F32, v.len());
        for x in v {
            self.kv.extend_from_slice(&x.to_le_bytes());
        }
    }
    pub fn add_i32_array(&mut self, key: &str, v: &[i32]) {
        self.array_head(key, ValueType::I32, v.len());
        for x in v {
            self.kv.extend_from_slice(&x.to_le_bytes());
        }
    }

    /// Copy a value read from another GGUF file byte for byte.
    pub fn add_value(&mut self, key: &str, v: &Value<'_>) {
        match *v {
            Value::U8(x) => {
                self.key(key, ValueType::U8);
                self.kv.push(x);
            }
            Value::I8(x) => {
                self.key(key, ValueType::I8);
                self.kv.push(x as u8);
            }
            Value::U16(x) => {
                self.key(key, ValueType::U16);
                self.kv.extend_from_slice(&x.to_le_bytes());
            }
            Value::I16(x) => {
                self.key(key, ValueType::I16);
                self.kv.extend_from_slice(&x.to_le_bytes());
            }
            Value::U32(x) => self.add_u32(key, x),
            Value::I32(x) => self.add_i32(key, x),
            Value::F32(x) => self.add_f32(key, x),
            Value::Bool(x) => self.add_bool(key, x),
            Value::Str(s) => {
                self.key(key, ValueType::String);
                put_str(&mut self.kv, s);
            }
            Value::Array(a) => self.add_array_raw(key, &a),
            Value::U64(x) => {
                self.key(key, ValueType::U64);
                self.kv.extend_from_slice(&x.to_le_bytes());
            }
            Value::I64(x) => {
                self.key(key, ValueType::I64);
                self.kv.extend_from_slice(&x.to_le_bytes());
            }
            Value::F64(x) => {
                self.key(key, ValueType::F64);
                self.kv.extend_from_slice(&x.to_le_bytes());
            }
        }
        if key == "general.alignment" {
            if let Some(a) = v.as_u64() {
                self.alignment = a as usize;
            }
        }
    }

    fn add_array_raw(&mut self, key: &str, a: &ArrayView<'_>) {
        self.array_head(key, a.elem_type(), a.len());
        self.kv.extend_from_slice(a.raw());
    }

    /// Add a tensor; `dims` in ggml order, `data` exactly its bytes.
    pub fn add_tensor(&mut self, name: &str, dims: &[usize], ty: GgmlType, data: Vec<u8>) {
        let n: usize = dims.iter().product();
        let row = dims.first().copied().unwrap_or(1);
        let expect = ty.row_bytes(row).map(|rb| rb * (n / row.max(1)));
        assert_eq!(
            expect,
            Some(data.len()),
            "tensor {name}: size does not match shape"
        );
        self.tensors.push(Tensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            ty,
            data,
        });
    }

    /// The tensors added so far.
    pub fn tensors(&self) -> &[Tensor] {
        &self.tensors
    }

    /// Serialize the whole file.
    pub fn write_to<W: Write>(&self, w: &mut W) -> io::Result<()> {
        let align = self.alignment.max(1);
        let pad = |n: usize| (align - n % align) % align;
        let mut head = Vec::new();
        head.extend_from_slice(b"GGUF");
        head.extend_from_slice(&3u32.to_le_bytes());
        head.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        head.extend_from_slice(&(self.keys.len() as u64).to_le_bytes());
        head.extend_from_slice(&self.kv);
        let mut off = 0usize;
        for t in &self.tensors {
            put_str(&mut head, t.name.as_bytes());
            head.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for &d in &t.dims {
                head.extend_from_slice(&(d as u64).to_le_bytes());
            }
            head.extend_from_slice(&(t.ty as u32).to_le_bytes());
            head.extend_from_slice(&(off as u64).to_le_bytes());
            off += t.data.len() + pad(t.data.len());
        }
        head.resize(head.len() + pad(head.len()), 0);
        w.write_all(&head)?;
        for t in &self.tensors {
            w.write_all(&t.data)?;
            w.write_all(&vec![0u8; pad(t.data.len())])?;
        }
        Ok(())
    }

    /// The whole file as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        // io::Write for Vec<u8> never fails and write_to has no other error,
        // so there is nothing to lose here (and no panic path).
        let _ = self.write_to(&mut v);
        v
    }

    /// Write the file to `path` (through a temporary file renamed at the end).
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let tmp = path.with_extension("gguf.part");
        {
            let mut f = io::BufWriter::new(std::fs::File::create(&tmp)?);
            self.write_to(&mut f)?;
            f.flush()?;
        }
        std::fs::rename(&tmp, path)
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
    w.add_str("general.architecture", "gpt2");
    w.add_str("general.name", "random-gpt2");
    w.add_u32("gpt2.context_length", n_ctx as u32);
    w.add_u32("gpt2.embedding_length", n_embd as u32);
    w.add_u32("gpt2.feed_forward_length", ff as u32);
    w.add_u32("gpt2.block_count", n_layer as u32);
    w.add_u32("gpt2.attention.head_count", n_head as u32);
    w.add_f32("gpt2.attention.layer_norm_epsilon", 1e-5);
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

impl GgufWriter {
    /// Add a tensor given as f32 values, quantized row by row to `ty`
    /// (`ne` in ggml order: `ne[0]` is the row length).
    pub fn tensor_f32(
        &mut self,
        name: &str,
        ty: GgmlType,
        ne: &[u64],
        values: &[f32],
    ) -> crate::Result<&mut Self> {
        let cols = *ne.first().ok_or(crate::Error::BadDimension)? as usize;
        if cols == 0 {
            return Err(crate::Error::BadDimension); // and no division by zero below
        }
        let rb = ty.row_bytes(cols).ok_or(crate::Error::BadBlockShape)?;
        let mut data = std::vec![0u8; rb * (values.len() / cols)];
        for (src, dst) in values.chunks_exact(cols).zip(data.chunks_exact_mut(rb)) {
            crate::quant::quantize_row(ty, src, dst)?;
        }
        let dims: Vec<usize> = ne.iter().map(|&d| d as usize).collect();
        self.add_tensor(name, &dims, ty, data);
        Ok(self)
    }
}
