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
//! Besides the one-row table entries, the batched (`gemm_*`) entries run
//! whole-row kernels that share the activations across rows (2 rows on the
//! DSP, 4 on Helium), prepared once per call (see [`super::matmul`], which for
//! one activation row hands them up to 64 rows; the loop over the rows is in
//! the assembly too); shapes those kernels do not take (unaligned rows, too
//! many blocks, on Helium a block count that is not a multiple of 4) go 4 rows
//! at a time through the block kernels.

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

/// f32 to f16 bits, exactly as [`crate::quant::f32_to_f16`] (round to nearest
/// even, overflow to infinity, subnormal results rounded, NaNs quieted with the
/// top payload bits): one scalar `VCVTB.F16.F32`. That holds with FPSCR.AHP,
/// DN, FZ and RMode all 0 (IEEE half precision, no default NaN, no flush to
/// zero, round to nearest), the reset value, which Rust's float semantics
/// assume anyway; the quantizers check it ([`fpscr_is_ieee`]). Tested against
/// the software conversion in tests/cortex_m.rs.
#[cfg(target_abi = "eabihf")]
#[inline(always)]
pub fn f32_to_f16(v: f32) -> u16 {
    let r: u32;
    // SAFETY: register-only FPU instructions on `s0`, declared clobbered (it may
    // set FPSCR exception flags, hence no `preserves_flags`); the FPU is enabled
    // on hard-float targets. `VCVTB` writes the low half of `s0`.
    unsafe {
        core::arch::asm!(
            "vmov s0, {r}",
            "vcvtb.f16.f32 s0, s0",
            "vmov {r}, s0",
            r = inout(reg) v.to_bits() => r,
            out("s0") _,
            options(pure, nomem, nostack),
        );
    }
    r as u16
}

/// FPSCR bits AHP (26), DN (25), FZ (24) and RMode (23:22), the ones that
/// change what the scalar float instructions, `VCVTR` and `VCVTB` compute;
/// also FZ16 (19, Armv8.1-M half-precision flush; RES0 on the M4), which QEMU
/// does not apply to these conversions, but excluding it costs nothing.
#[cfg(target_abi = "eabihf")]
const FPSCR_MODE: u32 = 0x07c8_0000;

/// Whether FPSCR holds the IEEE defaults in all of [`FPSCR_MODE`] (the reset
/// value, which Rust's float semantics assume): one `VMRS`.
#[cfg(target_abi = "eabihf")]
#[cfg_attr(not(any(feature = "dsp", feature = "helium")), allow(dead_code))]
#[inline(always)]
pub(crate) fn fpscr_is_ieee() -> bool {
    let r: u32;
    // SAFETY: reads FPSCR into a general-purpose register; no memory access, no
    // flags written. The FPU is enabled on hard-float targets.
    unsafe {
        core::arch::asm!("vmrs {r}, fpscr", r = out(reg) r,
                         options(nomem, nostack, preserves_flags));
    }
    r & FPSCR_MODE == 0
}

// The activation quantizers' scales, from `max(bits(x) << 1)` over a block
// (`bits(|x|) << 1` of the largest magnitude, exact for subnormals, above
// `AMAX2_INF` exactly when the block holds a NaN). Blocks with a NaN or with
// `0 < amax < 2^-100` go through the scalar reference; the others have
// `amax == 0`, `amax == inf` (`id = 0`) or `d = amax / 127 >= 2^-107` normal
// and `id = 1 / d <= ~2^107` finite, so `|x * id| <= 127 * (1 + 2^-21)` for
// every `|x| <= amax`: rounded, at most 127, no saturation (the reasons each
// backend needs this are in helium.rs and dsp.rs).

/// Smallest `bits(amax) << 1` (other than 0) the fast paths take: 2^-100.
#[cfg(any(feature = "dsp", feature = "helium"))]
pub(crate) const AMAX2_MIN: u32 = 0x0d80_0000 << 1;
/// `bits(inf) << 1`: anything above is a NaN.
#[cfg(any(feature = "dsp", feature = "helium"))]
pub(crate) const AMAX2_INF: u32 = 0x7f80_0000 << 1;

