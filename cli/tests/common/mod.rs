//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)] // each test binary uses a subset

use std::path::PathBuf;
use std::process::Command;

/// The `embergpt` binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_embergpt"))
}

/// The path of `../shared/data/NAME` (the shared data folder beside the repository); None with
/// a visible SKIPPED line when absent, a failure under CI=true.
pub fn shared_file(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data")
        .join(name);
    if p.exists() {
        return Some(p);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} missing under CI=true", p.display());
    }
    eprintln!(
        "SKIPPED: {} missing (the shared data folder sits beside the repository)",
        p.display()
    );
    None
}

/// stories260K (llama2.c, SentencePiece vocabulary) converted by the binary into a temp dir
/// (`tag` keeps concurrent tests apart); None when ../shared/data is absent (see `shared_file`).
pub fn stories_gguf(tag: &str) -> Option<PathBuf> {
    let bin_file = shared_file("stories260K.bin")?;
    let tok = shared_file("tok512.bin")?;
    let dir = std::env::temp_dir().join(format!("egpt-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("stories260K.gguf");
    let st = bin()
        .arg("convert")
        .arg(&bin_file)
        .arg("--tokenizer")
        .arg(&tok)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    Some(out)
}
