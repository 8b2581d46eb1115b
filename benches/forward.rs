//! Prefill and decode tokens/s on a GPT-2 124M-shaped model with random weights,
//! built in memory (Q8_0 and Q4_0 matrices; no file needed).
//!
//! `cargo bench --bench forward` (set EMBERGPT_BENCH_BACKEND=scalar|... to force a backend).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use embergpt::gguf_write::random_gpt2;
use embergpt::{Backend, Context, ContextParams, GgmlType, Model};
use std::time::Duration;

const PROMPT: usize = 128;

fn forward(c: &mut Criterion) {
    let backend = std::env::var("EMBERGPT_BENCH_BACKEND")
        .ok()
        .and_then(|n| Backend::from_name(&n));
    for ty in [GgmlType::Q8_0, GgmlType::Q4_0] {
        let bytes = random_gpt2(50257, 1024, 768, 12, 12, ty, 42).expect("model");
        let model = Model::load(&bytes).expect("load");
        let params = ContextParams {
            n_ctx: 1024,
            n_batch: PROMPT,
            logits_all: false,
            backend,
            parallel: None,
        };
        let mut arena = vec![0u8; Context::arena_size(&model, &params).unwrap()];
        let mut ctx = Context::new(model, &params, &mut arena).unwrap();
        let name = format!("gpt2-124m-{}-{}", ty.name(), ctx.backend().name());
        let prompt: Vec<u32> = (0..PROMPT as u32).map(|i| (i * 389) % 50257).collect();

        let mut g = c.benchmark_group("prefill");
        g.sample_size(10).measurement_time(Duration::from_secs(20));
        g.throughput(Throughput::Elements(PROMPT as u64));
        g.bench_function(BenchmarkId::new(&name, PROMPT), |b| {
            b.iter(|| {
                ctx.reset();
                ctx.eval(&prompt).unwrap();
            })
        });
        g.finish();

        // Decode one token after a 128-token prompt, rewinding so the position stays fixed.
        ctx.reset();
        ctx.eval(&prompt).unwrap();
        let mut g = c.benchmark_group("decode");
        g.sample_size(10).measurement_time(Duration::from_secs(10));
        g.throughput(Throughput::Elements(1));
        g.bench_function(BenchmarkId::new(&name, PROMPT), |b| {
            b.iter(|| {
                ctx.rewind(PROMPT).unwrap();
                ctx.eval(&[198]).unwrap();
            })
        });
        g.finish();
    }
}

criterion_group!(benches, forward);
criterion_main!(benches);
