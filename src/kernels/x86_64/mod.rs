//! x86_64 kernels: AVX2 (+FMA+F16C), AVX-VNNI and AVX-512 (F/BW/VL + VNNI).
//!
//! Every kernel returns the same bits as [`super::scalar`]: it follows the fixed
//! reduction order written there (float dots: 16 lanes, separate multiply and
//! add; quantized dots: one exact integer sum per block, one f32 term per block
//! into lane `j % 8`; lanes folded by halves).
//!
//! # Dispatch and safety
//! The CPU is probed once ([`features`]: CPUID + XGETBV, no std needed) and the
//! answer cached. The `#[target_feature]` functions are private; each is reached
//! only through a safe wrapper that lives in one of the tables [`table`] returns,
//! and [`table`] returns a table only when [`available`] says the CPU and the OS
//! support every feature that table's functions enable. That is the one
//! invariant every `// SAFETY:` comment in the wrappers relies on.
//!
//! Module map:
//! - [`common`]: the ISA-generic bodies (float dots, quantized tiles, quantize),
//!   written once over a small integer-dot trait;
//! - `avx2`: the quantized dots and tiles of [`avx2q`] (`vpmaddubsw` with the
//!   sign trick; `common`'s widening `vpmaddwd` tiles as the exact fallback for
//!   activation bytes of -128), and for Q8_0 prefill of rows up to 48 blocks the
//!   tokens-in-lanes GEMM of [`avx2w`] (`vpmaddwd` on i16, 8 tokens per ymm);
//! - `avxvnni` / `avx512`: `vpdpbusd` (u8 x i8 -> i32) with the weights made
//!   unsigned and the activation correction precomputed once per token.

#[cfg(not(miri))]
use core::sync::atomic::{AtomicU32, Ordering};

use super::{Backend, Kernels};

mod avx2q;
mod avx2w;
mod eltwise;
mod vnniq;
#[macro_use]
mod common;

/// Feature bits this module cares about (cached in [`CACHE`]).
const F_AVX2: u32 = 1 << 0; // AVX + AVX2 + FMA + F16C with OS YMM state
const F_AVXVNNI: u32 = 1 << 1; // AVX-VNNI (VEX vpdpbusd)
const F_AVX512: u32 = 1 << 2; // AVX-512 F+BW+VL+VNNI with OS ZMM/opmask state
const F_PROBED: u32 = 1 << 31;

#[cfg(not(miri))]
static CACHE: AtomicU32 = AtomicU32::new(0);

/// Probe the CPU (CPUID) and the OS (XGETBV) once.
#[cfg(not(miri))]
fn probe() -> u32 {
    use core::arch::x86_64::{__cpuid, __cpuid_count, _xgetbv};
    let bit = |r: u32, b: u32| r & (1 << b) != 0;
    #[allow(unused_unsafe)]
    // SAFETY: CPUID exists on every x86_64 CPU; leaf 0 reports the highest leaf.
    let max_leaf = unsafe { __cpuid(0) }.eax;
    #[allow(unused_unsafe)]
    // SAFETY: leaf 1 exists on every x86_64 CPU.
    let l1 = unsafe { __cpuid(1) };
    // OSXSAVE (ecx bit 27): the OS enabled XSAVE, so XGETBV may be executed.
    if !bit(l1.ecx, 27) || max_leaf < 7 {
        return 0;
    }
    // SAFETY: OSXSAVE is set (checked above), so XGETBV(0) is a valid instruction.
    let xcr0 = unsafe { _xgetbv(0) };
    let ymm_os = xcr0 & 0b110 == 0b110; // XMM (1) and YMM (2) state saved
    let zmm_os = ymm_os && xcr0 & 0b1110_0000 == 0b1110_0000; // opmask, ZMM_Hi256, Hi16_ZMM
    #[allow(unused_unsafe)]
    // SAFETY: leaf 7 is at most max_leaf (checked above).
    let l7 = unsafe { __cpuid_count(7, 0) };
    let l7_1 = if l7.eax >= 1 {
        #[allow(unused_unsafe)]
        // SAFETY: leaf 7 sub-leaf 1 exists when leaf 7 eax (max sub-leaf) >= 1.
        unsafe { __cpuid_count(7, 1) }.eax
    } else {
        0
    };
    let fma = bit(l1.ecx, 12);
    let avx = bit(l1.ecx, 28);
    let f16c = bit(l1.ecx, 29);
    let avx2 = bit(l7.ebx, 5);
    let mut f = 0;
    if ymm_os && avx && avx2 && fma && f16c {
        f |= F_AVX2;
        if bit(l7_1, 4) {
            f |= F_AVXVNNI;
        }
        let (a512f, a512bw, a512vl) = (bit(l7.ebx, 16), bit(l7.ebx, 30), bit(l7.ebx, 31));
        let vnni = bit(l7.ecx, 11);
        if zmm_os && a512f && a512bw && a512vl && vnni {
            f |= F_AVX512;
        }
    }
    f
}

