//! Every available SIMD backend against the scalar reference, bit for bit.
//!
//! Runs on any architecture: it tests whichever backends the running CPU has and
//! prints `SKIPPED: backend X not available on this CPU` for the others.
//! Equality is exact (`to_bits`), except that two NaNs are equal whatever their
//! payloads (Rust does not specify NaN bit patterns).
//!
//! `EMBERGPT_EXPECT_BEST=<name>` makes `detected_backend_is_the_expected_one`
//! assert what `Backend::detect()` picks (set by `tests/scripts/qemu_x86.sh`).

mod common;
#[path = "common/gen.rs"]
mod gen;

use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use embergpt::kernels::parallel::TaskFn;
use embergpt::kernels::{matmul, Kernels, Matrix, QuantScratch};
use embergpt::quant::{BlockQ8_0, BlockQ8_1};
use embergpt::{Backend, Context, ContextParams, Error, GgmlType, Model, ParallelFor};

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

use gen::Rng;

fn same(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn assert_same(a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: lengths");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            same(*x, *y),
            "{what}: element {i}: {x:e} ({:#x}) vs scalar {y:e} ({:#x})",
            x.to_bits(),
            y.to_bits()
        );
    }
}

/// The SIMD backends this CPU runs (scalar excluded); prints the skipped ones.
fn simd_backends() -> Vec<Kernels> {
    let mut v = Vec::new();
    for &b in Backend::ALL {
        if b == Backend::Scalar {
            continue;
        }
        if b.is_available() {
            v.push(Kernels::new(b).expect("available backend builds"));
        } else {
            println!("SKIPPED: backend {} not available on this CPU", b.name());
            assert_eq!(Kernels::new(b).err(), Some(Error::BackendUnavailable));
        }
    }
    // The VNNI kernel logic with vpdpbusd emulated on AVX2 (labelled avxvnni),
    // so it is exercised even where no VNNI CPU is available.
    if !Backend::AvxVnni.is_available() {
        if let Some(k) = embergpt::kernels::__x86_emulated_vnni() {
            println!("testing the VNNI kernels with vpdpbusd emulated on AVX2");
            v.push(k);
        }
    }
    // The AVX-512 table's integer kernels (the 512-bit prefill GEMM with tokens
    // in lanes) with every 512-bit operation emulated on AVX2 (labelled avx512vnni).
    if !Backend::Avx512Vnni.is_available() {
        if let Some(k) = embergpt::kernels::__x86_emulated_avx512() {
            println!("testing the AVX-512 kernels with 512-bit operations emulated on AVX2");
            v.push(k);
        }
    }
    v
}

fn scalar_k() -> Kernels {
    Kernels::new(Backend::Scalar).unwrap()
}

/// A random weight row of `cols` elements of `ty` (raw block bytes).
fn weight_row(rng: &mut Rng, ty: GgmlType, cols: usize, extreme: bool) -> Vec<u8> {
    let mut out = Vec::new();
    gen::weight_row(rng, ty, cols, extreme, &mut |b| out.extend_from_slice(b));
    out
}

/// Random activations: mostly unit-scale, with extreme values when asked.
fn activations(rng: &mut Rng, n: usize, extreme: bool) -> Vec<f32> {
    (0..n).map(|i| gen::activation(rng, i, extreme)).collect()
}

/// Activation blocks with arbitrary bytes (-128 included) and scales.
fn raw_q8_0(rng: &mut Rng, nb: usize, extreme: bool) -> Vec<BlockQ8_0> {
    (0..nb).map(|_| gen::raw_q8_0(rng, extreme)).collect()
}

fn raw_q8_1(rng: &mut Rng, nb: usize, extreme: bool) -> Vec<BlockQ8_1> {
    (0..nb).map(|_| gen::raw_q8_1(rng, extreme)).collect()
}

#[cfg(not(miri))]
const COLS: &[usize] = &[32, 64, 96, 224, 256, 288, 480, 512, 768, 1056, 3072];
/// Under Miri (which interprets every instruction) a few edge shapes only.
#[cfg(miri)]
const COLS: &[usize] = &[32, 96, 288];
/// Repetitions of the random cases.
const REPS: usize = if cfg!(miri) { 1 } else { 4 };

// ---------------------------------------------------------------------------
// single-row kernels
// ---------------------------------------------------------------------------

