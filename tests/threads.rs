//! Threads change no bit: whole forward passes (GPT-2 and Llama, prefill,
//! chunked prefill and decode) through the std `ThreadPool` and through test
//! hooks that run tasks in reverse or on scoped threads, against the same
//! context without a hook; the pool's hand-off under stress (several callers,
//! sleeping workers, drop); and that the element-wise ops fused into the
//! matmul tasks give the same bits on any sub-slice of a row.

mod common;
use common::*;
use core::ffi::c_void;
use embergpt::kernels::parallel::{TaskFn, ThreadPool};
use embergpt::{Context, ContextParams, GgmlType, Model, ParallelFor};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs every task on the calling thread, last index first (a split that
/// depended on task order would show).
unsafe extern "C" fn reverse_run(user: *mut c_void, n: usize, task: TaskFn, data: *const c_void) {
    // SAFETY: `user` is the &'static AtomicUsize of `reverse_hook`.
    unsafe { &*(user as *const AtomicUsize) }.fetch_add(1, Ordering::Relaxed);
    for i in (0..n).rev() {
        // SAFETY: the core's task contract.
        unsafe { task(data, i) };
    }
}

static REVERSE_CALLS: AtomicUsize = AtomicUsize::new(0);

/// A hook that claims 5 threads but runs tasks serially in reverse.
fn reverse_hook() -> ParallelFor {
    // SAFETY: `reverse_run` runs every task once and returns after all of them.
    unsafe { ParallelFor::new(reverse_run, &REVERSE_CALLS as *const _ as *mut c_void, 5) }
}

/// The task data pointer, shared with the spawned threads.
#[derive(Clone, Copy)]
struct Data(*const c_void);
// SAFETY: the core's task data is meant to be used from any thread (ParallelFor's contract).
unsafe impl Send for Data {}

/// One scoped thread per task.
unsafe extern "C" fn scoped_run(_: *mut c_void, n: usize, task: TaskFn, data: *const c_void) {
    let d = Data(data);
    std::thread::scope(|s| {
        for i in 0..n {
            s.spawn(move || {
                let d = d;
                // SAFETY: the core's task contract.
                unsafe { task(d.0, i) }
            });
        }
    });
}

fn scoped_hook(threads: usize) -> ParallelFor {
    // SAFETY: `scoped_run` runs every task once and joins them all.
    unsafe { ParallelFor::new(scoped_run, core::ptr::null_mut(), threads) }
}

/// Every hook the tests compare against the single-threaded pass.
fn hooks() -> Vec<(String, ParallelFor)> {
    vec![
        ("pool(2)".into(), ThreadPool::leak(2).hook()),
        ("pool(3)".into(), ThreadPool::leak(3).hook()),
        ("reverse(5)".into(), reverse_hook()),
        ("scoped(4)".into(), scoped_hook(4)),
    ]
}

/// The logits of `tokens` evaluated three ways in one context: `eval_all` of
/// the first `n_batch` tokens, then the rest in chunks of 3, then decode one
/// token at a time; every step's logits concatenated.
fn run(bytes: &[u8], tokens: &[u32], n_batch: usize, parallel: Option<ParallelFor>) -> Vec<f32> {
    let model = Model::load(bytes).expect("load");
    let p = ContextParams {
        n_ctx: tokens.len() + 8,
        n_batch,
        logits_all: true,
        parallel,
        ..Default::default()
    };
    let mut mem = arena(Context::arena_size(&model, &p).expect("arena size"));
    let mut ctx = Context::new(model, &p, &mut mem).expect("context");
    let mut out = Vec::new();
    let (first, rest) = tokens.split_at(n_batch.min(tokens.len()));
    ctx.eval_all(first).expect("eval_all");
    out.extend_from_slice(ctx.all_logits().expect("logits"));
    let (mid, tail) = rest.split_at(rest.len() / 2);
    for c in mid.chunks(3) {
        ctx.eval_all(c).expect("eval_all chunk");
        out.extend_from_slice(ctx.all_logits().expect("logits"));
    }
    for &t in tail {
        ctx.eval(&[t]).expect("decode");
        out.extend_from_slice(ctx.logits().expect("logits"));
    }
    out
}

fn assert_bits(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    if let Some(i) = (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits()) {
        panic!("{what}: logit {i} differs: {} vs {}", got[i], want[i]);
    }
}

fn check_model(name: &str, bytes: &[u8], tokens: &[u32], n_batch: usize) {
    let want = run(bytes, tokens, n_batch, None);
    for (hook, p) in hooks() {
        let got = run(bytes, tokens, n_batch, Some(p));
        assert_bits(&got, &want, &format!("{name} with {hook}"));
    }
}

#[test]
fn gpt2_fixtures_bit_identical_through_every_hook() {
    let m = manifest();
    for model in m["models"].as_array().unwrap() {
        let name = model["name"].as_str().unwrap();
        let base: Vec<u32> = model["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        // Long enough that norms (8+ rows) and every matmul split across tasks.
        let tokens: Vec<u32> = base.iter().cycle().take(24).copied().collect();
        for ty in model["types"].as_array().unwrap() {
            let ty = ty.as_str().unwrap();
            let bytes = read_fixture(&format!("gpt2/{name}.{ty}.gguf"));
            check_model(&format!("gpt2 {name}.{ty}"), &bytes, &tokens, 12);
        }
    }
    assert!(
        REVERSE_CALLS.load(Ordering::Relaxed) > 0,
        "the reverse hook was never called"
    );
}

#[test]
fn llama_gqa_bit_identical_through_every_hook() {
    // The random HF Llama with grouped-query attention (tests/llama.rs), converted
    // by the CLI, in every weight type (K and V, and gate and up, share a
    // dispatch; two weight types in one dispatch are covered by the unit test
    // `matmul_then_pair_and_epilogue_equal_separate_matmuls` in src/kernels/mod.rs).
    let dir = fixture("llama/hf-tiny");
    for ty in [
        GgmlType::F32,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
    ] {
        let bytes = embergpt_cli::convert::convert(&dir, ty, None, false)
            .unwrap_or_else(|e| panic!("convert hf-tiny: {e}"))
            .to_bytes();
        let v = Model::load(&bytes).unwrap().hparams().n_vocab as u32;
        let tokens: Vec<u32> = (0..24u32).map(|i| (i * 37 + 5) % v).collect();
        check_model(&format!("llama hf-tiny {}", ty.name()), &bytes, &tokens, 12);
    }
}

/// SmolLM2-135M (n_head 9 over 3 kv heads: heads split unevenly over tasks).
#[test]
fn smollm2_bit_identical_with_the_pool() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".models/SmolLM2-135M-Instruct.Q4_1.gguf");
    if !path.exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "{} missing under CI=true (tests/scripts/fetch_smollm2.sh)",
                path.display()
            );
        }
        eprintln!(
            "SKIPPED: {} missing (run tests/scripts/fetch_smollm2.sh)",
            path.display()
        );
        return;
    }
    let bytes = std::fs::read(&path).unwrap();
    let tokens: Vec<u32> = (0..12u32).map(|i| 1 + i * 997 % 49000).collect();
    let want = run(&bytes, &tokens, 8, None);
    let got = run(&bytes, &tokens, 8, Some(ThreadPool::leak(2).hook()));
    assert_bits(&got, &want, "smollm2 with pool(2)");
}

