//! `embergpt convert INPUT -o OUT.gguf [--type T] [--tokenizer FILE]`
//!
//! Turns a Hugging Face checkpoint directory (GPT-2 or Llama: `config.json`,
//! `*.safetensors`, tokenizer files) or a llama2.c `.bin` checkpoint (told apart
//! by content) into a GGUF v3 file in llama.cpp's layout and metadata names, so
//! that both embergpt and llama.cpp load it. 1-D tensors (norms, biases) and
//! GPT-2's position table stay F32; every other matrix gets `--type`.
//!
//! Q/K rows: GGUF (like Meta's and llama2.c's checkpoints) rotates consecutive
//! pairs, HF's Llama rotates halves; HF Llama Q/K weights are therefore permuted
//! the way llama.cpp's `convert_hf_to_gguf.py` does. llama2.c checkpoints are
//! already in GGUF order and are copied as they are.

use crate::gguf_write::GgufWriter;
use embergpt::quant::quantize_row;
use embergpt::GgmlType;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value as Json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A conversion error: a message for the user.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result of this module.
pub type Result<T> = std::result::Result<T, Error>;

macro_rules! bail {
    ($($t:tt)*) => { return Err(format!($($t)*).into()) };
}

/// Command-line arguments of `embergpt convert`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// A Hugging Face checkpoint directory (GPT-2 or Llama) or a llama2.c .bin checkpoint.
    pub input: PathBuf,
    /// Output GGUF file.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Type of the weight matrices: f32, f16, q8_0, q4_0 or q4_1.
    #[arg(long = "type", value_name = "TYPE", default_value = "f32", value_parser = parse_type)]
    pub ty: GgmlType,
    /// The llama2.c tokenizer file (tokenizer.bin) for a llama2.c checkpoint.
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
}

/// Parse a `--type` name.
pub fn parse_type(s: &str) -> std::result::Result<GgmlType, String> {
    GgmlType::from_name(s).ok_or_else(|| format!("unknown type {s:?} (f32, f16, q8_0, q4_0, q4_1)"))
}

/// Run the subcommand.
pub fn run(args: &Args) -> Result<()> {
    let w = convert(&args.input, args.ty, args.tokenizer.as_deref(), true)?;
    w.write(&args.output)
        .map_err(|e| format!("writing {}: {e}", args.output.display()))?;
    eprintln!(
        "wrote {} ({} tensors, {} metadata keys)",
        args.output.display(),
        w.tensors().len(),
        w.keys().len()
    );
    Ok(())
}

/// Convert `input` into an in-memory GGUF (see the module docs).
pub fn convert(
    input: &Path,
    ty: GgmlType,
    tokenizer: Option<&Path>,
    progress: bool,
) -> Result<GgufWriter> {
    if !ty.is_supported() {
        bail!("type {} cannot be written", ty.name());
    }
    if input.is_dir() {
        let cfg: Json = serde_json::from_slice(
            &std::fs::read(input.join("config.json"))
                .map_err(|e| format!("{}: {e}", input.join("config.json").display()))?,
        )?;
        let model_type = cfg["model_type"].as_str().unwrap_or("");
        let st = Safetensors::open_dir(input)?;
        let mut out = Out::new(ty, progress);
        match model_type {
            "gpt2" => hf_gpt2(&cfg, &st, &mut out)?,
            "llama" => hf_llama(&cfg, &st, &mut out)?,
            other => bail!("unsupported model_type {other:?} (gpt2 and llama are)"),
        }
        if tokenizer.is_some() {
            bail!("--tokenizer is for llama2.c checkpoints; a HF directory has its own");
        }
        hf_tokenizer(input, &cfg, &mut out)?;
        Ok(out.finish(input))
    } else {
        let bytes = std::fs::read(input).map_err(|e| format!("{}: {e}", input.display()))?;
        if bytes.starts_with(b"GGUF") {
            bail!(
                "{} is already GGUF (use `embergpt quantize`)",
                input.display()
            );
        }
        let mut out = Out::new(ty, progress);
        llama2c(&bytes, &mut out)?;
        match tokenizer {
            Some(t) => {
                let tb = std::fs::read(t).map_err(|e| format!("{}: {e}", t.display()))?;
                llama2c_tokenizer(&tb, &mut out)?;
            }
            None => eprintln!("warning: no --tokenizer given; the GGUF will have no vocabulary"),
        }
        Ok(out.finish(input))
    }
}

// --------------------------------------------------------------------------
// Output: metadata, tensors with their target types, progress.
// --------------------------------------------------------------------------

/// A tensor waiting to be written: f32 values, ggml dims, whether it is a weight matrix.
struct Pending {
    name: String,
    dims: Vec<usize>,
    data: Vec<f32>,
    matrix: bool,
}

