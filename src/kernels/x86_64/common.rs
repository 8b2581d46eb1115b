//! ISA-generic bodies of the x86_64 kernels.
//!
//! Every function here is `#[inline(always)]` and `unsafe`: it is instantiated
//! inside a `#[target_feature]` function of one ISA module (via [`x86_kernels!`])
//! and may only run where that module's features were detected. The bodies never
//! read outside the slices they are given: lengths are checked (or clamped to
//! the shorter operand, like the scalar reference) before any pointer is formed.
//!
//! Bit-exactness with [`crate::kernels::scalar`] rests on three facts used below:
//! integer sums are exact in any order (|block sum| <= 32 * 255 * 128 < 2^31),
//! the float operations are the same IEEE operations in the same order (a
//! rounded multiply then a rounded add, never fused), and the horizontal
//! reductions only ever add integers.

use core::arch::x86_64::*;

use crate::kernels::scalar::fold_lanes;
use crate::quant::{f16_to_f32, f32_to_f16, BlockQ8_0, BlockQ8_1, QK};

// ---------------------------------------------------------------------------
// Weight formats
// ---------------------------------------------------------------------------

/// A weight block format paired with its activation format.
pub(crate) trait WFmt {
    /// Weight block bytes.
    const WB: usize;
    /// Offset of the quants inside a weight block.
    const QOFF: usize;
    /// Activation block bytes (Q8_0: 34, Q8_1: 36).
    const AB: usize;
    /// Offset of the quants inside an activation block.
    const AOFF: usize;
    /// Weights are 4-bit nibbles (else signed bytes).
    const Q4: bool;
    /// Value subtracted from each nibble (Q4_0: 8).
    const NIB_OFFSET: i32;
    /// Block term has the `m * s` part (Q4_1 x Q8_1).
    const HAS_M: bool;
    /// VNNI: `sum(w * a) = sum(u * a) - K * sum(a)` where `u` are the unsigned weights fed to vpdpbusd.
    const K: i32;
}

pub(crate) struct Q8_0F;
pub(crate) struct Q4_0F;
pub(crate) struct Q4_1F;

impl WFmt for Q8_0F {
    const WB: usize = 34;
    const QOFF: usize = 2;
    const AB: usize = 34;
    const AOFF: usize = 2;
    const Q4: bool = false;
    const NIB_OFFSET: i32 = 0;
    const HAS_M: bool = false;
    const K: i32 = 128;
}
impl WFmt for Q4_0F {
    const WB: usize = 18;
    const QOFF: usize = 2;
    const AB: usize = 34;
    const AOFF: usize = 2;
    const Q4: bool = true;
    const NIB_OFFSET: i32 = 8;
    const HAS_M: bool = false;
    const K: i32 = 8;
}
impl WFmt for Q4_1F {
    const WB: usize = 20;
    const QOFF: usize = 4;
    const AB: usize = 36;
    const AOFF: usize = 4;
    const Q4: bool = true;
    const NIB_OFFSET: i32 = 0;
    const HAS_M: bool = true;
    const K: i32 = 0;
}

/// The scalar block term of block `wb` x `xb` (the reference formula, for tails).
#[inline(always)]
pub(super) fn block_term<F: WFmt>(wb: &[u8], xb: &[u8]) -> f32 {
    let h = |b: &[u8], i: usize| match b.get(i..i + 2) {
        Some(&[lo, hi]) => f16_to_f32(u16::from_le_bytes([lo, hi])),
        _ => 0.0,
    };
    let a = |k: usize| xb.get(F::AOFF + k).map_or(0, |&v| v as i8 as i32);
    let mut sumi = 0i32;
    if F::Q4 {
        for k in 0..16 {
            let q = wb.get(F::QOFF + k).copied().unwrap_or(0);
            sumi += ((q & 0x0f) as i32 - F::NIB_OFFSET) * a(k);
            sumi += ((q >> 4) as i32 - F::NIB_OFFSET) * a(k + 16);
        }
    } else {
        for k in 0..32 {
            sumi += wb.get(F::QOFF + k).map_or(0, |&v| v as i8 as i32) * a(k);
        }
    }
    let d = h(wb, 0) * h(xb, 0);
    if F::HAS_M {
        sumi as f32 * d + h(wb, 2) * h(xb, 2)
    } else {
        sumi as f32 * d
    }
}

// ---------------------------------------------------------------------------
// Integer block dot: the part that differs per ISA
// ---------------------------------------------------------------------------

/// How one ISA turns a weight block and an activation block into 8 i32 lanes
/// whose sum is the block's exact integer dot product.
pub(crate) trait IntDot {
    /// A weight block prepared for [`IntDot::block`].
    type W: Copy;
    /// An activation block prepared for [`IntDot::block`].
    type A: Copy;
    /// Prepare the weight quants at `p` (32 bytes, or 16 nibble bytes).
    ///
    /// # Safety
    /// `p` points to the block's quants inside a live slice; ISA features present.
    unsafe fn prep_w<F: WFmt>(p: *const u8) -> Self::W;
    /// Prepare the 32 activation quants at `p`.
    ///
    /// # Safety
    /// `p` points to 32 readable bytes; ISA features present.
    unsafe fn prep_a<F: WFmt>(p: *const u8) -> Self::A;
    /// 8 i32 lanes summing to the exact block dot product.
    ///
    /// # Safety
    /// ISA features present.
    unsafe fn block(w: Self::W, a: Self::A) -> __m256i;
    /// The batched and single-row entries go to [`super::avx2q`] (AVX2 only).
    const MADDUBS: bool = false;
    /// Placeholder values to initialise arrays with.
    ///
    /// # Safety
    /// ISA features present.
    unsafe fn zero() -> (Self::W, Self::A);
    /// A wider batched kernel for these shapes, if the ISA has one (AVX-512:
    /// [`super::vnniq::gemm`]); false (nothing written) sends the call to
    /// the generic tiles.
    ///
    /// # Safety
    /// ISA features present.
    #[inline(always)]
    unsafe fn gemm_wide<F: WFmt>(
        _w: &[u8],
        _rows: usize,
        _x: &[u8],
        _n: usize,
        _out: &mut [f32],
    ) -> bool {
        false
    }
    /// A wider single-row dot for these shapes, if the ISA has one (AVX-512:
    /// [`super::vnniq::dot`]); None sends the call to the generic tile.
    ///
    /// # Safety
    /// ISA features present.
    #[inline(always)]
    unsafe fn dot_wide<F: WFmt>(_w: &[u8], _x: &[u8]) -> Option<f32> {
        None
    }
}

