//! AVX2 quantized tiles built on `vpmaddubsw` (u8 x i8 -> adjacent pairs summed
//! into i16) instead of widening both operands to i16.
//!
//! Per 32-element block:
//! - Q8_0 x Q8_0 (the sign trick): `u = |w|` (`vpsignb w, w`; `w = -128` gives
//!   the byte 0x80, which read as u8 is exactly 128) and `s = a * sign(w)`
//!   (`vpsignb a, w`), so `u * s = w * a` element by element. `vpmaddubsw`
//!   adds two such products into an i16: `u <= 128` and, as long as no
//!   activation byte is -128, `|s| <= 127`, so a pair stays within
//!   `128 * 127 * 2 = 32512 < 32767` and nothing saturates. An activation byte of
//!   -128 breaks the trick (`vpsignb` cannot negate it), so [`gemm`] and [`dot`]
//!   first scan the activations and hand any input that contains one to the
//!   widening kernels of `common` (exact for every byte). The activation
//!   quantizer only produces -127..=127, so in a forward pass the scan always
//!   passes; the slow path exists for callers of the public table that pass
//!   arbitrary blocks.
//! - Q4_0 / Q4_1 x Q8: the nibbles `q` (0..=15) are already unsigned, so
//!   `vpmaddubsw(q, a)` is exact for every activation byte (`|pair| <= 15 * 128 * 2`);
//!   Q4_0's offset is applied as `sum((q - 8) * a) = sum(q * a) - 8 * sum(a)`,
//!   with `8 * sum(a)` computed once per activation block and tile.
//!
//! `vpmaddwd` with ones widens pair sums to i32: per block for Q8_0; for Q4 only
//! once per 8 blocks, after the reduction tree has added each block's lanes in
//! i16 (8 lanes of at most 3840 stay below 2^15). The 8-block tree uses
//! unpacks and adds (`vphaddd` is one per 2 cycles on Zen 3). Block sums, scales
//! and lanes then follow the fixed order of [`crate::kernels::scalar`] exactly as
//! in `common::tile` (integer sums are exact in any order; every float
//! operation is the reference's, in its order).
//!
//! Loop structure (what keeps the 16 vector registers from spilling, measured on
//! Zen 3, where `vpmaddubsw`/`vpmaddwd` issue on 2 pipes and `vpsignb` and the
//! unpacks share the other two):
//! - [`prefill`] (2 or more tokens): one weight row at a time; per 8-block group,
//!   half the row's group is held in registers while every token of a chunk (at
//!   most 32) runs against it. The chunk's activations are first packed into an
//!   aligned buffer in a paired layout (block j's element halves next to block
//!   j + 4's), which saves the first stage of shuffles and every cache-line split.
//! - [`decode`] (one token): one row at a time, front to back, so the weights
//!   stream from DRAM as one sequential run, with a software prefetch ahead.
//! - Neither forms a token's (row's) products and scales them in one chain:
//!   prefill finishes token t - 1 while forming token t's second half, decode
//!   parks a row's group sums and scales them in a second loop. One long chain
//!   per token or row kept the out-of-order window full.
//! - `tile` (8 rows x 1 token, and the single-row [`dot`]) for the rest.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::common::{put, rows_at, Avx2Int, WFmt};
use crate::kernels::scalar::fold_lanes;

/// The lanes of one block (quants at `pw` and `pa`), summing to `sum(q * a)`:
/// Q8_0 (`q` the signed weight): 8 i32; Q4 (`q` the raw nibble): 16 i16.
///
/// # Safety
/// 32 readable bytes at `pa`, the block's quants (32 or 16 bytes) at `pw`; AVX2.
/// Q8_0: no byte at `pa` is -128.
#[inline(always)]
unsafe fn block<F: WFmt>(pw: *const u8, pa: *const u8) -> __m256i {
    // SAFETY: the reads are covered by the caller's contract; AVX2 present.
    unsafe {
        let a = _mm256_loadu_si256(pa as *const __m256i);
        if F::Q4 {
            // 16 bytes in both halves; low half keeps the low nibbles (elements
            // 0..16), the high half is shifted by 4 (elements 16..32).
            let v = _mm256_broadcastsi128_si256(_mm_loadu_si128(pw as *const __m128i));
            let v = _mm256_srlv_epi32(v, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4));
            // |lane| <= 2 * 15 * 128 = 3840: widened after the reduction.
            _mm256_maddubs_epi16(_mm256_and_si256(v, _mm256_set1_epi8(0x0f)), a)
        } else {
            let w = _mm256_loadu_si256(pw as *const __m256i);
            let m = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
            _mm256_madd_epi16(m, _mm256_set1_epi16(1))
        }
    }
}

/// 8 f16 values at `p`, `p + stride`, ... widened (exactly) to f32; packed in
/// general-purpose registers (idle here) instead of 8 vector inserts (the Q8_0
/// decode, where it is the other way round, uses [`scales8_inserted`]).
///
/// # Safety
/// 2 readable bytes at each `p + j * stride`, j < 8; AVX2 + F16C.
#[inline(always)]
unsafe fn scales8(p: *const u8, stride: usize) -> __m256 {
    // SAFETY: the reads are covered by the caller's contract; features present.
    unsafe {
        let h = |j: usize| core::ptr::read_unaligned(p.add(j * stride) as *const u16) as u64;
        let lo = h(0) | h(1) << 16 | h(2) << 32 | h(3) << 48;
        let hi = h(4) | h(5) << 16 | h(6) << 32 | h(7) << 48;
        _mm256_cvtph_ps(_mm_set_epi64x(hi as i64, lo as i64))
    }
}

/// [`scales8`] through 8 word inserts into a vector register instead of
/// general-purpose ones. Measured on the 2-core Zen 3 VM, faster in the Q8_0
/// decode (per block on weights in L2 1.31-1.41 -> 1.20-1.30 ns; GPT-2 Q8_0
/// decode on one thread 165 -> 179 tok/s; removing the weight scales
/// altogether, as an upper bound, gave ~1.07), slower in the Q4 decode (0.87 ->
/// 1.16 ns), which keeps [`scales8`]; so do the few-token tiles, where the
/// inserts changed nothing measurable.
///
/// # Safety
/// As [`scales8`].
#[inline(always)]
unsafe fn scales8_inserted(p: *const u8, stride: usize) -> __m256 {
    // SAFETY: the reads are covered by the caller's contract; features present.
    unsafe {
        let h = |j: usize| i32::from(core::ptr::read_unaligned(p.add(j * stride) as *const u16));
        let mut v = _mm_cvtsi32_si128(h(0));
        v = _mm_insert_epi16::<1>(v, h(1));
        v = _mm_insert_epi16::<2>(v, h(2));
        v = _mm_insert_epi16::<3>(v, h(3));
        v = _mm_insert_epi16::<4>(v, h(4));
        v = _mm_insert_epi16::<5>(v, h(5));
        v = _mm_insert_epi16::<6>(v, h(6));
        v = _mm_insert_epi16::<7>(v, h(7));
        _mm256_cvtph_ps(v)
    }
}

/// `a + b` lane by lane, as i16 (`I16`) or i32.
///
/// # Safety
/// AVX2 present.
#[inline(always)]
unsafe fn add<const I16: bool>(a: __m256i, b: __m256i) -> __m256i {
    // SAFETY: AVX2 by the caller.
    unsafe {
        if I16 {
            _mm256_add_epi16(a, b)
        } else {
            _mm256_add_epi32(a, b)
        }
    }
}

/// The first two stages of [`reduce8`]: 4 vectors (blocks a, b, c, d) -> per
/// 128-bit half `[a, b, c, d]`, each that half's partial sum of its block.
///
/// # Safety
/// As [`reduce8`].
#[inline(always)]
unsafe fn quad<const I16: bool>(a: __m256i, b: __m256i, c: __m256i, d: __m256i) -> __m256i {
    // SAFETY: AVX2 by the caller.
    unsafe {
        // [a0+a2, b0+b2, a1+a3, b1+b3 | a4+a6, b4+b6, a5+a7, b5+b7]
        let pair = |a: __m256i, b: __m256i| {
            add::<I16>(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b))
        };
        let (ab, cd) = (pair(a, b), pair(c, d));
        // [a0..3, b0..3, c0..3, d0..3 | a4..7, b4..7, c4..7, d4..7]
        add::<I16>(_mm256_unpacklo_epi64(ab, cd), _mm256_unpackhi_epi64(ab, cd))
    }
}

