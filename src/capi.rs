//! The C ABI: `include/embergpt.h` is generated from this file by cbindgen.
//!
//! Conventions (those of rustls-ffi and hyper's `capi`):
//! - every fallible function returns an [`egpt_status`]: 0 ([`EGPT_OK`]) or an
//!   [`Error::code`] value, one `EGPT_ERR_*` constant per [`Error`] variant;
//! - out-parameters come last and are written only on success;
//! - every pointer is checked for NULL before use ([`EGPT_ERR_NULL_POINTER`]);
//! - a buffer pointer is always followed by its length;
//! - parameter and info structs carry their own size first (`struct_size`), checked
//!   ([`EGPT_ERR_BAD_STRUCT_SIZE`]), so that later versions can append fields;
//! - nothing allocates and nothing needs freeing: the model handle lives in caller
//!   memory of [`egpt_model_size`] bytes, the context, tokenizer and sampler
//!   handles at the start of caller arenas of [`egpt_context_arena_size`],
//!   [`egpt_tokenizer_arena_size`] and [`egpt_sampler_arena_size`] bytes;
//! - text functions that fill a caller buffer report the length needed through
//!   `*n_out` when it is short (`BUFFER_TOO_SMALL`, the buffer untouched): the one
//!   deliberate exception to "out-parameters only on success";
//! - no last-error state: the status is the whole story;
//! - nothing panics across the boundary (every function here is written
//!   panic-free; should a bug panic anyway, `extern "C"` turns it into an abort,
//!   never an unwind into C).
//!
//! This module is `core`-only, so the same code links into bare-metal C firmware.
//! Building it as a C library needs a panic implementation: on hosted targets the
//! `capi` feature links `std` for that (and only that); on `target_os = "none"`
//! the `panic-handler` feature provides one that calls C's `abort()`.
//!
//! Handle validity: the handles carry a magic word, so a pointer to memory that
//! does not hold a handle of the right kind (zeroed memory, a model passed as a
//! context) is refused with [`EGPT_ERR_BAD_STATE`] instead of being used. This is
//! a safety net for mistakes, not a guarantee against arbitrary pointers.
#![allow(non_camel_case_types)]

use crate::context::{Context, ContextParams};
use crate::error::Error;
use crate::generate::{GenState, GenerateParams, StopReason};
use crate::gguf::Gguf;
use crate::kernels::Backend;
use crate::model::Model;
use crate::quant::GgmlType;
use crate::sampler::{Sampler, SamplerParams};
use crate::tokenizer::{Detokenize, StreamDecoder, Tokenizer};
use core::ffi::{c_char, c_int, c_void, CStr};
use core::mem::{align_of, offset_of, size_of};
use core::ptr;

// ===========================================================================
// Versions
// ===========================================================================

/// Major version of the crate.
pub const EGPT_VERSION_MAJOR: u32 = 0;
/// Minor version of the crate.
pub const EGPT_VERSION_MINOR: u32 = 1;
/// Patch version of the crate.
pub const EGPT_VERSION_PATCH: u32 = 0;
/// Version of the C ABI (function signatures, struct layouts, constants). Bumped on
/// any incompatible change; compare with [`egpt_abi_version`] at run time.
pub const EGPT_ABI_VERSION: u32 = 1;

/// Decimal string to number, usable in constants (panics at compile time on junk).
// INDEXING: compile-time only (used in const items); an out-of-range index is a build error.
#[allow(clippy::indexing_slicing)]
const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut v = 0u32;
    let mut i = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit());
        v = v * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    v
}

// The literals above are what cbindgen can see; these asserts tie them to
// Cargo.toml, so bumping the version without updating them does not compile.
// (The header's `EGPT_VERSION` string is built from them by the preprocessor.)
const _: () = {
    assert!(EGPT_VERSION_MAJOR == parse_u32(env!("CARGO_PKG_VERSION_MAJOR")));
    assert!(EGPT_VERSION_MINOR == parse_u32(env!("CARGO_PKG_VERSION_MINOR")));
    assert!(EGPT_VERSION_PATCH == parse_u32(env!("CARGO_PKG_VERSION_PATCH")));
};

static VERSION_C: &CStr =
    match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(s) => s,
        Err(_) => panic!("version contains a NUL"),
    };

/// The library's version string (`"MAJOR.MINOR.PATCH"`), static, never NULL.
#[no_mangle]
pub extern "C" fn egpt_version() -> *const c_char {
    VERSION_C.as_ptr()
}

/// The library's [`EGPT_ABI_VERSION`]. A program built against one header and run
/// with another library can compare the two.
#[no_mangle]
pub extern "C" fn egpt_abi_version() -> u32 {
    EGPT_ABI_VERSION
}

// ===========================================================================
// Status codes
// ===========================================================================

/// A status: [`EGPT_OK`] or one of the `EGPT_ERR_*` codes (the values of the Rust
/// `embergpt::Error::code`). Unknown values may appear in later versions; treat
/// any nonzero value as failure and print it with [`egpt_status_str`].
pub type egpt_status = u32;

/// Success.
pub const EGPT_OK: egpt_status = 0;
/// The file ends before a field that the header or a length promised.
pub const EGPT_ERR_TRUNCATED: egpt_status = 1;
/// The first four bytes are not `GGUF`.
pub const EGPT_ERR_BAD_MAGIC: egpt_status = 2;
/// The GGUF version is not 2 or 3.
pub const EGPT_ERR_UNSUPPORTED_VERSION: egpt_status = 3;
/// A count exceeds what the remaining bytes can hold.
pub const EGPT_ERR_COUNT_TOO_LARGE: egpt_status = 4;
/// A string is longer than the remaining bytes or than the enforced limit.
pub const EGPT_ERR_STRING_TOO_LONG: egpt_status = 5;
/// A metadata value type is not one GGUF defines.
pub const EGPT_ERR_BAD_VALUE_TYPE: egpt_status = 6;
/// Arrays are nested deeper than the enforced limit.
pub const EGPT_ERR_NESTING_TOO_DEEP: egpt_status = 7;
/// `general.alignment` is invalid.
pub const EGPT_ERR_BAD_ALIGNMENT: egpt_status = 8;
/// A tensor has zero or more than four dimensions.
pub const EGPT_ERR_BAD_DIMENSION_COUNT: egpt_status = 9;
/// A tensor dimension is zero, or the element count overflows.
pub const EGPT_ERR_BAD_DIMENSION: egpt_status = 10;
/// A tensor type id is not a known ggml type.
pub const EGPT_ERR_UNKNOWN_TENSOR_TYPE: egpt_status = 11;
/// A tensor's row length is not a multiple of its type's block size.
pub const EGPT_ERR_BAD_BLOCK_SHAPE: egpt_status = 12;
/// A tensor's bytes do not lie inside the data section.
pub const EGPT_ERR_TENSOR_OUT_OF_BOUNDS: egpt_status = 13;
/// A tensor's offset is not a multiple of the file's alignment.
pub const EGPT_ERR_TENSOR_MISALIGNED: egpt_status = 14;
/// Two tensors share bytes.
pub const EGPT_ERR_TENSOR_OVERLAP: egpt_status = 15;
/// Two tensors (or two metadata keys) have the same name.
pub const EGPT_ERR_DUPLICATE_NAME: egpt_status = 16;
/// A metadata key the architecture needs is absent.
pub const EGPT_ERR_MISSING_METADATA: egpt_status = 30;
/// A metadata key has the wrong value type.
pub const EGPT_ERR_BAD_METADATA_TYPE: egpt_status = 31;
/// `general.architecture` names an architecture embergpt does not run.
pub const EGPT_ERR_UNSUPPORTED_ARCHITECTURE: egpt_status = 32;
/// A tensor the architecture needs is absent (also: no tensor of that name).
pub const EGPT_ERR_MISSING_TENSOR: egpt_status = 33;
/// A tensor's shape is not the one the hyperparameters imply.
pub const EGPT_ERR_SHAPE_MISMATCH: egpt_status = 34;
/// A tensor's type is valid GGUF but not one this tensor can use here.
pub const EGPT_ERR_UNSUPPORTED_TENSOR_TYPE: egpt_status = 35;
/// Hyperparameters are zero, inconsistent or beyond limits.
pub const EGPT_ERR_BAD_HYPERPARAMETERS: egpt_status = 36;
/// The file has a tensor name the architecture does not know.
pub const EGPT_ERR_UNEXPECTED_TENSOR: egpt_status = 37;
/// The arena is smaller than [`egpt_context_arena_size`] says it must be.
pub const EGPT_ERR_ARENA_TOO_SMALL: egpt_status = 50;
/// The requested context length is larger than the model's.
pub const EGPT_ERR_BAD_CONTEXT_LENGTH: egpt_status = 51;
/// The requested batch size is zero or larger than the context length.
pub const EGPT_ERR_BAD_BATCH_SIZE: egpt_status = 52;
/// A parameter is out of its documented range.
pub const EGPT_ERR_BAD_PARAMETER: egpt_status = 53;
/// The forced backend cannot run on this CPU.
pub const EGPT_ERR_BACKEND_UNAVAILABLE: egpt_status = 54;
/// A token id is not below the vocabulary size.
pub const EGPT_ERR_TOKEN_OUT_OF_RANGE: egpt_status = 70;
/// The tokens do not fit in what remains of the context.
pub const EGPT_ERR_CONTEXT_FULL: egpt_status = 71;
/// A position lies past the tokens evaluated so far.
pub const EGPT_ERR_BAD_POSITION: egpt_status = 72;
/// An empty token list was given where at least one token is needed.
pub const EGPT_ERR_EMPTY_INPUT: egpt_status = 73;
/// More tokens than the context keeps logits for (`eval_all`).
pub const EGPT_ERR_BATCH_TOO_LARGE: egpt_status = 74;
/// Logits were read before any token was evaluated (or after a rewind removed them).
pub const EGPT_ERR_NO_LOGITS: egpt_status = 75;
/// A caller buffer is too small for the result.
pub const EGPT_ERR_BUFFER_TOO_SMALL: egpt_status = 90;
/// The model file has no (or an unsupported) tokenizer.
pub const EGPT_ERR_NO_TOKENIZER: egpt_status = 91;
/// The tokenizer metadata is inconsistent.
pub const EGPT_ERR_BAD_TOKENIZER: egpt_status = 92;
/// The logits hold no finite value to sample from.
pub const EGPT_ERR_NO_CANDIDATES: egpt_status = 93;
/// A required pointer was NULL.
pub const EGPT_ERR_NULL_POINTER: egpt_status = 110;
/// A struct's `struct_size` field does not match a known version.
pub const EGPT_ERR_BAD_STRUCT_SIZE: egpt_status = 111;
/// A call was made on an object in the wrong state (or a pointer that does not
/// hold a handle of the expected kind).
pub const EGPT_ERR_BAD_STATE: egpt_status = 112;

/// The `EGPT_ERR_*` constant of every error. Exhaustive (no wildcard), so a new
/// [`Error`] variant does not compile until it has a C constant here and an
/// entry in [`ERRORS`].
const fn status_of(e: Error) -> egpt_status {
    match e {
        Error::Truncated => EGPT_ERR_TRUNCATED,
        Error::BadMagic => EGPT_ERR_BAD_MAGIC,
        Error::UnsupportedVersion => EGPT_ERR_UNSUPPORTED_VERSION,
        Error::CountTooLarge => EGPT_ERR_COUNT_TOO_LARGE,
        Error::StringTooLong => EGPT_ERR_STRING_TOO_LONG,
        Error::BadValueType => EGPT_ERR_BAD_VALUE_TYPE,
        Error::NestingTooDeep => EGPT_ERR_NESTING_TOO_DEEP,
        Error::BadAlignment => EGPT_ERR_BAD_ALIGNMENT,
        Error::BadDimensionCount => EGPT_ERR_BAD_DIMENSION_COUNT,
        Error::BadDimension => EGPT_ERR_BAD_DIMENSION,
        Error::UnknownTensorType => EGPT_ERR_UNKNOWN_TENSOR_TYPE,
        Error::BadBlockShape => EGPT_ERR_BAD_BLOCK_SHAPE,
        Error::TensorOutOfBounds => EGPT_ERR_TENSOR_OUT_OF_BOUNDS,
        Error::TensorMisaligned => EGPT_ERR_TENSOR_MISALIGNED,
        Error::TensorOverlap => EGPT_ERR_TENSOR_OVERLAP,
        Error::DuplicateName => EGPT_ERR_DUPLICATE_NAME,
        Error::MissingMetadata => EGPT_ERR_MISSING_METADATA,
        Error::BadMetadataType => EGPT_ERR_BAD_METADATA_TYPE,
        Error::UnsupportedArchitecture => EGPT_ERR_UNSUPPORTED_ARCHITECTURE,
        Error::MissingTensor => EGPT_ERR_MISSING_TENSOR,
        Error::ShapeMismatch => EGPT_ERR_SHAPE_MISMATCH,
        Error::UnsupportedTensorType => EGPT_ERR_UNSUPPORTED_TENSOR_TYPE,
        Error::BadHyperparameters => EGPT_ERR_BAD_HYPERPARAMETERS,
        Error::UnexpectedTensor => EGPT_ERR_UNEXPECTED_TENSOR,
        Error::ArenaTooSmall { .. } => EGPT_ERR_ARENA_TOO_SMALL,
        Error::BadContextLength => EGPT_ERR_BAD_CONTEXT_LENGTH,
        Error::BadBatchSize => EGPT_ERR_BAD_BATCH_SIZE,
        Error::BadParameter => EGPT_ERR_BAD_PARAMETER,
        Error::BackendUnavailable => EGPT_ERR_BACKEND_UNAVAILABLE,
        Error::TokenOutOfRange => EGPT_ERR_TOKEN_OUT_OF_RANGE,
        Error::ContextFull => EGPT_ERR_CONTEXT_FULL,
        Error::BadPosition => EGPT_ERR_BAD_POSITION,
        Error::EmptyInput => EGPT_ERR_EMPTY_INPUT,
        Error::BatchTooLarge => EGPT_ERR_BATCH_TOO_LARGE,
        Error::NoLogits => EGPT_ERR_NO_LOGITS,
        Error::BufferTooSmall => EGPT_ERR_BUFFER_TOO_SMALL,
        Error::NoTokenizer => EGPT_ERR_NO_TOKENIZER,
        Error::BadTokenizer => EGPT_ERR_BAD_TOKENIZER,
        Error::NoCandidates => EGPT_ERR_NO_CANDIDATES,
        Error::NullPointer => EGPT_ERR_NULL_POINTER,
        Error::BadStructSize => EGPT_ERR_BAD_STRUCT_SIZE,
        Error::BadState => EGPT_ERR_BAD_STATE,
    }
}

/// Every error, one per variant (the table [`egpt_status_str`] reads).
const ERRORS: [Error; 42] = [
    Error::Truncated,
    Error::BadMagic,
    Error::UnsupportedVersion,
    Error::CountTooLarge,
    Error::StringTooLong,
    Error::BadValueType,
    Error::NestingTooDeep,
    Error::BadAlignment,
    Error::BadDimensionCount,
    Error::BadDimension,
    Error::UnknownTensorType,
    Error::BadBlockShape,
    Error::TensorOutOfBounds,
    Error::TensorMisaligned,
    Error::TensorOverlap,
    Error::DuplicateName,
    Error::MissingMetadata,
    Error::BadMetadataType,
    Error::UnsupportedArchitecture,
    Error::MissingTensor,
    Error::ShapeMismatch,
    Error::UnsupportedTensorType,
    Error::BadHyperparameters,
    Error::UnexpectedTensor,
    Error::ArenaTooSmall {
        needed: 0,
        available: 0,
    },
    Error::BadContextLength,
    Error::BadBatchSize,
    Error::BadParameter,
    Error::BackendUnavailable,
    Error::TokenOutOfRange,
    Error::ContextFull,
    Error::BadPosition,
    Error::EmptyInput,
    Error::BatchTooLarge,
    Error::NoLogits,
    Error::BufferTooSmall,
    Error::NoTokenizer,
    Error::BadTokenizer,
    Error::NoCandidates,
    Error::NullPointer,
    Error::BadStructSize,
    Error::BadState,
];