/// Nibbles of 16 bytes at `p` as 32 bytes: low nibbles (elements 0..16), then high (16..32).
#[inline(always)]
pub(super) unsafe fn nibbles(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees 16 readable bytes at `p` and AVX2.
    unsafe {
        let v = _mm_loadu_si128(p as *const __m128i);
        let m = _mm256_set1_epi8(0x0f);
        _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16::<4>(v), v), m)
    }
}

/// AVX2: bytes widened to i16, `vpmaddwd` (i16 x i16 -> i32 pairs; exact).
pub(crate) struct Avx2Int;

impl IntDot for Avx2Int {
    const MADDUBS: bool = true;
    type W = (__m256i, __m256i);
    type A = (__m256i, __m256i);
    #[inline(always)]
    unsafe fn prep_w<F: WFmt>(p: *const u8) -> Self::W {
        // SAFETY: the caller guarantees the block's quants are readable at `p` and AVX2.
        unsafe {
            if F::Q4 {
                let v = _mm_loadu_si128(p as *const __m128i);
                let m = _mm_set1_epi8(0x0f);
                let off = _mm256_set1_epi16(F::NIB_OFFSET as i16);
                let lo = _mm256_cvtepu8_epi16(_mm_and_si128(v, m));
                let hi = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(v), m));
                (_mm256_sub_epi16(lo, off), _mm256_sub_epi16(hi, off))
            } else {
                (
                    _mm256_cvtepi8_epi16(_mm_loadu_si128(p as *const __m128i)),
                    _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(16) as *const __m128i)),
                )
            }
        }
    }
    #[inline(always)]
    unsafe fn prep_a<F: WFmt>(p: *const u8) -> Self::A {
        // SAFETY: the caller guarantees 32 readable bytes at `p` and AVX2.
        unsafe {
            (
                _mm256_cvtepi8_epi16(_mm_loadu_si128(p as *const __m128i)),
                _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(16) as *const __m128i)),
            )
        }
    }
    #[inline(always)]
    unsafe fn block(w: Self::W, a: Self::A) -> __m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { _mm256_add_epi32(_mm256_madd_epi16(w.0, a.0), _mm256_madd_epi16(w.1, a.1)) }
    }
    #[inline(always)]
    unsafe fn zero() -> (Self::W, Self::A) {
        // SAFETY: the caller guarantees AVX.
        let z = unsafe { _mm256_setzero_si256() };
        ((z, z), (z, z))
    }
}

/// The `vpdpbusd` flavour: VEX (AVX-VNNI) or EVEX (AVX-512 VNNI + VL).
pub(crate) trait Dp {
    /// `src + sum of 4 adjacent u8(a) * i8(b)` per i32 lane.
    ///
    /// # Safety
    /// The flavour's features present.
    unsafe fn dp(src: __m256i, a: __m256i, b: __m256i) -> __m256i;
    /// The vectors of the tokens-in-lanes GEMM ([`super::vnniq`]) with this
    /// `vpdpbusd`: 8 lanes (ymm) or 16 (zmm, which also has a 512-bit decode).
    type Lanes: super::vnniq::Wide;
}

pub(crate) struct VexDp;
pub(crate) struct EvexDp;

impl Dp for VexDp {
    #[inline(always)]
    unsafe fn dp(src: __m256i, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: the caller guarantees AVX-VNNI.
        unsafe { _mm256_dpbusd_avx_epi32(src, a, b) }
    }
    type Lanes = super::vnniq::Ymm<Self>;
}
impl Dp for EvexDp {
    #[inline(always)]
    unsafe fn dp(src: __m256i, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: the caller guarantees AVX-512 VNNI + VL.
        unsafe { _mm256_dpbusd_epi32(src, a, b) }
    }
    type Lanes = super::vnniq::Zmm;
}

/// `vpdpbusd` computed with AVX2 instructions (exact: u8 and i8 widened to i16,
/// `vpmaddwd`, adjacent pairs added). Used only to test the VNNI kernels' logic
/// on CPUs without VNNI (see `kernels::__x86_emulated_vnni`).
pub(crate) struct EmuDp;

impl Dp for EmuDp {
    #[inline(always)]
    unsafe fn dp(src: __m256i, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe {
            let ua = |v: __m128i| _mm256_cvtepu8_epi16(v);
            let lo = _mm256_madd_epi16(
                ua(_mm256_castsi256_si128(a)),
                _mm256_cvtepi8_epi16(_mm256_castsi256_si128(b)),
            );
            let hi = _mm256_madd_epi16(
                ua(_mm256_extracti128_si256::<1>(a)),
                _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(b)),
            );
            // [p01 p23 q01 q23 | p45 p67 q45 q67] -> [p01 p23 p45 p67 | q01 q23 q45 q67]
            let h = _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_hadd_epi32(lo, hi));
            _mm256_add_epi32(src, h)
        }
    }
    type Lanes = super::vnniq::Ymm<Self>;
}