/// The last stage of [`reduce8`]: two [`quad`] results (blocks 0..4 and 4..8)
/// -> the 8 block sums as i32, in block order.
///
/// # Safety
/// As [`reduce8`].
#[inline(always)]
unsafe fn join<const I16: bool>(q0: __m256i, q1: __m256i) -> __m256i {
    // SAFETY: AVX2 by the caller.
    unsafe {
        // [q0 lo | q1 hi] + [q0 hi | q1 lo]
        let s = add::<I16>(
            _mm256_blend_epi32::<0b1111_0000>(q0, q1),
            _mm256_permute2x128_si256::<0x21>(q0, q1),
        );
        if I16 {
            _mm256_madd_epi16(s, _mm256_set1_epi16(1))
        } else {
            s
        }
    }
}

/// 8 vectors (one per block) of 8 i32 lanes (`I16`: 16 i16 lanes) -> one vector
/// of the 8 i32 block sums, in block order, with unpacks, blends and adds
/// (`vphaddd` is several uops with a throughput of one per 2 cycles on Zen 3).
/// Integer adds: exact.
///
/// # Safety
/// AVX2 present. `I16`: every i16 lane of `v` is at most 3840 in magnitude, so
/// the sums of 8 lanes that the tree forms before widening stay below 2^15
/// (8 * 3840 = 30720).
#[inline(always)]
unsafe fn reduce8<const I16: bool>(v: [__m256i; 8]) -> __m256i {
    let [v0, v1, v2, v3, v4, v5, v6, v7] = v;
    // SAFETY: AVX2 by the caller.
    unsafe { join::<I16>(quad::<I16>(v0, v1, v2, v3), quad::<I16>(v4, v5, v6, v7)) }
}

/// `NIB_OFFSET * sum(a)` of the 8 activation blocks at `p` (block stride `F::AB`).
///
/// # Safety
/// 8 activation blocks readable at `p`; AVX2.
#[inline(always)]
unsafe fn offsets8<F: WFmt>(p: *const u8) -> __m256i {
    // SAFETY: the reads are covered by the caller's contract; AVX2 present.
    unsafe {
        let k = _mm256_set1_epi8(F::NIB_OFFSET as i8);
        let mut v = [_mm256_setzero_si256(); 8];
        for (j, vj) in v.iter_mut().enumerate() {
            let a = _mm256_loadu_si256(p.add(j * F::AB + F::AOFF) as *const __m256i);
            // |lane| <= 2 * 8 * 128 = 2048: reduced as i16.
            *vj = _mm256_maddubs_epi16(k, a);
        }
        reduce8::<true>(v)
    }
}

/// Rows ahead that the single-token tiles prefetch (0: none).
const PF_ROWS: usize = 8;

