//! aarch64 kernels: NEON (baseline on every aarch64 target that has it) and
//! NEON + dotprod (`sdot`).
//!
//! Every kernel reproduces the fixed reduction order of [`super::scalar`] bit
//! for bit:
//! - float dots keep sixteen lanes as four `float32x4_t` accumulators
//!   (element `i` in lane `i % 16`) and use `vmulq_f32` then `vaddq_f32`,
//!   never `vfmaq_f32`;
//! - quantized dots take the exact integer sum of each block, turn it into one
//!   f32 term with the scalar formula (same operations, same order) and add it
//!   to lane `j % 8` (blocks `8g..8g+4` go to the low accumulator, `8g+4..8g+8`
//!   to the high one);
//! - the lanes are folded by halves as [`super::scalar::fold_lanes`] does.
//!
//! # Dispatch
//! NEON is part of the target (`cfg(target_feature = "neon")`), so the NEON
//! table needs no detection. `dotprod` is detected at run time without std: on
//! Linux and Android the kernel traps and emulates `mrs` of the ID registers
//! from user space (`HWCAP_CPUID`, Linux 4.11 and later; QEMU user mode does
//! the same), so [`has_dotprod`] reads `ID_AA64ISAR0_EL1.DP` directly. On other
//! systems (macOS, bare metal, ...) the answer is the compile-time
//! `cfg(target_feature = "dotprod")`, which Apple targets enable by default.
//! `vdotq_s32` is nightly-only in Rust 1.95, so `sdot` is written with `asm!`
//! inside `#[target_feature(enable = "dotprod")]` functions.
//!
//! f16 <-> f32: the stable `vcvt_f32_f16` needs the unstable `f16` type, so the
//! widening `fcvtl`/`fcvtl2` (base ARMv8 Advanced SIMD, exact, quiets NaNs the
//! way the `half` crate does) is written with `asm!` too. The two f16 scales a
//! quantize writes per block go through the scalar [`f32_to_f16`], the same
//! function the reference uses.

mod dotprod;
mod neon;

use core::arch::aarch64::*;
use core::arch::asm;

use super::scalar::fold_lanes;
use super::{Backend, Kernels};
use crate::quant::{f16_to_f32, f32_to_f16, BlockQ8_0, BlockQ8_1, QK};

/// Whether this CPU has the dotprod extension (`sdot`/`udot`).
pub(crate) fn has_dotprod() -> bool {
    #[cfg(target_feature = "dotprod")]
    {
        true
    }
    #[cfg(all(
        not(target_feature = "dotprod"),
        any(target_os = "linux", target_os = "android"),
        not(miri)
    ))]
    {
        let isar0: u64;
        // SAFETY: reading ID_AA64ISAR0_EL1 at EL0 traps to the kernel, which
        // emulates it (HWCAP_CPUID, Linux >= 4.11); the instruction touches no
        // memory and only writes the output register.
        unsafe {
            asm!("mrs {}, ID_AA64ISAR0_EL1", out(reg) isar0, options(nomem, nostack, preserves_flags));
        }
        // DP, bits [47:44]: 0b0001 = SDOT/UDOT implemented.
        (isar0 >> 44) & 0xf >= 1
    }
    #[cfg(all(
        not(target_feature = "dotprod"),
        not(all(any(target_os = "linux", target_os = "android"), not(miri)))
    ))]
    {
        false
    }
}

/// The NEON table.
pub(crate) const NEON: Kernels = Kernels {
    backend: Backend::Neon,
    vec_dot_f32_f32,
    vec_dot_f16_f32,
    vec_dot_q8_0_q8_0: neon::vec_dot_q8_0_q8_0,
    vec_dot_q4_0_q8_0: neon::vec_dot_q4_0_q8_0,
    vec_dot_q4_1_q8_1: neon::vec_dot_q4_1_q8_1,
    quantize_row_q8_0,
    quantize_row_q8_1,
    gemm_q8_0_q8_0: None,
    gemm_q4_0_q8_0: None,
    gemm_q4_1_q8_1: None,
    packed_q8_0: None,
    scores: None,
    scores2: None,
    mix2: None,
    softmax: crate::ops::softmax,
    mix: crate::ops::mix,
    gelu: crate::ops::gelu,
    swiglu: crate::ops::swiglu,
    parallel: None,
};

