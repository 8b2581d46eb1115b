//! Kernel throughput per backend and shape, and whole-model tokens/s.
//!
//! Throughput is reported as "elements/s" = operations/s, counting 2 operations
//! (a multiply and an add) per multiply-accumulate, so `Gelem/s` reads as GOP/s.
//!
//! Groups:
//! - `dot/<kernel>/<backend>/<cols>`: single-row dots over 16 rows of `cols`
//!   (weights and activations cache-resident), the decode inner loop;
//! - `gemm/<kernel>/<backend>/<cols>x<tokens>`: the batched kernels, 16 rows x
//!   16 tokens (the matmul driver's call on most targets) and 32 rows x 64 tokens
//!   (its call on x86_64);
//! - `matmul/<type>/<rows>x<cols>/<backend>/t<threads>/n<tokens>`: GPT-2's
//!   FFN matmuls (3072x768 and 768x3072) for 1, 32 and 128 tokens through the
//!   matmul driver and the parallel-for hook (std thread pool): with 8 or more
//!   tokens the AVX2 Q8_0 path quantizes into its packed layout, so this is the
//!   group that times it;
//! - `forward/<type>/<backend>/t<threads>/{prefill32,decode}`: a GPT-2 124M-shaped
//!   random model made by `tests/scripts/make_bench_gpt2.py` in
//!   `$EMBERGPT_BENCH_DIR` (default `/tmp/embergpt-bench`); skipped (with a
//!   message) when the files are absent. Throughput there is tokens/s.
//!
//! Run: `cargo bench --bench kernels --features std [-- FILTER]`.

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use embergpt::kernels::{matmul, Kernels, Matrix, QuantScratch};
use embergpt::quant::{BlockQ8_0, BlockQ8_1};
use embergpt::{Backend, Context, ContextParams, GgmlType, Model};
use std::hint::black_box;
use std::time::Duration;

