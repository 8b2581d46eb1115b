//! Kernels: the scalar reference, the per-architecture SIMD versions, dispatch,
//! and the matrix multiply built on them.
//!
//! Dispatch is chosen once ([`Kernels::new`]) and stored in the context; the
//! forward pass calls through the stored table and never re-detects.

#[cfg(target_arch = "arm")]
pub mod arm;
pub mod scalar;

use crate::error::{Error, Result};
use crate::quant::{BlockQ8_0, BlockQ8_1, GgmlType, QK};

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
/// Dot product of a weight row with Q8_0 activation blocks.
pub type VecDotQ8_0 = fn(&[u8], &[BlockQ8_0]) -> f32;
/// Dot product of a weight row with Q8_1 activation blocks.
pub type VecDotQ8_1 = fn(&[u8], &[BlockQ8_1]) -> f32;

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
            Backend::Avx2
            | Backend::AvxVnni
            | Backend::Avx512Vnni
            | Backend::Neon
            | Backend::NeonDotprod
            | Backend::Simd128 => return Err(Error::BackendUnavailable),
            #[cfg(all(target_arch = "arm", feature = "dsp"))]
            Backend::CortexMDsp => Kernels {
                vec_dot_q8_0_q8_0: arm::dsp::vec_dot_q8_0_q8_0,
                vec_dot_q4_0_q8_0: arm::dsp::vec_dot_q4_0_q8_0,
                ..SCALAR.with_backend(backend)
            },
            #[cfg(all(target_arch = "arm", feature = "helium"))]
            Backend::Helium => Kernels {
                vec_dot_q8_0_q8_0: arm::helium::vec_dot_q8_0_q8_0,
                vec_dot_q4_0_q8_0: arm::helium::vec_dot_q4_0_q8_0,
                ..SCALAR.with_backend(backend)
            },
            #[allow(unreachable_patterns)]
            Backend::CortexMDsp | Backend::Helium => return Err(Error::BackendUnavailable),
            Backend::Scalar => Kernels {
                backend,
                vec_dot_f32_f32: scalar::vec_dot_f32_f32,
                vec_dot_f16_f32: scalar::vec_dot_f16_f32,
                vec_dot_q8_0_q8_0: scalar::vec_dot_q8_0_q8_0,
                vec_dot_q4_0_q8_0: scalar::vec_dot_q4_0_q8_0,
                vec_dot_q4_1_q8_1: scalar::vec_dot_q4_1_q8_1,
                quantize_row_q8_0: scalar::quantize_row_q8_0,
                quantize_row_q8_1: scalar::quantize_row_q8_1,
            },
        })
    }

    /// The best table for this CPU.
    pub fn detect() -> Kernels {
        Kernels::new(Backend::detect()).unwrap_or(Kernels::new(Backend::Scalar).unwrap_or(SCALAR))
    }
}

impl Kernels {
    /// This table relabelled as `backend` (for tables that override a few entries).
    #[allow(dead_code)]
    const fn with_backend(self, backend: Backend) -> Kernels {
        Kernels { backend, ..self }
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

/// `out[t][r] = dot(w[r], x[t])` for `t < n`, `r < w.rows`.
///
/// `x` is `[n][w.cols]` f32, `out` is `[n][w.rows]`. Quantized weights first
/// quantize `x` into `scratch`. Every output element is one complete row
/// reduction in the fixed order of [`scalar`], so results do not depend on `n`.
pub fn matmul(
    k: &Kernels,
    w: &Matrix<'_>,
    x: &[f32],
    n: usize,
    out: &mut [f32],
    scratch: &mut QuantScratch<'_>,
) -> Result<()> {
    let rb = w.ty.row_bytes(w.cols).ok_or(Error::BadBlockShape)?;
    if w.data.len() != rb * w.rows || x.len() != n * w.cols || out.len() != n * w.rows {
        return Err(Error::ShapeMismatch);
    }
    match w.ty {
        GgmlType::F32 | GgmlType::F16 => {
            let dot = if w.ty == GgmlType::F32 {
                k.vec_dot_f32_f32
            } else {
                k.vec_dot_f16_f32
            };
            for (r, wr) in w.data.chunks_exact(rb).enumerate() {
                for t in 0..n {
                    out[t * w.rows + r] = dot(wr, &x[t * w.cols..(t + 1) * w.cols]);
                }
            }
        }
        GgmlType::Q8_0 | GgmlType::Q4_0 => {
            let nb = w.cols / QK;
            let xq = scratch.q8_0.get_mut(..n * nb).ok_or(Error::ShapeMismatch)?;
            for (xr, qr) in x.chunks_exact(w.cols).zip(xq.chunks_exact_mut(nb)) {
                (k.quantize_row_q8_0)(xr, qr);
            }
            // Cortex-M: several rows at a time, sharing the widened activations.
            #[cfg(target_arch = "arm")]
            if nb > 0 && w.rows > 0 {
                let mut done = false;
                for (qr, o) in xq.chunks_exact(nb).zip(out.chunks_exact_mut(w.rows)) {
                    done = arm::matvec(k.backend, w.ty, w.data, rb, qr, o);
                    if !done {
                        break;
                    }
                }
                if done {
                    return Ok(());
                }
            }
            let dot = if w.ty == GgmlType::Q8_0 {
                k.vec_dot_q8_0_q8_0
            } else {
                k.vec_dot_q4_0_q8_0
            };
            for (r, wr) in w.data.chunks_exact(rb).enumerate() {
                for (t, qr) in xq.chunks_exact(nb).enumerate() {
                    out[t * w.rows + r] = dot(wr, qr);
                }
            }
        }
        GgmlType::Q4_1 => {
            let nb = w.cols / QK;
            let xq = scratch.q8_1.get_mut(..n * nb).ok_or(Error::ShapeMismatch)?;
            for (xr, qr) in x.chunks_exact(w.cols).zip(xq.chunks_exact_mut(nb)) {
                (k.quantize_row_q8_1)(xr, qr);
            }
            for (r, wr) in w.data.chunks_exact(rb).enumerate() {
                for (t, qr) in xq.chunks_exact(nb).enumerate() {
                    out[t * w.rows + r] = (k.vec_dot_q4_1_q8_1)(wr, qr);
                }
            }
        }
        _ => return Err(Error::UnsupportedTensorType),
    }
    Ok(())
}