/// The NEON + dotprod table. Only handed out after [`has_dotprod`] said yes.
/// The float kernels and the quantizers are the NEON ones (dotprod only has
/// integer instructions).
pub(crate) const DOTPROD: Kernels = Kernels {
    backend: Backend::NeonDotprod,
    vec_dot_f32_f32,
    vec_dot_f16_f32,
    vec_dot_q8_0_q8_0: dotprod::vec_dot_q8_0_q8_0,
    vec_dot_q4_0_q8_0: dotprod::vec_dot_q4_0_q8_0,
    vec_dot_q4_1_q8_1: dotprod::vec_dot_q4_1_q8_1,
    quantize_row_q8_0,
    quantize_row_q8_1,
    gemm_q8_0_q8_0: None,
    gemm_q4_0_q8_0: None,
    gemm_q4_1_q8_1: None,
    packed_q8_0: None,
    scores: None,
    scores2: None,
    mix2: None,
    softmax: crate::ops::softmax,
    mix: crate::ops::mix,
    gelu: crate::ops::gelu,
    swiglu: crate::ops::swiglu,
    parallel: None,
};

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// Widen the low four f16 lanes of `h` to f32 (exact).
#[inline]
#[target_feature(enable = "neon")]
fn cvt_f16_lo(h: uint16x8_t) -> float32x4_t {
    let r: float32x4_t;
    // SAFETY: `fcvtl` is base ARMv8 Advanced SIMD (present: this module is
    // compiled only with `target_feature = "neon"`); registers only.
    unsafe {
        asm!("fcvtl {0:v}.4s, {1:v}.4h", out(vreg) r, in(vreg) h,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// Widen the high four f16 lanes of `h` to f32 (exact).
#[inline]
#[target_feature(enable = "neon")]
fn cvt_f16_hi(h: uint16x8_t) -> float32x4_t {
    let r: float32x4_t;
    // SAFETY: as in `cvt_f16_lo` (`fcvtl2` is base Advanced SIMD).
    unsafe {
        asm!("fcvtl2 {0:v}.4s, {1:v}.8h", out(vreg) r, in(vreg) h,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// Four f16 values (bits) widened to f32.
#[inline]
#[target_feature(enable = "neon")]
fn f16x4(a: u16, b: u16, c: u16, d: u16) -> float32x4_t {
    let bits = a as u64 | (b as u64) << 16 | (c as u64) << 32 | (d as u64) << 48;
    cvt_f16_lo(vcombine_u16(vcreate_u16(bits), vcreate_u16(0)))
}

/// Fold sixteen lanes held as `[l0..l3], [l4..l7], [l8..l11], [l12..l15]` by
/// halves (h = 8, 4, 2, 1), exactly as [`fold_lanes`] does.
#[inline]
#[target_feature(enable = "neon")]
fn fold16(a: [float32x4_t; 4]) -> f32 {
    let lo = vaddq_f32(a[0], a[2]);
    let hi = vaddq_f32(a[1], a[3]);
    fold4(vaddq_f32(lo, hi))
}

/// Fold four lanes by halves: `(l0 + l2) + (l1 + l3)`.
#[inline]
#[target_feature(enable = "neon")]
fn fold4(v: float32x4_t) -> f32 {
    let h = vadd_f32(vget_low_f32(v), vget_high_f32(v));
    vget_lane_f32::<0>(h) + vget_lane_f32::<1>(h)
}

/// Load 16 bytes at `p`.
///
/// # Safety
/// `p..p + 16` must be readable (no alignment needed).
#[inline]
#[target_feature(enable = "neon")]
unsafe fn ld_u8(p: *const u8) -> uint8x16_t {
    // SAFETY: the caller guarantees 16 readable bytes; `ld1` has no alignment
    // requirement.
    unsafe { vld1q_u8(p) }
}

/// Load 16 signed bytes at `p`.
///
/// # Safety
/// As [`ld_u8`].
#[inline]
#[target_feature(enable = "neon")]
unsafe fn ld_i8(p: *const i8) -> int8x16_t {
    // SAFETY: the caller guarantees 16 readable bytes.
    unsafe { vld1q_s8(p) }
}

// ---------------------------------------------------------------------------
// Float dots
// ---------------------------------------------------------------------------

/// `acc[k] = acc[k] + w[k] * x[k]` for the sixteen elements at `w`, `x`.
///
/// # Safety
/// `w..w + 64` bytes and `x..x + 16` floats must be readable.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn step_f32(acc: &mut [float32x4_t; 4], w: *const u8, x: *const f32) {
    for (k, a) in acc.iter_mut().enumerate() {
        // SAFETY: k < 4, so the reads stay inside the 64 + 64 bytes the caller
        // guarantees; little-endian bytes reinterpret as f32 lanes.
        let (wv, xv) = unsafe {
            (
                vreinterpretq_f32_u8(ld_u8(w.add(16 * k))),
                vld1q_f32(x.add(4 * k)),
            )
        };
        *a = vaddq_f32(*a, vmulq_f32(wv, xv));
    }
}

/// Dot product of an F32 weight row (little-endian bytes) with f32 activations.
pub(crate) fn vec_dot_f32_f32(w: &[u8], x: &[f32]) -> f32 {
    // SAFETY: NEON is part of the build target (this module's cfg).
    unsafe { vec_dot_f32_f32_neon(w, x) }
}

#[target_feature(enable = "neon")]
fn vec_dot_f32_f32_neon(w: &[u8], x: &[f32]) -> f32 {
    let n = (w.len() / 4).min(x.len());
    let main = n - n % 16;
    let mut acc = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i < main {
        // SAFETY: i + 16 <= n, so 64 bytes of `w` and 16 floats of `x` from
        // element i are in bounds.
        unsafe { step_f32(&mut acc, w.as_ptr().add(4 * i), x.as_ptr().add(i)) };
        i += 16;
    }
    if main < n {
        // The tail goes through zero-padded copies: a padded lane adds
        // +0 * +0 = +0, which leaves any accumulator (never -0) unchanged.
        let mut wt = [0u8; 64];
        let mut xt = [0f32; 16];
        let (ws, xs) = (w.get(4 * main..4 * n), x.get(main..n));
        if let (Some(ws), Some(xs)) = (ws, xs) {
            wt.iter_mut().zip(ws).for_each(|(d, s)| *d = *s);
            xt.iter_mut().zip(xs).for_each(|(d, s)| *d = *s);
        }
        // SAFETY: both buffers are exactly 64 bytes / 16 floats.
        unsafe { step_f32(&mut acc, wt.as_ptr(), xt.as_ptr()) };
    }
    fold16(acc)
}

/// `acc[k] = acc[k] + f32(w[k]) * x[k]` for the sixteen f16 weights at `w`.
///
/// # Safety
/// `w..w + 32` bytes and `x..x + 16` floats must be readable.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn step_f16(acc: &mut [float32x4_t; 4], w: *const u8, x: *const f32) {
    // SAFETY: 32 bytes of `w` are readable (caller).
    let (h0, h1) = unsafe {
        (
            vreinterpretq_u16_u8(ld_u8(w)),
            vreinterpretq_u16_u8(ld_u8(w.add(16))),
        )
    };
    let wv = [
        cvt_f16_lo(h0),
        cvt_f16_hi(h0),
        cvt_f16_lo(h1),
        cvt_f16_hi(h1),
    ];
    for ((k, a), wk) in acc.iter_mut().enumerate().zip(wv) {
        // SAFETY: k < 4, 16 floats of `x` are readable (caller).
        let xv = unsafe { vld1q_f32(x.add(4 * k)) };
        *a = vaddq_f32(*a, vmulq_f32(wk, xv));
    }
}

/// Dot product of an F16 weight row with f32 activations (f16 widened exactly).
pub(crate) fn vec_dot_f16_f32(w: &[u8], x: &[f32]) -> f32 {
    // SAFETY: NEON is part of the build target (this module's cfg).
    unsafe { vec_dot_f16_f32_neon(w, x) }
}

#[target_feature(enable = "neon")]
fn vec_dot_f16_f32_neon(w: &[u8], x: &[f32]) -> f32 {
    let n = (w.len() / 2).min(x.len());
    let main = n - n % 16;
    let mut acc = [vdupq_n_f32(0.0); 4];
    let mut i = 0;
    while i < main {
        // SAFETY: i + 16 <= n: 32 bytes of `w`, 16 floats of `x` in bounds.
        unsafe { step_f16(&mut acc, w.as_ptr().add(2 * i), x.as_ptr().add(i)) };
        i += 16;
    }
    if main < n {
        // Zero padding as in `vec_dot_f32_f32` (f16 +0 widens to f32 +0).
        let mut wt = [0u8; 32];
        let mut xt = [0f32; 16];
        if let (Some(ws), Some(xs)) = (w.get(2 * main..2 * n), x.get(main..n)) {
            wt.iter_mut().zip(ws).for_each(|(d, s)| *d = *s);
            xt.iter_mut().zip(xs).for_each(|(d, s)| *d = *s);
        }
        // SAFETY: the buffers are exactly 32 bytes / 16 floats.
        unsafe { step_f16(&mut acc, wt.as_ptr(), xt.as_ptr()) };
    }
    fold16(acc)
}

// ---------------------------------------------------------------------------
// Quantized dots: one driver per format, generic over the block integer dot
// ---------------------------------------------------------------------------

/// The integer part of a quantized block dot. The lanes of the returned
/// vector sum to the exact dot product.
pub(super) trait BlockDot {
    /// `sum(a[i] * b[i])` over the 32 pairs `(a0, b0)`, `(a1, b1)`, any i8 values.
    ///
    /// # Safety
    /// The CPU must support the implementation's instructions.
    unsafe fn dot_i8(a0: int8x16_t, b0: int8x16_t, a1: int8x16_t, b1: int8x16_t) -> int32x4_t;

    /// As [`BlockDot::dot_i8`], with `|a| <= 15` (4-bit weights).
    ///
    /// # Safety
    /// As [`BlockDot::dot_i8`].
    unsafe fn dot_i4(a0: int8x16_t, b0: int8x16_t, a1: int8x16_t, b1: int8x16_t) -> int32x4_t;
}

/// Reduce four blocks' partial vectors to `[S0, S1, S2, S3]` (exact).
#[inline]
#[target_feature(enable = "neon")]
fn sums4(s: [int32x4_t; 4]) -> float32x4_t {
    let p01 = vpaddq_s32(s[0], s[1]);
    let p23 = vpaddq_s32(s[2], s[3]);
    // |S| <= 32 * 128 * 128 < 2^24: the conversion is exact.
    vcvtq_f32_s32(vpaddq_s32(p01, p23))
}

/// Q8_0 block dot (weights `b`, activations `xb`).
///
/// # Safety
/// The CPU must support `D`'s instructions.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn q8_0_block<D: BlockDot>(b: &[u8; 34], xb: &BlockQ8_0) -> int32x4_t {
    // SAFETY: bytes 2..18 and 18..34 of a 34-byte block; the 32 quants of `xb`.
    let (w0, w1, x0, x1) = unsafe {
        (
            vreinterpretq_s8_u8(ld_u8(b.as_ptr().add(2))),
            vreinterpretq_s8_u8(ld_u8(b.as_ptr().add(18))),
            ld_i8(xb.qs.as_ptr()),
            ld_i8(xb.qs.as_ptr().add(16)),
        )
    };
    // SAFETY: forwarded from the caller.
    unsafe { D::dot_i8(w0, x0, w1, x1) }
}

/// Q4_0 block dot: nibbles minus 8 against the Q8_0 quants.
///
/// # Safety
/// The CPU must support `D`'s instructions.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn q4_0_block<D: BlockDot>(b: &[u8; 18], xb: &BlockQ8_0) -> int32x4_t {
    // SAFETY: bytes 2..18 of an 18-byte block; the 32 quants of `xb`.
    let (q, x0, x1) = unsafe {
        (
            ld_u8(b.as_ptr().add(2)),
            ld_i8(xb.qs.as_ptr()),
            ld_i8(xb.qs.as_ptr().add(16)),
        )
    };
    let eight = vdupq_n_s8(8);
    let lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0f))), eight);
    let hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8::<4>(q)), eight);
    // SAFETY: forwarded from the caller.
    unsafe { D::dot_i4(lo, x0, hi, x1) }
}

