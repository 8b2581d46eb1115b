//! Kernels: the scalar reference, the per-architecture SIMD versions, dispatch,
//! and the matrix multiply built on them.
//!
//! Dispatch is chosen once ([`Kernels::new`]) and stored in the context; the
//! forward pass calls through the stored table and never re-detects.
//!
//! Threads: the host may lend a [`ParallelFor`] (see [`parallel`]); [`matmul`]
//! then splits its weight rows into contiguous ranges, one per task, and
//! `matmul_then` lets each task finish its rows with an element-wise step
//! (bias, GELU, SwiGLU, residual add). Every output element is computed by the
//! same code whichever task computes it, so results are bit-identical for any
//! thread count.

#[cfg(target_arch = "arm")]
pub mod arm;
pub mod parallel;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
mod x86_64;

pub use parallel::ParallelFor;

#[cfg(all(
    target_arch = "aarch64",
    target_feature = "neon",
    target_endian = "little"
))]
mod aarch64;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod wasm32;

use crate::error::{Error, Result};
use crate::quant::{BlockQ8_0, BlockQ8_1, GgmlType, QK};
use core::sync::atomic::{AtomicBool, Ordering};

/// A kernel family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Backend {
    /// The portable reference kernels.
    Scalar,
    /// x86_64 AVX2 + FMA + F16C.
    Avx2,
    /// x86_64 AVX-VNNI (256-bit `vpdpbusd`) on top of AVX2.
    AvxVnni,
    /// x86_64 AVX-512 F/BW/VL + VNNI (512-bit `vpdpbusd`).
    Avx512Vnni,
    /// aarch64 NEON.
    Neon,
    /// aarch64 NEON + dotprod (`sdot`).
    NeonDotprod,
    /// wasm32 simd128.
    Simd128,
    /// Cortex-M4/M7/M33 DSP extension (`SXTB16`/`SMLAD`); Cargo feature `dsp`.
    CortexMDsp,
    /// Cortex-M55 Helium/MVE (`VMLADAVA`); Cargo feature `helium`.
    Helium,
}

impl Backend {
    /// Every backend, best first (per architecture only some are ever available).
    pub const ALL: &'static [Backend] = &[
        Backend::Avx512Vnni,
        Backend::AvxVnni,
        Backend::Avx2,
        Backend::NeonDotprod,
        Backend::Neon,
        Backend::Simd128,
        Backend::Helium,
        Backend::CortexMDsp,
        Backend::Scalar,
    ];

    /// Short name (`scalar`, ...), as the CLI's `--backend` takes it.
    pub const fn name(self) -> &'static str {
        match self {
            Backend::Scalar => "scalar",
            Backend::Avx2 => "avx2",
            Backend::AvxVnni => "avxvnni",
            Backend::Avx512Vnni => "avx512vnni",
            Backend::Neon => "neon",
            Backend::NeonDotprod => "dotprod",
            Backend::Simd128 => "simd128",
            Backend::CortexMDsp => "dsp",
            Backend::Helium => "helium",
        }
    }

    /// Parse a backend name.
    pub fn from_name(s: &str) -> Option<Backend> {
        Backend::ALL.iter().copied().find(|b| b.name() == s)
    }

    /// Whether this CPU can run the backend.
    pub fn is_available(self) -> bool {
        match self {
            Backend::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 | Backend::AvxVnni | Backend::Avx512Vnni => x86_64::available(self),
            Backend::Neon => cfg!(all(
                target_arch = "aarch64",
                target_feature = "neon",
                target_endian = "little"
            )),
            #[cfg(all(
                target_arch = "aarch64",
                target_feature = "neon",
                target_endian = "little"
            ))]
            Backend::NeonDotprod => aarch64::has_dotprod(),
            Backend::Simd128 => cfg!(all(target_arch = "wasm32", target_feature = "simd128")),
            // Chosen at build time (no run-time detection on bare-metal Cortex-M).
            Backend::CortexMDsp => cfg!(all(target_arch = "arm", feature = "dsp")),
            Backend::Helium => cfg!(all(target_arch = "arm", feature = "helium")),
            // Filled in by the SIMD modules (x86_64: CPUID + XGETBV; others: compile time).
            _ => false,
        }
    }

    /// The best backend this CPU runs.
    pub fn detect() -> Backend {
        Backend::ALL
            .iter()
            .copied()
            .find(|b| b.is_available())
            .unwrap_or(Backend::Scalar)
    }
}

/// Dot product of a weight row (raw bytes) with f32 activations.
pub type VecDotF32 = fn(&[u8], &[f32]) -> f32;
/// Attention scores `out[j] = dot(k_j, q) * scale` of keys `k_j = keys[j * stride + off ..][..q.len()]`;
/// false when the kernel does not take these shapes (nothing written).
pub type ScoresFn = fn(&[f32], &[f32], usize, usize, f32, &mut [f32]) -> bool;
/// The scores of two queries over the same keys, `scores2(qa, qb, keys, stride,
/// off, scale, out_a, out_b)`: as [`ScoresFn`] for each query, the keys
/// `j < out_a.len()` (and `out_b.len() == out_a.len()`), each key read once for
/// both; false when the kernel does not take these shapes (nothing written).
pub type Scores2Fn = fn(&[f32], &[f32], &[f32], usize, usize, f32, &mut [f32], &mut [f32]) -> bool;
/// The attention mix of two queries over the same values, `mix2(a, b, vals,
/// stride, off, out_a, out_b)`: `out_a = mix(a)`, `out_b = mix(b)` (see
/// [`crate::ops::mix`]; `a.len() == b.len()`, `out_a.len() == out_b.len()`),
/// each value row read once for both; false when the kernel does not take these
/// shapes (nothing written).
pub type Mix2Fn = fn(&[f32], &[f32], &[f32], usize, usize, &mut [f32], &mut [f32]) -> bool;
/// Dot product of a weight row with Q8_0 activation blocks.
pub type VecDotQ8_0 = fn(&[u8], &[BlockQ8_0]) -> f32;
/// Dot product of a weight row with Q8_1 activation blocks.
pub type VecDotQ8_1 = fn(&[u8], &[BlockQ8_1]) -> f32;
/// Batched dot: `gemm(w, rows, x, n, out)` sets `out[r * n + t]` to the dot of
/// weight row `r` (of `rows` rows in `w`) with activation row `t` (of `n` rows in
/// `x`), bit-identical to the single-row dot (see [`scalar::gemm_q8_0_q8_0`]).
pub type GemmQ8_0 = fn(&[u8], usize, &[BlockQ8_0], usize, &mut [f32]);
/// Batched dot with Q8_1 activations.
pub type GemmQ8_1 = fn(&[u8], usize, &[BlockQ8_1], usize, &mut [f32]);