struct Out {
    w: GgufWriter,
    ty: GgmlType,
    pending: Vec<Pending>,
    progress: bool,
    vocab: usize,
}

/// llama.cpp's `general.file_type` (`llama_ftype`) for a weight type.
pub fn file_type(ty: GgmlType) -> u32 {
    match ty {
        GgmlType::F32 => 0,
        GgmlType::F16 => 1,
        GgmlType::Q4_0 => 2,
        GgmlType::Q4_1 => 3,
        GgmlType::Q8_0 => 7,
        _ => 0,
    }
}

impl Out {
    fn new(ty: GgmlType, progress: bool) -> Self {
        Out {
            w: GgufWriter::new(),
            ty,
            pending: Vec::new(),
            progress,
            vocab: 0,
        }
    }

    /// A tensor from row-major data with PyTorch shape `shape` (outermost first).
    fn tensor(&mut self, name: &str, shape: &[usize], data: Vec<f32>, matrix: bool) {
        self.pending.push(Pending {
            name: name.to_string(),
            dims: shape.iter().rev().copied().collect(),
            data,
            matrix,
        });
    }

    /// Quantize and add every pending tensor; add the type metadata.
    fn finish(mut self, input: &Path) -> GgufWriter {
        let name = input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !self.w.keys().iter().any(|k| k == "general.name") {
            self.w.add_str("general.name", &name);
        }
        self.w.add_u32("general.file_type", file_type(self.ty));
        if matches!(self.ty, GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1) {
            self.w.add_u32("general.quantization_version", 2);
        }
        let total: u64 = self.pending.iter().map(|p| p.data.len() as u64).sum();
        let bar = if self.progress {
            let b = ProgressBar::new(total);
            b.set_style(
                ProgressStyle::with_template("{msg:>24} [{bar:40}] {percent:>3}% {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            b
        } else {
            ProgressBar::hidden()
        };
        for p in std::mem::take(&mut self.pending) {
            bar.set_message(p.name.clone());
            let ty = target_type(self.ty, &p);
            let data = encode(ty, &p.data, p.dims[0]);
            bar.inc(p.data.len() as u64);
            self.w.add_tensor(&p.name, &p.dims, ty, data);
        }
        bar.finish_and_clear();
        self.w
    }
}

/// The type a tensor is stored in: matrices get the requested type when their
/// rows are whole blocks (else F16, as llama.cpp falls back); the rest F32.
fn target_type(want: GgmlType, p: &Pending) -> GgmlType {
    if !p.matrix || p.dims.len() < 2 {
        return GgmlType::F32;
    }
    if want.row_bytes(p.dims[0]).is_none() {
        eprintln!(
            "warning: {} has rows of {} (not a multiple of {}): stored as f16",
            p.name,
            p.dims[0],
            want.block_size()
        );
        return GgmlType::F16;
    }
    want
}

/// Encode rows of `row` f32 values into `ty` with embergpt's quantizer.
pub fn encode(ty: GgmlType, data: &[f32], row: usize) -> Vec<u8> {
    let rb = ty
        .row_bytes(row)
        .expect("row length checked by target_type");
    let rows = data.len() / row;
    let mut out = vec![0u8; rb * rows];
    for (x, o) in data.chunks_exact(row).zip(out.chunks_exact_mut(rb)) {
        quantize_row(ty, x, o).expect("row sizes match");
    }
    out
}

// --------------------------------------------------------------------------
// safetensors
// --------------------------------------------------------------------------

/// Every `*.safetensors` file of a directory, memory-mapped, with a name index.
struct Safetensors {
    maps: Vec<memmap2::Mmap>,
    index: HashMap<String, usize>,
}

impl Safetensors {
    fn open_dir(dir: &Path) -> Result<Self> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("no *.safetensors file in {}", dir.display());
        }
        let mut maps = Vec::new();
        let mut index = HashMap::new();
        for (i, f) in files.iter().enumerate() {
            let file = std::fs::File::open(f)?;
            // SAFETY: the file is opened read-only and not modified while mapped
            // (a concurrent writer would be a user error, as for any reader).
            let map = unsafe { memmap2::Mmap::map(&file)? };
            let st = safetensors::SafeTensors::deserialize(&map)
                .map_err(|e| format!("{}: {e}", f.display()))?;
            for name in st.names() {
                index.insert(name.to_string(), i);
            }
            maps.push(map);
        }
        Ok(Safetensors { maps, index })
    }

    fn names(&self) -> impl Iterator<Item = &str> {
        self.index.keys().map(|s| s.as_str())
    }

    fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// A tensor as f32 values and its shape.
    fn get(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let i = *self
            .index
            .get(name)
            .ok_or_else(|| format!("tensor {name} missing from the checkpoint"))?;
        let st = safetensors::SafeTensors::deserialize(&self.maps[i])?;
        let t = st.tensor(name)?;
        let b = t.data();
        use safetensors::Dtype;
        let v: Vec<f32> = match t.dtype() {
            Dtype::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Dtype::F16 => b
                .chunks_exact(2)
                .map(|c| embergpt::quant::f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            Dtype::BF16 => b
                .chunks_exact(2)
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                .collect(),
            d => bail!("tensor {name}: dtype {d:?} not supported"),
        };
        Ok((t.shape().to_vec(), v))
    }

    /// A tensor that must have `shape`.
    fn expect(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let (s, v) = self.get(name)?;
        if s != shape {
            bail!("tensor {name}: shape {s:?}, expected {shape:?}");
        }
        Ok(v)
    }
}

fn cfg_usize(cfg: &Json, keys: &[&str]) -> Result<usize> {
    for k in keys {
        if let Some(v) = cfg[*k].as_u64() {
            return Ok(v as usize);
        }
    }
    bail!("config.json lacks {}", keys.join(" / "))
}

fn cfg_f64(cfg: &Json, key: &str, default: Option<f64>) -> Result<f64> {
    match (cfg[key].as_f64(), default) {
        (Some(v), _) => Ok(v),
        (None, Some(d)) => Ok(d),
        (None, None) => bail!("config.json lacks {key}"),
    }
}

/// `[rows][cols]` -> `[cols][rows]` (HF GPT-2's Conv1D stores `[in][out]`).
fn transpose(v: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; v.len()];
    for r in 0..rows {
        for c in 0..cols {
            t[c * rows + r] = v[r * cols + c];
        }
    }
    t
}

// --------------------------------------------------------------------------
// HF GPT-2
// --------------------------------------------------------------------------

/// (HF name, GGUF name, Conv1D `[in, out]` or `None` for vectors)
type GptSpec = (&'static str, &'static str, Option<(usize, usize)>);

fn hf_gpt2(cfg: &Json, st: &Safetensors, out: &mut Out) -> Result<()> {
    let d = cfg_usize(cfg, &["n_embd", "hidden_size"])?;
    let n_layer = cfg_usize(cfg, &["n_layer", "num_hidden_layers"])?;
    let n_head = cfg_usize(cfg, &["n_head", "num_attention_heads"])?;
    let n_ctx = cfg_usize(cfg, &["n_positions", "n_ctx"])?;
    let vocab = cfg_usize(cfg, &["vocab_size"])?;
    let ff = cfg["n_inner"].as_u64().map(|v| v as usize).unwrap_or(4 * d);
    let eps = cfg_f64(cfg, "layer_norm_epsilon", Some(1e-5))?;
    let act = cfg["activation_function"].as_str().unwrap_or("gelu_new");
    if act != "gelu_new" {
        bail!("GPT-2 activation {act:?} not supported (embergpt runs gelu_new)");
    }
    // save_pretrained of GPT2LMHeadModel prefixes "transformer."; OpenAI's files do not.
    let pre = if st.has("transformer.wte.weight") {
        "transformer."
    } else {
        ""
    };
    let w = &mut out.w;
    w.add_str("general.architecture", "gpt2");
    w.add_u32("gpt2.context_length", n_ctx as u32);
    w.add_u32("gpt2.embedding_length", d as u32);
    w.add_u32("gpt2.feed_forward_length", ff as u32);
    w.add_u32("gpt2.block_count", n_layer as u32);
    w.add_u32("gpt2.attention.head_count", n_head as u32);
    w.add_f32("gpt2.attention.layer_norm_epsilon", eps as f32);
    out.vocab = vocab;

    let wte = st.expect(&format!("{pre}wte.weight"), &[vocab, d])?;
    out.tensor("token_embd.weight", &[vocab, d], wte, true);
    let wpe = st.expect(&format!("{pre}wpe.weight"), &[n_ctx, d])?;
    // GPT-2's position table stays F32, as in embergpt's and llama.cpp's files.
    out.tensor("position_embd.weight", &[n_ctx, d], wpe, false);
    for l in 0..n_layer {
        let h = format!("{pre}h.{l}.");
        let blk = format!("blk.{l}.");
        let specs: [GptSpec; 12] = [
            ("ln_1.weight", "attn_norm.weight", None),
            ("ln_1.bias", "attn_norm.bias", None),
            ("attn.c_attn.weight", "attn_qkv.weight", Some((d, 3 * d))),
            ("attn.c_attn.bias", "attn_qkv.bias", None),
            ("attn.c_proj.weight", "attn_output.weight", Some((d, d))),
            ("attn.c_proj.bias", "attn_output.bias", None),
            ("ln_2.weight", "ffn_norm.weight", None),
            ("ln_2.bias", "ffn_norm.bias", None),
            ("mlp.c_fc.weight", "ffn_up.weight", Some((d, ff))),
            ("mlp.c_fc.bias", "ffn_up.bias", None),
            ("mlp.c_proj.weight", "ffn_down.weight", Some((ff, d))),
            ("mlp.c_proj.bias", "ffn_down.bias", None),
        ];
        for (src, dst, conv) in specs {
            let name = format!("{h}{src}");
            match conv {
                Some((i, o)) => {
                    let v = st.expect(&name, &[i, o])?;
                    out.tensor(&format!("{blk}{dst}"), &[o, i], transpose(&v, i, o), true);
                }
                None => {
                    let (s, v) = st.get(&name)?;
                    if s.len() != 1 {
                        bail!("tensor {name}: shape {s:?}, expected 1-D");
                    }
                    out.tensor(&format!("{blk}{dst}"), &s, v, false);
                }
            }
        }
    }
    for (src, dst) in [
        ("ln_f.weight", "output_norm.weight"),
        ("ln_f.bias", "output_norm.bias"),
    ] {
        let v = st.expect(&format!("{pre}{src}"), &[d])?;
        out.tensor(dst, &[d], v, false);
    }
    // lm_head is tied to wte in GPT-2 (GGUF: no output.weight means tied).
    check_all_used(st, |n| {
        n.starts_with(&format!("{pre}h."))
            || n.starts_with(&format!("{pre}wte"))
            || n.starts_with(&format!("{pre}wpe"))
            || n.starts_with(&format!("{pre}ln_f"))
            || n == "lm_head.weight"
    })
}