/// Q4_1 block dot: unsigned nibbles against the Q8_1 quants.
///
/// # Safety
/// The CPU must support `D`'s instructions.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn q4_1_block<D: BlockDot>(b: &[u8; 20], xb: &BlockQ8_1) -> int32x4_t {
    // SAFETY: bytes 4..20 of a 20-byte block; the 32 quants of `xb`.
    let (q, x0, x1) = unsafe {
        (
            ld_u8(b.as_ptr().add(4)),
            ld_i8(xb.qs.as_ptr()),
            ld_i8(xb.qs.as_ptr().add(16)),
        )
    };
    let lo = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0f)));
    let hi = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q));
    // SAFETY: forwarded from the caller.
    unsafe { D::dot_i4(lo, x0, hi, x1) }
}

#[inline]
#[target_feature(enable = "neon")]
fn scale(b: &[u8], i: usize) -> u16 {
    crate::quant::le_u16(b, i)
}

/// Store the two quantized-dot accumulators as eight lanes.
#[inline]
#[target_feature(enable = "neon")]
fn lanes8(acc: [float32x4_t; 2]) -> [f32; 8] {
    let mut l = [0f32; 8];
    let (a, b) = l.split_at_mut(4);
    // SAFETY: each half is four writable floats.
    unsafe {
        vst1q_f32(a.as_mut_ptr(), acc[0]);
        vst1q_f32(b.as_mut_ptr(), acc[1]);
    }
    l
}

