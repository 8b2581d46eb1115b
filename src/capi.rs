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
//!   memory of [`egpt_model_size`] bytes, the context handle at the start of the
//!   caller's arena of [`egpt_context_arena_size`] bytes;
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
use crate::kernels::Backend;
use crate::model::Model;
use crate::quant::GgmlType;
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
    /// Optional parallel-for hook (NULL: single-threaded). Reserved: this
    /// version of the library accepts and ignores it; evaluation runs on the
    /// calling thread. Multi-threaded evaluation will call it, unchanged ABI.
    pub parallel_for: egpt_parallel_for_fn,
    /// Passed to `parallel_for` as `user`.
    pub parallel_user: *mut c_void,
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
    Ok(ContextParams {
        n_ctx: c.n_ctx,
        n_batch: c.n_batch,
        logits_all: c.logits_all != 0,
        backend: backend_from_c(c.backend)?,
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
// Reserved: text (tokenizer, sampler, generation) — arriving in a later version
// ===========================================================================

/// Per-token callback of the (upcoming) `egpt_generate`: receives each generated
/// token id and its bytes (`bytes[0..len]`, not NUL-terminated, valid only during
/// the call); return nonzero to stop generation.
pub type egpt_token_callback = Option<
    unsafe extern "C" fn(user: *mut c_void, token: u32, bytes: *const c_char, len: usize) -> c_int,
>;

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
}
