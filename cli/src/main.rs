//! `embergpt`: the command-line tool (std). Command forms are a contract; see README.md.

mod bench;
mod chat;
mod common;
mod generate;
mod inspect;
mod logits;
mod perplexity;
mod tokenize;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "embergpt",
    version,
    about = "Run small GPT models from GGUF files"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Print architecture, hyperparameters, tensors and the arena size.
    Inspect(inspect::Args),
    /// Write little-endian f32 logits of every position to a file.
    Logits(logits::Args),
    /// Measure prompt processing and generation speed.
    Bench(bench::Args),
    /// Generate text from a prompt (the bundled model when -m is absent).
    Generate(generate::Args),
    /// Chat with an instruction model (ChatML template; KV cache kept across turns).
    Chat(chat::Args),
    /// Perplexity of a text file (llama.cpp's chunked method).
    Perplexity(perplexity::Args),
    /// Print the token ids of a text as one JSON array.
    Tokenize(tokenize::TokenizeArgs),
    /// Print the text of comma-separated token ids.
    Detokenize(tokenize::DetokenizeArgs),
    /// Convert a Hugging Face (GPT-2, Llama) or llama2.c checkpoint to GGUF.
    Convert(embergpt_cli::convert::Args),
    /// Requantize a GGUF file's weight matrices.
    Quantize(embergpt_cli::quantize::Args),
}

/// `embergpt inspect ... | head` closes the pipe early; `println!` then panics
/// ("failed printing to stdout: Broken pipe"). End quietly instead, with the
/// status a shell reports for a command ended by SIGPIPE (128 + 13).
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Inspect(a) => inspect::run(a),
        Cmd::Logits(a) => logits::run(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Generate(a) => generate::run(a),
        Cmd::Chat(a) => chat::run(a),
        Cmd::Perplexity(a) => perplexity::run(a),
        Cmd::Tokenize(a) => tokenize::tokenize(a),
        Cmd::Detokenize(a) => tokenize::detokenize(a),
        Cmd::Convert(a) => embergpt_cli::convert::run(&a).map_err(|e| e.to_string()),
        Cmd::Quantize(a) => embergpt_cli::quantize::run(&a).map_err(|e| e.to_string()),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embergpt: error: {e}");
            ExitCode::FAILURE
        }
    }
}
