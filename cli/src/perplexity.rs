//! `embergpt perplexity [-m MODEL] -f TEXT [-c N_CTX] [--chunks N] [-b N_BATCH] [-t THREADS]`
//!
//! llama.cpp's method: the whole text is tokenized (no special tokens; a BOS in front when the
//! vocabulary asks for one, `tokenizer.ggml.add_bos_token`), cut into chunks of `n_ctx` tokens
//! (a shorter tail is dropped), and each chunk is evaluated from an empty cache (with BOS in
//! place of its first token when the vocabulary asks for one, as `llama-perplexity` does); only the second half is scored, so every scored token sees at least `n_ctx / 2`
//! tokens of context: logits at positions `j = n_ctx/2 ..= n_ctx - 2` predict token `j + 1`.
//! The negative log-likelihoods (log-softmax in f64) of all scored tokens are averaged over the
//! chunks so far; perplexity is `exp(mean NLL)`.
//!
//! stdout: one `[k] PPL` line per chunk (running value), then `perplexity: X.XXXX` (last line).
//! stderr: a progress bar and the speed.

use crate::common::{backend, err, pool, CliResult, ModelSource};
use embergpt::{Context, ContextParams, Tokenizer};
use std::io::Write;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Model file (GGUF); the bundled Shakespeare model when absent.
    #[arg(short = 'm', long = "model")]
    model: Option<std::path::PathBuf>,
    /// Text file (UTF-8 or not: bytes are tokenized as they are).
    #[arg(short = 'f', long = "file")]
    file: std::path::PathBuf,
    /// Tokens per chunk (0 = the model's context length).
    #[arg(short = 'c', long = "ctx-size", default_value_t = 512)]
    n_ctx: usize,
    /// Most chunks to evaluate (0 = all).
    #[arg(long = "chunks", default_value_t = 0)]
    chunks: usize,
    /// Tokens per forward step.
    #[arg(short = 'b', long = "batch-size", default_value_t = 128)]
    n_batch: usize,
    /// Threads.
    #[arg(short = 't', long = "threads", default_value_t = 1)]
    threads: usize,
    /// Kernel backend (auto, scalar, ...).
    #[arg(long)]
    backend: Option<String>,
}

/// `-log softmax(logits)[target]`, in f64.
pub fn nll(logits: &[f32], target: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    let t = logits.get(target as usize).copied().unwrap_or(f32::NAN) as f64;
    max + sum.ln() - t
}

pub fn run(a: Args) -> CliResult<()> {
    if a.threads == 0 {
        return Err("-t must be at least 1".into());
    }
    let src = ModelSource::open(a.model.as_deref())?;
    let model = src.load()?;
    let gguf = *model.gguf();
    let hp = *model.hparams();
    let n_ctx = if a.n_ctx == 0 { hp.n_ctx } else { a.n_ctx };
    if n_ctx < 4 || n_ctx > hp.n_ctx {
        return Err(format!(
            "-c must be between 4 and {} (the model's)",
            hp.n_ctx
        ));
    }
    let text =
        std::fs::read(&a.file).map_err(|e| format!("cannot read {}: {e}", a.file.display()))?;
    let mut tok_arena = vec![0u8; Tokenizer::arena_size(&gguf).map_err(err("tokenizer"))?];
    let mut tok = Tokenizer::new(&gguf, &mut tok_arena).map_err(err("tokenizer"))?;
    let bos = tok.bos().filter(|_| tok.add_bos());
    let lead = usize::from(bos.is_some());
    let mut tokens = vec![0u32; lead + tok.count(&text, false)];
    let (head, body) = tokens.split_at_mut(lead);
    tok.encode(&text, false, body).map_err(err("tokenize"))?;
    if let (Some(b), [h]) = (bos, head) {
        *h = b;
    }
    let mut n_chunks = tokens.len() / n_ctx;
    if a.chunks > 0 {
        n_chunks = n_chunks.min(a.chunks);
    }
    if n_chunks == 0 {
        return Err(format!(
            "{} tokens: need at least one chunk of {n_ctx} (lower -c)",
            tokens.len()
        ));
    }
    let n_batch = a.n_batch.clamp(1, n_ctx);
    let params = ContextParams {
        n_ctx,
        n_batch,
        logits_all: true,
        backend: backend(a.backend.as_deref())?,
        parallel: pool(a.threads),
    };
    let ctx_bytes = Context::arena_size(&model, &params).map_err(err("context"))?;
    let mut arena = vec![0u8; ctx_bytes];
    let mut ctx = Context::new(model, &params, &mut arena).map_err(err("context"))?;
    eprintln!(
        "[perplexity: {} tokens, {n_chunks} chunks of {n_ctx}, scoring {} per chunk, backend {}]",
        tokens.len(),
        n_ctx - 1 - n_ctx / 2,
        ctx.backend().name()
    );

    let pb = indicatif::ProgressBar::new(n_chunks as u64);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} chunks, ETA {eta} {msg}")
            .map_err(|e| e.to_string())?,
    );
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let first = n_ctx / 2;
    let (mut sum, mut count) = (0.0f64, 0usize);
    let t0 = Instant::now();
    for chunk in tokens.chunks_exact(n_ctx).take(n_chunks) {
        ctx.reset();
        let mut prefix = chunk[..first].to_vec();
        if let (Some(b), Some(t0)) = (bos, prefix.first_mut()) {
            *t0 = b;
        }
        ctx.eval(&prefix).map_err(err("eval"))?;
        let mut pos = first;
        for sub in chunk[first..].chunks(n_batch) {
            ctx.eval_all(sub).map_err(err("eval"))?;
            let logits = ctx.all_logits().map_err(err("logits"))?;
            for (r, row) in logits.chunks_exact(hp.n_vocab).enumerate() {
                if let Some(&target) = chunk.get(pos + r + 1) {
                    sum += nll(row, target);
                    count += 1;
                }
            }
            pos += sub.len();
        }
        let ppl = (sum / count as f64).exp();
        pb.inc(1);
        pb.set_message(format!("PPL {ppl:.4}"));
        let _ = writeln!(out, "[{}] {ppl:.4}", pb.position());
    }
    pb.finish_and_clear();
    let secs = t0.elapsed().as_secs_f64();
    eprintln!(
        "[{} chunks, {} tokens evaluated in {secs:.1} s ({:.1} tok/s), {count} scored]",
        n_chunks,
        n_chunks * n_ctx,
        (n_chunks * n_ctx) as f64 / secs
    );
    let _ = writeln!(out, "perplexity: {:.4}", (sum / count as f64).exp());
    Ok(())
}