/// The cached feature bits (probing on first use).
#[cfg(not(miri))]
fn features() -> u32 {
    let c = CACHE.load(Ordering::Relaxed);
    if c & F_PROBED != 0 {
        return c;
    }
    let f = probe() | F_PROBED;
    CACHE.store(f, Ordering::Relaxed);
    f
}

/// Miri cannot execute CPUID: report only what the build enables statically
/// (nothing by default, so only the scalar table is used). Building with e.g.
/// `-C target-feature=+avx2,+fma,+f16c,+avx512f,+avx512bw,+avx512vl,+avx512vnni`
/// lets Miri check those kernels (the build already assumes the features).
#[cfg(miri)]
fn features() -> u32 {
    let mut f = F_PROBED;
    if cfg!(all(
        target_feature = "avx",
        target_feature = "avx2",
        target_feature = "fma",
        target_feature = "f16c"
    )) {
        f |= F_AVX2;
    }
    if cfg!(target_feature = "avxvnni") {
        f |= F_AVXVNNI;
    }
    if cfg!(all(
        target_feature = "avx512f",
        target_feature = "avx512bw",
        target_feature = "avx512vl",
        target_feature = "avx512vnni"
    )) {
        f |= F_AVX512;
    }
    f
}

/// Whether the CPU and OS run `b` (false for non-x86 backends).
pub(crate) fn available(b: Backend) -> bool {
    let f = features();
    match b {
        Backend::Avx2 => f & F_AVX2 != 0,
        Backend::AvxVnni => f & F_AVX2 != 0 && f & F_AVXVNNI != 0,
        Backend::Avx512Vnni => f & F_AVX2 != 0 && f & F_AVX512 != 0,
        _ => false,
    }
}

/// The kernel table of `b`, only if [`available`] confirms it.
pub(crate) fn table(b: Backend) -> Option<Kernels> {
    if !available(b) {
        return None;
    }
    match b {
        Backend::Avx2 => Some(Kernels {
            packed_q8_0: Some(avx2::PACKED),
            ..avx2::TABLE
        }),
        Backend::AvxVnni => Some(avxvnni::TABLE),
        Backend::Avx512Vnni => Some(avx512::TABLE),
        _ => None,
    }
}

/// AVX2 + FMA + F16C: i8 x i8 widened to i16, `vpmaddwd` into i32.
mod avx2 {
    use super::common::{Avx2Int, Float256};
    x86_kernels!(
        "avx2,fma,f16c",
        Avx2Int,
        Float256,
        crate::kernels::Backend::Avx2
    );

    use crate::kernels::parallel::SharedOut;
    use crate::kernels::PackedQ8_0;

