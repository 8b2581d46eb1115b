//! Shared helpers: model loading, backend parsing, errors as strings.

use embergpt::{Backend, Model};
use std::path::Path;

/// A CLI error: one line for stderr.
pub type CliResult<T> = Result<T, String>;

/// Read a model file into memory.
pub fn read_model(path: &Path) -> CliResult<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Validate and load a model from bytes.
pub fn load<'a>(bytes: &'a [u8], path: &Path) -> CliResult<Model<'a>> {
    Model::load(bytes).map_err(|e| format!("{}: {} (error {})", path.display(), e, e.code()))
}

/// Parse `--backend NAME` (`auto` or absent = detect).
pub fn backend(name: Option<&str>) -> CliResult<Option<Backend>> {
    match name {
        None | Some("auto") => Ok(None),
        Some(n) => {
            let b = Backend::from_name(n).ok_or_else(|| {
                let names: Vec<&str> = Backend::ALL.iter().map(|b| b.name()).collect();
                format!("unknown backend '{n}' (known: auto, {})", names.join(", "))
            })?;
            if !b.is_available() {
                return Err(format!("backend '{n}' is not available on this CPU"));
            }
            Ok(Some(b))
        }
    }
}

/// Map a core error to a CLI message.
pub fn err(ctx: &str) -> impl Fn(embergpt::Error) -> String + '_ {
    move |e| format!("{ctx}: {e} (error {})", e.code())
}
