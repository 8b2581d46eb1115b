//! `embergpt chat -m MODEL [-p PROMPT] [-n N] [--temp T] [--seed S] [--system TEXT] [-c N_CTX]`
//!
//! A conversation with an instruction model. When the GGUF's `tokenizer.chat_template` is
//! ChatML-style (it contains `<|im_start|>`), every turn is wrapped as
//! `<|im_start|>user\n...<|im_end|>\n<|im_start|>assistant\n` after a first
//! `<|im_start|>system\n...<|im_end|>\n` (the `--system` text, else the default system message the
//! template itself inserts, if any); other models get the user's text as is.
//!
//! The KV cache is kept across turns: each turn evaluates only its new tokens (the last sampled
//! token of the previous answer, which generation leaves unevaluated, the tokens closing that
//! answer, and the new user turn). An answer ends at the model's end-of-text token, at
//! `<|im_end|>` / `<|endoftext|>` in the text, after `-n` tokens, or when the context is full,
//! which ends the chat with a message on stderr (exit status 0).
//!
//! With `-p` it answers once and exits; without, it reads one user message per line of stdin
//! until EOF. Answers stream to stdout (one line each); speeds go to stderr.

use crate::common::{backend, err, pool, seed_or_clock, CliResult, ModelSource};
use embergpt::{
    generate, Context, ContextParams, GenerateParams, Outcome, Sampler, SamplerParams, StopReason,
    Tokenizer,
};
use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

#[derive(clap::Args)]
pub struct Args {
    /// Model file (GGUF).
    #[arg(short = 'm', long = "model")]
    model: std::path::PathBuf,
    /// One user message: answer it and exit (else read messages from stdin, one per line).
    #[arg(short = 'p', long = "prompt")]
    prompt: Option<String>,
    /// Most tokens per answer.
    #[arg(short = 'n', default_value_t = 256)]
    n: usize,
    /// Temperature (0 = greedy).
    #[arg(long = "temp", default_value_t = 0.7)]
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
    /// Random seed (default: from the clock; printed on stderr).
    #[arg(long)]
    seed: Option<u64>,
    /// System message (default: the one the model's chat template inserts, if any).
    #[arg(long)]
    system: Option<String>,
    /// Context length in tokens (at most the model's).
    #[arg(short = 'c', long = "ctx-size", default_value_t = 2048)]
    n_ctx: usize,
    /// Threads.
    #[arg(short = 't', long = "threads", default_value_t = 1)]
    threads: usize,
    /// Kernel backend (auto, scalar, ...).
    #[arg(long)]
    backend: Option<String>,
}

const IM_START: &str = "<|im_start|>";
const IM_END: &str = "<|im_end|>";
/// Texts that end an answer (control tokens decode to their literal text).
const STOPS: &[&[u8]] = &[b"<|im_end|>", b"<|endoftext|>"];

/// The default system message of a ChatML template: the literal text it puts between
/// `<|im_start|>system\n` and `<|im_end|>` (SmolLM2: "You are a helpful AI assistant named
/// SmolLM, trained by Hugging Face").
fn template_system(template: &str) -> Option<String> {
    let key = "<|im_start|>system\n";
    let start = template.find(key)? + key.len();
    let len = template.get(start..)?.find(IM_END)?;
    let s = template.get(start..start + len)?;
    // A Jinja expression (e.g. `' + message['content'] + '`) is not a literal default.
    (!s.contains('\'') && !s.contains('{')).then(|| s.to_string())
}

