//! Llama architecture and the converter, against transformers.
//!
//! Fixtures come from `tests/scripts/gen_llama_fixtures.py` (see its docs); the
//! GGUF files are made here, by the CLI's converter (`embergpt_cli::convert`),
//! so every test below checks the converter and the forward pass together:
//! - stories260K (llama2.c checkpoint in ../shared/data) vs HF `LlamaForCausalLM`
//!   built from the same arrays, float64: logits and greedy continuations;
//! - a random HF Llama checkpoint with grouped-query attention (f32 and q8_0);
//! - a random HF GPT-2 checkpoint (with its byte-level BPE vocabulary);
//! - SmolLM2-135M-Instruct Q4_1 as shipped (.models/, fetched by
//!   tests/scripts/fetch_smollm2.sh) vs transformers loading the same GGUF.

use embergpt::gguf::Gguf;
use embergpt::{Context, ContextParams, Error, GgmlType, Model};
use embergpt_cli::convert::convert;
use embergpt_cli::gguf_write::GgufWriter;
use embergpt_cli::quantize::quantize;
use std::path::{Path, PathBuf};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/llama")
        .join(rel)
}

fn manifest() -> serde_json::Value {
    let p = fixture("manifest.json");
    serde_json::from_slice(&std::fs::read(&p).expect("manifest.json")).expect("json")
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("array of ids")
        .iter()
        .map(|x| x.as_u64().expect("id") as u32)
        .collect()
}

fn f32_file(rel: &str) -> Vec<f32> {
    std::fs::read(fixture(rel))
        .expect("reference logits")
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// A file from ../shared or .models: `None` (with a visible SKIPPED line) when
/// absent, a failure under CI=true, where it must be present.
fn external(path: PathBuf, how: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} missing under CI=true ({how})", path.display());
    }
    eprintln!("SKIPPED: {} missing ({how})", path.display());
    None
}

fn stories_files() -> Option<(PathBuf, PathBuf)> {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data");
    let how = "the shared data folder sits beside the repository";
    let bin = external(shared.join("stories260K.bin"), how)?;
    let tok = external(shared.join("tok512.bin"), how)?;
    Some((bin, tok))
}

fn smollm2_file() -> Option<PathBuf> {
    let p =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".models/SmolLM2-135M-Instruct.Q4_1.gguf");
    external(p, "run tests/scripts/fetch_smollm2.sh")
}

fn convert_bytes(input: &Path, ty: GgmlType, tok: Option<&Path>) -> Vec<u8> {
    convert(input, ty, tok, false)
        .unwrap_or_else(|e| panic!("convert {}: {e}", input.display()))
        .to_bytes()
}

fn params(n_ctx: usize, n_batch: usize, all: bool) -> ContextParams {
    ContextParams {
        n_ctx,
        n_batch,
        logits_all: all,
        // The best backend: every backend is bit-identical to scalar (tests/kernels.rs).
        backend: None,
        ..Default::default()
    }
}

/// All-position logits of `tokens`, evaluated `chunk` tokens at a time.
fn run_chunked(bytes: &[u8], tokens: &[u32], chunk: usize, n_ctx: usize) -> Vec<f32> {
    let model = Model::load(bytes).expect("load");
    let p = params(n_ctx, chunk, true);
    let mut arena = vec![0u8; Context::arena_size(&model, &p).expect("arena size")];
    let mut ctx = Context::new(model, &p, &mut arena).expect("context");
    let mut out = Vec::new();
    for c in tokens.chunks(chunk) {
        ctx.eval_all(c).expect("eval_all");
        out.extend_from_slice(ctx.all_logits().expect("logits"));
    }
    out
}

fn argmax(r: &[f32]) -> usize {
    // First maximum, as torch.argmax.
    let mut best = 0;
    for (i, &v) in r.iter().enumerate() {
        if v > r[best] {
            best = i;
        }
    }
    best
}