/// Q8_0 x Q8_0. Block term `(sumi as f32) * (dw * dx)`.
///
/// # Safety
/// The CPU must support `D`'s instructions.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_q8_0<D: BlockDot>(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    let (wb, _) = w.as_chunks::<34>();
    let nb = wb.len().min(x.len());
    let (wb, x) = (wb.get(..nb).unwrap_or(&[]), x.get(..nb).unwrap_or(&[]));
    let (wg, wt) = wb.as_chunks::<8>();
    let (xg, xt) = x.as_chunks::<8>();
    let mut acc = [vdupq_n_f32(0.0); 2];
    for (wg, xg) in wg.iter().zip(xg) {
        // blocks 0..4 of the group go to acc[0], 4..8 to acc[1]
        let halves = wg.as_chunks::<4>().0.iter().zip(xg.as_chunks::<4>().0);
        for (a, (w4, x4)) in acc.iter_mut().zip(halves) {
            let mut s = [vdupq_n_s32(0); 4];
            for ((sk, wb), xb) in s.iter_mut().zip(w4).zip(x4) {
                // SAFETY: forwarded from the caller.
                *sk = unsafe { q8_0_block::<D>(wb, xb) };
            }
            let [w0, w1, w2, w3] = w4;
            let [x0, x1, x2, x3] = x4;
            let dw = f16x4(scale(w0, 0), scale(w1, 0), scale(w2, 0), scale(w3, 0));
            let dx = f16x4(x0.d, x1.d, x2.d, x3.d);
            *a = vaddq_f32(*a, vmulq_f32(sums4(s), vmulq_f32(dw, dx)));
        }
    }
    let mut l = lanes8(acc);
    // the tail (< 8 blocks): block j goes to lane j
    for ((lane, b), xb) in l.iter_mut().zip(wt).zip(xt) {
        // SAFETY: forwarded from the caller.
        let sumi = vaddvq_s32(unsafe { q8_0_block::<D>(b, xb) });
        let d = f16_to_f32(scale(b, 0)) * f16_to_f32(xb.d);
        *lane += sumi as f32 * d;
    }
    fold_lanes(l)
}

