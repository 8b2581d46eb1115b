//! `embergpt bench -m MODEL.gguf [-p 128] [-n 64] [-t 1] [--reps 3] [--warmup 1] [--tg-empty] [--mem-read] [--json]`

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
    /// Also time a plain read of the model's bytes (no arithmetic, the same
    /// memory decode reads) on 1 and on -t threads: the machine's memory
    /// bandwidth, and how far it scales with threads, beside decode's GB/s.
    #[arg(long)]
    mem_read: bool,
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
    // GB/s of weights the best decode run read.
    let decode_gbps = best_tg * weight_bytes as f64 / 1e9;
    println!(
        "tg{}: {:.2} tok/s ({:.1} GB/s of weights: {} bytes per token)",
        a.gen, best_tg, decode_gbps, weight_bytes
    );
    // The plain read, after the passes (it does not warm their caches).
    let mem = a.mem_read.then(|| {
        let one = mem_read_gbps(&bytes, 1, a.reps);
        let all = if a.threads > 1 {
            mem_read_gbps(&bytes, a.threads, a.reps)
        } else {
            one
        };
        (one, all)
    });
    if let Some((one, all)) = mem {
        print!("memory read (the model's bytes, no arithmetic): 1 thread {one:.1} GB/s");
        if a.threads > 1 {
            print!(", {} threads {all:.1} GB/s ({:.2}x)", a.threads, all / one);
        }
        println!("; decode read {:.0}% of it", 100.0 * decode_gbps / all);
    }
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
            "{{\"pp_tps\": {:.3}, \"tg_tps\": {:.3}, \"prompt\": {}, \"gen\": {}, \"threads\": {}, \"tg_empty\": {}, \"backend\": \"{}\", \"arena_bytes\": {}, \"model_bytes\": {}, \"peak_rss_bytes\": {}, \"weight_bytes_per_token\": {}, \"mem_read_gbps_1t\": {}, \"mem_read_gbps\": {}}}",
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
            weight_bytes,
            mem.map_or("null".to_string(), |m| format!("{:.3}", m.0)),
            mem.map_or("null".to_string(), |m| format!("{:.3}", m.1)),
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

/// Streams each thread reads side by side in [`mem_read_gbps`].
const READ_STREAMS: usize = 4;
/// Bytes each stream reads before the next one takes its turn.
const READ_STEP: usize = 1024;

/// GB/s of a plain read of `bytes` by `threads` threads (contiguous shares,
/// each read as [`READ_STREAMS`] interleaved streams: on the 2-core Zen 3 VM
/// a read loop got the most from 4 streams without software prefetch, more
/// than from 1 or 2, with or without it), the median of `reps` timed reads
/// after an untimed one. A read runs from the first thread's start to the
/// last one's end.
fn mem_read_gbps(bytes: &[u8], threads: usize, reps: usize) -> f64 {
    let share = bytes.len().div_ceil(threads).max(1);
    let parts: Vec<&[u8]> = bytes.chunks(share).collect();
    let start = std::sync::Barrier::new(parts.len());
    let times: Vec<Vec<(Instant, Instant)>> = std::thread::scope(|s| {
        let hs: Vec<_> = parts
            .iter()
            .map(|&part| {
                let start = &start;
                s.spawn(move || {
                    (0..=reps)
                        .map(|_| {
                            start.wait();
                            let t0 = Instant::now();
                            std::hint::black_box(read_streams(part));
                            (t0, Instant::now())
                        })
                        .skip(1)
                        .collect()
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut gbps: Vec<f64> = (0..reps)
        .filter_map(|r| {
            let t0 = times.iter().filter_map(|t| t.get(r)).map(|t| t.0).min()?;
            let t1 = times.iter().filter_map(|t| t.get(r)).map(|t| t.1).max()?;
            let secs = t1.duration_since(t0).as_secs_f64().max(1e-9);
            Some(bytes.len() as f64 / secs / 1e9)
        })
        .collect();
    gbps.sort_by(f64::total_cmp);
    gbps.get(gbps.len() / 2).copied().unwrap_or(0.0)
}

/// Fold every byte of `part`, read as [`READ_STREAMS`] streams taking turns
/// every [`READ_STEP`] bytes, into a value the compiler cannot skip.
fn read_streams(part: &[u8]) -> u64 {
    let fold = |b: &[u8]| {
        let mut acc = [0u64; 4];
        let mut c32 = b.chunks_exact(32);
        for c in c32.by_ref() {
            for (a, w) in acc.iter_mut().zip(c.chunks_exact(8)) {
                *a ^= u64::from_le_bytes(w.try_into().unwrap_or_default());
            }
        }
        let rest = c32.remainder().iter().fold(0, |x, &v| x << 1 ^ v as u64);
        acc.iter().fold(rest, |x, a| x ^ a)
    };
    let q = part.len() / READ_STREAMS / READ_STEP * READ_STEP;
    let mut acc = 0u64;
    if q > 0 {
        let streams: Vec<&[u8]> = part.chunks(q).take(READ_STREAMS).collect();
        for off in (0..q).step_by(READ_STEP) {
            for st in &streams {
                acc ^= fold(st.get(off..off + READ_STEP).unwrap_or_default());
            }
        }
    }
    // The bytes past the streams (all of them in a part under 4 KiB).
    acc ^ fold(part.get(READ_STREAMS * q..).unwrap_or_default())
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

#[cfg(test)]
mod tests {
    use super::{mem_read_gbps, read_streams, READ_STEP, READ_STREAMS};

    /// Every byte is read exactly once, whatever the length (below one step,
    /// whole and partial steps, stream remainders): changing any one byte
    /// changes the fold.
    #[test]
    fn read_streams_reads_every_byte_once() {
        let whole = READ_STREAMS * READ_STEP;
        for n in [
            0,
            1,
            31,
            32,
            33,
            whole - 1,
            whole,
            whole + 1,
            3 * whole + 77,
        ] {
            let mut b: Vec<u8> = (0..n).map(|i| (i * 131 % 251) as u8).collect();
            let base = read_streams(&b);
            for i in 0..n {
                b[i] ^= 0x5a;
                assert_ne!(read_streams(&b), base, "length {n}: byte {i} not read");
                b[i] ^= 0x5a;
            }
        }
    }

    #[test]
    fn mem_read_gbps_for_any_split() {
        let b = vec![7u8; 3 * READ_STREAMS * READ_STEP + 5];
        for (len, threads) in [(b.len(), 1), (b.len(), 2), (b.len(), 3), (1, 2)] {
            let g = mem_read_gbps(&b[..len], threads, 3);
            assert!(
                g > 0.0 && g.is_finite(),
                "{len} bytes, {threads} threads: {g}"
            );
        }
        // Nothing to read: no thread starts, and the figure is 0.
        assert_eq!(mem_read_gbps(&[], 2, 3), 0.0);
    }
}