/// A backend's own activation layout for Q8_0 x Q8_0 prefill (x86_64 AVX2: 8
/// tokens side by side, see `x86_64/avx2w.rs`): [`matmul`] quantizes a batch's
/// full groups of [`PACKED_TOKENS`] tokens straight into it, in the scratch the
/// row-form blocks would use (the same bytes: a group's entry for one block is
/// the size of its 8 blocks), and hands each task's whole row range to one
/// `gemm` call, which writes the `[token][row]` output itself. The tokens past
/// the last full group stay in row form and go through `gemm_q8_0_q8_0`.
#[derive(Clone, Copy)]
pub(crate) struct PackedQ8_0 {
    /// Most blocks per row `gemm` takes (wider rows use the row form).
    pub(crate) max_nb: usize,
    /// Quantize `[PACKED_TOKENS][cols]` f32 into `PACKED_TOKENS * cols / 32`
    /// blocks' room, packed; the same blocks as `quantize_row_q8_0`.
    pub(crate) quantize: fn(&[f32], usize, &mut [BlockQ8_0]),
    /// `gemm(w, rows, xp, groups, out, r_at, stride)`: `out[t * stride + r_at
    /// + r] = dot(w row r, token t)` for the `PACKED_TOKENS * groups` tokens of
    /// `xp`; false (nothing written) for shapes it does not take.
    ///
    /// # Safety
    /// No one else touches those columns of those rows of `out` during the
    /// call, and the buffer `out` was made from is not used until it returns.
    pub(crate) gemm: PackedGemm,
}

/// [`PackedQ8_0::gemm`]'s type.
pub(crate) type PackedGemm =
    unsafe fn(&[u8], usize, &[BlockQ8_0], usize, &parallel::SharedOut, usize, usize) -> bool;

/// Tokens per group of a [`PackedQ8_0`] layout.
pub(crate) const PACKED_TOKENS: usize = 8;

/// The kernel table of one backend.
#[derive(Clone, Copy)]
pub struct Kernels {
    /// Which backend the table belongs to.
    pub backend: Backend,
    pub vec_dot_f32_f32: VecDotF32,
    pub vec_dot_f16_f32: VecDotF32,
    pub vec_dot_q8_0_q8_0: VecDotQ8_0,
    pub vec_dot_q4_0_q8_0: VecDotQ8_0,
    pub vec_dot_q4_1_q8_1: VecDotQ8_1,
    pub quantize_row_q8_0: fn(&[f32], &mut [BlockQ8_0]),
    pub quantize_row_q8_1: fn(&[f32], &mut [BlockQ8_1]),
    /// Batched kernels; `None` makes [`matmul`] call the single-row dot per element
    /// (same results: the batched forms are bit-identical to the dots).
    pub gemm_q8_0_q8_0: Option<GemmQ8_0>,
    pub gemm_q4_0_q8_0: Option<GemmQ8_0>,
    pub gemm_q4_1_q8_1: Option<GemmQ8_1>,
    /// Q8_0 x Q8_0 prefill in the backend's own activation layout (`None`:
    /// row form through `gemm_q8_0_q8_0` only).
    pub(crate) packed_q8_0: Option<PackedQ8_0>,
    /// The element-wise and attention steps of [`crate::ops`] (`softmax`, `mix`,
    /// `gelu`, `swiglu`): that same portable source, compiled for the backend's
    /// instruction set (x86_64: AVX2 instead of the SSE2 baseline). Rust never
    /// fuses or reorders float operations, so every backend gives the same bits.
    pub softmax: fn(&mut [f32]),
    /// Attention scores of several keys per pass (see [`crate::ops::scores`]
    /// for the contract); returns false when it does not handle the shapes,
    /// and `None` goes key by key through `vec_dot_f32_f32`. Same bits.
    pub scores: Option<ScoresFn>,
    pub mix: fn(&[f32], &[f32], usize, usize, &mut [f32]),
    /// Two queries per pass over the keys and values (prefill): with keys and
    /// values past the L1 cache, reading each once for two queries instead of
    /// once per query halves their traffic from L2. `None` (or false) runs
    /// [`Self::scores`] / [`Self::mix`] per query. Same bits either way.
    pub scores2: Option<Scores2Fn>,
    pub mix2: Option<Mix2Fn>,
    pub gelu: fn(&mut [f32]),
    pub swiglu: fn(&mut [f32], &[f32]),
    /// The host's parallel-for (set by the context from
    /// [`crate::ContextParams::parallel`]); `None` runs on the calling thread.
    pub parallel: Option<ParallelFor>,
}