// Every listed error's C constant is its Rust code, and no two codes collide.
// INDEXING: compile-time only (used in const items); an out-of-range index is a build error.
#[allow(clippy::indexing_slicing)]
const _: () = {
    let mut i = 0;
    while i < ERRORS.len() {
        assert!(status_of(ERRORS[i]) == ERRORS[i].code());
        assert!(ERRORS[i].code() != EGPT_OK);
        let mut j = i + 1;
        while j < ERRORS.len() {
            assert!(ERRORS[i].code() != ERRORS[j].code());
            j += 1;
        }
        i += 1;
    }
};

const MSG_OK: &str = "success";
const MSG_UNKNOWN: &str = "unknown status";

/// Bytes of all messages with their NULs: OK, the errors in [`ERRORS`] order, unknown.
// INDEXING: compile-time only (used in const items); an out-of-range index is a build error.
#[allow(clippy::indexing_slicing)]
const fn messages_len() -> usize {
    let mut n = MSG_OK.len() + 1 + MSG_UNKNOWN.len() + 1;
    let mut i = 0;
    while i < ERRORS.len() {
        n += ERRORS[i].message().len() + 1;
        i += 1;
    }
    n
}

const MESSAGES_LEN: usize = messages_len();

/// One NUL-terminated copy of every message, built at compile time from
/// [`Error::message`] (so the C strings cannot drift from the Rust ones).
struct Messages {
    bytes: [u8; MESSAGES_LEN],
    /// Start of each error's message, in [`ERRORS`] order.
    start: [usize; ERRORS.len()],
    unknown: usize,
}

// INDEXING: compile-time only (used in const items); an out-of-range index is a build error.
#[allow(clippy::indexing_slicing)]
const fn copy_nul(dst: &mut [u8; MESSAGES_LEN], at: usize, s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        assert!(b[i] != 0);
        dst[at + i] = b[i];
        i += 1;
    }
    dst[at + b.len()] = 0;
    at + b.len() + 1
}

// INDEXING: compile-time only (used in const items); an out-of-range index is a build error.
#[allow(clippy::indexing_slicing)]
const fn build_messages() -> Messages {
    let mut m = Messages {
        bytes: [0; MESSAGES_LEN],
        start: [0; ERRORS.len()],
        unknown: 0,
    };
    let mut at = copy_nul(&mut m.bytes, 0, MSG_OK);
    let mut i = 0;
    while i < ERRORS.len() {
        m.start[i] = at;
        at = copy_nul(&mut m.bytes, at, ERRORS[i].message());
        i += 1;
    }
    m.unknown = at;
    at = copy_nul(&mut m.bytes, at, MSG_UNKNOWN);
    assert!(at == MESSAGES_LEN);
    m
}

static MESSAGES: Messages = build_messages();

/// A static, NUL-terminated, one-line description of `status`: `"success"` for
/// [`EGPT_OK`], `"unknown status"` for values this library does not define.
/// Never NULL; never needs freeing.
#[no_mangle]
pub extern "C" fn egpt_status_str(status: egpt_status) -> *const c_char {
    let m = &MESSAGES;
    let at = if status == EGPT_OK {
        0
    } else {
        ERRORS
            .iter()
            .zip(m.start.iter())
            .find(|(e, _)| e.code() == status)
            .map_or(m.unknown, |(_, &s)| s)
    };
    // `at` is always a message start inside `bytes` (built above), so `get` never
    // fails; the fallback keeps the never-NULL promise without a panic path.
    m.bytes
        .get(at..)
        .map_or(c"unknown status".as_ptr(), |s| s.as_ptr().cast::<c_char>())
}

fn status(r: Result<(), Error>) -> egpt_status {
    match r {
        Ok(()) => EGPT_OK,
        Err(e) => e.code(),
    }
}

// ===========================================================================
// Backends and tensor types
// ===========================================================================

/// A kernel backend: [`EGPT_BACKEND_AUTO`] (the best this CPU runs) or one forced.
pub type egpt_backend = i32;
/// Pick the best backend this CPU runs.
pub const EGPT_BACKEND_AUTO: egpt_backend = 0;
/// The portable reference kernels.
pub const EGPT_BACKEND_SCALAR: egpt_backend = 1;
/// x86_64 AVX2 + FMA + F16C.
pub const EGPT_BACKEND_AVX2: egpt_backend = 2;
/// x86_64 AVX-VNNI.
pub const EGPT_BACKEND_AVXVNNI: egpt_backend = 3;
/// x86_64 AVX-512 F/BW/VL + VNNI.
pub const EGPT_BACKEND_AVX512VNNI: egpt_backend = 4;
/// aarch64 NEON.
pub const EGPT_BACKEND_NEON: egpt_backend = 5;
/// aarch64 NEON + dotprod.
pub const EGPT_BACKEND_DOTPROD: egpt_backend = 6;
/// wasm32 simd128.
pub const EGPT_BACKEND_SIMD128: egpt_backend = 7;
/// Cortex-M4/M7/M33 DSP extension (`SXTB16`/`SMLAD`); built with feature `dsp`.
pub const EGPT_BACKEND_CORTEXM_DSP: egpt_backend = 8;
/// Cortex-M55 Helium/MVE; built with feature `helium`.
pub const EGPT_BACKEND_HELIUM: egpt_backend = 9;

const fn backend_to_c(b: Backend) -> egpt_backend {
    match b {
        Backend::Scalar => EGPT_BACKEND_SCALAR,
        Backend::Avx2 => EGPT_BACKEND_AVX2,
        Backend::AvxVnni => EGPT_BACKEND_AVXVNNI,
        Backend::Avx512Vnni => EGPT_BACKEND_AVX512VNNI,
        Backend::Neon => EGPT_BACKEND_NEON,
        Backend::NeonDotprod => EGPT_BACKEND_DOTPROD,
        Backend::Simd128 => EGPT_BACKEND_SIMD128,
        Backend::CortexMDsp => EGPT_BACKEND_CORTEXM_DSP,
        Backend::Helium => EGPT_BACKEND_HELIUM,
    }
}

/// `Ok(None)` for AUTO, `Err(BadParameter)` for values that name no backend.
fn backend_from_c(b: egpt_backend) -> Result<Option<Backend>, Error> {
    if b == EGPT_BACKEND_AUTO {
        return Ok(None);
    }
    Backend::ALL
        .iter()
        .copied()
        .find(|&x| backend_to_c(x) == b)
        .map(Some)
        .ok_or(Error::BadParameter)
}

fn backend_c_name(b: Backend) -> &'static CStr {
    match b {
        Backend::Scalar => c"scalar",
        Backend::Avx2 => c"avx2",
        Backend::AvxVnni => c"avxvnni",
        Backend::Avx512Vnni => c"avx512vnni",
        Backend::Neon => c"neon",
        Backend::NeonDotprod => c"dotprod",
        Backend::Simd128 => c"simd128",
        Backend::CortexMDsp => c"dsp",
        Backend::Helium => c"helium",
    }
}

/// Static name of a backend (`"auto"`, `"scalar"`, `"avx2"`, ... as the CLI's
/// `--backend` takes them), `"unknown backend"` for other values. Never NULL.
#[no_mangle]
pub extern "C" fn egpt_backend_name(backend: egpt_backend) -> *const c_char {
    match backend_from_c(backend) {
        Ok(None) => c"auto".as_ptr(),
        Ok(Some(b)) => backend_c_name(b).as_ptr(),
        Err(_) => c"unknown backend".as_ptr(),
    }
}

/// The backend [`EGPT_BACKEND_AUTO`] resolves to on this CPU.
#[no_mangle]
pub extern "C" fn egpt_backend_best() -> egpt_backend {
    backend_to_c(Backend::detect())
}

/// 1 if this CPU can run `backend` (AUTO always can), 0 if not or unknown.
#[no_mangle]
pub extern "C" fn egpt_backend_available(backend: egpt_backend) -> c_int {
    match backend_from_c(backend) {
        Ok(None) => 1,
        Ok(Some(b)) => c_int::from(b.is_available()),
        Err(_) => 0,
    }
}

fn type_c_name(t: GgmlType) -> &'static CStr {
    match t {
        GgmlType::F32 => c"f32",
        GgmlType::F16 => c"f16",
        GgmlType::Q4_0 => c"q4_0",
        GgmlType::Q4_1 => c"q4_1",
        GgmlType::Q5_0 => c"q5_0",
        GgmlType::Q5_1 => c"q5_1",
        GgmlType::Q8_0 => c"q8_0",
        GgmlType::Q8_1 => c"q8_1",
        GgmlType::Q2_K => c"q2_k",
        GgmlType::Q3_K => c"q3_k",
        GgmlType::Q4_K => c"q4_k",
        GgmlType::Q5_K => c"q5_k",
        GgmlType::Q6_K => c"q6_k",
        GgmlType::Q8_K => c"q8_k",
        GgmlType::BF16 => c"bf16",
    }
}

/// Static lower-case name of a ggml tensor type id (`"f32"`, `"q8_0"`, ...),
/// `"unknown type"` for ids ggml does not define. Never NULL.
#[no_mangle]
pub extern "C" fn egpt_type_name(ggml_type: u32) -> *const c_char {
    match GgmlType::from_u32(ggml_type) {
        Ok(t) => type_c_name(t).as_ptr(),
        Err(_) => c"unknown type".as_ptr(),
    }
}

// ===========================================================================
// Handles
// ===========================================================================

const MODEL_MAGIC: u32 = 0x4547_4d31; // "EGM1"
const CONTEXT_MAGIC: u32 = 0x4547_4331; // "EGC1"

/// A loaded model (opaque). Lives in caller memory of [`egpt_model_size`] bytes
/// and borrows the caller's GGUF bytes; read-only after [`egpt_model_open`], so
/// one model may be shared by any number of contexts and threads.
pub struct egpt_model {
    magic: u32,
    model: Model<'static>,
}

/// An evaluation context (opaque): KV cache, activations, logits. Lives at the
/// start of the caller's arena; belongs to one thread at a time.
pub struct egpt_context {
    magic: u32,
    ctx: Context<'static, 'static>,
}

/// Check that `p` is a non-NULL, aligned pointer to a live handle of type `T`
/// (magic word at the start of `T`, read without assuming anything else).
///
/// # Safety
/// `p`, when non-NULL and aligned, must point to at least `size_of::<u32>()` readable bytes.
unsafe fn check_handle<T>(
    p: *const T,
    magic_of: fn(*const T) -> *const u32,
    magic: u32,
) -> Result<(), Error> {
    if p.is_null() {
        return Err(Error::NullPointer);
    }
    if !(p as usize).is_multiple_of(align_of::<T>()) {
        return Err(Error::BadState);
    }
    // SAFETY: non-NULL and aligned; the caller promises the first bytes are readable.
    // `read_volatile` keeps the check from being reasoned away.
    let m = unsafe { ptr::read_volatile(magic_of(p)) };
    if m != magic {
        return Err(Error::BadState);
    }
    Ok(())
}

fn model_magic(p: *const egpt_model) -> *const u32 {
    p.cast::<u8>()
        .wrapping_add(offset_of!(egpt_model, magic))
        .cast::<u32>()
}

fn context_magic(p: *const egpt_context) -> *const u32 {
    p.cast::<u8>()
        .wrapping_add(offset_of!(egpt_context, magic))
        .cast::<u32>()
}

/// # Safety
/// `p` must be NULL or point to memory readable for `size_of::<egpt_model>()` bytes
/// that, if it carries the model magic, holds a model made by [`egpt_model_open`].
unsafe fn model_ref<'a>(p: *const egpt_model) -> Result<&'a egpt_model, Error> {
    // SAFETY: forwarded from the caller.
    unsafe { check_handle(p, model_magic, MODEL_MAGIC)? };
    // SAFETY: non-NULL, aligned, and holds a model written by `egpt_model_open`.
    Ok(unsafe { &*p })
}

/// # Safety
/// As [`model_ref`], for a context made by [`egpt_context_create`].
unsafe fn context_ref<'a>(p: *const egpt_context) -> Result<&'a egpt_context, Error> {
    // SAFETY: forwarded from the caller.
    unsafe { check_handle(p, context_magic, CONTEXT_MAGIC)? };
    // SAFETY: non-NULL, aligned, and holds a context written by `egpt_context_create`.
    Ok(unsafe { &*p })
}

/// # Safety
/// As [`context_ref`], and no other reference to the context may be live.
unsafe fn context_mut<'a>(p: *mut egpt_context) -> Result<&'a mut egpt_context, Error> {
    // SAFETY: forwarded from the caller.
    unsafe { check_handle(p.cast_const(), context_magic, CONTEXT_MAGIC)? };
    // SAFETY: as in `context_ref`; exclusive by the caller's promise (one thread per context).
    Ok(unsafe { &mut *p })
}

/// Write `v` through an out-pointer.
///
/// # Safety
/// `out` must be NULL-checked already and valid for a write of `T` (any alignment).
unsafe fn put<T>(out: *mut T, v: T) {
    // SAFETY: forwarded from the caller.
    unsafe { ptr::write_unaligned(out, v) }
}

/// Fail with NullPointer if any pointer is NULL.
fn non_null(ps: &[*const c_void]) -> Result<(), Error> {
    if ps.iter().any(|p| p.is_null()) {
        return Err(Error::NullPointer);
    }
    Ok(())
}

// ===========================================================================
// Model
// ===========================================================================

/// Bytes of caller memory [`egpt_model_open`] needs for the model handle (any
/// alignment: the handle is placed at the first suitably aligned address).
/// [`EGPT_MODEL_STORAGE_SIZE`] bytes are always enough.
#[no_mangle]
pub extern "C" fn egpt_model_size() -> usize {
    size_of::<egpt_model>() + align_of::<egpt_model>() - 1
}

/// An upper bound of [`egpt_model_size`] on every target, for static storage:
/// `static uint64_t model_mem[EGPT_MODEL_STORAGE_SIZE / 8];`.
pub const EGPT_MODEL_STORAGE_SIZE: usize = 512;
const _: () =
    assert!(size_of::<egpt_model>() + align_of::<egpt_model>() - 1 <= EGPT_MODEL_STORAGE_SIZE);

/// Parse and validate a GGUF model from `bytes[0..len]` (zero-copy) and place the
/// model handle in `model_mem[0..model_mem_len]`.
///
/// On success `*out_model` points into `model_mem`. The caller keeps `bytes` and
/// `model_mem` alive and unchanged for as long as the model or any context made
/// from it is used; there is nothing to close.
///
/// Errors: `NULL_POINTER` (any pointer NULL), `BUFFER_TOO_SMALL` (`model_mem_len <
/// egpt_model_size()`), `BAD_PARAMETER` (`len > PTRDIFF_MAX`), and every GGUF and
/// model validation error (`TRUNCATED`, `BAD_MAGIC`, ..., `MISSING_TENSOR`).
///
/// # Safety
/// `bytes` must be readable for `len` bytes and `model_mem` writable for
/// `model_mem_len` bytes, and the two must not overlap.
#[no_mangle]
pub unsafe extern "C" fn egpt_model_open(
    bytes: *const u8,
    len: usize,
    model_mem: *mut c_void,
    model_mem_len: usize,
    out_model: *mut *mut egpt_model,
) -> egpt_status {
    status((|| {
        non_null(&[
            bytes.cast(),
            model_mem.cast_const(),
            out_model.cast_const().cast(),
        ])?;
        if model_mem_len < egpt_model_size() {
            return Err(Error::BufferTooSmall);
        }
        if len > isize::MAX as usize {
            return Err(Error::BadParameter);
        }
        // SAFETY: non-NULL, readable for `len <= isize::MAX` bytes and kept alive and
        // unchanged by the caller while the model is used (documented contract).
        let file: &'static [u8] = unsafe { core::slice::from_raw_parts(bytes, len) };
        let model = Model::load(file)?;
        let pad = model_mem
            .cast::<u8>()
            .align_offset(align_of::<egpt_model>());
        if pad > align_of::<egpt_model>() - 1 {
            return Err(Error::BadParameter);
        }
        // SAFETY: pad + size_of <= egpt_model_size() <= model_mem_len, so the handle
        // lies inside the caller's writable buffer, and it is aligned.
        let h = unsafe { model_mem.cast::<u8>().add(pad) }.cast::<egpt_model>();
        // SAFETY: `h` is aligned and writable for one `egpt_model` (above).
        unsafe {
            h.write(egpt_model {
                magic: MODEL_MAGIC,
                model,
            })
        };
        // SAFETY: `out_model` is non-NULL and writable by the caller's contract.
        unsafe { put(out_model, h) };
        Ok(())
    })())
}