/// Greedy continuation: prefill the prompt, then `n` times take the argmax and feed it.
fn greedy(bytes: &[u8], prompt: &[u32], n: usize, n_ctx: usize) -> Vec<u32> {
    let model = Model::load(bytes).expect("load");
    let p = params(n_ctx, 16, false);
    let mut arena = vec![0u8; Context::arena_size(&model, &p).expect("arena size")];
    let mut ctx = Context::new(model, &p, &mut arena).expect("context");
    ctx.eval(prompt).expect("prefill");
    let mut out = Vec::new();
    for _ in 0..n {
        let t = argmax(ctx.logits().expect("logits")) as u32;
        out.push(t);
        ctx.eval(&[t]).expect("decode");
    }
    out
}

struct Stats {
    max_abs: f64,
    std: f64,
    min_cos: f64,
    argmax_agree: usize,
    n: usize,
}

fn compare(ours: &[f32], reference: &[f32], n_vocab: usize) -> Stats {
    assert_eq!(ours.len(), reference.len(), "logit counts differ");
    let n = reference.len() as f64;
    let mean = reference.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = reference
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n;
    let mut s = Stats {
        max_abs: 0.0,
        std: var.sqrt(),
        min_cos: 1.0,
        argmax_agree: 0,
        n: 0,
    };
    for (a, b) in ours.chunks(n_vocab).zip(reference.chunks(n_vocab)) {
        let (mut dot, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
        for (&x, &y) in a.iter().zip(b) {
            s.max_abs = s.max_abs.max((x as f64 - y as f64).abs());
            dot += x as f64 * y as f64;
            na += (x as f64).powi(2);
            nb += (y as f64).powi(2);
        }
        s.min_cos = s.min_cos.min(dot / (na.sqrt() * nb.sqrt()));
        s.argmax_agree += (argmax(a) == argmax(b)) as usize;
        s.n += 1;
    }
    s
}

fn report(name: &str, s: &Stats) {
    println!(
        "{name}: max|diff| {:.3e} = {:.3e} x std, min cos {:.7}, argmax {}/{}",
        s.max_abs,
        s.max_abs / s.std,
        s.min_cos,
        s.argmax_agree,
        s.n
    );
}

fn assert_f32_close(name: &str, s: &Stats) {
    report(name, s);
    assert!(
        s.max_abs <= 1e-4 * s.std,
        "{name}: {:.3e} x std",
        s.max_abs / s.std
    );
}

fn assert_quantized_close(name: &str, s: &Stats) {
    report(name, s);
    assert!(s.min_cos >= 0.999, "{name}: cosine {}", s.min_cos);
    assert!(
        s.argmax_agree * 100 >= 95 * s.n,
        "{name}: argmax {}/{}",
        s.argmax_agree,
        s.n
    );
}

fn chunk_invariant(name: &str, bytes: &[u8], tokens: &[u32], n_ctx: usize) {
    let full = run_chunked(bytes, tokens, tokens.len(), n_ctx);
    for chunk in [1, 3, 7] {
        let c = run_chunked(bytes, tokens, chunk, n_ctx);
        let same = full.iter().zip(&c).all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "{name}: chunk {chunk} differs from one batch");
    }
}

// --------------------------------------------------------------------------
// stories260K
// --------------------------------------------------------------------------

#[test]
fn stories260k_logits_match_transformers() {
    let Some((bin, tok)) = stories_files() else {
        return;
    };
    let m = manifest();
    let s = &m["stories260K"];
    let tokens = ids(&s["tokens"]);
    let bytes = convert_bytes(&bin, GgmlType::F32, Some(&tok));
    let ours = run_chunked(&bytes, &tokens, tokens.len(), 0);
    let reference = f32_file("stories260K.logits.bin");
    assert_f32_close("stories260K f32", &compare(&ours, &reference, 512));
    chunk_invariant("stories260K f32", &bytes, &tokens, 0);
    let q8 = convert_bytes(&bin, GgmlType::Q8_0, Some(&tok));
    chunk_invariant("stories260K q8_0", &q8, &tokens, 0);
}

#[test]
fn stories260k_greedy_matches_transformers() {
    let Some((bin, tok)) = stories_files() else {
        return;
    };
    let m = manifest();
    let bytes = convert_bytes(&bin, GgmlType::F32, Some(&tok));
    for g in m["stories260K"]["greedy"].as_array().expect("greedy") {
        let prompt = ids(&g["prompt"]);
        let want = ids(&g["continuation"]);
        let got = greedy(&bytes, &prompt, want.len(), 0);
        assert_eq!(got, want, "greedy continuation of {prompt:?}");
    }
}

