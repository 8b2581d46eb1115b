//! `embergpt tokenize -m MODEL [TEXT | -]` and `embergpt detokenize -m MODEL --tokens 1,2,3`

use crate::common::{err, CliResult, ModelSource};
use embergpt::Tokenizer;
use std::io::{Read, Write};

#[derive(clap::Args)]
pub struct TokenizeArgs {
    /// Model or vocabulary-only file (GGUF); the bundled model when absent.
    #[arg(short = 'm', long = "model")]
    model: Option<std::path::PathBuf>,
    /// Map the literal text of control tokens (e.g. `<|endoftext|>`) to their ids.
    #[arg(long)]
    special: bool,
    /// The text, or `-` to read UTF-8 text from stdin.
    text: String,
}

#[derive(clap::Args)]
pub struct DetokenizeArgs {
    /// Model or vocabulary-only file (GGUF); the bundled model when absent.
    #[arg(short = 'm', long = "model")]
    model: Option<std::path::PathBuf>,
    /// Comma-separated token ids.
    #[arg(long)]
    tokens: String,
}

fn with_tokenizer<T>(
    model: Option<&std::path::Path>,
    f: impl FnOnce(&mut Tokenizer<'_, '_>) -> CliResult<T>,
) -> CliResult<T> {
    let src = ModelSource::open(model)?;
    let g = src.gguf()?;
    let mut arena = vec![0u8; Tokenizer::arena_size(&g).map_err(err("tokenizer"))?];
    let mut tok = Tokenizer::new(&g, &mut arena).map_err(err("tokenizer"))?;
    f(&mut tok)
}

pub fn tokenize(a: TokenizeArgs) -> CliResult<()> {
    let text = if a.text == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read stdin as UTF-8: {e}"))?;
        s
    } else {
        a.text
    };
    with_tokenizer(a.model.as_deref(), |tok| {
        let n = tok.count(text.as_bytes(), a.special);
        let mut ids = vec![0u32; n];
        tok.encode(text.as_bytes(), a.special, &mut ids)
            .map_err(err("tokenize"))?;
        let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        println!("[{}]", list.join(", "));
        Ok(())
    })
}

pub fn detokenize(a: DetokenizeArgs) -> CliResult<()> {
    let ids = crate::logits::parse_tokens(&a.tokens)?;
    with_tokenizer(a.model.as_deref(), |tok| {
        let n = tok.decode_len(&ids, false).map_err(err("detokenize"))?;
        let mut buf = vec![0u8; n];
        let n = tok
            .decode(&ids, false, &mut buf)
            .map_err(err("detokenize"))?;
        let mut out = std::io::stdout().lock();
        out.write_all(&buf[..n])
            .and_then(|_| out.write_all(b"\n"))
            .map_err(|e| e.to_string())
    })
}