/// Size of the architecture name field of [`egpt_model_info`].
pub const EGPT_ARCH_NAME_LEN: usize = 32;

/// What a model is. Set `struct_size = sizeof(egpt_model_info)` before calling
/// [`egpt_model_get_info`]; fields may be appended in later ABI versions.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct egpt_model_info {
    /// `sizeof(egpt_model_info)`, set by the caller.
    pub struct_size: usize,
    /// `general.architecture` (`"gpt2"`), NUL-terminated.
    pub architecture: [c_char; EGPT_ARCH_NAME_LEN],
    /// Vocabulary size: valid token ids are `0 .. n_vocab - 1`.
    pub n_vocab: usize,
    /// Training context length (the largest `n_ctx` a context may have).
    pub n_ctx: usize,
    /// Embedding width.
    pub n_embd: usize,
    /// Feed-forward width.
    pub n_ff: usize,
    /// Number of blocks.
    pub n_layer: usize,
    /// Attention heads.
    pub n_head: usize,
    /// Key/value heads (equal to `n_head` without grouped-query attention).
    pub n_head_kv: usize,
    /// Number of tensors in the file.
    pub n_tensors: usize,
    /// The ggml type id holding the most tensor bytes (the "quantization" of the
    /// file); name it with [`egpt_type_name`].
    pub weight_type: u32,
    /// GGUF version of the file (2 or 3).
    pub gguf_version: u32,
    /// 1 if the output layer reuses the token embedding, else 0.
    pub tied_output: i32,
    /// Normalisation epsilon.
    pub norm_eps: f32,
}

/// Read a struct's leading `struct_size` and require `expected`.
///
/// # Safety
/// `p` must be non-NULL and readable for `size_of::<usize>()` bytes.
unsafe fn check_struct_size<T>(p: *const T, expected: usize) -> Result<(), Error> {
    // SAFETY: forwarded from the caller; unaligned read so any address works.
    let size = unsafe { ptr::read_unaligned(p.cast::<usize>()) };
    if size != expected {
        return Err(Error::BadStructSize);
    }
    Ok(())
}

/// Describe `model` into `*out_info` (whose `struct_size` the caller sets).
///
/// Errors: `NULL_POINTER`, `BAD_STATE` (not a model handle), `BAD_STRUCT_SIZE`.
///
/// # Safety
/// `model` must come from [`egpt_model_open`] (or be NULL); `out_info` must be NULL
/// or writable for `out_info->struct_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn egpt_model_get_info(
    model: *const egpt_model,
    out_info: *mut egpt_model_info,
) -> egpt_status {
    status((|| {
        non_null(&[out_info.cast_const().cast()])?;
        // SAFETY: caller contract.
        let m = &unsafe { model_ref(model)? }.model;
        // SAFETY: non-NULL; caller contract says readable.
        unsafe { check_struct_size(out_info.cast_const(), size_of::<egpt_model_info>())? };
        let hp = m.hparams();
        let mut arch = [0 as c_char; EGPT_ARCH_NAME_LEN];
        for (d, &s) in arch.iter_mut().zip(
            hp.arch
                .name()
                .as_bytes()
                .iter()
                .take(EGPT_ARCH_NAME_LEN - 1),
        ) {
            *d = s as c_char;
        }
        // Bytes per ggml type id (ids are < 64; others are not in a parsed file).
        let mut by_type = [0usize; 64];
        for t in m.gguf().tensors() {
            if let Some(b) = by_type.get_mut(t.ty as usize) {
                *b = b.saturating_add(t.data.len());
            }
        }
        let weight_type = by_type
            .iter()
            .enumerate()
            .fold(
                (0usize, 0usize),
                |(bi, bv), (i, &v)| if v > bv { (i, v) } else { (bi, bv) },
            )
            .0 as u32;
        let info = egpt_model_info {
            struct_size: size_of::<egpt_model_info>(),
            architecture: arch,
            n_vocab: hp.n_vocab,
            n_ctx: hp.n_ctx,
            n_embd: hp.n_embd,
            n_ff: hp.n_ff,
            n_layer: hp.n_layer,
            n_head: hp.n_head,
            n_head_kv: hp.n_head_kv,
            n_tensors: m.gguf().n_tensors(),
            weight_type,
            gguf_version: m.gguf().version(),
            tied_output: i32::from(m.is_tied()),
            norm_eps: hp.eps,
        };
        // SAFETY: non-NULL and writable for the (checked) struct size.
        unsafe { put(out_info, info) };
        Ok(())
    })())
}

/// The ggml type id of the tensor named `name[0..name_len]` (no NUL needed).
///
/// Errors: `NULL_POINTER`, `BAD_STATE` (not a model handle), `MISSING_TENSOR` (no
/// tensor of that name, or the name is not UTF-8).
///
/// # Safety
/// `model` must come from [`egpt_model_open`] (or be NULL); `name` readable for
/// `name_len` bytes; `out_type` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_model_tensor_type(
    model: *const egpt_model,
    name: *const c_char,
    name_len: usize,
    out_type: *mut u32,
) -> egpt_status {
    status((|| {
        non_null(&[name.cast(), out_type.cast_const().cast()])?;
        // SAFETY: caller contract.
        let m = &unsafe { model_ref(model)? }.model;
        if name_len > isize::MAX as usize {
            return Err(Error::BadParameter);
        }
        // SAFETY: non-NULL and readable for `name_len` bytes by the caller's contract.
        let name = unsafe { core::slice::from_raw_parts(name.cast::<u8>(), name_len) };
        let name = core::str::from_utf8(name).map_err(|_| Error::MissingTensor)?;
        let t = m.gguf().tensor(name).ok_or(Error::MissingTensor)?;
        // SAFETY: non-NULL, writable by contract.
        unsafe { put(out_type, t.ty as u32) };
        Ok(())
    })())
}

// ===========================================================================
// Context
// ===========================================================================

/// One unit of parallel work: the library's task function, called by the hook
/// with every index in `0 .. n_tasks`.
pub type egpt_task_fn = Option<unsafe extern "C" fn(task_ctx: *mut c_void, index: usize)>;

/// A caller-supplied parallel-for: call `task(task_ctx, i)` once for every `i` in
/// `0 .. n_tasks`, in any order and on any threads, and return when all are done.
pub type egpt_parallel_for_fn = Option<
    unsafe extern "C" fn(
        user: *mut c_void,
        n_tasks: usize,
        task: egpt_task_fn,
        task_ctx: *mut c_void,
    ),
>;

/// How a context is made. Start from [`egpt_context_default_params`]; fields may be
/// appended in later ABI versions (`struct_size` tells which version the caller has).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct egpt_context_params {
    /// `sizeof(egpt_context_params)`, set by [`egpt_context_default_params`].
    pub struct_size: usize,
    /// Context length in tokens; 0 means the model's own.
    pub n_ctx: usize,
    /// Most tokens evaluated in one forward step (longer inputs are split);
    /// also how many tokens [`egpt_context_eval_all`] accepts.
    pub n_batch: usize,
    /// Nonzero: keep the logits of every token of a batch (needed by
    /// [`egpt_context_eval_all`]); zero: only the last token's.
    pub logits_all: i32,
    /// An `EGPT_BACKEND_*` value; [`EGPT_BACKEND_AUTO`] picks the best.
    pub backend: egpt_backend,
    /// Optional parallel-for hook (NULL: everything runs on the calling thread).
    /// The core hands it independent tasks: each matrix multiply split into up
    /// to `2 * parallel_n_tasks` row ranges (with the bias, activation and
    /// residual work on those rows), attention split over heads, and layer
    /// norms over tokens in batches; it must call `task(task_ctx, i)` exactly
    /// once for every `i < n_tasks` (on any threads, possibly concurrently),
    /// return only when all calls have returned, and not unwind. Logits are
    /// bit-identical whatever the hook and the task count.
    pub parallel_for: egpt_parallel_for_fn,
    /// Passed to `parallel_for` as `user`.
    pub parallel_user: *mut c_void,
    /// The host's thread count when `parallel_for` is set (the core sizes its
    /// splits by it; 0 and 1 mean everything runs on the calling thread).
    pub parallel_n_tasks: usize,
}

/// The default parameters (model's context length, batch of 32, last-token
/// logits only, automatic backend, no parallel hook), with `struct_size` set.
#[no_mangle]
pub extern "C" fn egpt_context_default_params() -> egpt_context_params {
    let d = ContextParams::default();
    egpt_context_params {
        struct_size: size_of::<egpt_context_params>(),
        n_ctx: d.n_ctx,
        n_batch: d.n_batch,
        logits_all: i32::from(d.logits_all),
        backend: d.backend.map_or(EGPT_BACKEND_AUTO, backend_to_c),
        parallel_for: None,
        parallel_user: ptr::null_mut(),
        parallel_n_tasks: 0,
    }
}

/// # Safety
/// `p` must be NULL or readable for `size_of::<usize>()` bytes and, if that
/// size field is right, for the whole struct.
unsafe fn read_params(p: *const egpt_context_params) -> Result<ContextParams, Error> {
    non_null(&[p.cast()])?;
    // SAFETY: non-NULL, readable by the caller's contract.
    unsafe { check_struct_size(p, size_of::<egpt_context_params>())? };
    // SAFETY: the caller's struct has our size; unaligned read copes with any address.
    // Every field type accepts every bit pattern (integers, raw and Option<fn> pointers).
    let c = unsafe { ptr::read_unaligned(p) };
    let parallel = match c.parallel_for {
        None => None,
        Some(f) => {
            // SAFETY: the two function pointer types differ only in `*mut` versus
            // `*const c_void` arguments and `Option<fn>` versus `fn` for the task,
            // which Rust documents as ABI-compatible (thin pointers; an Option of a
            // fn pointer has the null-pointer layout), so calling `f` through
            // `RunFn` is calling it with its own ABI. The core never passes a null task.
            let run: crate::kernels::parallel::RunFn = unsafe { core::mem::transmute(f) };
            // SAFETY: the hook's contract (documented on `parallel_for` in the header)
            // is exactly `ParallelFor::new`'s; the caller promised it by setting it.
            Some(unsafe {
                crate::kernels::parallel::ParallelFor::new(run, c.parallel_user, c.parallel_n_tasks)
            })
        }
    };
    Ok(ContextParams {
        n_ctx: c.n_ctx,
        n_batch: c.n_batch,
        logits_all: c.logits_all != 0,
        backend: backend_from_c(c.backend)?,
        parallel,
    })
}

/// Arena bytes for the context handle and its padding, before the core's arena.
const fn handle_bytes() -> usize {
    size_of::<egpt_context>() + align_of::<egpt_context>() - 1
}

fn arena_size(m: &Model<'_>, p: &ContextParams) -> Result<usize, Error> {
    Context::arena_size(m, p)?
        .checked_add(handle_bytes())
        .ok_or(Error::BadParameter)
}

/// Exact arena bytes [`egpt_context_create`] needs for `model` with `params` (the
/// context handle included; any alignment of the arena is fine). Pure: touches no memory.
///
/// Errors: `NULL_POINTER`, `BAD_STATE` (not a model handle), `BAD_STRUCT_SIZE`,
/// `BAD_PARAMETER` (unknown backend value, or a size overflow), `BAD_CONTEXT_LENGTH`,
/// `BAD_BATCH_SIZE`.
///
/// # Safety
/// `model` must come from [`egpt_model_open`] (or be NULL); `params` readable;
/// `out_size` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_context_arena_size(
    model: *const egpt_model,
    params: *const egpt_context_params,
    out_size: *mut usize,
) -> egpt_status {
    status((|| {
        non_null(&[out_size.cast_const().cast()])?;
        // SAFETY: caller contract.
        let m = &unsafe { model_ref(model)? }.model;
        // SAFETY: caller contract.
        let p = unsafe { read_params(params)? };
        let n = arena_size(m, &p)?;
        // SAFETY: non-NULL, writable by contract.
        unsafe { put(out_size, n) };
        Ok(())
    })())
}

/// Create a context for `model` inside `arena[0..arena_len]` (at least
/// [`egpt_context_arena_size`] bytes, any alignment). On success `*out_ctx` points
/// into the arena. The arena (and the model's bytes) must stay alive and
/// otherwise untouched while the context is used; to discard the context simply
/// stop using it (there is nothing to free); the arena may then be reused.
///
/// Errors: `NULL_POINTER`, `BAD_STATE` (not a model handle), `BAD_STRUCT_SIZE`,
/// `BAD_PARAMETER`, `BAD_CONTEXT_LENGTH`, `BAD_BATCH_SIZE`, `ARENA_TOO_SMALL`
/// (`arena_len` below the size the API computed, even by one byte),
/// `BACKEND_UNAVAILABLE`.
///
/// # Safety
/// `model` must come from [`egpt_model_open`] (or be NULL); `params` readable;
/// `arena` writable for `arena_len` bytes and not overlapping the model handle
/// or the model bytes; `out_ctx` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_context_create(
    model: *const egpt_model,
    params: *const egpt_context_params,
    arena: *mut c_void,
    arena_len: usize,
    out_ctx: *mut *mut egpt_context,
) -> egpt_status {
    status((|| {
        non_null(&[arena.cast_const(), out_ctx.cast_const().cast()])?;
        // SAFETY: caller contract.
        let m = unsafe { model_ref(model)? }.model;
        // SAFETY: caller contract.
        let p = unsafe { read_params(params)? };
        let needed = arena_size(&m, &p)?;
        if arena_len < needed {
            return Err(Error::ArenaTooSmall {
                needed,
                available: arena_len,
            });
        }
        // arena_len >= needed > 0 and the caller's buffer exists, so arena_len <= isize::MAX.
        // SAFETY: non-NULL and writable for `arena_len` bytes, exclusively ours
        // while the context lives (documented contract).
        let all: &'static mut [u8] =
            unsafe { core::slice::from_raw_parts_mut(arena.cast::<u8>(), arena_len) };
        let pad = all.as_ptr().align_offset(align_of::<egpt_context>());
        if pad >= align_of::<egpt_context>() {
            return Err(Error::BadParameter);
        }
        let (head, tail) = all
            .split_at_mut_checked(handle_bytes())
            .ok_or(Error::BadParameter)?;
        let (_, slot) = head.split_at_mut_checked(pad).ok_or(Error::BadParameter)?;
        let ctx = Context::new(m, &p, tail)?;
        let h = slot.as_mut_ptr().cast::<egpt_context>();
        // SAFETY: `slot` holds size_of::<egpt_context>() + (align - 1 - pad) >= size_of
        // bytes starting at an address aligned for egpt_context, disjoint from `tail`.
        unsafe {
            h.write(egpt_context {
                magic: CONTEXT_MAGIC,
                ctx,
            })
        };
        // SAFETY: non-NULL, writable by contract.
        unsafe { put(out_ctx, h) };
        Ok(())
    })())
}

/// Form the token slice after checking what can be checked without reading it.
///
/// # Safety
/// `tokens` non-NULL and readable for `n` `uint32_t` whenever `n` fits the context.
unsafe fn tokens_of<'a>(
    c: &Context<'_, '_>,
    tokens: *const u32,
    n: usize,
) -> Result<&'a [u32], Error> {
    if n == 0 {
        return Err(Error::EmptyInput);
    }
    // Refuse lengths beyond the room left before forming a slice from them.
    if n > c.n_ctx().saturating_sub(c.n_past()) {
        return Err(Error::ContextFull);
    }
    if !(tokens as usize).is_multiple_of(align_of::<u32>()) {
        return Err(Error::BadParameter);
    }
    // SAFETY: non-NULL (checked by the caller of this fn), aligned, readable for
    // `n <= n_ctx` values by the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts(tokens, n) })
}