/// `out[r][t] = dot(w[r], x[t])` over `nb` blocks (see the module docs).
///
/// # Safety
/// Every `w[r]` holds `nb * F::WB` bytes and every `x[t]` `nb * F::AB` bytes;
/// AVX2 + F16C present; Q8_0: no activation quant byte is -128.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
// r, t, j index several arrays at once
// INDEXING: every index is a loop counter over its array's own const length
// (r < R, t < T, j < 8), so each access is in bounds by type (as in common::tile).
#[allow(clippy::indexing_slicing)]
unsafe fn tile<F: WFmt, const R: usize, const T: usize>(
    w: [&[u8]; R],
    x: [&[u8]; T],
    nb: usize,
    out: &mut [[f32; T]; R],
) {
    // SAFETY: groups cover blocks 0..8*ng <= nb, inside every slice by the contract;
    // the tail goes through `tail_terms` (whole blocks only). Features by the contract.
    unsafe {
        let ng = nb / 8;
        let zf = _mm256_setzero_ps();
        let zi = _mm256_setzero_si256();
        let mut acc = [[zf; T]; R];
        for g in 0..ng {
            let b0 = g * 8;
            let mut dx = [zf; T];
            let mut sx = [zf; T];
            let mut off = [zi; T];
            for t in 0..T {
                let p = x[t].as_ptr().add(b0 * F::AB);
                dx[t] = scales8(p, F::AB);
                if F::HAS_M {
                    sx[t] = scales8(p.add(2), F::AB);
                }
                if F::NIB_OFFSET != 0 {
                    off[t] = offsets8::<F>(p);
                }
            }
            for r in 0..R {
                let wp = w[r].as_ptr().add(b0 * F::WB);
                if T == 1 && PF_ROWS > 0 {
                    // Decode streams the weights from DRAM once: ask for the same
                    // group PF_ROWS rows ahead (a hint; never faults, so the
                    // address may lie past the matrix).
                    let pf = wp.wrapping_add(PF_ROWS * nb * F::WB);
                    let mut o = 0;
                    while o < 8 * F::WB {
                        _mm_prefetch::<_MM_HINT_T0>(pf.wrapping_add(o) as *const i8);
                        o += 64;
                    }
                }
                let dw = scales8(wp, F::WB);
                let mw = if F::HAS_M {
                    scales8(wp.add(2), F::WB)
                } else {
                    zf
                };
                for t in 0..T {
                    let xp = x[t].as_ptr().add(b0 * F::AB);
                    let mut v = [zi; 8];
                    for j in 0..8 {
                        v[j] = block::<F>(wp.add(j * F::WB + F::QOFF), xp.add(j * F::AB + F::AOFF));
                    }
                    let mut s = if F::Q4 {
                        reduce8::<true>(v)
                    } else {
                        reduce8::<false>(v)
                    };
                    if F::NIB_OFFSET != 0 {
                        s = _mm256_sub_epi32(s, off[t]);
                    }
                    let d = _mm256_mul_ps(dw, dx[t]);
                    let mut term = _mm256_mul_ps(_mm256_cvtepi32_ps(s), d);
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
                let mut a = acc[r][t];
                if ng * 8 < nb {
                    a = _mm256_add_ps(a, tail_terms::<F>(w[r], x[t], ng * 8));
                }
                _mm256_storeu_ps(lanes.as_mut_ptr(), a);
                out[r][t] = fold_lanes(lanes);
            }
        }
    }
}

/// The terms of the last blocks `j0..` of a row (fewer than 8: the part of `nb`
/// past the whole 8-block groups), block `j0 + i` in lane `i`, +0.0 in the lanes
/// past the end: the same operations as the groups in [`tile`], so a lane gets
/// exactly the reference's term. Adding the +0.0 of an empty lane changes nothing:
/// a lane starts at +0.0 and a round-to-nearest sum is -0.0 only when both
/// addends are, so the lane is never -0.0 and `lane + 0.0 == lane` bit for bit.
/// (Rows of 576 columns, SmolLM2's, end in 2 such blocks: done one by one in
/// scalar code they had cost more than the 16 blocks before them.)
///
/// # Safety
/// AVX2 + F16C present; for Q8_0, no activation quant byte is -128.
#[inline(always)]
unsafe fn tail_terms<F: WFmt>(w: &[u8], x: &[u8], j0: usize) -> __m256 {
    let h = |b: &[u8], i: usize| match b.get(i..i + 2) {
        Some(&[lo, hi]) => u16::from_le_bytes([lo, hi]),
        _ => 0,
    };
    // SAFETY: AVX2 by the caller.
    let mut v = [unsafe { _mm256_setzero_si256() }; 8];
    let (mut dw, mut dx, mut mw, mut sx) = ([0u16; 8], [0u16; 8], [0u16; 8], [0u16; 8]);
    let mut off = [0i32; 8];
    let ws = w.get(j0 * F::WB..).unwrap_or(&[]).chunks_exact(F::WB);
    let xs = x.get(j0 * F::AB..).unwrap_or(&[]).chunks_exact(F::AB);
    let lanes = v
        .iter_mut()
        .zip(dw.iter_mut().zip(dx.iter_mut()))
        .zip(mw.iter_mut().zip(sx.iter_mut()))
        .zip(off.iter_mut());
    for ((((vi, (dwi, dxi)), (mwi, sxi)), oi), (wb, xb)) in lanes.zip(ws.zip(xs)) {
        // SAFETY: `wb` is one whole weight block and `xb` one whole activation
        // block, so the quant reads of `block` (16 or 32 bytes at QOFF, 32 at
        // AOFF) stay inside them; features and the -128 rule by the caller.
        *vi = unsafe { block::<F>(wb.as_ptr().add(F::QOFF), xb.as_ptr().add(F::AOFF)) };
        (*dwi, *dxi, *mwi, *sxi) = (h(wb, 0), h(xb, 0), h(wb, 2), h(xb, 2));
        if F::NIB_OFFSET != 0 {
            let qa = xb.get(F::AOFF..).unwrap_or(&[]).iter().take(32);
            *oi = F::NIB_OFFSET * qa.map(|&q| q as i8 as i32).sum::<i32>();
        }
    }
    // SAFETY: register-only AVX2/F16C operations; features by the caller.
    unsafe {
        let cvt = |h: [u16; 8]| _mm256_cvtph_ps(_mm_loadu_si128(h.as_ptr() as *const __m128i));
        let mut s = if F::Q4 {
            reduce8::<true>(v)
        } else {
            reduce8::<false>(v)
        };
        if F::NIB_OFFSET != 0 {
            s = _mm256_sub_epi32(s, _mm256_loadu_si256(off.as_ptr() as *const __m256i));
        }
        let d = _mm256_mul_ps(cvt(dw), cvt(dx));
        let mut term = _mm256_mul_ps(_mm256_cvtepi32_ps(s), d);
        if F::HAS_M {
            term = _mm256_add_ps(term, _mm256_mul_ps(cvt(mw), cvt(sx)));
        }
        term
    }
}

// ---------------------------------------------------------------------------
// Prefill: one weight row at a time against a chunk of tokens
// ---------------------------------------------------------------------------

/// Most tokens of one prefill chunk (the per-row work of a chunk, weight scales
/// and held weights, is shared by its tokens: 32 ran 3-5% faster than 16 on
/// GPT-2 and SmolLM2 prefill; the matmul driver hands up to 64 per call, which
/// run as two chunks).
const PT: usize = 32;
/// Most weight rows whose accumulators are kept across column pieces (32 KB of
/// them): the chunk's activations are packed once per row block, and the
/// matmul driver hands 32 rows per call. 32 against 16: 1.39 against 1.47
/// cycles per block x row x token for Q4_0 at 768 columns, 1.30 against 1.39 at
/// 3072; GPT-2 Q4_0 pp128 +5%.
const PR: usize = 32;
/// Capacity of the packed activations, in (8-block group, token) pairs of 256 bytes.
const PG: usize = 64;
/// Bytes of one zero-padded partial group (8 blocks of at most 36 bytes).
const PAD: usize = 8 * 36;

/// The 4 weight vectors of one half of an 8-block group, in the paired layout
/// of [`prefill`] (`[lo of block j | lo of block j + 4]`, then the `hi` halves,
/// for two values of j), held in registers while the chunk's tokens pass. Q8_0:
/// the signed weights `w` and their magnitudes `u`; Q4: the nibbles in `u`.
struct Held {
    w: [__m256i; 4],
    u: [__m256i; 4],
}

/// Hold blocks `j0, j0 + 1` and `j0 + 4, j0 + 5` of the group at `wp` (block
/// stride `F::WB`) in the paired layout.
///
/// # Safety
/// The group's 8 weight blocks readable at `wp`, `j0 <= 2`; AVX2.
#[inline(always)]
unsafe fn hold<F: WFmt>(wp: *const u8, j0: usize) -> Held {
    // SAFETY: the reads are covered by the caller's contract; AVX2 present.
    unsafe {
        let z = _mm256_setzero_si256();
        let mut h = Held {
            w: [z; 4],
            u: [z; 4],
        };
        for (i, (w, u)) in
            h.w.chunks_exact_mut(2)
                .zip(h.u.chunks_exact_mut(2))
                .enumerate()
        {
            let p0 = wp.add((j0 + i) * F::WB + F::QOFF);
            let p1 = p0.add(4 * F::WB);
            if F::Q4 {
                // [q of block j | q of block j + 4]: low nibbles are elements
                // 0..16, high nibbles 16..32.
                let q = _mm256_inserti128_si256::<1>(
                    _mm256_castsi128_si256(_mm_loadu_si128(p0 as *const __m128i)),
                    _mm_loadu_si128(p1 as *const __m128i),
                );
                let m = _mm256_set1_epi8(0x0f);
                if let [lo, hi] = u {
                    *lo = _mm256_and_si256(q, m);
                    *hi = _mm256_and_si256(_mm256_srli_epi16::<4>(q), m);
                }
            } else {
                let a = _mm256_loadu_si256(p0 as *const __m256i);
                let b = _mm256_loadu_si256(p1 as *const __m256i);
                if let ([wlo, whi], [ulo, uhi]) = (w, u) {
                    *wlo = _mm256_permute2x128_si256::<0x20>(a, b);
                    *whi = _mm256_permute2x128_si256::<0x31>(a, b);
                    *ulo = _mm256_sign_epi8(*wlo, *wlo);
                    *uhi = _mm256_sign_epi8(*whi, *whi);
                }
            }
        }
        h
    }
}

/// The held half against one token's 4 packed activation vectors at `xp`
/// (32-byte aligned): per 128-bit half, the partial sums of blocks
/// `[j0, j0 + 1, j0, j0 + 1]` (low half) and `[j0 + 4, j0 + 5, ..]` (high half),
/// i32 (Q4: i16 pairs). Pairing block j with block j + 4 in one vector lets the
/// products of its two element halves be added directly, so this first stage
/// of the reduction needs no shuffle.
///
/// # Safety
/// 128 readable bytes at `xp`, 32-byte aligned; AVX2; Q8_0: no activation byte is -128.
#[inline(always)]
unsafe fn half<F: WFmt>(h: &Held, xp: *const __m256i) -> __m256i {
    // SAFETY: the reads are covered by the caller's contract; AVX2 present.
    unsafe {
        let mut v = [_mm256_setzero_si256(); 4];
        for (k, (vk, (&w, &u))) in v.iter_mut().zip(h.w.iter().zip(&h.u)).enumerate() {
            let a = _mm256_load_si256(xp.add(k));
            *vk = if F::Q4 {
                // |lane| <= 2 * 15 * 128 = 3840: widened after the reduction.
                _mm256_maddubs_epi16(u, a)
            } else {
                let m = _mm256_maddubs_epi16(u, _mm256_sign_epi8(a, w));
                _mm256_madd_epi16(m, _mm256_set1_epi16(1))
            };
        }
        let [v0, v1, v2, v3] = v;
        let (p0, p1) = if F::Q4 {
            (add::<true>(v0, v1), add::<true>(v2, v3))
        } else {
            (add::<false>(v0, v1), add::<false>(v2, v3))
        };
        let (lo, hi) = (_mm256_unpacklo_epi32(p0, p1), _mm256_unpackhi_epi32(p0, p1));
        if F::Q4 {
            add::<true>(lo, hi)
        } else {
            add::<false>(lo, hi)
        }
    }
}

/// Two [`half`] results (blocks 0, 1, 4, 5 and 2, 3, 6, 7) -> the 8 block sums
/// as i32, in block order.
///
/// # Safety
/// AVX2 present; `I16`: as [`reduce8`] (each i16 lane then sums 16 products of
/// magnitude at most 15 * 128: 30720 < 2^15).
#[inline(always)]
unsafe fn join2<const I16: bool>(u0: __m256i, u1: __m256i) -> __m256i {
    // SAFETY: AVX2 by the caller.
    unsafe {
        let s = add::<I16>(_mm256_unpacklo_epi64(u0, u1), _mm256_unpackhi_epi64(u0, u1));
        if I16 {
            _mm256_madd_epi16(s, _mm256_set1_epi16(1))
        } else {
            s
        }
    }
}

/// [`fold_lanes`] of 4 accumulators at once, the results in order: the same
/// additions on the same operands (`a[i] += a[i + 4]`, then `+ a[i + 2]`, then
/// `+ a[i + 1]`), only 4 accumulators side by side in the vectors.
///
/// # Safety
/// AVX2 present.
#[inline(always)]
unsafe fn fold4(a0: __m256, a1: __m256, a2: __m256, a3: __m256) -> __m128 {
    // SAFETY: register-only AVX operations; AVX2 by the caller.
    unsafe {
        // h = 4: [a0 lo + a0 hi | a1 lo + a1 hi], the same for a2, a3
        let h4 = |x: __m256, y: __m256| {
            _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(x, y),
                _mm256_permute2f128_ps::<0x31>(x, y),
            )
        };
        let (s01, s23) = (h4(a0, a1), h4(a2, a3));
        // h = 2: per 128-bit half [a0: s0 + s2, s1 + s3, a2: s0 + s2, s1 + s3]
        let s = _mm256_add_ps(
            _mm256_shuffle_ps::<0b01_00_01_00>(s01, s23),
            _mm256_shuffle_ps::<0b11_10_11_10>(s01, s23),
        );
        // h = 1: [a0, a2, a0, a2 | a1, a3, a1, a3]
        let s = _mm256_add_ps(
            _mm256_shuffle_ps::<0b10_00_10_00>(s, s),
            _mm256_shuffle_ps::<0b11_01_11_01>(s, s),
        );
        // [a0, a1, a2, a3]
        _mm_unpacklo_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s))
    }
}