/// [`EmuDp`] whose batched kernel is [`super::vnniq::gemm`] with the 512-bit
/// operations emulated on AVX2: the AVX-512 table's logic on CPUs without it
/// (test support, see `kernels::__x86_emulated_avx512`).
pub(crate) struct EmuDp512;

impl Dp for EmuDp512 {
    #[inline(always)]
    unsafe fn dp(src: __m256i, a: __m256i, b: __m256i) -> __m256i {
        // SAFETY: the caller guarantees AVX2.
        unsafe { EmuDp::dp(src, a, b) }
    }
    type Lanes = super::vnniq::ZmmEmu;
}

/// VNNI: weights made unsigned (`u = w + 128` for Q8_0, the raw nibble for Q4),
/// activations signed; `sum(w * a) = sum(u * a) - K * sum(a)`, with `-K * sum(a)`
/// computed once per activation block and used as the accumulator's start.
pub(crate) struct VnniGen<D>(core::marker::PhantomData<D>);
pub(crate) type VnniInt = VnniGen<VexDp>;
pub(crate) type Vnni512Int = VnniGen<EvexDp>;

impl<D: Dp> IntDot for VnniGen<D> {
    type W = __m256i;
    type A = (__m256i, __m256i);
    #[inline(always)]
    unsafe fn prep_w<F: WFmt>(p: *const u8) -> Self::W {
        // SAFETY: the caller guarantees the block's quants are readable at `p` and AVX2.
        unsafe {
            if F::Q4 {
                nibbles(p)
            } else {
                _mm256_xor_si256(
                    _mm256_loadu_si256(p as *const __m256i),
                    _mm256_set1_epi8(-128),
                )
            }
        }
    }
    #[inline(always)]
    unsafe fn prep_a<F: WFmt>(p: *const u8) -> Self::A {
        // SAFETY: the caller guarantees 32 readable bytes at `p` and the VNNI flavour.
        unsafe {
            let a = _mm256_loadu_si256(p as *const __m256i);
            let z = _mm256_setzero_si256();
            let negc = if F::K == 0 {
                z
            } else {
                _mm256_sub_epi32(z, D::dp(z, _mm256_set1_epi8(F::K as u8 as i8), a))
            };
            (a, negc)
        }
    }
    #[inline(always)]
    unsafe fn block(w: Self::W, a: Self::A) -> __m256i {
        // SAFETY: the caller guarantees the VNNI flavour.
        unsafe { D::dp(a.1, w, a.0) }
    }
    #[inline(always)]
    unsafe fn zero() -> (Self::W, Self::A) {
        // SAFETY: the caller guarantees AVX.
        let z = unsafe { _mm256_setzero_si256() };
        (z, (z, z))
    }
    #[inline(always)]
    unsafe fn gemm_wide<F: WFmt>(
        w: &[u8],
        rows: usize,
        x: &[u8],
        n: usize,
        out: &mut [f32],
    ) -> bool {
        // SAFETY: the caller guarantees the flavour's features.
        unsafe { super::vnniq::gemm::<D::Lanes, F>(w, rows, x, n, out) }
    }
    #[inline(always)]
    unsafe fn dot_wide<F: WFmt>(w: &[u8], x: &[u8]) -> Option<f32> {
        // SAFETY: the caller guarantees the flavour's features.
        unsafe { <D::Lanes as super::vnniq::Wide>::dot_hook::<F>(w, x) }
    }
}

// ---------------------------------------------------------------------------
// Quantized tiles: R weight rows x T activation rows
// ---------------------------------------------------------------------------

/// 8 vectors (one per block) of 8 i32 lanes -> one vector of the 8 block sums, in block order.
#[inline(always)]
pub(super) unsafe fn reduce8(v: [__m256i; 8]) -> __m256i {
    // SAFETY: the caller guarantees AVX2. Only integer adds: exact in any order.
    unsafe {
        let h01 = _mm256_hadd_epi32(v[0], v[1]);
        let h23 = _mm256_hadd_epi32(v[2], v[3]);
        let h45 = _mm256_hadd_epi32(v[4], v[5]);
        let h67 = _mm256_hadd_epi32(v[6], v[7]);
        // q0: [b0 b1 b2 b3 (lanes 0-3 of each) | b0 b1 b2 b3 (lanes 4-7)], q1 the same for b4..b7
        let q0 = _mm256_hadd_epi32(h01, h23);
        let q1 = _mm256_hadd_epi32(h45, h67);
        _mm256_add_epi32(
            _mm256_permute2x128_si256::<0x20>(q0, q1),
            _mm256_permute2x128_si256::<0x31>(q0, q1),
        )
    }
}

/// 8 f16 values at `p`, `p + stride`, ... widened (exactly) to f32.
#[inline(always)]
pub(super) unsafe fn scales8(p: *const u8, stride: usize) -> __m256 {
    // SAFETY: the caller guarantees 2 readable bytes at each `p + j * stride`, j < 8, and F16C.
    unsafe {
        let mut h = [0i16; 8];
        for (j, v) in h.iter_mut().enumerate() {
            *v = core::ptr::read_unaligned(p.add(j * stride) as *const i16);
        }
        _mm256_cvtph_ps(_mm_loadu_si128(h.as_ptr() as *const __m128i))
    }
}