fn backends() -> Vec<Kernels> {
    let mut v = Vec::new();
    for &b in Backend::ALL {
        if b.is_available() {
            v.push(Kernels::new(b).unwrap());
        } else {
            println!("SKIPPED: backend {} not available on this CPU", b.name());
        }
    }
    v
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// `rows` random rows of `ty`, quantized from N(0, ~0.5)-ish values.
fn weights(rng: &mut Rng, ty: GgmlType, rows: usize, cols: usize) -> Vec<u8> {
    let rb = ty.row_bytes(cols).unwrap();
    let mut out = vec![0u8; rows * rb];
    let mut row = vec![0.0f32; cols];
    for r in 0..rows {
        row.iter_mut().for_each(|v| *v = rng.unit());
        embergpt::quant::quantize_row(ty, &row, &mut out[r * rb..(r + 1) * rb]).unwrap();
    }
    out
}

const TYPES: [GgmlType; 5] = [
    GgmlType::Q8_0,
    GgmlType::Q4_0,
    GgmlType::Q4_1,
    GgmlType::F16,
    GgmlType::F32,
];

fn bench_kernels(c: &mut Criterion) {
    let mut rng = Rng(0x1234_5678);
    let ks = backends();
    let rows = 16;
    for &cols in &[768usize, 3072] {
        let nb = cols / 32;
        let x: Vec<f32> = (0..64 * cols).map(|_| rng.unit()).collect();
        let mut a0 = vec![BlockQ8_0::default(); 64 * nb];
        let mut a1 = vec![BlockQ8_1::default(); 64 * nb];
        let s = Kernels::new(Backend::Scalar).unwrap();
        for t in 0..64 {
            (s.quantize_row_q8_0)(&x[t * cols..(t + 1) * cols], &mut a0[t * nb..(t + 1) * nb]);
            (s.quantize_row_q8_1)(&x[t * cols..(t + 1) * cols], &mut a1[t * nb..(t + 1) * nb]);
        }
        for ty in TYPES {
            let w = weights(&mut rng, ty, rows, cols);
            let rb = w.len() / rows;
            let mut g = c.benchmark_group(format!("dot/{}", ty.name()));
            g.throughput(Throughput::Elements((2 * rows * cols) as u64));
            g.measurement_time(Duration::from_millis(1500))
                .warm_up_time(Duration::from_millis(300));
            for k in &ks {
                g.bench_function(BenchmarkId::new(k.backend.name(), cols), |b| {
                    b.iter(|| {
                        let mut acc = 0.0f32;
                        for r in 0..rows {
                            let wr = &w[r * rb..(r + 1) * rb];
                            acc += match ty {
                                GgmlType::Q8_0 => (k.vec_dot_q8_0_q8_0)(wr, &a0[..nb]),
                                GgmlType::Q4_0 => (k.vec_dot_q4_0_q8_0)(wr, &a0[..nb]),
                                GgmlType::Q4_1 => (k.vec_dot_q4_1_q8_1)(wr, &a1[..nb]),
                                GgmlType::F16 => (k.vec_dot_f16_f32)(wr, &x[..cols]),
                                _ => (k.vec_dot_f32_f32)(wr, &x[..cols]),
                            };
                        }
                        black_box(acc)
                    })
                });
            }
            g.finish();
            if matches!(ty, GgmlType::F16 | GgmlType::F32) {
                continue;
            }
            let w2 = weights(&mut rng, ty, 2 * rows, cols);
            for (w, gr, nt) in [(&w, rows, 16usize), (&w2, 2 * rows, 64)] {
                let mut g = c.benchmark_group(format!("gemm/{}", ty.name()));
                g.throughput(Throughput::Elements((2 * gr * nt * cols) as u64));
                g.measurement_time(Duration::from_millis(1500))
                    .warm_up_time(Duration::from_millis(300));
                let mut out = vec![0.0f32; gr * nt];
                let (a0, a1) = (&a0[..nt * nb], &a1[..nt * nb]);
                for k in &ks {
                    let id = BenchmarkId::new(k.backend.name(), format!("{cols}x{nt}"));
                    g.bench_function(id, |b| {
                        b.iter(|| {
                            match ty {
                                GgmlType::Q8_0 => {
                                    k.gemm_q8_0_q8_0.map(|g| g(w, gr, a0, nt, &mut out))
                                }
                                GgmlType::Q4_0 => {
                                    k.gemm_q4_0_q8_0.map(|g| g(w, gr, a0, nt, &mut out))
                                }
                                _ => k.gemm_q4_1_q8_1.map(|g| g(w, gr, a1, nt, &mut out)),
                            };
                            black_box(&out);
                        })
                    });
                }
                g.finish();
            }
        }
        let mut g = c.benchmark_group("quantize_q8_0");
        g.throughput(Throughput::Elements(cols as u64));
        g.measurement_time(Duration::from_millis(1000))
            .warm_up_time(Duration::from_millis(300));
        for k in &ks {
            g.bench_function(BenchmarkId::new(k.backend.name(), cols), |b| {
                b.iter(|| (k.quantize_row_q8_0)(black_box(&x[..cols]), &mut a0[..nb]))
            });
        }
        g.finish();
    }
}

#[cfg(feature = "std")]
fn pools() -> Vec<(usize, Option<embergpt::ParallelFor>)> {
    let n = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut v = vec![(1, None)];
    if n > 1 {
        v.push((
            n,
            Some(embergpt::kernels::parallel::ThreadPool::leak(n).hook()),
        ));
    }
    v
}
#[cfg(not(feature = "std"))]
fn pools() -> Vec<(usize, Option<embergpt::ParallelFor>)> {
    println!("SKIPPED: thread-pool benches need --features std");
    vec![(1, None)]
}

fn bench_matmul(c: &mut Criterion) {
    let mut rng = Rng(99);
    let pools = pools();
    // GPT-2 124M's FFN input (3072 x 768) and output (768 x 3072); one token
    // (decode), 32, and 128 (a prompt: the packed Q8_0 prefill's chunk).
    for ((rows, cols), ty) in [(3072usize, 768usize), (768, 3072)]
        .into_iter()
        .flat_map(|s| [(s, GgmlType::Q8_0), (s, GgmlType::Q4_0)])
    {
        let w = weights(&mut rng, ty, rows, cols);
        let m = Matrix {
            ty,
            rows,
            cols,
            data: &w,
        };
        for n in [1usize, 32, 128] {
            let x: Vec<f32> = (0..n * cols).map(|_| rng.unit()).collect();
            let mut out = vec![0.0f32; n * rows];
            let mut q0 = vec![BlockQ8_0::default(); n * cols / 32];
            let mut q1 = vec![BlockQ8_1::default(); n * cols / 32];
            let mut g = c.benchmark_group(format!("matmul/{}/{rows}x{cols}", ty.name()));
            g.throughput(Throughput::Elements((2 * rows * cols * n) as u64));
            g.measurement_time(Duration::from_millis(1500))
                .warm_up_time(Duration::from_millis(300));
            for k in backends() {
                for (t, p) in &pools {
                    let mut kt = k;
                    kt.parallel = *p;
                    g.bench_function(format!("{}/t{t}/n{n}", k.backend.name()), |b| {
                        b.iter(|| {
                            let mut sc = QuantScratch {
                                q8_0: &mut q0,
                                q8_1: &mut q1,
                            };
                            matmul(&kt, &m, &x, n, &mut out, &mut sc).unwrap();
                        })
                    });
                }
            }
            g.finish();
        }
    }
}

fn bench_forward(c: &mut Criterion) {
    let dir = std::env::var("EMBERGPT_BENCH_DIR").unwrap_or_else(|_| "/tmp/embergpt-bench".into());
    let pools = pools();
    for ty in ["q8_0", "q4_0"] {
        let path = format!("{dir}/gpt2-124m.{ty}.gguf");
        let Ok(bytes) = std::fs::read(&path) else {
            println!("SKIPPED: {path} missing (run tests/scripts/make_bench_gpt2.py {dir})");
            continue;
        };
        let prompt: Vec<u32> = (0..32).map(|i| (i * 7919 % 50257) as u32).collect();
        let mut g = c.benchmark_group(format!("forward/{ty}"));
        g.sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .measurement_time(Duration::from_secs(4))
            .warm_up_time(Duration::from_millis(500));
        for k in backends() {
            for (t, p) in &pools {
                // The scalar "before" baseline once (single thread, Q8_0): it is slow.
                if k.backend == Backend::Scalar && (*t > 1 || ty != "q8_0") {
                    continue;
                }
                let model = Model::load(&bytes).unwrap();
                let params = ContextParams {
                    n_ctx: 256,
                    n_batch: 32,
                    backend: Some(k.backend),
                    parallel: *p,
                    ..Default::default()
                };
                let mut arena = vec![0u8; Context::arena_size(&model, &params).unwrap()];
                let mut ctx = Context::new(model, &params, &mut arena).unwrap();
                g.throughput(Throughput::Elements(prompt.len() as u64));
                g.bench_function(format!("{}/t{t}/prefill32", k.backend.name()), |b| {
                    b.iter(|| {
                        ctx.reset();
                        ctx.eval(&prompt).unwrap();
                    })
                });
                // decode: 8 single-token steps after the 32-token prompt
                g.throughput(Throughput::Elements(8));
                g.bench_function(format!("{}/t{t}/decode", k.backend.name()), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            ctx.reset();
                            ctx.eval(&prompt).unwrap();
                            let t0 = std::time::Instant::now();
                            for i in 0..8u32 {
                                ctx.eval(&[i * 31]).unwrap();
                            }
                            total += t0.elapsed();
                        }
                        total
                    })
                });
            }
        }
        g.finish();
    }
}

criterion_group!(benches, bench_kernels, bench_matmul, bench_forward);
criterion_main!(benches);