/// Fail if the checkpoint holds tensors the converter would silently drop.
fn check_all_used(st: &Safetensors, used: impl Fn(&str) -> bool) -> Result<()> {
    let mut extra: Vec<&str> = st.names().filter(|n| !used(n)).collect();
    if extra.is_empty() {
        return Ok(());
    }
    extra.sort();
    bail!("checkpoint tensors not understood: {}", extra.join(", "))
}

// --------------------------------------------------------------------------
// HF Llama
// --------------------------------------------------------------------------

/// llama.cpp's `permute`: HF's half-split Q/K rows -> interleaved pairs per head.
/// Row `h*hd + 2i + c` of the result is row `h*hd + c*hd/2 + i` of `w`.
fn permute_qk(w: &[f32], n_head: usize, cols: usize) -> Vec<f32> {
    let rows = w.len() / cols;
    let hd = rows / n_head;
    let mut out = vec![0.0; w.len()];
    for h in 0..n_head {
        for i in 0..hd / 2 {
            for c in 0..2 {
                let dst = h * hd + 2 * i + c;
                let src = h * hd + c * (hd / 2) + i;
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&w[src * cols..(src + 1) * cols]);
            }
        }
    }
    out
}

fn hf_llama(cfg: &Json, st: &Safetensors, out: &mut Out) -> Result<()> {
    let d = cfg_usize(cfg, &["hidden_size"])?;
    let ff = cfg_usize(cfg, &["intermediate_size"])?;
    let n_layer = cfg_usize(cfg, &["num_hidden_layers"])?;
    let n_head = cfg_usize(cfg, &["num_attention_heads"])?;
    let n_kv = cfg["num_key_value_heads"]
        .as_u64()
        .map_or(n_head, |v| v as usize);
    let n_ctx = cfg_usize(cfg, &["max_position_embeddings"])?;
    let vocab = cfg_usize(cfg, &["vocab_size"])?;
    let eps = cfg_f64(cfg, "rms_norm_eps", None)?;
    // transformers 5 moved rope_theta into rope_parameters.
    let theta = cfg["rope_theta"]
        .as_f64()
        .or_else(|| cfg["rope_parameters"]["rope_theta"].as_f64())
        .unwrap_or(10000.0);
    let hd = d / n_head;
    if d % n_head != 0 || n_head % n_kv != 0 {
        bail!("heads ({n_head}, kv {n_kv}) do not divide the width {d}");
    }
    if cfg["head_dim"].as_u64().is_some_and(|h| h as usize != hd) {
        bail!("head_dim != hidden_size / num_attention_heads is not supported");
    }
    for scaling in [&cfg["rope_scaling"], &cfg["rope_parameters"]["rope_type"]] {
        let plain = scaling.is_null() || scaling.as_str() == Some("default");
        if !plain {
            bail!("RoPE scaling {scaling} is not supported");
        }
    }
    if cfg["attention_bias"].as_bool() == Some(true) || cfg["mlp_bias"].as_bool() == Some(true) {
        bail!("Llama with biases is not supported");
    }
    if cfg["hidden_act"].as_str().is_some_and(|a| a != "silu") {
        bail!(
            "hidden_act {} is not supported (silu is)",
            cfg["hidden_act"]
        );
    }
    let tied = cfg["tie_word_embeddings"].as_bool().unwrap_or(false);
    let kvd = hd * n_kv;

    let w = &mut out.w;
    w.add_str("general.architecture", "llama");
    w.add_u32("llama.context_length", n_ctx as u32);
    w.add_u32("llama.embedding_length", d as u32);
    w.add_u32("llama.feed_forward_length", ff as u32);
    w.add_u32("llama.block_count", n_layer as u32);
    w.add_u32("llama.attention.head_count", n_head as u32);
    w.add_u32("llama.attention.head_count_kv", n_kv as u32);
    w.add_u32("llama.rope.dimension_count", hd as u32);
    w.add_f32("llama.rope.freq_base", theta as f32);
    w.add_f32("llama.attention.layer_norm_rms_epsilon", eps as f32);
    w.add_u32("llama.vocab_size", vocab as u32);
    out.vocab = vocab;

    let emb = st.expect("model.embed_tokens.weight", &[vocab, d])?;
    out.tensor("token_embd.weight", &[vocab, d], emb, true);
    for l in 0..n_layer {
        let p = format!("model.layers.{l}.");
        let b = format!("blk.{l}.");
        let v = st.expect(&format!("{p}input_layernorm.weight"), &[d])?;
        out.tensor(&format!("{b}attn_norm.weight"), &[d], v, false);
        let q = st.expect(&format!("{p}self_attn.q_proj.weight"), &[d, d])?;
        out.tensor(
            &format!("{b}attn_q.weight"),
            &[d, d],
            permute_qk(&q, n_head, d),
            true,
        );
        let k = st.expect(&format!("{p}self_attn.k_proj.weight"), &[kvd, d])?;
        out.tensor(
            &format!("{b}attn_k.weight"),
            &[kvd, d],
            permute_qk(&k, n_kv, d),
            true,
        );
        let v = st.expect(&format!("{p}self_attn.v_proj.weight"), &[kvd, d])?;
        out.tensor(&format!("{b}attn_v.weight"), &[kvd, d], v, true);
        let o = st.expect(&format!("{p}self_attn.o_proj.weight"), &[d, d])?;
        out.tensor(&format!("{b}attn_output.weight"), &[d, d], o, true);
        let v = st.expect(&format!("{p}post_attention_layernorm.weight"), &[d])?;
        out.tensor(&format!("{b}ffn_norm.weight"), &[d], v, false);
        let g = st.expect(&format!("{p}mlp.gate_proj.weight"), &[ff, d])?;
        out.tensor(&format!("{b}ffn_gate.weight"), &[ff, d], g, true);
        let u = st.expect(&format!("{p}mlp.up_proj.weight"), &[ff, d])?;
        out.tensor(&format!("{b}ffn_up.weight"), &[ff, d], u, true);
        let dn = st.expect(&format!("{p}mlp.down_proj.weight"), &[d, ff])?;
        out.tensor(&format!("{b}ffn_down.weight"), &[d, ff], dn, true);
    }
    let v = st.expect("model.norm.weight", &[d])?;
    out.tensor("output_norm.weight", &[d], v, false);
    if !tied {
        let v = st.expect("lm_head.weight", &[vocab, d])?;
        out.tensor("output.weight", &[vocab, d], v, true);
    }
    check_all_used(st, |n| {
        n.starts_with("model.layers.")
            || n == "model.embed_tokens.weight"
            || n == "model.norm.weight"
            || n == "lm_head.weight"
            || n.ends_with("rotary_emb.inv_freq")
    })
}

