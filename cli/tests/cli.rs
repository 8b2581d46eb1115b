//! The CLI's command forms are a contract: these tests run the real binary.

mod common;
use common::{bin, stories_gguf};
use std::path::PathBuf;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(rel)
}

fn read_f32(p: &PathBuf) -> Vec<f32> {
    std::fs::read(p)
        .unwrap()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

#[test]
fn inspect_prints_hparams_tensors_and_arena() {
    let out = bin()
        .args(["inspect", "-m"])
        .arg(fixture("gpt2/b.q4_0.gguf"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("architecture: gpt2"));
    assert!(s.contains("n_vocab=160 n_ctx=48 n_embd=96 n_ff=384 n_layer=2 n_head=3"));
    assert!(s.contains("blk.1.ffn_down.weight"));
    assert!(s.contains("q4_0"));
    assert!(s.contains("arena for the full context"));
}

#[test]
fn logits_writes_all_positions_and_is_chunk_invariant() {
    let dir = std::env::temp_dir().join(format!("egpt-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let tokens = "91,42,123,208,141,55,23,251,65";
    let mut outs = Vec::new();
    for chunk in ["0", "1", "4"] {
        let out = dir.join(format!("l{chunk}.bin"));
        let st = bin()
            .args(["logits", "-m"])
            .arg(fixture("gpt2/a.q8_0.gguf"))
            .args([
                "--tokens",
                tokens,
                "--chunk",
                chunk,
                "--backend",
                "scalar",
                "--out",
            ])
            .arg(&out)
            .status()
            .unwrap();
        assert!(st.success());
        let v = read_f32(&out);
        assert_eq!(v.len(), 9 * 256, "[n_tokens][n_vocab]");
        outs.push(v);
    }
    for o in &outs[1..] {
        assert!(o
            .iter()
            .zip(&outs[0])
            .all(|(a, b)| a.to_bits() == b.to_bits()));
    }
    // The CLI's rows equal the golden reference within the F32 bound on the f32 file.
    let out = dir.join("f32.bin");
    let m = &serde_json::from_slice::<serde_json::Value>(
        &std::fs::read(fixture("gpt2/manifest.json")).unwrap(),
    )
    .unwrap()["models"][0];
    let toks: Vec<String> = m["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert!(bin()
        .args(["logits", "-m"])
        .arg(fixture("gpt2/a.f32.gguf"))
        .args(["--tokens", &toks.join(","), "--out"])
        .arg(&out)
        .status()
        .unwrap()
        .success());
    let ours = read_f32(&out);
    let reference = read_f32(&fixture("gpt2/a.f32.logits.bin"));
    let mean = reference.iter().sum::<f32>() / reference.len() as f32;
    let std =
        (reference.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / reference.len() as f32).sqrt();
    let max = ours
        .iter()
        .zip(&reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(max <= 1e-4 * std, "max diff {max}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn errors_are_one_line_and_nonzero() {
    let out = bin()
        .args(["logits", "-m"])
        .arg(fixture("gpt2/a.f32.gguf"))
        .args(["--tokens", "1,2,99999", "--out", "/nonexistent-dir/x.bin"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let e = String::from_utf8(out.stderr).unwrap();
    assert_eq!(e.lines().count(), 1, "{e}");
    assert!(e.contains("token id out of the vocabulary range"), "{e}");

    let out = bin()
        .args(["inspect", "-m", "/nonexistent.gguf"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(String::from_utf8(out.stderr).unwrap().lines().count(), 1);

    // A file that is not GGUF.
    let out = bin()
        .args(["inspect", "-m"])
        .arg(fixture("gpt2/manifest.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr).unwrap().contains("bad magic"));
}

#[test]
fn closed_stdout_ends_quietly_without_a_panic() {
    // `embergpt inspect -m X | head -1`: the reader goes away before the output ends.
    let mut child = bin()
        .args(["inspect", "-m"])
        .arg(fixture("gpt2/a.q8_0.gguf"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // close the read end before the first line is written
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "stderr: {err}");
    assert_eq!(out.status.code(), Some(141), "stderr: {err}");
}

/// `embergpt bench -m c.q4_1.gguf ARGS --reps 1 --json`: its JSON last line.
fn bench_json(args: &[&str]) -> serde_json::Value {
    let out = bin()
        .args(["bench", "-m"])
        .arg(fixture("gpt2/c.q4_1.gguf"))
        .args(args)
        .args(["--reps", "1", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(s.lines().last().unwrap()).unwrap()
}

#[test]
fn bench_json_last_line() {
    let last = bench_json(&["-p", "8", "-n", "4"]);
    assert!(last["pp_tps"].as_f64().unwrap() > 0.0);
    assert!(last["tg_tps"].as_f64().unwrap() > 0.0);
    assert_eq!(last["tg_empty"], serde_json::Value::Bool(false));
    // What one decode step reads: every tensor but the position embedding
    // (the fixture's output matrix is its tied token embedding, read whole).
    let bytes = std::fs::read(fixture("gpt2/c.q4_1.gguf")).unwrap();
    let model = embergpt::Model::load(&bytes).unwrap();
    assert!(model.is_tied());
    let want: usize = model
        .gguf()
        .tensors()
        .filter(|t| t.name_str() != "position_embd.weight")
        .map(|t| t.data.len())
        .sum();
    let pos = model.gguf().tensor("position_embd.weight").unwrap();
    assert!(!pos.data.is_empty());
    assert_eq!(last["weight_bytes_per_token"].as_u64(), Some(want as u64));
    assert!(want < bytes.len());
}

#[test]
fn bench_tg_empty_runs_and_says_so() {
    // llama-bench's tg test (decode from an empty context), as the side-by-side script runs it.
    let last = bench_json(&["-p", "4", "-n", "6", "--tg-empty"]);
    assert_eq!(last["tg_empty"], serde_json::Value::Bool(true));
    assert!(last["tg_tps"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_mem_read_reports_both_thread_counts() {
    // Without the flag the figures are null; with it, a plain read of the
    // model's bytes on 1 thread and on -t threads.
    let plain = bench_json(&["-p", "4", "-n", "2"]);
    assert!(plain["mem_read_gbps_1t"].is_null() && plain["mem_read_gbps"].is_null());
    let one = bench_json(&["-p", "4", "-n", "2", "--mem-read"]);
    let g1 = one["mem_read_gbps_1t"].as_f64().unwrap();
    assert!(g1 > 0.0 && g1.is_finite());
    assert_eq!(one["mem_read_gbps"].as_f64(), Some(g1), "-t 1: one figure");
    let two = bench_json(&["-p", "4", "-n", "2", "-t", "2", "--mem-read"]);
    assert_eq!(two["threads"].as_u64(), Some(2));
    for k in ["mem_read_gbps_1t", "mem_read_gbps"] {
        let g = two[k].as_f64().unwrap();
        assert!(g > 0.0 && g.is_finite(), "{k}: {g}");
    }
}

fn run_ok(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn generate_works_with_the_bundled_model_and_is_seeded() {
    let a = run_ok(&["generate", "-p", "ROMEO:", "-n", "40", "--seed", "7"]);
    let b = run_ok(&["generate", "-p", "ROMEO:", "-n", "40", "--seed", "7"]);
    assert_eq!(a, b, "same seed, same output");
    assert!(a.starts_with("ROMEO:") && a.len() > 40);
    // Greedy equals the PyTorch greedy continuation of the training script's fixture.
    let g: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("default_model/golden.json")).unwrap())
            .unwrap();
    let case = &g["cases"][0];
    let greedy = run_ok(&["generate", "-p", "ROMEO:", "-n", "40", "--temp", "0"]);
    let want = format!(
        "ROMEO:{}\n",
        case["greedy_q8_0_dequant_text"].as_str().unwrap()
    );
    assert_eq!(greedy, want);
}

#[test]
fn tokenize_and_detokenize_round_trip() {
    let vocab = fixture("tokenizer/gpt2-vocab.gguf");
    let v = vocab.to_str().unwrap();
    let ids = run_ok(&["tokenize", "-m", v, "Hello world, it's me"]);
    assert_eq!(ids.trim(), "[15496, 995, 11, 340, 338, 502]"); // tiktoken gpt2
    let text = run_ok(&[
        "detokenize",
        "-m",
        v,
        "--tokens",
        "15496,995,11,340,338,502",
    ]);
    assert_eq!(text, "Hello world, it's me\n");
    // `-` reads stdin; the bundled model's own vocabulary when -m is absent.
    let mut child = bin()
        .args(["tokenize", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"ROMEO:").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "[82, 79, 77, 69, 79, 58]"
    );
}

/// Issue 5's memory promise: while generating, the process's peak RSS stays
/// within model file + arena + 16 MiB (the CLI reads the file into memory; the
/// arena is the only other large allocation). Checked on a 16 MiB random GPT-2.
#[test]
fn bench_peak_rss_within_model_plus_arena_plus_16_mib() {
    if !std::path::Path::new("/proc/self/status").exists() {
        println!("SKIPPED: peak RSS needs /proc/self/status (Linux)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("embergpt-rss-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("rss.q8_0.gguf");
    let bytes =
        embergpt_cli::gguf_write::random_gpt2(8192, 256, 512, 8, 4, embergpt::GgmlType::Q8_0, 5)
            .unwrap();
    std::fs::write(&model, &bytes).unwrap();
    let out = bin()
        .args(["bench", "-m"])
        .arg(&model)
        .args(["-p", "64", "-n", "32", "--reps", "1", "--json"])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout).unwrap();
    let j: serde_json::Value = serde_json::from_str(s.lines().last().unwrap()).unwrap();
    let peak = j["peak_rss_bytes"].as_u64().unwrap();
    let model_b = j["model_bytes"].as_u64().unwrap();
    let arena = j["arena_bytes"].as_u64().unwrap();
    assert_eq!(model_b, bytes.len() as u64);
    let bound = model_b + arena + (16 << 20);
    println!("peak RSS {peak} B, model {model_b} B, arena {arena} B, bound {bound} B");
    assert!(
        peak <= bound,
        "peak RSS {peak} > model {model_b} + arena {arena} + 16 MiB"
    );
}

#[test]
fn llama_vocabulary_tokenizes_and_generates() {
    let Some(model) = stories_gguf("cli-spm") else {
        return;
    };
    let m = model.to_str().unwrap();
    // llama.cpp's ids for this text (tests/fixtures/tokenizer/llama_cases.json has more).
    let ids = run_ok(&["tokenize", "-m", m, "Once upon a time,"]);
    assert_eq!(ids.trim(), "[403, 407, 261, 378, 432]");
    let text = run_ok(&["detokenize", "-m", m, "--tokens", "403,407,261,378,432"]);
    assert_eq!(text, "Once upon a time,\n");
    let text = run_ok(&["detokenize", "-m", m, "--tokens", "1,403,407"]);
    assert_eq!(
        text, "<s> Once upon\n",
        "after BOS the space stays (llama_detokenize)"
    );
    // generate puts BOS first: the greedy continuation of [BOS, Once upon a time,] is
    // transformers' (tests/fixtures/llama/manifest.json), its pieces with ▁ as spaces.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("llama/manifest.json")).unwrap()).unwrap();
    let g = &manifest["stories260K"]["greedy"][1];
    assert_eq!(g["prompt"], serde_json::json!([1, 403, 407, 261, 378, 432]));
    let file = std::fs::read(&model).unwrap();
    let gguf = embergpt::Gguf::parse(&file).unwrap();
    let pieces = gguf.get_array("tokenizer.ggml.tokens").unwrap();
    let mut want = String::from("Once upon a time,");
    for id in g["continuation"].as_array().unwrap().iter().take(20) {
        let p = pieces.get(id.as_u64().unwrap() as usize).unwrap();
        want.push_str(
            &std::str::from_utf8(p.as_str().unwrap())
                .unwrap()
                .replace('\u{2581}', " "),
        );
    }
    let out = run_ok(&[
        "generate",
        "-m",
        m,
        "-p",
        "Once upon a time,",
        "-n",
        "20",
        "--temp",
        "0",
    ]);
    assert_eq!(out, format!("{want}\n"));
}