/// Prefill: `out[r * n + t] = dot(w row r, x row t)` for `n >= 2` tokens.
///
/// Tokens go in chunks of at most [`PT`], rows in blocks of at most [`PR`],
/// the columns in pieces whose packed activations fit [`PG`]. Per piece, the
/// chunk's activation quants are copied into an aligned buffer in the paired
/// layout (vector `2 * i + e` of a group: element half `e` of block `i` in the
/// low 128 bits and of block `i + 4` in the high 128 bits), and their scales
/// (Q4_0: `8 * sum(a)` offsets; Q4_1: sums) converted once. Then each weight
/// row of the block passes once: per 8-block group, each half is held in
/// registers ([`hold`]) while every token of the chunk runs against it
/// ([`half`]), the first half's sums parked on the stack until [`join2`]. The
/// 8 (Q4: 4) held vectors plus the temporaries fit the 16 registers, and the
/// activations come from L1 without cache-line splits.
///
/// A last partial group (nb not a multiple of 8) goes through the same code
/// from zero-padded copies of the row and of the activations: a padding block
/// has weight 0 and scale 0, so its lane gets the term +0.0, and
/// `lane + 0.0 == lane` bit for bit (a lane starts at +0.0 and a round-to-nearest
/// sum is -0.0 only when both addends are, so it is never -0.0).
///
/// Returns false, with `out` partly written, when a Q8_0 activation byte is
/// -128 (the sign trick would be wrong; see the module docs): the packing loop
/// sees every activation byte anyway, so it checks them there, before any
/// product of its piece is formed, instead of a separate scan.
///
/// # Safety
/// `w` is `rows` rows and `x` `n` rows of `nb >= 1` blocks each, `out` holds
/// `rows * n` values; AVX2 + F16C present.
#[inline(always)]
#[must_use]
unsafe fn prefill<F: WFmt>(
    w: &[u8],
    rows: usize,
    x: &[u8],
    n: usize,
    out: &mut [f32],
    nb: usize,
) -> bool {
    let (ngf, tail) = (nb / 8, nb % 8);
    let ngt = nb.div_ceil(8);
    let (rb, xb) = (nb * F::WB, nb * F::AB);
    // SAFETY: every pointer below stays inside `w` (row r < rows, full group
    // g < ngf: bytes below (g + 1) * 8 * WB <= rb), inside `x` (token t0 + t < n,
    // likewise), or inside a stack buffer: packed vectors (gi * tn + t) * 8 + k
    // < PG * 8 (gi < gp, t < tn, gp * tn <= PG), scales gi * tn + t < PG,
    // accumulators ri * PT + t < PR * PT, padded copies t * PAD + b < PT * PAD.
    // Buffer entries are written before they are read: the packing loop covers
    // every (gi, t) the rows read, accumulators are zeroed at the first piece.
    // Features and the -128 rule by the caller.
    unsafe {
        let zf = _mm256_setzero_ps();
        let zi = _mm256_setzero_si256();
        let mut xab = [const { MaybeUninit::<__m256i>::uninit() }; PG * 8];
        let mut dxb = [const { MaybeUninit::<__m256>::uninit() }; PG];
        let mut auxb = [const { MaybeUninit::<__m256i>::uninit() }; PG];
        let mut accb = [const { MaybeUninit::<__m256>::uninit() }; PR * PT];
        let mut xpadb = [const { MaybeUninit::<u8>::uninit() }; PT * PAD];
        let mut wpadb = [const { MaybeUninit::<u8>::uninit() }; PAD];
        let xa = xab.as_mut_ptr() as *mut __m256i;
        let (dx, aux) = (
            dxb.as_mut_ptr() as *mut __m256,
            auxb.as_mut_ptr() as *mut __m256i,
        );
        let acc = accb.as_mut_ptr() as *mut __m256;
        let (xpad, wpad) = (xpadb.as_mut_ptr() as *mut u8, wpadb.as_mut_ptr() as *mut u8);
        // First halves' sums, written for every token of a group before read.
        let mut qlo = [const { MaybeUninit::<__m256i>::uninit() }; PT];
        let qlop = qlo.as_mut_ptr() as *mut __m256i;
        // Even chunks: 17 tokens run as 9 + 8, not 16 + 1.
        let chunks = n.div_ceil(PT);
        let mut t0 = 0;
        for c in 0..chunks {
            let tn = (n - t0) / (chunks - c);
            let xc = x.as_ptr().add(t0 * xb);
            let gp = PG / tn;
            if tail > 0 {
                core::ptr::write_bytes(xpad, 0, tn * PAD);
                for t in 0..tn {
                    let src = xc.add(t * xb + ngf * 8 * F::AB);
                    core::ptr::copy_nonoverlapping(src, xpad.add(t * PAD), tail * F::AB);
                }
            }
            // Group g of the chunk: its first token's blocks and the token stride.
            let xsrc = |g: usize| {
                if g < ngf {
                    (xc.add(g * 8 * F::AB), xb)
                } else {
                    (xpad as *const u8, PAD)
                }
            };
            let mut r0 = 0;
            while r0 < rows {
                let nr = PR.min(rows - r0);
                let mut g0 = 0;
                while g0 < ngt {
                    let ng = gp.min(ngt - g0);
                    let mut lo = _mm256_set1_epi8(127);
                    for gi in 0..ng {
                        let (xg, xs) = xsrc(g0 + gi);
                        for t in 0..tn {
                            let p = xg.add(t * xs);
                            let e = gi * tn + t;
                            let q = xa.add(e * 8);
                            for i in 0..4 {
                                let a = _mm256_loadu_si256(
                                    p.add(i * F::AB + F::AOFF) as *const __m256i
                                );
                                let b = _mm256_loadu_si256(
                                    p.add((i + 4) * F::AB + F::AOFF) as *const __m256i
                                );
                                if !F::Q4 {
                                    lo = _mm256_min_epi8(lo, _mm256_min_epi8(a, b));
                                }
                                q.add(2 * i).write(_mm256_permute2x128_si256::<0x20>(a, b));
                                q.add(2 * i + 1)
                                    .write(_mm256_permute2x128_si256::<0x31>(a, b));
                            }
                            dx.add(e).write(scales8(p, F::AB));
                            if F::HAS_M {
                                aux.add(e)
                                    .write(_mm256_castps_si256(scales8(p.add(2), F::AB)));
                            } else if F::NIB_OFFSET != 0 {
                                aux.add(e).write(offsets8::<F>(p));
                            }
                        }
                    }
                    if !F::Q4
                        && _mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, _mm256_set1_epi8(-128))) != 0
                    {
                        return false;
                    }
                    for ri in 0..nr {
                        let wr = w.as_ptr().add((r0 + ri) * rb);
                        if tail > 0 && g0 + ng == ngt {
                            core::ptr::write_bytes(wpad, 0, PAD);
                            let src = wr.add(ngf * 8 * F::WB);
                            core::ptr::copy_nonoverlapping(src, wpad, tail * F::WB);
                        }
                        let accr = acc.add(ri * PT);
                        if g0 == 0 {
                            for t in 0..tn {
                                accr.add(t).write(zf);
                            }
                        }
                        for gi in 0..ng {
                            let g = g0 + gi;
                            let wp = if g < ngf {
                                wr.add(g * 8 * F::WB)
                            } else {
                                wpad as *const u8
                            };
                            let xg = xa.add(gi * tn * 8) as *const __m256i;
                            let h = hold::<F>(wp, 0);
                            for t in 0..tn {
                                qlop.add(t).write(half::<F>(&h, xg.add(t * 8)));
                            }
                            // A last group of at most 2 blocks: nothing in blocks 2, 3, 6, 7.
                            let full = g < ngf || tail > 2;
                            let h = hold::<F>(wp, 2);
                            let dw = scales8(wp, F::WB);
                            let mw = if F::HAS_M {
                                scales8(wp.add(2), F::WB)
                            } else {
                                zf
                            };
                            let (dxg, auxg) = (dx.add(gi * tn), aux.add(gi * tn));
                            // Token t's second half: join, scale, accumulate.
                            let finish = |t: usize, u1: __m256i| {
                                let u0 = *qlop.add(t);
                                let mut s = if F::Q4 {
                                    join2::<true>(u0, u1)
                                } else {
                                    join2::<false>(u0, u1)
                                };
                                if F::NIB_OFFSET != 0 {
                                    s = _mm256_sub_epi32(s, *auxg.add(t));
                                }
                                let d = _mm256_mul_ps(dw, *dxg.add(t));
                                let mut term = _mm256_mul_ps(_mm256_cvtepi32_ps(s), d);
                                if F::HAS_M {
                                    let sx = _mm256_castsi256_ps(*auxg.add(t));
                                    term = _mm256_add_ps(term, _mm256_mul_ps(mw, sx));
                                }
                                let a = accr.add(t);
                                a.write(_mm256_add_ps(*a, term));
                            };
                            if full {
                                // Software-pipelined: token t - 1 is finished
                                // while token t's products are formed, so
                                // neither waits on the other's chain.
                                let mut prev = half::<F>(&h, xg.add(4));
                                for t in 1..tn {
                                    let u1 = half::<F>(&h, xg.add(t * 8 + 4));
                                    finish(t - 1, prev);
                                    prev = u1;
                                }
                                finish(tn - 1, prev);
                            } else {
                                for t in 0..tn {
                                    finish(t, zi);
                                }
                            }
                        }
                    }
                    g0 += ng;
                }
                for ri in 0..nr {
                    let (accr, o0) = (acc.add(ri * PT), (r0 + ri) * n + t0);
                    let mut t = 0;
                    while t + 4 <= tn {
                        let a = |i: usize| *accr.add(t + i);
                        let v = fold4(a(0), a(1), a(2), a(3));
                        if let Some(o) = out.get_mut(o0 + t..o0 + t + 4) {
                            _mm_storeu_ps(o.as_mut_ptr(), v);
                        }
                        t += 4;
                    }
                    while t < tn {
                        let mut lanes = [0.0f32; 8];
                        _mm256_storeu_ps(lanes.as_mut_ptr(), *accr.add(t));
                        if let Some(o) = out.get_mut(o0 + t) {
                            *o = fold_lanes(lanes);
                        }
                        t += 1;
                    }
                }
                r0 += nr;
            }
            t0 += tn;
        }
    }
    true
}