#[test]
fn stories260k_gguf_layout_and_vocabulary() {
    let Some((bin, tok)) = stories_files() else {
        return;
    };
    let bytes = convert_bytes(&bin, GgmlType::Q8_0, Some(&tok));
    let g = Gguf::parse(&bytes).expect("parse");
    assert_eq!(g.version(), 3);
    assert_eq!(g.get_str("general.architecture").unwrap(), b"llama");
    assert_eq!(g.get_u64("llama.attention.head_count").unwrap(), 8);
    assert_eq!(g.get_u64("llama.attention.head_count_kv").unwrap(), 4);
    assert_eq!(g.get_u64("llama.rope.dimension_count").unwrap(), 8);
    assert_eq!(g.get_u64("general.file_type").unwrap(), 7);
    assert_eq!(g.get_str("tokenizer.ggml.model").unwrap(), b"llama");
    assert_eq!(g.get_u64("tokenizer.ggml.bos_token_id").unwrap(), 1);
    assert_eq!(g.get_u64("tokenizer.ggml.eos_token_id").unwrap(), 2);
    let tokens = g.get_array("tokenizer.ggml.tokens").unwrap();
    let types = g.get_array("tokenizer.ggml.token_type").unwrap();
    let scores = g.get_array("tokenizer.ggml.scores").unwrap();
    assert_eq!((tokens.len(), types.len(), scores.len()), (512, 512, 512));
    let ty = |i| {
        types.get(i).and_then(|v| match v {
            embergpt::gguf::Value::I32(t) => Some(t),
            _ => None,
        })
    };
    let text = |i| tokens.get(i).and_then(|v| v.as_str()).unwrap().to_vec();
    assert_eq!((text(0), ty(0)), (b"<unk>".to_vec(), Some(2)));
    assert_eq!((text(1), ty(1)), (b"<s>".to_vec(), Some(3)));
    assert_eq!((text(2), ty(2)), (b"</s>".to_vec(), Some(3)));
    // llama2.c's byte pieces follow the three specials: <0x00> .. <0xFF>.
    assert_eq!((text(3), ty(3)), (b"<0x00>".to_vec(), Some(6)));
    assert_eq!((text(258), ty(258)), (b"<0xFF>".to_vec(), Some(6)));
    // Spaces are SentencePiece's U+2581 in GGUF.
    let has_space = (259..512).any(|i| text(i).windows(1).any(|w| w == b" "));
    assert!(!has_space, "a token still holds an ASCII space");
    assert!((259..512).any(|i| text(i).starts_with("\u{2581}".as_bytes())));
    // Norms stay F32; matrices are the requested type, or F16 when their rows
    // are not whole Q8_0 blocks (ffn_down's rows are 172 wide).
    for t in g.tensors() {
        let want = match (t.n_dims, t.ne[0] % 32) {
            (1, _) => GgmlType::F32,
            (_, 0) => GgmlType::Q8_0,
            _ => GgmlType::F16,
        };
        assert_eq!(t.ty, want, "{}", t.name_str());
    }
    assert!(
        g.tensor("output.weight").is_none(),
        "stories260K shares its classifier"
    );
    assert!(Model::load(&bytes).expect("load").is_tied());
}

// --------------------------------------------------------------------------
// random HF checkpoints
// --------------------------------------------------------------------------