#[test]
fn float_dots_match_scalar() {
    let s = scalar_k();
    let mut rng = Rng(1);
    for k in simd_backends() {
        let ns: &[usize] = if cfg!(miri) {
            &[1, 17, 33]
        } else {
            &[1, 7, 15, 16, 17, 31, 33, 100, 768, 3072, 3075]
        };
        for &n in ns {
            for extreme in [false, true] {
                for ty in [GgmlType::F32, GgmlType::F16] {
                    let w = weight_row(&mut rng, ty, n, extreme);
                    let x = activations(&mut rng, n, extreme);
                    let (f, fs) = if ty == GgmlType::F32 {
                        (k.vec_dot_f32_f32, s.vec_dot_f32_f32)
                    } else {
                        (k.vec_dot_f16_f32, s.vec_dot_f16_f32)
                    };
                    let what =
                        format!("{} {} n={n} extreme={extreme}", k.backend.name(), ty.name());
                    assert_same(&[f(&w, &x)], &[fs(&w, &x)], &what);
                    // mismatched lengths only shorten the loop, like the scalar
                    assert_same(&[f(&w, &x[..n / 2])], &[fs(&w, &x[..n / 2])], &what);
                }
            }
        }
    }
}

/// The element-wise and attention steps in the table (the portable source of
/// `embergpt::ops` compiled for each backend) give the scalar table's bits,
/// on lengths around every vector width and on extreme values (overflowing
/// exponentials, subnormals, signed zeros, infinities and NaN).
#[test]
fn ops_in_the_table_match_scalar() {
    let s = scalar_k();
    let mut rng = Rng(7);
    let ns: &[usize] = if cfg!(miri) {
        &[1, 9, 17]
    } else {
        &[
            1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 768, 3072,
        ]
    };
    let special = gen::SPECIAL;
    for k in simd_backends() {
        let name = k.backend.name();
        // softmax rows whose maximum is a signed zero, infinite, NaN or absent
        // (every value NaN), in the vector part and in the tail
        for n in [5usize, 8, 40] {
            let rows: [Vec<f32>; 6] = [
                (0..n)
                    .map(|i| if i % 3 == 0 { -0.0 } else { -1.5 })
                    .collect(),
                (0..n)
                    .map(|i| if i % 2 == 0 { 0.0 } else { -0.0 })
                    .collect(),
                vec![f32::NAN; n],
                vec![f32::NEG_INFINITY; n],
                (0..n)
                    .map(|i| if i == n - 1 { f32::INFINITY } else { 1.0 })
                    .collect(),
                (0..n)
                    .map(|i| if i == 0 { f32::NAN } else { -(i as f32) })
                    .collect(),
            ];
            for x in rows {
                let run = |f: fn(&mut [f32])| {
                    let mut v = x.clone();
                    f(&mut v);
                    v
                };
                assert_same(
                    &run(k.softmax),
                    &run(s.softmax),
                    &format!("softmax {name} {x:?}"),
                );
            }
        }
        for &n in ns {
            for extreme in [false, true] {
                let mut x = activations(&mut rng, n, extreme);
                if extreme {
                    for v in x.iter_mut() {
                        if rng.below(8) == 0 {
                            *v = special[rng.below(special.len())];
                        }
                    }
                }
                let what = format!("{name} n={n} extreme={extreme}");
                let run = |f: fn(&mut [f32])| {
                    let mut v = x.clone();
                    f(&mut v);
                    v
                };
                assert_same(&run(k.gelu), &run(s.gelu), &format!("gelu {what}"));
                assert_same(&run(k.softmax), &run(s.softmax), &format!("softmax {what}"));
                let up = activations(&mut rng, n, extreme);
                let glu = |f: fn(&mut [f32], &[f32])| {
                    let mut g = x.clone();
                    f(&mut g, &up);
                    g
                };
                assert_same(&glu(k.swiglu), &glu(s.swiglu), &format!("swiglu {what}"));
                // an `up` shorter than `gate`: both stop at the shorter one
                let glu_short = |f: fn(&mut [f32], &[f32])| {
                    let mut g = x.clone();
                    f(&mut g, &up[..n / 2]);
                    g
                };
                assert_same(
                    &glu_short(k.swiglu),
                    &glu_short(s.swiglu),
                    &format!("swiglu short up {what}"),
                );
                // mix: n keys of a head of hd values, rows of `stride` at offset `off`
                for (hd, stride, off, short) in gen::MIX_SHAPES {
                    let vals = activations(&mut rng, (n * stride).saturating_sub(short), extreme);
                    let a = activations(&mut rng, n, false);
                    let m = |f: fn(&[f32], &[f32], usize, usize, &mut [f32])| {
                        let mut out = vec![f32::NAN; hd];
                        f(&a, &vals, stride, off, &mut out);
                        out
                    };
                    assert_same(&m(k.mix), &m(s.mix), &format!("mix hd={hd} {what}"));
                    // two queries at once (ops::mix2, the table's mix2 where it
                    // has one): the second with one key more or with as many
                    for extra in [0usize, 1] {
                        let vals2 = activations(&mut rng, (n + extra) * stride, extreme);
                        let b = activations(&mut rng, n + extra, false);
                        let (mut oa, mut ob) = (vec![f32::NAN; hd], vec![f32::NAN; hd]);
                        embergpt::ops::mix2(&k, &a, &b, &vals2, stride, off, &mut oa, &mut ob);
                        let one = |w: &[f32]| {
                            let mut out = vec![f32::NAN; hd];
                            (s.mix)(w, &vals2, stride, off, &mut out);
                            out
                        };
                        let what2 = format!("mix2 hd={hd} extra={extra} {what}");
                        assert_same(&oa, &one(&a), &what2);
                        assert_same(&ob, &one(&b), &what2);
                    }
                }
                // scores: n keys (rows of `stride` at `off`); the multi-key kernels
                // take head widths that are multiples of 16, the rest go key by key.
                for (hd, stride, off) in [
                    (64usize, 64usize, 0usize),
                    (16, 40, 24),
                    (80, 96, 8),
                    (8, 8, 0),
                ] {
                    let keys = activations(&mut rng, n * stride, extreme);
                    let q = activations(&mut rng, hd, extreme);
                    let sc = |kk: &Kernels| {
                        let mut out = vec![f32::NAN; n];
                        embergpt::ops::scores(kk, &q, &keys, stride, off, 0.125, &mut out);
                        out
                    };
                    assert_same(&sc(&k), &sc(&s), &format!("scores hd={hd} {what}"));
                    // two queries at once (ops::scores2): the second over one key
                    // more (causal attention's next query) or as many
                    for extra in [0usize, 1] {
                        let keys2 = activations(&mut rng, (n + extra) * stride, extreme);
                        let qb = activations(&mut rng, hd, extreme);
                        let (mut oa, mut ob) = (vec![f32::NAN; n], vec![f32::NAN; n + extra]);
                        embergpt::ops::scores2(
                            &k, &q, &qb, &keys2, stride, off, 0.125, &mut oa, &mut ob,
                        );
                        let one = |qq: &[f32], len: usize| {
                            let mut out = vec![f32::NAN; len];
                            embergpt::ops::scores(&s, qq, &keys2, stride, off, 0.125, &mut out);
                            out
                        };
                        let what2 = format!("scores2 hd={hd} extra={extra} {what}");
                        assert_same(&oa, &one(&q, n), &what2);
                        assert_same(&ob, &one(&qb, n + extra), &what2);
                    }
                    // a last key cut short: the portable rule (an empty key scores 0)
                    let cut = &keys[..keys.len() - 1];
                    let sc_cut = |kk: &Kernels| {
                        let mut out = vec![f32::NAN; n];
                        embergpt::ops::scores(kk, &q, cut, stride, off, 0.125, &mut out);
                        out
                    };
                    assert_same(
                        &sc_cut(&k),
                        &sc_cut(&s),
                        &format!("scores cut hd={hd} {what}"),
                    );
                }
            }
        }
    }
}

