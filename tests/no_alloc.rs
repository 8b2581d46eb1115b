//! Zero heap allocations on the hot path: `Model::load`, `Context::arena_size`,
//! `Context::new` into a pre-made arena and many `eval` / `eval_all` /
//! `rewind` / `reset` / `logits` calls, measured by a counting global allocator.
//!
//! The core is `no_std` without `alloc`, so this mostly guards against a future
//! `std`-feature convenience sneaking into the core path. Only allocations made
//! by this thread while counting is switched on are counted (the test harness
//! allocates on other threads).

mod common;
use common::*;
use embergpt::{Context, ContextParams, Model};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ON: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // try_with: the thread-local may be gone while a thread shuts down.
    let _ = ON.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: forwards every call to the system allocator unchanged; the counter is
// a const-initialised thread-local Cell, which does not allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(p, l, n) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        note();
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Run `f` and return how many allocator calls this thread made inside it.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    COUNT.with(|c| c.set(0));
    ON.with(|on| on.set(true));
    let r = f();
    ON.with(|on| on.set(false));
    (r, COUNT.with(|c| c.get()))
}

#[test]
fn counter_sees_allocations() {
    let (v, n) = allocations(|| vec![1u8; 100]);
    assert!(n >= 1, "the counting allocator is not active");
    drop(v);
}

#[test]
#[cfg_attr(miri, ignore = "forward passes: minutes under Miri")]
fn load_new_eval_rewind_allocate_nothing() {
    // One fixture per weight type (every kernel), plus an untied model.
    let names = ["a.f32", "a.f16", "a.q8_0", "a.q4_0", "b.q4_1"];
    let rounds = 6;
    for name in names {
        let bytes = read_fixture(&format!("gpt2/{name}.gguf"));
        let p = ContextParams {
            n_ctx: 16,
            n_batch: 4,
            logits_all: true,
            backend: None,
            parallel: None,
        };
        let size = Model::load(&bytes)
            .and_then(|m| Context::arena_size(&m, &p))
            .unwrap();
        let mut arena = arena(size);
        let (sum, n) = allocations(|| {
            let model = Model::load(&bytes).unwrap();
            assert_eq!(Context::arena_size(&model, &p), Ok(size));
            let mut ctx = Context::new(model, &p, &mut arena).unwrap();
            let v = model.hparams().n_vocab as u32;
            let mut sum = 0.0f32;
            for r in 0..rounds {
                let toks = [r % v, (r * 7 + 3) % v, (r * 13 + 5) % v, 1];
                ctx.eval(&toks).unwrap();
                sum += ctx.logits().unwrap()[0];
                ctx.eval_all(&toks[..3]).unwrap();
                sum += ctx.all_logits().unwrap()[0];
                ctx.eval(&toks[..1]).unwrap();
                ctx.rewind(2).unwrap();
                ctx.eval(&toks[1..2]).unwrap();
                sum += ctx.logits().unwrap()[1];
                // Errors are values: they allocate nothing either.
                assert!(ctx.eval(&[v]).is_err());
                assert!(ctx.rewind(99).is_err());
                ctx.reset();
                assert!(ctx.logits().is_err());
            }
            sum
        });
        assert_eq!(n, 0, "{name}: {n} heap allocations on the hot path");
        std::hint::black_box(sum);
    }
}