impl core::fmt::Debug for Kernels {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Kernels")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Kernels {
    /// The table for `backend`, or `BackendUnavailable` if this CPU cannot run it.
    pub fn new(backend: Backend) -> Result<Kernels> {
        if !backend.is_available() {
            return Err(Error::BackendUnavailable);
        }
        Ok(match backend {
            #[cfg(target_arch = "x86_64")]
            Backend::Avx2 | Backend::AvxVnni | Backend::Avx512Vnni => {
                x86_64::table(backend).ok_or(Error::BackendUnavailable)?
            }
            #[cfg(all(
                target_arch = "aarch64",
                target_feature = "neon",
                target_endian = "little"
            ))]
            Backend::Neon => aarch64::NEON,
            #[cfg(all(
                target_arch = "aarch64",
                target_feature = "neon",
                target_endian = "little"
            ))]
            Backend::NeonDotprod => aarch64::DOTPROD,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Backend::Simd128 => wasm32::SIMD128,
            #[allow(unreachable_patterns)]
            Backend::Avx2
            | Backend::AvxVnni
            | Backend::Avx512Vnni
            | Backend::Neon
            | Backend::NeonDotprod
            | Backend::Simd128 => return Err(Error::BackendUnavailable),
            #[cfg(all(target_arch = "arm", feature = "dsp"))]
            Backend::CortexMDsp => Kernels {
                backend,
                vec_dot_q8_0_q8_0: arm::dsp::vec_dot_q8_0_q8_0,
                vec_dot_q4_0_q8_0: arm::dsp::vec_dot_q4_0_q8_0,
                gemm_q8_0_q8_0: Some(arm::dsp::gemm_q8_0_q8_0),
                gemm_q4_0_q8_0: Some(arm::dsp::gemm_q4_0_q8_0),
                quantize_row_q8_0: arm::dsp::quantize_row_q8_0,
                quantize_row_q8_1: arm::dsp::quantize_row_q8_1,
                ..SCALAR
            },
            #[cfg(all(target_arch = "arm", feature = "helium"))]
            Backend::Helium => Kernels {
                backend,
                vec_dot_q8_0_q8_0: arm::helium::vec_dot_q8_0_q8_0,
                vec_dot_q4_0_q8_0: arm::helium::vec_dot_q4_0_q8_0,
                gemm_q8_0_q8_0: Some(arm::helium::gemm_q8_0_q8_0),
                gemm_q4_0_q8_0: Some(arm::helium::gemm_q4_0_q8_0),
                quantize_row_q8_0: arm::helium::quantize_row_q8_0,
                quantize_row_q8_1: arm::helium::quantize_row_q8_1,
                ..SCALAR
            },
            #[allow(unreachable_patterns)]
            Backend::CortexMDsp | Backend::Helium => return Err(Error::BackendUnavailable),
            Backend::Scalar => SCALAR,
        })
    }

    /// The best table for this CPU.
    pub fn detect() -> Kernels {
        Kernels::new(Backend::detect()).unwrap_or(Kernels::new(Backend::Scalar).unwrap_or(SCALAR))
    }
}

/// Test support, not API: the x86 VNNI kernel bodies with `vpdpbusd` emulated
/// by exact AVX2 instructions, so that their logic (unsigned weights, the
/// per-token correction, nibble unpacking) is checked against the scalar
/// reference on CPUs without VNNI. `None` without AVX2 or off x86_64.
#[doc(hidden)]
pub fn __x86_emulated_vnni() -> Option<Kernels> {
    #[cfg(target_arch = "x86_64")]
    {
        x86_64::emulated_vnni_table()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// Test support, not API: the AVX-512 table's integer kernels (the 512-bit
/// prefill GEMM included) with every 512-bit operation emulated by exact AVX2
/// instructions, so that their logic is checked against the scalar reference
/// on CPUs without AVX-512. `None` without AVX2 or off x86_64.
#[doc(hidden)]
pub fn __x86_emulated_avx512() -> Option<Kernels> {
    #[cfg(target_arch = "x86_64")]
    {
        x86_64::emulated_avx512_table()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// The scalar table as a constant (used as the last fallback).
const SCALAR: Kernels = Kernels {
    backend: Backend::Scalar,
    vec_dot_f32_f32: scalar::vec_dot_f32_f32,
    vec_dot_f16_f32: scalar::vec_dot_f16_f32,
    vec_dot_q8_0_q8_0: scalar::vec_dot_q8_0_q8_0,
    vec_dot_q4_0_q8_0: scalar::vec_dot_q4_0_q8_0,
    vec_dot_q4_1_q8_1: scalar::vec_dot_q4_1_q8_1,
    quantize_row_q8_0: scalar::quantize_row_q8_0,
    quantize_row_q8_1: scalar::quantize_row_q8_1,
    gemm_q8_0_q8_0: Some(scalar::gemm_q8_0_q8_0),
    gemm_q4_0_q8_0: Some(scalar::gemm_q4_0_q8_0),
    gemm_q4_1_q8_1: Some(scalar::gemm_q4_1_q8_1),
    packed_q8_0: None,
    scores: None,
    softmax: crate::ops::softmax,
    mix: crate::ops::mix,
    scores2: None,
    mix2: None,
    gelu: crate::ops::gelu,
    swiglu: crate::ops::swiglu,
    parallel: None,
};

/// A weight matrix read in place from the file: `rows` rows of `cols` elements,
/// row-major `[rows][cols]` (GGUF `ne0 = cols`, `ne1 = rows`).
#[derive(Clone, Copy, Debug)]
pub struct Matrix<'a> {
    /// Element type.
    pub ty: GgmlType,
    /// Number of rows (output features).
    pub rows: usize,
    /// Row length (input features).
    pub cols: usize,
    /// Exactly `rows * row_bytes` bytes.
    pub data: &'a [u8],
}

impl<'a> Matrix<'a> {
    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.ty.row_bytes(self.cols).unwrap_or(0)
    }
    /// Row `r` as bytes (empty if out of range).
    pub fn row(&self, r: usize) -> &'a [u8] {
        let rb = self.row_bytes();
        self.data.get(r * rb..(r + 1) * rb).unwrap_or(&[])
    }
}

/// Scratch space for activations quantized at run time: room for `n` rows of
/// up to `max_cols` elements in both Q8_0 and Q8_1 form.
pub struct QuantScratch<'s> {
    /// `[n][max_cols / 32]` Q8_0 blocks.
    pub q8_0: &'s mut [BlockQ8_0],
    /// `[n][max_cols / 32]` Q8_1 blocks.
    pub q8_1: &'s mut [BlockQ8_1],
}