/// Q4_0 x Q8_0. Block term `(sumi as f32) * (dw * dx)`, `sumi = sum((q - 8) * a)`.
///
/// # Safety
/// The CPU must support `D`'s instructions.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_q4_0<D: BlockDot>(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    let (wb, _) = w.as_chunks::<18>();
    let nb = wb.len().min(x.len());
    let (wb, x) = (wb.get(..nb).unwrap_or(&[]), x.get(..nb).unwrap_or(&[]));
    let (wg, wt) = wb.as_chunks::<8>();
    let (xg, xt) = x.as_chunks::<8>();
    let mut acc = [vdupq_n_f32(0.0); 2];
    for (wg, xg) in wg.iter().zip(xg) {
        // blocks 0..4 of the group go to acc[0], 4..8 to acc[1]
        let halves = wg.as_chunks::<4>().0.iter().zip(xg.as_chunks::<4>().0);
        for (a, (w4, x4)) in acc.iter_mut().zip(halves) {
            let mut s = [vdupq_n_s32(0); 4];
            for ((sk, wb), xb) in s.iter_mut().zip(w4).zip(x4) {
                // SAFETY: forwarded from the caller.
                *sk = unsafe { q4_0_block::<D>(wb, xb) };
            }
            let [w0, w1, w2, w3] = w4;
            let [x0, x1, x2, x3] = x4;
            let dw = f16x4(scale(w0, 0), scale(w1, 0), scale(w2, 0), scale(w3, 0));
            let dx = f16x4(x0.d, x1.d, x2.d, x3.d);
            *a = vaddq_f32(*a, vmulq_f32(sums4(s), vmulq_f32(dw, dx)));
        }
    }
    let mut l = lanes8(acc);
    // the tail (< 8 blocks): block j goes to lane j
    for ((lane, b), xb) in l.iter_mut().zip(wt).zip(xt) {
        // SAFETY: forwarded from the caller.
        let sumi = vaddvq_s32(unsafe { q4_0_block::<D>(b, xb) });
        let d = f16_to_f32(scale(b, 0)) * f16_to_f32(xb.d);
        *lane += sumi as f32 * d;
    }
    fold_lanes(l)
}