/// Evaluate `tokens[0..n_tokens]` after the tokens already in the context (a
/// prefill when many, a decode step when one), in steps of at most `n_batch`.
/// Keeps the last token's logits ([`egpt_context_logits`]).
///
/// On error nothing is evaluated and the context is unchanged.
/// Errors: `NULL_POINTER`, `BAD_STATE` (not a context handle), `EMPTY_INPUT`
/// (`n_tokens == 0`), `CONTEXT_FULL` (more tokens than `n_ctx - n_past`),
/// `TOKEN_OUT_OF_RANGE` (an id `>= n_vocab`), `BAD_PARAMETER` (misaligned `tokens`).
///
/// # Safety
/// `ctx` must come from [`egpt_context_create`] (or be NULL) and not be used by
/// another thread during the call; `tokens` readable for `n_tokens` values.
#[no_mangle]
pub unsafe extern "C" fn egpt_context_eval(
    ctx: *mut egpt_context,
    tokens: *const u32,
    n_tokens: usize,
) -> egpt_status {
    status((|| {
        non_null(&[tokens.cast()])?;
        // SAFETY: caller contract.
        let c = &mut unsafe { context_mut(ctx)? }.ctx;
        // SAFETY: non-NULL; caller contract.
        let t = unsafe { tokens_of(c, tokens, n_tokens)? };
        c.eval(t)
    })())
}

/// Evaluate `tokens[0..n_tokens]` (at most `n_batch`) as one batch and keep the
/// logits of every one of them ([`egpt_context_all_logits`]). Needs a context
/// made with `logits_all` set.
///
/// On error nothing is evaluated and the context is unchanged.
/// Errors: as [`egpt_context_eval`], plus `BATCH_TOO_LARGE` (more tokens than the
/// context keeps logits for: `n_batch` with `logits_all`, else 1).
///
/// # Safety
/// As [`egpt_context_eval`].
#[no_mangle]
pub unsafe extern "C" fn egpt_context_eval_all(
    ctx: *mut egpt_context,
    tokens: *const u32,
    n_tokens: usize,
) -> egpt_status {
    status((|| {
        non_null(&[tokens.cast()])?;
        // SAFETY: caller contract.
        let c = &mut unsafe { context_mut(ctx)? }.ctx;
        // SAFETY: non-NULL; caller contract.
        let t = unsafe { tokens_of(c, tokens, n_tokens)? };
        c.eval_all(t)
    })())
}

/// The logits of the last evaluated token: `*out_logits` points to `*out_n_vocab`
/// floats inside the arena. The pointer stays valid until the next eval,
/// eval_all, rewind or reset of this context (or the arena is reused).
///
/// Errors: `NULL_POINTER`, `BAD_STATE`, `NO_LOGITS` (nothing evaluated since
/// creation, reset, or a rewind that dropped the last token).
///
/// # Safety
/// `ctx` must come from [`egpt_context_create`] (or be NULL); out-pointers writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_context_logits(
    ctx: *const egpt_context,
    out_logits: *mut *const f32,
    out_n_vocab: *mut usize,
) -> egpt_status {
    status((|| {
        non_null(&[
            out_logits.cast_const().cast(),
            out_n_vocab.cast_const().cast(),
        ])?;
        // SAFETY: caller contract.
        let l = unsafe { context_ref(ctx)? }.ctx.logits()?;
        // SAFETY: both non-NULL and writable by contract.
        unsafe {
            put(out_logits, l.as_ptr());
            put(out_n_vocab, l.len());
        }
        Ok(())
    })())
}

/// The logits of every token of the last [`egpt_context_eval_all`] (one row
/// after [`egpt_context_eval`]): `*out_n_rows` rows of `*out_n_vocab` floats,
/// row-major. Same lifetime as [`egpt_context_logits`].
///
/// Errors: `NULL_POINTER`, `BAD_STATE`, `NO_LOGITS`.
///
/// # Safety
/// As [`egpt_context_logits`].
#[no_mangle]
pub unsafe extern "C" fn egpt_context_all_logits(
    ctx: *const egpt_context,
    out_logits: *mut *const f32,
    out_n_rows: *mut usize,
    out_n_vocab: *mut usize,
) -> egpt_status {
    status((|| {
        non_null(&[
            out_logits.cast_const().cast(),
            out_n_rows.cast_const().cast(),
            out_n_vocab.cast_const().cast(),
        ])?;
        // SAFETY: caller contract.
        let c = &unsafe { context_ref(ctx)? }.ctx;
        let l = c.all_logits()?;
        let v = c.model().hparams().n_vocab;
        // SAFETY: all non-NULL and writable by contract.
        unsafe {
            put(out_logits, l.as_ptr());
            put(out_n_rows, l.len() / v.max(1));
            put(out_n_vocab, v);
        }
        Ok(())
    })())
}

/// Copy the last token's logits into `buf[0..buf_len]` and set `*out_n` to the
/// number written (`n_vocab`).
///
/// Errors: `NULL_POINTER`, `BAD_STATE`, `NO_LOGITS`, `BUFFER_TOO_SMALL` (`buf_len <
/// n_vocab`; nothing is written).
///
/// # Safety
/// `ctx` must come from [`egpt_context_create`] (or be NULL); `buf` writable for
/// `buf_len` floats and not overlapping the arena; `out_n` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_context_copy_logits(
    ctx: *const egpt_context,
    buf: *mut f32,
    buf_len: usize,
    out_n: *mut usize,
) -> egpt_status {
    status((|| {
        non_null(&[buf.cast_const().cast(), out_n.cast_const().cast()])?;
        // SAFETY: caller contract.
        let l = unsafe { context_ref(ctx)? }.ctx.logits()?;
        if buf_len < l.len() {
            return Err(Error::BufferTooSmall);
        }
        // SAFETY: `buf` writable for buf_len >= l.len() floats, disjoint from the
        // arena by contract; unaligned-safe byte copy.
        unsafe {
            ptr::copy_nonoverlapping(l.as_ptr().cast::<u8>(), buf.cast::<u8>(), size_of_val(l));
            put(out_n, l.len());
        }
        Ok(())
    })())
}

/// Forget every token from position `pos` on (`pos <= n_past`), e.g. to re-run
/// from a shared prefix. Logits are dropped when `pos < n_past`.
///
/// Errors: `NULL_POINTER`, `BAD_STATE`, `BAD_POSITION` (`pos > n_past`; nothing changes).
///
/// # Safety
/// As [`egpt_context_eval`].
#[no_mangle]
pub unsafe extern "C" fn egpt_context_rewind(ctx: *mut egpt_context, pos: usize) -> egpt_status {
    status((|| {
        // SAFETY: caller contract.
        unsafe { context_mut(ctx)? }.ctx.rewind(pos)
    })())
}

/// Forget everything (as `egpt_context_rewind(ctx, 0)`).
///
/// Errors: `NULL_POINTER`, `BAD_STATE`.
///
/// # Safety
/// As [`egpt_context_eval`].
#[no_mangle]
pub unsafe extern "C" fn egpt_context_reset(ctx: *mut egpt_context) -> egpt_status {
    status((|| {
        // SAFETY: caller contract.
        unsafe { context_mut(ctx)? }.ctx.reset();
        Ok(())
    })())
}

/// Read one number of a context.
///
/// # Safety
/// As [`egpt_context_logits`].
unsafe fn context_get(
    ctx: *const egpt_context,
    out: *mut usize,
    f: fn(&Context<'_, '_>) -> usize,
) -> egpt_status {
    status((|| {
        non_null(&[out.cast_const().cast()])?;
        // SAFETY: caller contract.
        let v = f(&unsafe { context_ref(ctx)? }.ctx);
        // SAFETY: non-NULL, writable by contract.
        unsafe { put(out, v) };
        Ok(())
    })())
}

/// Tokens in the context (the position of the next token).
///
/// Errors: `NULL_POINTER`, `BAD_STATE`.
///
/// # Safety
/// As [`egpt_context_logits`].
#[no_mangle]
pub unsafe extern "C" fn egpt_context_n_past(
    ctx: *const egpt_context,
    out_n_past: *mut usize,
) -> egpt_status {
    // SAFETY: forwarded.
    unsafe { context_get(ctx, out_n_past, |c| c.n_past()) }
}

/// The context length (`n_ctx` resolved: never 0).
///
/// Errors: `NULL_POINTER`, `BAD_STATE`.
///
/// # Safety
/// As [`egpt_context_logits`].
#[no_mangle]
pub unsafe extern "C" fn egpt_context_n_ctx(
    ctx: *const egpt_context,
    out_n_ctx: *mut usize,
) -> egpt_status {
    // SAFETY: forwarded.
    unsafe { context_get(ctx, out_n_ctx, |c| c.n_ctx()) }
}

/// The batch size.
///
/// Errors: `NULL_POINTER`, `BAD_STATE`.
///
/// # Safety
/// As [`egpt_context_logits`].
#[no_mangle]
pub unsafe extern "C" fn egpt_context_n_batch(
    ctx: *const egpt_context,
    out_n_batch: *mut usize,
) -> egpt_status {
    // SAFETY: forwarded.
    unsafe { context_get(ctx, out_n_batch, |c| c.n_batch()) }
}

/// The backend the context runs (never [`EGPT_BACKEND_AUTO`]).
///
/// Errors: `NULL_POINTER`, `BAD_STATE`.
///
/// # Safety
/// As [`egpt_context_logits`].
#[no_mangle]
pub unsafe extern "C" fn egpt_context_backend(
    ctx: *const egpt_context,
    out_backend: *mut egpt_backend,
) -> egpt_status {
    status((|| {
        non_null(&[out_backend.cast_const().cast()])?;
        // SAFETY: caller contract.
        let b = unsafe { context_ref(ctx)? }.ctx.backend();
        // SAFETY: non-NULL, writable by contract.
        unsafe { put(out_backend, backend_to_c(b)) };
        Ok(())
    })())
}

// ===========================================================================
// Text: tokenizer, streaming decoder, sampler, generation
// ===========================================================================
//
// Conventions of the text functions, in addition to those above:
// - a buffer whose length is 0 may be NULL (e.g. a size query);
// - functions that fill a caller buffer (`egpt_tokenize`, `egpt_token_to_piece`,
//   `egpt_detokenize`, `egpt_stream_decoder_push`) return `BUFFER_TOO_SMALL` when it is
//   short, write nothing into it, and then — the one deliberate exception to
//   "out-parameters only on success" — set `*n_out` to the length needed.

const TOKENIZER_MAGIC: u32 = 0x4547_5431; // "EGT1"
const SAMPLER_MAGIC: u32 = 0x4547_5331; // "EGS1"
const STREAM_MAGIC: u32 = 0x4547_4431; // "EGD1"
/// A context or sampler while [`egpt_generate`] runs: calls on it from the
/// callback see `BAD_STATE`.
const BUSY_MAGIC: u32 = 0x4547_4231; // "EGB1"

/// "No token": the `unevaluated` field of [`egpt_generate_result`] when every
/// sampled token is in the context, a missing BOS/EOS in [`egpt_tokenizer_info`],
/// and the `token` of the callback's final call that releases held-back bytes.
pub const EGPT_NO_TOKEN: u32 = 0xFFFF_FFFF;
/// Most stop strings of [`egpt_generate_params`].
pub const EGPT_MAX_STOPS: usize = 8;
/// Longest stop string, in bytes.
pub const EGPT_MAX_STOP_LEN: usize = 64;
/// Longest text of one token [`egpt_generate`] handles, in bytes.
pub const EGPT_MAX_TOKEN_BYTES: usize = 256;
const _: () = assert!(
    EGPT_MAX_STOPS == crate::generate::MAX_STOPS
        && EGPT_MAX_STOP_LEN == crate::generate::MAX_STOP_LEN
        && EGPT_MAX_TOKEN_BYTES == crate::generate::MAX_TOKEN_BYTES
);

/// Why [`egpt_generate`] stopped (`egpt_generate_result.stop_reason`).
pub type egpt_stop_reason = u32;
/// The model produced its end-of-text token (not emitted).
pub const EGPT_STOP_EOS: egpt_stop_reason = 1;
/// The generated text contains a stop string (`stop_index` says which).
pub const EGPT_STOP_STRING: egpt_stop_reason = 2;
/// `max_tokens` tokens were sampled.
pub const EGPT_STOP_BUDGET: egpt_stop_reason = 3;
/// The context has no room for the next token.
pub const EGPT_STOP_CONTEXT_FULL: egpt_stop_reason = 4;
/// The callback returned nonzero.
pub const EGPT_STOP_CALLBACK: egpt_stop_reason = 5;

const fn stop_reason_to_c(r: StopReason) -> egpt_stop_reason {
    match r {
        StopReason::Eos => EGPT_STOP_EOS,
        StopReason::StopString => EGPT_STOP_STRING,
        StopReason::Budget => EGPT_STOP_BUDGET,
        StopReason::ContextFull => EGPT_STOP_CONTEXT_FULL,
        StopReason::Callback => EGPT_STOP_CALLBACK,
    }
}

/// Per-token callback of [`egpt_generate`]: receives each emitted token id and its
/// text (`bytes[0..len]`, not NUL-terminated, valid only during the call). The
/// text is UTF-8-complete: a character split across tokens is held back and given
/// with the token that completes it (so `len` may be 0). Return nonzero to stop.
pub type egpt_token_callback = Option<
    unsafe extern "C" fn(user: *mut c_void, token: u32, bytes: *const c_char, len: usize) -> c_int,
>;

/// Bytes for a `T` handle placed at the first aligned address of a buffer.
const fn handle_room<T>() -> usize {
    size_of::<T>() + align_of::<T>() - 1
}

/// Split the caller's arena into an aligned slot for a `T` handle and the rest.
///
/// # Safety
/// `arena` non-NULL, writable for `len` bytes and the caller's alone for as long as
/// the handle is used (the C contract of the `*_create` functions).
unsafe fn carve<T>(arena: *mut c_void, len: usize) -> Result<(*mut T, &'static mut [u8]), Error> {
    if len > isize::MAX as usize {
        return Err(Error::BadParameter);
    }
    // SAFETY: forwarded from the caller; len <= isize::MAX.
    let all: &'static mut [u8] =
        unsafe { core::slice::from_raw_parts_mut(arena.cast::<u8>(), len) };
    let pad = all.as_ptr().align_offset(align_of::<T>());
    if pad >= align_of::<T>() {
        return Err(Error::BadParameter);
    }
    let (head, tail) =
        all.split_at_mut_checked(handle_room::<T>())
            .ok_or(Error::ArenaTooSmall {
                needed: handle_room::<T>(),
                available: len,
            })?;
    let (_, slot) = head.split_at_mut_checked(pad).ok_or(Error::BadParameter)?;
    Ok((slot.as_mut_ptr().cast::<T>(), tail))
}

/// Input bytes `p[0..len]` (`p` may be NULL when `len == 0`).
///
/// # Safety
/// When `len > 0`, `p` must be NULL or readable for `len` bytes.
unsafe fn bytes_in<'a>(p: *const u8, len: usize) -> Result<&'a [u8], Error> {
    if len == 0 {
        return Ok(&[]);
    }
    non_null(&[p.cast()])?;
    if len > isize::MAX as usize {
        return Err(Error::BadParameter);
    }
    // SAFETY: non-NULL, readable for len <= isize::MAX bytes by the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts(p, len) })
}

/// Input tokens `p[0..n]` (`p` may be NULL when `n == 0`; misaligned: `BAD_PARAMETER`).
///
/// # Safety
/// When `n > 0`, `p` must be NULL or readable for `n` values.
unsafe fn tokens_in<'a>(p: *const u32, n: usize) -> Result<&'a [u32], Error> {
    if n == 0 {
        return Ok(&[]);
    }
    non_null(&[p.cast()])?;
    if n > isize::MAX as usize / size_of::<u32>() || !(p as usize).is_multiple_of(align_of::<u32>())
    {
        return Err(Error::BadParameter);
    }
    // SAFETY: non-NULL, aligned, readable for n values (size <= isize::MAX) by contract.
    Ok(unsafe { core::slice::from_raw_parts(p, n) })
}

/// Output buffer `p[0..n]` (`p` may be NULL when `n == 0`; misaligned: `BAD_PARAMETER`).
///
/// # Safety
/// When `n > 0`, `p` must be NULL or writable for `n` values, and not overlap
/// anything else the call reads.
unsafe fn buf_out<'a, T>(p: *mut T, n: usize) -> Result<&'a mut [T], Error> {
    if n == 0 {
        return Ok(&mut []);
    }
    non_null(&[p.cast_const().cast()])?;
    if n > isize::MAX as usize / size_of::<T>().max(1)
        || !(p as usize).is_multiple_of(align_of::<T>())
    {
        return Err(Error::BadParameter);
    }
    // SAFETY: non-NULL, aligned, writable for n values (size <= isize::MAX) by contract.
    Ok(unsafe { core::slice::from_raw_parts_mut(p, n) })
}

