//! `embergpt inspect -m MODEL.gguf`

use crate::common::{err, load, read_model, CliResult};
use embergpt::gguf::Value;
use embergpt::{Context, ContextParams};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Model file (GGUF).
    #[arg(short = 'm', long = "model")]
    model: PathBuf,
}

fn show(v: &Value<'_>) -> String {
    match v {
        Value::Str(s) => format!("{:?}", String::from_utf8_lossy(s)),
        Value::Array(a) => {
            let first: Vec<String> = a.iter().take(4).map(|e| show(&e)).collect();
            let more = if a.len() > 4 { ", ..." } else { "" };
            format!(
                "[{}{}] ({} x {:?})",
                first.join(", "),
                more,
                a.len(),
                a.elem_type()
            )
        }
        Value::F32(x) => format!("{x}"),
        Value::F64(x) => format!("{x}"),
        other => other
            .as_u64()
            .map_or_else(|| format!("{other:?}"), |u| u.to_string())
            .to_string(),
    }
}

pub fn run(a: Args) -> CliResult<()> {
    let bytes = read_model(&a.model)?;
    let model = load(&bytes, &a.model)?;
    let g = model.gguf();
    let hp = model.hparams();
    println!(
        "file: {} ({} bytes, GGUF v{})",
        a.model.display(),
        bytes.len(),
        g.version()
    );
    println!("architecture: {}", hp.arch.name());
    println!(
        "hyperparameters: n_vocab={} n_ctx={} n_embd={} n_ff={} n_layer={} n_head={} n_head_kv={} eps={:e} output={}",
        hp.n_vocab,
        hp.n_ctx,
        hp.n_embd,
        hp.n_ff,
        hp.n_layer,
        hp.n_head,
        hp.n_head_kv,
        hp.eps,
        if model.is_tied() { "tied to token_embd" } else { "output.weight" }
    );
    println!("metadata ({} entries):", g.n_metadata());
    for (k, v) in g.metadata() {
        println!("  {} = {}", String::from_utf8_lossy(k), show(&v));
    }
    println!("tensors ({}):", g.n_tensors());
    println!(
        "  {:<32} {:<6} {:<20} {:>12}",
        "name", "type", "shape", "bytes"
    );
    let mut total = 0usize;
    for t in g.tensors() {
        let shape: Vec<String> = t.ne[..t.n_dims].iter().map(|d| d.to_string()).collect();
        println!(
            "  {:<32} {:<6} {:<20} {:>12}",
            t.name_str(),
            t.ty.name(),
            format!("[{}]", shape.join(", ")),
            t.data.len()
        );
        total += t.data.len();
    }
    println!("  total tensor bytes: {total}");
    let p = ContextParams::default();
    let need = Context::arena_size(&model, &p).map_err(err("arena size"))?;
    println!(
        "arena for the full context (n_ctx={}, n_batch={}): {} bytes ({:.2} MiB)",
        hp.n_ctx,
        p.n_batch,
        need,
        need as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}
