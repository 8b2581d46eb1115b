//! `embergpt logits -m MODEL.gguf --tokens 464,2068,7586 --out FILE [--chunk N] [-t THREADS] [--backend NAME]`

use crate::common::{backend, err, load, pool, read_model, CliResult};
use embergpt::{Context, ContextParams};
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Model file (GGUF).
    #[arg(short = 'm', long = "model")]
    model: PathBuf,
    /// Comma-separated token ids, evaluated from position 0.
    #[arg(long)]
    tokens: String,
    /// Output file: little-endian f32, row-major [n_tokens][n_vocab].
    #[arg(long)]
    out: PathBuf,
    /// Feed the tokens in prefill chunks of N (1 = token-by-token decode).
    #[arg(long, default_value_t = 0)]
    chunk: usize,
    /// Threads.
    #[arg(short = 't', long = "threads", default_value_t = 1)]
    threads: usize,
    /// Kernel backend (auto, scalar, ...).
    #[arg(long)]
    backend: Option<String>,
}

pub fn parse_tokens(s: &str) -> CliResult<Vec<u32>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.trim()
                .parse::<u32>()
                .map_err(|_| format!("bad token id '{p}' in --tokens"))
        })
        .collect()
}

pub fn run(a: Args) -> CliResult<()> {
    let tokens = parse_tokens(&a.tokens)?;
    if tokens.is_empty() {
        return Err("--tokens is empty".into());
    }
    if a.threads == 0 {
        return Err("-t must be at least 1".into());
    }
    let bytes = read_model(&a.model)?;
    let model = load(&bytes, &a.model)?;
    let chunk = if a.chunk == 0 { tokens.len() } else { a.chunk };
    let n_ctx = model.hparams().n_ctx;
    let params = ContextParams {
        n_ctx: 0,
        n_batch: chunk.min(n_ctx),
        logits_all: true,
        backend: backend(a.backend.as_deref())?,
        parallel: pool(a.threads),
    };
    let mut arena = vec![0u8; Context::arena_size(&model, &params).map_err(err("context"))?];
    let mut ctx = Context::new(model, &params, &mut arena).map_err(err("context"))?;
    let mut out = Vec::with_capacity(tokens.len() * model.hparams().n_vocab * 4);
    for c in tokens.chunks(params.n_batch) {
        ctx.eval_all(c).map_err(err("eval"))?;
        for v in ctx.all_logits().map_err(err("logits"))? {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    std::fs::File::create(&a.out)
        .and_then(|mut f| f.write_all(&out))
        .map_err(|e| format!("cannot write {}: {e}", a.out.display()))?;
    Ok(())
}