/// `BUFFER_TOO_SMALL` with the needed length reported through `n_out`.
///
/// # Safety
/// `n_out` non-NULL and writable.
unsafe fn too_small(n_out: *mut usize, needed: usize) -> Result<(), Error> {
    // SAFETY: forwarded from the caller.
    unsafe { put(n_out, needed) };
    Err(Error::BufferTooSmall)
}

// ---------------------------------------------------------------------------
// Tokenizer
// ---------------------------------------------------------------------------

/// A tokenizer (opaque): GPT-2 byte-level BPE over the GGUF file's vocabulary,
/// with its lookup indexes in the caller's arena (the handle at its start). It
/// borrows the GGUF bytes. [`egpt_tokenize`] uses scratch inside it: a tokenizer
/// belongs to one thread at a time (make one per thread to tokenize in parallel).
pub struct egpt_tokenizer {
    _opaque: [u8; 0],
}

/// What an `egpt_tokenizer *` points to. `repr(C)`, so the magic word is at offset
/// 0 for this and [`SamplerHandle`]: checking a pointer to another kind of handle
/// (or to a buffer of at least 4 bytes) never reads past its start.
#[repr(C)]
struct TokenizerHandle {
    magic: u32,
    tok: Tokenizer<'static, 'static>,
}

/// The magic word of a `repr(C)` handle (offset 0).
fn magic_at_start<T>(p: *const T) -> *const u32 {
    p.cast::<u32>()
}

/// # Safety
/// As [`model_ref`], for a tokenizer made by [`egpt_tokenizer_create`].
unsafe fn tokenizer_ref<'a>(p: *const egpt_tokenizer) -> Result<&'a TokenizerHandle, Error> {
    let p = p.cast::<TokenizerHandle>();
    // SAFETY: forwarded from the caller.
    unsafe { check_handle(p, magic_at_start, TOKENIZER_MAGIC)? };
    // SAFETY: non-NULL, aligned, holds a tokenizer written by `egpt_tokenizer_create`.
    Ok(unsafe { &*p })
}

/// # Safety
/// As [`tokenizer_ref`], and no other reference to the tokenizer may be live.
unsafe fn tokenizer_mut<'a>(p: *mut egpt_tokenizer) -> Result<&'a mut TokenizerHandle, Error> {
    let p = p.cast::<TokenizerHandle>();
    // SAFETY: forwarded from the caller.
    unsafe { check_handle(p.cast_const(), magic_at_start, TOKENIZER_MAGIC)? };
    // SAFETY: as in `tokenizer_ref`; exclusive by the caller's promise (one thread).
    Ok(unsafe { &mut *p })
}

fn tokenizer_size(g: &Gguf<'_>) -> Result<usize, Error> {
    Tokenizer::arena_size(g)?
        .checked_add(handle_room::<TokenizerHandle>())
        .ok_or(Error::BadParameter)
}

/// # Safety
/// `arena` non-NULL and writable for `arena_len` bytes, kept for the tokenizer's
/// life; `out` non-NULL and writable.
unsafe fn tokenizer_place(
    g: &Gguf<'static>,
    arena: *mut c_void,
    arena_len: usize,
    out: *mut *mut egpt_tokenizer,
) -> Result<(), Error> {
    let needed = tokenizer_size(g)?;
    if arena_len < needed {
        return Err(Error::ArenaTooSmall {
            needed,
            available: arena_len,
        });
    }
    // SAFETY: forwarded from the caller.
    let (h, tail) = unsafe { carve::<TokenizerHandle>(arena, arena_len)? };
    let tok = Tokenizer::new(g, tail)?;
    // SAFETY: `h` is aligned and writable for one handle, disjoint from `tail` (carve).
    unsafe {
        h.write(TokenizerHandle {
            magic: TOKENIZER_MAGIC,
            tok,
        });
        put(out, h.cast::<egpt_tokenizer>());
    }
    Ok(())
}

/// Exact arena bytes [`egpt_tokenizer_create`] needs for `model`'s vocabulary
/// (handle included, any alignment). Pure: touches no memory.
///
/// Errors: `NULL_POINTER`, `BAD_STATE` (not a model handle), `NO_TOKENIZER` (the
/// file has no tokenizer, or one embergpt does not run), `BAD_TOKENIZER`.
///
/// # Safety
/// `model` must come from [`egpt_model_open`] (or be NULL); `out_size` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_tokenizer_arena_size(
    model: *const egpt_model,
    out_size: *mut usize,
) -> egpt_status {
    status((|| {
        non_null(&[out_size.cast_const().cast()])?;
        // SAFETY: caller contract.
        let n = tokenizer_size(unsafe { model_ref(model)? }.model.gguf())?;
        // SAFETY: non-NULL, writable by contract.
        unsafe { put(out_size, n) };
        Ok(())
    })())
}

/// Build the tokenizer of `model` inside `arena[0..arena_len]` (at least
/// [`egpt_tokenizer_arena_size`] bytes, any alignment); `*out_tok` points into the
/// arena. The arena and the model's GGUF bytes must stay alive and unchanged while
/// the tokenizer is used; nothing to free.
///
/// Errors: `NULL_POINTER`, `BAD_STATE`, `NO_TOKENIZER`, `BAD_TOKENIZER`,
/// `ARENA_TOO_SMALL`.
///
/// # Safety
/// `model` from [`egpt_model_open`] (or NULL); `arena` writable for `arena_len`
/// bytes, not overlapping the model handle, its bytes or another handle; `out_tok` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_tokenizer_create(
    model: *const egpt_model,
    arena: *mut c_void,
    arena_len: usize,
    out_tok: *mut *mut egpt_tokenizer,
) -> egpt_status {
    status((|| {
        non_null(&[arena.cast_const(), out_tok.cast_const().cast()])?;
        // SAFETY: caller contract.
        let g = unsafe { model_ref(model)? }.model.gguf();
        // SAFETY: non-NULL pointers, caller contract.
        unsafe { tokenizer_place(g, arena, arena_len, out_tok) }
    })())
}

/// Parse GGUF `bytes[0..len]`.
///
/// # Safety
/// `bytes` readable for `len` bytes, alive and unchanged while anything made from it lives.
unsafe fn gguf_of(bytes: *const u8, len: usize) -> Result<Gguf<'static>, Error> {
    non_null(&[bytes.cast()])?;
    if len > isize::MAX as usize {
        return Err(Error::BadParameter);
    }
    // SAFETY: forwarded from the caller.
    Gguf::parse(unsafe { core::slice::from_raw_parts(bytes, len) })
}

/// As [`egpt_tokenizer_arena_size`], for a GGUF file given as bytes (a vocabulary-only
/// file works: no model needed). Adds the GGUF parse errors (`TRUNCATED`, ...).
///
/// # Safety
/// `bytes` readable for `len` bytes; `out_size` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_tokenizer_arena_size_gguf(
    bytes: *const u8,
    len: usize,
    out_size: *mut usize,
) -> egpt_status {
    status((|| {
        non_null(&[out_size.cast_const().cast()])?;
        // SAFETY: caller contract.
        let n = tokenizer_size(&unsafe { gguf_of(bytes, len)? })?;
        // SAFETY: non-NULL, writable by contract.
        unsafe { put(out_size, n) };
        Ok(())
    })())
}

/// As [`egpt_tokenizer_create`], for a GGUF file given as bytes, which must stay
/// alive and unchanged while the tokenizer is used.
///
/// # Safety
/// `bytes` readable for `len` bytes; `arena` writable for `arena_len` bytes and not
/// overlapping `bytes`; `out_tok` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_tokenizer_create_gguf(
    bytes: *const u8,
    len: usize,
    arena: *mut c_void,
    arena_len: usize,
    out_tok: *mut *mut egpt_tokenizer,
) -> egpt_status {
    status((|| {
        non_null(&[arena.cast_const(), out_tok.cast_const().cast()])?;
        // SAFETY: caller contract.
        let g = unsafe { gguf_of(bytes, len)? };
        // SAFETY: non-NULL pointers, caller contract.
        unsafe { tokenizer_place(&g, arena, arena_len, out_tok) }
    })())
}

/// What a tokenizer is. Set `struct_size = sizeof(egpt_tokenizer_info)` first.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct egpt_tokenizer_info {
    /// `sizeof(egpt_tokenizer_info)`, set by the caller.
    pub struct_size: usize,
    /// Tokens in the vocabulary.
    pub n_vocab: usize,
    /// BPE merges (0 for a SentencePiece vocabulary).
    pub n_merges: usize,
    /// Longest token text in bytes (`egpt_token_to_piece` never needs more).
    pub max_token_len: usize,
    /// Beginning-of-text token, or [`EGPT_NO_TOKEN`].
    pub bos: u32,
    /// End-of-text token, or [`EGPT_NO_TOKEN`].
    pub eos: u32,
}

/// Describe `tok` into `*out_info` (whose `struct_size` the caller sets).
///
/// Errors: `NULL_POINTER`, `BAD_STATE` (not a tokenizer handle), `BAD_STRUCT_SIZE`.
///
/// # Safety
/// `tok` from [`egpt_tokenizer_create`] (or NULL); `out_info` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_tokenizer_get_info(
    tok: *const egpt_tokenizer,
    out_info: *mut egpt_tokenizer_info,
) -> egpt_status {
    status((|| {
        non_null(&[out_info.cast_const().cast()])?;
        // SAFETY: caller contract.
        let t = &unsafe { tokenizer_ref(tok)? }.tok;
        // SAFETY: non-NULL; caller contract says readable.
        unsafe { check_struct_size(out_info.cast_const(), size_of::<egpt_tokenizer_info>())? };
        let info = egpt_tokenizer_info {
            struct_size: size_of::<egpt_tokenizer_info>(),
            n_vocab: t.n_vocab(),
            n_merges: t.n_merges(),
            max_token_len: t.max_token_len(),
            bos: t.bos().unwrap_or(EGPT_NO_TOKEN),
            eos: t.eos().unwrap_or(EGPT_NO_TOKEN),
        };
        // SAFETY: non-NULL, writable for the checked size.
        unsafe { put(out_info, info) };
        Ok(())
    })())
}

/// Whether a prompt should start with the BOS token (`egpt_tokenizer_info.bos`):
/// `*out` = 1 or 0. It is the vocabulary's `tokenizer.ggml.add_bos_token`, by default
/// 1 for SentencePiece (llama) vocabularies and 0 for GPT-2 ones, as llama.cpp and
/// `embergpt generate` do; [`egpt_tokenize`] never adds it.
///
/// Errors: `NULL_POINTER`, `BAD_STATE` (not a tokenizer handle).
///
/// # Safety
/// `tok` from [`egpt_tokenizer_create`] (or NULL); `out` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_tokenizer_add_bos(
    tok: *const egpt_tokenizer,
    out: *mut c_int,
) -> egpt_status {
    status((|| {
        non_null(&[out.cast_const().cast()])?;
        // SAFETY: caller contract.
        let t = &unsafe { tokenizer_ref(tok)? }.tok;
        // SAFETY: non-NULL, writable by contract.
        unsafe { put(out, c_int::from(t.add_bos())) };
        Ok(())
    })())
}

/// Tokenize `text[0..text_len]` (any bytes, no NUL needed) into `out[0..out_len]`;
/// `*n_out` = the number of ids. With `parse_special` nonzero the literal text of
/// control and user-defined tokens (e.g. `<|endoftext|>`) becomes their ids.
///
/// Invalid UTF-8 is defined behaviour: every byte that does not start a valid
/// UTF-8 sequence becomes its own single-byte token, so `egpt_detokenize` gives
/// the input back exactly. A GPT-2 vocabulary never gives more ids than bytes, so
/// `out_len >= text_len` always suffices (and then tokenizes in one pass); a
/// SentencePiece (llama) one can give more (a prefix space; byte fallback), up to
/// `7 * text_len + 3`.
///
/// Errors: `NULL_POINTER` (`tok`, `n_out`, or a NULL buffer with nonzero length),
/// `BAD_STATE` (not a tokenizer handle), `BAD_PARAMETER` (misaligned `out`),
/// `BUFFER_TOO_SMALL` (nothing written to `out`; `*n_out` = ids needed: pass
/// `out = NULL, out_len = 0` to count).
///
/// # Safety
/// `tok` from [`egpt_tokenizer_create`] (or NULL), not used by another thread
/// during the call; `text` readable for `text_len` bytes; `out` writable for
/// `out_len` values and not overlapping `text`; `n_out` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_tokenize(
    tok: *mut egpt_tokenizer,
    text: *const c_char,
    text_len: usize,
    parse_special: c_int,
    out: *mut u32,
    out_len: usize,
    n_out: *mut usize,
) -> egpt_status {
    status((|| {
        non_null(&[n_out.cast_const().cast()])?;
        // SAFETY: caller contract.
        let t = &mut unsafe { tokenizer_mut(tok)? }.tok;
        // SAFETY: caller contract.
        let text = unsafe { bytes_in(text.cast(), text_len)? };
        // SAFETY: caller contract.
        let out = unsafe { buf_out(out, out_len)? };
        let special = parse_special != 0;
        if out.len() < t.max_ids(text.len()) {
            let needed = t.count(text, special);
            if needed > out.len() {
                // SAFETY: non-NULL, writable by contract.
                return unsafe { too_small(n_out, needed) };
            }
        }
        let n = match t.encode(text, special, out) {
            Ok(n) => n,
            // Unreachable (`out` holds `max_ids` ids); keep the documented contract anyway.
            Err(Error::BufferTooSmall) => {
                let needed = t.count(text, special);
                // SAFETY: non-NULL, writable by contract.
                return unsafe { too_small(n_out, needed) };
            }
            Err(e) => return Err(e),
        };
        // SAFETY: non-NULL, writable by contract.
        unsafe { put(n_out, n) };
        Ok(())
    })())
}

/// The text of one token (its bytes; a control token gives its literal text, e.g.
/// `<|endoftext|>`) into `buf[0..buf_len]`, not NUL-terminated; `*n_out` = bytes
/// written. A token may be part of a UTF-8 character: see [`egpt_stream_decoder_push`].
///
/// Errors: `NULL_POINTER`, `BAD_STATE`, `TOKEN_OUT_OF_RANGE`, `BUFFER_TOO_SMALL`
/// (nothing written; `*n_out` = bytes needed, at most `max_token_len`).
///
/// # Safety
/// `tok` from [`egpt_tokenizer_create`] (or NULL); `buf` writable for `buf_len`
/// bytes; `n_out` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_token_to_piece(
    tok: *const egpt_tokenizer,
    token: u32,
    buf: *mut c_char,
    buf_len: usize,
    n_out: *mut usize,
) -> egpt_status {
    status((|| {
        non_null(&[n_out.cast_const().cast()])?;
        // SAFETY: caller contract.
        let t = &unsafe { tokenizer_ref(tok)? }.tok;
        // SAFETY: caller contract.
        let out = unsafe { buf_out(buf.cast::<u8>(), buf_len)? };
        let needed = t.token_len(token)?;
        if out.len() < needed {
            // SAFETY: non-NULL, writable by contract.
            return unsafe { too_small(n_out, needed) };
        }
        let n = t.token_bytes(token, out)?;
        // SAFETY: non-NULL, writable by contract.
        unsafe { put(n_out, n) };
        Ok(())
    })())
}

