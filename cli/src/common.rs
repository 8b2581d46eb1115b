//! Shared helpers: model loading, backend parsing, errors as strings.

use embergpt::{Backend, Gguf, Model, ParallelFor};
use std::path::Path;

/// The bundled default model: a ~1M-parameter GPT-2 trained on Tiny Shakespeare
/// (see tests/scripts/train_default_model.py), Q8_0, read in place.
pub static DEFAULT_MODEL: &[u8] = include_bytes!("../assets/shakespeare-q8_0.gguf");

/// Model bytes: a file read into memory, or the bundled model.
pub enum ModelSource {
    File(std::path::PathBuf, Vec<u8>),
    Bundled,
}

impl ModelSource {
    /// Read `path`, or use the bundled model when `None`.
    pub fn open(path: Option<&Path>) -> CliResult<Self> {
        Ok(match path {
            Some(p) => ModelSource::File(p.to_path_buf(), read_model(p)?),
            None => ModelSource::Bundled,
        })
    }
    fn bytes(&self) -> &[u8] {
        match self {
            ModelSource::File(_, b) => b,
            ModelSource::Bundled => DEFAULT_MODEL,
        }
    }
    fn name(&self) -> String {
        match self {
            ModelSource::File(p, _) => p.display().to_string(),
            ModelSource::Bundled => "<bundled shakespeare-q8_0>".into(),
        }
    }
    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.bytes().len()
    }
    /// Parse the GGUF (enough for a tokenizer).
    pub fn gguf(&self) -> CliResult<Gguf<'_>> {
        Gguf::parse(self.bytes()).map_err(|e| format!("{}: {e} (error {})", self.name(), e.code()))
    }
    /// Load the model.
    pub fn load(&self) -> CliResult<Model<'_>> {
        Model::load(self.bytes()).map_err(|e| format!("{}: {e} (error {})", self.name(), e.code()))
    }
}

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

/// The parallel-for hook for `-t THREADS`: a process-lifetime pool, or none for one thread.
pub fn pool(threads: usize) -> Option<ParallelFor> {
    (threads > 1).then(|| embergpt::kernels::parallel::ThreadPool::leak(threads).hook())
}

/// `--seed S`, or the clock's nanoseconds when absent.
pub fn seed_or_clock(seed: Option<u64>) -> u64 {
    seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    })
}
