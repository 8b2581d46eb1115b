//! wasm32 simd128 kernels, selected at compile time
//! (`-C target-feature=+simd128`; a wasm engine without SIMD rejects such a
//! module at load, so there is nothing to detect at run time).
//!
//! Every kernel reproduces the fixed reduction order of [`super::scalar`] bit
//! for bit (see `aarch64/mod.rs` for the same scheme): four `f32x4`
//! accumulators for the sixteen float lanes with `f32x4_mul` then `f32x4_add`
//! (wasm has no fused multiply-add outside relaxed-simd), exact integer block
//! sums, one f32 term per block into lane `j % 8`, folds by halves.
//!
//! simd128 has no 8-bit dot product: integer dots are `i16x8_extmul_*_i8x16`
//! plus `i32x4_extadd_pairwise_i16x8`. It has no f16 conversion either: f16
//! bits are widened with integer operations and one exact multiply by 2^112
//! (normals and subnormals), Inf/NaN patched in as the `half` crate builds them.

use core::arch::wasm32::*;

use super::scalar::fold_lanes;
use super::{Backend, Kernels};
use crate::quant::{f16_to_f32, f32_to_f16, le_u16, BlockQ8_0, BlockQ8_1, QK};

/// The simd128 table.
pub(crate) const SIMD128: Kernels = Kernels {
    backend: Backend::Simd128,
    vec_dot_f32_f32,
    vec_dot_f16_f32,
    vec_dot_q8_0_q8_0,
    vec_dot_q4_0_q8_0,
    vec_dot_q4_1_q8_1,
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

/// Load 16 bytes at `p`.
///
/// # Safety
/// `p..p + 16` must be readable (wasm loads need no alignment).
#[inline(always)]
unsafe fn ld<T>(p: *const T) -> v128 {
    // SAFETY: the caller guarantees 16 readable bytes; `v128.load` is unaligned.
    unsafe { v128_load(p.cast::<v128>()) }
}

/// f16 bits in the low half of each u32 lane to f32, bit-identical to
/// `half::f16::to_f32`.
#[inline(always)]
fn f16_to_f32x4(h: v128) -> v128 {
    let sign = i32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16);
    let em = v128_and(h, u32x4_splat(0x7fff));
    // Exponent field moved into place; the multiply rebiases (2^(127-15)).
    let finite = f32x4_mul(i32x4_shl(em, 13), f32x4_splat(f32::from_bits(0x7780_0000)));
    let man = v128_and(h, u32x4_splat(0x03ff));
    let quiet = v128_and(
        v128_not(i32x4_eq(man, u32x4_splat(0))),
        u32x4_splat(0x0040_0000),
    );
    let special = v128_or(v128_or(u32x4_splat(0x7f80_0000), i32x4_shl(man, 13)), quiet);
    let is_special = i32x4_ge(em, u32x4_splat(0x7c00));
    v128_or(sign, v128_bitselect(special, finite, is_special))
}

/// Four f16 values (bits) widened to f32.
#[inline(always)]
fn f16x4(a: u16, b: u16, c: u16, d: u16) -> v128 {
    f16_to_f32x4(u32x4(a as u32, b as u32, c as u32, d as u32))
}

/// Fold four lanes by halves: `(l0 + l2) + (l1 + l3)`.
#[inline(always)]
fn fold4(v: v128) -> f32 {
    let a = f32x4_extract_lane::<0>(v) + f32x4_extract_lane::<2>(v);
    let b = f32x4_extract_lane::<1>(v) + f32x4_extract_lane::<3>(v);
    a + b
}

/// Fold sixteen lanes (four vectors) by halves h = 8, 4, 2, 1.
#[inline(always)]
fn fold16(a: [v128; 4]) -> f32 {
    let lo = f32x4_add(a[0], a[2]);
    let hi = f32x4_add(a[1], a[3]);
    fold4(f32x4_add(lo, hi))
}

/// Sum of the four i32 lanes.
#[inline(always)]
fn hsum_i32(v: v128) -> i32 {
    i32x4_extract_lane::<0>(v)
        + i32x4_extract_lane::<1>(v)
        + i32x4_extract_lane::<2>(v)
        + i32x4_extract_lane::<3>(v)
}

// ---------------------------------------------------------------------------
// Float dots
// ---------------------------------------------------------------------------