#[test]
fn quantize_matches_scalar() {
    let s = scalar_k();
    let mut rng = Rng(2);
    for k in simd_backends() {
        for &cols in COLS {
            for extreme in [false, true] {
                let mut x = activations(&mut rng, cols, extreme);
                if extreme {
                    x[0] = f32::NAN;
                    x[cols - 1] = f32::INFINITY;
                }
                let nb = cols / 32;
                let (mut a, mut b) = (
                    vec![BlockQ8_0::default(); nb],
                    vec![BlockQ8_0::default(); nb],
                );
                (k.quantize_row_q8_0)(&x, &mut a);
                (s.quantize_row_q8_0)(&x, &mut b);
                assert!(
                    a == b,
                    "{} quantize_row_q8_0 cols={cols} extreme={extreme}",
                    k.backend.name()
                );
                let (mut a, mut b) = (
                    vec![BlockQ8_1::default(); nb],
                    vec![BlockQ8_1::default(); nb],
                );
                (k.quantize_row_q8_1)(&x, &mut a);
                (s.quantize_row_q8_1)(&x, &mut b);
                assert!(
                    a == b,
                    "{} quantize_row_q8_1 cols={cols} extreme={extreme}",
                    k.backend.name()
                );
            }
        }
        // Special blocks: all zero, tiny (id overflows to inf), huge, NaN-only.
        for v in [0.0f32, 1.0e-44, 3.0e38, f32::NAN, f32::NEG_INFINITY] {
            let x = [v; 32];
            let (mut a, mut b) = ([BlockQ8_1::default()], [BlockQ8_1::default()]);
            (k.quantize_row_q8_1)(&x, &mut a);
            (s.quantize_row_q8_1)(&x, &mut b);
            assert!(a == b, "{} quantize {v}", k.backend.name());
        }
    }
}