/// `out[r][t] = dot(w[r], x[t])` over `nb` blocks, for R weight rows and T
/// activation rows, in the scalar reference's order.
///
/// # Safety
/// Every `w[r]` holds `nb * F::WB` bytes and every `x[t]` `nb * F::AB` bytes;
/// the ISA's features are present.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
// j, r, t index several arrays at once
// INDEXING: every index is a loop counter over its array's own const length
// (r < R, t < T, j < 8, j % 8), so each access is in bounds by type.
#[allow(clippy::indexing_slicing)]
unsafe fn tile<I: IntDot, F: WFmt, const R: usize, const T: usize>(
    w: [&[u8]; R],
    x: [&[u8]; T],
    nb: usize,
    out: &mut [[f32; T]; R],
) {
    // SAFETY: groups cover blocks 0..8*ng <= nb, inside every slice by the contract;
    // the tail goes through bounds-checked scalar code. Features by the contract.
    unsafe {
        let ng = nb / 8;
        let zf = _mm256_setzero_ps();
        let (zw, za) = I::zero();
        let mut acc = [[zf; T]; R];
        let mut a = [[za; 8]; T];
        let mut dx = [zf; T];
        let mut sx = [zf; T];
        let mut wq = [zw; 8];
        let mut v = [_mm256_setzero_si256(); 8];
        for g in 0..ng {
            let b0 = g * 8;
            for t in 0..T {
                let p = x[t].as_ptr().add(b0 * F::AB);
                for j in 0..8 {
                    a[t][j] = I::prep_a::<F>(p.add(j * F::AB + F::AOFF));
                }
                dx[t] = scales8(p, F::AB);
                if F::HAS_M {
                    sx[t] = scales8(p.add(2), F::AB);
                }
            }
            for r in 0..R {
                let wp = w[r].as_ptr().add(b0 * F::WB);
                if T == 1 {
                    // Decode streams the weights from DRAM: prefetch this group
                    // of the row R rows ahead (a hint; never faults).
                    let pf = wp.wrapping_add(R * nb * F::WB);
                    let mut o = 0;
                    while o < 8 * F::WB {
                        _mm_prefetch::<_MM_HINT_T0>(pf.wrapping_add(o) as *const i8);
                        o += 64;
                    }
                }
                for j in 0..8 {
                    wq[j] = I::prep_w::<F>(wp.add(j * F::WB + F::QOFF));
                }
                let dw = scales8(wp, F::WB);
                let mw = if F::HAS_M {
                    scales8(wp.add(2), F::WB)
                } else {
                    zf
                };
                for t in 0..T {
                    for j in 0..8 {
                        v[j] = I::block(wq[j], a[t][j]);
                    }
                    let s = _mm256_cvtepi32_ps(reduce8(v));
                    let d = _mm256_mul_ps(dw, dx[t]);
                    let mut term = _mm256_mul_ps(s, d);
                    if F::HAS_M {
                        term = _mm256_add_ps(term, _mm256_mul_ps(mw, sx[t]));
                    }
                    acc[r][t] = _mm256_add_ps(acc[r][t], term);
                }
            }
        }
        for r in 0..R {
            for t in 0..T {
                let mut lanes = [0.0f32; 8];
                _mm256_storeu_ps(lanes.as_mut_ptr(), acc[r][t]);
                for j in ng * 8..nb {
                    let wb = w[r].get(j * F::WB..(j + 1) * F::WB).unwrap_or(&[]);
                    let xb = x[t].get(j * F::AB..(j + 1) * F::AB).unwrap_or(&[]);
                    lanes[j % 8] += block_term::<F>(wb, xb);
                }
                out[r][t] = fold_lanes(lanes);
            }
        }
    }
}

/// One weight row x one activation row: `min(w.len() / WB, x.len() / AB)` blocks.
///
/// # Safety
/// The ISA's features are present.
#[inline(always)]
pub(crate) unsafe fn dot_q<I: IntDot, F: WFmt>(w: &[u8], x: &[u8]) -> f32 {
    if I::MADDUBS {
        // SAFETY: MADDUBS is set only by the AVX2 body, whose features the caller has.
        return unsafe { super::avx2q::dot::<F>(w, x) };
    }
    // SAFETY: features by the caller (the ISA's own wide kernel, if any).
    if let Some(v) = unsafe { I::dot_wide::<F>(w, x) } {
        return v;
    }
    // SAFETY: features by the caller.
    unsafe { dot_q_generic::<I, F>(w, x) }
}

/// [`dot_q`] with the ISA's generic tile.
///
/// # Safety
/// The ISA's features are present.
#[inline(always)]
pub(super) unsafe fn dot_q_generic<I: IntDot, F: WFmt>(w: &[u8], x: &[u8]) -> f32 {
    let nb = (w.len() / F::WB).min(x.len() / F::AB);
    let mut o = [[0.0f32; 1]; 1];
    // SAFETY: nb blocks fit both slices; features by the caller.
    unsafe { tile::<I, F, 1, 1>([w], [x], nb, &mut o) };
    o[0][0]
}

/// `out[r * n + t] = dot(w row r, x row t)`; does nothing unless `w` is exactly
/// `rows` rows and `x` exactly `n` rows of the same block count and `out` has
/// room for `rows * n` values.
///
/// # Safety
/// The ISA's features are present.
#[inline(always)]
pub(crate) unsafe fn gemm_q<I: IntDot, F: WFmt>(
    w: &[u8],
    rows: usize,
    x: &[u8],
    n: usize,
    out: &mut [f32],
) {
    if I::MADDUBS {
        // SAFETY: MADDUBS is set only by the AVX2 body, whose features the caller has.
        return unsafe { super::avx2q::gemm::<F>(w, rows, x, n, out) };
    }
    // SAFETY: features by the caller (the ISA's own wide kernel, if any).
    if unsafe { I::gemm_wide::<F>(w, rows, x, n, out) } {
        return;
    }
    // SAFETY: features by the caller.
    unsafe { gemm_q_generic::<I, F>(w, rows, x, n, out) }
}

