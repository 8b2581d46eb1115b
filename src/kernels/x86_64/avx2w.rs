//! The AVX2 prefill GEMM with tokens side by side in the i32 lanes of
//! `vpmaddwd` (8 per ymm), both operands widened to i16, so no block sum needs a
//! horizontal reduction and no sign trick is needed.
//!
//! Why: the sign-trick tiles of [`super::avx2q`] spend, per block of one row
//! and one token, a `vpsignb`, a `vpmaddubsw`, a `vpmaddwd` and about two more
//! operations reducing the block's 8 lanes to its sum. Here a block costs 2
//! `vpmaddwd` and 2 `vpaddd` per token, and its sum is already one lane. Q8_0
//! only: for Q4 the nibbles need no sign trick and `avx2q`'s form stays faster.
//!
//! Layout (lanes = tokens):
//! - Activations are packed per call, per 8 tokens and block `j`, as 16 steps
//!   of 16 bytes: step `k` holds the i8 pair `(a[2k], a[2k + 1])` of each of the
//!   8 tokens (an 8 x 16 transpose of 2-byte pairs). `vpmovsxbw` widens a step to
//!   8 lanes of two i16 as it loads it (exact for every i8, -128 included, so
//!   no activation scan is needed).
//! - Each weight row is widened to i16 once per packing (4 rows at a time), and
//!   the pair `(w[2k], w[2k + 1])` is broadcast to all lanes as one dword.
//! - `vpmaddwd` then gives each lane `a[2k] w[2k] + a[2k + 1] w[2k + 1]` of its
//!   token; 16 steps added in i32 give the exact block sum
//!   (`|sum| <= 32 * 128 * 128 < 2^24`, so its conversion to f32 is exact too).
//! - 4 rows x 16 tokens per inner loop: 8 i32 accumulators, 16 `vpmaddwd` per
//!   2 steps, each packed step loaded once for the 4 rows and each broadcast
//!   used for 2 token vectors.
//!
//! Order of the float work (bit-identical to [`crate::kernels::scalar`]), as in
//! [`super::vnniq`]: block `j`'s term `sumi as f32 * (dw * dx)` goes into lane
//! `j % 8` in increasing `j`; the 8 lanes run one after another
//! (`j = l, l + 8, ...`), then are folded by halves.

use core::arch::x86_64::*;
use core::mem::MaybeUninit;

use super::common::scales8;

/// Q8_0 block bytes (f16 scale, then 32 quants), weights and activations alike.
const QB: usize = 34;

/// Most blocks per row [`gemm`] takes: 1536 columns (GPT-2's 768, SmolLM2-135M's
/// 576). Its buffers live on the stack (~67 KB at this bound). Wider rows (a
/// 3072-wide FFN input) go to `avx2q`'s prefill, which measured the same there:
/// with 16 tokens per packing each widened row serves too few tokens.
pub(crate) const MAX_NB: usize = 48;
/// Fewest tokens [`gemm`] takes: below a vector's worth most lanes would be
/// padding.
pub(crate) const MIN_N: usize = 8;
/// Packed (block, 8-token vector) entries: 64 tokens of 24 blocks (GPT-2), 32
/// of 48.
const XCAP: usize = 192;
/// Most token vectors per packing (a 64-token call: the matmul driver's most).
const MAX_TV: usize = 8;
/// Weight rows per pass: every packed activation step is used for all of them.
const RP: usize = 4;

/// 256 bytes, 32-byte aligned: one block of 8 tokens' packed activations.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Blk([u8; 256]);

/// One widened weight block: 32 i16, 32-byte aligned (written with aligned
/// stores: an `[i16; 32]` alone is only 2-byte aligned, which a release build
/// happened to over-align and AddressSanitizer's stack layout did not).
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct WBlk([i16; 32]);

/// 8 f32, 32-byte aligned: one lane vector of floats.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct F8([f32; 8]);

