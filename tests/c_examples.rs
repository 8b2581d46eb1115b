//! The C API end to end: `make -C c-examples test` (library build, header and export
//! checks, C/C++/Python examples, bad inputs under ASan+UBSan and valgrind, install
//! with pkg-config and CMake), then the C `greedy` example's token ids against the
//! same decoding through the Rust API, and the C `generate` example's text (tokenize,
//! sample with seed 42, stream through `egpt_generate`) against the Rust API's
//! `Tokenizer` + `Sampler` + `generate`.
//!
//! The text model is the bundled `cli/assets/shakespeare-q8_0.gguf`, or the file named
//! by `EMBERGPT_TEXT_MODEL` (any GPT-2 GGUF with a tokenizer).
//!
//! Prints SKIPPED when `cc` or `make` is missing (or the text part when the text model
//! is), unless `CI` is set (then fails).

mod common;
use common::*;
use embergpt::{
    generate, Context, ContextParams, GenerateParams, Model, Sampler, SamplerParams, Tokenizer,
};
use std::path::{Path, PathBuf};
use std::process::Command;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The library's own target directory (never the one this test runs from, whose
/// build lock the outer cargo may hold).
fn capi_target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
        .join("capi")
}

/// Greedy decoding through the Rust API, as c-examples/greedy.c does it.
fn rust_greedy(model_path: &Path, prompt: &[u32], steps: usize) -> Vec<u32> {
    let bytes = std::fs::read(model_path).unwrap();
    let model = Model::load(&bytes).unwrap();
    let p = ContextParams {
        n_batch: ContextParams::default().n_batch.min(model.hparams().n_ctx),
        ..Default::default()
    };
    let mut a = arena(Context::arena_size(&model, &p).unwrap());
    let mut ctx = Context::new(model, &p, &mut a).unwrap();
    ctx.eval(prompt).unwrap();
    let mut out = Vec::new();
    for _ in 0..steps {
        let l = ctx.logits().unwrap();
        // First index of the maximum, as generate.c's `>` scan picks it.
        let mut best = 0;
        for (i, &v) in l.iter().enumerate() {
            if v > l[best] {
                best = i;
            }
        }
        out.push(best as u32);
        if ctx.eval(&[best as u32]).is_err() {
            break;
        }
    }
    out
}

fn c_greedy(model_path: &Path, prompt: &[u32], steps: usize) -> Vec<u32> {
    let exe = root().join("c-examples/build/greedy");
    let mut cmd = Command::new(exe);
    cmd.arg(model_path).arg(steps.to_string());
    for t in prompt {
        cmd.arg(t.to_string());
    }
    let out = cmd.output().expect("run generate");
    assert!(
        out.status.success(),
        "generate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("generated:"))
        .unwrap_or_else(|| panic!("no 'generated:' line in\n{stdout}"));
    line.split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect()
}

#[test]
fn c_examples_make_test() {
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    for tool in ["cc", "make"] {
        if !have(tool) {
            assert!(!ci, "{tool} is missing and CI is set: CI must install it");
            println!("SKIPPED: c_examples: `{tool}` not installed");
            return;
        }
    }
    let mut make = Command::new("make");
    make.arg("-C")
        .arg(root().join("c-examples"))
        .arg("test")
        .env("CARGO_TARGET_DIR", capi_target_dir());
    if let Some(m) = std::env::var_os("EMBERGPT_TEXT_MODEL") {
        make.arg(format!("TEXT_MODEL={}", PathBuf::from(m).display()));
    }
    let status = make.status().expect("run make");
    assert!(status.success(), "make -C c-examples test failed");

    // The C example decodes exactly what the Rust API decodes.
    let m = manifest();
    for model in m["models"].as_array().unwrap() {
        let name = model["name"].as_str().unwrap();
        let prompt: Vec<u32> = model["tokens"].as_array().unwrap()[..4]
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        for ty in ["f32", "q8_0", "q4_1"] {
            let path = fixture(&format!("gpt2/{name}.{ty}.gguf"));
            let c = c_greedy(&path, &prompt, 12);
            let r = rust_greedy(&path, &prompt, 12);
            println!("{name}.{ty}: C {c:?}");
            assert_eq!(c, r, "{name}.{ty}: C API and Rust API decode differently");
            assert_eq!(c.len(), 12);
        }
    }

    // The C text example prints exactly what the Rust API generates.
    let text_model = text_model();
    if !text_model.exists() {
        assert!(!ci, "{} missing and CI is set", text_model.display());
        println!(
            "SKIPPED: c_examples text generation: {} not found",
            text_model.display()
        );
        return;
    }
    for (prompt, n, stop) in [
        ("ROMEO:", 48, None),
        ("ROMEO:", 48, Some("e")),
        ("Wörds, ünïcode: € ✓", 32, None),
    ] {
        let c = c_generate(&text_model, prompt, n, stop);
        let r = rust_generate(&text_model, prompt, n, stop);
        println!(
            "C generate {prompt:?} {n} {stop:?}: {:?}",
            String::from_utf8_lossy(&c)
        );
        assert_eq!(c, r, "C and Rust generate differently for {prompt:?}");
    }
}

fn text_model() -> PathBuf {
    std::env::var_os("EMBERGPT_TEXT_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("cli/assets/shakespeare-q8_0.gguf"))
}

/// stdout of c-examples/generate: prompt, generated text, newline.
fn c_generate(model: &Path, prompt: &str, n: usize, stop: Option<&str>) -> Vec<u8> {
    let mut cmd = Command::new(root().join("c-examples/build/generate"));
    cmd.arg(model).arg(prompt).arg(n.to_string());
    if let Some(s) = stop {
        cmd.arg(s);
    }
    let out = cmd.output().expect("run generate");
    assert!(
        out.status.success(),
        "generate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// What c-examples/generate.c does, through the Rust API.
fn rust_generate(model_path: &Path, prompt: &str, n: usize, stop: Option<&str>) -> Vec<u8> {
    let bytes = std::fs::read(model_path).unwrap();
    let model = Model::load(&bytes).unwrap();
    let n_vocab = model.hparams().n_vocab;
    let mut ta = arena(Tokenizer::arena_size(model.gguf()).unwrap());
    let mut tok = Tokenizer::new(model.gguf(), &mut ta).unwrap();
    let p = ContextParams {
        n_batch: ContextParams::default().n_batch.min(model.hparams().n_ctx),
        ..Default::default()
    };
    let sp = SamplerParams {
        seed: 42,
        ..Default::default()
    };
    let mut sa = arena(Sampler::arena_size(n_vocab, &sp).unwrap());
    let mut sampler = Sampler::new(n_vocab, &sp, &mut sa).unwrap();
    let mut ids = vec![0u32; prompt.len()];
    let k = tok.encode(prompt.as_bytes(), false, &mut ids).unwrap();
    let mut ca = arena(Context::arena_size(&model, &p).unwrap());
    let mut ctx = Context::new(model, &p, &mut ca).unwrap();
    let stops: Vec<&[u8]> = stop.iter().map(|s| s.as_bytes()).collect();
    let gp = GenerateParams {
        max_tokens: Some(n),
        stop: &stops,
        ..Default::default()
    };
    let mut out = prompt.as_bytes().to_vec();
    generate(&mut ctx, &mut sampler, &tok, &ids[..k], &gp, |_, t| {
        out.extend_from_slice(t);
        true
    })
    .unwrap();
    out.push(b'\n');
    out
}