/// [`gemm_q`] with the ISA's generic tiles.
///
/// # Safety
/// The ISA's features are present.
#[inline(always)]
pub(super) unsafe fn gemm_q_generic<I: IntDot, F: WFmt>(
    w: &[u8],
    rows: usize,
    x: &[u8],
    n: usize,
    out: &mut [f32],
) {
    if rows == 0 || n == 0 || !x.len().is_multiple_of(n * F::AB) {
        return;
    }
    let nb = x.len() / (n * F::AB);
    let (rb, xb) = (nb * F::WB, nb * F::AB);
    if w.len() != rows * rb || out.len() < rows * n {
        return;
    }
    // Row slices come from `rows_at`, which returns None rather than a short
    // slice, so a tile never sees fewer than nb blocks (and never panics).
    let mut r = 0;
    // SAFETY (all tile calls): every row slice holds exactly nb blocks (the
    // `rows_at` lengths); features by the caller.
    while r + 4 <= rows {
        let Some(ws) = rows_at::<4>(w, rb, r) else {
            return;
        };
        let mut t = 0;
        while t + 4 <= n {
            let Some(xs) = rows_at::<4>(x, xb, t) else {
                return;
            };
            let mut o = [[0.0f32; 4]; 4];
            // SAFETY: see above.
            unsafe { tile::<I, F, 4, 4>(ws, xs, nb, &mut o) };
            for (i, row) in o.iter().enumerate() {
                put(out, (r + i) * n + t, row);
            }
            t += 4;
        }
        while t < n {
            let Some(xs) = rows_at::<1>(x, xb, t) else {
                return;
            };
            let mut o = [[0.0f32; 1]; 4];
            // SAFETY: see above.
            unsafe { tile::<I, F, 4, 1>(ws, xs, nb, &mut o) };
            for (i, v) in o.iter().enumerate() {
                put(out, (r + i) * n + t, v);
            }
            t += 1;
        }
        r += 4;
    }
    while r < rows {
        let Some(ws) = rows_at::<1>(w, rb, r) else {
            return;
        };
        let mut t = 0;
        while t + 4 <= n {
            let Some(xs) = rows_at::<4>(x, xb, t) else {
                return;
            };
            let mut o = [[0.0f32; 4]; 1];
            // SAFETY: see above.
            unsafe { tile::<I, F, 1, 4>(ws, xs, nb, &mut o) };
            put(out, r * n + t, &o[0]);
            t += 4;
        }
        while t < n {
            let Some(xs) = rows_at::<1>(x, xb, t) else {
                return;
            };
            let mut o = [[0.0f32; 1]; 1];
            // SAFETY: see above.
            unsafe { tile::<I, F, 1, 1>(ws, xs, nb, &mut o) };
            put(out, r * n + t, &o[0]);
            t += 1;
        }
        r += 1;
    }
}

/// Rows `first .. first + N` of `s` (rows of `rb` bytes), or None if any is
/// not entirely inside `s`.
#[inline(always)]
pub(super) fn rows_at<const N: usize>(s: &[u8], rb: usize, first: usize) -> Option<[&[u8]; N]> {
    let mut rows = [&[][..]; N];
    for (i, row) in rows.iter_mut().enumerate() {
        *row = s.get((first + i) * rb..(first + i + 1) * rb)?;
    }
    Some(rows)
}

/// `out[at .. at + v.len()] = v` when it fits (the callers checked that it does).
#[inline(always)]
pub(super) fn put(out: &mut [f32], at: usize, v: &[f32]) {
    if let Some(dst) = out.get_mut(at..at + v.len()) {
        dst.copy_from_slice(v);
    }
}

// ---------------------------------------------------------------------------
// Float dots: 16 lanes, rounded multiply then rounded add
// ---------------------------------------------------------------------------

/// How one ISA runs the 16-lane float dot.
pub(crate) trait FloatDot {
    /// `lanes[i % 16] += w[i] * x[i]` for `i < n16` (a multiple of 16), from zero lanes.
    ///
    /// # Safety
    /// `w` holds `n16` weights of `ELEM` bytes, `x` `n16` f32; features present.
    unsafe fn run<const F16: bool>(w: *const u8, x: *const f32, n16: usize) -> [f32; 16];
}

/// Two 8-lane accumulators (lanes 0-7 and 8-15).
pub(crate) struct Float256;
/// One 16-lane accumulator.
pub(crate) struct Float512;

