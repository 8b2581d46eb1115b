//! Fuzz the arena contract: for arbitrary context parameters, arena lengths and
//! arena start alignments, `Context::new` succeeds exactly when the arena is at
//! least `Context::arena_size` bytes, fails with `ArenaTooSmall { needed ==
//! arena_size, available == len }` otherwise, fails with the same error as
//! `arena_size` when the parameters are bad, carves no more than it was given,
//! and the context it makes evaluates a token.
//!
//! Input layout (missing bytes read as 0): byte 0 model, bytes 1-2 n_ctx (u16),
//! bytes 3-4 n_batch (u16), byte 5 flags (logits_all, backend), bytes 6-7
//! arena start offset inside a larger buffer, bytes 8-11 arena length (as a
//! signed delta around the needed size, or absolute), byte 12 a token.
#![no_main]

use embergpt::{Backend, Context, ContextParams, Error, Model};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const FIXTURES: &[&[u8]] = &[
    include_bytes!("../../tests/fixtures/gpt2/a.q4_0.gguf"),
    include_bytes!("../../tests/fixtures/gpt2/b.q4_1.gguf"),
    include_bytes!("../../tests/fixtures/gpt2/c.q8_0.gguf"),
];

fn models() -> &'static Vec<Model<'static>> {
    static M: OnceLock<Vec<Model<'static>>> = OnceLock::new();
    M.get_or_init(|| FIXTURES.iter().map(|f| Model::load(f).unwrap()).collect())
}

fn byte(d: &[u8], i: usize) -> u8 {
    d.get(i).copied().unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    let models = models();
    let model = models[byte(data, 0) as usize % models.len()];
    let hp = *model.hparams();
    let flags = byte(data, 5);
    let backend = match (flags >> 1) & 7 {
        0 | 1 | 2 | 3 => None,
        k => Some(Backend::ALL[(k as usize + flags as usize) % Backend::ALL.len()]),
    };
    let params = ContextParams {
        n_ctx: u16::from_le_bytes([byte(data, 1), byte(data, 2)]) as usize,
        n_batch: u16::from_le_bytes([byte(data, 3), byte(data, 4)]) as usize,
        logits_all: flags & 1 != 0,
        backend,
    };
    let shift = u16::from_le_bytes([byte(data, 6), byte(data, 7)]) as usize % 128;
    let raw = i32::from_le_bytes([byte(data, 8), byte(data, 9), byte(data, 10), byte(data, 11)]);

    let planned = Context::arena_size(&model, &params);
    let len = match planned {
        // Mostly near the boundary, sometimes anywhere below 4 MiB.
        Ok(n) if flags & 0x80 == 0 => n.saturating_add_signed((raw % 256) as isize),
        _ => (raw as u32 % (4 << 20)) as usize,
    };
    let mut buf = vec![0xA5u8; len + shift + 64];
    let (before, rest) = buf.split_at_mut(shift);
    let (arena, after) = rest.split_at_mut(len);
    let _ = before;
    let r = Context::new(model, &params, arena);
    match (planned, r) {
        (Err(e), r) => {
            assert_eq!(
                r.err(),
                Some(e),
                "new and arena_size disagree on bad params"
            );
        }
        (Ok(n), Ok(mut ctx)) => {
            assert!(len >= n, "new succeeded with {len} < arena_size {n}");
            assert!(ctx.arena_used() <= len, "carved more than given");
            assert!(ctx.arena_used() <= n, "carved more than planned");
            let expect_ctx = if params.n_ctx == 0 {
                hp.n_ctx
            } else {
                params.n_ctx
            };
            assert_eq!(ctx.n_ctx(), expect_ctx);
            assert_eq!(ctx.n_batch(), params.n_batch);
            let tok = byte(data, 12) as u32 % hp.n_vocab as u32;
            ctx.eval(&[tok]).expect("eval in a fresh context");
            assert_eq!(ctx.logits().unwrap().len(), hp.n_vocab);
            assert_eq!(ctx.n_past(), 1);
            drop(ctx);
            assert!(after.iter().all(|&b| b == 0xA5), "wrote past the arena");
        }
        (Ok(n), Err(Error::ArenaTooSmall { needed, available })) => {
            assert!(len < n, "ArenaTooSmall with len {len} >= arena_size {n}");
            assert_eq!(needed, n, "ArenaTooSmall.needed != arena_size");
            assert_eq!(available, len);
        }
        (Ok(n), Err(Error::BackendUnavailable)) => {
            let b = params
                .backend
                .expect("BackendUnavailable without a forced backend");
            assert!(!b.is_available());
            assert!(len >= n, "backend checked before the arena size");
        }
        (Ok(_), Err(e)) => panic!("unexpected error {e:?} for valid params"),
    }
});