#[test]
fn hf_tiny_llama_gqa_f32_and_q8_0() {
    let m = manifest();
    let t = &m["hf-tiny"];
    let tokens = ids(&t["tokens"]);
    let n_vocab = t["n_vocab"].as_u64().unwrap() as usize;
    let dir = fixture("hf-tiny");

    let f32_bytes = convert_bytes(&dir, GgmlType::F32, None);
    let model = Model::load(&f32_bytes).expect("load");
    let hp = model.hparams();
    assert_eq!((hp.n_head, hp.n_head_kv, hp.head_dim()), (4, 2, 16));
    assert!(!model.is_tied());
    let ours = run_chunked(&f32_bytes, &tokens, tokens.len(), 0);
    assert_f32_close(
        "hf-tiny f32",
        &compare(&ours, &f32_file("hf-tiny.f32.logits.bin"), n_vocab),
    );
    chunk_invariant("hf-tiny f32", &f32_bytes, &tokens, 0);

    let q8 = convert_bytes(&dir, GgmlType::Q8_0, None);
    let ours = run_chunked(&q8, &tokens, tokens.len(), 0);
    let s = compare(&ours, &f32_file("hf-tiny.q8_0.logits.bin"), n_vocab);
    assert_quantized_close("hf-tiny q8_0", &s);
    chunk_invariant("hf-tiny q8_0", &q8, &tokens, 0);

    // The byte-level BPE vocabulary of tokenizer.json went into the metadata.
    let g = Gguf::parse(&q8).unwrap();
    assert_eq!(g.get_str("tokenizer.ggml.model").unwrap(), b"gpt2");
    assert_eq!(g.get_array("tokenizer.ggml.tokens").unwrap().len(), n_vocab);
    assert_eq!(g.get_array("tokenizer.ggml.merges").unwrap().len(), 30);
    assert_eq!(g.get_u64("tokenizer.ggml.bos_token_id").unwrap(), 286);
}

#[test]
fn hf_tiny_gpt2_matches_transformers() {
    let m = manifest();
    let t = &m["gpt2-tiny"];
    let tokens = ids(&t["tokens"]);
    let n_vocab = t["n_vocab"].as_u64().unwrap() as usize;
    let bytes = convert_bytes(&fixture("gpt2-tiny"), GgmlType::F32, None);
    let ours = run_chunked(&bytes, &tokens, tokens.len(), 0);
    let reference = f32_file("gpt2-tiny.f32.logits.bin");
    assert_f32_close("gpt2-tiny f32", &compare(&ours, &reference, n_vocab));

    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.get_str("general.architecture").unwrap(), b"gpt2");
    let toks = g.get_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(toks.len(), n_vocab);
    // Every id holds the token vocab.json gives it.
    let vocab: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("gpt2-tiny/vocab.json")).unwrap()).unwrap();
    for (text, id) in vocab.as_object().unwrap() {
        let id = id.as_u64().unwrap() as usize;
        assert_eq!(
            toks.get(id).unwrap().as_str().unwrap(),
            text.as_bytes(),
            "token {id}"
        );
    }
    let merges = g.get_array("tokenizer.ggml.merges").unwrap();
    assert_eq!(
        merges.get(0).unwrap().as_str().unwrap(),
        "\u{120} t".as_bytes()
    );
    assert!(g.tensor("position_embd.weight").is_some());
}

#[test]
fn quantize_equals_direct_conversion() {
    let dir = fixture("hf-tiny");
    let f32_bytes = convert_bytes(&dir, GgmlType::F32, None);
    for ty in [
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::F16,
    ] {
        let direct = convert_bytes(&dir, ty, None);
        let requant = quantize(&f32_bytes, ty, false)
            .expect("quantize")
            .to_bytes();
        // f32 -> T by way of an exact dequantization is the same as f32 -> T.
        assert!(
            direct == requant,
            "{}: quantize differs from convert --type",
            ty.name()
        );
    }
}

/// Rewrite a GGUF with one metadata value replaced.
fn with_u32(bytes: &[u8], key: &str, v: u32) -> Vec<u8> {
    let g = Gguf::parse(bytes).unwrap();
    let mut w = GgufWriter::new();
    for (k, val) in g.metadata() {
        let k = std::str::from_utf8(k).unwrap();
        if k == key {
            w.add_u32(k, v);
        } else {
            w.add_value(k, &val);
        }
    }
    for t in g.tensors() {
        w.add_tensor(t.name_str(), &t.ne[..t.n_dims], t.ty, t.data.to_vec());
    }
    w.to_bytes()
}

/// Rewrite a GGUF keeping the tensors `keep` accepts, plus `extra`.
fn with_tensors(
    bytes: &[u8],
    keep: impl Fn(&str) -> bool,
    extra: Option<(&str, usize)>,
) -> Vec<u8> {
    let g = Gguf::parse(bytes).unwrap();
    let mut w = GgufWriter::new();
    for (k, val) in g.metadata() {
        w.add_value(std::str::from_utf8(k).unwrap(), &val);
    }
    for t in g.tensors().filter(|t| keep(t.name_str())) {
        w.add_tensor(t.name_str(), &t.ne[..t.n_dims], t.ty, t.data.to_vec());
    }
    if let Some((name, n)) = extra {
        w.add_tensor(name, &[n], GgmlType::F32, vec![0u8; 4 * n]);
    }
    w.to_bytes()
}

