//! The GGUF writer lives in the core's `std` feature (`embergpt::gguf_write`), shared
//! with benches and tests; re-exported here for the converter.

pub use embergpt::gguf_write::*;