// ---------------------------------------------------------------------------
// Decode: one token, the weight rows in one or two streams
// ---------------------------------------------------------------------------

/// How far ahead of the weights decode prefetches, in bytes (1024 lost 7% on
/// GPT-2 Q4_0 decode, where a row is 432 bytes). Re-measured with 2 threads on
/// the 2-core Zen 3 VM: no prefetch lost 15-20% (Q8_0 146 vs 180 tok/s, Q4_0
/// 220 vs 250); 1536, 4608, 6144 and 8192 were within the +-10% noise of 3072,
/// and so was the T2 hint instead of T0.
const DPF: usize = 3072;
/// Most 8-block groups a decode row may have (16384 columns; the token's
/// packed quants, 16 KB, its scales and a row's group sums live on the stack).
const DG: usize = 64;

/// Decode: `out[r] = dot(w row r, x)` for one token of `nb >= 1` blocks.
///
/// The token's activation quants are first copied into an aligned buffer (Q4:
/// in the paired layout of [`prefill`], whose first reduction stage is then an
/// add; Q8_0: in block order, since pairing would cost two lane permutes of
/// the weights per block pair of every row), checking them for -128 on the way
/// (returns false, nothing written, if a Q8_0 byte is). Then the rows
/// ([`rows_k`]), two side by side, one 8-block group at a time. Q8_0: per row,
/// a first loop reduces each group to its 8 block sums and parks them; a
/// second one scales and accumulates them: independent short chains instead
/// of one long one per group, which had kept the out-of-order window full.
/// Q4: each group's sums are scaled and accumulated at once (the two rows'
/// chains are independent already). A software prefetch runs [`DPF`] bytes
/// ahead of the weights. A last partial group goes through zero-padded copies,
/// as in [`prefill`].
///
/// Q8_0 reads the two halves of the rows side by side, group by group (rows
/// `i` and `rows / 2 + i`; an odd last row alone): two streams through
/// memory, which one core reads faster than one. One stream was the limit:
/// a plain read loop on the 2-core Zen 3 VM got 16-19 GB/s from one stream
/// per core and 22-30 GB/s from 2-4 interleaved ones (interleaved every
/// 64-1024 bytes; every 3 KB gained nothing), and GPT-2 Q8_0 decode went
/// from 157 to 163 tok/s on 1 thread and from 266 to 286 on 2 (alternating
/// runs; +15-20% while the machine was busy). Four streams were slower than
/// two, and so were whole rows in turn.
///
/// Q4 reads two adjacent rows side by side (one stream): Q4_0 decode is
/// bound by its arithmetic on one thread, and two streams lost 8% there. The
/// pair, and the sums scaled at once instead of parked, took the AVX2 Q4_0
/// decode from 0.95 to 0.87 ns per block (256 x 768, in L2) and GPT-2 Q4_0
/// decode from 241 to 252 tok/s on 1 thread, 450 to 464 on 2 (alternating
/// runs); 4 adjacent rows, or the Q8_0 rows scaled at once, were slower.
///
/// # Safety
/// `w` is `rows` rows and `x` one row of `nb >= 1` blocks, `nb.div_ceil(8) <= DG`,
/// `out` holds `rows` values; AVX2 + F16C present.
#[inline(always)]
#[must_use]
unsafe fn decode<F: WFmt>(w: &[u8], rows: usize, x: &[u8], out: &mut [f32], nb: usize) -> bool {
    let (ngf, tail) = (nb / 8, nb % 8);
    let ngt = nb.div_ceil(8);
    let rb = nb * F::WB;
    // SAFETY: every pointer below stays inside `w` (row r < rows, full group
    // g < ngf: bytes below (g + 1) * 8 * WB <= rb), inside `x` (likewise), or
    // inside a stack buffer (per-group entries g < ngt <= DG, packed vectors
    // g * 8 + k < DG * 8; padded copies of PAD bytes). Buffer entries are
    // written before they are read. Prefetches are hints that never fault, so
    // their addresses may lie past the matrix. Features by the caller; the
    // sign trick runs only after the -128 check.
    unsafe {
        let mut dxb = [const { MaybeUninit::<__m256>::uninit() }; DG];
        let mut auxb = [const { MaybeUninit::<__m256i>::uninit() }; DG];
        let mut sb = [const { MaybeUninit::<__m256i>::uninit() }; 2 * DG];
        let mut xpad = [0u8; PAD];
        let mut wpad = [[0u8; PAD]; 2];
        let (dx, aux) = (
            dxb.as_mut_ptr() as *mut __m256,
            auxb.as_mut_ptr() as *mut __m256i,
        );
        let sp = sb.as_mut_ptr() as *mut __m256i;
        let mut xab = [const { MaybeUninit::<__m256i>::uninit() }; DG * 8];
        let xa = xab.as_mut_ptr() as *mut __m256i;
        if tail > 0 {
            let src = x.as_ptr().add(ngf * 8 * F::AB);
            core::ptr::copy_nonoverlapping(src, xpad.as_mut_ptr(), tail * F::AB);
        }
        let xgroup = |g: usize| {
            if g < ngf {
                x.as_ptr().add(g * 8 * F::AB)
            } else {
                xpad.as_ptr()
            }
        };
        let mut lo = _mm256_set1_epi8(127);
        for g in 0..ngt {
            let p = xgroup(g);
            // The paired layout of `prefill`, and the -128 check.
            for i in 0..4 {
                let a = _mm256_loadu_si256(p.add(i * F::AB + F::AOFF) as *const __m256i);
                let b = _mm256_loadu_si256(p.add((i + 4) * F::AB + F::AOFF) as *const __m256i);
                if !F::Q4 {
                    lo = _mm256_min_epi8(lo, _mm256_min_epi8(a, b));
                }
                if F::Q4 {
                    let q = xa.add(g * 8 + 2 * i);
                    q.write(_mm256_permute2x128_si256::<0x20>(a, b));
                    q.add(1).write(_mm256_permute2x128_si256::<0x31>(a, b));
                } else {
                    // Q8_0 keeps the natural layout: pairing would cost the
                    // weights two lane permutes per block pair per row.
                    xa.add(g * 8 + i).write(a);
                    xa.add(g * 8 + i + 4).write(b);
                }
            }
            dx.add(g).write(scales8(p, F::AB));
            if F::HAS_M {
                aux.add(g)
                    .write(_mm256_castps_si256(scales8(p.add(2), F::AB)));
            } else if F::NIB_OFFSET != 0 {
                aux.add(g).write(offsets8::<F>(p));
            }
        }
        if !F::Q4 && _mm256_movemask_epi8(_mm256_cmpeq_epi8(lo, _mm256_set1_epi8(-128))) != 0 {
            return false;
        }
        let ctx = DecodeCtx {
            w: w.as_ptr(),
            rb,
            ngf,
            tail,
            xa,
            dx,
            aux,
            sp,
        };
        let o = out.as_mut_ptr();
        let mut done = 0;
        if F::Q4 {
            // Two adjacent rows side by side (one stream), 4 rows per store.
            while done + 4 <= rows {
                let r = done;
                let [a0, a1] = rows_k::<F, 2>(&ctx, [r, r + 1], &mut wpad);
                let [a2, a3] = rows_k::<F, 2>(&ctx, [r + 2, r + 3], &mut wpad);
                _mm_storeu_ps(o.add(r), fold4(a0, a1, a2, a3));
                done += 4;
            }
        } else {
            // Rows i and h + i side by side: two streams (see above).
            let h = rows / 2;
            for i in 0..h {
                let [a0, a1] = rows_k::<F, 2>(&ctx, [i, h + i], &mut wpad);
                o.add(i).write(fold8(a0));
                o.add(h + i).write(fold8(a1));
            }
            done = 2 * h;
        }
        // The last rows (Q4: up to 3; Q8_0: an odd one), one at a time.
        for r in done..rows {
            let [a] = rows_k::<F, 1>(&ctx, [r], &mut wpad);
            o.add(r).write(fold8(a));
        }
    }
    true
}