/// Q4_1 x Q8_1. Block term `(sumi as f32) * (dw * dx) + mw * sx`.
///
/// # Safety
/// The CPU must support `D`'s instructions.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_q4_1<D: BlockDot>(w: &[u8], x: &[BlockQ8_1]) -> f32 {
    let (wb, _) = w.as_chunks::<20>();
    let nb = wb.len().min(x.len());
    let (wb, x) = (wb.get(..nb).unwrap_or(&[]), x.get(..nb).unwrap_or(&[]));
    let (wg, wt) = wb.as_chunks::<8>();
    let (xg, xt) = x.as_chunks::<8>();
    let mut acc = [vdupq_n_f32(0.0); 2];
    for (wg, xg) in wg.iter().zip(xg) {
        // blocks 0..4 of the group go to acc[0], 4..8 to acc[1]
        let halves = wg.as_chunks::<4>().0.iter().zip(xg.as_chunks::<4>().0);
        for (a, (w4, x4)) in acc.iter_mut().zip(halves) {
            let mut s = [vdupq_n_s32(0); 4];
            for ((sk, wb), xb) in s.iter_mut().zip(w4).zip(x4) {
                // SAFETY: forwarded from the caller.
                *sk = unsafe { q4_1_block::<D>(wb, xb) };
            }
            let [w0, w1, w2, w3] = w4;
            let [x0, x1, x2, x3] = x4;
            let dw = f16x4(scale(w0, 0), scale(w1, 0), scale(w2, 0), scale(w3, 0));
            let mw = f16x4(scale(w0, 2), scale(w1, 2), scale(w2, 2), scale(w3, 2));
            let dx = f16x4(x0.d, x1.d, x2.d, x3.d);
            let sx = f16x4(x0.s, x1.s, x2.s, x3.s);
            let t = vaddq_f32(vmulq_f32(sums4(s), vmulq_f32(dw, dx)), vmulq_f32(mw, sx));
            *a = vaddq_f32(*a, t);
        }
    }
    let mut l = lanes8(acc);
    // the tail (< 8 blocks): block j goes to lane j
    for ((lane, b), xb) in l.iter_mut().zip(wt).zip(xt) {
        // SAFETY: forwarded from the caller.
        let sumi = vaddvq_s32(unsafe { q4_1_block::<D>(b, xb) });
        let d = f16_to_f32(scale(b, 0)) * f16_to_f32(xb.d);
        let m = f16_to_f32(scale(b, 2)) * f16_to_f32(xb.s);
        *lane += sumi as f32 * d + m;
    }
    fold_lanes(l)
}

