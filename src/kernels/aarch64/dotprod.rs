//! NEON + dotprod integer dots: `sdot` (four i8 products summed into each i32
//! lane), written with `asm!` because `vdotq_s32` is not stable.
//!
//! The safe entry points are only reachable through [`super::DOTPROD`], which
//! [`super::super::Kernels::new`] hands out after [`super::has_dotprod`].

use core::arch::aarch64::*;
use core::arch::asm;

use super::{dot_q4_0, dot_q4_1, dot_q8_0, BlockDot};
use crate::quant::{BlockQ8_0, BlockQ8_1};

/// `acc + sdot(a, b)`.
///
/// # Safety
/// The CPU must have dotprod.
#[inline]
#[target_feature(enable = "dotprod")]
unsafe fn sdot(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    let mut r = acc;
    // SAFETY: the caller guarantees dotprod; registers only.
    unsafe {
        asm!("sdot {0:v}.4s, {1:v}.16b, {2:v}.16b", inout(vreg) r, in(vreg) a, in(vreg) b,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// Block dots with `sdot`.
pub(super) struct Sdot;

impl BlockDot for Sdot {
    #[inline]
    #[target_feature(enable = "dotprod")]
    unsafe fn dot_i8(a0: int8x16_t, b0: int8x16_t, a1: int8x16_t, b1: int8x16_t) -> int32x4_t {
        // SAFETY: forwarded from the caller (dotprod present).
        unsafe { sdot(sdot(vdupq_n_s32(0), a0, b0), a1, b1) }
    }

    #[inline]
    #[target_feature(enable = "dotprod")]
    unsafe fn dot_i4(a0: int8x16_t, b0: int8x16_t, a1: int8x16_t, b1: int8x16_t) -> int32x4_t {
        // SAFETY: forwarded from the caller (dotprod present).
        unsafe { Self::dot_i8(a0, b0, a1, b1) }
    }
}

/// # Safety
/// The CPU must have dotprod.
#[target_feature(enable = "dotprod")]
unsafe fn q8_0_dp(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    // SAFETY: dotprod is present (this function's contract).
    unsafe { dot_q8_0::<Sdot>(w, x) }
}

/// # Safety
/// The CPU must have dotprod.
#[target_feature(enable = "dotprod")]
unsafe fn q4_0_dp(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    // SAFETY: dotprod is present (this function's contract).
    unsafe { dot_q4_0::<Sdot>(w, x) }
}

/// # Safety
/// The CPU must have dotprod.
#[target_feature(enable = "dotprod")]
unsafe fn q4_1_dp(w: &[u8], x: &[BlockQ8_1]) -> f32 {
    // SAFETY: dotprod is present (this function's contract).
    unsafe { dot_q4_1::<Sdot>(w, x) }
}

/// Q8_0 x Q8_0 (dotprod).
pub(super) fn vec_dot_q8_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    // SAFETY: only reachable through the DOTPROD table, built after has_dotprod().
    unsafe { q8_0_dp(w, x) }
}

/// Q4_0 x Q8_0 (dotprod).
pub(super) fn vec_dot_q4_0_q8_0(w: &[u8], x: &[BlockQ8_0]) -> f32 {
    // SAFETY: only reachable through the DOTPROD table, built after has_dotprod().
    unsafe { q4_0_dp(w, x) }
}

/// Q4_1 x Q8_1 (dotprod).
pub(super) fn vec_dot_q4_1_q8_1(w: &[u8], x: &[BlockQ8_1]) -> f32 {
    // SAFETY: only reachable through the DOTPROD table, built after has_dotprod().
    unsafe { q4_1_dp(w, x) }
}
