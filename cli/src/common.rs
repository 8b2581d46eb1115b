//! Shared helpers: model loading, backend parsing, errors as strings.

use embergpt::{Backend, Gguf, Model, ParallelFor};
use std::path::Path;

/// The bundled default model: a ~1M-parameter GPT-2 trained on Tiny Shakespeare
/// (see tests/scripts/train_default_model.py), Q8_0, read in place.
pub static DEFAULT_MODEL: &[u8] = include_bytes!("../assets/shakespeare-q8_0.gguf");

/// Model bytes: a file read into memory, or the bundled model.
pub enum ModelSource {
    File(std::path::PathBuf, memmap2::Mmap),
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

/// Read a model file into memory: anonymous memory advised as transparent huge
/// pages (Linux), then made read-only. A decode step streams every weight once;
/// with 4 KiB pages that is ~33,000 TLB misses per token for a 130 MB model, and
/// 2 MiB pages took GPT-2 124M Q8_0 decode from ~124 to ~140 tok/s on one thread.
/// Where the advice is refused the bytes are the same, only slower to reach.
pub fn read_model(path: &Path) -> CliResult<memmap2::Mmap> {
    use std::io::Read;
    let e = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
    let mut f = std::fs::File::open(path).map_err(e)?;
    let meta = f.metadata().map_err(e)?;
    // A pipe or device has no length up front: read it whole first.
    let piped = if meta.is_file() {
        None
    } else {
        let mut v = Vec::new();
        f.read_to_end(&mut v).map_err(e)?;
        Some(v)
    };
    let len = match &piped {
        Some(v) => v.len(),
        None => {
            usize::try_from(meta.len()).map_err(|_| format!("{}: too large", path.display()))?
        }
    };
    let mut m = memmap2::MmapMut::map_anon(len).map_err(e)?;
    #[cfg(target_os = "linux")]
    let _ = m.advise(memmap2::Advice::HugePage); // a hint: refusal changes only speed
    match piped {
        Some(v) => m.copy_from_slice(&v),
        None => f.read_exact(&mut m).map_err(e)?,
    }
    m.make_read_only().map_err(e)
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
