//! The checks: every function of a kernel table against the scalar table, and
//! whole-model logits per forced backend against the scalar backend.
//!
//! Test data comes from tests/common/gen.rs, shared with tests/kernels.rs (f16 scales including
//! zero, subnormal, 65504, infinity and negative ones; all-zero blocks; weight
//! bytes 0x80/0x7f/0xff/0x00; activations with 1e30, subnormals, signed zeros,
//! exact halves; raw activation blocks with -128), written into scratch slices
//! instead of Vecs, with shapes trimmed for Bochs's speed but keeping the edge
//! shapes: 1 block, odd block counts (3, 5, 7, 9, 17), 768 and 3072 columns,
//! 1/7/8/9/33 weight rows, 1 token (decode) and 2..40 tokens (prefill, more
//! than one 32-token tile).

use embergpt::arena::Arena;
use embergpt::kernels::{matmul, Kernels, Matrix, QuantScratch};
use embergpt::quant::{BlockQ8_0, BlockQ8_1};
use embergpt::{Backend, Context, ContextParams, GgmlType, Model};

use core::fmt::Write;

use crate::rt::Con;
use crate::{gen, take, Chk, Rng, Shape};

/// A byte cursor over a weight buffer.
struct Put<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Put<'_> {
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            match self.out.get_mut(self.at) {
                Some(d) => *d = x,
                None => panic!("weight buffer too small"),
            }
            self.at += 1;
        }
    }
}

fn row_bytes(ty: GgmlType, cols: usize) -> usize {
    match ty.row_bytes(cols) {
        Some(n) => n,
        None => panic!("row_bytes"),
    }
}

/// `rows` random weight rows of `cols` elements of `ty` (raw block bytes) in a new slice.
fn weights<'a>(
    a: &mut Arena<'a>,
    rng: &mut Rng,
    ty: GgmlType,
    rows: usize,
    cols: usize,
    extreme: bool,
) -> &'a mut [u8] {
    let rb = row_bytes(ty, cols);
    let out = take::<u8>(a, rows * rb);
    let mut p = Put { out, at: 0 };
    for _ in 0..rows {
        weight_row(rng, ty, cols, extreme, &mut p);
    }
    p.out
}

fn weight_row(rng: &mut Rng, ty: GgmlType, cols: usize, extreme: bool, p: &mut Put<'_>) {
    gen::weight_row(rng, ty, cols, extreme, &mut |b| p.bytes(b));
}

/// Random activations: mostly unit-scale, with extreme values when asked.
fn activations<'a>(a: &mut Arena<'a>, rng: &mut Rng, n: usize, extreme: bool) -> &'a mut [f32] {
    let x = take::<f32>(a, n);
    for (i, v) in x.iter_mut().enumerate() {
        *v = gen::activation(rng, i, extreme);
    }
    x
}

/// Activation blocks with arbitrary bytes (-128 included) and scales.
fn raw_q8_0(rng: &mut Rng, out: &mut [BlockQ8_0], extreme: bool) {
    for b in out {
        *b = gen::raw_q8_0(rng, extreme);
    }
}

fn raw_q8_1(rng: &mut Rng, out: &mut [BlockQ8_1], extreme: bool) {
    for b in out {
        *b = gen::raw_q8_1(rng, extreme);
    }
}

fn q8_0_words(b: &[BlockQ8_0]) -> impl Iterator<Item = u32> + '_ {
    b.iter()
        .flat_map(|b| core::iter::once(b.d as u32).chain(b.qs.iter().map(|&q| q as u8 as u32)))
}

fn q8_1_words(b: &[BlockQ8_1]) -> impl Iterator<Item = u32> + '_ {
    b.iter().flat_map(|b| {
        [b.d as u32, b.s as u32]
            .into_iter()
            .chain(b.qs.iter().map(|&q| q as u8 as u32))
    })
}

/// Column counts of the row kernels: 1 block, odd block counts 3, 5, 7, 9,
/// 17, and GPT-2's 768 and 3072.
const COLS: &[usize] = &[32, 64, 96, 160, 224, 256, 288, 544, 768, 3072];