/// `acc[k] = acc[k] + w[k] * x[k]` for the sixteen elements at `w`, `x`.
///
/// # Safety
/// `w..w + 64` bytes and `x..x + 16` floats must be readable.
#[inline(always)]
unsafe fn step_f32(acc: &mut [v128; 4], w: *const u8, x: *const f32) {
    for (k, a) in acc.iter_mut().enumerate() {
        // SAFETY: k < 4 keeps both reads inside what the caller guarantees.
        let (wv, xv) = unsafe { (ld(w.add(16 * k)), ld(x.add(4 * k))) };
        *a = f32x4_add(*a, f32x4_mul(wv, xv));
    }
}

/// Dot product of an F32 weight row (little-endian bytes) with f32 activations.
pub(crate) fn vec_dot_f32_f32(w: &[u8], x: &[f32]) -> f32 {
    let n = (w.len() / 4).min(x.len());
    let main = n - n % 16;
    let mut acc = [f32x4_splat(0.0); 4];
    let mut i = 0;
    while i < main {
        // SAFETY: i + 16 <= n: 64 bytes of `w` and 16 floats of `x` in bounds.
        unsafe { step_f32(&mut acc, w.as_ptr().add(4 * i), x.as_ptr().add(i)) };
        i += 16;
    }
    if main < n {
        // Zero-padded tail: a padded lane adds +0 * +0 = +0, which leaves any
        // accumulator (never -0) unchanged.
        let mut wt = [0u8; 64];
        let mut xt = [0f32; 16];
        if let (Some(ws), Some(xs)) = (w.get(4 * main..4 * n), x.get(main..n)) {
            wt.iter_mut().zip(ws).for_each(|(d, s)| *d = *s);
            xt.iter_mut().zip(xs).for_each(|(d, s)| *d = *s);
        }
        // SAFETY: the buffers are exactly 64 bytes / 16 floats.
        unsafe { step_f32(&mut acc, wt.as_ptr(), xt.as_ptr()) };
    }
    fold16(acc)
}

/// `acc[k] = acc[k] + f32(w[k]) * x[k]` for the sixteen f16 weights at `w`.
///
/// # Safety
/// `w..w + 32` bytes and `x..x + 16` floats must be readable.
#[inline(always)]
unsafe fn step_f16(acc: &mut [v128; 4], w: *const u8, x: *const f32) {
    // SAFETY: 32 bytes of `w` are readable (caller).
    let (h0, h1) = unsafe { (ld(w), ld(w.add(16))) };
    let wv = [
        f16_to_f32x4(u32x4_extend_low_u16x8(h0)),
        f16_to_f32x4(u32x4_extend_high_u16x8(h0)),
        f16_to_f32x4(u32x4_extend_low_u16x8(h1)),
        f16_to_f32x4(u32x4_extend_high_u16x8(h1)),
    ];
    for ((k, a), wk) in acc.iter_mut().enumerate().zip(wv) {
        // SAFETY: k < 4, 16 floats of `x` are readable (caller).
        let xv = unsafe { ld(x.add(4 * k)) };
        *a = f32x4_add(*a, f32x4_mul(wk, xv));
    }
}

