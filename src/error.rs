//! The one error type of embergpt, shared by the Rust and C surfaces.
//!
//! Every variant has a stable numeric code (never reused, never renumbered) and a
//! static message. Codes are grouped: 1-29 file format, 30-49 model, 50-69 memory
//! and parameters, 70-89 evaluation, 90-109 text and sampling, 110+ C API.

use core::fmt;

/// Everything that can go wrong, as a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    // --- GGUF file format -------------------------------------------------
    /// The file ends before a field that the header or a length promised.
    Truncated,
    /// The first four bytes are not `GGUF`.
    BadMagic,
    /// The GGUF version is not 2 or 3.
    UnsupportedVersion,
    /// A count (tensors, metadata entries, array elements) exceeds what the remaining bytes can hold.
    CountTooLarge,
    /// A string is longer than the remaining bytes or than the enforced limit.
    StringTooLong,
    /// A metadata value type is not one GGUF defines.
    BadValueType,
    /// Arrays are nested deeper than the enforced limit.
    NestingTooDeep,
    /// `general.alignment` is zero, not a power of two, too large, or not a u32.
    BadAlignment,
    /// A tensor has zero or more than four dimensions.
    BadDimensionCount,
    /// A tensor dimension is zero, or the element count overflows.
    BadDimension,
    /// A tensor type id is not a known ggml type.
    UnknownTensorType,
    /// A tensor's row length is not a multiple of its type's block size.
    BadBlockShape,
    /// A tensor's bytes do not lie inside the data section.
    TensorOutOfBounds,
    /// A tensor's offset is not a multiple of the file's alignment.
    TensorMisaligned,
    /// Two tensors share bytes.
    TensorOverlap,
    /// Two tensors (or two metadata keys) have the same name.
    DuplicateName,

    // --- model ------------------------------------------------------------
    /// A metadata key the architecture needs is absent.
    MissingMetadata,
    /// A metadata key has the wrong value type.
    BadMetadataType,
    /// `general.architecture` names an architecture embergpt does not run.
    UnsupportedArchitecture,
    /// A tensor the architecture needs is absent.
    MissingTensor,
    /// A tensor's shape is not the one the hyperparameters imply.
    ShapeMismatch,
    /// A tensor's type is valid GGUF but not one this tensor can use here.
    UnsupportedTensorType,
    /// Hyperparameters are zero, inconsistent (embedding not divisible by heads) or beyond limits.
    BadHyperparameters,
    /// The file has a tensor name the architecture does not know.
    UnexpectedTensor,

    // --- memory and parameters ------------------------------------------
    /// The arena is smaller than [`crate::Context::arena_size`] says it must be.
    ArenaTooSmall {
        /// Bytes the context needs.
        needed: usize,
        /// Bytes the caller gave.
        available: usize,
    },
    /// The requested context length is zero or larger than the model's.
    BadContextLength,
    /// The requested batch size is zero or larger than the context length.
    BadBatchSize,
    /// A parameter is out of its documented range.
    BadParameter,
    /// The forced backend cannot run on this CPU.
    BackendUnavailable,

    // --- evaluation -------------------------------------------------------
    /// A token id is not below the vocabulary size.
    TokenOutOfRange,
    /// The tokens do not fit in what remains of the context.
    ContextFull,
    /// A position lies past the tokens evaluated so far.
    BadPosition,
    /// An empty token list was given where at least one token is needed.
    EmptyInput,
    /// More tokens than the context's batch size where all logits were asked for.
    BatchTooLarge,
    /// Logits were read before any token was evaluated (or after a rewind removed them).
    NoLogits,

    // --- text and sampling -----------------------------------------------
    /// A caller buffer is too small for the result.
    BufferTooSmall,
    /// The model file has no (or an unsupported) tokenizer.
    NoTokenizer,
    /// The tokenizer metadata is inconsistent.
    BadTokenizer,
    /// The logits hold no finite value to sample from.
    NoCandidates,

    // --- C API ------------------------------------------------------------
    /// A required pointer was NULL.
    NullPointer,
    /// A parameter struct's size field does not match a known version.
    BadStructSize,
    /// A call was made on an object in the wrong state.
    BadState,
}