/// `out[r * n + t] = dot(w row r, x row t)` for Q8_0 weights and `n` Q8_0
/// activation rows of `nb` blocks (see the module docs). Returns false, writing
/// nothing, for shapes it does not take (fewer than [`MIN_N`] tokens, `nb` of 0
/// or above [`MAX_NB`], lengths that do not match); the caller then uses
/// another kernel.
///
/// # Safety
/// AVX2 + F16C present.
#[inline(always)]
pub(crate) unsafe fn gemm(w: &[u8], rows: usize, x: &[u8], n: usize, out: &mut [f32]) -> bool {
    if rows == 0 || n < MIN_N || !x.len().is_multiple_of(n * QB) {
        return false;
    }
    let nb = x.len() / (n * QB);
    let rb = nb * QB;
    if nb == 0 || nb > MAX_NB || w.len() != rows * rb || out.len() < rows * n {
        return false;
    }
    let mut xa = [const { MaybeUninit::<Blk>::uninit() }; XCAP];
    let mut dx = [const { MaybeUninit::<F8>::uninit() }; XCAP];
    let mut wq = [const { MaybeUninit::<WBlk>::uninit() }; RP * MAX_NB];
    // Tokens per packing: as many as the buffers hold, so that each weight row
    // is widened once per packing for as many tokens as possible.
    let cap = 8 * (XCAP / nb).min(MAX_TV);
    let mut t0 = 0;
    while t0 < n {
        let tn = cap.min(n - t0);
        let nv = tn.div_ceil(8);
        // SAFETY: tokens t0 .. t0 + tn < n of nb blocks each are in `x` (its
        // length was checked above), nv * nb <= XCAP entries fit the buffers;
        // AVX2 + F16C by the caller.
        unsafe { pack(x, rb, t0, tn, nb, &mut xa, &mut dx) };
        let (xa, dx) = (xa.as_ptr() as *const Blk, dx.as_ptr() as *const F8);
        let mut r0 = 0;
        while r0 < rows {
            let rn = RP.min(rows - r0);
            let wq = wq.as_mut_ptr() as *mut WBlk;
            let mut dw = [[0.0f32; MAX_NB]; RP];
            // SAFETY: rows r0 .. r0 + rn < rows hold nb blocks each (checked
            // above), `out` holds rows * n values, the first nv vectors of
            // `xa`/`dx` were just packed for nb blocks, `wq`/`dw` are widened
            // for rn rows first; features by the caller.
            unsafe {
                widen(w, rb, r0, rn, nb, wq, &mut dw);
                let mut v0 = 0;
                while v0 < nv {
                    let a = Args {
                        nb,
                        xa: xa.add(v0 * nb),
                        dx: dx.add(v0 * nb),
                        wq,
                        dw: &dw,
                        at: r0 * n + t0 + 8 * v0,
                        n,
                        tn: tn - 8 * v0,
                    };
                    match (rn, nv - v0) {
                        (4, 2..) => pass::<4, 2>(&a, out),
                        (3, 2..) => pass::<3, 2>(&a, out),
                        (2, 2..) => pass::<2, 2>(&a, out),
                        (1, 2..) => pass::<1, 2>(&a, out),
                        (4, _) => pass::<4, 1>(&a, out),
                        (3, _) => pass::<3, 1>(&a, out),
                        (2, _) => pass::<2, 1>(&a, out),
                        _ => pass::<1, 1>(&a, out),
                    }
                    v0 += 2;
                }
            }
            r0 += rn;
        }
        t0 += tn;
    }
    true
}