// --------------------------------------------------------------------------
// HF byte-level BPE tokenizer -> tokenizer.ggml.* ("gpt2" model)
// --------------------------------------------------------------------------

/// llama.cpp's token types.
const TOKEN_NORMAL: i32 = 1;
const TOKEN_UNKNOWN: i32 = 2;
const TOKEN_CONTROL: i32 = 3;
const TOKEN_UNUSED: i32 = 5;
const TOKEN_BYTE: i32 = 6;

fn hf_tokenizer(dir: &Path, cfg: &Json, out: &mut Out) -> Result<()> {
    // (vocab, merges, added special tokens)
    let mut vocab: Vec<(String, usize)>;
    let merges: Vec<String>;
    let mut special: Vec<usize> = Vec::new();
    let tj = dir.join("tokenizer.json");
    if tj.exists() {
        let t: Json = serde_json::from_slice(&std::fs::read(&tj)?)?;
        let model = &t["model"];
        if model["type"].as_str() != Some("BPE") || model["byte_fallback"].as_bool() == Some(true) {
            eprintln!("warning: tokenizer.json is not a byte-level BPE; no vocabulary written");
            return Ok(());
        }
        vocab = model["vocab"]
            .as_object()
            .ok_or("tokenizer.json: model.vocab is not an object")?
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.as_u64().ok_or("bad vocab id")? as usize)))
            .collect::<Result<_>>()?;
        // Merges are "a b" strings (older files) or ["a", "b"] pairs (newer).
        merges = model["merges"]
            .as_array()
            .ok_or("tokenizer.json: model.merges missing")?
            .iter()
            .map(|m| match m {
                Json::String(s) => Ok(s.clone()),
                Json::Array(p) if p.len() == 2 => Ok(format!(
                    "{} {}",
                    p[0].as_str().unwrap_or(""),
                    p[1].as_str().unwrap_or("")
                )),
                _ => Err("tokenizer.json: bad merge".into()),
            })
            .collect::<Result<_>>()?;
        for a in t["added_tokens"].as_array().into_iter().flatten() {
            let id = a["id"].as_u64().ok_or("added token without id")? as usize;
            let content = a["content"].as_str().unwrap_or("").to_string();
            if !vocab.iter().any(|(_, i)| *i == id) {
                vocab.push((content, id));
            }
            if a["special"].as_bool() == Some(true) {
                special.push(id);
            }
        }
    } else if dir.join("vocab.json").exists() && dir.join("merges.txt").exists() {
        let v: Json = serde_json::from_slice(&std::fs::read(dir.join("vocab.json"))?)?;
        vocab = v
            .as_object()
            .ok_or("vocab.json is not an object")?
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.as_u64().ok_or("bad vocab id")? as usize)))
            .collect::<Result<_>>()?;
        merges = std::fs::read_to_string(dir.join("merges.txt"))?
            .lines()
            .filter(|l| !l.starts_with("#version") && !l.trim().is_empty())
            .map(str::to_string)
            .collect();
        // GPT-2's one special token.
        if let Some((_, id)) = vocab.iter().find(|(t, _)| t == "<|endoftext|>") {
            special.push(*id);
        }
    } else {
        eprintln!("warning: no tokenizer.json or vocab.json + merges.txt; no vocabulary written");
        return Ok(());
    }
    let n = out
        .vocab
        .max(vocab.iter().map(|(_, i)| i + 1).max().unwrap_or(0));
    if n > out.vocab {
        bail!(
            "tokenizer has ids up to {} but the model's vocabulary is {}",
            n - 1,
            out.vocab
        );
    }
    let mut tokens: Vec<Option<String>> = vec![None; n];
    for (t, i) in vocab {
        if tokens[i].is_some() {
            bail!("tokenizer: id {i} used twice");
        }
        tokens[i] = Some(t);
    }
    let mut types = vec![TOKEN_NORMAL; n];
    for &s in &special {
        types[s] = TOKEN_CONTROL;
    }
    // Rows of the embedding without a token (padding), as llama.cpp names them.
    let tokens: Vec<String> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            t.unwrap_or_else(|| {
                types[i] = TOKEN_UNUSED;
                format!("[PAD{i}]")
            })
        })
        .collect();
    let w = &mut out.w;
    w.add_str("tokenizer.ggml.model", "gpt2");
    w.add_str("tokenizer.ggml.pre", "gpt-2");
    w.add_str_array("tokenizer.ggml.tokens", &tokens);
    w.add_i32_array("tokenizer.ggml.token_type", &types);
    w.add_str_array("tokenizer.ggml.merges", &merges);
    for (key, cfg_key) in [
        ("tokenizer.ggml.bos_token_id", "bos_token_id"),
        ("tokenizer.ggml.eos_token_id", "eos_token_id"),
        ("tokenizer.ggml.padding_token_id", "pad_token_id"),
    ] {
        let v = &cfg[cfg_key];
        let id = v
            .as_u64()
            .or_else(|| v.as_array().and_then(|a| a.first()?.as_u64()));
        if let Some(id) = id.filter(|&i| (i as usize) < n) {
            w.add_u32(key, id as u32);
        }
    }
    Ok(())
}