// ---------------------------------------------------------------------------
// the pool itself
// ---------------------------------------------------------------------------

unsafe extern "C" fn bump(data: *const c_void, i: usize) {
    // SAFETY: data is a &Vec<AtomicUsize> long enough for every index run.
    let h = unsafe { &*(data as *const Vec<AtomicUsize>) };
    h[i].fetch_add(1, Ordering::SeqCst);
}

fn run_and_check(pool: &ThreadPool, hits: &Vec<AtomicUsize>, n: usize, what: &str) {
    // SAFETY: bump is callable from any thread.
    unsafe { pool.run(n, bump, hits as *const Vec<AtomicUsize> as *const c_void) };
    for (i, h) in hits.iter().enumerate() {
        assert_eq!(
            h.swap(0, Ordering::SeqCst),
            (i < n) as usize,
            "{what}: task {i} of {n}"
        );
    }
}

#[test]
fn pool_wakes_sleeping_workers_and_drops_cleanly() {
    let pool = ThreadPool::new(3);
    let hits: Vec<AtomicUsize> = (0..64).map(|_| AtomicUsize::new(0)).collect();
    for round in 0..6 {
        run_and_check(&pool, &hits, 1 + round * 11, "awake");
        // Idle workers go to sleep after 2 ms; the next job must wake them
        // (and run correctly whether they wake in time or not).
        std::thread::sleep(std::time::Duration::from_millis(5 * (round as u64 % 3)));
    }
    drop(pool); // joins sleeping workers
    let pool = ThreadPool::new(4);
    run_and_check(&pool, &hits, 7, "fresh");
    drop(pool); // joins spinning workers
}

#[test]
fn pool_serialises_concurrent_callers() {
    // Several contexts may share one pool: runs from different threads must
    // neither lose nor repeat a task.
    let pool = ThreadPool::leak(2);
    std::thread::scope(|s| {
        for c in 0..3 {
            s.spawn(move || {
                let hits: Vec<AtomicUsize> = (0..40).map(|_| AtomicUsize::new(0)).collect();
                for round in 0..2000 {
                    run_and_check(pool, &hits, 1 + (round * 7 + c) % 40, "concurrent");
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------
// the element-wise ops that tasks run on their own columns
// ---------------------------------------------------------------------------

#[test]
fn gelu_and_bias_give_the_same_bits_on_any_split_of_a_row() {
    // A matmul task applies bias and GELU to its own column range (a multiple
    // of 4 wide, at any multiple-of-4 offset); the result must equal the whole
    // row's, value for value.
    let mut s = 0x2545_f491_4f6c_dd1du64;
    let mut rnd = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 16.0
    };
    let row: Vec<f32> = (0..3072 + 20).map(|_| rnd()).collect();
    let bias: Vec<u8> = (0..row.len()).flat_map(|_| rnd().to_le_bytes()).collect();
    let mut whole = row.clone();
    embergpt::ops::add_bias(&mut whole, &bias);
    embergpt::ops::gelu(&mut whole);
    for cut in [1usize, 3, 4, 8, 12, 20, 36, 64, 100, 772, 1540] {
        let mut parts = row.clone();
        let mut r0 = 0;
        while r0 < parts.len() {
            let r1 = (r0 + cut).min(parts.len());
            embergpt::ops::add_bias(&mut parts[r0..r1], &bias[r0 * 4..]);
            embergpt::ops::gelu(&mut parts[r0..r1]);
            r0 = r1;
        }
        assert_bits(&parts, &whole, &format!("bias+gelu split every {cut}"));
    }
}