fn check_q_dots(
    k: &Kernels,
    s: &Kernels,
    rng: &mut Rng,
    cols: usize,
    extreme: bool,
    raw_act: bool,
) {
    let nb = cols / 32;
    let x = activations(rng, cols, extreme);
    let (mut a0, mut a1) = (
        vec![BlockQ8_0::default(); nb],
        vec![BlockQ8_1::default(); nb],
    );
    (s.quantize_row_q8_0)(&x, &mut a0);
    (s.quantize_row_q8_1)(&x, &mut a1);
    if raw_act {
        a0 = raw_q8_0(rng, nb, extreme);
        a1 = raw_q8_1(rng, nb, extreme);
    }
    let what = |t: &str| {
        format!(
            "{} {t} cols={cols} extreme={extreme} raw={raw_act}",
            k.backend.name()
        )
    };
    let w = weight_row(rng, GgmlType::Q8_0, cols, extreme);
    assert_same(
        &[(k.vec_dot_q8_0_q8_0)(&w, &a0)],
        &[(s.vec_dot_q8_0_q8_0)(&w, &a0)],
        &what("q8_0"),
    );
    let w = weight_row(rng, GgmlType::Q4_0, cols, extreme);
    assert_same(
        &[(k.vec_dot_q4_0_q8_0)(&w, &a0)],
        &[(s.vec_dot_q4_0_q8_0)(&w, &a0)],
        &what("q4_0"),
    );
    let w = weight_row(rng, GgmlType::Q4_1, cols, extreme);
    assert_same(
        &[(k.vec_dot_q4_1_q8_1)(&w, &a1)],
        &[(s.vec_dot_q4_1_q8_1)(&w, &a1)],
        &what("q4_1"),
    );
}

#[test]
fn quantized_dots_match_scalar() {
    let s = scalar_k();
    let mut rng = Rng(3);
    for k in simd_backends() {
        for &cols in COLS {
            for extreme in [false, true] {
                for raw in [false, true] {
                    for _ in 0..REPS {
                        check_q_dots(&k, &s, &mut rng, cols, extreme, raw);
                    }
                }
            }
        }
        // Random block counts 1..=40.
        for _ in 0..50 * REPS {
            let cols = 32 * (1 + rng.below(40));
            let (e, r) = (rng.below(2) == 0, rng.below(2) == 0);
            check_q_dots(&k, &s, &mut rng, cols, e, r);
        }
    }
}