    #[target_feature(enable = "avx2,fma,f16c")]
    fn quant_packed_tf(x: &[f32], cols: usize, dst: &mut [BlockQ8_0]) {
        // SAFETY: this function's features are the body's contract.
        unsafe { super::avx2w::quantize_packed(x, cols, dst) }
    }
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn gemm_packed_tf(
        w: &[u8],
        rows: usize,
        xp: &[BlockQ8_0],
        nv: usize,
        out: &SharedOut,
        r_at: usize,
        stride: usize,
    ) -> bool {
        // SAFETY: the features are this function's; the output contract is
        // forwarded from the caller.
        unsafe { super::avx2w::gemm_packed(w, rows, xp, nv, out, r_at, stride) }
    }
    fn quantize_packed(x: &[f32], cols: usize, dst: &mut [BlockQ8_0]) {
        // SAFETY: reached only through PACKED, which `table` puts only in the
        // table it hands out after `available(Avx2)`.
        unsafe { quant_packed_tf(x, cols, dst) }
    }
    /// # Safety
    /// The output contract of [`PackedQ8_0::gemm`].
    unsafe fn gemm_packed(
        w: &[u8],
        rows: usize,
        xp: &[BlockQ8_0],
        nv: usize,
        out: &SharedOut,
        r_at: usize,
        stride: usize,
    ) -> bool {
        // SAFETY: reached only through PACKED (after detection, as above); the
        // output contract is the caller's.
        unsafe { gemm_packed_tf(w, rows, xp, nv, out, r_at, stride) }
    }
    /// The packed Q8_0 prefill of the AVX2 table.
    pub(super) const PACKED: PackedQ8_0 = PackedQ8_0 {
        max_nb: super::avx2w::PACKED_MAX_NB,
        quantize: quantize_packed,
        gemm: gemm_packed,
    };
}

/// AVX-VNNI: VEX-encoded 256-bit `vpdpbusd`; prefill batches of 4 or more
/// tokens go through the tokens-in-lanes GEMM of [`vnniq`] (8 lanes).
mod avxvnni {
    use super::common::{Float256, VnniInt};
    x86_kernels!(
        "avx2,fma,f16c,avxvnni",
        VnniInt,
        Float256,
        crate::kernels::Backend::AvxVnni
    );
}

/// The VNNI kernels with `vpdpbusd` emulated by AVX2 (test support only).
mod vnni_emulated {
    use super::common::{EmuDp, Float256, VnniGen};
    x86_kernels!(
        "avx2,fma,f16c",
        VnniGen<EmuDp>,
        Float256,
        crate::kernels::Backend::AvxVnni
    );
}

/// The emulated-VNNI table when AVX2 is available (test support only).
pub(crate) fn emulated_vnni_table() -> Option<Kernels> {
    available(Backend::Avx2).then_some(vnni_emulated::TABLE)
}

/// The AVX-512 table's integer kernels with the 512-bit operations emulated on
/// AVX2 (test support only; the float dots are the 256-bit ones, lane for lane
/// the same 16 lanes as the 512-bit form).
mod avx512_emulated {
    use super::common::{EmuDp512, Float256, VnniGen};
    x86_kernels!(
        "avx2,fma,f16c",
        VnniGen<EmuDp512>,
        Float256,
        crate::kernels::Backend::Avx512Vnni
    );
}

/// The emulated-AVX-512 table when AVX2 is available (test support only).
pub(crate) fn emulated_avx512_table() -> Option<Kernels> {
    available(Backend::Avx2).then_some(avx512_emulated::TABLE)
}

/// AVX-512 F/BW/VL + VNNI: EVEX `vpdpbusd` (32 vector registers); prefill
/// batches of 8 or more tokens go through the 512-bit tokens-in-lanes GEMM of
/// [`vnniq`] (16 lanes), the rest through the 256-bit EVEX tiles; 512-bit float dots.
mod avx512 {
    use super::common::{Float512, Vnni512Int};
    x86_kernels!(
        "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni",
        Vnni512Int,
        Float512,
        crate::kernels::Backend::Avx512Vnni
    );
}