#[test]
fn llama_tensor_set_is_checked() {
    let bytes = convert_bytes(&fixture("hf-tiny"), GgmlType::F32, None);
    let all = |_: &str| true;
    assert!(Model::load(&with_tensors(&bytes, all, None)).is_ok());
    let no_k = with_tensors(&bytes, |n| n != "blk.1.attn_k.weight", None);
    assert_eq!(Model::load(&no_k).unwrap_err(), Error::MissingTensor);
    // GPT-2's tensors are not part of a Llama.
    let bias = with_tensors(&bytes, all, Some(("blk.0.attn_output.bias", 64)));
    assert_eq!(Model::load(&bias).unwrap_err(), Error::UnexpectedTensor);
    let onb = with_tensors(&bytes, all, Some(("output_norm.bias", 64)));
    assert_eq!(Model::load(&onb).unwrap_err(), Error::UnexpectedTensor);
    // Untied output removed: the model falls back to token_embd (tied).
    let tied = with_tensors(&bytes, |n| n != "output.weight", None);
    assert!(Model::load(&tied).unwrap().is_tied());
}

#[test]
fn llama_shapes_are_checked_against_hparams() {
    let bytes = convert_bytes(&fixture("hf-tiny"), GgmlType::F32, None);
    assert!(Model::load(&with_u32(&bytes, "llama.embedding_length", 64)).is_ok());
    // attn_k / attn_v are [64][32]: 4 kv heads would need [64][64].
    let e = Model::load(&with_u32(&bytes, "llama.attention.head_count_kv", 4)).unwrap_err();
    assert_eq!(e, Error::ShapeMismatch);
    let e = Model::load(&with_u32(&bytes, "llama.feed_forward_length", 128)).unwrap_err();
    assert_eq!(e, Error::ShapeMismatch);
    let e = Model::load(&with_u32(&bytes, "llama.vocab_size", 100)).unwrap_err();
    assert_eq!(e, Error::ShapeMismatch);
    // 3 kv heads do not divide 4 heads.
    let e = Model::load(&with_u32(&bytes, "llama.attention.head_count_kv", 3)).unwrap_err();
    assert_eq!(e, Error::BadHyperparameters);
    let e = Model::load(&with_u32(&bytes, "llama.rope.dimension_count", 18)).unwrap_err();
    assert_eq!(e, Error::BadHyperparameters);
}

// --------------------------------------------------------------------------
// SmolLM2-135M-Instruct, Q4_1 GGUF as shipped
// --------------------------------------------------------------------------

fn smollm2_bytes() -> Option<Vec<u8>> {
    let p = smollm2_file()?;
    Some(std::fs::read(p).expect("read SmolLM2"))
}

/// SmolLM2 with its weights dequantized to F32 (by `embergpt quantize --type f32`,
/// exact) against transformers on the same dequantized weights: the engine alone.
#[test]
fn smollm2_f32_matches_transformers() {
    let Some(bytes) = smollm2_bytes() else { return };
    let m = manifest();
    let s = &m["smollm2"];
    let tokens = ids(&s["tokens"]);
    let n_vocab = s["n_vocab"].as_u64().unwrap() as usize;
    let f32_bytes = quantize(&bytes, GgmlType::F32, false)
        .expect("to f32")
        .to_bytes();
    let ours = run_chunked(&f32_bytes, &tokens, tokens.len(), 64);
    let reference = f32_file("smollm2.logits.bin");
    assert_f32_close(
        "SmolLM2 dequantized to f32",
        &compare(&ours, &reference, n_vocab),
    );
}