/// Shorthand used across the crate.
pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// The stable numeric code (also the C `egpt_status` value).
    pub const fn code(self) -> u32 {
        match self {
            Error::Truncated => 1,
            Error::BadMagic => 2,
            Error::UnsupportedVersion => 3,
            Error::CountTooLarge => 4,
            Error::StringTooLong => 5,
            Error::BadValueType => 6,
            Error::NestingTooDeep => 7,
            Error::BadAlignment => 8,
            Error::BadDimensionCount => 9,
            Error::BadDimension => 10,
            Error::UnknownTensorType => 11,
            Error::BadBlockShape => 12,
            Error::TensorOutOfBounds => 13,
            Error::TensorMisaligned => 14,
            Error::TensorOverlap => 15,
            Error::DuplicateName => 16,
            Error::MissingMetadata => 30,
            Error::BadMetadataType => 31,
            Error::UnsupportedArchitecture => 32,
            Error::MissingTensor => 33,
            Error::ShapeMismatch => 34,
            Error::UnsupportedTensorType => 35,
            Error::BadHyperparameters => 36,
            Error::UnexpectedTensor => 37,
            Error::ArenaTooSmall { .. } => 50,
            Error::BadContextLength => 51,
            Error::BadBatchSize => 52,
            Error::BadParameter => 53,
            Error::BackendUnavailable => 54,
            Error::TokenOutOfRange => 70,
            Error::ContextFull => 71,
            Error::BadPosition => 72,
            Error::EmptyInput => 73,
            Error::BatchTooLarge => 74,
            Error::NoLogits => 75,
            Error::BufferTooSmall => 90,
            Error::NoTokenizer => 91,
            Error::BadTokenizer => 92,
            Error::NoCandidates => 93,
            Error::NullPointer => 110,
            Error::BadStructSize => 111,
            Error::BadState => 112,
        }
    }

    /// A static, one-line description.
    pub const fn message(self) -> &'static str {
        match self {
            Error::Truncated => "file truncated: a field extends past the end of the bytes",
            Error::BadMagic => "not a GGUF file (bad magic)",
            Error::UnsupportedVersion => "unsupported GGUF version (need 2 or 3)",
            Error::CountTooLarge => "a count exceeds what the remaining bytes can hold",
            Error::StringTooLong => "a string length exceeds the remaining bytes or the limit",
            Error::BadValueType => "unknown metadata value type",
            Error::NestingTooDeep => "metadata arrays nested too deeply",
            Error::BadAlignment => "general.alignment is not a power of two u32 <= 65536",
            Error::BadDimensionCount => "tensor has zero or more than 4 dimensions",
            Error::BadDimension => "tensor dimension is zero or the element count overflows",
            Error::UnknownTensorType => "unknown tensor type id",
            Error::BadBlockShape => "tensor row length is not a multiple of its block size",
            Error::TensorOutOfBounds => "tensor data lies outside the data section",
            Error::TensorMisaligned => "tensor offset is not aligned to general.alignment",
            Error::TensorOverlap => "two tensors share bytes",
            Error::DuplicateName => "duplicate tensor name or metadata key",
            Error::MissingMetadata => "required metadata key is missing",
            Error::BadMetadataType => "metadata key has the wrong value type",
            Error::UnsupportedArchitecture => "unsupported model architecture",
            Error::MissingTensor => "required tensor is missing",
            Error::ShapeMismatch => "tensor shape does not match the hyperparameters",
            Error::UnsupportedTensorType => "tensor type not supported for this tensor",
            Error::BadHyperparameters => "hyperparameters are zero, inconsistent or beyond limits",
            Error::UnexpectedTensor => "tensor name not part of the architecture",
            Error::ArenaTooSmall { .. } => "arena too small for the requested context",
            Error::BadContextLength => "context length is zero or larger than the model's",
            Error::BadBatchSize => "batch size is zero or larger than the context length",
            Error::BadParameter => "parameter out of range",
            Error::BackendUnavailable => "the requested backend cannot run on this CPU",
            Error::TokenOutOfRange => "token id out of the vocabulary range",
            Error::ContextFull => "tokens do not fit in the remaining context",
            Error::BadPosition => "position past the evaluated tokens",
            Error::EmptyInput => "empty token list",
            Error::BatchTooLarge => "more tokens than the batch size for all-position logits",
            Error::NoLogits => "no logits: nothing has been evaluated",
            Error::BufferTooSmall => "output buffer too small",
            Error::NoTokenizer => "model has no supported tokenizer",
            Error::BadTokenizer => "tokenizer metadata is inconsistent",
            Error::NoCandidates => "no finite logit to sample from",
            Error::NullPointer => "NULL pointer argument",
            Error::BadStructSize => "parameter struct size is not a known version",
            Error::BadState => "call made in the wrong state",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ArenaTooSmall { needed, available } => write!(
                f,
                "arena too small: requested {needed} bytes, available {available}"
            ),
            _ => f.write_str(self.message()),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {}