// --------------------------------------------------------------------------
// llama2.c
// --------------------------------------------------------------------------

/// The llama2.c "version 0" header.
#[derive(Debug)]
struct L2cHeader {
    dim: usize,
    hidden: usize,
    n_layers: usize,
    n_heads: usize,
    n_kv: usize,
    vocab: usize,
    shared: bool,
    seq: usize,
}

/// Parse and check the header: every value positive and the file exactly as
/// long as those dimensions say (that is how a llama2.c file is recognised).
fn l2c_header(b: &[u8]) -> Result<L2cHeader> {
    if b.len() < 28 {
        bail!("not a llama2.c checkpoint (too short)");
    }
    let h: Vec<i32> = b[..28]
        .chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let hd = L2cHeader {
        dim: h[0].max(0) as usize,
        hidden: h[1].max(0) as usize,
        n_layers: h[2].max(0) as usize,
        n_heads: h[3].max(0) as usize,
        n_kv: h[4].max(0) as usize,
        vocab: h[5].unsigned_abs() as usize,
        shared: h[5] > 0,
        seq: h[6].max(0) as usize,
    };
    let ok = [
        hd.dim,
        hd.hidden,
        hd.n_layers,
        hd.n_heads,
        hd.n_kv,
        hd.vocab,
        hd.seq,
    ]
    .iter()
    .all(|&v| v > 0 && v < 1 << 24)
        && hd.dim.is_multiple_of(hd.n_heads)
        && hd.n_heads.is_multiple_of(hd.n_kv)
        && (hd.dim / hd.n_heads).is_multiple_of(2);
    if !ok {
        bail!("not a llama2.c checkpoint (implausible header {h:?})");
    }
    let expect = l2c_floats(&hd)
        .checked_mul(4)
        .and_then(|n| n.checked_add(28));
    if expect != Some(b.len()) {
        bail!(
            "not a llama2.c checkpoint: header {h:?} implies {expect:?} bytes, file has {}",
            b.len()
        );
    }
    Ok(hd)
}