impl FloatDot for Float256 {
    #[inline(always)]
    unsafe fn run<const F16: bool>(w: *const u8, x: *const f32, n16: usize) -> [f32; 16] {
        // SAFETY: reads stay below n16 elements (the contract); AVX + F16C present.
        unsafe {
            let (mut a0, mut a1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
            let mut i = 0;
            while i < n16 {
                let (w0, w1) = if F16 {
                    (
                        _mm256_cvtph_ps(_mm_loadu_si128(w.add(2 * i) as *const __m128i)),
                        _mm256_cvtph_ps(_mm_loadu_si128(w.add(2 * i + 16) as *const __m128i)),
                    )
                } else {
                    (
                        _mm256_loadu_ps(w.add(4 * i) as *const f32),
                        _mm256_loadu_ps(w.add(4 * i + 32) as *const f32),
                    )
                };
                a0 = _mm256_add_ps(a0, _mm256_mul_ps(w0, _mm256_loadu_ps(x.add(i))));
                a1 = _mm256_add_ps(a1, _mm256_mul_ps(w1, _mm256_loadu_ps(x.add(i + 8))));
                i += 16;
            }
            let mut lanes = [0.0f32; 16];
            _mm256_storeu_ps(lanes.as_mut_ptr(), a0);
            _mm256_storeu_ps(lanes.as_mut_ptr().add(8), a1);
            lanes
        }
    }
}

impl FloatDot for Float512 {
    #[inline(always)]
    unsafe fn run<const F16: bool>(w: *const u8, x: *const f32, n16: usize) -> [f32; 16] {
        // SAFETY: reads stay below n16 elements (the contract); AVX-512F present.
        unsafe {
            let mut a = _mm512_setzero_ps();
            let mut i = 0;
            while i < n16 {
                let wv = if F16 {
                    _mm512_cvtph_ps(_mm256_loadu_si256(w.add(2 * i) as *const __m256i))
                } else {
                    _mm512_loadu_ps(w.add(4 * i) as *const f32)
                };
                a = _mm512_add_ps(a, _mm512_mul_ps(wv, _mm512_loadu_ps(x.add(i))));
                i += 16;
            }
            let mut lanes = [0.0f32; 16];
            _mm512_storeu_ps(lanes.as_mut_ptr(), a);
            lanes
        }
    }
}

/// F32 (or F16 when `F16`) weight row x f32 activations, over the shorter operand.
///
/// # Safety
/// The ISA's features are present.
#[inline(always)]
pub(crate) unsafe fn dot_float<D: FloatDot, const F16: bool>(w: &[u8], x: &[f32]) -> f32 {
    let es = if F16 { 2 } else { 4 };
    let n = (w.len() / es).min(x.len());
    let n16 = n - n % 16;
    // SAFETY: n16 <= n elements are inside both slices; features by the caller.
    let mut lanes = unsafe { D::run::<F16>(w.as_ptr(), x.as_ptr(), n16) };
    // the tail (< 16 elements, n16 a multiple of 16): element n16 + k goes to lane k
    let tail_w = w.get(n16 * es..n * es).unwrap_or(&[]);
    let tail_x = x.get(n16..n).unwrap_or(&[]);
    for ((lane, c), &xv) in lanes.iter_mut().zip(tail_w.chunks_exact(es)).zip(tail_x) {
        let wv = if F16 {
            c.first_chunk::<2>()
                .map_or(0.0, |b| f16_to_f32(u16::from_le_bytes(*b)))
        } else {
            c.first_chunk::<4>().map_or(0.0, |b| f32::from_le_bytes(*b))
        };
        *lane += wv * xv;
    }
    fold_lanes(lanes)
}

// ---------------------------------------------------------------------------
// Activation quantization
// ---------------------------------------------------------------------------

/// One block of 32 f32: `(d, quants as i32 x 4 vectors, their sum)` as in the scalar reference.
#[inline(always)]
unsafe fn quantize_block(x: *const f32) -> (f32, [__m256i; 4]) {
    // SAFETY: the caller guarantees 32 readable f32 at `x` and AVX2.
    unsafe {
        let mut v = [_mm256_setzero_ps(); 4];
        for (k, vk) in v.iter_mut().enumerate() {
            *vk = _mm256_loadu_ps(x.add(8 * k));
        }
        let abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
        // max_ps(a, m) returns m when a is NaN: NaNs are skipped, like f32::max.
        let mut m = _mm256_setzero_ps();
        for vk in v {
            m = _mm256_max_ps(_mm256_and_ps(vk, abs_mask), m);
        }
        let m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps::<1>(m));
        let m2 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        let m1 = _mm_max_ss(m2, _mm_shuffle_ps::<0b01>(m2, m2));
        let amax = _mm_cvtss_f32(m1);
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let idv = _mm256_set1_ps(id);
        let mut q = [_mm256_setzero_si256(); 4];
        for (qk, vk) in q.iter_mut().zip(v) {
            let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                _mm256_mul_ps(vk, idv),
            );
            // `as i8` semantics: NaN -> 0, saturate to [-128, 127].
            let r = _mm256_and_ps(r, _mm256_cmp_ps::<_CMP_ORD_Q>(r, r));
            let r = _mm256_min_ps(
                _mm256_max_ps(r, _mm256_set1_ps(-128.0)),
                _mm256_set1_ps(127.0),
            );
            *qk = _mm256_cvtps_epi32(r);
        }
        (d, q)
    }
}

/// Pack 4 vectors of 8 i32 (each in [-128, 127]) into 32 i8 in element order.
#[inline(always)]
unsafe fn pack_i8(q: [__m256i; 4], out: *mut i8) {
    // SAFETY: the caller guarantees 32 writable bytes at `out` and AVX2.
    unsafe {
        let p01 = _mm256_packs_epi32(q[0], q[1]);
        let p23 = _mm256_packs_epi32(q[2], q[3]);
        let p = _mm256_packs_epi16(p01, p23);
        let p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256(out as *mut __m256i, p);
    }
}

/// Sum of the 32 quants.
#[inline(always)]
unsafe fn sum_i32(q: [__m256i; 4]) -> i32 {
    // SAFETY: the caller guarantees AVX2. Integer adds: exact in any order.
    unsafe {
        let s = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
        let s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256::<1>(s));
        let s2 = _mm_add_epi32(s4, _mm_shuffle_epi32::<0b01_00_11_10>(s4));
        let s1 = _mm_add_epi32(s2, _mm_shuffle_epi32::<0b10_11_00_01>(s2));
        _mm_cvtsi128_si32(s1)
    }
}

/// Q8_0 activations (blocks beyond the shorter operand untouched).
///
/// # Safety
/// AVX2 present.
#[inline(always)]
pub(crate) unsafe fn quantize_q8_0(x: &[f32], y: &mut [BlockQ8_0]) {
    for (xb, yb) in x.chunks_exact(QK).zip(y.iter_mut()) {
        // SAFETY: xb has 32 f32, yb.qs 32 bytes; AVX2 by the caller.
        unsafe {
            let (d, q) = quantize_block(xb.as_ptr());
            yb.d = f32_to_f16(d);
            pack_i8(q, yb.qs.as_mut_ptr());
        }
    }
}