/// Dot product of an F16 weight row with f32 activations (f16 widened exactly).
pub(crate) fn vec_dot_f16_f32(w: &[u8], x: &[f32]) -> f32 {
    let n = (w.len() / 2).min(x.len());
    let main = n - n % 16;
    let mut acc = [f32x4_splat(0.0); 4];
    let mut i = 0;
    while i < main {
        // SAFETY: i + 16 <= n: 32 bytes of `w`, 16 floats of `x` in bounds.
        unsafe { step_f16(&mut acc, w.as_ptr().add(2 * i), x.as_ptr().add(i)) };
        i += 16;
    }
    if main < n {
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
// Quantized dots
// ---------------------------------------------------------------------------

/// Reduce four blocks' partial vectors to `[S0, S1, S2, S3]` as f32 (exact:
/// |S| <= 32 * 128 * 128 < 2^24).
#[inline(always)]
fn sums4(s: [v128; 4]) -> v128 {
    let t0 = i32x4_add(
        i32x4_shuffle::<0, 4, 1, 5>(s[0], s[1]),
        i32x4_shuffle::<2, 6, 3, 7>(s[0], s[1]),
    );
    let t1 = i32x4_add(
        i32x4_shuffle::<0, 4, 1, 5>(s[2], s[3]),
        i32x4_shuffle::<2, 6, 3, 7>(s[2], s[3]),
    );
    let r = i32x4_add(
        i32x4_shuffle::<0, 1, 4, 5>(t0, t1),
        i32x4_shuffle::<2, 3, 6, 7>(t0, t1),
    );
    f32x4_convert_i32x4(r)
}

/// Q8_0 block: lanes sum to `sum(w[i] * x[i])`.
#[inline(always)]
fn q8_0_block(b: &[u8; 34], xb: &BlockQ8_0) -> v128 {
    // SAFETY: bytes 2..18 and 18..34 of a 34-byte block; the 32 quants of `xb`.
    let (w0, w1, x0, x1) = unsafe {
        (
            ld(b.as_ptr().add(2)),
            ld(b.as_ptr().add(18)),
            ld(xb.qs.as_ptr()),
            ld(xb.qs.as_ptr().add(16)),
        )
    };
    // Sign-extend to i16 and multiply-add pairs into i32 (`i32x4.dot_i16x8_s`,
    // one `pmaddwd` on x86 engines): exact for any i8 inputs.
    let dot = |a: v128, b: v128| {
        i32x4_add(
            i32x4_dot_i16x8(i16x8_extend_low_i8x16(a), i16x8_extend_low_i8x16(b)),
            i32x4_dot_i16x8(i16x8_extend_high_i8x16(a), i16x8_extend_high_i8x16(b)),
        )
    };
    i32x4_add(dot(w0, x0), dot(w1, x1))
}

/// 4-bit block: `lo`/`hi` (|q| <= 15) against the two halves of `qs`.
#[inline(always)]
fn i4_block(lo: v128, hi: v128, qs: &[i8; QK]) -> v128 {
    // SAFETY: the 32 quants of the block.
    let (x0, x1) = unsafe { (ld(qs.as_ptr()), ld(qs.as_ptr().add(16))) };
    // Four products per i16 lane stay below 4 * 15 * 128 < 2^15.
    let p = i16x8_add(
        i16x8_add(
            i16x8_extmul_low_i8x16(lo, x0),
            i16x8_extmul_high_i8x16(lo, x0),
        ),
        i16x8_add(
            i16x8_extmul_low_i8x16(hi, x1),
            i16x8_extmul_high_i8x16(hi, x1),
        ),
    );
    i32x4_extadd_pairwise_i16x8(p)
}

/// Q4_0 block: nibbles minus 8.
#[inline(always)]
fn q4_0_block(b: &[u8; 18], xb: &BlockQ8_0) -> v128 {
    // SAFETY: bytes 2..18 of an 18-byte block.
    let q = unsafe { ld(b.as_ptr().add(2)) };
    let eight = i8x16_splat(8);
    let lo = i8x16_sub(v128_and(q, u8x16_splat(0x0f)), eight);
    let hi = i8x16_sub(u8x16_shr(q, 4), eight);
    i4_block(lo, hi, &xb.qs)
}

/// Q4_1 block: unsigned nibbles.
#[inline(always)]
fn q4_1_block(b: &[u8; 20], xb: &BlockQ8_1) -> v128 {
    // SAFETY: bytes 4..20 of a 20-byte block.
    let q = unsafe { ld(b.as_ptr().add(4)) };
    i4_block(v128_and(q, u8x16_splat(0x0f)), u8x16_shr(q, 4), &xb.qs)
}

/// Store two accumulators as eight lanes.
#[inline(always)]
fn lanes8(acc: [v128; 2]) -> [f32; 8] {
    let lanes = |a: v128| {
        [
            f32x4_extract_lane::<0>(a),
            f32x4_extract_lane::<1>(a),
            f32x4_extract_lane::<2>(a),
            f32x4_extract_lane::<3>(a),
        ]
    };
    let ([l0, l1, l2, l3], [l4, l5, l6, l7]) = (lanes(acc[0]), lanes(acc[1]));
    [l0, l1, l2, l3, l4, l5, l6, l7]
}

/// Q8_0 x Q8_0. Block term `(sumi as f32) * (dw * dx)`.
pub(crate) fn vec_dot_q8_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    let (wb, _) = w.as_chunks::<34>();
    let nb = wb.len().min(x.len());
    let (wb, x) = (wb.get(..nb).unwrap_or(&[]), x.get(..nb).unwrap_or(&[]));
    let (wg, wt) = wb.as_chunks::<8>();
    let (xg, xt) = x.as_chunks::<8>();
    let mut acc = [f32x4_splat(0.0); 2];
    for (wg, xg) in wg.iter().zip(xg) {
        // blocks 0..4 of the group go to acc[0], 4..8 to acc[1]
        let halves = wg.as_chunks::<4>().0.iter().zip(xg.as_chunks::<4>().0);
        for (a, (w4, x4)) in acc.iter_mut().zip(halves) {
            let [w0, w1, w2, w3] = w4;
            let [x0, x1, x2, x3] = x4;
            let s = [
                q8_0_block(w0, x0),
                q8_0_block(w1, x1),
                q8_0_block(w2, x2),
                q8_0_block(w3, x3),
            ];
            let dw = f16x4(le_u16(w0, 0), le_u16(w1, 0), le_u16(w2, 0), le_u16(w3, 0));
            let dx = f16x4(x0.d, x1.d, x2.d, x3.d);
            *a = f32x4_add(*a, f32x4_mul(sums4(s), f32x4_mul(dw, dx)));
        }
    }
    let mut l = lanes8(acc);
    // the tail (< 8 blocks): block j goes to lane j
    for ((lane, b), xb) in l.iter_mut().zip(wt).zip(xt) {
        let sumi = hsum_i32(q8_0_block(b, xb));
        let d = f16_to_f32(le_u16(b, 0)) * f16_to_f32(xb.d);
        *lane += sumi as f32 * d;
    }
    fold_lanes(l)
}

/// Q4_0 x Q8_0. Block term `(sumi as f32) * (dw * dx)`, `sumi = sum((q - 8) * a)`.
pub(crate) fn vec_dot_q4_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    let (wb, _) = w.as_chunks::<18>();
    let nb = wb.len().min(x.len());
    let (wb, x) = (wb.get(..nb).unwrap_or(&[]), x.get(..nb).unwrap_or(&[]));
    let (wg, wt) = wb.as_chunks::<8>();
    let (xg, xt) = x.as_chunks::<8>();
    let mut acc = [f32x4_splat(0.0); 2];
    for (wg, xg) in wg.iter().zip(xg) {
        // blocks 0..4 of the group go to acc[0], 4..8 to acc[1]
        let halves = wg.as_chunks::<4>().0.iter().zip(xg.as_chunks::<4>().0);
        for (a, (w4, x4)) in acc.iter_mut().zip(halves) {
            let [w0, w1, w2, w3] = w4;
            let [x0, x1, x2, x3] = x4;
            let s = [
                q4_0_block(w0, x0),
                q4_0_block(w1, x1),
                q4_0_block(w2, x2),
                q4_0_block(w3, x3),
            ];
            let dw = f16x4(le_u16(w0, 0), le_u16(w1, 0), le_u16(w2, 0), le_u16(w3, 0));
            let dx = f16x4(x0.d, x1.d, x2.d, x3.d);
            *a = f32x4_add(*a, f32x4_mul(sums4(s), f32x4_mul(dw, dx)));
        }
    }
    let mut l = lanes8(acc);
    // the tail (< 8 blocks): block j goes to lane j
    for ((lane, b), xb) in l.iter_mut().zip(wt).zip(xt) {
        let sumi = hsum_i32(q4_0_block(b, xb));
        let d = f16_to_f32(le_u16(b, 0)) * f16_to_f32(xb.d);
        *lane += sumi as f32 * d;
    }
    fold_lanes(l)
}