#[test]
fn batched_kernels_match_single_row_dots() {
    let s = scalar_k();
    let mut rng = Rng(4);
    let mut ks = simd_backends();
    ks.push(s);
    for k in ks {
        let shapes: &[(usize, usize, usize)] = if cfg!(miri) {
            &[(1, 1, 32), (5, 6, 288)]
        } else {
            &[
                (1, 1, 32),
                (3, 2, 96),
                (4, 4, 256),
                (5, 7, 288),
                (9, 17, 224),
                (12, 3, 576),
                (13, 1, 576),
                (9, 1, 224),
                (17, 1, 3072),
                (3, 1, 16416),
                (8, 16, 768),
                (6, 5, 3072),
                // whole 32-token chunks, and 33 / 45 tokens split evenly in two
                (5, 32, 256),
                (3, 33, 96),
                (7, 45, 288),
                // the 512-bit GEMM (8+ tokens, 16 per vector, 4 rows per pass, at
                // most 96 blocks): 1-3 leftover rows, fewer than 8 blocks, a
                // partial token vector, exactly 96 blocks, and 97 (too wide for it)
                (1, 8, 32),
                (2, 9, 3072),
                (3, 16, 3104),
                (6, 24, 160),
                (7, 17, 1056),
                // the AVX2 Q8_0 tokens-in-lanes GEMM (8+ tokens, 8 per vector,
                // 4 rows x 2 vectors per pass, at most 48 blocks, as many tokens
                // per packing as 192 (block, vector) entries hold): 70 tokens
                // (two packings: 64 + 6), 48 blocks (32 + 13), 49 (too wide)
                (5, 70, 768),
                (6, 45, 1536),
                (3, 9, 1568),
                // the AVX-512 decode (two blocks per vector): 512 blocks (its
                // widest) and 513 (above: the 16416 case), a partial last group
                (2, 1, 16384),
                (5, 1, 1120),
            ]
        };
        // `raw`: arbitrary activation bytes (-128 included), which the quantizer
        // never produces and which the AVX2 sign trick hands to its exact path.
        let cases = shapes.iter().flat_map(|s| {
            [
                (s, false, false),
                (s, true, false),
                (s, false, true),
                (s, true, true),
            ]
        });
        for (&(rows, n, cols), extreme, raw) in cases {
            let nb = cols / 32;
            let x = activations(&mut rng, n * cols, extreme);
            let (mut a0, mut a1) = (
                vec![BlockQ8_0::default(); n * nb],
                vec![BlockQ8_1::default(); n * nb],
            );
            for t in 0..n {
                (s.quantize_row_q8_0)(&x[t * cols..(t + 1) * cols], &mut a0[t * nb..(t + 1) * nb]);
                (s.quantize_row_q8_1)(&x[t * cols..(t + 1) * cols], &mut a1[t * nb..(t + 1) * nb]);
            }
            if raw {
                a0 = raw_q8_0(&mut rng, n * nb, extreme);
                a1 = raw_q8_1(&mut rng, n * nb, extreme);
            }
            for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
                let w: Vec<u8> = (0..rows)
                    .flat_map(|_| weight_row(&mut rng, ty, cols, extreme))
                    .collect();
                let rb = w.len() / rows;
                let mut out = vec![0.0f32; rows * n];
                let mut want = vec![0.0f32; rows * n];
                for r in 0..rows {
                    for t in 0..n {
                        let wr = &w[r * rb..(r + 1) * rb];
                        want[r * n + t] = match ty {
                            GgmlType::Q8_0 => (s.vec_dot_q8_0_q8_0)(wr, &a0[t * nb..(t + 1) * nb]),
                            GgmlType::Q4_0 => (s.vec_dot_q4_0_q8_0)(wr, &a0[t * nb..(t + 1) * nb]),
                            _ => (s.vec_dot_q4_1_q8_1)(wr, &a1[t * nb..(t + 1) * nb]),
                        };
                    }
                }
                let ran = match ty {
                    GgmlType::Q8_0 => k.gemm_q8_0_q8_0.map(|g| g(&w, rows, &a0, n, &mut out)),
                    GgmlType::Q4_0 => k.gemm_q4_0_q8_0.map(|g| g(&w, rows, &a0, n, &mut out)),
                    _ => k.gemm_q4_1_q8_1.map(|g| g(&w, rows, &a1, n, &mut out)),
                };
                if ran.is_none() {
                    println!(
                        "{}: no batched {} kernel (matmul uses its dots)",
                        k.backend.name(),
                        ty.name()
                    );
                    continue;
                }
                let what = format!(
                    "{} gemm {} rows={rows} n={n} cols={cols} raw={raw}",
                    k.backend.name(),
                    ty.name()
                );
                assert_same(&out, &want, &what);
            }
        }
        // Shape mismatches leave the output untouched.
        if let Some(g) = k.gemm_q8_0_q8_0 {
            let mut out = vec![7.0f32; 4];
            g(&[0u8; 34 * 2], 2, &[BlockQ8_0::default(); 3], 2, &mut out);
            assert_eq!(out, vec![7.0; 4]);
        }
    }
}

// ---------------------------------------------------------------------------
// matmul: big shapes, all types, thread counts
// ---------------------------------------------------------------------------

/// The task data pointer, shared with the spawned threads.
struct Data(*const c_void);
// SAFETY: the core's task data is meant to be used from any thread (ParallelFor's contract).
unsafe impl Sync for Data {}
impl Data {
    fn get(&self) -> *const c_void {
        self.0
    }
}

unsafe extern "C" fn scoped_run(user: *mut c_void, n: usize, task: TaskFn, data: *const c_void) {
    let threads = user as usize;
    let next = AtomicUsize::new(0);
    let data = Data(data);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    break;
                }
                // SAFETY: the core's task callback with its data, each index once.
                unsafe { task(data.get(), i) };
            });
        }
    });
}

/// A test host's hook: `threads` scoped threads per call.
fn scoped_hook(threads: usize) -> ParallelFor {
    // SAFETY: scoped_run runs every index exactly once and joins before returning.
    unsafe { ParallelFor::new(scoped_run, threads as *mut c_void, threads) }
}

fn run_matmul(
    k: &Kernels,
    ty: GgmlType,
    rows: usize,
    cols: usize,
    w: &[u8],
    x: &[f32],
    n: usize,
) -> Vec<f32> {
    let m = Matrix {
        ty,
        rows,
        cols,
        data: w,
    };
    let mut out = vec![0.0f32; n * rows];
    let mut q0 = vec![BlockQ8_0::default(); n * cols / 32];
    let mut q1 = vec![BlockQ8_1::default(); n * cols / 32];
    let mut sc = QuantScratch {
        q8_0: &mut q0,
        q8_1: &mut q1,
    };
    if let Err(e) = matmul(k, &m, x, n, &mut out, &mut sc) {
        panic!(
            "{} matmul {} {rows}x{cols} n={n}: {e:?}",
            k.backend.name(),
            ty.name()
        );
    }
    out
}