/// Rows per weight tile handed to a batched kernel (row ranges of tasks are multiples of it).
const TILE_ROWS: usize = 4;
/// Weight rows per batched-kernel call (a multiple of `TILE_ROWS`; lets a kernel
/// amortise its per-call packing of the activations over more rows). 32 on
/// x86_64 (the AVX2 Q8_0 prefill packs a call's tokens once for all its rows);
/// 16 elsewhere, where `buf` below counts against a firmware's stack.
#[cfg(target_arch = "x86_64")]
const CALL_ROWS: usize = 32;
#[cfg(not(target_arch = "x86_64"))]
const CALL_ROWS: usize = 16;
/// Weight rows per call when there is one activation row (decode). 2048 on
/// x86_64: the AVX2 Q8_0 decode reads the two halves of a call's rows side
/// by side, and both halves are longer runs through memory with bigger calls
/// (GPT-2 decode, 64-row calls -> 2048: Q4_0 1 thread +3%, with the halves
/// Q8_0 +3% / +7% on 1 / 2 threads). 64 elsewhere (not measured there).
/// Decode writes each call's rows straight into the output, never through
/// the tile buffers, so the count is not bounded by them.
#[cfg(target_arch = "x86_64")]
const DECODE_CALL_ROWS: usize = 2048;
#[cfg(not(target_arch = "x86_64"))]
const DECODE_CALL_ROWS: usize = 64;
/// Activation rows per batched-kernel call (keeps the tile's output on the stack).
/// 64 on x86_64: the AVX2 prefill kernels amortise their per-row work (widened
/// or held weights, weight scales) over more tokens. 16 elsewhere: `buf` and the
/// transposed tile live on the stack, which a microcontroller's firmware counts
/// in kilobytes.
#[cfg(target_arch = "x86_64")]
const TILE_TOKENS: usize = 64;
#[cfg(not(target_arch = "x86_64"))]
const TILE_TOKENS: usize = 16;
/// Multiply-accumulates below which a matmul is not worth splitting across threads.
const MIN_PARALLEL_MACS: usize = 1 << 15;
/// Row-range tasks per pool thread in a split matmul (handed out dynamically: a
/// late thread takes fewer; 2 beat 4 and matched 1 on decode with 2 quiet cores,
/// because each task streams a longer contiguous range that the prefetch covers).
/// Re-measured on the 2-core Zen 3 VM (GPT-2 124M, -p 128 -n 64, both threads at
/// real-time priority so that background load could not take a core): 1, 2 and
/// 8 tasks per thread all within the +-10% run-to-run noise (Q8_0 2-thread decode
/// 160-197 tok/s); with a core taken by another process, 8 did slightly better.
const TASKS_PER_THREAD: usize = 2;

/// `out[t][r] = dot(w[r], x[t])` for `t < n`, `r < w.rows`.
///
/// `x` is `[n][w.cols]` f32, `out` is `[n][w.rows]`. Quantized weights first
/// quantize `x` into `scratch`. Every output element is one complete row
/// reduction in the fixed order of [`scalar`], so results do not depend on `n`,
/// on the tiling, or on how many tasks the rows are split into.
///
/// Quantized weights go through the table's batched kernels, `CALL_ROWS` weight
/// rows (32 on x86_64, 16 elsewhere) x up to `TILE_TOKENS` activation rows (64 /
/// 16) per call; with one activation row, up to 64 weight rows per call. Q8_0
/// weights with 8 or more activation rows, on a backend with a packed layout
/// (x86_64 AVX2), instead quantize `x` straight into that layout and hand each
/// task's rows to one call (see `PackedQ8_0`). With a [`ParallelFor`] in `k`,
/// the rows are split into contiguous ranges (multiples of 4 rows), one per task.
pub fn matmul(
    k: &Kernels,
    w: &Matrix<'_>,
    x: &[f32],
    n: usize,
    out: &mut [f32],
    scratch: &mut QuantScratch<'_>,
) -> Result<()> {
    matmul_then(k, w, None, x, n, out, &mut [], scratch, None)
}

/// A split matmul's finishing step, run by each task on the output columns it
/// just computed: `epi(r0, out, out2)` once per token `t`, with `out` the
/// task's part `out[t][r0..r1]` and `out2` the same part of the second buffer
/// (empty when there is none). It must treat every column alone (element-wise
/// in `r`), so that its results do not depend on where the ranges split.
pub(crate) type Epilogue<'e> = &'e (dyn Fn(usize, &mut [f32], &mut [f32]) + Sync);