/// Tokens of a turn: `markup` pieces may contain special tokens, `text` pieces never do.
enum Piece<'s> {
    Markup(&'s str),
    Text(&'s str),
}

fn encode(tok: &mut Tokenizer<'_, '_>, pieces: &[Piece<'_>]) -> CliResult<Vec<u32>> {
    let mut ids = Vec::new();
    for p in pieces {
        let (s, special) = match p {
            Piece::Markup(s) => (s, true),
            Piece::Text(s) => (s, false),
        };
        let n = tok.count(s.as_bytes(), special);
        let start = ids.len();
        ids.resize(start + n, 0);
        tok.encode(s.as_bytes(), special, &mut ids[start..])
            .map_err(err("tokenize"))?;
    }
    Ok(ids)
}

pub fn run(a: Args) -> CliResult<()> {
    if a.threads == 0 {
        return Err("-t must be at least 1".into());
    }
    let src = ModelSource::open(Some(&a.model))?;
    let model = src.load()?;
    let gguf = *model.gguf();
    let hp = *model.hparams();
    if a.n_ctx == 0 || a.n_ctx > hp.n_ctx {
        return Err(format!(
            "-c must be between 1 and {} (the model's)",
            hp.n_ctx
        ));
    }
    let template = gguf
        .get_str("tokenizer.chat_template")
        .ok()
        .and_then(|s| std::str::from_utf8(s).ok());
    let chatml = template.is_some_and(|t| t.contains(IM_START));
    let system = a
        .system
        .clone()
        .or_else(|| template.and_then(template_system));

    let mut tok_arena = vec![0u8; Tokenizer::arena_size(&gguf).map_err(err("tokenizer"))?];
    let mut tok = Tokenizer::new(&gguf, &mut tok_arena).map_err(err("tokenizer"))?;
    let im_end = (0..tok.n_vocab() as u32)
        .find(|&id| tok.is_special(id) && tok.token_text(id) == Some(IM_END.as_bytes()));
    if chatml && im_end.is_none() {
        // Without the control token the markup would be encoded as plain text.
        return Err("the chat template uses <|im_end|> but it is not a control token".into());
    }
    let params = ContextParams {
        n_ctx: a.n_ctx,
        n_batch: 64.min(a.n_ctx),
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
        seed,
        ..SamplerParams::default()
    };
    let s_bytes = Sampler::arena_size(hp.n_vocab, &sp).map_err(err("sampler"))?;
    let mut s_arena = vec![0u8; s_bytes];
    let mut sampler = Sampler::new(hp.n_vocab, &sp, &mut s_arena).map_err(err("sampler"))?;
    eprintln!(
        "[chat: {} template, n_ctx {}, seed {}, backend {}]",
        if chatml { "ChatML" } else { "no chat" },
        a.n_ctx,
        seed,
        ctx.backend().name()
    );

    // Tokens owed to the context before the next turn: the end of the previous answer.
    let mut pending: Vec<u32> = Vec::new();
    let mut first = true;
    let stdin = std::io::stdin();
    let interactive = a.prompt.is_none() && stdin.is_terminal();
    let mut lines = stdin.lock().lines();
    loop {
        let user = match &a.prompt {
            Some(p) if first => p.clone(),
            Some(_) => break,
            None => {
                if interactive {
                    eprint!("> ");
                }
                match lines.next() {
                    None => break,
                    Some(l) => l.map_err(|e| format!("stdin: {e}"))?,
                }
            }
        };
        if a.prompt.is_none() && user.trim().is_empty() {
            continue;
        }
        let mut turn = std::mem::take(&mut pending);
        if chatml {
            let mut pieces = Vec::new();
            if first {
                if let Some(s) = &system {
                    pieces.extend([
                        Piece::Markup("<|im_start|>system\n"),
                        Piece::Text(s),
                        Piece::Markup("<|im_end|>\n"),
                    ]);
                }
            }
            pieces.extend([
                Piece::Markup("<|im_start|>user\n"),
                Piece::Text(&user),
                Piece::Markup("<|im_end|>\n<|im_start|>assistant\n"),
            ]);
            turn.extend(encode(&mut tok, &pieces)?);
        } else {
            let text = if first {
                user.clone()
            } else {
                format!("\n{user}")
            };
            turn.extend(encode(&mut tok, &[Piece::Text(&text)])?);
        }
        if first {
            // BOS first when the vocabulary asks for it (llama/SentencePiece models).
            if let Some(b) = tok.bos().filter(|_| tok.add_bos()) {
                turn.insert(0, b);
            }
        }
        first = false;
        if turn.is_empty() {
            continue;
        }
        if ctx.n_past() + turn.len() >= a.n_ctx {
            let msg = format!(
                "context full: {} tokens used, this turn needs {} more of {}",
                ctx.n_past(),
                turn.len(),
                a.n_ctx
            );
            if a.prompt.is_some() {
                return Err(format!("{msg} (raise -c)"));
            }
            eprintln!("[{msg}; ending the chat]");
            break;
        }
        let gp = GenerateParams {
            max_tokens: Some(a.n),
            stop: STOPS,
            stop_at_eos: true,
        };
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let t0 = Instant::now();
        let mut t_first: Option<Instant> = None;
        let outcome: Outcome = generate(&mut ctx, &mut sampler, &tok, &turn, &gp, |_, text| {
            t_first.get_or_insert_with(Instant::now);
            out.write_all(text).is_ok() && out.flush().is_ok()
        })
        .map_err(err("generate"))?;
        let _ = writeln!(out);
        let _ = out.flush();
        let t_end = Instant::now();
        let t_gen = t_first.map_or(0.0, |t| (t_end - t).as_secs_f64());
        eprintln!(
            "[{} new prompt tokens, {} generated, {:.1} tok/s after the first, {:.2} s in all, stop: {:?}, context {}/{}]",
            turn.len(),
            outcome.n_sampled,
            outcome.n_sampled.saturating_sub(1) as f64 / t_gen.max(1e-9),
            (t_end - t0).as_secs_f64(),
            outcome.reason,
            ctx.n_past(),
            a.n_ctx
        );
        if outcome.reason == StopReason::ContextFull {
            eprintln!("[context full ({} tokens); ending the chat]", a.n_ctx);
            break;
        }
        // Close the answer in the cache: the unevaluated last token, then whatever the
        // template puts after an answer (`<|im_end|>` unless the model just produced it).
        pending.extend(outcome.unevaluated);
        if chatml {
            let closed = outcome.unevaluated.is_some() && outcome.unevaluated == im_end;
            let close = if closed { "\n" } else { "<|im_end|>\n" };
            pending.extend(encode(&mut tok, &[Piece::Markup(close)])?);
        }
    }
    Ok(())
}
