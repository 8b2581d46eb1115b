//! `embergpt`: the command-line tool (std). Command forms are a contract; see README.md.

mod bench;
mod common;
mod inspect;
mod logits;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Inspect(a) => inspect::run(a),
        Cmd::Logits(a) => logits::run(a),
        Cmd::Bench(a) => bench::run(a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("embergpt: error: {e}");
            ExitCode::FAILURE
        }
    }
}
