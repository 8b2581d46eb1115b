//! Library side of the embergpt CLI: the parts tests (and other tools) reuse.
//!
//! - [`convert`]: Hugging Face / llama2.c checkpoints to GGUF
//! - [`quantize`]: requantize a GGUF file
//! - [`gguf_write`]: the small GGUF v3 writer both use

pub mod convert;
pub mod gguf_write;
pub mod quantize;