fn l2c_floats(h: &L2cHeader) -> usize {
    let hs = h.dim / h.n_heads;
    let kvd = hs * h.n_kv;
    let (d, f, l) = (h.dim, h.hidden, h.n_layers);
    let mut n = h.vocab * d + l * d * 2 + l * (d * d * 2 + d * kvd * 2) + l * f * d * 3 + d;
    n += h.seq * hs; // freq_cis_real + freq_cis_imag: [seq][hs/2] each
    if !h.shared {
        n += h.vocab * d;
    }
    n
}

fn llama2c(b: &[u8], out: &mut Out) -> Result<()> {
    let h = l2c_header(b)?;
    let f: Vec<f32> = b[28..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let hs = h.dim / h.n_heads;
    let kvd = hs * h.n_kv;
    let (d, ff, nl, v) = (h.dim, h.hidden, h.n_layers, h.vocab);
    let mut off = 0usize;
    let mut take = |n: usize| {
        let s = &f[off..off + n];
        off += n;
        s
    };
    let emb = take(v * d).to_vec();
    let rms_att = take(nl * d).to_vec();
    let wq = take(nl * d * d).to_vec();
    let wk = take(nl * kvd * d).to_vec();
    let wv = take(nl * kvd * d).to_vec();
    let wo = take(nl * d * d).to_vec();
    let rms_ffn = take(nl * d).to_vec();
    let w1 = take(nl * ff * d).to_vec();
    let w2 = take(nl * d * ff).to_vec();
    let w3 = take(nl * ff * d).to_vec();
    let rms_final = take(d).to_vec();
    take(h.seq * hs); // freq_cis (unused: RoPE is recomputed)
    let wcls = if h.shared {
        None
    } else {
        Some(take(v * d).to_vec())
    };

    let w = &mut out.w;
    w.add_str("general.architecture", "llama");
    w.add_u32("llama.context_length", h.seq as u32);
    w.add_u32("llama.embedding_length", d as u32);
    w.add_u32("llama.feed_forward_length", ff as u32);
    w.add_u32("llama.block_count", nl as u32);
    w.add_u32("llama.attention.head_count", h.n_heads as u32);
    w.add_u32("llama.attention.head_count_kv", h.n_kv as u32);
    w.add_u32("llama.rope.dimension_count", hs as u32);
    // llama2.c's run.c hard-codes both.
    w.add_f32("llama.rope.freq_base", 10000.0);
    w.add_f32("llama.attention.layer_norm_rms_epsilon", 1e-5);
    w.add_u32("llama.vocab_size", v as u32);
    out.vocab = v;

    out.tensor("token_embd.weight", &[v, d], emb, true);
    let sl = |a: &[f32], l: usize, n: usize| a[l * n..(l + 1) * n].to_vec();
    for l in 0..nl {
        let b = format!("blk.{l}.");
        // llama2.c's wq/wk are already in GGUF's interleaved-pair order.
        out.tensor(
            &format!("{b}attn_norm.weight"),
            &[d],
            sl(&rms_att, l, d),
            false,
        );
        out.tensor(
            &format!("{b}attn_q.weight"),
            &[d, d],
            sl(&wq, l, d * d),
            true,
        );
        out.tensor(
            &format!("{b}attn_k.weight"),
            &[kvd, d],
            sl(&wk, l, kvd * d),
            true,
        );
        out.tensor(
            &format!("{b}attn_v.weight"),
            &[kvd, d],
            sl(&wv, l, kvd * d),
            true,
        );
        out.tensor(
            &format!("{b}attn_output.weight"),
            &[d, d],
            sl(&wo, l, d * d),
            true,
        );
        out.tensor(
            &format!("{b}ffn_norm.weight"),
            &[d],
            sl(&rms_ffn, l, d),
            false,
        );
        out.tensor(
            &format!("{b}ffn_gate.weight"),
            &[ff, d],
            sl(&w1, l, ff * d),
            true,
        );
        out.tensor(
            &format!("{b}ffn_down.weight"),
            &[d, ff],
            sl(&w2, l, d * ff),
            true,
        );
        out.tensor(
            &format!("{b}ffn_up.weight"),
            &[ff, d],
            sl(&w3, l, ff * d),
            true,
        );
    }
    out.tensor("output_norm.weight", &[d], rms_final, false);
    if let Some(c) = wcls {
        out.tensor("output.weight", &[v, d], c, true);
    }
    Ok(())
}

/// The llama2.c tokenizer file: `int32 max_token_length`, then per token
/// `f32 score, int32 len, bytes`. Written as llama.cpp's convert-llama2c does:
/// ids 0/1/2 are `<unk>` (unknown), `<s>`, `</s>` (control), `<0xXX>` pieces are
/// byte tokens, spaces become U+2581; `tokenizer.ggml.model = "llama"`.
fn llama2c_tokenizer(b: &[u8], out: &mut Out) -> Result<()> {
    let n = out.vocab;
    let mut pos = 4usize;
    let rd = |pos: &mut usize, k: usize| -> Result<&[u8]> {
        let s = b
            .get(*pos..*pos + k)
            .ok_or("llama2.c tokenizer: truncated")?;
        *pos += k;
        Ok(s)
    };
    let (mut tokens, mut scores, mut types) = (Vec::new(), Vec::new(), Vec::new());
    for id in 0..n {
        let sc = rd(&mut pos, 4)?;
        let score = f32::from_le_bytes([sc[0], sc[1], sc[2], sc[3]]);
        let ln = rd(&mut pos, 4)?;
        let len = i32::from_le_bytes([ln[0], ln[1], ln[2], ln[3]]);
        if len < 0 {
            bail!("llama2.c tokenizer: negative length");
        }
        let text = String::from_utf8_lossy(rd(&mut pos, len as usize)?).into_owned();
        let (text, ty) = match id {
            0 => ("<unk>".to_string(), TOKEN_UNKNOWN),
            1 => ("<s>".to_string(), TOKEN_CONTROL),
            2 => ("</s>".to_string(), TOKEN_CONTROL),
            _ if text.is_empty() => (text, TOKEN_CONTROL),
            _ if is_byte_piece(&text) => (text, TOKEN_BYTE),
            _ => (text, TOKEN_NORMAL),
        };
        tokens.push(text.replace(' ', "\u{2581}"));
        scores.push(score);
        types.push(ty);
    }
    if pos != b.len() {
        bail!(
            "llama2.c tokenizer: {} trailing bytes (vocabulary size mismatch?)",
            b.len() - pos
        );
    }
    let w = &mut out.w;
    w.add_str("tokenizer.ggml.model", "llama");
    w.add_str_array("tokenizer.ggml.tokens", &tokens);
    w.add_f32_array("tokenizer.ggml.scores", &scores);
    w.add_i32_array("tokenizer.ggml.token_type", &types);
    w.add_u32("tokenizer.ggml.unknown_token_id", 0);
    w.add_u32("tokenizer.ggml.bos_token_id", 1);
    w.add_u32("tokenizer.ggml.eos_token_id", 2);
    w.add_bool("tokenizer.ggml.add_bos_token", true);
    Ok(())
}

/// `<0xXX>` with two hex digits.
fn is_byte_piece(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 6
        && b.starts_with(b"<0x")
        && b[5] == b'>'
        && b[3].is_ascii_hexdigit()
        && b[4].is_ascii_hexdigit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_matches_llama_cpp_reshape() {
        // 2 heads of 4 rows, 1 column: HF rows h*4 + [0,1,2,3] = halves (0,1 | 2,3)
        // become interleaved pairs (0,2,1,3) per head.
        let w: Vec<f32> = (0..8).map(|v| v as f32).collect();
        assert_eq!(permute_qk(&w, 2, 1), [0., 2., 1., 3., 4., 6., 5., 7.]);
    }

    #[test]
    fn byte_pieces() {
        assert!(is_byte_piece("<0x0A>"));
        assert!(!is_byte_piece("<0x0G>"));
        assert!(!is_byte_piece("<s>"));
    }
}
