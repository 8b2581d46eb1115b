//! `embergpt quantize IN OUT --type T`: requantize a GGUF file.
//!
//! Every 2-D weight is dequantized to f32 and quantized to `T` (rows that are
//! not whole blocks of `T` fall back to F16, as in `convert`); 1-D tensors and
//! GPT-2's `position_embd` are copied byte for byte. Metadata is copied
//! verbatim, except `general.file_type` (and `general.quantization_version`),
//! which describe the new weights.

use crate::convert::{encode, file_type, parse_type, Result};
use crate::gguf_write::GgufWriter;
use embergpt::gguf::Gguf;
use embergpt::quant::dequantize_row;
use embergpt::GgmlType;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

/// Command-line arguments of `embergpt quantize`.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Input GGUF file.
    pub input: PathBuf,
    /// Output GGUF file.
    pub output: PathBuf,
    /// Type of the weight matrices: f32, f16, q8_0, q4_0 or q4_1.
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    pub ty: GgmlType,
}

/// Run the subcommand.
pub fn run(args: &Args) -> Result<()> {
    let file =
        std::fs::File::open(&args.input).map_err(|e| format!("{}: {e}", args.input.display()))?;
    // SAFETY: read-only mapping of a file we do not modify while it is mapped.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    let w = quantize(&map, args.ty, true)?;
    w.write(&args.output)
        .map_err(|e| format!("writing {}: {e}", args.output.display()))?;
    eprintln!("wrote {} ({})", args.output.display(), args.ty.name());
    Ok(())
}

/// Requantize the GGUF `bytes` into an in-memory file.
pub fn quantize(bytes: &[u8], ty: GgmlType, progress: bool) -> Result<GgufWriter> {
    let g = Gguf::parse(bytes).map_err(|e| format!("input GGUF: {e}"))?;
    let mut w = GgufWriter::new();
    for (key, value) in g.metadata() {
        let key = std::str::from_utf8(key).map_err(|_| "non-UTF-8 metadata key")?;
        match key {
            "general.file_type" => w.add_u32(key, file_type(ty)),
            "general.quantization_version" => {}
            _ => w.add_value(key, &value),
        }
    }
    if !w.keys().iter().any(|k| k == "general.file_type") {
        w.add_u32("general.file_type", file_type(ty));
    }
    let quantized = matches!(ty, GgmlType::Q8_0 | GgmlType::Q4_0 | GgmlType::Q4_1);
    let had_version = g.get("general.quantization_version");
    match had_version {
        Some(v) if quantized => w.add_value("general.quantization_version", &v),
        None if quantized => w.add_u32("general.quantization_version", 2),
        _ => {}
    }
    let total: u64 = g.tensors().map(|t| t.data.len() as u64).sum();
    let bar = if progress {
        let b = ProgressBar::new(total);
        b.set_style(
            ProgressStyle::with_template("{msg:>24} [{bar:40}] {percent:>3}% {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        b
    } else {
        ProgressBar::hidden()
    };
    for t in g.tensors() {
        let name = t.name_str();
        bar.set_message(name.to_string());
        let dims: Vec<usize> = t.ne[..t.n_dims].to_vec();
        let keep = t.n_dims < 2 || name == "position_embd.weight";
        if keep {
            w.add_tensor(name, &dims, t.ty, t.data.to_vec());
        } else {
            let cols = t.ne[0];
            let mut f = vec![0.0f32; t.n_elements()];
            let rb = t.row_bytes();
            for (src, dst) in t.data.chunks_exact(rb).zip(f.chunks_exact_mut(cols)) {
                dequantize_row(t.ty, src, dst)
                    .map_err(|e| format!("{name}: cannot dequantize {}: {e}", t.ty.name()))?;
            }
            let out_ty = if ty.row_bytes(cols).is_some() {
                ty
            } else {
                eprintln!("warning: {name}: rows of {cols} stored as f16");
                GgmlType::F16
            };
            w.add_tensor(name, &dims, out_ty, encode(out_ty, &f, cols));
        }
        bar.inc(t.data.len() as u64);
    }
    bar.finish_and_clear();
    Ok(w)
}

/// Quantize the file at `input` into `output` (a convenience for tests and scripts).
pub fn quantize_file(input: &Path, output: &Path, ty: GgmlType) -> Result<()> {
    run(&Args {
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        ty,
    })
}
