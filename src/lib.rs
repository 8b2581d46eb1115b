//! embergpt: a `no_std`, allocation-free, quantized GPT inference core.
//!
//! Weights are read in place from a borrowed GGUF byte slice; every other byte
//! lives in one caller-owned arena whose size [`Context::arena_size`] computes up
//! front. Every failure is an [`Error`] value; nothing panics on bad input.
//!
//! Module map:
//! - [`error`]: the error enum (stable codes, static messages)
//! - [`gguf`]: zero-copy GGUF reader and validator (and, with `std`, `gguf_write`)
//! - [`quant`]: tensor types and block formats (F32, F16, Q8_0, Q4_0, Q4_1)
//! - [`kernels`]: scalar reference kernels, dispatch, matmul
//! - [`arena`]: the caller's bytes carved into aligned typed slices
//! - [`model`]: hyperparameters, weight views, forward passes per architecture
//! - [`ops`]: norms, activations, softmax
//! - [`context`]: KV cache and evaluation
//! - [`tokenizer`]: byte-level BPE (GPT-2), pre-tokenizers, streaming decoder
//! - [`sampler`]: logits to tokens (penalties, top-k/p, min-p, temperature, PCG32)
//! - [`mod@generate`]: the generation loop (stop strings, EOS, budget, context full)
//! - `capi`: the C ABI (`include/embergpt.h`), feature `capi`
#![no_std]
#![forbid(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
// No panics reachable from the public API (issue 7): no unwrap/expect/panic,
// no unchecked indexing or slicing. Unit tests may panic (that is how they fail).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::todo,
    clippy::unimplemented,
    clippy::indexing_slicing
)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::unreachable,
        clippy::indexing_slicing
    )
)]

#[cfg(any(feature = "std", all(feature = "capi", not(target_os = "none"))))]
extern crate std;

pub mod arena;
#[cfg(feature = "capi")]
pub mod capi;
pub mod context;
pub mod error;
pub mod generate;
pub mod gguf;
#[cfg(feature = "std")]
pub mod gguf_write;
pub mod kernels;
pub mod model;
pub mod ops;
pub mod quant;
pub mod sampler;
pub mod tokenizer;

pub use context::{Context, ContextParams};
pub use error::{Error, Result};
pub use generate::{generate, GenState, GenerateParams, Generator, Outcome, StopReason};
pub use gguf::Gguf;
pub use kernels::{Backend, ParallelFor};
pub use model::{Arch, Hparams, Model};
pub use quant::GgmlType;
pub use sampler::{Sampler, SamplerParams};
pub use tokenizer::{Detokenize, StreamDecoder, Tokenizer};