/// Q8_1 activations (blocks beyond the shorter operand untouched).
///
/// # Safety
/// AVX2 present.
#[inline(always)]
pub(crate) unsafe fn quantize_q8_1(x: &[f32], y: &mut [BlockQ8_1]) {
    for (xb, yb) in x.chunks_exact(QK).zip(y.iter_mut()) {
        // SAFETY: xb has 32 f32, yb.qs 32 bytes; AVX2 by the caller.
        unsafe {
            let (d, q) = quantize_block(xb.as_ptr());
            let sum = sum_i32(q);
            yb.d = f32_to_f16(d);
            yb.s = f32_to_f16(d * sum as f32);
            pack_i8(q, yb.qs.as_mut_ptr());
        }
    }
}

/// The bytes of a slice of activation blocks.
#[inline(always)]
pub(crate) fn q8_0_bytes(x: &[BlockQ8_0]) -> &[u8] {
    // SAFETY: BlockQ8_0 is `repr(C)` {u16, [i8; 32]}: 34 bytes, no padding
    // (size asserted in quant.rs), every byte initialised; u8 has alignment 1.
    unsafe { core::slice::from_raw_parts(x.as_ptr() as *const u8, core::mem::size_of_val(x)) }
}

/// The bytes of a slice of Q8_1 blocks.
#[inline(always)]
pub(crate) fn q8_1_bytes(x: &[BlockQ8_1]) -> &[u8] {
    // SAFETY: BlockQ8_1 is `repr(C)` {u16, u16, [i8; 32]}: 36 bytes, no padding.
    unsafe { core::slice::from_raw_parts(x.as_ptr() as *const u8, core::mem::size_of_val(x)) }
}

