//! The caller's bytes, carved into typed, aligned slices.
//!
//! Sizes are planned with [`Plan`] (a pure computation, no memory touched) and
//! then carved out of the caller's buffer with [`Arena`] in the same order, so
//! the planned size is exactly what carving consumes. Every slice starts on an
//! [`ALIGN`]-byte boundary; the plan adds `ALIGN - 1` bytes once for the start
//! of the caller's buffer, whose address may have any alignment.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
use crate::error::{Error, Result};
use crate::quant::{BlockQ8_0, BlockQ8_1};
use core::mem::{align_of, size_of};

/// Alignment of every carved slice (a cache line; enough for any SIMD load).
pub const ALIGN: usize = 64;

/// Types for which every bit pattern is a valid value and that have no
/// interior references, so that zeroed arena bytes may be viewed as them.
///
/// # Safety
/// Implement only for plain-old-data types: no padding-dependent invariants,
/// no references, every bit pattern valid, alignment at most [`ALIGN`].
pub unsafe trait Pod: Copy {}
// SAFETY: primitive numbers: every bit pattern is a valid value.
unsafe impl Pod for u8 {}
// SAFETY: as above.
unsafe impl Pod for u32 {}
// SAFETY: as above.
unsafe impl Pod for i32 {}
// SAFETY: as above.
unsafe impl Pod for f32 {}
// SAFETY: as above.
unsafe impl Pod for usize {}
// SAFETY: repr(C) struct of u16 and [i8; 32]: no padding, any bits valid.
unsafe impl Pod for BlockQ8_0 {}
// SAFETY: repr(C) struct of two u16 and [i8; 32]: no padding, any bits valid.
unsafe impl Pod for BlockQ8_1 {}

#[inline]
fn align_up(n: usize) -> Option<usize> {
    n.checked_add(ALIGN - 1).map(|v| v & !(ALIGN - 1))
}

/// A size planner: the pure twin of [`Arena`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Plan {
    size: usize,
    overflow: bool,
}

impl Plan {
    /// An empty plan.
    pub const fn new() -> Self {
        Plan {
            size: 0,
            overflow: false,
        }
    }
    /// Reserve `n` values of `T`.
    pub fn push<T: Pod>(&mut self, n: usize) -> &mut Self {
        let r = n
            .checked_mul(size_of::<T>())
            .and_then(align_up)
            .and_then(|b| self.size.checked_add(b));
        match r {
            Some(s) => self.size = s,
            None => self.overflow = true,
        }
        self
    }
    /// Total bytes a caller must provide (carved slices plus start alignment slack).
    pub fn total(&self) -> Result<usize> {
        if self.overflow {
            return Err(Error::BadParameter);
        }
        self.size.checked_add(ALIGN - 1).ok_or(Error::BadParameter)
    }
}

/// A bump allocator over the caller's bytes; slices it hands out live as long as the bytes.
pub struct Arena<'a> {
    rest: &'a mut [u8],
    used: usize,
    started: bool,
}

impl<'a> Arena<'a> {
    /// Wrap the caller's buffer.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Arena {
            rest: buf,
            used: 0,
            started: false,
        }
    }

    /// Bytes consumed so far (padding included).
    pub fn used(&self) -> usize {
        self.used
    }

    /// Bytes still free.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Skip `n` bytes (used to mirror [`Plan`]'s slack exactly).
    fn skip(&mut self, n: usize) -> Result<()> {
        let rest = core::mem::take(&mut self.rest);
        if n > rest.len() {
            self.rest = rest;
            return Err(Error::ArenaTooSmall {
                needed: self.used + n,
                available: self.used + self.rest.len(),
            });
        }
        let (_, tail) = rest.split_at_mut(n);
        self.rest = tail;
        self.used += n;
        Ok(())
    }

    /// Carve `n` zeroed values of `T`, aligned to [`ALIGN`]; the slice size is
    /// rounded up to a multiple of `ALIGN` exactly as [`Plan::push`] counts it.
    pub fn alloc<T: Pod>(&mut self, n: usize) -> Result<&'a mut [T]> {
        const { assert!(align_of::<T>() <= ALIGN) };
        if !self.started {
            // The first carve aligns the start; Plan::total reserved ALIGN - 1 for it.
            self.started = true;
            let pad = self.rest.as_ptr().align_offset(ALIGN);
            if pad >= ALIGN {
                return Err(Error::BadParameter);
            }
            self.skip(pad)?;
        }
        let bytes = n.checked_mul(size_of::<T>()).ok_or(Error::BadParameter)?;
        let padded = align_up(bytes).ok_or(Error::BadParameter)?;
        if padded > self.rest.len() {
            return Err(Error::ArenaTooSmall {
                needed: self.used.saturating_add(padded),
                available: self.used + self.rest.len(),
            });
        }
        let rest = core::mem::take(&mut self.rest);
        let (head, tail) = rest.split_at_mut(padded);
        self.rest = tail;
        self.used += padded;
        head.fill(0);
        let ptr = head.as_mut_ptr();
        debug_assert_eq!(ptr as usize % ALIGN, 0);
        // SAFETY: `head` is an exclusive borrow of `padded >= n * size_of::<T>()`
        // initialised (zeroed) bytes living for 'a; `ptr` is ALIGN-aligned (the
        // start was aligned and every carve is a multiple of ALIGN) and ALIGN >=
        // align_of::<T>(); T is Pod so zero bytes are a valid value; the borrow
        // of `head` is given up here and not used again.
        Ok(unsafe { core::slice::from_raw_parts_mut(ptr.cast::<T>(), n) })
    }
}
