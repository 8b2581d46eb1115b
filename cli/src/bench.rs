//! `embergpt bench -m MODEL.gguf [-p 128] [-n 64] [-t 1] [--reps 3] [--warmup 1] [--tg-empty] [--json]`

use crate::common::{backend, err, load, pool, read_model, CliResult};
use embergpt::{Context, ContextParams};
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Model file (GGUF).
    #[arg(short = 'm', long = "model")]
    model: PathBuf,
    /// Prompt tokens processed in one prefill.
    #[arg(short = 'p', default_value_t = 128)]
    prompt: usize,
    /// Decode steps after the prompt.
    #[arg(short = 'n', default_value_t = 64)]
    gen: usize,
    /// Threads.
    #[arg(short = 't', long = "threads", default_value_t = 1)]
    threads: usize,
    /// Repetitions (the best run is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Untimed runs before the repetitions (as llama-bench's warm-up run: the
    /// first pass touches the arena's pages and the thread pool's threads).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Prefill batch size (default: the prompt length).
    #[arg(long)]
    batch: Option<usize>,
    /// Kernel backend (auto, scalar, ...).
    #[arg(long)]
    backend: Option<String>,
    /// Time the -n decode steps from an empty context (positions 0..n), as
    /// llama-bench's tg test does, instead of after the -p prompt.
    #[arg(long)]
    tg_empty: bool,
    /// Print a JSON summary as the last line.
    #[arg(long)]
    json: bool,
}

pub fn run(a: Args) -> CliResult<()> {
    if a.prompt == 0 || a.reps == 0 || a.threads == 0 {
        return Err("-p, --reps and -t must be at least 1".into());
    }
    let bytes = read_model(&a.model)?;
    let model = load(&bytes, &a.model)?;
    let hp = *model.hparams();
    if a.prompt + a.gen > hp.n_ctx {
        return Err(format!(
            "-p {} + -n {} exceeds the model's context {}",
            a.prompt, a.gen, hp.n_ctx
        ));
    }
    let params = ContextParams {
        n_ctx: a.prompt + a.gen,
        n_batch: a.batch.unwrap_or(a.prompt).clamp(1, a.prompt),
        logits_all: false,
        backend: backend(a.backend.as_deref())?,
        parallel: pool(a.threads),
    };
    let weight_bytes = weight_bytes_per_token(&model);
    let arena_bytes = Context::arena_size(&model, &params).map_err(err("context"))?;
    let mut arena = vec![0u8; arena_bytes];
    let mut ctx = Context::new(model, &params, &mut arena).map_err(err("context"))?;
    let prompt: Vec<u32> = (0..a.prompt)
        .map(|i| ((i as u64 * 2654435761 + 17) % hp.n_vocab as u64) as u32)
        .collect();
    // One prefill of the prompt and `gen` greedy decode steps: (prefill, decode) tok/s.
    let mut pass = || -> CliResult<(f64, f64)> {
        ctx.reset();
        let t0 = Instant::now();
        ctx.eval(&prompt).map_err(err("prefill"))?;
        let pp = a.prompt as f64 / t0.elapsed().as_secs_f64();
        let mut tok = argmax(ctx.logits().map_err(err("logits"))?);
        if a.tg_empty {
            ctx.reset();
            tok = prompt.first().copied().unwrap_or(0);
        }
        let t1 = Instant::now();
        for _ in 0..a.gen {
            ctx.eval(&[tok]).map_err(err("decode"))?;
            tok = argmax(ctx.logits().map_err(err("logits"))?);
        }
        let tg = if a.gen > 0 {
            a.gen as f64 / t1.elapsed().as_secs_f64()
        } else {
            0.0
        };
        Ok((pp, tg))
    };
    for _ in 0..a.warmup {
        pass()?;
    }
    let (mut best_pp, mut best_tg) = (0.0f64, 0.0f64);
    for rep in 0..a.reps {
        let (pp, tg) = pass()?;
        eprintln!("rep {}: pp {:.2} tok/s, tg {:.2} tok/s", rep + 1, pp, tg);
        best_pp = best_pp.max(pp);
        best_tg = best_tg.max(tg);
    }
    println!(
        "model: {} | backend {} | threads {} | arena {} bytes",
        a.model.display(),
        ctx.backend().name(),
        a.threads,
        arena_bytes
    );
    println!("pp{}: {:.2} tok/s", a.prompt, best_pp);
    println!(
        "tg{}: {:.2} tok/s ({:.1} GB/s of weights: {} bytes per token)",
        a.gen,
        best_tg,
        best_tg * weight_bytes as f64 / 1e9,
        weight_bytes
    );
    // Peak resident set of the whole process (model bytes + arena + runtime).
    let peak = peak_rss_bytes();
    match peak {
        Some(p) => println!(
            "peak RSS: {} bytes (model file {} + arena {} + {} other)",
            p,
            bytes.len(),
            arena_bytes,
            p as i64 - bytes.len() as i64 - arena_bytes as i64
        ),
        None => println!("peak RSS: not available on this OS"),
    }
    if a.json {
        println!(
            "{{\"pp_tps\": {:.3}, \"tg_tps\": {:.3}, \"prompt\": {}, \"gen\": {}, \"threads\": {}, \"tg_empty\": {}, \"backend\": \"{}\", \"arena_bytes\": {}, \"model_bytes\": {}, \"peak_rss_bytes\": {}, \"weight_bytes_per_token\": {}}}",
            best_pp,
            best_tg,
            a.prompt,
            a.gen,
            a.threads,
            a.tg_empty,
            ctx.backend().name(),
            arena_bytes,
            bytes.len(),
            peak.map_or("null".to_string(), |p| p.to_string()),
            weight_bytes
        );
    }
    Ok(())
}

/// Bytes of weights one decode step reads: every tensor but the position
/// embedding (one row per step) and, when the output matrix is a tensor of
/// its own, the token embedding (one row per step; a tied one is the output
/// matrix, read whole).
fn weight_bytes_per_token(model: &embergpt::Model<'_>) -> usize {
    let tied = model.is_tied();
    model
        .gguf()
        .tensors()
        .filter(|t| {
            let name = t.name_str();
            name != "position_embd.weight" && (tied || name != "token_embd.weight")
        })
        .map(|t| t.data.len())
        .sum()
}

/// The process's peak resident set size (`VmHWM` in `/proc/self/status`), Linux only.
fn peak_rss_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Index of the largest logit (lowest index on ties).
pub fn argmax(l: &[f32]) -> u32 {
    let mut best = 0usize;
    for (i, &v) in l.iter().enumerate() {
        if v > l[best] {
            best = i;
        }
    }
    best as u32
}