/// [`fold_lanes`] of one accumulator.
///
/// # Safety
/// AVX present.
#[inline(always)]
unsafe fn fold8(a: __m256) -> f32 {
    let mut lanes = [0.0f32; 8];
    // SAFETY: a store into a local array of 8 floats; AVX by the caller.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), a) };
    fold_lanes(lanes)
}

/// What [`rows_k`] reads and where it parks its group sums: the matrix, the
/// token prepared by [`decode`], and its stack buffers.
struct DecodeCtx {
    w: *const u8,
    /// Bytes per weight row.
    rb: usize,
    /// Full 8-block groups per row, and the blocks after them.
    ngf: usize,
    tail: usize,
    /// The token's quants (`8 * ngt` vectors), scales and offsets/sums (`ngt` each).
    xa: *const __m256i,
    dx: *const __m256,
    aux: *const __m256i,
    /// Parked group sums (Q8_0), `2 * DG` of them (`DG` per row side by side).
    sp: *mut __m256i,
}

/// The accumulators (lanes not yet folded) of `K <= 2` decode rows, read
/// side by side one 8-block group at a time. Each row's arithmetic is the same
/// whatever `K` and the order of the loops: per group, its 8 block sums
/// ([`group_sums`]), then scaled and accumulated group by group in order
/// ([`group_term`]; Q8_0 parks the sums of all groups first, see [`decode`]).
///
/// # Safety
/// As [`decode`]: every row of `rs` is below the matrix's row count, and `ctx`
/// is the one `decode` prepared (`ngf + (tail > 0) <= DG`).
#[inline(always)]
unsafe fn rows_k<F: WFmt, const K: usize>(
    c: &DecodeCtx,
    rs: [usize; K],
    wpad: &mut [[u8; PAD]; 2],
) -> [__m256; K] {
    const { assert!(K >= 1 && K <= 2) };
    let ngt = c.ngf + (c.tail > 0) as usize;
    // SAFETY: row r's bytes are w[r * rb..(r + 1) * rb] (r < rows by the
    // caller); full groups g < ngf end at (g + 1) * 8 * WB <= rb; a last
    // partial group is read from the row's zero-padded copy in `wpad` (k < K
    // <= 2); `sp` has 2 * DG entries and g < ngt <= DG; the token's buffers
    // have ngt groups, written by `decode`.
    unsafe {
        let wr = rs.map(|r| c.w.add(r * c.rb));
        let pads = wpad.as_mut_ptr();
        if c.tail > 0 {
            for (k, p) in wr.iter().enumerate() {
                let dst = pads.add(k) as *mut u8;
                core::ptr::copy_nonoverlapping(p.add(c.ngf * 8 * F::WB), dst, c.tail * F::WB);
            }
        }
        let wgroup = |k: usize, p: *const u8, g: usize| {
            if g < c.ngf {
                p.add(g * 8 * F::WB)
            } else {
                pads.add(k) as *const u8
            }
        };
        let mut accs = [_mm256_setzero_ps(); K];
        if F::Q4 {
            // Each group's sums scaled and accumulated at once (parking them
            // as Q8_0 does cost Q4 3-8% per block).
            for g in 0..ngt {
                for (k, (acc, &p)) in accs.iter_mut().zip(wr.iter()).enumerate() {
                    let wp = wgroup(k, p, g);
                    let s = group_sums::<F>(wp, c.xa.add(g * 8));
                    *acc = _mm256_add_ps(*acc, group_term::<F>(c, wp, s, g));
                }
            }
        } else {
            for g in 0..ngt {
                for (k, &p) in wr.iter().enumerate() {
                    let wp = wgroup(k, p, g);
                    c.sp.add(k * DG + g)
                        .write(group_sums::<F>(wp, c.xa.add(g * 8)));
                }
            }
            for (k, (acc, &p)) in accs.iter_mut().zip(wr.iter()).enumerate() {
                for g in 0..ngt {
                    let s = *c.sp.add(k * DG + g);
                    *acc = _mm256_add_ps(*acc, group_term::<F>(c, wgroup(k, p, g), s, g));
                }
            }
        }
        accs
    }
}

/// The 8 block sums (i32) of the weight group at `wp` against the token's
/// packed group at `xg`; prefetches the weights [`DPF`] bytes ahead.
///
/// # Safety
/// 8 weight blocks readable at `wp`, the group's 8 packed vectors at `xg`
/// (32-byte aligned); AVX2; Q8_0: no activation byte is -128.
#[inline(always)]
unsafe fn group_sums<F: WFmt>(wp: *const u8, xg: *const __m256i) -> __m256i {
    // SAFETY: the reads are the caller's contract; prefetches are hints that
    // never fault, so their addresses may lie past the matrix; AVX2 by the caller.
    unsafe {
        let pf = wp.wrapping_add(DPF);
        let mut o = 0;
        while o < 8 * F::WB {
            _mm_prefetch::<_MM_HINT_T0>(pf.wrapping_add(o) as *const i8);
            o += 64;
        }
        if F::Q4 {
            let u0 = half::<F>(&hold::<F>(wp, 0), xg);
            let u1 = half::<F>(&hold::<F>(wp, 2), xg.add(4));
            join2::<true>(u0, u1)
        } else {
            let mut v = [_mm256_setzero_si256(); 8];
            for (j, vj) in v.iter_mut().enumerate() {
                let wv = _mm256_loadu_si256(wp.add(j * F::WB + F::QOFF) as *const __m256i);
                let m = _mm256_maddubs_epi16(
                    _mm256_sign_epi8(wv, wv),
                    _mm256_sign_epi8(*xg.add(j), wv),
                );
                *vj = _mm256_madd_epi16(m, _mm256_set1_epi16(1));
            }
            reduce8::<false>(v)
        }
    }
}

/// Group `g`'s 8 float terms from its block sums `s` and the scales of the
/// weight group at `wp` and of the token (in `c`).
///
/// # Safety
/// The weight group's scales readable at `wp`, `g` below the token's group
/// count; AVX2 + F16C.
#[inline(always)]
unsafe fn group_term<F: WFmt>(c: &DecodeCtx, wp: *const u8, s: __m256i, g: usize) -> __m256 {
    // SAFETY: the reads are the caller's contract; features by the caller.
    unsafe {
        let mut s = s;
        if F::NIB_OFFSET != 0 {
            s = _mm256_sub_epi32(s, *c.aux.add(g));
        }
        let dw = if F::Q4 {
            scales8(wp, F::WB)
        } else {
            scales8_inserted(wp, F::WB)
        };
        let d = _mm256_mul_ps(dw, *c.dx.add(g));
        let mut term = _mm256_mul_ps(_mm256_cvtepi32_ps(s), d);
        if F::HAS_M {
            let mw = scales8(wp.add(2), F::WB);
            term = _mm256_add_ps(term, _mm256_mul_ps(mw, _mm256_castsi256_ps(*c.aux.add(g))));
        }
        term
    }
}

