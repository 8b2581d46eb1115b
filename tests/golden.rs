//! Golden logits: embergpt against transformers' GPT2LMHeadModel (fixtures made by
//! `tests/scripts/gen_gpt2_fixtures.py`; for quantized files the reference used the
//! dequantized weights, so the difference left is the engine's own).

mod common;
use common::*;
use embergpt::{Context, ContextParams, Model};

struct Stats {
    max_abs: f64,
    std: f64,
    min_cos: f64,
    argmax_agree: usize,
    n: usize,
}

fn compare(ours: &[f32], reference: &[f32], n_vocab: usize) -> Stats {
    assert_eq!(ours.len(), reference.len());
    let mean = reference.iter().map(|&v| v as f64).sum::<f64>() / reference.len() as f64;
    let var = reference
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / reference.len() as f64;
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
        let am = |r: &[f32]| {
            r.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv {
                        (i, v)
                    } else {
                        (bi, bv)
                    }
                })
                .0
        };
        if am(a) == am(b) {
            s.argmax_agree += 1;
        }
        s.n += 1;
    }
    s
}

/// Evaluate `tokens` in chunks of `chunk` with all-position logits.
pub fn run_chunked(bytes: &[u8], tokens: &[u32], chunk: usize) -> Vec<f32> {
    let model = Model::load(bytes).expect("load");
    let p = ContextParams {
        n_batch: chunk,
        logits_all: true,
        ..Default::default()
    };
    let mut arena = arena(Context::arena_size(&model, &p).unwrap());
    let mut ctx = Context::new(model, &p, &mut arena).unwrap();
    let mut out = Vec::new();
    for c in tokens.chunks(chunk) {
        ctx.eval_all(c).unwrap();
        out.extend_from_slice(ctx.all_logits().unwrap());
    }
    out
}

#[test]
fn golden_logits_all_models_and_types() {
    let m = manifest();
    for model in m["models"].as_array().unwrap() {
        let name = model["name"].as_str().unwrap();
        let n_vocab = model["n_vocab"].as_u64().unwrap() as usize;
        let tokens: Vec<u32> = model["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        for ty in model["types"].as_array().unwrap() {
            let ty = ty.as_str().unwrap();
            let bytes = read_fixture(&format!("gpt2/{name}.{ty}.gguf"));
            let reference = f32_file(&format!("gpt2/{name}.{ty}.logits.bin"));
            let ours = run_chunked(&bytes, &tokens, tokens.len());
            let s = compare(&ours, &reference, n_vocab);
            println!(
                "{name}.{ty}: max|diff| {:.3e} = {:.3e} x std, min cos {:.6}, argmax {}/{}",
                s.max_abs,
                s.max_abs / s.std,
                s.min_cos,
                s.argmax_agree,
                s.n
            );
            match ty {
                "f32" => assert!(s.max_abs <= 1e-4 * s.std, "{name}.{ty}"),
                "f16" => assert!(s.max_abs <= 1e-2 * s.std, "{name}.{ty}"),
                _ => {
                    assert!(s.min_cos >= 0.999, "{name}.{ty} cosine {}", s.min_cos);
                    assert!(s.argmax_agree * 100 >= 95 * s.n, "{name}.{ty} argmax");
                }
            }
        }
    }
}

#[test]
fn chunked_prefill_is_bit_identical_to_decode() {
    let m = manifest();
    for model in m["models"].as_array().unwrap() {
        let name = model["name"].as_str().unwrap();
        let tokens: Vec<u32> = model["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        for ty in model["types"].as_array().unwrap() {
            let ty = ty.as_str().unwrap();
            let bytes = read_fixture(&format!("gpt2/{name}.{ty}.gguf"));
            let full = run_chunked(&bytes, &tokens, tokens.len());
            for chunk in [1, 3, 7] {
                let c = run_chunked(&bytes, &tokens, chunk);
                let same = full.iter().zip(&c).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{name}.{ty} chunk {chunk} differs from one batch");
            }
        }
    }
}