/// Q4_1 x Q8_1. Block term `(sumi as f32) * (dw * dx) + mw * sx`.
pub(crate) fn vec_dot_q4_1_q8_1(w: &[u8], x: &[BlockQ8_1]) -> f32 {
    let (wb, _) = w.as_chunks::<20>();
    let nb = wb.len().min(x.len());
    let (wb, x) = (wb.get(..nb).unwrap_or(&[]), x.get(..nb).unwrap_or(&[]));
    let (wg, wt) = wb.as_chunks::<8>();
    let (xg, xt) = x.as_chunks::<8>();
    let mut acc = [f32x4_splat(0.0); 2];
    for (wg, xg) in wg.iter().zip(xg) {
        // blocks 0..4 of the group go to acc[0], 4..8 to acc[1]
        let halves = wg.as_chunks::<4>().0.iter().zip(xg.as_chunks::<4>().0);
        for (a, (w4, x4)) in acc.iter_mut().zip(halves) {
            let [w0, w1, w2, w3] = w4;
            let [x0, x1, x2, x3] = x4;
            let s = [
                q4_1_block(w0, x0),
                q4_1_block(w1, x1),
                q4_1_block(w2, x2),
                q4_1_block(w3, x3),
            ];
            let dw = f16x4(le_u16(w0, 0), le_u16(w1, 0), le_u16(w2, 0), le_u16(w3, 0));
            let mw = f16x4(le_u16(w0, 2), le_u16(w1, 2), le_u16(w2, 2), le_u16(w3, 2));
            let dx = f16x4(x0.d, x1.d, x2.d, x3.d);
            let sx = f16x4(x0.s, x1.s, x2.s, x3.s);
            let t = f32x4_add(f32x4_mul(sums4(s), f32x4_mul(dw, dx)), f32x4_mul(mw, sx));
            *a = f32x4_add(*a, t);
        }
    }
    let mut l = lanes8(acc);
    // the tail (< 8 blocks): block j goes to lane j
    for ((lane, b), xb) in l.iter_mut().zip(wt).zip(xt) {
        let sumi = hsum_i32(q4_1_block(b, xb));
        let d = f16_to_f32(le_u16(b, 0)) * f16_to_f32(xb.d);
        let m = f16_to_f32(le_u16(b, 2)) * f16_to_f32(xb.s);
        *lane += sumi as f32 * d + m;
    }
    fold_lanes(l)
}