/// [`matmul`] with up to two matrices of one shape sharing the input and a
/// per-task [`Epilogue`], all in one parallel dispatch: each task computes rows
/// `r0..r1` of `w` into `out` (and of `w2` into `out2`), then runs `epi` over
/// them while they are hot in cache. Without `w2`, `out2` is either empty or a
/// second `[n][w.rows]` buffer the epilogue updates (e.g. the residual stream).
///
/// Fusing the bias, GELU, SwiGLU and residual steps into the matmul keeps them
/// off the calling thread, and lets one dispatch do the work of several.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul_then(
    k: &Kernels,
    w: &Matrix<'_>,
    w2: Option<&Matrix<'_>>,
    x: &[f32],
    n: usize,
    out: &mut [f32],
    out2: &mut [f32],
    scratch: &mut QuantScratch<'_>,
    epi: Option<Epilogue<'_>>,
) -> Result<()> {
    let rb = w.ty.row_bytes(w.cols).ok_or(Error::BadBlockShape)?;
    if w.data.len() != rb * w.rows || x.len() != n * w.cols || out.len() != n * w.rows {
        return Err(Error::ShapeMismatch);
    }
    let rb2 = match w2 {
        Some(w2) => {
            let rb2 = w2.ty.row_bytes(w2.cols).ok_or(Error::BadBlockShape)?;
            if w2.rows != w.rows || w2.cols != w.cols || w2.data.len() != rb2 * w2.rows {
                return Err(Error::ShapeMismatch);
            }
            rb2
        }
        None => 0,
    };
    if !(out2.is_empty() && w2.is_none()) && out2.len() != out.len() {
        return Err(Error::ShapeMismatch);
    }
    let no_cols = w.cols == 0;
    if no_cols {
        out.fill(0.0); // every dot is the empty sum
        if w2.is_some() {
            out2.fill(0.0);
        }
    }
    // Activations quantized once, before the split, in every form the matrices need.
    let acts = |ty: GgmlType| match ty {
        GgmlType::F32 | GgmlType::F16 => Ok(0),
        GgmlType::Q8_0 | GgmlType::Q4_0 => Ok(1),
        GgmlType::Q4_1 => Ok(2),
        _ => Err(Error::UnsupportedTensorType),
    };
    let (a1, a2) = (acts(w.ty)?, w2.map(|w2| acts(w2.ty)).transpose()?);
    let needs = |a: usize| a1 == a || a2 == Some(a);
    // The backend's packed layout: Q8_0 weights only (both matrices, which
    // then share it), at least one full group of tokens, rows it takes.
    let nb = w.cols / QK;
    let packed = match k.packed_q8_0 {
        Some(p)
            if w.ty == GgmlType::Q8_0
                && w2.is_none_or(|w2| w2.ty == GgmlType::Q8_0)
                && n >= PACKED_TOKENS
                && (1..=p.max_nb).contains(&nb) =>
        {
            Some(p)
        }
        _ => None,
    };
    let q0: &[BlockQ8_0] = if let Some(p) = &packed {
        quantize_packed(k, p, scratch.q8_0, x, w.cols, n)?
    } else if needs(1) {
        quantize_rows(
            k.parallel.as_ref(),
            scratch.q8_0,
            x,
            w.cols,
            n,
            k.quantize_row_q8_0,
        )?
    } else {
        &[]
    };
    let q1: &[BlockQ8_1] = if needs(2) {
        quantize_rows(
            k.parallel.as_ref(),
            scratch.q8_1,
            x,
            w.cols,
            n,
            k.quantize_row_q8_1,
        )?
    } else {
        &[]
    };
    let act = |a: usize| match (a, packed) {
        (1, Some(p)) => Act::Q8_0Packed(q0, p),
        (1, None) => Act::Q8_0(q0),
        (2, _) => Act::Q8_1(q1),
        _ => Act::F32(x),
    };
    let (xq, xq2) = (act(a1), act(a2.unwrap_or(0)));
    let rows = w.rows;
    let tiles = rows.div_ceil(TILE_ROWS);
    let macs = rows
        .saturating_mul(w.cols)
        .saturating_mul(n)
        .saturating_mul(1 + w2.is_some() as usize);
    let n_tasks = match &k.parallel {
        // Several tasks per thread: the tasks are handed out dynamically, so a
        // thread that starts late (woken, or sharing its core) takes fewer.
        Some(p) if macs >= MIN_PARALLEL_MACS && p.n_threads() > 1 => {
            (p.n_threads() * TASKS_PER_THREAD).min(tiles).max(1)
        }
        _ => 1,
    };
    let chunk = tiles.div_ceil(n_tasks) * TILE_ROWS;
    let shared = parallel::SharedOut::new(out);
    let shared2 = parallel::SharedOut::new(out2);
    // Set by a task whose kernel refused its shapes (never, as matmul checked
    // them: an error rather than a silently unwritten output all the same).
    let refused = AtomicBool::new(false);
    let task = |i: usize| {
        let r0 = i * chunk;
        let r1 = (r0 + chunk).min(rows);
        if r0 >= r1 {
            return;
        }
        if !no_cols {
            let mut ok = rows_range(k, w, rb, &xq, n, r0, r1, &shared);
            if let Some(w2) = w2 {
                ok &= rows_range(k, w2, rb2, &xq2, n, r0, r1, &shared2);
            }
            if !ok {
                refused.store(true, Ordering::Relaxed);
            }
        }
        if let Some(epi) = epi {
            for t in 0..n {
                let cols = t * rows + r0..t * rows + r1;
                // SAFETY: columns r0..r1 of every token row belong to this task
                // alone (disjoint row ranges per task), and the kernel writes
                // above are done.
                let (o, o2) = unsafe { (shared.slice_mut(cols.clone()), shared2.slice_mut(cols)) };
                if let Some(o) = o {
                    epi(r0, o, o2.unwrap_or(&mut []));
                }
            }
        }
    };
    parallel::for_each(k.parallel.as_ref(), n_tasks, &task);
    if refused.load(Ordering::Relaxed) {
        return Err(Error::ShapeMismatch);
    }
    Ok(())
}