/// Every function of `k` against `s`.
pub fn all(c: &mut Chk, k: &Kernels, s: &Kernels, scratch: &mut [u8]) {
    type Part = fn(&mut Chk, &Kernels, &Kernels, &mut [u8]);
    let parts: [(&str, Part); 7] = [
        ("float dots", float_dots),
        ("quantize", quantize),
        ("quantized dots", quantized_dots),
        ("gemm", gemms),
        ("matmul", matmuls),
        ("element-wise", elementwise),
        ("attention", attention),
    ];
    for (name, f) in parts {
        let (c0, t0) = (c.checks, ticks());
        f(c, k, s, scratch);
        let _ = writeln!(
            Con,
            "   {name}: {} checks, {} M ticks",
            c.checks - c0,
            (ticks() - t0) / 1_000_000
        );
    }
}

/// The emulated CPU's time-stamp counter (Bochs: instructions at its `ips`).
pub fn ticks() -> u64 {
    // SAFETY: RDTSC only reads the counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn float_dots(c: &mut Chk, k: &Kernels, s: &Kernels, scratch: &mut [u8]) {
    let mut rng = Rng(1);
    for &n in &[1usize, 7, 15, 16, 17, 31, 33, 100, 768, 3072, 3075] {
        for extreme in [false, true] {
            for ty in [GgmlType::F32, GgmlType::F16] {
                let mut a = Arena::new(&mut *scratch);
                let w = weights(&mut a, &mut rng, ty, 1, n, extreme);
                let x = activations(&mut a, &mut rng, n, extreme);
                let (f, fs, name) = if ty == GgmlType::F32 {
                    (k.vec_dot_f32_f32, s.vec_dot_f32_f32, "vec_dot_f32_f32")
                } else {
                    (k.vec_dot_f16_f32, s.vec_dot_f16_f32, "vec_dot_f16_f32")
                };
                let sh = Shape::new("n extreme", &[n, extreme as usize]);
                c.f32_1(name, sh, f(w, x), fs(w, x));
                // mismatched lengths only shorten the loop, like the scalar
                let h = &x[..n / 2];
                c.f32_1(name, sh, f(w, h), fs(w, h));
            }
        }
    }
}

fn quantize(c: &mut Chk, k: &Kernels, s: &Kernels, scratch: &mut [u8]) {
    let mut rng = Rng(2);
    for &cols in COLS {
        for extreme in [false, true] {
            let mut a = Arena::new(&mut *scratch);
            let x = activations(&mut a, &mut rng, cols, extreme);
            if extreme {
                x[0] = f32::NAN;
                x[cols - 1] = f32::INFINITY;
            }
            let nb = cols / 32;
            let sh = Shape::new("cols extreme", &[cols, extreme as usize]);
            let (g, w) = (take::<BlockQ8_0>(&mut a, nb), take::<BlockQ8_0>(&mut a, nb));
            (k.quantize_row_q8_0)(x, g);
            (s.quantize_row_q8_0)(x, w);
            c.words("quantize_row_q8_0", sh, q8_0_words(g), q8_0_words(w));
            let (g, w) = (take::<BlockQ8_1>(&mut a, nb), take::<BlockQ8_1>(&mut a, nb));
            (k.quantize_row_q8_1)(x, g);
            (s.quantize_row_q8_1)(x, w);
            c.words("quantize_row_q8_1", sh, q8_1_words(g), q8_1_words(w));
        }
    }
    // Special blocks: all zero, tiny (id overflows to inf), huge, NaN-only.
    for (i, v) in [0.0f32, 1.0e-44, 3.0e38, f32::NAN, f32::NEG_INFINITY]
        .into_iter()
        .enumerate()
    {
        let x = [v; 32];
        let sh = Shape::new("special", &[i]);
        let (mut g, mut w) = ([BlockQ8_0::default()], [BlockQ8_0::default()]);
        (k.quantize_row_q8_0)(&x, &mut g);
        (s.quantize_row_q8_0)(&x, &mut w);
        c.words("quantize_row_q8_0", sh, q8_0_words(&g), q8_0_words(&w));
        let (mut g, mut w) = ([BlockQ8_1::default()], [BlockQ8_1::default()]);
        (k.quantize_row_q8_1)(&x, &mut g);
        (s.quantize_row_q8_1)(&x, &mut w);
        c.words("quantize_row_q8_1", sh, q8_1_words(&g), q8_1_words(&w));
    }
}

