//! Armv7E-M DSP kernels (Cortex-M4/M7/M33/M55): `SXTB16` widens two signed bytes
//! to two halfwords, `SMLAD` multiplies two halfword pairs and adds both
//! products to an accumulator. Stable `asm!`, one instruction per wrapper, so
//! LLVM keeps register allocation and scheduling.
//!
//! Block sums are exact in i32: `|sum| <= 32 * 128 * 128 = 2^19`, so `SMLAD`
//! never overflows (it would only set the sticky Q flag).

use core::arch::asm;
use core::ptr::read_unaligned;

use super::{gemm_by, rows_dot};
#[cfg(target_abi = "eabihf")]
use crate::kernels::scalar::fold_lanes;
use crate::quant::BlockQ8_0;

/// `(sext(x.b0), sext(x.b2))` as two halfwords.
#[inline(always)]
fn sxtb16(x: u32) -> u32 {
    let r: u32;
    // SAFETY: a register-only instruction with no memory or flag effects.
    unsafe {
        asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// `(sext(x.b1), sext(x.b3))` as two halfwords.
#[inline(always)]
fn sxtb16_ror8(x: u32) -> u32 {
    let r: u32;
    // SAFETY: a register-only instruction with no memory or flag effects.
    unsafe {
        asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// `acc + a.lo * b.lo + a.hi * b.hi` (signed halfwords).
#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: a register-only instruction; it may set the sticky Q flag, which
    // nothing reads (no `preserves_flags`).
    unsafe {
        asm!("smlad {r}, {a}, {b}, {acc}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack));
    }
    r
}

/// Bytewise `x - 0x08` on four bytes (nibbles 0..=15 become -8..=7).
#[inline(always)]
fn sub8_each(x: u32) -> u32 {
    let r: u32;
    // SAFETY: a register-only instruction; it sets the GE flags (no `preserves_flags`).
    unsafe {
        asm!("usub8 {r}, {x}, {e}", r = lateout(reg) r, x = in(reg) x, e = in(reg) 0x0808_0808u32,
             options(pure, nomem, nostack));
    }
    r
}

/// Four bytes at `p` (any alignment; Armv7E-M loads words unaligned).
///
/// # Safety
/// `p..p + 4` must be readable.
#[inline(always)]
unsafe fn word(p: *const u8) -> u32 {
    // SAFETY: the caller guarantees 4 readable bytes; `read_unaligned` needs no alignment.
    unsafe { read_unaligned(p as *const u32) }
}

/// Exact `sum(w[r][i] * a[i])` over 32 signed bytes for each of `R` rows, the
/// widened activations shared by all rows.
///
/// # Safety
/// `a` and every `w[r]` must point to 32 readable bytes.
#[inline(always)]
unsafe fn sums_q8<const R: usize>(w: [*const u8; R], a: *const u8) -> [i32; R] {
    let mut s = [0i32; R];
    for k in (0..32).step_by(4) {
        // SAFETY: `k + 4 <= 32` and the caller guarantees 32 bytes at `a`.
        let av = unsafe { word(a.add(k)) };
        let (ae, ao) = (sxtb16(av), sxtb16_ror8(av));
        for (sr, &wr) in s.iter_mut().zip(&w) {
            // SAFETY: as above, for `w[r]`.
            let wv = unsafe { word(wr.add(k)) };
            *sr = smlad(sxtb16(wv), ae, *sr);
            *sr = smlad(sxtb16_ror8(wv), ao, *sr);
        }
    }
    s
}

/// Exact `sum((q - 8) * a)` over one Q4_0 block (16 bytes of nibbles: byte `k`
/// holds elements `k` and `k + 16`) for each of `R` rows.
///
/// # Safety
/// `a` must point to 32 readable bytes and every `w[r]` to 16.
#[inline(always)]
unsafe fn sums_q4<const R: usize>(w: [*const u8; R], a: *const u8) -> [i32; R] {
    let mut s = [0i32; R];
    for k in (0..16).step_by(4) {
        // SAFETY: `k + 20 <= 32` and the caller guarantees 32 bytes at `a`.
        let (al, ah) = unsafe { (word(a.add(k)), word(a.add(k + 16))) };
        let (ale, alo, ahe, aho) = (sxtb16(al), sxtb16_ror8(al), sxtb16(ah), sxtb16_ror8(ah));
        for (sr, &wr) in s.iter_mut().zip(&w) {
            // SAFETY: `k + 4 <= 16` and the caller guarantees 16 bytes at `w[r]`.
            let wv = unsafe { word(wr.add(k)) };
            let lo = sub8_each(wv & 0x0f0f_0f0f);
            let hi = sub8_each((wv >> 4) & 0x0f0f_0f0f);
            *sr = smlad(sxtb16(lo), ale, *sr);
            *sr = smlad(sxtb16_ror8(lo), alo, *sr);
            *sr = smlad(sxtb16(hi), ahe, *sr);
            *sr = smlad(sxtb16_ror8(hi), aho, *sr);
        }
    }
    s
}

/// Exact Q8_0 block sums of 4 rows `stride` bytes apart (`p`, `p + stride`,
/// `p + 2 * stride`, `p + 3 * stride`): one asm block, fully unrolled, the
/// activations widened once per 4 bytes for all rows (23 instructions per 16
/// multiply-accumulates).
///
/// # Safety
/// `a` and `p + r * stride` (`r < 4`) must point to 32 readable bytes.
#[inline(always)]
unsafe fn sums_q8_x4(p: *const u8, stride: usize, a: *const u8) -> [i32; 4] {
    let (mut s0, mut s1, mut s2, mut s3) = (0i32, 0i32, 0i32, 0i32);
    // SAFETY: reads 32 bytes at `a` and at each row (caller's guarantee); writes
    // only the listed registers. SMLAD may set the Q flag (no `preserves_flags`).
    unsafe {
        asm!(
            ".rept 8",
            "ldr {ae}, [{pa}], #4",
            "sxtb16 {ao}, {ae}, ror #8",
            "sxtb16 {ae}, {ae}",
            "ldr {w}, [{p}, {rb}]",
            "sxtb16 {t}, {w}",
            "sxtb16 {w}, {w}, ror #8",
            "smlad {s1}, {t}, {ae}, {s1}",
            "smlad {s1}, {w}, {ao}, {s1}",
            "ldr {w}, [{p}, {rb}, lsl #1]",
            "sxtb16 {t}, {w}",
            "sxtb16 {w}, {w}, ror #8",
            "smlad {s2}, {t}, {ae}, {s2}",
            "smlad {s2}, {w}, {ao}, {s2}",
            "ldr {w}, [{p}, {rb3}]",
            "sxtb16 {t}, {w}",
            "sxtb16 {w}, {w}, ror #8",
            "smlad {s3}, {t}, {ae}, {s3}",
            "smlad {s3}, {w}, {ao}, {s3}",
            "ldr {w}, [{p}], #4",
            "sxtb16 {t}, {w}",
            "sxtb16 {w}, {w}, ror #8",
            "smlad {s0}, {t}, {ae}, {s0}",
            "smlad {s0}, {w}, {ao}, {s0}",
            ".endr",
            s0 = inout(reg) s0, s1 = inout(reg) s1, s2 = inout(reg) s2, s3 = inout(reg) s3,
            p = inout(reg) p => _, pa = inout(reg) a => _,
            rb = in(reg) stride, rb3 = in(reg) stride.wrapping_mul(3),
            ae = out(reg) _, ao = out(reg) _, w = out(reg) _, t = out(reg) _,
            options(pure, readonly, nostack),
        );
    }
    [s0, s1, s2, s3]
}

/// The float part of one block of 4 rows `stride` bytes apart, in VFP
/// instructions: `acc[r * 8] += s[r] as f32 * (f16(dw[r]) * f16(dx))`, each
/// operation rounded as the scalar reference rounds it, in its operand order.
/// `p` points at row 0's block (its f16 scale), `xd` at the activation block's
/// scale, `acc` at lane `j % 8` of row 0 in a `[[f32; 8]; 4]`.
///
/// # Safety
/// `p + r * stride` (`r < 4`) and `xd` must be readable for 2 bytes, `acc + r * 8`
/// (`r < 4`) readable and writable f32s. Needs a hard-float FPU (enabled).
#[cfg(target_abi = "eabihf")]
#[inline(always)]
unsafe fn float_x4(s: [i32; 4], p: *const u8, stride: usize, xd: *const u8, acc: *mut f32) {
    // SAFETY: reads the caller-guaranteed scales, reads and writes the 4 acc
    // entries; the S registers used are declared clobbered; VFP instructions may
    // set FPSCR exception flags (no `preserves_flags`).
    unsafe {
        asm!(
            "ldrh {t}, [{xd}]",
            "vmov s0, {t}",
            "vcvtb.f32.f16 s4, s0",
            // row 0
            "ldrh {t}, [{p}]",
            "vmov s0, {t}",
            "vcvtb.f32.f16 s0, s0",
            "vmul.f32 s0, s0, s4",
            "vmov s1, {s0}",
            "vcvt.f32.s32 s1, s1",
            "vmul.f32 s1, s1, s0",
            "vldr s2, [{acc}]",
            "vadd.f32 s2, s2, s1",
            "vstr s2, [{acc}]",
            // row 1
            "ldrh {t}, [{p}, {rb}]",
            "vmov s0, {t}",
            "vcvtb.f32.f16 s0, s0",
            "vmul.f32 s0, s0, s4",
            "vmov s1, {s1}",
            "vcvt.f32.s32 s1, s1",
            "vmul.f32 s1, s1, s0",
            "vldr s2, [{acc}, #32]",
            "vadd.f32 s2, s2, s1",
            "vstr s2, [{acc}, #32]",
            // row 2
            "ldrh {t}, [{p}, {rb}, lsl #1]",
            "vmov s0, {t}",
            "vcvtb.f32.f16 s0, s0",
            "vmul.f32 s0, s0, s4",
            "vmov s1, {s2}",
            "vcvt.f32.s32 s1, s1",
            "vmul.f32 s1, s1, s0",
            "vldr s2, [{acc}, #64]",
            "vadd.f32 s2, s2, s1",
            "vstr s2, [{acc}, #64]",
            // row 3
            "add {t}, {rb}, {rb}, lsl #1",
            "ldrh {t}, [{p}, {t}]",
            "vmov s0, {t}",
            "vcvtb.f32.f16 s0, s0",
            "vmul.f32 s0, s0, s4",
            "vmov s1, {s3}",
            "vcvt.f32.s32 s1, s1",
            "vmul.f32 s1, s1, s0",
            "vldr s2, [{acc}, #96]",
            "vadd.f32 s2, s2, s1",
            "vstr s2, [{acc}, #96]",
            s0 = in(reg) s[0], s1 = in(reg) s[1], s2 = in(reg) s[2], s3 = in(reg) s[3],
            p = in(reg) p, rb = in(reg) stride, xd = in(reg) xd, acc = in(reg) acc,
            t = out(reg) _,
            out("s0") _, out("s1") _, out("s2") _, out("s4") _,
            options(nostack),
        );
    }
}

/// 4 Q8_0 rows x Q8_0 activations, bit-identical to `scalar::vec_dot_q8_0_q8_0`
/// per row. Rows that are equally spaced in memory (as [`super::matvec`] passes
/// them) take the asm path (on hard-float targets the float part too); others
/// go row by row.
pub fn rows4_q8_0_q8_0(w: &[&[u8]; 4], x: &[BlockQ8_0]) -> [f32; 4] {
    let base = w[0].as_ptr() as usize;
    let stride = (w[1].as_ptr() as usize).wrapping_sub(base);
    let even = (w.iter().zip(0usize..))
        .all(|(wr, r)| wr.as_ptr() as usize == base.wrapping_add(r.wrapping_mul(stride)));
    if !even {
        return rows_q8_0_q8_0(w, x);
    }
    #[cfg(target_abi = "eabihf")]
    {
        let mut nb = x.len();
        for wr in w {
            nb = nb.min(wr.len() / 34);
        }
        let mut acc = [[0.0f32; 8]; 4];
        for (j, xb) in x.iter().enumerate().take(nb) {
            let p = w[0].as_ptr().wrapping_add(j * 34);
            let xp = (xb as *const BlockQ8_0).cast::<u8>();
            // SAFETY: `j < nb <= w[r].len() / 34`, so block `j` of row `r` is the
            // 34 bytes at `p + r * stride` (rows are `stride` apart): scale, then
            // 32 quants; `xb` is a whole block (scale at offset 0, quants at 2);
            // `acc` is 32 contiguous floats and `j % 8 + r * 8 < 32`.
            unsafe {
                let s = sums_q8_x4(p.add(2), stride, xp.add(2));
                float_x4(s, p, stride, xp, acc.as_mut_ptr().cast::<f32>().add(j % 8));
            }
        }
        acc.map(fold_lanes)
    }
    #[cfg(not(target_abi = "eabihf"))]
    rows_dot(w, x, 34, |j, _| {
        // SAFETY: `rows_dot` calls with `j * 34 + 34 <= w[r].len()` for every
        // row, and row `r` starts at `w[0] + r * stride`, so 32 bytes follow
        // `w[0] + j * 34 + 2 + r * stride`; `x[j].qs` is 32 bytes.
        unsafe {
            let xq = x.as_ptr().add(j);
            sums_q8_x4(
                w[0].as_ptr().add(j * 34 + 2),
                stride,
                (*xq).qs.as_ptr() as *const u8,
            )
        }
    })
}

/// `R` Q8_0 rows x Q8_0 activations, bit-identical to `scalar::vec_dot_q8_0_q8_0` per row.
pub fn rows_q8_0_q8_0<const R: usize>(w: &[&[u8]; R], x: &[BlockQ8_0]) -> [f32; R] {
    rows_dot(w, x, 34, |j, xb| {
        let p = w.map(|wr| wr.as_ptr().wrapping_add(j * 34 + 2));
        // SAFETY: `rows_dot` calls with `j * 34 + 34 <= w[r].len()`, so 32 bytes
        // follow each `p[r]`; `xb.qs` is 32 bytes.
        unsafe { sums_q8(p, xb.qs.as_ptr() as *const u8) }
    })
}

/// `R` Q4_0 rows x Q8_0 activations, bit-identical to `scalar::vec_dot_q4_0_q8_0` per row.
pub fn rows_q4_0_q8_0<const R: usize>(w: &[&[u8]; R], x: &[BlockQ8_0]) -> [f32; R] {
    rows_dot(w, x, 18, |j, xb| {
        let p = w.map(|wr| wr.as_ptr().wrapping_add(j * 18 + 2));
        // SAFETY: `rows_dot` calls with `j * 18 + 18 <= w[r].len()`, so 16 bytes
        // follow each `p[r]`; `xb.qs` is 32 bytes.
        unsafe { sums_q4(p, xb.qs.as_ptr() as *const u8) }
    })
}

/// Q8_0 weights x Q8_0 activations (the table entry).
pub fn vec_dot_q8_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    rows_q8_0_q8_0::<1>(&[w], x)[0]
}

/// Q4_0 weights x Q8_0 activations (the table entry).
pub fn vec_dot_q4_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    rows_q4_0_q8_0::<1>(&[w], x)[0]
}

/// Batched Q8_0 x Q8_0 (the table's `gemm_q8_0_q8_0`): the whole-row kernel
/// ([`q8_pairs_all`], 2 rows at a time) when the rows allow it, else 4 rows at a
/// time through [`rows4_q8_0_q8_0`].
pub fn gemm_q8_0_q8_0(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) {
    if !whole_rows_q8(w, rows, x, n, out) {
        gemm_by::<4>(w, rows, x, n, out, 34, rows4_q8_0_q8_0, vec_dot_q8_0_q8_0)
    }
}

// ---- the whole-row Q8_0 kernel ---------------------------------------------
//
// Two Q8_0 blocks are 68 bytes = 17 words. When a row starts word-aligned and
// has an even number of blocks, every pair of blocks starts word-aligned:
// word 0 holds block 0's scale and quants 0-1, words 1-7 quants 2-29, word 8
// quants 30-31 and block 1's scale, words 9-16 block 1's quants. So the rows can
// be read with LDRD (two words per instruction), and `PKHBT` joins words 0 and 8
// into one word of quants (30, 31, 0, 1): 16 words of quants per pair, each
// `SXTB16` twice and `SMLAD` twice against activations widened beforehand, in
// the same byte order, once per call (the records below). The scales come from
// words 0 and 8 too (`VMOV` to the FPU, `VCVTB`/`VCVTT` take the low/high half).
//
// Two rows share each load of widened activations (`LDM`, two words of quants);
// the 8 lanes of both rows stay in s16-s31 for the whole row, and the loop is
// unrolled over 4 pairs so that pair `k` adds into lanes `2k % 8` and
// `2k % 8 + 1` by register name. Each row sees the scalar float operations in
// the scalar order: `dw * dx`, `(s as f32) * d`, `acc[lane] + term`.

/// Most blocks per row the whole-row kernel takes (its records are on the stack).
#[cfg(target_abi = "eabihf")]
const MAX_NB: usize = 32;
/// Words per pair record: 16 x (even, odd) widened activation pairs, the two f32
/// scales, and 1 if another pair follows (else 0).
#[cfg(target_abi = "eabihf")]
const REC_WORDS: usize = 35;
/// The record buffer: 16 zero words (loaded into the lanes), the records.
#[cfg(target_abi = "eabihf")]
const BUF_WORDS: usize = 16 + MAX_NB / 2 * REC_WORDS;

/// Writes the pair records of `x` (an even number `nb <= MAX_NB` of blocks)
/// into `buf` after its 16-word header.
#[cfg(target_abi = "eabihf")]
fn records_q8(x: &[BlockQ8_0], buf: &mut [core::mem::MaybeUninit<u32>; BUF_WORDS]) {
    let np = x.len() / 2;
    let (head, recs) = buf.split_at_mut(16);
    for h in head {
        h.write(0);
    }
    let (pairs, _) = x.as_chunks::<2>();
    let (rec_arrays, _) = recs.as_chunks_mut::<REC_WORDS>();
    for (k, ([b0, b1], rec)) in pairs.iter().zip(rec_arrays.iter_mut()).enumerate() {
        let (a, b) = (b0.qs.as_ptr().cast::<u8>(), b1.qs.as_ptr().cast::<u8>());
        let mut put = |i: usize, v: u32| {
            if let Some([lo, hi]) = rec.get_mut(2 * i..2 * i + 2) {
                lo.write(sxtb16(v));
                hi.write(sxtb16_ror8(v));
            }
        };
        // Quants (30, 31, 0, 1), as the kernel joins words 8 and 0 of the weights.
        // SAFETY: every `word` read (here and below) is at an offset of at most
        // 28 into a 32-byte `qs`.
        put(0, unsafe { (word(a.add(28)) >> 16) | (word(a) << 16) });
        for i in 1..8 {
            // SAFETY: see above.
            put(i, unsafe { word(a.add(4 * i - 2)) });
        }
        for i in 0..8 {
            // SAFETY: see above.
            put(8 + i, unsafe { word(b.add(4 * i)) });
        }
        rec[32].write(super::f16_to_f32(b0.d).to_bits());
        rec[33].write(super::f16_to_f32(b1.d).to_bits());
        rec[34].write(u32::from(k + 1 < np));
    }
}

/// The batched form (layout and shape checks of `scalar::gemm_with`) through
/// [`q8_pairs_all`], 2 rows at a time, the last odd row through the one-row dot.
/// Returns false (doing nothing) unless every row starts word-aligned with an
/// even number of blocks, at most [`MAX_NB`] (hard-float targets only).
#[cfg(target_abi = "eabihf")]
fn whole_rows_q8(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) -> bool {
    if rows == 0 || n == 0 || !x.len().is_multiple_of(n) {
        return false;
    }
    let nb = x.len() / n;
    let rb = nb * 34;
    if nb == 0 || !nb.is_multiple_of(2) || nb > MAX_NB || w.len() != rows * rb {
        return false;
    }
    if out.len() < rows * n || !(w.as_ptr() as usize).is_multiple_of(4) || n > 1 << 20 {
        return false;
    }
    let mut buf = [core::mem::MaybeUninit::<u32>::uninit(); BUF_WORDS];
    for t in 0..n {
        let xr = x.get(t * nb..(t + 1) * nb).unwrap_or(&[]);
        records_q8(xr, &mut buf);
        let r = rows / 2 * 2;
        if r > 0 {
            let job = Job {
                buf: buf.as_mut_ptr().cast::<u32>(),
                rb: rb as u32,
                groups: (rows / 2) as u32,
                out: out.as_mut_ptr().wrapping_add(t),
                ostep: (4 * n) as u32,
            };
            // SAFETY: rows 0..r are inside `w` (`w.len() == rows * rb`), word-aligned
            // (`w` is, and `rb = 68 * nb / 2`), `nb / 2 >= 1` pairs each; `buf`
            // holds the header and `nb / 2` records (the last with a 0 flag); row
            // `i`'s result goes to `out[i * n + t]`, inside `out` (`out.len() >=
            // rows * n`).
            unsafe { q8_pairs_all(&job, w.as_ptr(), w.as_ptr().add(rb)) };
        }
        if r < rows {
            if let Some(o) = out.get_mut(r * n + t) {
                *o = vec_dot_q8_0_q8_0(w.get(r * rb..).unwrap_or(&[]), xr);
            }
        }
    }
    true
}

/// Without an FPU the whole-row kernel is not built.
#[cfg(not(target_abi = "eabihf"))]
fn whole_rows_q8(_: &[u8], _: usize, _: &[BlockQ8_0], _: usize, _: &mut [f32]) -> bool {
    false
}

/// What [`q8_pairs_all`] reads: the words are pushed on the stack in this order.
#[cfg(target_abi = "eabihf")]
#[repr(C)]
struct Job {
    /// The record buffer (see [`records_q8`]).
    buf: *mut u32,
    /// Bytes per row.
    rb: u32,
    /// Row pairs (Q8_0) or rows (Q4_0), >= 1.
    groups: u32,
    /// Where row 0's result goes (row `i`'s at `out + i * ostep`).
    out: *mut f32,
    /// Bytes from one row's result to the next.
    ostep: u32,
}

/// `job.pairs` pairs of rows of Q8_0 blocks (the first pair at `p0`, `p1`,
/// `job.rb` bytes apart) times the pair records in `job.buf` (see
/// [`records_q8`]): each row's 8 lanes, folded by halves as
/// `scalar::fold_lanes` does, stored at `job.out + i * job.ostep` (row `i`).
/// The loop over the row pairs is in the assembly too.
///
/// # Safety
/// `p0` and the rows after it must be word-aligned and readable for as many
/// 68-byte pairs as `buf` has records (at least one; the last with flag 0);
/// `buf` must hold the 16 zero words and the records; the results must be
/// writable. Needs the FPU (enabled) and the DSP extension.
#[cfg(target_abi = "eabihf")]
#[inline(never)]
unsafe fn q8_pairs_all(job: &Job, p0: *const u8, p1: *const u8) {
    // SAFETY: reads the rows and the records the caller guarantees, writes the
    // results; pushes 20 bytes (popped at the end); writes only the declared registers
    // (r0-r3, the allocated ones, s0-s31 as d0-d15); SMLAD may set the Q flag
    // and `cmp` sets the flags (no `preserves_flags`). The assembler macros are
    // removed at the end, so the block can be emitted more than once.
    unsafe {
        asm!(
            // one row, quant words 0-1 of the pair (LDRD of words 0, 1; word 0 and word 8
            // joined by PKHBT)
            ".macro egpt_dsp_w01 pw, c, sa, sb",
            "ldrd {w0}, {w1}, [\\pw], #68",
            "ldr r4, [\\pw, #-36]",
            "vmov \\sa, \\sb, {w0}, r4",
            "pkhbt r4, r4, {w0}",
            "sxtb16 {w0}, r4",
            "smuad \\c, {w0}, r0",
            "sxtb16 r4, r4, ror #8",
            "smlad \\c, r4, r1, \\c",
            "sxtb16 r4, {w1}",
            "smlad \\c, r4, r2, \\c",
            "sxtb16 {w1}, {w1}, ror #8",
            "smlad \\c, {w1}, r3, \\c",
            ".endm",
            // one row, two quant words at `off` from the advanced pointer
            ".macro egpt_dsp_w2 pw, c, off, op",
            "ldrd {w0}, {w1}, [\\pw, #\\off]",
            "sxtb16 r4, {w0}",
            ".ifc \\op,smuad",
            "smuad \\c, r4, r0",
            ".else",
            "smlad \\c, r4, r0, \\c",
            ".endif",
            "sxtb16 {w0}, {w0}, ror #8",
            "smlad \\c, {w0}, r1, \\c",
            "sxtb16 r4, {w1}",
            "smlad \\c, r4, r2, \\c",
            "sxtb16 {w1}, {w1}, ror #8",
            "smlad \\c, {w1}, r3, \\c",
            ".endm",
            // one row's float part: scales in sa/sb (low half of sa, high half
            // of sb), sums in su/sv, dx in s0/s1, lanes la/lb
            ".macro egpt_dsp_f sa, sb, su, sv, la, lb",
            "vcvtb.f32.f16 \\sa, \\sa",
            "vcvtt.f32.f16 \\sb, \\sb",
            "vmul.f32 \\sa, \\sa, s0",
            "vmul.f32 \\sb, \\sb, s1",
            "vcvt.f32.s32 \\su, \\su",
            "vcvt.f32.s32 \\sv, \\sv",
            "vmul.f32 \\su, \\su, \\sa",
            "vmul.f32 \\sv, \\sv, \\sb",
            "vadd.f32 \\la, \\la, \\su",
            "vadd.f32 \\lb, \\lb, \\sv",
            ".endm",
            // one pair of blocks of both rows into lanes (la, lb) and (ma, mb)
            ".macro egpt_dsp_pair la, lb, ma, mb",
            "ldm {pa}!, {{r0, r1, r2, r3}}",
            "egpt_dsp_w01 {p0}, {c0}, s2, s3",
            "egpt_dsp_w01 {p1}, {c1}, s4, s5",
            "ldm {pa}!, {{r0, r1, r2, r3}}",
            "egpt_dsp_w2 {p0}, {c0}, -60, smlad",
            "egpt_dsp_w2 {p1}, {c1}, -60, smlad",
            "ldm {pa}!, {{r0, r1, r2, r3}}",
            "egpt_dsp_w2 {p0}, {c0}, -52, smlad",
            "egpt_dsp_w2 {p1}, {c1}, -52, smlad",
            "ldm {pa}!, {{r0, r1, r2, r3}}",
            "egpt_dsp_w2 {p0}, {c0}, -44, smlad",
            "egpt_dsp_w2 {p1}, {c1}, -44, smlad",
            "vmov s6, s7, {c0}, {c1}",
            "ldm {pa}!, {{r0, r1, r2, r3}}",
            "egpt_dsp_w2 {p0}, {c0}, -32, smuad",
            "egpt_dsp_w2 {p1}, {c1}, -32, smuad",
            "ldm {pa}!, {{r0, r1, r2, r3}}",
            "egpt_dsp_w2 {p0}, {c0}, -24, smlad",
            "egpt_dsp_w2 {p1}, {c1}, -24, smlad",
            "ldm {pa}!, {{r0, r1, r2, r3}}",
            "egpt_dsp_w2 {p0}, {c0}, -16, smlad",
            "egpt_dsp_w2 {p1}, {c1}, -16, smlad",
            "ldm {pa}!, {{r0, r1, r2, r3}}",
            "egpt_dsp_w2 {p0}, {c0}, -8, smlad",
            "egpt_dsp_w2 {p1}, {c1}, -8, smlad",
            "vmov s8, s9, {c0}, {c1}",
            "vldmia {pa}!, {{s0, s1}}",
            "egpt_dsp_f s2, s3, s6, s8, \\la, \\lb",
            "egpt_dsp_f s4, s5, s7, s9, \\ma, \\mb",
            "ldr r4, [{pa}], #4",
            ".endm",
            "ldr r4, [r0, #16]",
            "push {{r4}}",
            "ldm r0, {{r0, r1, r2, r3}}",
            // [sp]: buf, rb, pairs, out, ostep
            "push {{r0, r1, r2, r3}}",
            "5:",
            "ldr {pa}, [sp]",
            "vldmia {pa}!, {{s16-s31}}",
            "2:",
            "egpt_dsp_pair s16, s17, s24, s25",
            "cbnz r4, 6f",
            "b 3f",
            "6:",
            "egpt_dsp_pair s18, s19, s26, s27",
            "cbnz r4, 6f",
            "b 3f",
            "6:",
            "egpt_dsp_pair s20, s21, s28, s29",
            "cbnz r4, 6f",
            "b 3f",
            "6:",
            "egpt_dsp_pair s22, s23, s30, s31",
            "cmp r4, #0",
            "bne 2b",
            "3:",
            // fold by halves: acc[i] += acc[i + h] for h = 4, 2, 1
            "vadd.f32 s16, s16, s20",
            "vadd.f32 s17, s17, s21",
            "vadd.f32 s18, s18, s22",
            "vadd.f32 s19, s19, s23",
            "vadd.f32 s16, s16, s18",
            "vadd.f32 s17, s17, s19",
            "vadd.f32 s16, s16, s17",
            "vadd.f32 s24, s24, s28",
            "vadd.f32 s25, s25, s29",
            "vadd.f32 s26, s26, s30",
            "vadd.f32 s27, s27, s31",
            "vadd.f32 s24, s24, s26",
            "vadd.f32 s25, s25, s27",
            "vadd.f32 s24, s24, s25",
            "ldrd r0, r1, [sp, #12]",
            "vstr s16, [r0]",
            "add r0, r0, r1",
            "vstr s24, [r0]",
            "add r0, r0, r1",
            "str r0, [sp, #12]",
            // the next pair: p0 is at row 1 now, p1 at row 2
            "ldr r0, [sp, #4]",
            "mov {p0}, {p1}",
            "add {p1}, {p1}, r0",
            "ldr r0, [sp, #8]",
            "subs r0, r0, #1",
            "str r0, [sp, #8]",
            "bne 5b",
            "add sp, sp, #20",
            ".purgem egpt_dsp_pair",
            ".purgem egpt_dsp_f",
            ".purgem egpt_dsp_w2",
            ".purgem egpt_dsp_w01",
            pa = out(reg) _,
            p0 = inout(reg) p0 => _,
            p1 = inout(reg) p1 => _,
            w0 = out(reg) _, w1 = out(reg) _, c0 = out(reg) _, c1 = out(reg) _,
            inout("r0") job as *const Job => _, out("r1") _, out("r2") _, out("r3") _,
            out("r4") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _, out("d4") _, out("d5") _,
            out("d6") _, out("d7") _, out("d8") _, out("d9") _, out("d10") _, out("d11") _,
            out("d12") _, out("d13") _, out("d14") _, out("d15") _,
        );
    }
}

/// Batched Q4_0 x Q8_0 (the table's `gemm_q4_0_q8_0`): the whole-row kernel
/// ([`q4_rows_all`]) when the rows allow it, else 2 rows at a time.
pub fn gemm_q4_0_q8_0(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) {
    if whole_rows_q4(w, rows, x, n, out) {
        return;
    }
    gemm_by::<2>(
        w,
        rows,
        x,
        n,
        out,
        18,
        rows_q4_0_q8_0::<2>,
        vec_dot_q4_0_q8_0,
    )
}

// ---- the whole-row Q4_0 kernel ---------------------------------------------
//
// Two Q4_0 blocks are 36 bytes = 9 words: word 0 holds block 0's scale and
// nibble bytes 0-1, words 1-3 bytes 2-13, word 4 bytes 14-15 and block 1's
// scale, words 5-8 block 1's bytes. `PKHBT` joins words 4 and 0 into one word
// of nibble bytes (14, 15, 0, 1), so a pair is 8 nibble words. Byte `k` holds
// elements `k` (low nibble) and `k + 16` (high); with the mask `0x000f000f` in a
// register, one `AND` (with the word shifted right by 0, 8, 4 or 12) gives two
// nibbles as halfwords, and one `SMLAD` multiplies them with two activations
// widened beforehand (the records): 8 instructions per 8 multiply-accumulates.
// The offset 8 is the records' `-8 * sum(a)`, which starts each block's sum.
// One row at a time (the mask register leaves none for a second row's
// pointer and sum), its 8 lanes in s16-s23; the loop over the rows is in the
// assembly too. Each row sees the scalar float operations in the scalar order.

/// Words per Q4_0 pair record: block 0's `-8 * sum`, 4 nibble words x 4
/// widened activation words, block 1's `-8 * sum`, 4 x 4 words, the two f32
/// scales, and 1 if another pair follows (else 0).
#[cfg(all(target_abi = "eabihf", not(feature = "helium")))]
const REC4_WORDS: usize = 37;
/// The Q4_0 record buffer: 8 zero words (loaded into the lanes), the records.
#[cfg(all(target_abi = "eabihf", not(feature = "helium")))]
const BUF4_WORDS: usize = 8 + MAX_NB / 2 * REC4_WORDS;

/// Writes the pair records of `x` (an even number `nb <= MAX_NB` of blocks)
/// into `buf` after its 8-word header.
#[cfg(all(target_abi = "eabihf", not(feature = "helium")))]
fn records_q4(x: &[BlockQ8_0], buf: &mut [core::mem::MaybeUninit<u32>; BUF4_WORDS]) {
    let np = x.len() / 2;
    let (head, recs) = buf.split_at_mut(8);
    for h in head {
        h.write(0);
    }
    let (pairs, _) = x.as_chunks::<2>();
    let (rec_arrays, _) = recs.as_chunks_mut::<REC4_WORDS>();
    for (k, ([b0, b1], rec)) in pairs.iter().zip(rec_arrays.iter_mut()).enumerate() {
        let mut at = 0;
        for (first, b) in [(true, b0), (false, b1)] {
            let a = b.qs.as_ptr().cast::<u8>();
            let neg8 = b.qs.iter().map(|&q| i32::from(q)).sum::<i32>() * -8;
            if let Some(v) = rec.get_mut(at) {
                v.write(neg8 as u32);
            }
            at += 1;
            for i in 0..4 {
                // Nibble word `i` of the block: bytes 4i..4i+4, except that block
                // 0's word 0 is bytes (14, 15, 0, 1) (see above) and its words
                // 1-3 are bytes 4i-2..4i+2.
                // SAFETY: every `word` read is at an offset of at most 28 into a
                // 32-byte `qs`.
                let (lo, hi) = unsafe {
                    if first && i == 0 {
                        (
                            (word(a.add(12)) >> 16) | (word(a) << 16),
                            (word(a.add(28)) >> 16) | (word(a.add(16)) << 16),
                        )
                    } else if first {
                        (word(a.add(4 * i - 2)), word(a.add(4 * i + 14)))
                    } else {
                        (word(a.add(4 * i)), word(a.add(4 * i + 16)))
                    }
                };
                for v in [sxtb16(lo), sxtb16_ror8(lo), sxtb16(hi), sxtb16_ror8(hi)] {
                    if let Some(r) = rec.get_mut(at) {
                        r.write(v);
                    }
                    at += 1;
                }
            }
        }
        rec[34].write(super::f16_to_f32(b0.d).to_bits());
        rec[35].write(super::f16_to_f32(b1.d).to_bits());
        rec[36].write(u32::from(k + 1 < np));
    }
}

/// The batched form (layout and shape checks of `scalar::gemm_with`) through
/// [`q4_rows_all`]. Returns false (doing nothing) unless every row starts
/// word-aligned with an even number of blocks, at most [`MAX_NB`] (hard-float
/// targets only).
#[cfg(all(target_abi = "eabihf", not(feature = "helium")))]
fn whole_rows_q4(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) -> bool {
    if rows == 0 || n == 0 || !x.len().is_multiple_of(n) {
        return false;
    }
    let nb = x.len() / n;
    let rb = nb * 18;
    if nb == 0 || !nb.is_multiple_of(2) || nb > MAX_NB || w.len() != rows * rb {
        return false;
    }
    if out.len() < rows * n || !(w.as_ptr() as usize).is_multiple_of(4) || n > 1 << 20 {
        return false;
    }
    let mut buf = [core::mem::MaybeUninit::<u32>::uninit(); BUF4_WORDS];
    for t in 0..n {
        let xr = x.get(t * nb..(t + 1) * nb).unwrap_or(&[]);
        records_q4(xr, &mut buf);
        let job = Job {
            buf: buf.as_mut_ptr().cast::<u32>(),
            rb: rb as u32,
            groups: rows as u32,
            out: out.as_mut_ptr().wrapping_add(t),
            ostep: (4 * n) as u32,
        };
        // SAFETY: the `rows >= 1` rows of `w` (`w.len() == rows * rb`) are
        // contiguous and word-aligned (`w` is, and `rb = 36 * nb / 2`), `nb / 2
        // >= 1` pairs each; `buf` holds the header and `nb / 2` records (the
        // last with a 0 flag); row `i`'s result goes to `out[i * n + t]`, inside
        // `out` (`out.len() >= rows * n`).
        unsafe { q4_rows_all(&job, w.as_ptr()) };
    }
    true
}

/// Without an FPU the whole-row kernel is not built; nor with Helium, whose
/// own Q4_0 kernel is the one used there (this one would only be code size).
#[cfg(any(not(target_abi = "eabihf"), feature = "helium"))]
fn whole_rows_q4(_: &[u8], _: usize, _: &[BlockQ8_0], _: usize, _: &mut [f32]) -> bool {
    false
}

/// `job.groups` contiguous rows of Q4_0 blocks from `p` times the pair records
/// in `job.buf` (see [`records_q4`]): each row's 8 lanes, folded by halves as
/// `scalar::fold_lanes` does, stored at `job.out + i * job.ostep` (row `i`).
///
/// # Safety
/// `p` must be word-aligned and the rows readable for as many 36-byte pairs as
/// `buf` has records (at least one; the last with flag 0); `buf` must hold the
/// 8 zero words and the records; the results must be writable. Needs the FPU
/// (enabled) and the DSP extension.
#[cfg(all(target_abi = "eabihf", not(feature = "helium")))]
#[inline(never)]
unsafe fn q4_rows_all(job: &Job, p: *const u8) {
    // SAFETY: reads the rows and the records the caller guarantees, writes the
    // results; pushes 20 bytes (popped at the end); writes only the declared
    // registers (r0-r4, the allocated ones, s0-s31 as d0-d15); SMLAD may set
    // the Q flag and `subs` sets the flags (no `preserves_flags`). The
    // assembler macros are removed at the end, so the block can be emitted more
    // than once.
    unsafe {
        asm!(
            // one nibble word `w` into sum `c`: 4 x (AND with the mask, SMLAD)
            ".macro egpt_q4_w w, c",
            "ldm {pa}!, {{r0, r1, r2, r3}}",
            "and r4, {m}, \\w",
            "smlad \\c, r4, r0, \\c",
            "and r4, {m}, \\w, lsr #8",
            "smlad \\c, r4, r1, \\c",
            "and r4, {m}, \\w, lsr #4",
            "smlad \\c, r4, r2, \\c",
            "and r4, {m}, \\w, lsr #12",
            "smlad \\c, r4, r3, \\c",
            ".endm",
            // one pair of blocks into lanes (la, lb)
            ".macro egpt_q4_pair la, lb",
            "ldr {c0}, [{pa}], #4",
            "ldrd {w0}, {w1}, [{p}], #36",
            "ldr r4, [{p}, #-20]",
            "vmov s2, s3, {w0}, r4",
            "pkhbt {w0}, r4, {w0}",
            "egpt_q4_w {w0}, {c0}",
            "egpt_q4_w {w1}, {c0}",
            "ldrd {w0}, {w1}, [{p}, #-28]",
            "egpt_q4_w {w0}, {c0}",
            "egpt_q4_w {w1}, {c0}",
            "ldr {c1}, [{pa}], #4",
            "ldrd {w0}, {w1}, [{p}, #-16]",
            "egpt_q4_w {w0}, {c1}",
            "egpt_q4_w {w1}, {c1}",
            "ldrd {w0}, {w1}, [{p}, #-8]",
            "egpt_q4_w {w0}, {c1}",
            "egpt_q4_w {w1}, {c1}",
            "vmov s4, s5, {c0}, {c1}",
            "vldmia {pa}!, {{s0, s1}}",
            "vcvtb.f32.f16 s2, s2",
            "vcvtt.f32.f16 s3, s3",
            "vmul.f32 s2, s2, s0",
            "vmul.f32 s3, s3, s1",
            "vcvt.f32.s32 s4, s4",
            "vcvt.f32.s32 s5, s5",
            "vmul.f32 s4, s4, s2",
            "vmul.f32 s5, s5, s3",
            "vadd.f32 \\la, \\la, s4",
            "vadd.f32 \\lb, \\lb, s5",
            "ldr r4, [{pa}], #4",
            ".endm",
            "ldr r4, [r0, #16]",
            "push {{r4}}",
            "ldm r0, {{r0, r1, r2, r3}}",
            // [sp]: buf, rb, rows, out, ostep
            "push {{r0, r1, r2, r3}}",
            "mov.w {m}, #0x000f000f",
            "5:",
            "ldr {pa}, [sp]",
            "vldmia {pa}!, {{s16-s23}}",
            "2:",
            "egpt_q4_pair s16, s17",
            "cbnz r4, 6f",
            "b 3f",
            "6:",
            "egpt_q4_pair s18, s19",
            "cbnz r4, 6f",
            "b 3f",
            "6:",
            "egpt_q4_pair s20, s21",
            "cbnz r4, 6f",
            "b 3f",
            "6:",
            "egpt_q4_pair s22, s23",
            "cmp r4, #0",
            "bne 2b",
            "3:",
            // fold by halves: acc[i] += acc[i + h] for h = 4, 2, 1
            "vadd.f32 s16, s16, s20",
            "vadd.f32 s17, s17, s21",
            "vadd.f32 s18, s18, s22",
            "vadd.f32 s19, s19, s23",
            "vadd.f32 s16, s16, s18",
            "vadd.f32 s17, s17, s19",
            "vadd.f32 s16, s16, s17",
            "ldrd r0, r1, [sp, #12]",
            "vstr s16, [r0]",
            "add r0, r0, r1",
            "str r0, [sp, #12]",
            // `p` is at the next row already (the rows are contiguous)
            "ldr r0, [sp, #8]",
            "subs r0, r0, #1",
            "str r0, [sp, #8]",
            "bne 5b",
            "add sp, sp, #20",
            ".purgem egpt_q4_pair",
            ".purgem egpt_q4_w",
            pa = out(reg) _,
            p = inout(reg) p => _,
            m = out(reg) _,
            w0 = out(reg) _, w1 = out(reg) _, c0 = out(reg) _, c1 = out(reg) _,
            inout("r0") job as *const Job => _, out("r1") _, out("r2") _, out("r3") _,
            out("r4") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _, out("d4") _, out("d5") _,
            out("d6") _, out("d7") _, out("d8") _, out("d9") _, out("d10") _, out("d11") _,
            out("d12") _, out("d13") _, out("d14") _, out("d15") _,
        );
    }
}

// ---- activation quantization -------------------------------------------------
//
// Per 32-value block, as `scalar::quantize_row_q8_0`: `amax = max |x|` (f32::max,
// so NaNs are skipped), `d = amax / 127`, `id = 1 / d` (0 if d == 0), `q =
// rintf(x * id) as i8`, `d` stored as f16. On the FPv4-SP FPU (FPv5 on M7/M33):
// - amax on the bits, `max(bits(x) << 1)` (see [`super::block_scales`]): per
//   value one `CMP` with a shifted operand and one branch, not taken unless
//   the running maximum grows (a handful of times per block);
// - `VMUL.F32` by `id` (the reference's own multiply, subnormals included:
//   this FPU does not flush them unless FPSCR.FZ says so), `VCVTR.S32.F32`
//   (round to nearest, ties to even, as `rintf` in that mode; NaN to 0), and
//   the low byte of the integer stored: `|x * id| <= 127 * (1 + 2^-21)` on the
//   blocks taken here (`block_scales`), so it is `as i8` of the rounded value;
// - `d` to f16 by `VCVTB.F16.F32` ([`super::f32_to_f16`]).
// Blocks with a NaN or with `0 < amax < 2^-100` (where `as i8` saturates or `id`
// is infinite) go through the scalar reference, as does every block while
// FPSCR does not hold the IEEE defaults ([`super::fpscr_is_ieee`]): `VCVTR`
// and `VCVTB` round as FPSCR says, the software `rintf` (an add trick) and f16
// conversion do not follow it the same way (tests/cortex_m.rs runs each mode).

#[cfg(target_abi = "eabihf")]
use super::{block_scales, f32_to_f16, fpscr_is_ieee};
#[cfg(target_abi = "eabihf")]
use crate::kernels::scalar;
#[cfg(not(target_abi = "eabihf"))]
pub use crate::kernels::scalar::{quantize_row_q8_0, quantize_row_q8_1};
#[cfg(target_abi = "eabihf")]
use crate::quant::{BlockQ8_1, QK};

/// One value of [`amax2_block`]: `{m} = max({m}, r << 1)`, the update out of
/// line at label `7n` (see [`amax_fix`]), continuing at `8n`.
#[cfg(target_abi = "eabihf")]
macro_rules! amax_step {
    ($r:literal, $n:literal) => {
        concat!("cmp {m}, ", $r, ", lsl #1\nblo 7", $n, "f\n8", $n, ":\n")
    };
}

/// The out-of-line update of [`amax_step`].
#[cfg(target_abi = "eabihf")]
macro_rules! amax_fix {
    ($r:literal, $n:literal) => {
        concat!("7", $n, ":\n", "lsls {m}, ", $r, ", #1\n", "b 8", $n, "b\n")
    };
}

/// `max(bits(x[i]) << 1)` over one block of 32 values.
///
/// # Safety
/// `x` must point to 32 readable, 4-byte aligned f32.
#[cfg(target_abi = "eabihf")]
#[inline(always)]
unsafe fn amax2_block(x: *const f32) -> u32 {
    let m: u32;
    // SAFETY: reads the 128 bytes at `x` (4-byte aligned, as `LDM` needs;
    // guaranteed by the caller); writes only the declared registers and flags.
    unsafe {
        asm!(
            "movs {m}, #0",
            "add {e}, {x}, #128",
            "2:",
            "ldm {x}!, {{r2, r3, r4, r5, r8, r9, r10, r12}}",
            amax_step!("r2", "2"),
            amax_step!("r3", "3"),
            amax_step!("r4", "4"),
            amax_step!("r5", "5"),
            amax_step!("r8", "6"),
            amax_step!("r9", "7"),
            amax_step!("r10", "8"),
            amax_step!("r12", "9"),
            "cmp {x}, {e}",
            "bne 2b",
            "b 3f",
            amax_fix!("r2", "2"),
            amax_fix!("r3", "3"),
            amax_fix!("r4", "4"),
            amax_fix!("r5", "5"),
            amax_fix!("r8", "6"),
            amax_fix!("r9", "7"),
            amax_fix!("r10", "8"),
            amax_fix!("r12", "9"),
            "3:",
            x = inout(reg) x => _,
            m = out(reg) m,
            e = out(reg) _,
            out("r2") _, out("r3") _, out("r4") _, out("r5") _,
            out("r8") _, out("r9") _, out("r10") _, out("r12") _,
            options(pure, readonly, nostack),
        );
    }
    m
}

/// `q[i] = round_half_even(x[i] * id)` as i8, for one block of 32 whose
/// products are at most 127.5 in magnitude (see the section comment).
///
/// # Safety
/// `x` must point to 32 readable, 4-byte aligned f32 and `q` to 32 writable
/// bytes. FPSCR must hold the IEEE defaults ([`fpscr_is_ieee`]).
#[cfg(target_abi = "eabihf")]
#[inline(always)]
unsafe fn quant_block(x: *const f32, id: f32, q: *mut i8) {
    // SAFETY: reads 128 bytes at `x` (4-byte aligned, as `VLDM` needs) and
    // writes 32 at `q` (guaranteed by the caller); the registers written are
    // declared; the float instructions may set FPSCR flags, hence no
    // `preserves_flags`.
    unsafe {
        asm!(
            "vmov s15, {id}",
            "add {e}, {x}, #128",
            "2:",
            "vldmia {x}!, {{s0-s7}}",
            "vmul.f32 s0, s0, s15",
            "vmul.f32 s1, s1, s15",
            "vmul.f32 s2, s2, s15",
            "vmul.f32 s3, s3, s15",
            "vmul.f32 s4, s4, s15",
            "vmul.f32 s5, s5, s15",
            "vmul.f32 s6, s6, s15",
            "vmul.f32 s7, s7, s15",
            "vcvtr.s32.f32 s0, s0",
            "vcvtr.s32.f32 s1, s1",
            "vcvtr.s32.f32 s2, s2",
            "vcvtr.s32.f32 s3, s3",
            "vcvtr.s32.f32 s4, s4",
            "vcvtr.s32.f32 s5, s5",
            "vcvtr.s32.f32 s6, s6",
            "vcvtr.s32.f32 s7, s7",
            "vmov r2, r3, s0, s1",
            "strb r2, [{q}], #1",
            "strb r3, [{q}], #1",
            "vmov r2, r3, s2, s3",
            "strb r2, [{q}], #1",
            "strb r3, [{q}], #1",
            "vmov r2, r3, s4, s5",
            "strb r2, [{q}], #1",
            "strb r3, [{q}], #1",
            "vmov r2, r3, s6, s7",
            "strb r2, [{q}], #1",
            "strb r3, [{q}], #1",
            "cmp {x}, {e}",
            "bne 2b",
            x = inout(reg) x => _,
            q = inout(reg) q => _,
            id = in(reg) id.to_bits(),
            e = out(reg) _,
            out("r2") _, out("r3") _,
            out("d0") _, out("d1") _, out("d2") _, out("d3") _,
            out("d4") _, out("d5") _, out("d6") _, out("d7") _,
            options(nostack),
        );
    }
}

/// Sum of the 32 signed bytes at `q`: `SXTAB16` adds bytes 0 and 2 (then 1
/// and 3) of each word to two halfword lanes (at most 16 * 128 each, no
/// overflow), folded at the end.
///
/// # Safety
/// `q` must point to 32 readable bytes (any alignment: `LDR` loads unaligned
/// words on Armv7E-M).
#[cfg(target_abi = "eabihf")]
#[inline(always)]
unsafe fn sum_i8x32(q: *const i8) -> i32 {
    let s: i32;
    // SAFETY: reads the 32 bytes at `q` (guaranteed by the caller); writes only
    // the declared registers and flags.
    unsafe {
        asm!(
            "movs {s}, #0",
            "add {e}, {q}, #32",
            "2:",
            "ldr {w}, [{q}], #4",
            "sxtab16 {s}, {s}, {w}",
            "sxtab16 {s}, {s}, {w}, ror #8",
            "ldr {w}, [{q}], #4",
            "sxtab16 {s}, {s}, {w}",
            "sxtab16 {s}, {s}, {w}, ror #8",
            "cmp {q}, {e}",
            "bne 2b",
            "sxth {w}, {s}",
            "add {s}, {w}, {s}, asr #16",
            q = inout(reg) q => _,
            s = out(reg) s,
            e = out(reg) _,
            w = out(reg) _,
            options(pure, readonly, nostack),
        );
    }
    s
}

/// One block's quants into `qs` and its `d`, or `None` (nothing written) for
/// the blocks the scalar reference takes: NaN or tiny amax, or an FPSCR
/// without the IEEE defaults (checked per block, so that no state is assumed
/// across calls). Shared by both row functions (one copy of the code).
#[cfg(target_abi = "eabihf")]
#[inline(never)]
fn block_q8(xb: &[f32; QK], qs: &mut [i8; QK]) -> Option<f32> {
    if !fpscr_is_ieee() {
        return None;
    }
    // SAFETY: `xb` is 32 f32 (4-byte aligned, as every f32 is).
    let m = unsafe { amax2_block(xb.as_ptr()) };
    let (d, id) = block_scales(m)?;
    // SAFETY: as above; `qs` is 32 writable bytes; FPSCR checked above.
    unsafe { quant_block(xb.as_ptr(), id, qs.as_mut_ptr()) };
    Some(d)
}

/// Quantize activations to Q8_0 blocks, bit-identical to
/// `scalar::quantize_row_q8_0` (`x.len() == 32 * y.len()`; extra input or
/// output is left alone, as there).
#[cfg(target_abi = "eabihf")]
pub fn quantize_row_q8_0(x: &[f32], y: &mut [BlockQ8_0]) {
    for (xb, yb) in x.as_chunks::<QK>().0.iter().zip(y.iter_mut()) {
        match block_q8(xb, &mut yb.qs) {
            Some(d) => yb.d = f32_to_f16(d),
            None => scalar::quantize_row_q8_0(xb, core::slice::from_mut(yb)),
        }
    }
}

/// Quantize activations to Q8_1 blocks, bit-identical to
/// `scalar::quantize_row_q8_1` (Q8_0 plus `s = d * sum(qs)`).
#[cfg(target_abi = "eabihf")]
pub fn quantize_row_q8_1(x: &[f32], y: &mut [BlockQ8_1]) {
    for (xb, yb) in x.as_chunks::<QK>().0.iter().zip(y.iter_mut()) {
        match block_q8(xb, &mut yb.qs) {
            Some(d) => {
                // SAFETY: `yb.qs` is 32 bytes.
                let sum = unsafe { sum_i8x32(yb.qs.as_ptr()) };
                yb.d = f32_to_f16(d);
                yb.s = f32_to_f16(d * sum as f32);
            }
            None => scalar::quantize_row_q8_1(xb, core::slice::from_mut(yb)),
        }
    }
}