// ---------------------------------------------------------------------------
// Quantize activations
// ---------------------------------------------------------------------------

/// Quantize one block: `(d, sum of quants)`, as the scalar `quantize_block`
/// (`amax` ignoring NaN, `d = amax / 127`, `id = 1 / d` or 0,
/// `q = round_half_even(x * id)` saturated like `as i8`, NaN -> 0).
#[inline(always)]
fn quantize_block(xb: &[f32; QK], qs: &mut [i8; QK]) -> (f32, i32) {
    // SAFETY: 4 * k + 4 <= 32 floats of the block.
    let v: [v128; 8] = core::array::from_fn(|k| unsafe { ld(xb.as_ptr().add(4 * k)) });
    // `pmax(m, a)` is `if m < a { a } else { m }`: f32::max(m, a) for a
    // non-NaN m (a NaN `a` compares false and is skipped).
    let mut m = [f32x4_splat(0.0); 2];
    for pair in v.as_chunks::<2>().0 {
        // v[k] goes to m[k % 2]
        for (mk, vk) in m.iter_mut().zip(pair) {
            *mk = f32x4_pmax(*mk, f32x4_abs(*vk));
        }
    }
    let m = f32x4_pmax(m[0], m[1]);
    let amax = f32x4_extract_lane::<0>(m)
        .max(f32x4_extract_lane::<1>(m))
        .max(f32x4_extract_lane::<2>(m).max(f32x4_extract_lane::<3>(m)));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let vid = f32x4_splat(id);
    // nearest = round half to even; trunc_sat saturates (NaN -> 0); the two
    // signed saturating narrows clamp to i8 as `as i8` does.
    let q = |a: v128| i32x4_trunc_sat_f32x4(f32x4_nearest(f32x4_mul(a, vid)));
    let n16 = |a: v128, b: v128| i16x8_narrow_i32x4(q(a), q(b));
    let q0 = i8x16_narrow_i16x8(n16(v[0], v[1]), n16(v[2], v[3]));
    let q1 = i8x16_narrow_i16x8(n16(v[4], v[5]), n16(v[6], v[7]));
    // SAFETY: 32 writable bytes in `qs`; `v128.store` is unaligned.
    unsafe {
        v128_store(qs.as_mut_ptr().cast::<v128>(), q0);
        v128_store(qs.as_mut_ptr().add(16).cast::<v128>(), q1);
    }
    let s16 = i16x8_add(
        i16x8_extadd_pairwise_i8x16(q0),
        i16x8_extadd_pairwise_i8x16(q1),
    );
    (d, hsum_i32(i32x4_extadd_pairwise_i16x8(s16)))
}

/// Quantize activations to Q8_0 blocks.
pub(crate) fn quantize_row_q8_0(x: &[f32], y: &mut [BlockQ8_0]) {
    let (xb, _) = x.as_chunks::<QK>();
    for (xb, yb) in xb.iter().zip(y.iter_mut()) {
        let (d, _) = quantize_block(xb, &mut yb.qs);
        yb.d = f32_to_f16(d);
    }
}

/// Quantize activations to Q8_1 blocks (`s = f16(d * sum(q))`).
pub(crate) fn quantize_row_q8_1(x: &[f32], y: &mut [BlockQ8_1]) {
    let (xb, _) = x.as_chunks::<QK>();
    for (xb, yb) in xb.iter().zip(y.iter_mut()) {
        let (d, sum) = quantize_block(xb, &mut yb.qs);
        yb.d = f32_to_f16(d);
        yb.s = f32_to_f16(d * sum as f32);
    }
}