/// One row of each quantized type against activations `cols` wide.
#[allow(clippy::too_many_arguments)]
fn q_dots(
    c: &mut Chk,
    k: &Kernels,
    s: &Kernels,
    rng: &mut Rng,
    scratch: &mut [u8],
    cols: usize,
    extreme: bool,
    raw: bool,
) {
    let nb = cols / 32;
    let mut a = Arena::new(scratch);
    let x = activations(&mut a, rng, cols, extreme);
    let a0 = take::<BlockQ8_0>(&mut a, nb);
    let a1 = take::<BlockQ8_1>(&mut a, nb);
    (s.quantize_row_q8_0)(x, a0);
    (s.quantize_row_q8_1)(x, a1);
    if raw {
        raw_q8_0(rng, a0, extreme);
        raw_q8_1(rng, a1, extreme);
    }
    let sh = Shape::new("cols extreme raw", &[cols, extreme as usize, raw as usize]);
    let w = weights(&mut a, rng, GgmlType::Q8_0, 1, cols, extreme);
    let (g, want) = ((k.vec_dot_q8_0_q8_0)(w, a0), (s.vec_dot_q8_0_q8_0)(w, a0));
    c.f32_1("vec_dot_q8_0_q8_0", sh, g, want);
    let w = weights(&mut a, rng, GgmlType::Q4_0, 1, cols, extreme);
    let (g, want) = ((k.vec_dot_q4_0_q8_0)(w, a0), (s.vec_dot_q4_0_q8_0)(w, a0));
    c.f32_1("vec_dot_q4_0_q8_0", sh, g, want);
    let w = weights(&mut a, rng, GgmlType::Q4_1, 1, cols, extreme);
    let (g, want) = ((k.vec_dot_q4_1_q8_1)(w, a1), (s.vec_dot_q4_1_q8_1)(w, a1));
    c.f32_1("vec_dot_q4_1_q8_1", sh, g, want);
}

fn quantized_dots(c: &mut Chk, k: &Kernels, s: &Kernels, scratch: &mut [u8]) {
    let mut rng = Rng(3);
    for &cols in COLS {
        for extreme in [false, true] {
            for raw in [false, true] {
                for _ in 0..4 {
                    q_dots(c, k, s, &mut rng, scratch, cols, extreme, raw);
                }
            }
        }
    }
    // Random block counts 1..=40.
    for _ in 0..200 {
        let cols = 32 * (1 + rng.below(40));
        let (e, r) = (rng.below(2) == 0, rng.below(2) == 0);
        q_dots(c, k, s, &mut rng, scratch, cols, e, r);
    }
}

/// (weight rows, tokens, columns) of the batched kernels: 1/7/8/9/33 rows,
/// 1 token (decode) and 2..40 tokens (prefill; 33 and 40 are more than one
/// 32-token tile of matmul), 1/3/5/7/9/17 blocks, 768 and 3072 columns.
const GEMM_SHAPES: &[(usize, usize, usize)] = &[
    (1, 1, 32),
    (7, 1, 96),
    (8, 2, 160),
    (9, 3, 224),
    (33, 1, 768),
    (8, 5, 288),
    (9, 17, 544),
    (7, 33, 96),
    (1, 40, 32),
    (8, 7, 3072),
    (9, 1, 3072),
    (33, 9, 768),
    (4, 36, 256),
    (4, 4, 256),
    (12, 3, 576),
    (13, 1, 576),
    (16, 32, 256),
    (17, 1, 3072),
    (3, 1, 16416),
    (6, 5, 3072),
    (65, 1, 96),
    (5, 40, 64),
];