/// Whether the sign trick is exact for these activation blocks: always for the
/// nibble formats; for Q8_0 when no quant byte is -128.
///
/// # Safety
/// AVX2 present.
#[inline(always)]
unsafe fn trick_ok<F: WFmt>(x: &[u8]) -> bool {
    if F::Q4 {
        return true;
    }
    // SAFETY: each load reads the 32 quant bytes of one whole block inside `x`
    // (`b4[k * AB..]` starts block k of the 4-block chunk `b4`); AVX2.
    unsafe {
        let q = |b: &[u8]| _mm256_loadu_si256(b.as_ptr().add(F::AOFF) as *const __m256i);
        // Four independent minima (the scan is latency-bound with one).
        let [mut m0, mut m1, mut m2, mut m3] = [_mm256_set1_epi8(127); 4];
        let mut blocks = x.chunks_exact(4 * F::AB);
        for b4 in blocks.by_ref() {
            let (k0, rest) = b4.split_at(F::AB);
            let (k1, rest) = rest.split_at(F::AB);
            let (k2, k3) = rest.split_at(F::AB);
            m0 = _mm256_min_epi8(m0, q(k0));
            m1 = _mm256_min_epi8(m1, q(k1));
            m2 = _mm256_min_epi8(m2, q(k2));
            m3 = _mm256_min_epi8(m3, q(k3));
        }
        for b in blocks.remainder().chunks_exact(F::AB) {
            m0 = _mm256_min_epi8(m0, q(b));
        }
        let m = _mm256_min_epi8(_mm256_min_epi8(m0, m1), _mm256_min_epi8(m2, m3));
        _mm256_movemask_epi8(_mm256_cmpeq_epi8(m, _mm256_set1_epi8(-128))) == 0
    }
}

/// One weight row x one activation row: `min(w.len() / WB, x.len() / AB)` blocks.
///
/// # Safety
/// AVX2 + FMA + F16C present.
#[inline(always)]
pub(crate) unsafe fn dot<F: WFmt>(w: &[u8], x: &[u8]) -> f32 {
    let nb = (w.len() / F::WB).min(x.len() / F::AB);
    let (Some(w), Some(x)) = (w.get(..nb * F::WB), x.get(..nb * F::AB)) else {
        return 0.0; // unreachable: nb blocks fit both slices by its definition
    };
    // SAFETY: features by the caller; nb blocks fit both slices, and the trick
    // is used only where `trick_ok` says it is exact.
    unsafe {
        if !trick_ok::<F>(x) {
            return super::common::dot_q_generic::<Avx2Int, F>(w, x);
        }
        let mut o = [[0.0f32; 1]; 1];
        tile::<F, 1, 1>([w], [x], nb, &mut o);
        let [[v]] = o;
        v
    }
}

/// `out[r * n + t] = dot(w row r, x row t)`; does nothing unless `w` is exactly
/// `rows` rows and `x` exactly `n` rows of the same block count and `out` has
/// room for `rows * n` values.
///
/// # Safety
/// AVX2 + FMA + F16C present.
#[inline(always)]
pub(crate) unsafe fn gemm<F: WFmt>(w: &[u8], rows: usize, x: &[u8], n: usize, out: &mut [f32]) {
    if rows == 0 || n == 0 || !x.len().is_multiple_of(n * F::AB) {
        return;
    }
    let nb = x.len() / (n * F::AB);
    if w.len() != rows * nb * F::WB || out.len() < rows * n {
        return;
    }
    // SAFETY: every row holds exactly nb blocks (checked above); the sign
    // trick runs only on activations that passed its check (`prefill` and
    // `decode` check while packing, `run` after `trick_ok`); features by the caller.
    unsafe {
        if nb > 0 && n >= 2 {
            if !F::Q4 && super::avx2w::gemm(w, rows, x, n, out) {
                return;
            }
            if !prefill::<F>(w, rows, x, n, out, nb) {
                super::common::gemm_q_generic::<Avx2Int, F>(w, rows, x, n, out);
            }
            return;
        }
        if nb > 0 && nb.div_ceil(8) <= DG {
            if !decode::<F>(w, rows, x, out, nb) {
                super::common::gemm_q_generic::<Avx2Int, F>(w, rows, x, n, out);
            }
            return;
        }
        if !trick_ok::<F>(x) {
            return super::common::gemm_q_generic::<Avx2Int, F>(w, rows, x, n, out);
        }
        // Rows of more than 8 * DG blocks (or none): one token at a time.
        run::<F, DR, 1>(w, rows, x, n, out, nb)
    }
}

/// Tile rows of the fallback tiles.
const DR: usize = 8;

/// The driver: R x T tiles, then R x 1, 1 x T and 1 x 1 for the edges.
///
/// # Safety
/// `w` is `rows` rows and `x` `n` rows of `nb` blocks each, `out` holds `rows * n`;
/// the activations pass `trick_ok`; AVX2 + F16C present.
#[inline(always)]
unsafe fn run<F: WFmt, const R: usize, const T: usize>(
    w: &[u8],
    rows: usize,
    x: &[u8],
    n: usize,
    out: &mut [f32],
    nb: usize,
) {
    let (rb, xb) = (nb * F::WB, nb * F::AB);
    // Row slices come from `rows_at`, which returns None rather than a short
    // slice, so a tile never sees fewer than nb blocks (and never panics).
    // SAFETY (all tile calls): every row slice holds exactly nb blocks (the
    // `rows_at` lengths); features by the caller.
    let mut r = 0;
    while r + R <= rows {
        let Some(ws) = rows_at::<R>(w, rb, r) else {
            return;
        };
        let mut t = 0;
        while t + T <= n {
            let Some(xs) = rows_at::<T>(x, xb, t) else {
                return;
            };
            let mut o = [[0.0f32; T]; R];
            // SAFETY: see above.
            unsafe { tile::<F, R, T>(ws, xs, nb, &mut o) };
            for (i, row) in o.iter().enumerate() {
                put(out, (r + i) * n + t, row);
            }
            t += T;
        }
        while t < n {
            let Some(xs) = rows_at::<1>(x, xb, t) else {
                return;
            };
            let mut o = [[0.0f32; 1]; R];
            // SAFETY: see above.
            unsafe { tile::<F, R, 1>(ws, xs, nb, &mut o) };
            for (i, v) in o.iter().enumerate() {
                put(out, (r + i) * n + t, v);
            }
            t += 1;
        }
        r += R;
    }
    while r < rows {
        let Some(ws) = rows_at::<1>(w, rb, r) else {
            return;
        };
        let mut t = 0;
        while t + T <= n {
            let Some(xs) = rows_at::<T>(x, xb, t) else {
                return;
            };
            let mut o = [[0.0f32; T]; 1];
            // SAFETY: see above.
            unsafe { tile::<F, 1, T>(ws, xs, nb, &mut o) };
            for row in &o {
                put(out, r * n + t, row);
            }
            t += T;
        }
        while t < n {
            let Some(xs) = rows_at::<1>(x, xb, t) else {
                return;
            };
            let mut o = [[0.0f32; 1]; 1];
            // SAFETY: see above.
            unsafe { tile::<F, 1, 1>(ws, xs, nb, &mut o) };
            for row in &o {
                put(out, r * n + t, row);
            }
            t += 1;
        }
        r += 1;
    }
}

// ---------------------------------------------------------------------------
// Attention scores: 4 keys per pass
// ---------------------------------------------------------------------------

/// One score `dot(k, q) * scale` of [`scores`] (the last keys of a pass):
/// lanes 0..8 and 8..16 of the 16-lane order, added, then folded by halves.
///
/// # Safety
/// AVX2 present; `hd` (a multiple of 16) values readable at `q` and at `k`.
#[inline(always)]
unsafe fn one_key(q: *const f32, k: *const f32, hd: usize, scale: f32) -> f32 {
    // SAFETY: the chunk loop reads c + 16 <= hd values of each; AVX2 by the caller.
    unsafe {
        let (mut l, mut h) = (_mm256_setzero_ps(), _mm256_setzero_ps());
        let mut c = 0;
        while c < hd {
            let (k0, k1) = (_mm256_loadu_ps(k.add(c)), _mm256_loadu_ps(k.add(c + 8)));
            l = _mm256_add_ps(l, _mm256_mul_ps(k0, _mm256_loadu_ps(q.add(c))));
            h = _mm256_add_ps(h, _mm256_mul_ps(k1, _mm256_loadu_ps(q.add(c + 8))));
            c += 16;
        }
        let mut lanes = [0.0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(l, h));
        fold_lanes(lanes) * scale
    }
}