/// Pack tokens `t0 .. t0 + tn` of `x` (rows of `xb` bytes, `nb` blocks):
/// vector `v` (tokens `t0 + 8v ..`), block `j` at `xa[v * nb + j]`, its
/// 16-byte step `k` at byte `32 * (k % 8) + 16 * (k / 8)` (the order the 8 x 16
/// transpose of 2-byte pairs leaves them in); scales as f32 in `dx`. Lanes of
/// missing tokens hold a = 0 and scale 0.
///
/// # Safety
/// Tokens `t0 .. t0 + tn` of `nb` blocks each lie in `x`; `tn.div_ceil(8) * nb
/// <= XCAP`; AVX2 + F16C.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn pack(
    x: &[u8],
    xb: usize,
    t0: usize,
    tn: usize,
    nb: usize,
    xa: &mut [MaybeUninit<Blk>],
    dx: &mut [MaybeUninit<F8>],
) {
    // SAFETY: token t < tn's block j < nb starts at x + (t0 + t) * xb + j * QB,
    // inside `x` by the caller: its scale is the first 2 bytes, its quants the
    // next 32; a missing token reads the zero block `z`. Destinations v * nb +
    // j < XCAP exist in both buffers. Features by the caller.
    unsafe {
        let z = [0u8; QB];
        let (xa, dx) = (xa.as_mut_ptr() as *mut __m256i, dx.as_mut_ptr() as *mut F8);
        let base = x.as_ptr().add(t0 * xb);
        for v in 0..tn.div_ceil(8) {
            // The 8 tokens' first blocks (missing tokens: the zero block, stride 0).
            let mut p = [z.as_ptr(); 8];
            let mut s = [0usize; 8];
            for (t, (p, s)) in p.iter_mut().zip(&mut s).enumerate() {
                if 8 * v + t < tn {
                    (*p, *s) = (base.add((8 * v + t) * xb), QB);
                }
            }
            for j in 0..nb {
                let ld = |t: usize| {
                    let q = p.as_ptr().add(t).read().add(s.as_ptr().add(t).read() * j);
                    _mm256_loadu_si256(q.add(2) as *const __m256i)
                };
                // 8 tokens x 16 pairs -> 16 pairs x 8 tokens, within 128-bit lanes.
                let (r0, r1, r2, r3) = (ld(0), ld(1), ld(2), ld(3));
                let (r4, r5, r6, r7) = (ld(4), ld(5), ld(6), ld(7));
                let a0 = _mm256_unpacklo_epi16(r0, r1);
                let b0 = _mm256_unpackhi_epi16(r0, r1);
                let a1 = _mm256_unpacklo_epi16(r2, r3);
                let b1 = _mm256_unpackhi_epi16(r2, r3);
                let a2 = _mm256_unpacklo_epi16(r4, r5);
                let b2 = _mm256_unpackhi_epi16(r4, r5);
                let a3 = _mm256_unpacklo_epi16(r6, r7);
                let b3 = _mm256_unpackhi_epi16(r6, r7);
                // Pairs 0, 1 / 2, 3 of tokens 0..4 and 4..8 (a), pairs 4..8 (b).
                let c0 = _mm256_unpacklo_epi32(a0, a1);
                let c1 = _mm256_unpackhi_epi32(a0, a1);
                let c2 = _mm256_unpacklo_epi32(a2, a3);
                let c3 = _mm256_unpackhi_epi32(a2, a3);
                let d0 = _mm256_unpacklo_epi32(b0, b1);
                let d1 = _mm256_unpackhi_epi32(b0, b1);
                let d2 = _mm256_unpacklo_epi32(b2, b3);
                let d3 = _mm256_unpackhi_epi32(b2, b3);
                // Pair k of all 8 tokens (low lane), pair k + 8 (high lane).
                let o = xa.add((v * nb + j) * 8);
                o.write(_mm256_unpacklo_epi64(c0, c2));
                o.add(1).write(_mm256_unpackhi_epi64(c0, c2));
                o.add(2).write(_mm256_unpacklo_epi64(c1, c3));
                o.add(3).write(_mm256_unpackhi_epi64(c1, c3));
                o.add(4).write(_mm256_unpacklo_epi64(d0, d2));
                o.add(5).write(_mm256_unpackhi_epi64(d0, d2));
                o.add(6).write(_mm256_unpacklo_epi64(d1, d3));
                o.add(7).write(_mm256_unpackhi_epi64(d1, d3));
                // Scales (missing tokens read the zero block's: 0), widened as
                // `scales8` does.
                let g = |t: usize| {
                    let q = p.as_ptr().add(t).read().add(s.as_ptr().add(t).read() * j);
                    core::ptr::read_unaligned(q as *const u16) as u64
                };
                let lo = g(0) | g(1) << 16 | g(2) << 32 | g(3) << 48;
                let hi = g(4) | g(5) << 16 | g(6) << 32 | g(7) << 48;
                let d = _mm256_cvtph_ps(_mm_set_epi64x(hi as i64, lo as i64));
                _mm256_store_ps(dx.add(v * nb + j) as *mut f32, d);
            }
        }
    }
}