/// Define one ISA's private `#[target_feature]` kernels, their safe wrappers and
/// its `TABLE`. `$feat` must be exactly what `available($backend)` checks.
macro_rules! x86_kernels {
    ($feat:literal, $int:ty, $float:ty, $backend:expr) => {
        use super::common as c;
        use $crate::kernels::Kernels;
        use $crate::quant::{BlockQ8_0, BlockQ8_1};

        #[target_feature(enable = $feat)]
        fn f32_tf(w: &[u8], x: &[f32]) -> f32 {
            // SAFETY: this function's features are enabled, which is the body's contract.
            unsafe { c::dot_float::<$float, false>(w, x) }
        }
        #[target_feature(enable = $feat)]
        fn f16_tf(w: &[u8], x: &[f32]) -> f32 {
            // SAFETY: as above.
            unsafe { c::dot_float::<$float, true>(w, x) }
        }
        #[target_feature(enable = $feat)]
        fn q8_0_tf(w: &[u8], x: &[BlockQ8_0]) -> f32 {
            // SAFETY: as above.
            unsafe { c::dot_q::<$int, c::Q8_0F>(w, c::q8_0_bytes(x)) }
        }
        #[target_feature(enable = $feat)]
        fn q4_0_tf(w: &[u8], x: &[BlockQ8_0]) -> f32 {
            // SAFETY: as above.
            unsafe { c::dot_q::<$int, c::Q4_0F>(w, c::q8_0_bytes(x)) }
        }
        #[target_feature(enable = $feat)]
        fn q4_1_tf(w: &[u8], x: &[BlockQ8_1]) -> f32 {
            // SAFETY: as above.
            unsafe { c::dot_q::<$int, c::Q4_1F>(w, c::q8_1_bytes(x)) }
        }
        #[target_feature(enable = $feat)]
        fn gemm_q8_0_tf(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) {
            // SAFETY: as above.
            unsafe { c::gemm_q::<$int, c::Q8_0F>(w, rows, c::q8_0_bytes(x), n, out) }
        }
        #[target_feature(enable = $feat)]
        fn gemm_q4_0_tf(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) {
            // SAFETY: as above.
            unsafe { c::gemm_q::<$int, c::Q4_0F>(w, rows, c::q8_0_bytes(x), n, out) }
        }
        #[target_feature(enable = $feat)]
        fn gemm_q4_1_tf(w: &[u8], rows: usize, x: &[BlockQ8_1], n: usize, out: &mut [f32]) {
            // SAFETY: as above.
            unsafe { c::gemm_q::<$int, c::Q4_1F>(w, rows, c::q8_1_bytes(x), n, out) }
        }
        #[target_feature(enable = $feat)]
        fn quant_q8_0_tf(x: &[f32], y: &mut [BlockQ8_0]) {
            // SAFETY: as above.
            unsafe { c::quantize_q8_0(x, y) }
        }
        #[target_feature(enable = $feat)]
        fn quant_q8_1_tf(x: &[f32], y: &mut [BlockQ8_1]) {
            // SAFETY: as above.
            unsafe { c::quantize_q8_1(x, y) }
        }

        // The safe wrappers below are private to this module and reachable only
        // through `TABLE`, which `x86_64::table` hands out only after
        // `available($backend)` confirmed every feature in `$feat`.
        fn vec_dot_f32_f32(w: &[u8], x: &[f32]) -> f32 {
            // SAFETY: reached only through TABLE, after detection (see above).
            unsafe { f32_tf(w, x) }
        }
        fn vec_dot_f16_f32(w: &[u8], x: &[f32]) -> f32 {
            // SAFETY: reached only through TABLE, after detection.
            unsafe { f16_tf(w, x) }
        }
        fn vec_dot_q8_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
            // SAFETY: reached only through TABLE, after detection.
            unsafe { q8_0_tf(w, x) }
        }
        fn vec_dot_q4_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
            // SAFETY: reached only through TABLE, after detection.
            unsafe { q4_0_tf(w, x) }
        }
        fn vec_dot_q4_1_q8_1(w: &[u8], x: &[BlockQ8_1]) -> f32 {
            // SAFETY: reached only through TABLE, after detection.
            unsafe { q4_1_tf(w, x) }
        }
        fn gemm_q8_0_q8_0(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) {
            // SAFETY: reached only through TABLE, after detection.
            unsafe { gemm_q8_0_tf(w, rows, x, n, out) }
        }
        fn gemm_q4_0_q8_0(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) {
            // SAFETY: reached only through TABLE, after detection.
            unsafe { gemm_q4_0_tf(w, rows, x, n, out) }
        }
        fn gemm_q4_1_q8_1(w: &[u8], rows: usize, x: &[BlockQ8_1], n: usize, out: &mut [f32]) {
            // SAFETY: reached only through TABLE, after detection.
            unsafe { gemm_q4_1_tf(w, rows, x, n, out) }
        }
        // The portable ops, compiled with this backend's features (same source,
        // same IEEE operations in the same order: the same bits, wider vectors);
        // those that call `exp` in `eltwise`'s interleaved AVX2 form (the same
        // operations per value, 4 vectors a step).
        #[target_feature(enable = $feat)]
        fn softmax_tf(x: &mut [f32]) {
            // SAFETY: this function's features include AVX2, the body's contract.
            unsafe { super::eltwise::softmax(x) }
        }
        #[target_feature(enable = $feat)]
        fn mix_tf(a: &[f32], vals: &[f32], stride: usize, off: usize, out: &mut [f32]) {
            // SAFETY: as in `softmax_tf`.
            unsafe { super::eltwise::mix(a, vals, stride, off, out) }
        }
        #[target_feature(enable = $feat)]
        fn gelu_tf(x: &mut [f32]) {
            // SAFETY: as in `softmax_tf`.
            unsafe { super::eltwise::gelu(x) }
        }
        #[target_feature(enable = $feat)]
        fn swiglu_tf(gate: &mut [f32], up: &[f32]) {
            // SAFETY: as in `softmax_tf`.
            unsafe { super::eltwise::swiglu(gate, up) }
        }
        #[target_feature(enable = $feat)]
        fn scores_tf(
            q: &[f32],
            keys: &[f32],
            stride: usize,
            off: usize,
            scale: f32,
            out: &mut [f32],
        ) -> bool {
            // SAFETY: this function's features include AVX2, the body's contract.
            unsafe { super::avx2q::scores(q, keys, stride, off, scale, out) }
        }
        fn scores(
            q: &[f32],
            keys: &[f32],
            stride: usize,
            off: usize,
            scale: f32,
            out: &mut [f32],
        ) -> bool {
            // SAFETY: reached only through TABLE, after detection.
            unsafe { scores_tf(q, keys, stride, off, scale, out) }
        }
        #[target_feature(enable = $feat)]
        #[allow(clippy::too_many_arguments)]
        fn scores2_tf(
            qa: &[f32],
            qb: &[f32],
            keys: &[f32],
            stride: usize,
            off: usize,
            scale: f32,
            out_a: &mut [f32],
            out_b: &mut [f32],
        ) -> bool {
            // SAFETY: this function's features include AVX2, the body's contract.
            unsafe { super::avx2q::scores2(qa, qb, keys, stride, off, scale, out_a, out_b) }
        }
        #[allow(clippy::too_many_arguments)]
        fn scores2(
            qa: &[f32],
            qb: &[f32],
            keys: &[f32],
            stride: usize,
            off: usize,
            scale: f32,
            out_a: &mut [f32],
            out_b: &mut [f32],
        ) -> bool {
            // SAFETY: reached only through TABLE, after detection.
            unsafe { scores2_tf(qa, qb, keys, stride, off, scale, out_a, out_b) }
        }
        fn mix2(
            a: &[f32],
            b: &[f32],
            vals: &[f32],
            stride: usize,
            off: usize,
            out_a: &mut [f32],
            out_b: &mut [f32],
        ) -> bool {
            // SAFETY: reached only through TABLE, after detection (AVX2 is
            // part of every x86 table's features).
            unsafe { super::eltwise::mix2(a, b, vals, stride, off, out_a, out_b) }
        }
        fn softmax(x: &mut [f32]) {
            // SAFETY: reached only through TABLE, after detection.
            unsafe { softmax_tf(x) }
        }
        fn mix(a: &[f32], vals: &[f32], stride: usize, off: usize, out: &mut [f32]) {
            // SAFETY: reached only through TABLE, after detection.
            unsafe { mix_tf(a, vals, stride, off, out) }
        }
        fn gelu(x: &mut [f32]) {
            // SAFETY: reached only through TABLE, after detection.
            unsafe { gelu_tf(x) }
        }
        fn swiglu(gate: &mut [f32], up: &[f32]) {
            // SAFETY: reached only through TABLE, after detection.
            unsafe { swiglu_tf(gate, up) }
        }
        fn quantize_row_q8_0(x: &[f32], y: &mut [BlockQ8_0]) {
            // SAFETY: reached only through TABLE, after detection.
            unsafe { quant_q8_0_tf(x, y) }
        }
        fn quantize_row_q8_1(x: &[f32], y: &mut [BlockQ8_1]) {
            // SAFETY: reached only through TABLE, after detection.
            unsafe { quant_q8_1_tf(x, y) }
        }

        pub(super) const TABLE: Kernels = Kernels {
            backend: $backend,
            vec_dot_f32_f32,
            vec_dot_f16_f32,
            vec_dot_q8_0_q8_0,
            vec_dot_q4_0_q8_0,
            vec_dot_q4_1_q8_1,
            quantize_row_q8_0,
            quantize_row_q8_1,
            gemm_q8_0_q8_0: Some(gemm_q8_0_q8_0),
            gemm_q4_0_q8_0: Some(gemm_q4_0_q8_0),
            gemm_q4_1_q8_1: Some(gemm_q4_1_q8_1),
            packed_q8_0: None,
            scores: Some(scores),
            scores2: Some(scores2),
            mix2: Some(mix2),
            softmax,
            mix,
            gelu,
            swiglu,
            parallel: None,
        };
    };
}