/// Attention scores `out[j] = dot(k_j, q) * scale` with
/// `k_j = keys[j * stride + off ..][..q.len()]`, each dot exactly
/// `scalar::vec_dot_f32_f32` (element `i` in lane `i % 16`, a rounded multiply
/// then a rounded add, lanes folded by halves), 4 keys per pass: the query is
/// loaded once per 4 keys and the 4 folds share their shuffles ([`fold4`]),
/// where one call per key had spent more on its call and fold than on the
/// 64 products of a head. Returns false, nothing written, unless the head
/// width is a multiple of 16 and each of the `out.len()` keys lies inside a
/// whole row of `keys` (the caller then goes key by key).
///
/// # Safety
/// AVX2 present.
#[inline(always)]
pub(crate) unsafe fn scores(
    q: &[f32],
    keys: &[f32],
    stride: usize,
    off: usize,
    scale: f32,
    out: &mut [f32],
) -> bool {
    let hd = q.len();
    let n = out.len();
    // The portable rule: keys are the whole `stride`-long rows of `keys`, and a
    // key must lie inside its row; anything else goes the portable way.
    let fits =
        stride > 0 && off.checked_add(hd).is_some_and(|e| e <= stride) && n <= keys.len() / stride;
    if hd == 0 || !hd.is_multiple_of(16) || !fits {
        return false;
    }
    // SAFETY: key j's hd values start at j * stride + off and end by
    // (j + 1) * stride <= n * stride <= keys.len() (checked above); q has hd values; the chunk loops read
    // c * 16 + 16 <= hd of each. AVX2 by the caller.
    unsafe {
        let kp = |j: usize| keys.as_ptr().add(j * stride + off);
        let qp = q.as_ptr();
        let zf = _mm256_setzero_ps();
        let vs = _mm256_set1_ps(scale);
        let mut j = 0;
        while j + 4 <= n {
            let k = [kp(j), kp(j + 1), kp(j + 2), kp(j + 3)];
            let mut lo = [zf; 4];
            let mut hi = [zf; 4];
            let mut c = 0;
            while c < hd {
                let q0 = _mm256_loadu_ps(qp.add(c));
                let q1 = _mm256_loadu_ps(qp.add(c + 8));
                for ((l, h), &kj) in lo.iter_mut().zip(hi.iter_mut()).zip(&k) {
                    *l = _mm256_add_ps(*l, _mm256_mul_ps(_mm256_loadu_ps(kj.add(c)), q0));
                    *h = _mm256_add_ps(*h, _mm256_mul_ps(_mm256_loadu_ps(kj.add(c + 8)), q1));
                }
                c += 16;
            }
            // h = 8 (lane i + 8 onto lane i), then h = 4, 2, 1 in fold4.
            let [l0, l1, l2, l3] = lo;
            let [h0, h1, h2, h3] = hi;
            let v = fold4(
                _mm256_add_ps(l0, h0),
                _mm256_add_ps(l1, h1),
                _mm256_add_ps(l2, h2),
                _mm256_add_ps(l3, h3),
            );
            if let Some(o) = out.get_mut(j..j + 4) {
                _mm_storeu_ps(o.as_mut_ptr(), _mm_mul_ps(v, _mm256_castps256_ps128(vs)));
            }
            j += 4;
        }
        while j < n {
            if let Some(o) = out.get_mut(j) {
                *o = one_key(qp, kp(j), hd, scale);
            }
            j += 1;
        }
    }
    true
}

/// The lane sums of [`scores2`]' 4 pairs (query a or b, key 0 or 1) over `hd`
/// values (`CH` chunks of 16 when not 0, else `hd / 16`): lanes 0..8 and 8..16.
///
/// # Safety
/// AVX2 present; `hd` values readable at each of the 4 pointers, `hd` a multiple
/// of 16 (and `16 * CH` when `CH` is not 0).
#[inline(always)]
unsafe fn pair_products<const CH: usize>(
    pa: *const f32,
    pb: *const f32,
    k0: *const f32,
    k1: *const f32,
    hd: usize,
) -> ([__m256; 4], [__m256; 4]) {
    // SAFETY: the caller's contract; AVX2 by the caller.
    unsafe {
        let zf = _mm256_setzero_ps();
        let mut lo = [zf; 4];
        let mut hi = [zf; 4];
        let chunks = if CH > 0 { CH } else { hd / 16 };
        for ci in 0..chunks {
            let c = ci * 16;
            let (a0, a1) = (_mm256_loadu_ps(pa.add(c)), _mm256_loadu_ps(pa.add(c + 8)));
            let (b0, b1) = (_mm256_loadu_ps(pb.add(c)), _mm256_loadu_ps(pb.add(c + 8)));
            let (x0, x1) = (_mm256_loadu_ps(k0.add(c)), _mm256_loadu_ps(k0.add(c + 8)));
            let (y0, y1) = (_mm256_loadu_ps(k1.add(c)), _mm256_loadu_ps(k1.add(c + 8)));
            let [la, lb, lc, ld] = &mut lo;
            let [ha, hb, hc, hd_] = &mut hi;
            *la = _mm256_add_ps(*la, _mm256_mul_ps(x0, a0));
            *ha = _mm256_add_ps(*ha, _mm256_mul_ps(x1, a1));
            *lb = _mm256_add_ps(*lb, _mm256_mul_ps(y0, a0));
            *hb = _mm256_add_ps(*hb, _mm256_mul_ps(y1, a1));
            *lc = _mm256_add_ps(*lc, _mm256_mul_ps(x0, b0));
            *hc = _mm256_add_ps(*hc, _mm256_mul_ps(x1, b1));
            *ld = _mm256_add_ps(*ld, _mm256_mul_ps(y0, b0));
            *hd_ = _mm256_add_ps(*hd_, _mm256_mul_ps(y1, b1));
        }
        (lo, hi)
    }
}

/// [`scores`] of two queries at once (`out_a` for `qa`, `out_b` for `qb`, the
/// same `n = out_a.len() == out_b.len()` keys): 2 keys x 2 queries per pass,
/// each key's 2 vectors per 16 values loaded once for both queries, and the 4
/// folds sharing their shuffles. Every score is exactly [`scores`]' (the same
/// lanes, adds and fold). Returns false, nothing written, on the shapes
/// [`scores`] refuses, or when the queries' lengths or the outputs' differ.
///
/// # Safety
/// AVX2 present.
#[inline]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn scores2(
    qa: &[f32],
    qb: &[f32],
    keys: &[f32],
    stride: usize,
    off: usize,
    scale: f32,
    out_a: &mut [f32],
    out_b: &mut [f32],
) -> bool {
    let hd = qa.len();
    let n = out_a.len();
    let fits =
        stride > 0 && off.checked_add(hd).is_some_and(|e| e <= stride) && n <= keys.len() / stride;
    if hd == 0 || !hd.is_multiple_of(16) || !fits || qb.len() != hd || out_b.len() != n {
        return false;
    }
    // SAFETY: key j's hd values start at j * stride + off and end by
    // (j + 1) * stride <= n * stride <= keys.len() (checked above); qa and qb
    // have hd values; the chunk loops read c + 16 <= hd of each. AVX2 by the caller.
    unsafe {
        let kp = |j: usize| keys.as_ptr().add(j * stride + off);
        let (pa, pb) = (qa.as_ptr(), qb.as_ptr());
        let vs = _mm_set1_ps(scale);
        let mut j = 0;
        // pairs (a, k0), (a, k1), (b, k0), (b, k1) of keys j, j + 1: lanes
        // 0..8 and 8..16 added (the fold's first step, h = 8).
        let sums = |j: usize| {
            // A head of 64 (GPT-2's, SmolLM2's) as a fixed count: the loop unrolls.
            let (lo, hi) = if hd == 64 {
                pair_products::<4>(pa, pb, kp(j), kp(j + 1), hd)
            } else {
                pair_products::<0>(pa, pb, kp(j), kp(j + 1), hd)
            };
            let ([l0, l1, l2, l3], [h0, h1, h2, h3]) = (lo, hi);
            [
                _mm256_add_ps(l0, h0),
                _mm256_add_ps(l1, h1),
                _mm256_add_ps(l2, h2),
                _mm256_add_ps(l3, h3),
            ]
        };
        // The rest of the fold, the scale and the stores of keys j, j + 1.
        let finish = |j: usize, s: [__m256; 4], out_a: &mut [f32], out_b: &mut [f32]| {
            let [s0, s1, s2, s3] = s;
            let v = _mm_mul_ps(fold4(s0, s1, s2, s3), vs);
            let mut r = [0.0f32; 4];
            _mm_storeu_ps(r.as_mut_ptr(), v);
            let [sa0, sa1, sb0, sb1] = r;
            if let (Some([oa0, oa1]), Some([ob0, ob1])) = (
                out_a.get_mut(j..).and_then(|o| o.first_chunk_mut::<2>()),
                out_b.get_mut(j..).and_then(|o| o.first_chunk_mut::<2>()),
            ) {
                (*oa0, *oa1, *ob0, *ob1) = (sa0, sa1, sb0, sb1);
            }
        };
        // (Software-pipelining the fold of keys j, j + 1 with the products of
        // j + 2, j + 3 measured no faster.)
        while j + 2 <= n {
            let s = sums(j);
            finish(j, s, out_a, out_b);
            j += 2;
        }
        if j < n {
            for (q, o) in [(pa, &mut *out_a), (pb, &mut *out_b)] {
                if let Some(o) = o.get_mut(j) {
                    *o = one_key(q, kp(j), hd, scale);
                }
            }
        }
    }
    true
}
