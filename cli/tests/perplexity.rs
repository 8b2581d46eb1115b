//! `embergpt perplexity` on the bundled model (ctx 256) over a slice of tinyshakespeare:
//! the printed value equals exp(mean NLL) computed here independently through the library
//! (same chunks, same scored positions, but token-by-token decoding instead of batched
//! prefill), and is finite and above 1.
//!
//! Needs ../shared/data/tinyshakespeare.txt (the shared data folder beside the repository):
//! skipped visibly when absent, a failure under CI=true.

use embergpt::{Context, ContextParams, Model, Tokenizer};
use std::path::PathBuf;
use std::process::Command;

fn shakespeare() -> Option<Vec<u8>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/tinyshakespeare.txt");
    if let Ok(b) = std::fs::read(&p) {
        return Some(b);
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

const N_CTX: usize = 256;
const CHUNKS: usize = 6;

/// exp(mean NLL) over the second halves of the first `CHUNKS` chunks, decoding one token at a time.
fn reference(model_bytes: &[u8], text: &[u8]) -> f64 {
    let model = Model::load(model_bytes).expect("load");
    let g = *model.gguf();
    let mut tok_arena = vec![0u8; Tokenizer::arena_size(&g).unwrap()];
    let mut tok = Tokenizer::new(&g, &mut tok_arena).unwrap();
    let mut ids = vec![0u32; tok.count(text, false)];
    tok.encode(text, false, &mut ids).unwrap();
    assert!(
        ids.len() >= CHUNKS * N_CTX,
        "slice too short: {} tokens",
        ids.len()
    );
    let params = ContextParams {
        n_ctx: N_CTX,
        n_batch: 1,
        ..ContextParams::default()
    };
    let mut arena = vec![0u8; Context::arena_size(&model, &params).unwrap()];
    let mut ctx = Context::new(model, &params, &mut arena).unwrap();
    let (mut sum, mut n) = (0.0f64, 0usize);
    for chunk in ids.chunks_exact(N_CTX).take(CHUNKS) {
        ctx.reset();
        for (j, &t) in chunk.iter().enumerate().take(N_CTX - 1) {
            ctx.eval(&[t]).unwrap();
            if j >= N_CTX / 2 {
                let l = ctx.logits().unwrap();
                let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let z: f64 = l.iter().map(|&x| (x as f64 - max).exp()).sum();
                sum += max + z.ln() - l[chunk[j + 1] as usize] as f64;
                n += 1;
            }
        }
    }
    assert_eq!(n, CHUNKS * (N_CTX - 1 - N_CTX / 2));
    (sum / n as f64).exp()
}

#[test]
fn perplexity_matches_an_independent_computation() {
    let Some(text) = shakespeare() else { return };
    // A slice with room for more than CHUNKS chunks, cut at a line end.
    let slice = &text[..40_000];
    let slice = &slice[..=slice.iter().rposition(|&b| b == b'\n').unwrap()];
    let dir = std::env::temp_dir().join(format!("egpt-ppl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("slice.txt");
    std::fs::write(&f, slice).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_embergpt"))
        .args([
            "perplexity",
            "-c",
            "256",
            "--chunks",
            &CHUNKS.to_string(),
            "-f",
        ])
        .arg(&f)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), CHUNKS + 1, "{stdout}");
    assert!(lines[CHUNKS - 1].starts_with(&format!("[{CHUNKS}] ")));
    let ppl: f64 = lines[CHUNKS]
        .strip_prefix("perplexity: ")
        .expect("final line")
        .parse()
        .unwrap();
    let bundled = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/shakespeare-q8_0.gguf"),
    )
    .unwrap();
    let want = reference(&bundled, slice);
    println!("perplexity: CLI {ppl}, reference {want:.6}");
    assert!(ppl.is_finite() && ppl > 1.0);
    // The CLI prints 4 decimals.
    assert!(
        (ppl - want).abs() <= 5e-5 + 1e-6 * want,
        "CLI {ppl} vs reference {want}"
    );
}