/// Quantize the `n` rows of `x` (`cols` wide) for `p`'s packed layout into the
/// first `n * cols / 32` blocks of `scratch` and return them: the full groups
/// of [`PACKED_TOKENS`] rows packed (a group per task of the host's threads),
/// the rows after the last full group in row form after them.
fn quantize_packed<'s>(
    k: &Kernels,
    p: &PackedQ8_0,
    scratch: &'s mut [BlockQ8_0],
    x: &[f32],
    cols: usize,
    n: usize,
) -> Result<&'s [BlockQ8_0]> {
    let nb = cols / QK;
    let n8 = n / PACKED_TOKENS * PACKED_TOKENS;
    let xq = scratch.get_mut(..n * nb).ok_or(Error::ShapeMismatch)?;
    if nb > 0 && x.len() >= n * cols {
        let (groups, tail) = xq
            .split_at_mut_checked(n8 * nb)
            .ok_or(Error::ShapeMismatch)?;
        let g = PACKED_TOKENS * cols;
        parallel::for_each_row(
            k.parallel.as_ref(),
            groups,
            PACKED_TOKENS * nb,
            2,
            &|i, dst| {
                if let Some(xg) = x.get(i * g..(i + 1) * g) {
                    (p.quantize)(xg, cols, dst);
                }
            },
        );
        for (t, qr) in tail.chunks_exact_mut(nb).enumerate() {
            if let Some(xr) = x.get((n8 + t) * cols..(n8 + t + 1) * cols) {
                (k.quantize_row_q8_0)(xr, qr);
            }
        }
    }
    Ok(xq)
}

/// Activation rows below which [`quantize_rows`] stays on the calling thread
/// (a 768-value row takes well under a microsecond).
const MIN_PARALLEL_QUANT_ROWS: usize = 8;

/// Quantize the `n` rows of `x` (`cols` wide) into the first `n * cols / 32`
/// blocks of `scratch` with `quantize` (one row at a time) and return them.
/// A batch's rows are split across the threads of `p` (each row is quantized
/// whole by one thread, so the blocks are the same): on one thread this step
/// is ~1.3% of a GPT-2 prefill, and with it serial the other thread waited.
fn quantize_rows<'s, B: Send>(
    p: Option<&ParallelFor>,
    scratch: &'s mut [B],
    x: &[f32],
    cols: usize,
    n: usize,
    quantize: fn(&[f32], &mut [B]),
) -> Result<&'s [B]> {
    let nb = cols / QK;
    let xq = scratch.get_mut(..n * nb).ok_or(Error::ShapeMismatch)?;
    if nb > 0 && x.len() >= n * cols {
        parallel::for_each_row(p, xq, nb, MIN_PARALLEL_QUANT_ROWS, &|t, qr| {
            if let Some(xr) = x.get(t * cols..(t + 1) * cols) {
                quantize(xr, qr);
            }
        });
    }
    Ok(xq)
}

/// The bytes of an f32 slice (little-endian on every target embergpt supports),
/// for the kernels that take F32 rows as bytes.
pub fn f32_bytes(x: &[f32]) -> &[u8] {
    #[cfg(target_endian = "big")]
    compile_error!(
        "embergpt reads GGUF (little-endian) in place: big-endian targets are unsupported"
    );
    // SAFETY: u8 has no alignment or validity requirements and the length is the
    // slice's size in bytes; the borrow keeps `x` alive and unmodified.
    unsafe { core::slice::from_raw_parts(x.as_ptr().cast::<u8>(), core::mem::size_of_val(x)) }
}