fn gemms(c: &mut Chk, k: &Kernels, s: &Kernels, scratch: &mut [u8]) {
    let mut rng = Rng(4);
    for &(rows, n, cols) in GEMM_SHAPES {
        // `raw`: arbitrary activation bytes (-128 included), which the
        // quantizer never produces.
        for (extreme, raw) in [(false, false), (true, false), (false, true), (true, true)] {
            let nb = cols / 32;
            let mut a = Arena::new(&mut *scratch);
            let x = activations(&mut a, &mut rng, n * cols, extreme);
            let a0 = take::<BlockQ8_0>(&mut a, n * nb);
            let a1 = take::<BlockQ8_1>(&mut a, n * nb);
            for t in 0..n {
                let xr = &x[t * cols..(t + 1) * cols];
                (s.quantize_row_q8_0)(xr, &mut a0[t * nb..(t + 1) * nb]);
                (s.quantize_row_q8_1)(xr, &mut a1[t * nb..(t + 1) * nb]);
            }
            if raw {
                raw_q8_0(&mut rng, a0, extreme);
                raw_q8_1(&mut rng, a1, extreme);
            }
            let sh = Shape::new(
                "rows n cols extreme raw",
                &[rows, n, cols, extreme as usize, raw as usize],
            );
            for ty in [GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1] {
                let w = weights(&mut a, &mut rng, ty, rows, cols, extreme);
                let rb = w.len() / rows;
                let out = take::<f32>(&mut a, rows * n);
                let want = take::<f32>(&mut a, rows * n);
                for r in 0..rows {
                    let wr = &w[r * rb..(r + 1) * rb];
                    for t in 0..n {
                        want[r * n + t] = match ty {
                            GgmlType::Q8_0 => (s.vec_dot_q8_0_q8_0)(wr, &a0[t * nb..(t + 1) * nb]),
                            GgmlType::Q4_0 => (s.vec_dot_q4_0_q8_0)(wr, &a0[t * nb..(t + 1) * nb]),
                            _ => (s.vec_dot_q4_1_q8_1)(wr, &a1[t * nb..(t + 1) * nb]),
                        };
                    }
                }
                let (ran, name) = match ty {
                    GgmlType::Q8_0 => (
                        k.gemm_q8_0_q8_0.map(|g| g(w, rows, a0, n, out)),
                        "gemm_q8_0_q8_0",
                    ),
                    GgmlType::Q4_0 => (
                        k.gemm_q4_0_q8_0.map(|g| g(w, rows, a0, n, out)),
                        "gemm_q4_0_q8_0",
                    ),
                    _ => (
                        k.gemm_q4_1_q8_1.map(|g| g(w, rows, a1, n, out)),
                        "gemm_q4_1_q8_1",
                    ),
                };
                if ran.is_some() {
                    c.f32s(name, sh, out, want);
                } else {
                    c.declined += 1; // None: matmul uses the dots (checked above)
                }
            }
        }
    }
    // Shape mismatches leave the output untouched.
    if let Some(g) = k.gemm_q8_0_q8_0 {
        let mut out = [7.0f32; 4];
        g(&[0u8; 34 * 2], 2, &[BlockQ8_0::default(); 3], 2, &mut out);
        c.f32s(
            "gemm_q8_0_q8_0",
            Shape::new("mismatched", &[1]),
            &out,
            &[7.0; 4],
        );
    }
}

/// `kernels::matmul` (tiles of 16 rows x 32 tokens over the table's gemm,
/// quantizing the activations with the table's quantizer) for every weight type.
fn matmuls(c: &mut Chk, k: &Kernels, s: &Kernels, scratch: &mut [u8]) {
    let mut rng = Rng(5);
    for &(rows, cols, n) in &[
        (37usize, 288usize, 1usize),
        (130, 768, 1),
        (20, 768, 33),
        (9, 96, 40),
        (40, 256, 35),
        (16, 64, 32),
    ] {
        for ty in [
            GgmlType::Q8_0,
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::F16,
            GgmlType::F32,
        ] {
            let mut a = Arena::new(&mut *scratch);
            let w = weights(&mut a, &mut rng, ty, rows, cols, false);
            let x = activations(&mut a, &mut rng, n * cols, false);
            let m = Matrix {
                ty,
                rows,
                cols,
                data: w,
            };
            let got = take::<f32>(&mut a, n * rows);
            let want = take::<f32>(&mut a, n * rows);
            for (kk, out) in [(k, &mut *got), (s, &mut *want)] {
                let mut sc = QuantScratch {
                    q8_0: take::<BlockQ8_0>(&mut a, n * cols / 32),
                    q8_1: take::<BlockQ8_1>(&mut a, n * cols / 32),
                };
                if matmul(kk, &m, x, n, out, &mut sc).is_err() {
                    panic!("matmul failed");
                }
            }
            let sh = Shape::new("type rows cols n", &[ty as usize, rows, cols, n]);
            c.f32s("matmul", sh, got, want);
        }
    }
}

