//! The C API end to end: `make -C c-examples test` (library build, header and export
//! checks, C/C++/Python examples, bad inputs under ASan+UBSan and valgrind, install
//! with pkg-config and CMake), then the C `generate` example's greedy token ids
//! against the same decoding through the Rust API.
//!
//! Prints SKIPPED when `cc` or `make` is missing, unless `CI` is set (then fails).

mod common;
use common::*;
use embergpt::{Context, ContextParams, Model};
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

/// Greedy decoding through the Rust API, as c-examples/generate.c does it.
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
    let exe = root().join("c-examples/build/generate");
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
    let status = Command::new("make")
        .arg("-C")
        .arg(root().join("c-examples"))
        .arg("test")
        .env("CARGO_TARGET_DIR", capi_target_dir())
        .status()
        .expect("run make");
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
}