/// SmolLM2 Q4_1 as shipped. The engine rounds every matrix product's input to
/// int8 blocks at run time (Q8_0/Q8_1, as llama.cpp does), so it is compared
/// with transformers on the dequantized weights (float activations) and with
/// transformers emulating that int8 rounding (`q8act`). The argmax bound holds
/// against the float reference. The per-position cosine bound (0.999) is
/// asserted where it is meaningful: at positions where transformers' own
/// int8-activation run reaches it (9 of 13 here). At the others (the emulation
/// scores 0.990 at the worst) the context is so sensitive that int8 activation
/// rounding alone moves the logits further than that; ours are printed.
#[test]
fn smollm2_q4_1_matches_transformers() {
    let Some(bytes) = smollm2_bytes() else { return };
    let m = manifest();
    let s = &m["smollm2"];
    let tokens = ids(&s["tokens"]);
    let n_vocab = s["n_vocab"].as_u64().unwrap() as usize;
    let ours = run_chunked(&bytes, &tokens, tokens.len(), 64);
    let plain = f32_file("smollm2.logits.bin");
    let q8act = f32_file("smollm2.q8act.logits.bin");
    let all = compare(&ours, &plain, n_vocab);
    report("SmolLM2 Q4_1 vs float-activation reference", &all);
    report(
        "SmolLM2 Q4_1 vs int8-activation reference",
        &compare(&ours, &q8act, n_vocab),
    );
    report(
        "transformers int8-activation vs float",
        &compare(&q8act, &plain, n_vocab),
    );
    assert!(
        all.argmax_agree * 100 >= 95 * all.n,
        "argmax {}/{}",
        all.argmax_agree,
        all.n
    );
    let rows = |v: &[f32]| v.chunks(n_vocab).map(<[f32]>::to_vec).collect::<Vec<_>>();
    let (o, p, q) = (rows(&ours), rows(&plain), rows(&q8act));
    let mut checked = 0;
    for i in 0..o.len() {
        let ours_cos = compare(&o[i], &p[i], n_vocab).min_cos;
        let emul_cos = compare(&q[i], &p[i], n_vocab).min_cos;
        println!("  position {i}: cos ours {ours_cos:.6}, transformers int8 {emul_cos:.6}");
        if emul_cos >= 0.999 {
            assert!(ours_cos >= 0.999, "position {i}: cosine {ours_cos}");
            checked += 1;
        }
    }
    assert!(checked > 0, "no position to check the cosine at");
    chunk_invariant("SmolLM2 Q4_1", &bytes, &tokens[..8], 64);
}

/// Greedy continuations of the dequantized model (the weights transformers
/// runs) equal transformers' greedy generation token for token.
#[test]
fn smollm2_greedy_f32_matches_transformers() {
    let Some(bytes) = smollm2_bytes() else { return };
    let f32_bytes = quantize(&bytes, GgmlType::F32, false)
        .expect("to f32")
        .to_bytes();
    let m = manifest();
    for g in m["smollm2"]["greedy"].as_array().expect("greedy") {
        let prompt = ids(&g["prompt"]);
        let want = ids(&g["continuation"]);
        let got = greedy(&f32_bytes, &prompt, want.len(), 128);
        assert_eq!(got, want, "greedy continuation of {:?}", g["text"]);
    }
}

/// Q4_1 as shipped: greedy text agrees with transformers' until the first near
/// tie that int8 activations reorder. The first token must equal that of
/// transformers with the same int8 activation rounding (for the chat prompt the
/// int8 run already differs from the float one at the first token: both start
/// "L'Étoile" where float activations answer "The capital of France is Paris").
/// How many tokens agree with each reference is printed.
#[test]
fn smollm2_greedy_q4_1() {
    let Some(bytes) = smollm2_bytes() else { return };
    let m = manifest();
    for g in m["smollm2"]["greedy"].as_array().expect("greedy") {
        let prompt = ids(&g["prompt"]);
        let want = ids(&g["continuation"]);
        let want_q8 = ids(&g["continuation_q8act"]);
        let got = greedy(&bytes, &prompt, want.len(), 128);
        let same = |w: &[u32]| got.iter().zip(w).take_while(|(a, b)| a == b).count();
        println!(
            "{:?}: {} / {} tokens as transformers, {} as transformers with int8 activations",
            g["text"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(30)
                .collect::<String>(),
            same(&want),
            want.len(),
            same(&want_q8)
        );
        assert_eq!(got[0], want_q8[0], "first greedy token of {:?}", g["text"]);
    }
}
