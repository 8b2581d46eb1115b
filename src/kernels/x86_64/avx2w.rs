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
//! - Activations are packed per 8 tokens and block `j` into one [`PB`]-byte
//!   entry: 16 steps of 16 bytes, step `k` holding the i8 pair
//!   `(a[2k], a[2k + 1])` of each of the 8 tokens (an 8 x 16 transpose of
//!   2-byte pairs), then the 8 tokens' f16 scales. `vpmovsxbw` widens a step to
//!   8 lanes of two i16 as it loads it (exact for every i8, -128 included, so
//!   no activation scan is needed). An entry is exactly the size of the 8 Q8_0
//!   blocks it replaces.
//! - Two ways in:
//!   - [`gemm_packed`]: the matmul driver quantizes a batch's activations
//!     straight into this layout ([`quantize_packed`], once per matmul, into
//!     the context's arena scratch), and each task's whole row range is one
//!     call that writes its results straight into the `[token][row]` output;
//!   - [`gemm`]: row-form activations (the table's `gemm_q8_0_q8_0`, e.g.
//!     called directly), packed per call on the stack.
//! - Each weight row is widened to i16 once per (up to) 128 tokens (4 rows at a
//!   time), and the pair `(w[2k], w[2k + 1])` is broadcast to all lanes as one
//!   dword.
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
use crate::kernels::parallel::SharedOut;
use crate::quant::BlockQ8_0;

/// Q8_0 block bytes (f16 scale, then 32 quants), weights and activations alike.
const QB: usize = 34;
/// Bytes of one packed entry (8 tokens x one block): 256 bytes of quants in
/// the transposed order, then the 8 scales (f16).
pub(crate) const PB: usize = 272;
const _: () = assert!(PB == 8 * core::mem::size_of::<BlockQ8_0>());
// The driver groups tokens as this layout does.
const _: () = assert!(crate::kernels::PACKED_TOKENS == 8);

/// Most blocks per row [`gemm`] takes: 1536 columns (GPT-2's 768, SmolLM2-135M's
/// 576). Its buffers live on the stack (~65 KB at this bound: 52 KB of packed
/// activations, 12 KB of widened rows). Wider row-form rows go to `avx2q`'s
/// prefill, which measured the same there: with 16 tokens per packing each
/// widened row serves too few tokens (the matmul's packed path, [`gemm_packed`],
/// has no such limit on tokens).
pub(crate) const MAX_NB: usize = 48;
/// Most blocks per row [`gemm_packed`] takes (4096 columns): its widened rows
/// live on the stack (32 KB at this bound; the activations are the caller's).
pub(crate) const PACKED_MAX_NB: usize = 128;
/// Fewest tokens [`gemm`] takes: below a vector's worth most lanes would be
/// padding.
pub(crate) const MIN_N: usize = 8;
/// Packed (block, 8-token vector) entries: 64 tokens of 24 blocks (GPT-2), 32
/// of 48.
const XCAP: usize = 192;
/// Most token vectors per packing (a 64-token call: the matmul driver's most).
const MAX_TV: usize = 8;
/// Token vectors per widening in [`gemm_packed`] (128 tokens): the widened
/// rows then cost ~1% of the multiplies, and a chunk's packed activations
/// (at most 128 tokens x 4096 columns, 544 KB; 104 KB for GPT-2's 768) stream
/// from L2 for each group of rows.
const CHUNK_TV: usize = 16;
/// Weight rows per pass: every packed activation step is used for all of them.
const RP: usize = 4;
/// Blocks per column piece that [`quantize_packed`] quantizes before packing.
const QCH: usize = 16;

/// One packed entry, 16-byte aligned (the stack buffer of [`gemm`]; the
/// driver's arena entries are read with unaligned loads).
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct PBlk([u8; PB]);

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