/// Lengths around every vector width, and GPT-2's 768 and 3072.
const OP_NS: &[usize] = &[
    1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 768, 3072,
];

fn elementwise(c: &mut Chk, k: &Kernels, s: &Kernels, scratch: &mut [u8]) {
    let mut rng = Rng(6);
    // softmax rows whose maximum is a signed zero, infinite, NaN or absent
    // (every value NaN), in the vector part and in the tail
    for n in [5usize, 8, 40] {
        for kind in 0..6usize {
            let mut a = Arena::new(&mut *scratch);
            let x = take::<f32>(&mut a, n);
            for (i, v) in x.iter_mut().enumerate() {
                *v = match kind {
                    0 => {
                        if i % 3 == 0 {
                            -0.0
                        } else {
                            -1.5
                        }
                    }
                    1 => {
                        if i % 2 == 0 {
                            0.0
                        } else {
                            -0.0
                        }
                    }
                    2 => f32::NAN,
                    3 => f32::NEG_INFINITY,
                    4 => {
                        if i == n - 1 {
                            f32::INFINITY
                        } else {
                            1.0
                        }
                    }
                    _ => {
                        if i == 0 {
                            f32::NAN
                        } else {
                            -(i as f32)
                        }
                    }
                };
            }
            let g = take::<f32>(&mut a, n);
            let w = take::<f32>(&mut a, n);
            g.copy_from_slice(x);
            w.copy_from_slice(x);
            (k.softmax)(g);
            (s.softmax)(w);
            c.f32s("softmax", Shape::new("n special_row", &[n, kind]), g, w);
        }
    }
    for &n in OP_NS {
        for extreme in [false, true] {
            let mut a = Arena::new(&mut *scratch);
            let x = activations(&mut a, &mut rng, n, extreme);
            if extreme {
                for v in x.iter_mut() {
                    if rng.below(8) == 0 {
                        *v = gen::pick(&mut rng, &gen::SPECIAL);
                    }
                }
            }
            let sh = Shape::new("n extreme", &[n, extreme as usize]);
            let g = take::<f32>(&mut a, n);
            let w = take::<f32>(&mut a, n);
            for (name, fk, fs) in [("gelu", k.gelu, s.gelu), ("softmax", k.softmax, s.softmax)] {
                g.copy_from_slice(x);
                w.copy_from_slice(x);
                fk(g);
                fs(w);
                c.f32s(name, sh, g, w);
            }
            let up = activations(&mut a, &mut rng, n, extreme);
            for len in [n, n / 2] {
                // an `up` shorter than `gate`: both stop at the shorter one
                g.copy_from_slice(x);
                w.copy_from_slice(x);
                (k.swiglu)(g, &up[..len]);
                (s.swiglu)(w, &up[..len]);
                c.f32s("swiglu", sh, g, w);
            }
        }
    }
}

/// Key counts of the attention kernels (the per-key work is a dot or an axpy
/// of the head width, so long key lists add nothing but emulation time).
const KEY_NS: &[usize] = &[1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65];

fn attention(c: &mut Chk, k: &Kernels, s: &Kernels, scratch: &mut [u8]) {
    let mut rng = Rng(7);
    for &n in KEY_NS {
        for extreme in [false, true] {
            mix_checks(c, k, s, &mut rng, scratch, n, extreme);
            score_checks(c, k, s, &mut rng, scratch, n, extreme);
        }
    }
}

fn nan_fill<'a>(a: &mut Arena<'a>, n: usize) -> &'a mut [f32] {
    let v = take::<f32>(a, n);
    v.fill(f32::NAN);
    v
}