// ---------------------------------------------------------------------------
// Quantize activations
// ---------------------------------------------------------------------------

/// Quantize one block: `(d, quants, sum of quants)`, as the scalar
/// `quantize_block`: `amax` ignores NaN (`f32::max`), `d = amax / 127`,
/// `id = 1 / d` (0 for d = 0), `q = round_half_even(x * id)` saturated to i8
/// like `as i8` (NaN -> 0).
#[inline]
#[target_feature(enable = "neon")]
fn quantize_block(xb: &[f32; QK], qs: &mut [i8; QK]) -> (f32, i32) {
    let mut v = [vdupq_n_f32(0.0); 8];
    for (k, vk) in v.iter_mut().enumerate() {
        // SAFETY: 4 * k + 4 <= 32 floats of the block.
        *vk = unsafe { vld1q_f32(xb.as_ptr().add(4 * k)) };
    }
    // amax: `m = if |v| > m { |v| } else { m }` is `f32::max(m, |v|)` for a
    // non-NaN m (NaN compares false and is skipped; |v| >= +0, so no signed
    // zero question); max is exact, so the tree order does not matter.
    let mut m = [vdupq_n_f32(0.0); 2];
    for pair in v.as_chunks::<2>().0 {
        // v[k] goes to m[k % 2]
        for (mk, vk) in m.iter_mut().zip(pair) {
            let a = vabsq_f32(*vk);
            *mk = vbslq_f32(vcgtq_f32(a, *mk), a, *mk);
        }
    }
    let amax = vmaxvq_f32(vmaxq_f32(m[0], m[1]));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let vid = vdupq_n_f32(id);
    // vcvtnq: round to nearest even, saturating to i32, NaN -> 0; the two
    // saturating narrows then clamp to i8 exactly as `as i8` does.
    let q = |a: float32x4_t, b: float32x4_t| {
        let a = vqmovn_s32(vcvtnq_s32_f32(vmulq_f32(a, vid)));
        let b = vqmovn_s32(vcvtnq_s32_f32(vmulq_f32(b, vid)));
        vcombine_s16(a, b)
    };
    let q0 = vcombine_s8(vqmovn_s16(q(v[0], v[1])), vqmovn_s16(q(v[2], v[3])));
    let q1 = vcombine_s8(vqmovn_s16(q(v[4], v[5])), vqmovn_s16(q(v[6], v[7])));
    // SAFETY: 32 writable bytes in `qs`.
    unsafe {
        vst1q_s8(qs.as_mut_ptr(), q0);
        vst1q_s8(qs.as_mut_ptr().add(16), q1);
    }
    let sum = vaddlvq_s8(q0) as i32 + vaddlvq_s8(q1) as i32;
    (d, sum)
}

/// Quantize activations to Q8_0 blocks.
pub(crate) fn quantize_row_q8_0(x: &[f32], y: &mut [BlockQ8_0]) {
    // SAFETY: NEON is part of the build target (this module's cfg).
    unsafe { quantize_row_q8_0_neon(x, y) }
}

#[target_feature(enable = "neon")]
fn quantize_row_q8_0_neon(x: &[f32], y: &mut [BlockQ8_0]) {
    let (xb, _) = x.as_chunks::<QK>();
    for (xb, yb) in xb.iter().zip(y.iter_mut()) {
        let (d, _) = quantize_block(xb, &mut yb.qs);
        yb.d = f32_to_f16(d);
    }
}

/// Quantize activations to Q8_1 blocks (`s = f16(d * sum(q))`).
pub(crate) fn quantize_row_q8_1(x: &[f32], y: &mut [BlockQ8_1]) {
    // SAFETY: NEON is part of the build target (this module's cfg).
    unsafe { quantize_row_q8_1_neon(x, y) }
}

#[target_feature(enable = "neon")]
fn quantize_row_q8_1_neon(x: &[f32], y: &mut [BlockQ8_1]) {
    let (xb, _) = x.as_chunks::<QK>();
    for (xb, yb) in xb.iter().zip(y.iter_mut()) {
        let (d, sum) = quantize_block(xb, &mut yb.qs);
        yb.d = f32_to_f16(d);
        yb.s = f32_to_f16(d * sum as f32);
    }
}
