//! Fuzz model loading and evaluation: start from a real GPT-2 fixture, apply a
//! list of patches the fuzzer controls, load, and if the model loads, evaluate.
//!
//! Input layout (every field optional; missing bytes read as 0):
//! - byte 0: which fixture;
//! - byte 1: context parameters (`n_ctx = 1 + (b & 7)`, `n_batch`, `logits_all`);
//! - byte 2: number of patches (`& 15`);
//! - 8 bytes per patch: `kind, off[3], val[4]`. `kind & 3`: 0 write a byte,
//!   1 write a u32, 2 write a u64 (zero-extended), 3 truncate. `kind & 0x80`
//!   chooses the offset range: clear = header, metadata and tensor directory
//!   (where a patch changes the structure), set = the whole file;
//! - the remaining bytes are token ids (taken modulo the vocabulary).
//!
//! Property: once `Model::load` accepts a file, evaluation of valid tokens that
//! fit the context never fails (everything that could make it fail is a
//! property of the file that load must reject), and is deterministic.
#![no_main]

use embergpt::{Context, ContextParams, Error, Model};
use libfuzzer_sys::fuzz_target;

const FIXTURES: &[&[u8]] = &[
    include_bytes!("../../tests/fixtures/gpt2/a.q4_0.gguf"),
    include_bytes!("../../tests/fixtures/gpt2/c.q8_0.gguf"),
    include_bytes!("../../tests/fixtures/gpt2/b.q4_1.gguf"),
    include_bytes!("../../tests/fixtures/gpt2/a.f16.gguf"),
    include_bytes!("../../tests/fixtures/gpt2/c.f32.gguf"),
];

fn byte(d: &[u8], i: usize) -> u8 {
    d.get(i).copied().unwrap_or(0)
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fuzz_target!(|data: &[u8]| {
    let seed = FIXTURES[byte(data, 0) as usize % FIXTURES.len()];
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
    let n_ctx = (1 + (cb & 7) as usize).min(hp.n_ctx);
    let n_batch = 1 + ((cb >> 3) & 3) as usize % n_ctx;
    let params = ContextParams {
        n_ctx,
        n_batch,
        logits_all: cb & 0x40 != 0,
        backend: None,
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
    ctx.reset();
    ctx.eval(&tokens).expect("eval after reset");
    assert_eq!(
        first,
        bits(ctx.logits().unwrap()),
        "eval is not deterministic"
    );

    // Rewind to the middle and evaluate the rest again: same last logits.
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
});
