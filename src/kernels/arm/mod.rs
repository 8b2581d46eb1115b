//! Cortex-M kernels: Armv7E-M DSP (`SXTB16`/`SMLAD`, Cortex-M4/M7/M33/M55) and
//! Armv8.1-M Helium/MVE (`VMLADAVA`, Cortex-M55), through stable `asm!`.
//!
//! Selected at build time, never by run-time detection: `cfg(target_feature =
//! "dsp")` is always false on stable Rust, and bare-metal cores have no portable
//! way to ask. The Cargo feature `dsp` (resp. `helium`) on an `arm` target says
//! "this core has the extension"; building `helium` needs
//! `-C target-cpu=cortex-m55` so that the assembler accepts MVE.
//!
//! Only the exact integer block sums are computed in assembly. The float part
//! (`sumi as f32 * (dw * dx)` added to lane `j % 8`, then the fold by halves) is
//! the Rust of [`super::scalar`], so every result is bit-identical to it.
//!
//! Besides the one-row table entries, [`matvec`] computes several rows at once
//! sharing the widened activations (see [`super::matmul`]).

#[cfg(feature = "dsp")]
pub mod dsp;
#[cfg(feature = "helium")]
pub mod helium;

use super::scalar::fold_lanes;
use super::Backend;
use crate::quant::{BlockQ8_0, GgmlType};

/// f16 bits to f32, exactly as [`crate::quant::f16_to_f32`] (every value, NaN
/// payloads included): one `VCVTB.F32.F16` on hard-float targets (FPv4/FPv5 and
/// the M55's FPU all have it; needs FPSCR.DN = 0, the reset value), the software
/// conversion elsewhere.
#[inline(always)]
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    #[cfg(target_abi = "eabihf")]
    {
        let r: u32;
        // SAFETY: register-only FPU instructions on `s0`, declared clobbered (it
        // may set FPSCR exception flags, hence no `preserves_flags`); the FPU is
        // enabled on hard-float targets. (The `sreg` class would need the
        // unstable `vfp2` target feature, so the value moves through a GPR.)
        unsafe {
            core::arch::asm!(
                "vmov s0, {r}",
                "vcvtb.f32.f16 s0, s0",
                "vmov {r}, s0",
                r = inout(reg) h as u32 => r,
                out("s0") _,
                options(pure, nomem, nostack),
            );
        }
        f32::from_bits(r)
    }
    #[cfg(not(target_abi = "eabihf"))]
    {
        crate::quant::f16_to_f32(h)
    }
}

/// Sum of the `R` rows' block terms in the fixed order of [`super::scalar`].
///
/// `bs` is the weight block size in bytes; `sums(j, &x[j])` returns the exact
/// integer sums of block `j` of every row, and is only called with
/// `j * bs + bs <= w[r].len()` for every `r` (the kernels' `unsafe` relies on it).
/// Blocks are counted as `scalar` counts them: `min(row_len / bs, x.len())`.
#[cfg_attr(not(any(feature = "dsp", feature = "helium")), allow(dead_code))]
#[inline(always)]
pub(crate) fn rows_dot<const R: usize>(
    w: &[&[u8]; R],
    x: &[BlockQ8_0],
    bs: usize,
    mut sums: impl FnMut(usize, &BlockQ8_0) -> [i32; R],
) -> [f32; R] {
    let mut nb = x.len();
    for wr in w {
        nb = nb.min(wr.len() / bs);
    }
    let mut acc = [[0.0f32; 8]; R];
    for (j, xb) in x.iter().enumerate().take(nb) {
        let s = sums(j, xb);
        let dx = f16_to_f32(xb.d);
        let lane = j % 8;
        for r in 0..R {
            // SAFETY: `j < nb <= w[r].len() / bs`, so bytes `j * bs .. j * bs + 2`
            // are inside row `r`; `read_unaligned` needs no alignment.
            let dw = unsafe { w[r].as_ptr().add(j * bs).cast::<u16>().read_unaligned() };
            let d = f16_to_f32(u16::from_le(dw)) * dx;
            acc[r][lane] += s[r] as f32 * d;
        }
    }
    let mut out = [0.0f32; R];
    for r in 0..R {
        out[r] = fold_lanes(acc[r]);
    }
    out
}

/// `out[r] = dot(row r, x)` for all rows of a Q8_0 or Q4_0 matrix, several rows
/// at a time. Returns false (doing nothing) when `backend` has no multi-row
/// kernel for `ty`; the caller then uses the one-row table entry.
///
/// `data` is `out.len()` rows of `rb` bytes each (extra bytes are ignored,
/// missing rows leave `out` entries unwritten). Public for the on-target tests
/// and the instructions-per-MAC probe; [`super::matmul`] calls it.
#[allow(unused_variables)]
pub fn matvec(
    backend: Backend,
    ty: GgmlType,
    data: &[u8],
    rb: usize,
    x: &[BlockQ8_0],
    out: &mut [f32],
) -> bool {
    if rb == 0 {
        return false;
    }
    match (backend, ty) {
        #[cfg(feature = "dsp")]
        (Backend::CortexMDsp, GgmlType::Q8_0) => {
            rows_by::<4>(
                data,
                rb,
                out,
                |w| dsp::rows4_q8_0_q8_0(w, x),
                |w| dsp::vec_dot_q8_0_q8_0(w, x),
            );
            true
        }
        #[cfg(feature = "dsp")]
        (Backend::CortexMDsp, GgmlType::Q4_0) => {
            rows_by::<2>(
                data,
                rb,
                out,
                |w| dsp::rows_q4_0_q8_0(w, x),
                |w| dsp::vec_dot_q4_0_q8_0(w, x),
            );
            true
        }
        #[cfg(feature = "helium")]
        (Backend::Helium, GgmlType::Q8_0) => {
            rows_by::<4>(
                data,
                rb,
                out,
                |w| helium::rows4_q8_0_q8_0(w, x),
                |w| helium::vec_dot_q8_0_q8_0(w, x),
            );
            true
        }
        #[cfg(feature = "helium")]
        (Backend::Helium, GgmlType::Q4_0) => {
            rows_by::<4>(
                data,
                rb,
                out,
                |w| helium::rows_q4_0_q8_0(w, x),
                |w| helium::vec_dot_q4_0_q8_0(w, x),
            );
            true
        }
        _ => false,
    }
}

/// Walk `data` in groups of `R` rows (`many`), the remainder one row at a time (`one`).
#[allow(dead_code)]
#[inline(always)]
fn rows_by<const R: usize>(
    data: &[u8],
    rb: usize,
    out: &mut [f32],
    mut many: impl FnMut(&[&[u8]; R]) -> [f32; R],
    mut one: impl FnMut(&[u8]) -> f32,
) {
    let mut rows = data.chunks_exact(rb);
    let mut outs = out.chunks_exact_mut(R);
    for o in &mut outs {
        let mut w: [&[u8]; R] = [&[]; R];
        for wr in w.iter_mut() {
            *wr = rows.next().unwrap_or(&[]);
        }
        o.copy_from_slice(&many(&w));
    }
    for (o, wr) in outs.into_remainder().iter_mut().zip(rows) {
        *o = one(wr);
    }
}