#[test]
#[cfg_attr(miri, ignore = "too large for Miri")]
fn matmul_matches_scalar_all_types_and_thread_counts() {
    let s = scalar_k();
    let mut rng = Rng(5);
    let mut ks = simd_backends();
    ks.push(s);
    // (40, 256, 35): full 16-row x 16-token tiles plus partial ones of both kinds.
    let shapes = [
        (50257usize, 768usize, 1usize),
        (97, 3072, 5),
        (13, 768, 33),
        (40, 256, 35),
    ];
    for &(rows, cols, n) in &shapes {
        for ty in [
            GgmlType::Q8_0,
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::F16,
            GgmlType::F32,
        ] {
            if rows > 1000 && matches!(ty, GgmlType::F32 | GgmlType::F16 | GgmlType::Q4_1) {
                continue; // the big shape once per integer path is enough
            }
            let w: Vec<u8> = (0..rows)
                .flat_map(|_| weight_row(&mut rng, ty, cols, false))
                .collect();
            let x = activations(&mut rng, n * cols, false);
            let want = run_matmul(&s, ty, rows, cols, &w, &x, n);
            for k in &ks {
                // The 50257-row shape once single-threaded and once split (debug builds are slow).
                let counts: &[usize] = if rows > 1000 { &[1, 3] } else { &[1, 2, 3, 7] };
                for &threads in counts {
                    let mut kt = *k;
                    kt.parallel = Some(scoped_hook(threads));
                    let got = run_matmul(&kt, ty, rows, cols, &w, &x, n);
                    let what = format!(
                        "{} matmul {} {rows}x{cols} n={n} threads={threads}",
                        k.backend.name(),
                        ty.name()
                    );
                    assert_same(&got, &want, &what);
                }
            }
        }
    }
}

/// Batched quantized matmuls through the driver, against scalar, on the
/// shapes of the x86_64 AVX2 prefill paths: Q8_0 through the packed
/// activation layout (activations quantized straight into groups of 8 tokens,
/// each task's rows in one call writing the output itself), Q4_0 / Q4_1 through
/// the prefill that writes the `[token][row]` output itself (4 rows per store,
/// then 1-3 leftover rows one by one). Exact groups and 1-7 row-form tokens
/// after them, more than one 128-token chunk, 1-3 leftover rows, 1 and 9
/// blocks, the widest rows the packed path takes (128 blocks) and one block
/// more (row form), weights with -128 bytes and zero scales, split over
/// threads. On other backends these run their own kernels.
#[test]
#[cfg_attr(miri, ignore = "too large for Miri")]
fn prefill_matmuls_match_scalar() {
    let s = scalar_k();
    let mut rng = Rng(11);
    let shapes: &[(usize, usize, usize)] = &[
        (4, 32, 8),
        (1, 32, 9),
        (7, 288, 16),
        (5, 96, 23),
        (33, 768, 129),
        (9, 768, 136),
        (6, 4096, 15),
        (3, 4128, 12),
        (13, 3072, 40),
        (38, 256, 70),
    ];
    for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
        for &(rows, cols, n) in shapes {
            for extreme in [false, true] {
                let w: Vec<u8> = (0..rows)
                    .flat_map(|_| weight_row(&mut rng, ty, cols, extreme))
                    .collect();
                let x = activations(&mut rng, n * cols, extreme);
                let want = run_matmul(&s, ty, rows, cols, &w, &x, n);
                for k in simd_backends() {
                    for threads in [1usize, 2, 3] {
                        let mut kt = k;
                        kt.parallel = Some(scoped_hook(threads));
                        let got = run_matmul(&kt, ty, rows, cols, &w, &x, n);
                        let what = format!(
                            "{} {} prefill {rows}x{cols} n={n} extreme={extreme} threads={threads}",
                            k.backend.name(),
                            ty.name()
                        );
                        assert_same(&got, &want, &what);
                    }
                }
            }
        }
    }
}