/// `out[r * n + t] = dot(w row r, x row t)` for Q8_0 weights and `n` row-form
/// Q8_0 activation rows of `nb` blocks, packed here per call (see the module
/// docs). Returns false, writing nothing, for shapes it does not take (fewer
/// than [`MIN_N`] tokens, `nb` of 0 or above [`MAX_NB`], lengths that do not
/// match); the caller then uses another kernel.
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
    let mut xa = [const { MaybeUninit::<PBlk>::uninit() }; XCAP];
    let mut wq = [const { MaybeUninit::<WBlk>::uninit() }; RP * MAX_NB];
    let mut dw = [0.0f32; RP * MAX_NB];
    // Tokens per packing: as many as the buffers hold, so that each weight row
    // is widened once per packing for as many tokens as possible.
    let cap = 8 * (XCAP / nb).min(MAX_TV);
    let mut t0 = 0;
    while t0 < n {
        let tn = cap.min(n - t0);
        let nv = tn.div_ceil(8);
        // SAFETY: tokens t0 .. t0 + tn < n of nb blocks each are in `x` (its
        // length was checked above), nv * nb <= XCAP entries fit `xa`; AVX2 +
        // F16C by the caller.
        unsafe { pack_rows(x, rb, t0, tn, nb, xa.as_mut_ptr() as *mut PBlk) };
        let xa = xa.as_ptr() as *const u8;
        let mut r0 = 0;
        while r0 < rows {
            let rn = RP.min(rows - r0);
            let wq = wq.as_mut_ptr() as *mut WBlk;
            // SAFETY: rows r0 .. r0 + rn < rows hold nb blocks each (checked
            // above); `wq`/`dw` have room for rn <= RP rows of nb <= MAX_NB
            // blocks; the first nv vectors of `xa` were just packed for nb
            // blocks; features by the caller.
            unsafe {
                widen(w, rb, r0, rn, nb, wq, dw.as_mut_ptr());
                let mut v0 = 0;
                while v0 < nv {
                    let a = Args {
                        nb,
                        xa: xa.add(v0 * nb * PB),
                        wq,
                        dw: dw.as_ptr(),
                    };
                    let tv = (nv - v0).min(2);
                    let res = run(&a, rn, tv);
                    // Only the real tokens: lanes past `tn` are padding.
                    for (r, rr) in res.iter().enumerate().take(rn) {
                        for (v, rv) in rr.iter().enumerate().take(tv) {
                            let mut o = F8([0.0; 8]);
                            _mm256_store_ps(o.0.as_mut_ptr(), *rv);
                            let first = 8 * (v0 + v);
                            let real = (tn - first).min(8);
                            let at = (r0 + r) * n + t0 + first;
                            if let (Some(d), Some(s)) =
                                (out.get_mut(at..at + real), o.0.get(..real))
                            {
                                d.copy_from_slice(s);
                            }
                        }
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

/// `out[t * stride + r_at + r] = dot(w row r, x token t)` for the `rows` Q8_0
/// weight rows `w` and the `8 nv` tokens `xp` holds in the packed layout
/// (entry `v * nb + j`: vector `v`, block `j`; as [`quantize_packed`] writes
/// them). Returns false, writing nothing, for shapes it does not take (`nb` of
/// 0 or above [`PACKED_MAX_NB`], lengths that do not match).
///
/// # Safety
/// AVX2 + F16C present; no one else reads or writes columns `r_at .. r_at +
/// rows` of the first `8 nv` rows of `out` (rows of `stride` values) during
/// the call, and the buffer `out` was made from is not used until it returns.
#[inline(always)]
pub(crate) unsafe fn gemm_packed(
    w: &[u8],
    rows: usize,
    xp: &[BlockQ8_0],
    nv: usize,
    out: &SharedOut,
    r_at: usize,
    stride: usize,
) -> bool {
    if rows == 0 || nv == 0 || !xp.len().is_multiple_of(8 * nv) {
        return false;
    }
    let nb = xp.len() / (8 * nv);
    let rb = nb * QB;
    if nb == 0 || nb > PACKED_MAX_NB || w.len() != rows * rb || r_at + rows > stride {
        return false;
    }
    let xp = xp.as_ptr() as *const u8;
    let mut wq = [const { MaybeUninit::<WBlk>::uninit() }; RP * PACKED_MAX_NB];
    let mut dw = [0.0f32; RP * PACKED_MAX_NB];
    let mut c0 = 0;
    while c0 < nv {
        let cn = CHUNK_TV.min(nv - c0);
        let mut r0 = 0;
        while r0 < rows {
            let rn = RP.min(rows - r0);
            let wq = wq.as_mut_ptr() as *mut WBlk;
            // The next rows' bytes, fetched a slice per pass while these
            // rows compute: the widening would otherwise wait on memory for
            // them (4 rows are 0.8-3.3 KB of weights read once per chunk).
            let next = (r0 + rn) * rb..(r0 + rn + RP.min(rows - r0 - rn)) * rb;
            let per_pass = next.len().div_ceil(cn.div_ceil(2));
            let mut pf = next.start;
            // SAFETY: rows r0 .. r0 + rn < rows hold nb blocks each (checked
            // above); `wq`/`dw` have room for rn <= RP rows of nb <=
            // PACKED_MAX_NB blocks; vectors c0 .. c0 + cn <= nv of nb entries
            // each are in `xp` (its length checked above); the prefetched
            // offsets are below next.end <= rows * rb = w.len(); the output
            // columns are the caller's; features by the caller.
            unsafe {
                widen(w, rb, r0, rn, nb, wq, dw.as_mut_ptr());
                let mut v0 = c0;
                while v0 < c0 + cn {
                    let stop = (pf + per_pass).min(next.end);
                    while pf < stop {
                        _mm_prefetch::<_MM_HINT_T0>(w.as_ptr().add(pf) as *const i8);
                        pf += 64;
                    }
                    let a = Args {
                        nb,
                        xa: xp.add(v0 * nb * PB),
                        wq,
                        dw: dw.as_ptr(),
                    };
                    let tv = (c0 + cn - v0).min(2);
                    let res = run(&a, rn, tv);
                    for v in 0..tv {
                        let t = 8 * (v0 + v);
                        store_tokens(&res, rn, v, out, t * stride + r_at + r0, stride);
                    }
                    v0 += 2;
                }
            }
            r0 += rn;
        }
        c0 += cn;
    }
    true
}

/// Write token vector `v` of `res` (rows `r < rn`, lanes = 8 tokens): token
/// `t`'s `rn` values to `out[at + t * stride ..]`. Four rows are transposed in
/// registers (4 x 8 -> 8 x 4) and stored 16 bytes per token.
///
/// # Safety
/// The `rn` columns from `at` of those 8 rows of `out` are the caller's alone
/// (see [`gemm_packed`]); AVX2.
#[inline(always)]
unsafe fn store_tokens(
    res: &[[__m256; 2]; RP],
    rn: usize,
    v: usize,
    out: &SharedOut,
    at: usize,
    stride: usize,
) {
    let [r0, r1, r2, r3] = res;
    let pick = |r: &[__m256; 2]| r.get(v).copied();
    let (Some(ra), Some(rb), Some(rc), Some(rd)) = (pick(r0), pick(r1), pick(r2), pick(r3)) else {
        return;
    };
    // SAFETY: the destination ranges are the caller's (contract above);
    // `slice_mut` checks bounds; AVX2 by the caller.
    unsafe {
        if rn == RP {
            let t0 = _mm256_unpacklo_ps(ra, rb); // a0 b0 a1 b1 | a4 b4 a5 b5
            let t1 = _mm256_unpackhi_ps(ra, rb); // a2 b2 a3 b3 | a6 b6 a7 b7
            let t2 = _mm256_unpacklo_ps(rc, rd);
            let t3 = _mm256_unpackhi_ps(rc, rd);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2); // token 0 | token 4
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2); // 1 | 5
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3); // 2 | 6
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3); // 3 | 7
            let cols = [
                _mm256_castps256_ps128(u0),
                _mm256_castps256_ps128(u1),
                _mm256_castps256_ps128(u2),
                _mm256_castps256_ps128(u3),
                _mm256_extractf128_ps::<1>(u0),
                _mm256_extractf128_ps::<1>(u1),
                _mm256_extractf128_ps::<1>(u2),
                _mm256_extractf128_ps::<1>(u3),
            ];
            for (t, c) in cols.into_iter().enumerate() {
                let p = at + t * stride;
                if let Some(d) = out.slice_mut(p..p + RP) {
                    _mm_storeu_ps(d.as_mut_ptr(), c);
                }
            }
        } else {
            let mut o = [F8([0.0; 8]); RP];
            for (o, r) in o.iter_mut().zip([ra, rb, rc, rd]) {
                _mm256_store_ps(o.0.as_mut_ptr(), r);
            }
            for t in 0..8 {
                let p = at + t * stride;
                if let Some(d) = out.slice_mut(p..p + rn) {
                    for (d, o) in d.iter_mut().zip(&o) {
                        *d = o.0.get(t).copied().unwrap_or(0.0);
                    }
                }
            }
        }
    }
}

/// Quantize 8 token rows `x` (`[8][cols]`, `cols` a multiple of 32) straight
/// into the packed layout: entry `j` (block `j` of the 8 tokens) in the `PB`
/// bytes at `dst[8 j ..]`. The blocks are those `quantize_q8_0` (the table's
/// `quantize_row_q8_0`) makes, bit for bit: it quantizes a column piece of the
/// 8 rows into a small buffer, which is then transposed into place. Does
/// nothing unless `x.len() == 8 * cols` and `dst.len() == cols / 4`.
///
/// # Safety
/// AVX2 + FMA + F16C present.
#[inline(always)]
pub(crate) unsafe fn quantize_packed(x: &[f32], cols: usize, dst: &mut [BlockQ8_0]) {
    let nb = cols / 32;
    if !cols.is_multiple_of(32) || x.len() != 8 * cols || dst.len() != 8 * nb {
        return;
    }
    let mut tmp = [BlockQ8_0::default(); 8 * QCH];
    let o = dst.as_mut_ptr() as *mut u8;
    let mut j0 = 0;
    while j0 < nb {
        let jn = QCH.min(nb - j0);
        for (t, tb) in tmp.chunks_exact_mut(QCH).enumerate() {
            let xs = x
                .get(t * cols + j0 * 32..t * cols + (j0 + jn) * 32)
                .unwrap_or(&[]);
            // SAFETY: features by the caller (it quantizes min(xs / 32, QCH) blocks).
            unsafe { super::common::quantize_q8_0(xs, tb) };
        }
        let tp = tmp.as_ptr() as *const u8;
        for jj in 0..jn {
            // SAFETY: row t's block jj is tmp[t * QCH + jj] (jj < jn <= QCH, t <
            // 8); entry j0 + jj < nb lies in `dst` (8 nb blocks = nb * PB
            // bytes, checked above; BlockQ8_0 takes any bytes); AVX2 + F16C by
            // the caller.
            unsafe {
                let p = core::array::from_fn(|t| tp.add((t * QCH + jj) * QB));
                pack_block(p, o.add((j0 + jj) * PB));
            }
        }
        j0 += jn;
    }
}

/// Pack tokens `t0 .. t0 + tn` of row-form `x` (rows of `xb` bytes, `nb`
/// blocks): vector `v` (tokens `t0 + 8v ..`), block `j` at entry `v * nb + j`
/// of `xa`. Lanes of missing tokens hold a = 0 and scale 0.
///
/// # Safety
/// Tokens `t0 .. t0 + tn` of `nb` blocks each lie in `x`; `xa` has room for
/// `tn.div_ceil(8) * nb` entries; AVX2 + F16C.
#[inline(always)]
unsafe fn pack_rows(x: &[u8], xb: usize, t0: usize, tn: usize, nb: usize, xa: *mut PBlk) {
    // SAFETY: token t < tn's block j < nb starts at x + (t0 + t) * xb + j * QB,
    // inside `x` by the caller; a missing token reads the zero block `z`
    // (stride 0). Entries v * nb + j are in `xa` by the caller. Features by the
    // caller.
    unsafe {
        let z = [0u8; QB];
        let base = x.as_ptr().add(t0 * xb);
        for v in 0..tn.div_ceil(8) {
            let mut p = [z.as_ptr(); 8];
            let mut s = [0usize; 8];
            for (t, (p, s)) in p.iter_mut().zip(&mut s).enumerate() {
                if 8 * v + t < tn {
                    (*p, *s) = (base.add((8 * v + t) * xb), QB);
                }
            }
            for j in 0..nb {
                let mut q = p;
                for (q, s) in q.iter_mut().zip(&s) {
                    *q = q.add(s * j);
                }
                pack_block(q, xa.add(v * nb + j) as *mut u8);
            }
        }
    }
}

/// Pack one block of 8 tokens: `p[t]` is token `t`'s Q8_0 block (scale, then
/// 32 quants). Step `k` goes to byte `32 * (k % 8) + 16 * (k / 8)` of `o` (the
/// order the 8 x 16 transpose of 2-byte pairs leaves them in), the 8 scales
/// (f16) to byte 256.
///
/// # Safety
/// Every `p[t]` is readable for `QB` bytes, `o` writable for `PB`; AVX2.
#[inline(always)]
unsafe fn pack_block(p: [*const u8; 8], o: *mut u8) {
    // SAFETY: by the caller, as stated above (unaligned loads and stores).
    unsafe {
        let [p0, p1, p2, p3, p4, p5, p6, p7] = p;
        let ld = |q: *const u8| _mm256_loadu_si256(q.add(2) as *const __m256i);
        // 8 tokens x 16 pairs -> 16 pairs x 8 tokens, within 128-bit lanes.
        let (r0, r1, r2, r3) = (ld(p0), ld(p1), ld(p2), ld(p3));
        let (r4, r5, r6, r7) = (ld(p4), ld(p5), ld(p6), ld(p7));
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
        let o32 = o as *mut __m256i;
        _mm256_storeu_si256(o32, _mm256_unpacklo_epi64(c0, c2));
        _mm256_storeu_si256(o32.add(1), _mm256_unpackhi_epi64(c0, c2));
        _mm256_storeu_si256(o32.add(2), _mm256_unpacklo_epi64(c1, c3));
        _mm256_storeu_si256(o32.add(3), _mm256_unpackhi_epi64(c1, c3));
        _mm256_storeu_si256(o32.add(4), _mm256_unpacklo_epi64(d0, d2));
        _mm256_storeu_si256(o32.add(5), _mm256_unpackhi_epi64(d0, d2));
        _mm256_storeu_si256(o32.add(6), _mm256_unpacklo_epi64(d1, d3));
        _mm256_storeu_si256(o32.add(7), _mm256_unpackhi_epi64(d1, d3));
        let g = |q: *const u8| core::ptr::read_unaligned(q as *const u16) as u64;
        let lo = g(p0) | g(p1) << 16 | g(p2) << 32 | g(p3) << 48;
        let hi = g(p4) | g(p5) << 16 | g(p6) << 32 | g(p7) << 48;
        _mm_storeu_si128(
            o.add(256) as *mut __m128i,
            _mm_set_epi64x(hi as i64, lo as i64),
        );
    }
}

/// What [`pass`] reads, and where.
struct Args {
    nb: usize,
    /// The pass's first packed vector (vector `v`, block `j` at entry `v * nb + j`).
    xa: *const u8,
    /// The widened rows (row `r`, block `j` at `r * nb + j`).
    wq: *const WBlk,
    /// Their scales (row `r`, block `j` at `r * nb + j`).
    dw: *const f32,
}

/// Widen rows `r0 .. r0 + rn` (`rn <= RP`) of `w` into `wq` (row `r`, block `j`
/// at `r * nb + j`: 32 i16) and their scales into `dw` (same index).
///
/// # Safety
/// Rows `r0 .. r0 + rn` of `w` (rows of `rb = nb * QB` bytes) exist; `wq` and
/// `dw` have room for `rn * nb` blocks; AVX2 + F16C.
#[inline(always)]
unsafe fn widen(w: &[u8], rb: usize, r0: usize, rn: usize, nb: usize, wq: *mut WBlk, dw: *mut f32) {
    // SAFETY: row r0 + r (r < rn) spans w[(r0 + r) * rb ..][..rb] by the
    // caller; block j < nb of it starts j * QB bytes in, its quants 2 further;
    // wq[r * nb + j] exists, 32-byte aligned by its type, for the aligned
    // stores, and so does dw[r * nb + j]; `scales8` reads the scales of blocks
    // j .. j + 8 <= nb, or of block j alone (stride 0). Features by the caller.
    unsafe {
        for r in 0..rn {
            let wr = w.as_ptr().add((r0 + r) * rb);
            let dst = wq.add(r * nb) as *mut __m256i;
            for j in 0..nb {
                let q = wr.add(j * QB + 2) as *const __m128i;
                let (lo, hi) = (_mm_loadu_si128(q), _mm_loadu_si128(q.add(1)));
                _mm256_store_si256(dst.add(2 * j), _mm256_cvtepi8_epi16(lo));
                _mm256_store_si256(dst.add(2 * j + 1), _mm256_cvtepi8_epi16(hi));
            }
            let dwr = dw.add(r * nb);
            let mut j = 0;
            while j + 8 <= nb {
                _mm256_storeu_ps(dwr.add(j), scales8(wr.add(j * QB), QB));
                j += 8;
            }
            while j < nb {
                let one = scales8(wr.add(j * QB), 0);
                dwr.add(j).write(_mm_cvtss_f32(_mm256_castps256_ps128(one)));
                j += 1;
            }
        }
    }
}

/// [`pass`] for `rn` rows (`1 ..= RP`) and `tv` token vectors (1 or 2), its
/// results padded with zeros to `RP x 2`.
///
/// # Safety
/// As [`pass`] for those counts.
#[inline(always)]
unsafe fn run(a: &Args, rn: usize, tv: usize) -> [[__m256; 2]; RP] {
    // SAFETY: forwarded (the counts match the match arm); AVX by the caller.
    // The full pass returns its result as is: zeroing a result array first
    // was a `memset` call per pass (2.5% of a 2-thread GPT-2 Q8_0 prefill).
    unsafe {
        match (rn, tv) {
            (4, 2) => pass::<4, 2>(a),
            (3, 2) => padded(pass::<3, 2>(a)),
            (2, 2) => padded(pass::<2, 2>(a)),
            (1, 2) => padded(pass::<1, 2>(a)),
            (4, _) => padded(pass::<4, 1>(a)),
            (3, _) => padded(pass::<3, 1>(a)),
            (2, _) => padded(pass::<2, 1>(a)),
            _ => padded(pass::<1, 1>(a)),
        }
    }
}

/// `p` in the top left of an `RP x 2` array of zeros.
#[inline(always)]
fn padded<const RR: usize, const TT: usize>(p: [[__m256; TT]; RR]) -> [[__m256; 2]; RP] {
    // SAFETY: `__m256` is plain data, for which all-zero bits are 8 x +0.0.
    let mut res: [[__m256; 2]; RP] = unsafe { core::mem::zeroed() };
    for (dst, src) in res.iter_mut().zip(p) {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = s;
        }
    }
    res
}