/// What [`pass`] reads, and where.
struct Args<'a> {
    nb: usize,
    /// The first of the pass's packed vectors (vector `v`, block `j` at `v * nb + j`).
    xa: *const Blk,
    dx: *const F8,
    /// The widened rows (row `r`, block `j` at `r * MAX_NB + j`).
    wq: *const WBlk,
    dw: &'a [[f32; MAX_NB]; RP],
    /// Where the first row's first token goes in `out` (row stride `n`).
    at: usize,
    n: usize,
    /// Real tokens from the pass's first vector on (lanes past them are padding).
    tn: usize,
}

/// Widen rows `r0 .. r0 + rn` (`rn <= RP`) of `w` into `wq` (row `r`, block `j`
/// at `r * MAX_NB + j`: 32 i16) and their scales into `dw`.
///
/// # Safety
/// Rows `r0 .. r0 + rn` of `w` (rows of `rb = nb * QB` bytes) exist, `nb <=
/// MAX_NB`, `wq` has room for `RP * MAX_NB` blocks; AVX2 + F16C.
#[inline(always)]
unsafe fn widen(
    w: &[u8],
    rb: usize,
    r0: usize,
    rn: usize,
    nb: usize,
    wq: *mut WBlk,
    dw: &mut [[f32; MAX_NB]; RP],
) {
    // SAFETY: row r0 + r (r < rn) spans w[(r0 + r) * rb ..][..rb] by the
    // caller; block j < nb of it starts j * QB bytes in, its quants 2 further;
    // wq[r * MAX_NB + j] exists, 32-byte aligned by its type, for the aligned
    // stores (j < nb <= MAX_NB, r < RP); `scales8` reads the
    // scales of blocks j .. j + 8 <= nb, or of block j alone (stride 0).
    // Features by the caller.
    unsafe {
        for (r, dwr) in dw.iter_mut().enumerate().take(rn) {
            let wr = w.as_ptr().add((r0 + r) * rb);
            let dst = wq.add(r * MAX_NB) as *mut __m256i;
            for j in 0..nb {
                let q = wr.add(j * QB + 2) as *const __m128i;
                let (lo, hi) = (_mm_loadu_si128(q), _mm_loadu_si128(q.add(1)));
                _mm256_store_si256(dst.add(2 * j), _mm256_cvtepi8_epi16(lo));
                _mm256_store_si256(dst.add(2 * j + 1), _mm256_cvtepi8_epi16(hi));
            }
            let mut j = 0;
            while j + 8 <= nb {
                _mm256_storeu_ps(dwr.as_mut_ptr().add(j), scales8(wr.add(j * QB), QB));
                j += 8;
            }
            while j < nb {
                let one = scales8(wr.add(j * QB), 0);
                if let Some(d) = dwr.get_mut(j) {
                    *d = _mm_cvtss_f32(_mm256_castps256_ps128(one));
                }
                j += 1;
            }
        }
    }
}