#[cfg(feature = "std")]
#[test]
#[cfg_attr(miri, ignore = "too large for Miri")]
fn std_thread_pool_runs_every_task_once() {
    use embergpt::kernels::parallel::ThreadPool;
    let pool = ThreadPool::leak(3);
    let hits: Vec<AtomicUsize> = (0..1000).map(|_| AtomicUsize::new(0)).collect();
    unsafe extern "C" fn bump(data: *const c_void, i: usize) {
        // SAFETY: data is the &Vec<AtomicUsize> passed below.
        let h = unsafe { &*(data as *const Vec<AtomicUsize>) };
        h[i].fetch_add(1, Ordering::SeqCst);
    }
    for round in 0..50 {
        let n = 1 + round * 19 % 1000;
        // SAFETY: bump is callable from any thread.
        unsafe { pool.run(n, bump, &hits as *const Vec<AtomicUsize> as *const c_void) };
        for (i, h) in hits.iter().enumerate() {
            assert_eq!(
                h.swap(0, Ordering::SeqCst),
                (i < n) as usize,
                "round {round} task {i}"
            );
        }
    }
    // And a forward pass through the pool equals the single-threaded one.
    let bytes = read_fixture("gpt2/a.q8_0.gguf");
    let tokens: Vec<u32> = (0..20).map(|i| (i * 37 % 256) as u32).collect();
    let one = logits_with(&bytes, &tokens, None, None);
    let many = logits_with(&bytes, &tokens, None, Some(pool.hook()));
    assert_same(&many, &one, "pool forward");
}

// ---------------------------------------------------------------------------
// whole model: every backend forced, every thread count
// ---------------------------------------------------------------------------

fn logits_with(
    bytes: &[u8],
    tokens: &[u32],
    backend: Option<Backend>,
    parallel: Option<ParallelFor>,
) -> Vec<f32> {
    let model = Model::load(bytes).expect("load");
    let p = ContextParams {
        n_batch: tokens.len(),
        logits_all: true,
        backend,
        parallel,
        ..Default::default()
    };
    let mut arena = arena(Context::arena_size(&model, &p).unwrap());
    let mut ctx = Context::new(model, &p, &mut arena).unwrap();
    ctx.eval_all(tokens).unwrap();
    ctx.all_logits().unwrap().to_vec()
}

#[test]
#[cfg_attr(miri, ignore = "too large for Miri")]
fn golden_models_bit_identical_on_every_backend_and_thread_count() {
    let m = manifest();
    // Forced through ContextParams, so only the backends this CPU really runs.
    let backends: Vec<Backend> = simd_backends()
        .iter()
        .map(|k| k.backend)
        .filter(|b| b.is_available())
        .collect();
    for model in m["models"].as_array().unwrap() {
        let name = model["name"].as_str().unwrap();
        let tokens: Vec<u32> = model["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        for ty in model["types"].as_array().unwrap() {
            let ty = ty.as_str().unwrap();
            let bytes = read_fixture(&format!("gpt2/{name}.{ty}.gguf"));
            let want = logits_with(&bytes, &tokens, Some(Backend::Scalar), None);
            for &b in backends.iter().chain([Backend::Scalar].iter()) {
                for threads in [None, Some(2), Some(3)] {
                    let got = logits_with(&bytes, &tokens, Some(b), threads.map(scoped_hook));
                    let what = format!("{name}.{ty} backend {} threads {threads:?}", b.name());
                    assert_same(&got, &want, &what);
                }
            }
        }
    }
}

#[test]
fn detected_backend_is_the_expected_one() {
    let best = Backend::detect();
    println!("Backend::detect() = {}", best.name());
    assert!(best.is_available());
    assert_eq!(Kernels::detect().backend, best);
    match std::env::var("EMBERGPT_EXPECT_BEST") {
        Ok(want) => assert_eq!(best.name(), want, "EMBERGPT_EXPECT_BEST"),
        Err(_) => println!("EMBERGPT_EXPECT_BEST not set: detection result not asserted"),
    }
}

/// Small enough for Miri: the parallel-for path (raw-pointer output shared by
/// tasks) with real threads, every type, against the single-threaded result.
#[test]
fn small_matmul_with_threads() {
    let mut rng = Rng(6);
    // 37 x 288 x 4 = 42,624 multiply-adds: above matmul's split threshold (32,768).
    let (rows, cols, n) = (37usize, 288usize, 4usize);
    let mut ks = simd_backends();
    ks.push(scalar_k());
    for ty in [
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::F16,
        GgmlType::F32,
    ] {
        let w: Vec<u8> = (0..rows)
            .flat_map(|_| weight_row(&mut rng, ty, cols, false))
            .collect();
        let x = activations(&mut rng, n * cols, false);
        let want = run_matmul(&scalar_k(), ty, rows, cols, &w, &x, n);
        for k in &ks {
            for threads in [2usize, 3] {
                let mut kt = *k;
                kt.parallel = Some(scoped_hook(threads));
                let got = run_matmul(&kt, ty, rows, cols, &w, &x, n);
                assert_same(
                    &got,
                    &want,
                    &format!("{} {} threads={threads}", k.backend.name(), ty.name()),
                );
            }
        }
    }
}

