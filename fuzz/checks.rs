//! The properties the fuzz targets check, as plain functions (no libFuzzer):
//! each `fuzz_targets/<name>.rs` calls one of them, and `tests/regressions.rs`
//! replays every saved crashing input through the same function on stable
//! `cargo test`. A property violation is a panic (that is what libFuzzer
//! reports); the library itself must never panic.
#![allow(dead_code)]

use embergpt::gguf::{ArrayView, Gguf, Value};
use embergpt::{Backend, Context, ContextParams, Error, Model};
use std::sync::OnceLock;

fn byte(d: &[u8], i: usize) -> u8 {
    d.get(i).copied().unwrap_or(0)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

// ---------------------------------------------------------------------------
// gguf_parse
// ---------------------------------------------------------------------------

/// Equality that treats floats by their bits (a NaN equals itself).
fn same(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::F32(x), Value::F32(y)) => x.to_bits() == y.to_bits(),
        (Value::F64(x), Value::F64(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

fn walk_array(a: &ArrayView<'_>, depth: u32) {
    assert!(depth <= embergpt::gguf::MAX_ARRAY_DEPTH);
    let mut n = 0usize;
    for (i, v) in a.iter().enumerate() {
        if i < 64 {
            let got = a.get(i).expect("ArrayView::get of an index below len");
            assert!(same(&got, &v), "ArrayView::get({i}) disagrees with iter");
        }
        if let Value::Array(inner) = v {
            walk_array(&inner, depth + 1);
        }
        n += 1;
    }
    assert_eq!(n, a.len(), "array iterator length");
    assert!(a.get(a.len()).is_none());
    if let Some(sz) = a.elem_type().fixed_size() {
        assert_eq!(a.raw().len(), a.len() * sz);
    }
}

/// Fuzz the zero-copy GGUF reader: any bytes either fail with an `Error` value
/// or parse into a file whose every accessor is consistent with the parse.
///
/// Properties checked on success:
/// - the metadata iterator yields exactly `n_metadata()` entries and `get` finds
///   each key again (first occurrence wins), every value (arrays element by
///   element, nested arrays too) decodes, and `ArrayView::get(i)` agrees with
///   the iterator;
/// - the tensor iterator yields exactly `n_tensors()` entries; each
///   `TensorInfo::data` lies inside the input slice at
///   `data_offset() + offset` and is exactly `row_bytes * n_rows` long; offsets
///   are aligned; no two tensors share bytes; `tensor(name)` finds a tensor of
///   that name;
/// - `Model::load` on the same bytes does not panic.
pub fn gguf_parse(data: &[u8]) {
    let Ok(g) = Gguf::parse(data) else {
        let _ = embergpt::Model::load(data);
        return;
    };
    let base = data.as_ptr() as usize;

    let mut n_kv = 0usize;
    for (key, v) in g.metadata() {
        n_kv += 1;
        if let Value::Array(a) = v {
            walk_array(&a, 1);
        }
        if let Ok(k) = core::str::from_utf8(key) {
            // First entry with this key; must exist.
            assert!(g.get(k).is_some(), "get() misses a key the iterator yields");
        }
    }
    assert_eq!(n_kv, g.n_metadata(), "metadata count");

    let align = g.alignment();
    assert!(align.is_power_of_two());
    assert_eq!(g.data_offset() % align, 0);
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut n_t = 0usize;
    for t in g.tensors() {
        n_t += 1;
        let start = t.data.as_ptr() as usize - base;
        let end = start + t.data.len();
        assert!(end <= data.len(), "tensor data outside the input");
        assert_eq!(
            start,
            g.data_offset() + t.offset,
            "data not at data_offset + offset"
        );
        assert_eq!(t.offset % align, 0, "misaligned offset accepted");
        assert!((1..=4).contains(&t.n_dims));
        assert!(t.ne.iter().all(|&d| d >= 1));
        assert!(t.ne.iter().skip(t.n_dims).all(|&d| d == 1));
        let rb =
            t.ty.row_bytes(t.ne[0])
                .expect("row_bytes of an accepted tensor");
        assert_eq!(t.data.len(), rb * t.n_rows(), "tensor byte size");
        assert_eq!(t.n_elements(), t.ne[0] * t.n_rows());
        if let Ok(name) = core::str::from_utf8(t.name) {
            let found = g.tensor(name).expect("tensor(name) misses a tensor");
            assert_eq!(found.name, t.name);
        }
        if !t.data.is_empty() {
            spans.push((start, end));
        }
    }
    assert_eq!(n_t, g.n_tensors(), "tensor count");
    spans.sort_unstable();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "overlapping tensors accepted");
    }

    let _ = embergpt::Model::load(data);
}

// ---------------------------------------------------------------------------
// model_eval
// ---------------------------------------------------------------------------

const EVAL_FIXTURES: &[&[u8]] = &[
    include_bytes!("../tests/fixtures/gpt2/a.q4_0.gguf"),
    include_bytes!("../tests/fixtures/gpt2/c.q8_0.gguf"),
    include_bytes!("../tests/fixtures/gpt2/b.q4_1.gguf"),
    include_bytes!("../tests/fixtures/gpt2/a.f16.gguf"),
    include_bytes!("../tests/fixtures/gpt2/c.f32.gguf"),
];

/// Fuzz model loading and evaluation: start from a real GPT-2 fixture, apply a
/// list of patches the fuzzer controls, load, and if the model loads, evaluate.
///
/// Input layout (every field optional; missing bytes read as 0):
/// - byte 0: which fixture;
/// - byte 1: context parameters (`n_ctx = 1 + (b & 3)`, `n_batch`, `logits_all`);
/// - byte 2: number of patches (`& 15`);
/// - 8 bytes per patch: `kind, off[3], val[4]`. `kind & 3`: 0 write a byte,
///   1 write a u32, 2 write a u64 (zero-extended), 3 truncate. `kind & 0x80`
///   chooses the offset range: clear = header, metadata and tensor directory
///   (where a patch changes the structure), set = the whole file;
/// - the remaining bytes are token ids (taken modulo the vocabulary).
///
/// Property: once `Model::load` accepts a file, evaluation of valid tokens that
/// fit the context never fails (everything that could make it fail is a
/// property of the file that load must reject), and is deterministic.
pub fn model_eval(data: &[u8]) {
    let seed = EVAL_FIXTURES[byte(data, 0) as usize % EVAL_FIXTURES.len()];
    let header_len = embergpt::Gguf::parse(seed)
        .expect("fixture parses")
        .data_offset();
    let mut file = seed.to_vec();
    let n_patches = (byte(data, 2) & 15) as usize;
    let mut p = 3usize;
    for _ in 0..n_patches {
        let kind = byte(data, p);
        let off = u32::from_le_bytes([byte(data, p + 1), byte(data, p + 2), byte(data, p + 3), 0])
            as usize;
        let val = u32::from_le_bytes([
            byte(data, p + 4),
            byte(data, p + 5),
            byte(data, p + 6),
            byte(data, p + 7),
        ]);
        p += 8;
        let range = if kind & 0x80 == 0 {
            header_len
        } else {
            file.len()
        };
        if range == 0 {
            continue;
        }
        let off = off % range;
        let bytes = match kind & 3 {
            0 => vec![val as u8],
            1 => val.to_le_bytes().to_vec(),
            2 => (val as u64).to_le_bytes().to_vec(),
            _ => {
                file.truncate(off);
                continue;
            }
        };
        for (i, b) in bytes.into_iter().enumerate() {
            if let Some(x) = file.get_mut(off + i) {
                *x = b;
            }
        }
    }
    let tail = data.get(p..).unwrap_or(&[]);

    let Ok(model) = Model::load(&file) else {
        return;
    };
    let hp = *model.hparams();
    let cb = byte(data, 1);
    // Few tokens: every eval path (chunking, batches, rewinds) is reached with 4,
    // and the forward pass dominates the time of an execution.
    let n_ctx = (1 + (cb & 3) as usize).min(hp.n_ctx);
    let n_batch = 1 + ((cb >> 3) & 3) as usize % n_ctx;
    let params = ContextParams {
        n_ctx,
        n_batch,
        logits_all: cb & 0x40 != 0,
        backend: None,
        parallel: None,
    };
    let size = Context::arena_size(&model, &params).expect("arena_size of valid params");
    let mut arena = vec![0u8; size];
    let mut ctx = Context::new(model, &params, &mut arena).expect("Context::new of valid params");

    let tokens: Vec<u32> = tail
        .iter()
        .take(n_ctx)
        .map(|&b| b as u32 % hp.n_vocab as u32)
        .collect();
    if tokens.is_empty() {
        assert_eq!(ctx.eval(&[]), Err(Error::EmptyInput));
        return;
    }
    ctx.eval(&tokens)
        .expect("eval of valid tokens on a loaded model");
    let first = bits(ctx.logits().expect("logits after eval"));

    // Rewind to the middle and evaluate the rest again: same last logits
    // (deterministic, and nothing stale survives the rewind).
    let mid = tokens.len() / 2;
    ctx.rewind(mid).expect("rewind inside n_past");
    ctx.eval(&tokens[mid..]).expect("eval after rewind");
    assert_eq!(first, bits(ctx.logits().unwrap()), "rewind changes logits");

    // All-position logits for one batch when the context keeps them.
    if params.logits_all {
        ctx.reset();
        let n = tokens.len().min(n_batch);
        ctx.eval_all(&tokens[..n]).expect("eval_all of one batch");
        assert_eq!(ctx.all_logits().unwrap().len(), n * hp.n_vocab);
    }
}

// ---------------------------------------------------------------------------
// arena_context
// ---------------------------------------------------------------------------

const ARENA_FIXTURES: &[&[u8]] = &[
    include_bytes!("../tests/fixtures/gpt2/a.q4_0.gguf"),
    include_bytes!("../tests/fixtures/gpt2/b.q4_1.gguf"),
    include_bytes!("../tests/fixtures/gpt2/c.q8_0.gguf"),
];

fn models() -> &'static Vec<Model<'static>> {
    static M: OnceLock<Vec<Model<'static>>> = OnceLock::new();
    M.get_or_init(|| {
        ARENA_FIXTURES
            .iter()
            .map(|f| Model::load(f).unwrap())
            .collect()
    })
}

/// Fuzz the arena contract: for arbitrary context parameters, arena lengths and
/// arena start alignments, `Context::new` succeeds exactly when the arena is at
/// least `Context::arena_size` bytes, fails with `ArenaTooSmall { needed ==
/// arena_size, available == len }` otherwise, fails with the same error as
/// `arena_size` when the parameters are bad, carves no more than it was given,
/// and the context it makes evaluates a token.
///
/// Input layout (missing bytes read as 0): byte 0 model, bytes 1-2 n_ctx (u16),
/// bytes 3-4 n_batch (u16), byte 5 flags (logits_all, backend), bytes 6-7
/// arena start offset inside a larger buffer, bytes 8-11 arena length (as a
/// signed delta around the needed size, or absolute), byte 12 a token.
pub fn arena_context(data: &[u8]) {
    let models = models();
    let model = models[byte(data, 0) as usize % models.len()];
    let hp = *model.hparams();
    let flags = byte(data, 5);
    let backend = match (flags >> 1) & 7 {
        0..=3 => None,
        k => Some(Backend::ALL[(k as usize + flags as usize) % Backend::ALL.len()]),
    };
    let params = ContextParams {
        n_ctx: u16::from_le_bytes([byte(data, 1), byte(data, 2)]) as usize,
        n_batch: u16::from_le_bytes([byte(data, 3), byte(data, 4)]) as usize,
        logits_all: flags & 1 != 0,
        backend,
        parallel: None,
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
}