/// The text of `tokens[0..n_tokens]` into `buf[0..buf_len]`, not NUL-terminated;
/// `*n_out` = bytes written. With `skip_special` nonzero, control and
/// user-defined tokens give nothing. A SentencePiece (llama) vocabulary drops
/// the leading space of the first token, as llama.cpp's `llama_detokenize`.
///
/// Errors: `NULL_POINTER`, `BAD_STATE`, `BAD_PARAMETER` (misaligned `tokens`),
/// `TOKEN_OUT_OF_RANGE`, `BUFFER_TOO_SMALL` (nothing written; `*n_out` = bytes
/// needed: pass `buf = NULL, buf_len = 0` to measure).
///
/// # Safety
/// `tok` from [`egpt_tokenizer_create`] (or NULL); `tokens` readable for
/// `n_tokens` values; `buf` writable for `buf_len` bytes; `n_out` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_detokenize(
    tok: *const egpt_tokenizer,
    tokens: *const u32,
    n_tokens: usize,
    skip_special: c_int,
    buf: *mut c_char,
    buf_len: usize,
    n_out: *mut usize,
) -> egpt_status {
    status((|| {
        non_null(&[n_out.cast_const().cast()])?;
        // SAFETY: caller contract.
        let t = &unsafe { tokenizer_ref(tok)? }.tok;
        // SAFETY: caller contract.
        let ids = unsafe { tokens_in(tokens, n_tokens)? };
        // SAFETY: caller contract.
        let out = unsafe { buf_out(buf.cast::<u8>(), buf_len)? };
        let skip = skip_special != 0;
        let needed = t.decode_len(ids, skip)?;
        if out.len() < needed {
            // SAFETY: non-NULL, writable by contract.
            return unsafe { too_small(n_out, needed) };
        }
        let n = t.decode(ids, skip, out)?;
        // SAFETY: non-NULL, writable by contract.
        unsafe { put(n_out, n) };
        Ok(())
    })())
}

// ---------------------------------------------------------------------------
// Streaming decoder
// ---------------------------------------------------------------------------

/// UTF-8-safe streaming detokenization state, in caller memory (a plain struct:
/// stack, static or inside your own struct). Its fields are private: initialise
/// it with [`egpt_stream_decoder_init`]. It holds back (at most 3 bytes of) an
/// incomplete UTF-8 character at the end of a token until the next token
/// completes it, so printed text never shows a broken character; concatenating
/// every push and the final flush gives exactly [`egpt_detokenize`]'s bytes
/// (except the leading space a SentencePiece vocabulary drops there: the stream
/// continues a text, e.g. generation after a prompt).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct egpt_stream_decoder {
    /// Private.
    pub magic: u32,
    /// Private: the held-back bytes.
    pub held: [u8; 3],
    /// Private: how many bytes are held.
    pub n_held: u8,
}

/// Bytes of `held` followed by one token's bytes, as a [`Detokenize`] for
/// [`StreamDecoder`] (which then sees one token of the concatenation).
struct Prefixed<'a, D: ?Sized> {
    held: &'a [u8],
    tok: &'a D,
}

impl<D: Detokenize + ?Sized> Detokenize for Prefixed<'_, D> {
    fn token_bytes(&self, id: u32, out: &mut [u8]) -> Result<usize, Error> {
        let h = self.held.len();
        out.get_mut(..h)
            .ok_or(Error::BufferTooSmall)?
            .copy_from_slice(self.held);
        let rest = out.get_mut(h..).ok_or(Error::BufferTooSmall)?;
        Ok(h + self.tok.token_bytes(id, rest)?)
    }
    fn eos(&self) -> Option<u32> {
        None
    }
}

/// One piece of text as a [`Detokenize`] (whatever the id).
struct Text<'a>(&'a [u8]);

impl Detokenize for Text<'_> {
    fn token_bytes(&self, _id: u32, out: &mut [u8]) -> Result<usize, Error> {
        out.get_mut(..self.0.len())
            .ok_or(Error::BufferTooSmall)?
            .copy_from_slice(self.0);
        Ok(self.0.len())
    }
    fn eos(&self) -> Option<u32> {
        None
    }
}

/// # Safety
/// `d` non-NULL and readable for one `egpt_stream_decoder` (any alignment).
unsafe fn stream_read(d: *const egpt_stream_decoder) -> Result<egpt_stream_decoder, Error> {
    // SAFETY: forwarded; every field accepts any bit pattern.
    let s = unsafe { ptr::read_unaligned(d) };
    if s.magic != STREAM_MAGIC || s.n_held > 3 {
        return Err(Error::BadState);
    }
    Ok(s)
}

/// Put `*decoder` in its initial state (nothing held).
///
/// Errors: `NULL_POINTER`.
///
/// # Safety
/// `decoder` writable for one `egpt_stream_decoder`.
#[no_mangle]
pub unsafe extern "C" fn egpt_stream_decoder_init(
    decoder: *mut egpt_stream_decoder,
) -> egpt_status {
    status((|| {
        non_null(&[decoder.cast_const().cast()])?;
        let s = egpt_stream_decoder {
            magic: STREAM_MAGIC,
            held: [0; 3],
            n_held: 0,
        };
        // SAFETY: non-NULL, writable by contract.
        unsafe { put(decoder, s) };
        Ok(())
    })())
}

/// Decode `token` and write the bytes that are ready (whole UTF-8 characters for
/// UTF-8 text; an invalid sequence is released as it is) into `buf[0..buf_len]`;
/// `*n_out` = bytes written (0 while a character is incomplete). `3 +
/// max_token_len` bytes always suffice.
///
/// Errors: `NULL_POINTER`, `BAD_STATE` (decoder not initialised, or not a
/// tokenizer handle), `TOKEN_OUT_OF_RANGE`, `BUFFER_TOO_SMALL` (`*n_out` = bytes
/// needed). On error the decoder is unchanged.
///
/// # Safety
/// `decoder` readable and writable; `tok` from [`egpt_tokenizer_create`] (or
/// NULL); `buf` writable for `buf_len` bytes; `n_out` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_stream_decoder_push(
    decoder: *mut egpt_stream_decoder,
    tok: *const egpt_tokenizer,
    token: u32,
    buf: *mut c_char,
    buf_len: usize,
    n_out: *mut usize,
) -> egpt_status {
    status((|| {
        non_null(&[decoder.cast_const().cast(), n_out.cast_const().cast()])?;
        // SAFETY: non-NULL, readable by contract.
        let mut s = unsafe { stream_read(decoder)? };
        // SAFETY: caller contract.
        let t = &unsafe { tokenizer_ref(tok)? }.tok;
        // SAFETY: caller contract.
        let out = unsafe { buf_out(buf.cast::<u8>(), buf_len)? };
        let held = s.held.get(..s.n_held as usize).ok_or(Error::BadState)?;
        let needed = held.len() + t.token_len(token)?;
        if out.len() < needed {
            // SAFETY: non-NULL, writable by contract.
            return unsafe { too_small(n_out, needed) };
        }
        let mut d = StreamDecoder::new();
        let n = d.push(&Prefixed { held, tok: t }, token, out)?;
        let h = d.held();
        s.held = [0; 3];
        s.held
            .get_mut(..h.len())
            .ok_or(Error::BadState)?
            .copy_from_slice(h);
        s.n_held = h.len() as u8;
        // SAFETY: non-NULL, writable by contract.
        unsafe {
            put(decoder, s);
            put(n_out, n);
        }
        Ok(())
    })())
}

/// Release whatever is held (an incomplete character at the end of the stream)
/// into `buf[0..buf_len]` as it is, and return to the initial state; `*n_out` =
/// bytes written (0 to 3).
///
/// Errors: `NULL_POINTER`, `BAD_STATE` (not initialised), `BUFFER_TOO_SMALL`
/// (`*n_out` = bytes needed; the decoder is unchanged).
///
/// # Safety
/// `decoder` readable and writable; `buf` writable for `buf_len` bytes; `n_out` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_stream_decoder_flush(
    decoder: *mut egpt_stream_decoder,
    buf: *mut c_char,
    buf_len: usize,
    n_out: *mut usize,
) -> egpt_status {
    status((|| {
        non_null(&[decoder.cast_const().cast(), n_out.cast_const().cast()])?;
        // SAFETY: non-NULL, readable by contract.
        let s = unsafe { stream_read(decoder)? };
        // SAFETY: caller contract.
        let out = unsafe { buf_out(buf.cast::<u8>(), buf_len)? };
        let held = s.held.get(..s.n_held as usize).ok_or(Error::BadState)?;
        if out.len() < held.len() {
            // SAFETY: non-NULL, writable by contract.
            return unsafe { too_small(n_out, held.len()) };
        }
        out.get_mut(..held.len())
            .ok_or(Error::BufferTooSmall)?
            .copy_from_slice(held);
        // SAFETY: non-NULL, writable by contract.
        unsafe {
            put(n_out, held.len());
            egpt_stream_decoder_init(decoder);
        }
        Ok(())
    })())
}

// ---------------------------------------------------------------------------
// Sampler
// ---------------------------------------------------------------------------

/// How tokens are sampled. Start from [`egpt_sampler_default_params`] (or
/// [`egpt_sampler_greedy_params`]); fields may be appended in later ABI versions.
/// The chain: penalties, top-k, top-p, min-p, temperature, draw (see the Rust
/// `embergpt::sampler` documentation); deterministic for a given seed.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct egpt_sampler_params {
    /// `sizeof(egpt_sampler_params)`, set by the default functions.
    pub struct_size: usize,
    /// 0 is greedy (argmax, ties to the lowest id); otherwise finite and > 0.
    pub temperature: f32,
    /// Keep the `top_k` best tokens; 0 disables.
    pub top_k: usize,
    /// Nucleus mass in (0, 1]; 1 disables.
    pub top_p: f32,
    /// Keep tokens with probability >= `min_p` times the best one's, in [0, 1]; 0 disables.
    pub min_p: f32,
    /// Repetition penalty, finite and > 0; 1 disables.
    pub repeat_penalty: f32,
    /// Subtracted once from each distinct token in the window; finite; 0 disables.
    pub presence_penalty: f32,
    /// Subtracted once per occurrence in the window; finite; 0 disables.
    pub frequency_penalty: f32,
    /// Penalty window in tokens (prompt and generated; the arena holds this many); 0 disables.
    pub penalty_last_n: usize,
    /// PRNG seed (PCG32).
    pub seed: u64,
}

fn sampler_params_to_c(p: &SamplerParams) -> egpt_sampler_params {
    egpt_sampler_params {
        struct_size: size_of::<egpt_sampler_params>(),
        temperature: p.temperature,
        top_k: p.top_k,
        top_p: p.top_p,
        min_p: p.min_p,
        repeat_penalty: p.repeat_penalty,
        presence_penalty: p.presence_penalty,
        frequency_penalty: p.frequency_penalty,
        penalty_last_n: p.penalty_last_n,
        seed: p.seed,
    }
}

/// The default chain (llama.cpp's): temperature 0.8, top_k 40, top_p 0.95, min_p
/// 0.05, no penalties (window 64), seed 0; `struct_size` set.
#[no_mangle]
pub extern "C" fn egpt_sampler_default_params() -> egpt_sampler_params {
    sampler_params_to_c(&SamplerParams::default())
}

/// Plain argmax: temperature 0, every filter and penalty off; `struct_size` set.
#[no_mangle]
pub extern "C" fn egpt_sampler_greedy_params() -> egpt_sampler_params {
    sampler_params_to_c(&SamplerParams::greedy())
}

/// # Safety
/// As [`read_params`].
unsafe fn read_sampler_params(p: *const egpt_sampler_params) -> Result<SamplerParams, Error> {
    non_null(&[p.cast()])?;
    // SAFETY: non-NULL, readable by the caller's contract.
    unsafe { check_struct_size(p, size_of::<egpt_sampler_params>())? };
    // SAFETY: the caller's struct has our size; every field accepts any bits.
    let c = unsafe { ptr::read_unaligned(p) };
    let r = SamplerParams {
        temperature: c.temperature,
        top_k: c.top_k,
        top_p: c.top_p,
        min_p: c.min_p,
        repeat_penalty: c.repeat_penalty,
        presence_penalty: c.presence_penalty,
        frequency_penalty: c.frequency_penalty,
        penalty_last_n: c.penalty_last_n,
        seed: c.seed,
    };
    r.validate()?;
    Ok(r)
}

/// A sampler (opaque): parameters, PRNG, penalty window, scratch; at the start of
/// the caller's arena. One thread at a time.
pub struct egpt_sampler {
    _opaque: [u8; 0],
}

/// What an `egpt_sampler *` points to (`repr(C)`: magic word at offset 0).
#[repr(C)]
struct SamplerHandle {
    magic: u32,
    sampler: Sampler<'static>,
}

/// # Safety
/// As [`context_mut`], for a sampler made by [`egpt_sampler_create`].
unsafe fn sampler_mut<'a>(p: *mut egpt_sampler) -> Result<&'a mut SamplerHandle, Error> {
    let p = p.cast::<SamplerHandle>();
    // SAFETY: forwarded from the caller.
    unsafe { check_handle(p.cast_const(), magic_at_start, SAMPLER_MAGIC)? };
    // SAFETY: non-NULL, aligned, holds a sampler; exclusive by the caller's promise.
    Ok(unsafe { &mut *p })
}

fn sampler_size(n_vocab: usize, p: &SamplerParams) -> Result<usize, Error> {
    Sampler::arena_size(n_vocab, p)?
        .checked_add(handle_room::<SamplerHandle>())
        .ok_or(Error::BadParameter)
}

/// Exact arena bytes [`egpt_sampler_create`] needs for `model`'s vocabulary and
/// `params` (about `8 * n_vocab + 4 * penalty_last_n`, handle included).
///
/// Errors: `NULL_POINTER`, `BAD_STATE` (not a model handle), `BAD_STRUCT_SIZE`,
/// `BAD_PARAMETER` (a field out of its documented range, or a size overflow).
///
/// # Safety
/// `model` from [`egpt_model_open`] (or NULL); `params` readable; `out_size` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_sampler_arena_size(
    model: *const egpt_model,
    params: *const egpt_sampler_params,
    out_size: *mut usize,
) -> egpt_status {
    status((|| {
        non_null(&[out_size.cast_const().cast()])?;
        // SAFETY: caller contract.
        let n_vocab = unsafe { model_ref(model)? }.model.hparams().n_vocab;
        // SAFETY: caller contract.
        let p = unsafe { read_sampler_params(params)? };
        let n = sampler_size(n_vocab, &p)?;
        // SAFETY: non-NULL, writable by contract.
        unsafe { put(out_size, n) };
        Ok(())
    })())
}

/// Create a sampler for `model`'s vocabulary inside `arena[0..arena_len]` (at
/// least [`egpt_sampler_arena_size`] bytes, any alignment); `*out_sampler` points
/// into the arena. Nothing to free.
///
/// Errors: as [`egpt_sampler_arena_size`], plus `ARENA_TOO_SMALL`.
///
/// # Safety
/// `model` from [`egpt_model_open`] (or NULL); `params` readable; `arena` writable
/// for `arena_len` bytes and not overlapping other handles; `out_sampler` writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_sampler_create(
    model: *const egpt_model,
    params: *const egpt_sampler_params,
    arena: *mut c_void,
    arena_len: usize,
    out_sampler: *mut *mut egpt_sampler,
) -> egpt_status {
    status((|| {
        non_null(&[arena.cast_const(), out_sampler.cast_const().cast()])?;
        // SAFETY: caller contract.
        let n_vocab = unsafe { model_ref(model)? }.model.hparams().n_vocab;
        // SAFETY: caller contract.
        let p = unsafe { read_sampler_params(params)? };
        let needed = sampler_size(n_vocab, &p)?;
        if arena_len < needed {
            return Err(Error::ArenaTooSmall {
                needed,
                available: arena_len,
            });
        }
        // SAFETY: non-NULL, writable for arena_len bytes, the caller's (contract).
        let (h, tail) = unsafe { carve::<SamplerHandle>(arena, arena_len)? };
        let sampler = Sampler::new(n_vocab, &p, tail)?;
        // SAFETY: `h` aligned, writable for one handle, disjoint from `tail`.
        unsafe {
            h.write(SamplerHandle {
                magic: SAMPLER_MAGIC,
                sampler,
            });
            put(out_sampler, h.cast::<egpt_sampler>());
        }
        Ok(())
    })())
}

/// Forget the accepted tokens and re-seed: the state [`egpt_sampler_create`] left.
/// Call it before a generation that should not continue the previous one.
///
/// Errors: `NULL_POINTER`, `BAD_STATE`.
///
/// # Safety
/// `sampler` from [`egpt_sampler_create`] (or NULL), not used by another thread.
#[no_mangle]
pub unsafe extern "C" fn egpt_sampler_reset(sampler: *mut egpt_sampler) -> egpt_status {
    status((|| {
        // SAFETY: caller contract.
        unsafe { sampler_mut(sampler)? }.sampler.reset();
        Ok(())
    })())
}

