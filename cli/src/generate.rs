//! `embergpt generate [-m MODEL] [-p PROMPT] [-n N] [--temp T] [--top-k K] [--top-p P]
//! [--min-p P] [--repeat-penalty R] [--seed S] [-t THREADS]`
//!
//! Streams the continuation to stdout; timing and memory go to stderr.

use crate::common::{backend, err, pool, seed_or_clock, CliResult, ModelSource};
use embergpt::{
    generate, Context, ContextParams, GenerateParams, Sampler, SamplerParams, Tokenizer,
};
use std::io::Write;
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Model file (GGUF); the bundled Shakespeare model when absent.
    #[arg(short = 'm', long = "model")]
    model: Option<std::path::PathBuf>,
    /// Prompt text.
    #[arg(short = 'p', long = "prompt", default_value = "ROMEO:")]
    prompt: String,
    /// Tokens to generate.
    #[arg(short = 'n', default_value_t = 200)]
    n: usize,
    /// Temperature (0 = greedy).
    #[arg(long = "temp", default_value_t = 0.8)]
    temp: f32,
    /// Keep the K most likely tokens (0 = all).
    #[arg(long = "top-k", default_value_t = 40)]
    top_k: usize,
    /// Nucleus sampling threshold.
    #[arg(long = "top-p", default_value_t = 0.95)]
    top_p: f32,
    /// Drop tokens below P times the top probability.
    #[arg(long = "min-p", default_value_t = 0.05)]
    min_p: f32,
    /// Repetition penalty over the last 64 tokens (1 = off).
    #[arg(long = "repeat-penalty", default_value_t = 1.0)]
    repeat_penalty: f32,
    /// Random seed (default: from the clock; printed on stderr).
    #[arg(long)]
    seed: Option<u64>,
    /// Threads.
    #[arg(short = 't', long = "threads", default_value_t = 1)]
    threads: usize,
    /// Kernel backend (auto, scalar, ...).
    #[arg(long)]
    backend: Option<String>,
}

pub fn run(a: Args) -> CliResult<()> {
    if a.threads == 0 {
        return Err("-t must be at least 1".into());
    }
    let src = ModelSource::open(a.model.as_deref())?;
    let model = src.load()?;
    let gguf = *model.gguf();
    let mut tok_arena = vec![0u8; Tokenizer::arena_size(&gguf).map_err(err("tokenizer"))?];
    let mut tok = Tokenizer::new(&gguf, &mut tok_arena).map_err(err("tokenizer"))?;
    // BOS first when the vocabulary asks for it (llama/SentencePiece models, as llama.cpp does).
    let bos = tok.bos().filter(|_| tok.add_bos());
    let skip = usize::from(bos.is_some());
    let n_prompt = tok.count(a.prompt.as_bytes(), false);
    let mut prompt = vec![0u32; skip + n_prompt];
    if let (Some(b), Some(first)) = (bos, prompt.first_mut()) {
        *first = b;
    }
    tok.encode(a.prompt.as_bytes(), false, &mut prompt[skip..])
        .map_err(err("tokenize"))?;
    let hp = *model.hparams();
    if prompt.is_empty() {
        // An empty prompt (and no BOS) starts from the end-of-text token, as GPT-2 does.
        prompt.push(
            tok.eos()
                .ok_or("empty prompt and the model has no eos token")?,
        );
    }
    if prompt.len() >= hp.n_ctx {
        return Err(format!(
            "prompt is {} tokens; the context holds {}",
            prompt.len(),
            hp.n_ctx
        ));
    }
    let params = ContextParams {
        n_ctx: 0,
        n_batch: 32.min(hp.n_ctx),
        logits_all: false,
        backend: backend(a.backend.as_deref())?,
        parallel: pool(a.threads),
    };
    let ctx_bytes = Context::arena_size(&model, &params).map_err(err("context"))?;
    let mut arena = vec![0u8; ctx_bytes];
    let mut ctx = Context::new(model, &params, &mut arena).map_err(err("context"))?;
    let seed = seed_or_clock(a.seed);
    let sp = SamplerParams {
        temperature: a.temp,
        top_k: a.top_k,
        top_p: a.top_p,
        min_p: a.min_p,
        repeat_penalty: a.repeat_penalty,
        seed,
        ..SamplerParams::default()
    };
    let s_bytes = Sampler::arena_size(hp.n_vocab, &sp).map_err(err("sampler"))?;
    let mut s_arena = vec![0u8; s_bytes];
    let mut sampler = Sampler::new(hp.n_vocab, &sp, &mut s_arena).map_err(err("sampler"))?;

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = out.write_all(a.prompt.as_bytes());
    let _ = out.flush();
    let t0 = Instant::now();
    ctx.eval(&prompt).map_err(err("prefill"))?;
    let t_prompt = t0.elapsed().as_secs_f64();
    let t1 = Instant::now();
    let gp = GenerateParams {
        max_tokens: Some(a.n),
        ..GenerateParams::default()
    };
    let outcome = generate(&mut ctx, &mut sampler, &tok, &[], &gp, |_, text| {
        out.write_all(text).is_ok() && out.flush().is_ok()
    })
    .map_err(err("generate"))?;
    let _ = writeln!(out);
    let t_gen = t1.elapsed().as_secs_f64();
    eprintln!(
        "[{} prompt tokens at {:.1} tok/s, {} generated at {:.1} tok/s, stop: {:?}, seed {}, backend {}]",
        prompt.len(),
        prompt.len() as f64 / t_prompt,
        outcome.n_sampled,
        outcome.n_sampled as f64 / t_gen,
        outcome.reason,
        seed,
        ctx.backend().name()
    );
    eprintln!(
        "[memory: model {} B (read in place), context arena {} B, tokenizer {} B, sampler {} B]",
        src.len(),
        ctx_bytes,
        tok_arena.len(),
        s_bytes
    );
    Ok(())
}