fn mix_checks(
    c: &mut Chk,
    k: &Kernels,
    s: &Kernels,
    rng: &mut Rng,
    scratch: &mut [u8],
    n: usize,
    extreme: bool,
) {
    // n keys of a head of hd values, rows of `stride` at offset `off`
    for (hd, stride, off, short) in gen::MIX_SHAPES {
        let mut a = Arena::new(&mut *scratch);
        let sh = Shape::new(
            "keys hd stride off short extreme",
            &[n, hd, stride, off, short, extreme as usize],
        );
        let vals = activations(&mut a, rng, (n * stride).saturating_sub(short), extreme);
        let wa = activations(&mut a, rng, n, false);
        let (g, w) = (nan_fill(&mut a, hd), nan_fill(&mut a, hd));
        (k.mix)(wa, vals, stride, off, g);
        (s.mix)(wa, vals, stride, off, w);
        c.f32s("mix", sh, g, w);
        // two queries over the same values: the table's mix2 directly (equal
        // lengths, its contract), then ops::mix2 with the second query one key
        // longer (causal attention's next query)
        let vals2 = activations(&mut a, rng, (n + 1) * stride, extreme);
        let wb = activations(&mut a, rng, n + 1, false);
        let (wa1, wb1) = (&wa[..n], &wb[..n]);
        let (ga, gb) = (nan_fill(&mut a, hd), nan_fill(&mut a, hd));
        let (ra, rb) = (nan_fill(&mut a, hd), nan_fill(&mut a, hd));
        if let Some(f) = k.mix2 {
            if f(wa1, wb1, vals2, stride, off, ga, gb) {
                (s.mix)(wa1, vals2, stride, off, ra);
                (s.mix)(wb1, vals2, stride, off, rb);
                c.f32s("mix2", sh, ga, ra);
                c.f32s("mix2", sh, gb, rb);
            } else {
                c.declined += 1;
            }
        }
        for extra in [0usize, 1] {
            let b = &wb[..n + extra];
            ga.fill(f32::NAN);
            gb.fill(f32::NAN);
            embergpt::ops::mix2(k, wa1, b, vals2, stride, off, ga, gb);
            (s.mix)(wa1, vals2, stride, off, ra);
            (s.mix)(b, vals2, stride, off, rb);
            c.f32s("ops::mix2", sh, ga, ra);
            c.f32s("ops::mix2", sh, gb, rb);
        }
    }
}

fn score_checks(
    c: &mut Chk,
    k: &Kernels,
    s: &Kernels,
    rng: &mut Rng,
    scratch: &mut [u8],
    n: usize,
    extreme: bool,
) {
    use embergpt::ops::{scores, scores2};
    // n keys (rows of `stride` at `off`); the multi-key kernels take head
    // widths that are multiples of 16, the rest go key by key.
    for (hd, stride, off) in [
        (64usize, 64usize, 0usize),
        (16, 40, 24),
        (80, 96, 8),
        (8, 8, 0),
    ] {
        let mut a = Arena::new(&mut *scratch);
        let sh = Shape::new(
            "keys hd stride off extreme",
            &[n, hd, stride, off, extreme as usize],
        );
        let keys = activations(&mut a, rng, (n + 1) * stride, extreme);
        let q = activations(&mut a, rng, hd, extreme);
        let qb = activations(&mut a, rng, hd, extreme);
        let (g, w) = (nan_fill(&mut a, n + 1), nan_fill(&mut a, n + 1));
        let (gb, wb) = (nan_fill(&mut a, n + 1), nan_fill(&mut a, n + 1));
        let kn = &keys[..n * stride];
        // the reference: key by key through the scalar dot (s.scores is None)
        scores(s, q, kn, stride, off, 0.125, &mut w[..n]);
        if let Some(f) = k.scores {
            if f(q, kn, stride, off, 0.125, &mut g[..n]) {
                c.f32s("scores", sh, &g[..n], &w[..n]);
            } else {
                c.declined += 1;
            }
        }
        g.fill(f32::NAN);
        scores(k, q, kn, stride, off, 0.125, &mut g[..n]);
        c.f32s("ops::scores", sh, &g[..n], &w[..n]);
        // two queries: the table's scores2 directly (same key counts), then
        // ops::scores2 with the second query over one key more
        scores(s, qb, kn, stride, off, 0.125, &mut wb[..n]);
        if let Some(f) = k.scores2 {
            g.fill(f32::NAN);
            if f(q, qb, kn, stride, off, 0.125, &mut g[..n], &mut gb[..n]) {
                c.f32s("scores2", sh, &g[..n], &w[..n]);
                c.f32s("scores2", sh, &gb[..n], &wb[..n]);
            } else {
                c.declined += 1;
            }
        }
        for extra in [0usize, 1] {
            let kk = &keys[..(n + extra) * stride];
            scores(s, q, kk, stride, off, 0.125, &mut w[..n]);
            scores(s, qb, kk, stride, off, 0.125, &mut wb[..n + extra]);
            g.fill(f32::NAN);
            gb.fill(f32::NAN);
            scores2(
                k,
                q,
                qb,
                kk,
                stride,
                off,
                0.125,
                &mut g[..n],
                &mut gb[..n + extra],
            );
            c.f32s("ops::scores2", sh, &g[..n], &w[..n]);
            c.f32s("ops::scores2", sh, &gb[..n + extra], &wb[..n + extra]);
        }
        // a last key cut short: the portable rule (an empty key scores 0)
        let cut = &keys[..n * stride - 1];
        w.fill(f32::NAN);
        scores(s, q, cut, stride, off, 0.125, &mut w[..n]);
        g.fill(f32::NAN);
        scores(k, q, cut, stride, off, 0.125, &mut g[..n]);
        c.f32s("ops::scores cut", sh, &g[..n], &w[..n]);
    }
}