/// `RR` widened rows against `TT` packed token vectors: run the 8 lanes one
/// after another, fold; lane `t` of result `[r][v]` is token `8 v + t` of row `r`.
///
/// # Safety
/// `a.wq`/`a.dw` hold `RR` widened rows and `a.xa` `TT` packed vectors, all for
/// `a.nb` blocks; `RR <= RP`; AVX2 + F16C present.
#[inline(always)]
#[allow(clippy::needless_range_loop)]
// r, v, l index several arrays at once
// INDEXING: r < RR, v < TT, l < 8 index arrays of those const lengths.
#[allow(clippy::indexing_slicing)]
unsafe fn pass<const RR: usize, const TT: usize>(a: &Args) -> [[__m256; TT]; RR] {
    let nb = a.nb;
    // SAFETY: widened row r, block j is wq[r * nb + j] (64 bytes), its scale
    // dw[r * nb + j]; packed vector v, block j is the PB bytes at xa + (v * nb
    // + j) * PB, all by the caller. Features by the caller. Each `lanes[r][v][l]`
    // is written (l = 0..8) before `assume_init` reads it.
    unsafe {
        let wq = a.wq as *const u8;
        let xa = a.xa;
        let z = _mm256_setzero_ps();
        // Every lane is written below before the fold reads it (not zeroed
        // first: that was a 2 KB `memset` call per pass).
        let mut lanes = [[[const { MaybeUninit::<__m256>::uninit() }; 8]; TT]; RR];
        for l in 0..8 {
            let mut acc = [[z; TT]; RR];
            let mut j = l;
            while j < nb {
                let mut s = [[_mm256_setzero_si256(); TT]; RR];
                let xj = xa.add(j * PB);
                let wj = wq.add(j * 64);
                // Step k8 + 8 * half: the low (half 0) or high 16 bytes of
                // packed step pair k8, the weights' pair k8 + 8 * half.
                // Written out (a macro, not a closure: a closure would not
                // inherit the caller's target features): as a loop, the
                // compiler kept the 4 x 2 case rolled, with ~6 address and
                // counter operations per 16 multiplies competing for dispatch.
                macro_rules! step {
                    ($k8:literal, $half:literal) => {
                        let mut x = [_mm256_setzero_si256(); TT];
                        for v in 0..TT {
                            let p = xj.add(v * nb * PB + 32 * $k8 + 16 * $half);
                            x[v] = _mm256_cvtepi8_epi16(_mm_loadu_si128(p as *const __m128i));
                        }
                        for r in 0..RR {
                            let p = wj.add(r * nb * 64 + 4 * ($k8 + 8 * $half));
                            let b = _mm256_set1_epi32(core::ptr::read_unaligned(p as *const i32));
                            for v in 0..TT {
                                s[r][v] = _mm256_add_epi32(s[r][v], _mm256_madd_epi16(x[v], b));
                            }
                        }
                    };
                }
                macro_rules! steps {
                    ($($k:literal)*) => { $( step!($k, 0); step!($k, 1); )* };
                }
                steps!(0 1 2 3 4 5 6 7);
                for v in 0..TT {
                    let h = xj.add(v * nb * PB + 256) as *const __m128i;
                    let dxv = _mm256_cvtph_ps(_mm_loadu_si128(h));
                    for r in 0..RR {
                        // (sumi as f32) * (dw * dx), as the reference (a product
                        // of two values rounds the same in either order).
                        let d = _mm256_mul_ps(dxv, _mm256_set1_ps(a.dw.add(r * nb + j).read()));
                        let term = _mm256_mul_ps(_mm256_cvtepi32_ps(s[r][v]), d);
                        acc[r][v] = _mm256_add_ps(acc[r][v], term);
                    }
                }
                j += 8;
            }
            for r in 0..RR {
                for v in 0..TT {
                    lanes[r][v][l].write(acc[r][v]);
                }
            }
        }
        let mut res = [[z; TT]; RR];
        for r in 0..RR {
            for v in 0..TT {
                // fold_lanes: lane i += lane i + 4, then + lane i + 2, then + lane i + 1.
                let [v0, v1, v2, v3, v4, v5, v6, v7] = lanes[r][v].map(|x| x.assume_init());
                let (v0, v1, v2, v3) = (
                    _mm256_add_ps(v0, v4),
                    _mm256_add_ps(v1, v5),
                    _mm256_add_ps(v2, v6),
                    _mm256_add_ps(v3, v7),
                );
                let (v0, v1) = (_mm256_add_ps(v0, v2), _mm256_add_ps(v1, v3));
                res[r][v] = _mm256_add_ps(v0, v1);
            }
        }
        res
    }
}
