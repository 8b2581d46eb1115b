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

/// Batched Q8_0 x Q8_0 (the table's `gemm_q8_0_q8_0`): 4 rows at a time.
pub fn gemm_q8_0_q8_0(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) {
    gemm_by::<4>(w, rows, x, n, out, 34, rows4_q8_0_q8_0, vec_dot_q8_0_q8_0)
}

/// Batched Q4_0 x Q8_0 (the table's `gemm_q4_0_q8_0`): 2 rows at a time.
pub fn gemm_q4_0_q8_0(w: &[u8], rows: usize, x: &[BlockQ8_0], n: usize, out: &mut [f32]) {
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