/// Model bytes aligned like a file mapping would be.
#[repr(C, align(64))]
struct Aligned<T: ?Sized>(T);

/// The bundled default model (GPT-2 architecture, Q8_0: 128 wide, 512
/// tokens), and the random GPT-2 fixtures of the other weight types (a: 64
/// wide, 2 blocks; b: 96 wide, 3 blocks), so that the Q4_0/Q4_1 GEMMs and the
/// F16 dots run inside a whole forward pass too.
static MODELS: [(&str, &Aligned<[u8]>); 7] = [
    (
        "shakespeare-q8_0",
        &Aligned(*include_bytes!("../../../cli/assets/shakespeare-q8_0.gguf")),
    ),
    (
        "gpt2/a.q4_0",
        &Aligned(*include_bytes!("../../fixtures/gpt2/a.q4_0.gguf")),
    ),
    (
        "gpt2/a.q4_1",
        &Aligned(*include_bytes!("../../fixtures/gpt2/a.q4_1.gguf")),
    ),
    (
        "gpt2/a.f16",
        &Aligned(*include_bytes!("../../fixtures/gpt2/a.f16.gguf")),
    ),
    (
        "gpt2/b.q4_0",
        &Aligned(*include_bytes!("../../fixtures/gpt2/b.q4_0.gguf")),
    ),
    (
        "gpt2/b.q4_1",
        &Aligned(*include_bytes!("../../fixtures/gpt2/b.q4_1.gguf")),
    ),
    (
        "gpt2/b.q8_0",
        &Aligned(*include_bytes!("../../fixtures/gpt2/b.q8_0.gguf")),
    ),
];

/// Prompt tokens, decode steps, and (after a reset) a batch of up to 40
/// tokens: more than one 32-token tile where the model's context allows.
const PROMPT: usize = 8;
const DECODE: usize = 2;
const MAX_BATCH: usize = 40;
const MAX_LOGITS: usize = (PROMPT + DECODE + MAX_BATCH) * 512;

/// Everything `forward` needs about one model.
#[derive(Clone, Copy)]
struct Run<'t> {
    bytes: &'static [u8],
    tokens: &'t [u32],
    batch: usize,
    n_vocab: usize,
}