/// `RR` widened rows against `TT` packed token vectors: run the 8 lanes one
/// after another, fold, store the real tokens.
///
/// # Safety
/// `a.wq` holds `RR` widened rows and `a.xa`, `a.dx` `TT` packed vectors, all
/// for `a.nb <= MAX_NB` blocks; `out` holds rows of `a.n` values from `a.at`
/// for `RR` rows; `RR <= RP`; AVX2 present.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
// r, v, l index several arrays at once
// INDEXING: r < RR <= RP, v < TT, l < 8, j < nb <= MAX_NB index arrays of at
// least those lengths.
#[allow(clippy::indexing_slicing)]
unsafe fn pass<const RR: usize, const TT: usize>(a: &Args<'_>, out: &mut [f32]) {
    let nb = a.nb;
    // SAFETY: widened row r, block j is wq[r * MAX_NB + j] (64 bytes); packed
    // vector v, block j is xa[v * nb + j] (256 bytes), dx likewise, all by the
    // caller (aligned by their types). Features by the caller.
    unsafe {
        let wq = a.wq as *const u8;
        let xa = a.xa as *const u8;
        let z = _mm256_setzero_ps();
        let mut lanes = [[[z; 8]; TT]; RR];
        for l in 0..8 {
            let mut acc = [[z; TT]; RR];
            let mut j = l;
            while j < nb {
                let mut s = [[_mm256_setzero_si256(); TT]; RR];
                let xj = xa.add(j * 256);
                let wj = wq.add(j * 64);
                for k8 in 0..8 {
                    // Steps k8 (low 16 bytes of packed vector k8) and k8 + 8 (high).
                    for half in 0..2 {
                        let mut x = [_mm256_setzero_si256(); TT];
                        for v in 0..TT {
                            let p = xj.add(v * nb * 256 + 32 * k8 + 16 * half);
                            x[v] = _mm256_cvtepi8_epi16(_mm_load_si128(p as *const __m128i));
                        }
                        for r in 0..RR {
                            let p = wj.add(r * MAX_NB * 64 + 4 * (k8 + 8 * half));
                            let b = _mm256_set1_epi32(core::ptr::read_unaligned(p as *const i32));
                            for v in 0..TT {
                                s[r][v] = _mm256_add_epi32(s[r][v], _mm256_madd_epi16(x[v], b));
                            }
                        }
                    }
                }
                for v in 0..TT {
                    let dxv = _mm256_load_ps((*a.dx.add(v * nb + j)).0.as_ptr());
                    for r in 0..RR {
                        // (sumi as f32) * (dw * dx), as the reference (a product
                        // of two values rounds the same in either order).
                        let d = _mm256_mul_ps(dxv, _mm256_set1_ps(a.dw[r][j]));
                        let term = _mm256_mul_ps(_mm256_cvtepi32_ps(s[r][v]), d);
                        acc[r][v] = _mm256_add_ps(acc[r][v], term);
                    }
                }
                j += 8;
            }
            for r in 0..RR {
                for v in 0..TT {
                    lanes[r][v][l] = acc[r][v];
                }
            }
        }
        for r in 0..RR {
            for v in 0..TT {
                // fold_lanes: lane i += lane i + 4, then + lane i + 2, then + lane i + 1.
                let [v0, v1, v2, v3, v4, v5, v6, v7] = lanes[r][v];
                let (v0, v1, v2, v3) = (
                    _mm256_add_ps(v0, v4),
                    _mm256_add_ps(v1, v5),
                    _mm256_add_ps(v2, v6),
                    _mm256_add_ps(v3, v7),
                );
                let (v0, v1) = (_mm256_add_ps(v0, v2), _mm256_add_ps(v1, v3));
                let mut o = F8([0.0; 8]);
                _mm256_store_ps(o.0.as_mut_ptr(), _mm256_add_ps(v0, v1));
                let real = a.tn.saturating_sub(8 * v).min(8);
                let at = a.at + r * a.n + 8 * v;
                if let (Some(dst), Some(src)) = (out.get_mut(at..at + real), o.0.get(..real)) {
                    dst.copy_from_slice(src);
                }
            }
        }
    }
}