#[cfg(feature = "std")]
#[test]
fn std_thread_pool_small() {
    use embergpt::kernels::parallel::ThreadPool;
    let pool = ThreadPool::new(3);
    let hits: Vec<AtomicUsize> = (0..20).map(|_| AtomicUsize::new(0)).collect();
    unsafe extern "C" fn bump(data: *const c_void, i: usize) {
        // SAFETY: data is the &Vec<AtomicUsize> passed below.
        let h = unsafe { &*(data as *const Vec<AtomicUsize>) };
        h[i].fetch_add(1, Ordering::SeqCst);
    }
    for n in [1usize, 2, 7, 20, 0, 5] {
        // SAFETY: bump is callable from any thread.
        unsafe { pool.run(n, bump, &hits as *const Vec<AtomicUsize> as *const c_void) };
        for (i, h) in hits.iter().enumerate() {
            assert_eq!(
                h.swap(0, Ordering::SeqCst),
                (i < n) as usize,
                "n {n} task {i}"
            );
        }
    }
    drop(pool); // joins the workers
}

/// The x86_64 kernels keep their packed tiles on the stack (README, "Stack": up
/// to ~80 KB for the VNNI prefill). Every table's batched kernels at their
/// widest stack-buffered shapes (prefill chunks of 32 tokens at 3072 columns, of
/// 64 tokens at 1536 columns, decode at 16384) run in a thread with `STACK` bytes of stack, the default of
/// musl's threads: a kernel whose buffers grow past it overflows that thread's
/// stack and aborts this test binary.
#[test]
fn kernels_fit_a_128_kib_thread_stack() {
    const STACK: usize = 128 << 10;
    let mut ks = simd_backends();
    ks.push(scalar_k());
    let mut rng = Rng(11);
    let cases: Vec<(usize, usize, usize)> =
        vec![(5, 32, 3072), (3, 1, 16384), (2, 9, 3072), (5, 64, 1536)];
    let mut inputs = Vec::new();
    for &(rows, n, cols) in &cases {
        let x = activations(&mut rng, n * cols, false);
        let nb = cols / 32;
        let (mut a0, mut a1) = (
            vec![BlockQ8_0::default(); n * nb],
            vec![BlockQ8_1::default(); n * nb],
        );
        for t in 0..n {
            let s = scalar_k();
            (s.quantize_row_q8_0)(&x[t * cols..(t + 1) * cols], &mut a0[t * nb..(t + 1) * nb]);
            (s.quantize_row_q8_1)(&x[t * cols..(t + 1) * cols], &mut a1[t * nb..(t + 1) * nb]);
        }
        let ws: Vec<Vec<u8>> = [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1]
            .iter()
            .map(|&ty| {
                (0..rows)
                    .flat_map(|_| weight_row(&mut rng, ty, cols, false))
                    .collect()
            })
            .collect();
        inputs.push((rows, n, a0, a1, ws));
    }
    // The matmul driver on the same thread: its tiles, plus (x86_64 AVX2) the
    // packed Q8_0 prefill's widened rows at the widest it takes, 4096 columns.
    let (mm_rows, mm_n, mm_cols) = (5usize, 17usize, 4096usize);
    let mm_w: Vec<u8> = (0..mm_rows)
        .flat_map(|_| weight_row(&mut rng, GgmlType::Q8_0, mm_cols, false))
        .collect();
    let mm_x = activations(&mut rng, mm_n * mm_cols, false);
    for k in ks {
        let inputs = &inputs;
        let (mm_w, mm_x) = (&mm_w, &mm_x);
        let sums = std::thread::scope(|sc| {
            std::thread::Builder::new()
                .stack_size(STACK)
                .spawn_scoped(sc, move || {
                    let mut outs = Vec::new();
                    for (rows, n, a0, a1, ws) in inputs {
                        let mut out = vec![0.0f32; rows * n];
                        if let Some(g) = k.gemm_q8_0_q8_0 {
                            g(&ws[0], *rows, a0, *n, &mut out);
                            outs.extend_from_slice(&out);
                        }
                        if let Some(g) = k.gemm_q4_0_q8_0 {
                            g(&ws[1], *rows, a0, *n, &mut out);
                            outs.extend_from_slice(&out);
                        }
                        if let Some(g) = k.gemm_q4_1_q8_1 {
                            g(&ws[2], *rows, a1, *n, &mut out);
                            outs.extend_from_slice(&out);
                        }
                    }
                    let out = run_matmul(&k, GgmlType::Q8_0, mm_rows, mm_cols, mm_w, mm_x, mm_n);
                    outs.extend_from_slice(&out);
                    outs
                })
                .expect("spawn")
                .join()
                .expect("join")
        });
        // The results are checked elsewhere; here only that they are all there.
        assert_eq!(
            sums.len(),
            3 * (5 * 32 + 3 + 2 * 9 + 5 * 64) + mm_rows * mm_n,
            "{}",
            k.backend.name()
        );
    }
}