/// The forward passes of `r` with `backend` forced; every logit into `out`.
fn forward(
    backend: Backend,
    r: Run<'_>,
    out: &mut [f32],
    arena: &mut [u8],
) -> Result<(), &'static str> {
    let model = Model::load(r.bytes).map_err(|_| "Model::load failed")?;
    let p = ContextParams {
        n_ctx: 0,
        n_batch: r.batch,
        logits_all: true,
        backend: Some(backend),
        ..Default::default()
    };
    let need = Context::arena_size(&model, &p).map_err(|_| "arena_size failed")?;
    let buf = arena.get_mut(..need).ok_or("context arena too small")?;
    let mut ctx = Context::new(model, &p, buf).map_err(|_| "Context::new failed")?;
    if ctx.backend() != backend {
        return Err("context runs another backend than forced");
    }
    let (prompt, rest) = r.tokens.split_at(PROMPT);
    let (decode, batch) = rest.split_at(DECODE);
    let mut at = 0;
    let mut put = |v: &[f32]| {
        out[at..at + v.len()].copy_from_slice(v);
        at += v.len();
    };
    // prompt (prefill GEMM, n = 8), then decode steps (n = 1)
    ctx.eval_all(prompt)
        .map_err(|_| "eval_all(prompt) failed")?;
    put(ctx.all_logits().map_err(|_| "all_logits failed")?);
    for t in decode {
        ctx.eval(core::slice::from_ref(t))
            .map_err(|_| "eval(decode) failed")?;
        put(ctx.logits().map_err(|_| "logits failed")?);
    }
    // a fresh batch: 40 tokens are two tiles of the prefill GEMM (32 + 8)
    ctx.reset();
    ctx.eval_all(batch).map_err(|_| "eval_all(batch) failed")?;
    put(ctx.all_logits().map_err(|_| "all_logits failed")?);
    Ok(())
}

/// The backend a context picks by itself (`ContextParams::backend: None`).
pub fn default_backend(scratch: &mut [u8]) -> Result<Backend, &'static str> {
    let (_, m) = MODELS[0];
    let model = Model::load(&m.0).map_err(|_| "Model::load failed")?;
    let p = ContextParams::default();
    let need = Context::arena_size(&model, &p).map_err(|_| "arena_size failed")?;
    let buf = scratch.get_mut(..need).ok_or("context arena too small")?;
    let ctx = Context::new(model, &p, buf).map_err(|_| "Context::new failed")?;
    Ok(ctx.backend())
}

/// Logits of every tested backend against the scalar backend's, bit for bit.
pub fn golden(
    backends: &[Backend],
    tested: &[bool],
    chks: &mut [Chk],
    scratch: &mut [u8],
) -> Result<(), &'static str> {
    let mut rng = Rng(8);
    let mut a = Arena::new(scratch);
    let want = take::<f32>(&mut a, MAX_LOGITS);
    let got = take::<f32>(&mut a, MAX_LOGITS);
    let tokens = take::<u32>(&mut a, PROMPT + DECODE + MAX_BATCH);
    let arena = take::<u8>(&mut a, 8 << 20);
    for (mi, (name, m)) in MODELS.iter().enumerate() {
        let hp = *Model::load(&m.0)
            .map_err(|_| "Model::load failed")?
            .hparams();
        let batch = MAX_BATCH.min(hp.n_ctx);
        let tokens = &mut tokens[..PROMPT + DECODE + batch];
        for t in tokens.iter_mut() {
            *t = rng.below(hp.n_vocab) as u32;
        }
        let r = Run {
            bytes: &m.0,
            tokens,
            batch,
            n_vocab: hp.n_vocab,
        };
        let len = (PROMPT + DECODE + batch) * r.n_vocab;
        let (want, got) = (&mut want[..len], &mut got[..len]);
        let t0 = ticks();
        forward(Backend::Scalar, r, want, arena)?;
        for ((&b, &t), c) in backends.iter().zip(tested).zip(chks.iter_mut()) {
            if !t {
                continue;
            }
            got.fill(f32::NAN);
            forward(b, r, got, arena)?;
            for (row, (g, w)) in got
                .chunks_exact(r.n_vocab)
                .zip(want.chunks_exact(r.n_vocab))
                .enumerate()
            {
                let (func, i) = if row < PROMPT {
                    ("logits prompt", row)
                } else if row < PROMPT + DECODE {
                    ("logits decode", row - PROMPT)
                } else {
                    ("logits batch", row - PROMPT - DECODE)
                };
                c.f32s(func, Shape::new("model row", &[mi, i]), g, w);
            }
        }
        let _ = writeln!(
            Con,
            "   model {mi} {name}: {} + {} + {batch} tokens, {} M ticks",
            PROMPT,
            DECODE,
            (ticks() - t0) / 1_000_000
        );
    }
    Ok(())
}