/// Activations in the form the weight type needs.
enum Act<'x> {
    F32(&'x [f32]),
    Q8_0(&'x [BlockQ8_0]),
    /// As [`quantize_packed`] leaves them.
    Q8_0Packed(&'x [BlockQ8_0], PackedQ8_0),
    Q8_1(&'x [BlockQ8_1]),
}

/// Compute rows `r0..r1` of every token into `out` (shapes checked by
/// `matmul`); false when a kernel refused the shapes.
#[allow(clippy::too_many_arguments)]
fn rows_range(
    k: &Kernels,
    w: &Matrix<'_>,
    rb: usize,
    x: &Act<'_>,
    n: usize,
    r0: usize,
    r1: usize,
    out: &parallel::SharedOut,
) -> bool {
    let rows = w.rows;
    let wrows = |a: usize, b: usize| w.data.get(a * rb..b * rb).unwrap_or(&[]);
    // SAFETY (every `out.write` below): this call writes only columns r0..r1 of
    // `out`, and `matmul` gives each task a disjoint row range.
    match x {
        Act::F32(x) => {
            let dot = if w.ty == GgmlType::F32 {
                k.vec_dot_f32_f32
            } else {
                k.vec_dot_f16_f32
            };
            for r in r0..r1 {
                let wr = wrows(r, r + 1);
                for (t, xr) in x.chunks_exact(w.cols.max(1)).enumerate() {
                    // SAFETY: see above.
                    unsafe { out.write(t * rows + r, dot(wr, xr)) };
                }
            }
        }
        Act::Q8_0(_) | Act::Q8_1(_) | Act::Q8_0Packed(..) => {
            let nb = w.cols / QK;
            // The packed groups: the whole row range in one call, straight
            // into `out`; then the tokens after them, in row form, below.
            let mut t_begin = 0;
            if let Act::Q8_0Packed(xq, p) = x {
                let n8 = n / PACKED_TOKENS * PACKED_TOKENS;
                let xp = xq.get(..n8 * nb).unwrap_or(&[]);
                // SAFETY: rows r0..r1 of every token row are this task's alone
                // (see above), and `matmul` does not touch `out` until its
                // tasks are done.
                let ok = unsafe {
                    (p.gemm)(
                        wrows(r0, r1),
                        r1 - r0,
                        xp,
                        n8 / PACKED_TOKENS,
                        out,
                        r0,
                        rows,
                    )
                };
                if !ok {
                    return false;
                }
                t_begin = n8;
            }
            // The kernel's [rows][tokens] tile, and its transposition, reused
            // by every call (not built and returned per call: that cost a
            // memset and a memcpy of 8 KB each). Only made (zeroed) when
            // tokens go through them: not for one token (written straight
            // into `out`), nor when the packed groups took every token
            // (zeroing their 16 KB per task was ~0.8% of a 2-thread decode).
            let tiles = n > 1 && t_begin < n;
            let mut buf_store;
            let buf: &mut [f32] = if tiles {
                buf_store = [0.0f32; CALL_ROWS * TILE_TOKENS];
                &mut buf_store
            } else {
                &mut []
            };
            #[cfg(not(target_os = "none"))]
            let mut tt_store;
            #[cfg(not(target_os = "none"))]
            let mut tt: Option<&mut [[f32; CALL_ROWS]; TILE_TOKENS]> = if tiles {
                tt_store = [[0.0f32; CALL_ROWS]; TILE_TOKENS];
                Some(&mut tt_store)
            } else {
                None
            };
            // One activation row (decode): nothing to keep in L1 but the
            // activations, so hand the kernel DECODE_CALL_ROWS rows per call
            // (the Cortex-M kernels prepare the activations once per call; the
            // x86 ones scan them once per call); batches get CALL_ROWS rows.
            let call_rows = if n == 1 { DECODE_CALL_ROWS } else { CALL_ROWS };
            let mut r = r0;
            while r < r1 {
                let nr = call_rows.min(r1 - r);
                let wt = wrows(r, r + nr);
                let mut t0 = t_begin;
                while t0 < n {
                    let nt = TILE_TOKENS.min(n - t0);
                    // One token (decode): the kernel's `[nr][1]` output is this
                    // task's row range of `out` itself, so it writes there
                    // directly; batches go through `buf` (nr * nt <= buf.len():
                    // nr <= CALL_ROWS, nt <= TILE_TOKENS, so always Some).
                    let direct = if n == 1 {
                        // SAFETY: see above (rows r..r + nr of token 0 are this task's).
                        unsafe { out.slice_mut(r..r + nr) }
                    } else {
                        None
                    };
                    let is_direct = direct.is_some();
                    let Some(o) = direct.or_else(|| buf.get_mut(..nr * nt)) else {
                        return true;
                    };
                    match x {
                        Act::Q8_0(xq) | Act::Q8_0Packed(xq, _) => {
                            let xs = xq.get(t0 * nb..(t0 + nt) * nb).unwrap_or(&[]);
                            let (g, dot, bb) = if w.ty == GgmlType::Q8_0 {
                                (k.gemm_q8_0_q8_0, k.vec_dot_q8_0_q8_0, 34)
                            } else {
                                (k.gemm_q4_0_q8_0, k.vec_dot_q4_0_q8_0, 18)
                            };
                            match g {
                                Some(g) => g(wt, nr, xs, nt, o),
                                None => scalar::gemm_with(wt, nr, xs, nt, o, bb, dot),
                            }
                        }
                        Act::Q8_1(xq) => {
                            let xs = xq.get(t0 * nb..(t0 + nt) * nb).unwrap_or(&[]);
                            match k.gemm_q4_1_q8_1 {
                                Some(g) => g(wt, nr, xs, nt, o),
                                None => {
                                    scalar::gemm_with(wt, nr, xs, nt, o, 20, k.vec_dot_q4_1_q8_1)
                                }
                            }
                        }
                        Act::F32(_) => {}
                    }
                    if !is_direct {
                        // `o` is [nr][nt]; token t's nr values are contiguous in `out`.
                        // (Not on bare-metal targets: the tile copy costs their
                        // firmware 1 KB of stack for a gain measured on x86_64.)
                        #[cfg(not(target_os = "none"))]
                        if let Some(tt) = tt.as_deref_mut() {
                            if transpose_full_tile(o, tt) {
                                for (t, col) in tt.iter().enumerate() {
                                    let at = (t0 + t) * rows + r;
                                    // SAFETY: see above (rows r..r + nr of every token;
                                    // nr == CALL_ROWS for a full tile).
                                    let dst = unsafe { out.slice_mut(at..at + CALL_ROWS) };
                                    // As a fixed-size array: an inline copy of
                                    // 128 bytes, where the slice loop became a
                                    // `memcpy` call per token (~2.7% of a Q4_0
                                    // prefill profile).
                                    if let Some(dst) =
                                        dst.and_then(|d| <&mut [f32; CALL_ROWS]>::try_from(d).ok())
                                    {
                                        *dst = *col;
                                    }
                                }
                                t0 += nt;
                                continue;
                            }
                        }
                        for t in 0..nt {
                            let at = (t0 + t) * rows + r;
                            // SAFETY: see above (rows r..r + nr of every token).
                            if let Some(dst) = unsafe { out.slice_mut(at..at + nr) } {
                                let col = o.get(t..).unwrap_or(&[]).iter().step_by(nt);
                                for (d, &v) in dst.iter_mut().zip(col) {
                                    *d = v;
                                }
                            }
                        }
                    }
                    t0 += nt;
                }
                r += nr;
            }
        }
    }
    true
}

/// Write a full `[CALL_ROWS][TILE_TOKENS]` tile (the common case of a prefill;
/// 8 KB of stack on x86_64, 1 KB with the 16 x 16 of other targets) into `tt`
/// as `[TILE_TOKENS][CALL_ROWS]`: fixed sizes let the compiler unroll the
/// transposition, where the general strided copy cost ~3 cycles per element
/// (4% of a GPT-2 Q4_0 prefill). False, `tt` untouched, for any other length.
#[cfg(not(target_os = "none"))]
#[inline(always)]
// INDEXING: r < CALL_ROWS and t < TILE_TOKENS are loop counters over the
// arrays' own const lengths, so every access is in bounds by type.
#[allow(clippy::indexing_slicing)]
fn transpose_full_tile(o: &[f32], tt: &mut [[f32; CALL_ROWS]; TILE_TOKENS]) -> bool {
    let tile: &[[f32; TILE_TOKENS]; CALL_ROWS] = match o.as_chunks::<TILE_TOKENS>() {
        (rows, []) => match rows.try_into() {
            Ok(t) => t,
            Err(_) => return false,
        },
        _ => return false,
    };
    for r in 0..CALL_ROWS {
        for t in 0..TILE_TOKENS {
            tt[t][r] = tile[r][t];
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quant::{quantize_row, BlockQ8_0, BlockQ8_1};

    fn weights(ty: GgmlType, rows: usize, cols: usize, seed: u32) -> std::vec::Vec<u8> {
        let rb = ty.row_bytes(cols).unwrap_or(0);
        let mut w = std::vec![0u8; rows * rb];
        for (r, out) in w.chunks_exact_mut(rb).enumerate() {
            let row: std::vec::Vec<f32> = (0..cols)
                .map(|c| ((r * 131 + c * 71 + seed as usize) % 97) as f32 / 48.0 - 1.0)
                .collect();
            assert!(quantize_row(ty, &row, out).is_ok());
        }
        w
    }

    #[test]
    fn full_tile_transposition_and_other_lengths() {
        let o: std::vec::Vec<f32> = (0..CALL_ROWS * TILE_TOKENS).map(|i| i as f32).collect();
        let mut tt = [[0.0f32; CALL_ROWS]; TILE_TOKENS];
        assert!(transpose_full_tile(&o, &mut tt));
        for (t, col) in tt.iter().enumerate() {
            for (r, &v) in col.iter().enumerate() {
                assert_eq!(v, (r * TILE_TOKENS + t) as f32);
            }
        }
        let before = tt;
        assert!(!transpose_full_tile(&o[..o.len() - 1], &mut tt));
        assert!(!transpose_full_tile(&o[..TILE_TOKENS * 8], &mut tt));
        assert_eq!(tt, before, "other lengths leave the tile untouched");
    }

    /// Two matrices of different weight types (so both activation forms) in one
    /// dispatch, with an epilogue reading both outputs, equal separate matmuls
    /// followed by the same element-wise step, with and without a split.
    #[test]
    fn matmul_then_pair_and_epilogue_equal_separate_matmuls() {
        // 40 x 64 x 11 x 2 = 56,320 multiply-adds: above the split threshold;
        // 11 tokens: one packed group and 3 row-form tokens where the backend
        // has a packed Q8_0 layout (x86_64 AVX2), for the all-Q8_0 pair.
        let (rows, cols, n) = (40usize, 64usize, 11usize);
        let x: std::vec::Vec<f32> = (0..n * cols)
            .map(|i| ((i * 37) % 101) as f32 / 50.0 - 1.0)
            .collect();
        let mut q0 = std::vec![BlockQ8_0::default(); n * cols / QK];
        let mut q1 = std::vec![BlockQ8_1::default(); n * cols / QK];
        let pairs = [
            (GgmlType::Q8_0, GgmlType::Q4_1),
            (GgmlType::Q8_0, GgmlType::Q8_0),
            (GgmlType::Q4_1, GgmlType::F16),
            (GgmlType::F32, GgmlType::Q4_0),
        ];
        // Miri: one pair, one split (the raw-pointer sharing is what it checks).
        let (pairs, task_counts) = if cfg!(miri) {
            (&pairs[..1], &[3usize][..])
        } else {
            (&pairs[..], &[1usize, 2, 3, 7][..])
        };
        for &(t1, t2) in pairs {
            let (b1, b2) = (weights(t1, rows, cols, 1), weights(t2, rows, cols, 2));
            let w1 = Matrix {
                ty: t1,
                rows,
                cols,
                data: &b1,
            };
            let w2 = Matrix {
                ty: t2,
                rows,
                cols,
                data: &b2,
            };
            let k = Kernels::detect();
            let mut s = QuantScratch {
                q8_0: &mut q0,
                q8_1: &mut q1,
            };
            let (mut a, mut b) = (std::vec![0f32; n * rows], std::vec![0f32; n * rows]);
            assert!(matmul(&k, &w1, &x, n, &mut a, &mut s).is_ok());
            assert!(matmul(&k, &w2, &x, n, &mut b, &mut s).is_ok());
            let want: std::vec::Vec<f32> = a.iter().zip(&b).map(|(p, q)| p * 0.5 + q).collect();
            for &tasks in task_counts {
                let mut kt = k;
                // SAFETY: `serial` runs every task once on this thread.
                kt.parallel =
                    Some(unsafe { ParallelFor::new(serial, core::ptr::null_mut(), tasks) });
                let (mut o1, mut o2) = (std::vec![0f32; n * rows], std::vec![0f32; n * rows]);
                let epi = |_: usize, o: &mut [f32], o2: &mut [f32]| {
                    for (p, q) in o.iter_mut().zip(o2.iter()) {
                        *p = *p * 0.5 + q;
                    }
                };
                let r = matmul_then(
                    &kt,
                    &w1,
                    Some(&w2),
                    &x,
                    n,
                    &mut o1,
                    &mut o2,
                    &mut s,
                    Some(&epi),
                );
                assert!(r.is_ok());
                assert!(
                    o2.iter().zip(&b).all(|(p, q)| p.to_bits() == q.to_bits()),
                    "{t2:?} {tasks}"
                );
                assert!(
                    o1.iter()
                        .zip(&want)
                        .all(|(p, q)| p.to_bits() == q.to_bits()),
                    "{t1:?} {tasks}"
                );
            }
        }
    }

    unsafe extern "C" fn serial(
        _: *mut core::ffi::c_void,
        n: usize,
        task: parallel::TaskFn,
        d: *const core::ffi::c_void,
    ) {
        for i in (0..n).rev() {
            // SAFETY: the core's task contract.
            unsafe { task(d, i) };
        }
    }
}