/// Sample a token from `logits[0..n_logits]` (`n_logits` must be the model's
/// `n_vocab`), e.g. [`egpt_context_logits`]'s. Does not accept it: call
/// [`egpt_sampler_accept`] for the penalty window once the token is part of the text.
///
/// Errors: `NULL_POINTER`, `BAD_STATE`, `BAD_PARAMETER` (`n_logits != n_vocab`,
/// misaligned `logits`), `NO_CANDIDATES` (no finite logit).
///
/// # Safety
/// `sampler` as in [`egpt_sampler_reset`]; `logits` readable for `n_logits` floats
/// and not inside the sampler's own arena (a context's logits are fine); `out_token`
/// writable.
#[no_mangle]
pub unsafe extern "C" fn egpt_sampler_sample(
    sampler: *mut egpt_sampler,
    logits: *const f32,
    n_logits: usize,
    out_token: *mut u32,
) -> egpt_status {
    status((|| {
        non_null(&[logits.cast(), out_token.cast_const().cast()])?;
        // SAFETY: caller contract.
        let s = &mut unsafe { sampler_mut(sampler)? }.sampler;
        if n_logits != s.n_vocab() || !(logits as usize).is_multiple_of(align_of::<f32>()) {
            return Err(Error::BadParameter);
        }
        // SAFETY: non-NULL, aligned, readable for n_logits = n_vocab floats (a size
        // the sampler's own arena holds, so <= isize::MAX).
        let l = unsafe { core::slice::from_raw_parts(logits, n_logits) };
        let t = s.sample(l)?;
        // SAFETY: non-NULL, writable by contract.
        unsafe { put(out_token, t) };
        Ok(())
    })())
}

/// Record `token` as part of the text (prompt or generated) for the penalties.
///
/// Errors: `NULL_POINTER`, `BAD_STATE`.
///
/// # Safety
/// As [`egpt_sampler_reset`].
#[no_mangle]
pub unsafe extern "C" fn egpt_sampler_accept(
    sampler: *mut egpt_sampler,
    token: u32,
) -> egpt_status {
    status((|| {
        // SAFETY: caller contract.
        unsafe { sampler_mut(sampler)? }.sampler.accept(token);
        Ok(())
    })())
}

// ---------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------

/// What [`egpt_generate`] generates. Start from [`egpt_generate_default_params`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct egpt_generate_params {
    /// `sizeof(egpt_generate_params)`, set by [`egpt_generate_default_params`].
    pub struct_size: usize,
    /// Most tokens to sample (EOS and stop-string tokens count); 0: no limit (until
    /// EOS, a stop string or a full context).
    pub max_tokens: usize,
    /// `n_stop` stop strings (bytes, no NUL needed), the k-th
    /// `stop_strings[k][0..stop_lens[k]]`, 1 to [`EGPT_MAX_STOP_LEN`] bytes each;
    /// matched on the generated text (across tokens), never on the prompt. Copied
    /// during the call. NULL when `n_stop == 0`.
    pub stop_strings: *const *const c_char,
    /// Lengths of the stop strings.
    pub stop_lens: *const usize,
    /// Number of stop strings, at most [`EGPT_MAX_STOPS`].
    pub n_stop: usize,
    /// Nonzero (default): stop at the tokenizer's end-of-text token; zero: EOS is an
    /// ordinary token.
    pub stop_at_eos: i32,
}

/// No limit, no stop strings, stop at EOS; `struct_size` set.
#[no_mangle]
pub extern "C" fn egpt_generate_default_params() -> egpt_generate_params {
    egpt_generate_params {
        struct_size: size_of::<egpt_generate_params>(),
        max_tokens: 0,
        stop_strings: ptr::null(),
        stop_lens: ptr::null(),
        n_stop: 0,
        stop_at_eos: 1,
    }
}

/// How [`egpt_generate`] ended. Set `struct_size = sizeof(egpt_generate_result)`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct egpt_generate_result {
    /// `sizeof(egpt_generate_result)`, set by the caller.
    pub struct_size: usize,
    /// An `EGPT_STOP_*` value.
    pub stop_reason: egpt_stop_reason,
    /// For [`EGPT_STOP_STRING`], the index of the stop string that matched; else -1.
    pub stop_index: i32,
    /// Tokens sampled (emitted or not: EOS and stop-string tokens count).
    pub n_sampled: usize,
    /// Tokens given to the callback (the final held-bytes call not counted).
    pub n_emitted: usize,
    /// The last sampled token, which is not in the context (evaluation is lazy, so
    /// a stop never pays for a forward pass), or [`EGPT_NO_TOKEN`]. To continue the
    /// text after it, evaluate it first: `egpt_context_eval(ctx, &r.unevaluated, 1)`
    /// (it is already in the sampler's penalty window).
    pub unevaluated: u32,
}

/// Restores a handle's magic word when dropped (the end of [`egpt_generate`]).
struct Busy(*mut u32, u32);

impl Busy {
    /// # Safety
    /// `m` points to the (valid, aligned) magic word of a live handle.
    unsafe fn mark(m: *mut u32, live: u32) -> Busy {
        // SAFETY: forwarded from the caller.
        unsafe { ptr::write_volatile(m, BUSY_MAGIC) };
        Busy(m, live)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        // SAFETY: `Busy::mark`'s contract; the handle outlives the guard (one call).
        unsafe { ptr::write_volatile(self.0, self.1) };
    }
}

/// Generate text: evaluate `prompt[0..n_prompt]` after the tokens already in `ctx`
/// (accepting them into the sampler's window), then sample, emit and evaluate
/// tokens until EOS, a stop string, `max_tokens`, a full context or the callback
/// says stop. `cb(user, token, bytes, len)` gets every emitted token with its
/// UTF-8-complete text (see [`egpt_token_callback`]); return nonzero to stop. If
/// generation ends in the middle of a character (EOS, budget, stop string or full
/// context after a partial character), a last call with token [`EGPT_NO_TOKEN`]
/// gives the held bytes (its return value is ignored). `cb` may be NULL.
///
/// `n_prompt == 0` continues from the context's current logits. The sampler is not
/// reset ([`egpt_sampler_reset`] first for a fresh start). Stop strings: tokens
/// that might begin one are held back until they cannot; on a match the text
/// before it is emitted and nothing after.
///
/// While it runs, the context and the sampler are busy: any call on them from the
/// callback returns `BAD_STATE` (other functions, including the tokenizer's,
/// work). Memory: nothing is allocated; the loop state (held-back tokens, copied
/// stop strings) is about 2.5 KB of stack.
///
/// Errors (`*out` untouched; tokens may already have been given to the callback):
/// `NULL_POINTER` (ctx, tok, sampler, params, out, a stop string, or a NULL array
/// with nonzero length), `BAD_STATE` (a handle of the wrong kind, or busy),
/// `BAD_STRUCT_SIZE` (params or out), `BAD_PARAMETER` (more than
/// [`EGPT_MAX_STOPS`] stop strings, one empty or longer than [`EGPT_MAX_STOP_LEN`],
/// a sampler made for another vocabulary size, a misaligned prompt),
/// `CONTEXT_FULL` (the prompt does not fit), `TOKEN_OUT_OF_RANGE`, `NO_LOGITS`
/// (`n_prompt == 0` with nothing evaluated), `NO_CANDIDATES`, and tokenizer errors.
/// On a parameter or prompt error nothing is evaluated; the handles stay usable
/// after any error (the context holds exactly the tokens it evaluated).
///
/// # Safety
/// Handles from their `*_create` functions (or NULL), not used by other threads
/// during the call; `prompt` readable for `n_prompt` values; `params` readable and
/// its stop strings readable for their lengths; `out` writable; `cb` safe to call
/// with `user`.
#[no_mangle]
pub unsafe extern "C" fn egpt_generate(
    ctx: *mut egpt_context,
    tok: *const egpt_tokenizer,
    sampler: *mut egpt_sampler,
    prompt: *const u32,
    n_prompt: usize,
    params: *const egpt_generate_params,
    cb: egpt_token_callback,
    user: *mut c_void,
    out: *mut egpt_generate_result,
) -> egpt_status {
    status((|| {
        non_null(&[params.cast(), out.cast_const().cast()])?;
        // Check the handles (their kinds and that none is busy) before touching them.
        // SAFETY: caller contract.
        unsafe {
            context_ref(ctx)?;
            tokenizer_ref(tok)?;
            check_handle(
                sampler.cast_const().cast::<SamplerHandle>(),
                magic_at_start,
                SAMPLER_MAGIC,
            )?;
            check_struct_size(params, size_of::<egpt_generate_params>())?;
            check_struct_size(out.cast_const(), size_of::<egpt_generate_result>())?;
        }
        // SAFETY: size checked; every field accepts any bits.
        let p = unsafe { ptr::read_unaligned(params) };
        if p.n_stop > EGPT_MAX_STOPS {
            return Err(Error::BadParameter);
        }
        let mut stops: [&[u8]; EGPT_MAX_STOPS] = [&[]; EGPT_MAX_STOPS];
        if p.n_stop > 0 {
            non_null(&[p.stop_strings.cast(), p.stop_lens.cast()])?;
            for (k, dst) in stops.iter_mut().take(p.n_stop).enumerate() {
                // SAFETY: the arrays hold n_stop (<= 8) entries by contract; unaligned-safe.
                let (s, len) = unsafe {
                    (
                        ptr::read_unaligned(p.stop_strings.add(k)),
                        ptr::read_unaligned(p.stop_lens.add(k)),
                    )
                };
                non_null(&[s.cast()])?;
                if len == 0 || len > EGPT_MAX_STOP_LEN {
                    return Err(Error::BadParameter);
                }
                // SAFETY: non-NULL, readable for len (<= 64) bytes by contract.
                *dst = unsafe { core::slice::from_raw_parts(s.cast::<u8>(), len) };
            }
        }
        let gp = GenerateParams {
            max_tokens: (p.max_tokens != 0).then_some(p.max_tokens),
            stop: stops.get(..p.n_stop).ok_or(Error::BadParameter)?,
            stop_at_eos: p.stop_at_eos != 0,
        };
        let prompt = {
            // SAFETY: checked above; no other reference is live.
            let c = &unsafe { context_ref(ctx)? }.ctx;
            if n_prompt > c.n_ctx().saturating_sub(c.n_past()) {
                return Err(Error::ContextFull);
            }
            // SAFETY: caller contract; n_prompt bounded by n_ctx.
            unsafe { tokens_in(prompt, n_prompt)? }
        };
        // From here on, borrows of the handles are re-made for each step and never
        // held across a callback; the busy marks make reentrant calls fail cleanly.
        let ctx_magic = context_magic(ctx).cast_mut();
        let s_magic = sampler.cast::<u32>();
        let (tokp, sp) = (
            tok.cast::<TokenizerHandle>(),
            sampler.cast::<SamplerHandle>(),
        );
        // SAFETY: both checked live handles (aligned magic words in caller memory).
        let (_busy_c, _busy_s) = unsafe {
            (
                Busy::mark(ctx_magic, CONTEXT_MAGIC),
                Busy::mark(s_magic, SAMPLER_MAGIC),
            )
        };
        let mut st = {
            // SAFETY: live handles (checked), exclusive for the call by contract.
            let (c, s, t) = unsafe { (&mut (*ctx).ctx, &mut (*sp).sampler, &(*tokp).tok) };
            GenState::new(c, s, t, prompt, &gp)?
        };
        let mut dec = StreamDecoder::new();
        let mut buf = [0u8; EGPT_MAX_TOKEN_BYTES + 3];
        loop {
            let (id, n) = {
                // SAFETY: as above; these borrows end before the callback runs.
                let (c, s, t) = unsafe { (&mut (*ctx).ctx, &mut (*sp).sampler, &(*tokp).tok) };
                match st.next(c, s, t) {
                    None => break,
                    Some(Err(e)) => return Err(e),
                    Some(Ok(token)) => (token.id, dec.push(&Text(token.text), token.id, &mut buf)?),
                }
            };
            if let Some(f) = cb {
                // SAFETY: `buf[..n]` is initialised; the callback's contract is the caller's.
                if unsafe { f(user, id, buf.as_ptr().cast(), n) } != 0 {
                    st.cancel();
                    break;
                }
            }
        }
        let o = st.outcome().ok_or(Error::BadState)?;
        if o.reason != StopReason::Callback && !dec.held().is_empty() {
            let n = dec.flush(&mut buf)?;
            if let Some(f) = cb {
                // SAFETY: as above; the return value is ignored (generation has ended).
                let _ = unsafe { f(user, EGPT_NO_TOKEN, buf.as_ptr().cast(), n) };
            }
        }
        let r = egpt_generate_result {
            struct_size: size_of::<egpt_generate_result>(),
            stop_reason: stop_reason_to_c(o.reason),
            stop_index: o
                .stop_index
                .and_then(|k| i32::try_from(k).ok())
                .unwrap_or(-1),
            n_sampled: o.n_sampled,
            n_emitted: o.n_emitted,
            unevaluated: o.unevaluated.unwrap_or(EGPT_NO_TOKEN),
        };
        // SAFETY: non-NULL, writable for the checked size.
        unsafe { put(out, r) };
        Ok(())
    })())
}

// ===========================================================================
// Panic handler for bare-metal C builds
// ===========================================================================