/// `(d, id)` of a block from its `max(bits(x) << 1)`, or `None` for the blocks
/// the fast paths do not take (see above): the scalar reference's operations on
/// the same amax.
#[cfg(any(feature = "dsp", feature = "helium"))]
#[inline(always)]
pub(crate) fn block_scales(m: u32) -> Option<(f32, f32)> {
    if m > AMAX2_INF || (m != 0 && m < AMAX2_MIN) {
        return None;
    }
    let amax = f32::from_bits(m >> 1);
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    Some((d, id))
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
        for ((ar, wr), sr) in acc.iter_mut().zip(w).zip(s) {
            // SAFETY: `j < nb <= w[r].len() / bs`, so bytes `j * bs .. j * bs + 2`
            // are inside row `r`; `read_unaligned` needs no alignment.
            let dw = unsafe { wr.as_ptr().add(j * bs).cast::<u16>().read_unaligned() };
            let d = f16_to_f32(u16::from_le(dw)) * dx;
            if let Some(a) = ar.get_mut(lane) {
                *a += sr as f32 * d; // lane < 8 = ar.len()
            }
        }
    }
    acc.map(fold_lanes)
}

/// The batched form (`out[r * n + t]` = row `r` of `w` with activation row `t`,
/// the layout and shape checks of `scalar::gemm_with`), `R` rows at a time
/// through `many` (sharing each token's widened activations), the remaining
/// rows through `one`. Every element equals the single-row dot bit for bit.
#[cfg_attr(not(any(feature = "dsp", feature = "helium")), allow(dead_code))]
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_by<const R: usize>(
    w: &[u8],
    rows: usize,
    x: &[BlockQ8_0],
    n: usize,
    out: &mut [f32],
    bs: usize,
    mut many: impl FnMut(&[&[u8]; R], &[BlockQ8_0]) -> [f32; R],
    mut one: impl FnMut(&[u8], &[BlockQ8_0]) -> f32,
) {
    if rows == 0 || n == 0 || !x.len().is_multiple_of(n) {
        return;
    }
    let nb = x.len() / n;
    let rb = nb * bs;
    if w.len() != rows * rb || out.len() < rows * n {
        return;
    }
    let row = |r: usize| w.get(r * rb..(r + 1) * rb).unwrap_or(&[]);
    for t in 0..n {
        let xr = x.get(t * nb..(t + 1) * nb).unwrap_or(&[]);
        let mut r = 0;
        while r + R <= rows {
            let ws: [&[u8]; R] = core::array::from_fn(|i| row(r + i));
            let res = many(&ws, xr);
            for (i, v) in res.into_iter().enumerate() {
                if let Some(o) = out.get_mut((r + i) * n + t) {
                    *o = v;
                }
            }
            r += R;
        }
        while r < rows {
            if let Some(o) = out.get_mut(r * n + t) {
                *o = one(row(r), xr);
            }
            r += 1;
        }
    }
}

/// `out[r] = dot(row r, x)` for the `out.len()` rows of `rb` bytes at the start
/// of `data`, through the backend's batched kernel (as [`super::matmul`] calls
/// it, with one activation row). Returns false (doing nothing) when `backend`
/// has no Cortex-M kernel for `ty`. For the on-target tests and the
/// instructions-per-MAC probe.
#[allow(unused_variables)]
pub fn matvec(
    backend: Backend,
    ty: GgmlType,
    data: &[u8],
    rb: usize,
    x: &[BlockQ8_0],
    out: &mut [f32],
) -> bool {
    let rows = out.len();
    let Some(w) = rows.checked_mul(rb).and_then(|len| data.get(..len)) else {
        return false;
    };
    match (backend, ty) {
        #[cfg(feature = "dsp")]
        (Backend::CortexMDsp, GgmlType::Q8_0) => {
            dsp::gemm_q8_0_q8_0(w, rows, x, 1, out);
            true
        }
        #[cfg(feature = "dsp")]
        (Backend::CortexMDsp, GgmlType::Q4_0) => {
            dsp::gemm_q4_0_q8_0(w, rows, x, 1, out);
            true
        }
        #[cfg(feature = "helium")]
        (Backend::Helium, GgmlType::Q8_0) => {
            helium::gemm_q8_0_q8_0(w, rows, x, 1, out);
            true
        }
        #[cfg(feature = "helium")]
        (Backend::Helium, GgmlType::Q4_0) => {
            helium::gemm_q4_0_q8_0(w, rows, x, 1, out);
            true
        }
        _ => false,
    }
}
