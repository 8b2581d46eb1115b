use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// embergpt: run and prepare small GPT models.
#[derive(Parser)]
#[command(name = "embergpt", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a Hugging Face (GPT-2, Llama) or llama2.c checkpoint to GGUF.
    Convert(embergpt_cli::convert::Args),
    /// Requantize a GGUF file's weight matrices.
    Quantize(embergpt_cli::quantize::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Convert(a) => embergpt_cli::convert::run(a),
        Command::Quantize(a) => embergpt_cli::quantize::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