#[cfg(all(feature = "panic-handler", target_os = "none"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    extern "C" {
        /// C's `abort` (newlib/picolibc provide it; a bare firmware defines one).
        fn abort() -> !;
    }
    // SAFETY: `abort` takes no arguments and does not return; the firmware's
    // definition is the observable end of a (never expected) panic.
    unsafe { abort() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_strings_match_error_messages() {
        for e in ERRORS {
            // SAFETY: egpt_status_str returns a static NUL-terminated string.
            let s = unsafe { CStr::from_ptr(egpt_status_str(e.code())) };
            assert_eq!(s.to_str().unwrap(), e.message());
        }
        // SAFETY: as above.
        let ok = unsafe { CStr::from_ptr(egpt_status_str(EGPT_OK)) };
        assert_eq!(ok.to_str().unwrap(), "success");
        for code in [17u32, 29, 38, 999, u32::MAX] {
            // SAFETY: as above.
            let s = unsafe { CStr::from_ptr(egpt_status_str(code)) };
            assert_eq!(s.to_str().unwrap(), "unknown status", "code {code}");
        }
    }

    #[test]
    fn static_names_match_rust_names() {
        for &b in Backend::ALL {
            assert_eq!(backend_c_name(b).to_str().unwrap(), b.name());
            // SAFETY: static NUL-terminated string.
            let s = unsafe { CStr::from_ptr(egpt_backend_name(backend_to_c(b))) };
            assert_eq!(s.to_str().unwrap(), b.name());
        }
        for id in 0..64u32 {
            if let Ok(t) = GgmlType::from_u32(id) {
                assert_eq!(type_c_name(t).to_str().unwrap(), t.name());
            }
        }
    }

    /// A host hook that runs the tasks in reverse order on the calling thread, and
    /// one that runs them on scoped std threads: logits must not change at all.
    unsafe extern "C" fn reverse_hook(
        user: *mut c_void,
        n: usize,
        task: egpt_task_fn,
        task_ctx: *mut c_void,
    ) {
        // SAFETY: `user` is the counter the test passed.
        unsafe { *(user as *mut usize) += n };
        if let Some(t) = task {
            for i in (0..n).rev() {
                // SAFETY: the library's task with its own context, each index once.
                unsafe { t(task_ctx, i) };
            }
        }
    }

    unsafe extern "C" fn thread_hook(
        _user: *mut c_void,
        n: usize,
        task: egpt_task_fn,
        task_ctx: *mut c_void,
    ) {
        let ctx = task_ctx as usize;
        std::thread::scope(|s| {
            for i in 0..n {
                s.spawn(move || {
                    if let Some(t) = task {
                        // SAFETY: the library's task, each index once; the scope
                        // joins every thread before the hook returns.
                        unsafe { t(ctx as *mut c_void, i) };
                    }
                });
            }
        });
    }

    #[test]
    fn parallel_hook_is_called_and_changes_no_bit() {
        static FILE: &[u8] = include_bytes!("../tests/fixtures/gpt2/b.q8_0.gguf");
        let run = |hook: egpt_parallel_for_fn, user: *mut c_void, tasks: usize| {
            let mut model_mem = [0u8; EGPT_MODEL_STORAGE_SIZE];
            let mut model: *mut egpt_model = ptr::null_mut();
            // SAFETY: valid buffers with their true lengths; FILE is 'static.
            let s = unsafe {
                egpt_model_open(
                    FILE.as_ptr(),
                    FILE.len(),
                    model_mem.as_mut_ptr().cast(),
                    model_mem.len(),
                    &mut model,
                )
            };
            assert_eq!(s, EGPT_OK);
            let mut p = egpt_context_default_params();
            p.backend = EGPT_BACKEND_SCALAR;
            p.parallel_for = hook;
            p.parallel_user = user;
            p.parallel_n_tasks = tasks;
            let mut need = 0usize;
            // SAFETY: valid handle and out-pointer.
            let s = unsafe { egpt_context_arena_size(model, &p, &mut need) };
            assert_eq!(s, EGPT_OK);
            let mut arena = std::vec![0u8; need];
            let mut ctx: *mut egpt_context = ptr::null_mut();
            // SAFETY: the arena outlives the context (same closure).
            let s = unsafe {
                egpt_context_create(model, &p, arena.as_mut_ptr().cast(), need, &mut ctx)
            };
            assert_eq!(s, EGPT_OK);
            let toks = [1u32, 50, 7, 99, 3, 150, 42];
            // SAFETY: valid context and token buffer.
            let s = unsafe { egpt_context_eval(ctx, toks.as_ptr(), toks.len()) };
            assert_eq!(s, EGPT_OK);
            let mut out = std::vec![0f32; 160];
            let mut n = 0usize;
            // SAFETY: valid buffer with its length.
            let s = unsafe { egpt_context_copy_logits(ctx, out.as_mut_ptr(), out.len(), &mut n) };
            assert_eq!((s, n), (EGPT_OK, 160));
            out
        };
        let base = run(None, ptr::null_mut(), 0);
        let mut calls = 0usize;
        let rev = run(Some(reverse_hook), (&mut calls as *mut usize).cast(), 3);
        assert!(calls > 0, "the hook was never called");
        let thr = run(Some(thread_hook), ptr::null_mut(), 4);
        for v in [&rev, &thr] {
            assert!(base
                .iter()
                .zip(v.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }

    #[test]
    fn default_params_match_rust_defaults() {
        let c = egpt_context_default_params();
        // SAFETY: a valid struct on the stack.
        let r = unsafe { read_params(&c) }.unwrap();
        assert_eq!(r, ContextParams::default());
    }

    /// The whole C flow from Rust, with misaligned caller buffers (also run under
    /// Miri: `cargo +nightly miri test --lib --features capi,libm/force-soft-floats capi::`;
    /// the soft-float feature keeps libm from inline assembly, which Miri cannot run).
    #[test]
    fn c_flow_with_misaligned_buffers() {
        static FILE: &[u8] = include_bytes!("../tests/fixtures/gpt2/a.q4_0.gguf");
        let mut model_mem = [0u8; EGPT_MODEL_STORAGE_SIZE + 8];
        let mut model: *mut egpt_model = ptr::null_mut();
        // SAFETY: valid buffers with their true lengths; FILE is 'static.
        let s = unsafe {
            egpt_model_open(
                FILE.as_ptr(),
                FILE.len(),
                model_mem.as_mut_ptr().add(1).cast(),
                egpt_model_size(),
                &mut model,
            )
        };
        assert_eq!(s, EGPT_OK);
        let mut params = egpt_context_default_params();
        params.n_batch = 4;
        params.logits_all = 1;
        let mut need = 0usize;
        // SAFETY: handles from the calls above, valid out-pointers.
        let s = unsafe { egpt_context_arena_size(model, &params, &mut need) };
        assert_eq!(s, EGPT_OK);
        let mut arena = std::vec![0u8; need + 3];
        let mut ctx: *mut egpt_context = ptr::null_mut();
        // SAFETY: as above; the arena outlives the context (same scope).
        let short = unsafe {
            egpt_context_create(
                model,
                &params,
                arena.as_mut_ptr().add(3).cast(),
                need - 1,
                &mut ctx,
            )
        };
        assert_eq!(short, EGPT_ERR_ARENA_TOO_SMALL);
        assert!(ctx.is_null());
        // SAFETY: as above.
        let s = unsafe {
            egpt_context_create(
                model,
                &params,
                arena.as_mut_ptr().add(3).cast(),
                need,
                &mut ctx,
            )
        };
        assert_eq!(s, EGPT_OK);
        let tokens = [7u32, 9, 11];
        let (mut lp, mut n, mut rows) = (ptr::null::<f32>(), 0usize, 0usize);
        // SAFETY: ctx from egpt_context_create, used on this thread only.
        unsafe {
            assert_eq!(
                egpt_context_logits(ctx, &mut lp, &mut n),
                EGPT_ERR_NO_LOGITS
            );
            assert_eq!(egpt_context_eval_all(ctx, tokens.as_ptr(), 3), EGPT_OK);
            assert_eq!(
                egpt_context_all_logits(ctx, &mut lp, &mut rows, &mut n),
                EGPT_OK
            );
        }
        assert_eq!((rows, n), (3, 256));
        // SAFETY: lp points to rows * n floats until the next eval.
        let all: std::vec::Vec<f32> = unsafe { core::slice::from_raw_parts(lp, rows * n) }.to_vec();
        let mut copy = std::vec![0f32; n];
        // SAFETY: as above; `copy` has n floats.
        unsafe {
            assert_eq!(egpt_context_rewind(ctx, 2), EGPT_OK);
            assert_eq!(egpt_context_eval(ctx, tokens.as_ptr().add(2), 1), EGPT_OK);
            assert_eq!(
                egpt_context_copy_logits(ctx, copy.as_mut_ptr(), n, &mut rows),
                EGPT_OK
            );
            assert_eq!(egpt_context_n_past(ctx, &mut rows), EGPT_OK);
        }
        assert_eq!(rows, 3);
        assert_eq!(copy.as_slice(), &all[2 * n..]);
    }

    /// The text functions from Rust, with misaligned arenas: tokenizer from GGUF bytes,
    /// size queries, and egpt_generate against the Rust `generate` on the same setup.
    #[test]
    fn text_flow_matches_rust_api() {
        static MODEL: &[u8] = include_bytes!("../tests/fixtures/gpt2/a.q4_0.gguf");
        static VOCAB: &[u8] = include_bytes!("../tests/fixtures/tokenizer/gpt2-vocab.gguf");
        let mut need = 0usize;
        // SAFETY: valid buffers with their true lengths, 'static bytes; handles used on
        // this thread only while their arenas (same scope) live.
        unsafe {
            assert_eq!(
                egpt_tokenizer_arena_size_gguf(VOCAB.as_ptr(), VOCAB.len(), &mut need),
                EGPT_OK
            );
            let mut ta = std::vec![0u8; need + 5];
            let mut tok: *mut egpt_tokenizer = ptr::null_mut();
            assert_eq!(
                egpt_tokenizer_create_gguf(
                    VOCAB.as_ptr(),
                    VOCAB.len(),
                    ta.as_mut_ptr().add(5).cast(),
                    need,
                    &mut tok
                ),
                EGPT_OK
            );
            let text = b"Hello world";
            let mut n = 0usize;
            assert_eq!(
                egpt_tokenize(tok, text.as_ptr().cast(), 11, 0, ptr::null_mut(), 0, &mut n),
                EGPT_ERR_BUFFER_TOO_SMALL
            );
            assert_eq!(n, 2);
            let mut ids = [0u32; 2];
            assert_eq!(
                egpt_tokenize(
                    tok,
                    text.as_ptr().cast(),
                    11,
                    0,
                    ids.as_mut_ptr(),
                    2,
                    &mut n
                ),
                EGPT_OK
            );
            assert_eq!(ids, [15496, 995]);
            let mut add_bos: c_int = 7;
            assert_eq!(egpt_tokenizer_add_bos(tok, &mut add_bos), EGPT_OK);
            assert_eq!(add_bos, 0, "GPT-2 vocabularies start prompts without BOS");
            assert_eq!(
                egpt_tokenizer_add_bos(tok, ptr::null_mut()),
                EGPT_ERR_NULL_POINTER
            );

            let mut model_mem = [0u8; EGPT_MODEL_STORAGE_SIZE];
            let mut model: *mut egpt_model = ptr::null_mut();
            assert_eq!(
                egpt_model_open(
                    MODEL.as_ptr(),
                    MODEL.len(),
                    model_mem.as_mut_ptr().cast(),
                    model_mem.len(),
                    &mut model
                ),
                EGPT_OK
            );
            let cp = egpt_context_default_params();
            assert_eq!(egpt_context_arena_size(model, &cp, &mut need), EGPT_OK);
            let mut ca = std::vec![0u8; need + 1];
            let mut ctx: *mut egpt_context = ptr::null_mut();
            let ca_ptr = ca.as_mut_ptr().add(1).cast();
            assert_eq!(
                egpt_context_create(model, &cp, ca_ptr, need, &mut ctx),
                EGPT_OK
            );
            let mut sp = egpt_sampler_default_params();
            sp.seed = 99;
            assert_eq!(egpt_sampler_arena_size(model, &sp, &mut need), EGPT_OK);
            let mut sa = std::vec![0u8; need + 3];
            let mut smp: *mut egpt_sampler = ptr::null_mut();
            let sa_ptr = sa.as_mut_ptr().add(3).cast();
            assert_eq!(
                egpt_sampler_create(model, &sp, sa_ptr, need, &mut smp),
                EGPT_OK
            );

            unsafe extern "C" fn collect(
                user: *mut c_void,
                token: u32,
                bytes: *const c_char,
                len: usize,
            ) -> c_int {
                // SAFETY: `user` is the Vec below; `bytes` holds `len` bytes.
                let v = unsafe { &mut *user.cast::<std::vec::Vec<(u32, std::vec::Vec<u8>)>>() };
                // SAFETY: as above.
                let b = unsafe { core::slice::from_raw_parts(bytes.cast::<u8>(), len) };
                v.push((token, b.to_vec()));
                0
            }
            let mut got: std::vec::Vec<(u32, std::vec::Vec<u8>)> = std::vec::Vec::new();
            let mut gp = egpt_generate_default_params();
            gp.max_tokens = 12;
            let mut r = egpt_generate_result {
                struct_size: size_of::<egpt_generate_result>(),
                stop_reason: 0,
                stop_index: 0,
                n_sampled: 0,
                n_emitted: 0,
                unevaluated: 0,
            };
            let prompt = [5u32, 17, 42];
            assert_eq!(
                egpt_generate(
                    ctx,
                    tok,
                    smp,
                    prompt.as_ptr(),
                    3,
                    &gp,
                    Some(collect),
                    (&mut got as *mut std::vec::Vec<(u32, std::vec::Vec<u8>)>).cast(),
                    &mut r
                ),
                EGPT_OK
            );
            assert_eq!((r.stop_reason, r.n_sampled), (EGPT_STOP_BUDGET, 12));

            // The same through the Rust API.
            let m = Model::load(MODEL).unwrap();
            let g = Gguf::parse(VOCAB).unwrap();
            let mut ta2 = std::vec![0u8; Tokenizer::arena_size(&g).unwrap()];
            let t2 = Tokenizer::new(&g, &mut ta2).unwrap();
            let rp = ContextParams::default();
            let mut ca2 = std::vec![0u8; Context::arena_size(&m, &rp).unwrap()];
            let mut c2 = Context::new(m, &rp, &mut ca2).unwrap();
            let sp2 = SamplerParams {
                seed: 99,
                ..SamplerParams::default()
            };
            let mut sa2 = std::vec![0u8; Sampler::arena_size(256, &sp2).unwrap()];
            let mut s2 = Sampler::new(256, &sp2, &mut sa2).unwrap();
            let gp2 = GenerateParams {
                max_tokens: Some(12),
                ..GenerateParams::default()
            };
            let mut want_ids = std::vec::Vec::new();
            let mut want_text = std::vec::Vec::new();
            crate::generate::generate(&mut c2, &mut s2, &t2, &prompt, &gp2, |id, t| {
                want_ids.push(id);
                want_text.extend_from_slice(t);
                true
            })
            .unwrap();
            let ids: std::vec::Vec<u32> = got
                .iter()
                .map(|(t, _)| *t)
                .filter(|&t| t != EGPT_NO_TOKEN)
                .collect();
            let text: std::vec::Vec<u8> = got.iter().flat_map(|(_, b)| b.clone()).collect();
            assert_eq!(ids, want_ids);
            assert_eq!(text, want_text);
        }
    }

    #[test]
    fn header_declares_every_status() {
        let h = include_str!("../include/embergpt.h");
        let n = h
            .lines()
            .filter(|l| l.starts_with("#define EGPT_ERR_"))
            .count();
        assert_eq!(
            n,
            ERRORS.len(),
            "include/embergpt.h is stale: run c-examples/check-header.sh --fix"
        );
    }

    /// A SentencePiece (llama) vocabulary through the C functions: tokenize, the
    /// first-space rule of egpt_detokenize, and add_bos.
    #[cfg(feature = "std")]
    #[test]
    fn sentencepiece_vocabulary_through_the_c_api() {
        use crate::tokenizer::token_type;
        let mut tokens: std::vec::Vec<std::string::String> = ["<unk>", "<s>", "</s>"]
            .iter()
            .map(|s| (*s).into())
            .collect();
        let mut types = std::vec![
            token_type::UNKNOWN,
            token_type::CONTROL,
            token_type::CONTROL
        ];
        for p in ["\u{2581}", "a", "\u{2581}a"] {
            tokens.push(p.into());
            types.push(token_type::NORMAL);
        }
        let mut w = crate::gguf_write::GgufWriter::new();
        w.add_str("tokenizer.ggml.model", "llama");
        w.add_str_array("tokenizer.ggml.tokens", &tokens);
        w.add_f32_array("tokenizer.ggml.scores", &[0.0, 0.0, 0.0, -3.0, -2.0, -1.0]);
        w.add_i32_array("tokenizer.ggml.token_type", &types);
        w.add_u32("tokenizer.ggml.bos_token_id", 1);
        let vocab = w.to_bytes();
        let mut need = 0usize;
        // SAFETY: valid buffers with their true lengths; the handle lives in `ta`, used
        // on this thread only while `ta` and `vocab` live.
        unsafe {
            assert_eq!(
                egpt_tokenizer_arena_size_gguf(vocab.as_ptr(), vocab.len(), &mut need),
                EGPT_OK
            );
            let mut ta = std::vec![0u8; need];
            let mut tok: *mut egpt_tokenizer = ptr::null_mut();
            assert_eq!(
                egpt_tokenizer_create_gguf(
                    vocab.as_ptr(),
                    vocab.len(),
                    ta.as_mut_ptr().cast(),
                    need,
                    &mut tok
                ),
                EGPT_OK
            );
            let mut add_bos: c_int = 7;
            assert_eq!(egpt_tokenizer_add_bos(tok, &mut add_bos), EGPT_OK);
            assert_eq!(add_bos, 1);
            let mut ids = [0u32; 8];
            let mut n = 0usize;
            assert_eq!(
                egpt_tokenize(
                    tok,
                    b"a a".as_ptr().cast(),
                    3,
                    0,
                    ids.as_mut_ptr(),
                    8,
                    &mut n
                ),
                EGPT_OK
            );
            assert_eq!(ids[..n], [5, 5]);
            let mut text = [0u8; 8];
            assert_eq!(
                egpt_detokenize(tok, ids.as_ptr(), 2, 0, text.as_mut_ptr().cast(), 8, &mut n),
                EGPT_OK
            );
            assert_eq!(text[..n], *b"a a");
            let with_bos = [1u32, 5];
            assert_eq!(
                egpt_detokenize(
                    tok,
                    with_bos.as_ptr(),
                    2,
                    1,
                    text.as_mut_ptr().cast(),
                    8,
                    &mut n
                ),
                EGPT_OK
            );
            assert_eq!(text[..n], *b" a");
        }
    }
}
