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

// ---------------------------------------------------------------------------
// Shared input reader for the structured targets below
// ---------------------------------------------------------------------------

/// Reads the fuzz input front to back; past the end every byte is 0.
struct R<'d> {
    d: &'d [u8],
    p: usize,
}

impl<'d> R<'d> {
    fn new(d: &'d [u8]) -> Self {
        R { d, p: 0 }
    }
    fn left(&self) -> usize {
        self.d.len().saturating_sub(self.p)
    }
    fn u8(&mut self) -> u8 {
        let b = byte(self.d, self.p);
        self.p = self.p.saturating_add(1);
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// The next `n` bytes (fewer at the end).
    fn bytes(&mut self, n: usize) -> &'d [u8] {
        let s = self.d.get(self.p..).unwrap_or(&[]);
        let s = &s[..n.min(s.len())];
        self.p = self.p.saturating_add(n);
        s
    }
    /// A float that is often a boundary value: NaN, infinities, zeros, 1, tiny, huge.
    fn f32(&mut self) -> f32 {
        const SPECIAL: [f32; 16] = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            2.0,
            f32::MIN_POSITIVE,
            1e-45,
            f32::MAX,
            f32::MIN,
            1e-3,
            0.95,
            100.0,
        ];
        let k = self.u8();
        if k < 0x80 {
            SPECIAL[(k & 15) as usize]
        } else if k < 0xc0 {
            (k & 0x3f) as f32 / 8.0 - 4.0
        } else {
            f32::from_bits(self.u32())
        }
    }
}

// ---------------------------------------------------------------------------
// tokenizer
// ---------------------------------------------------------------------------

use embergpt::{StreamDecoder, Tokenizer};
use std::sync::Mutex;

static GPT2_VOCAB: &[u8] = include_bytes!("../tests/fixtures/tokenizer/gpt2-vocab.gguf");
static BUNDLED: &[u8] = include_bytes!("../cli/assets/shakespeare-q8_0.gguf");

/// A small SentencePiece ("llama") vocabulary: `<unk>`, `<s>`, `</s>`, the 256 byte
/// tokens `<0xXX>`, then pieces (letters, `▁`-words, a few multi-byte characters) with
/// scores that decrease with the id, as SentencePiece writes them.
fn llama_vocab() -> &'static [u8] {
    static V: OnceLock<Vec<u8>> = OnceLock::new();
    V.get_or_init(|| {
        let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
        let mut types = vec![2i32, 3, 3];
        for b in 0..=255u8 {
            tokens.push(format!("<0x{b:02X}>"));
            types.push(6);
        }
        let mut pieces: Vec<String> = Vec::new();
        for c in "etaoinshrdlucmfwypvbgkjqxz".chars() {
            pieces.push(c.to_string());
            pieces.push(format!("\u{2581}{c}"));
        }
        for w in [
            "th",
            "he",
            "in",
            "er",
            "an",
            "re",
            "on",
            "at",
            "en",
            "nd",
            "the",
            "ing",
            "and",
            "ion",
            "\u{2581}the",
            "\u{2581}and",
            "\u{2581}to",
            "\u{2581}of",
            "\u{2581}in",
            "\u{2581}th",
            "\u{2581}a",
            "\u{2581}\u{2581}",
            "\u{2581}",
            "\u{e9}",
            "\u{65e5}",
            "\u{672c}",
            "\u{65e5}\u{672c}",
            ".",
            ",",
            "\n",
            "\u{2581}\u{2581}\u{2581}\u{2581}",
        ] {
            if !pieces.iter().any(|p| p == w) {
                pieces.push(w.to_string());
            }
        }
        for p in pieces {
            tokens.push(p);
            types.push(1);
        }
        let scores: Vec<f32> = (0..tokens.len()).map(|i| -(i as f32)).collect();
        let mut w = embergpt::gguf_write::GgufWriter::new();
        w.add_str("general.architecture", "llama");
        w.add_str("tokenizer.ggml.model", "llama");
        w.add_str_array("tokenizer.ggml.tokens", &tokens);
        w.add_f32_array("tokenizer.ggml.scores", &scores);
        w.add_i32_array("tokenizer.ggml.token_type", &types);
        w.add_u32("tokenizer.ggml.unknown_token_id", 0);
        w.add_u32("tokenizer.ggml.bos_token_id", 1);
        w.add_u32("tokenizer.ggml.eos_token_id", 2);
        w.to_bytes()
    })
}

/// The three tokenizers (GPT-2's 50,257 tokens, the bundled model's 512, and a small
/// SentencePiece vocabulary), built once.
fn tokenizers() -> &'static [Mutex<Tokenizer<'static, 'static>>; 3] {
    static T: OnceLock<[Mutex<Tokenizer<'static, 'static>>; 3]> = OnceLock::new();
    T.get_or_init(|| {
        let build = |bytes: &'static [u8]| {
            // The tokenizer keeps no borrow of the `Gguf` (only of the file bytes).
            let g = Gguf::parse(bytes).expect("fixture parses");
            let n = Tokenizer::arena_size(&g).expect("tokenizer arena size");
            // Leaked on purpose (lives as long as the static, which points into it).
            let arena = Box::leak(vec![0u8; n].into_boxed_slice());
            Mutex::new(Tokenizer::new(&g, arena).expect("fixture tokenizer"))
        };
        [build(GPT2_VOCAB), build(BUNDLED), build(llama_vocab())]
    })
}

/// Stream-decode `ids` one by one (buffer `3 + max_token_len`, as documented) plus the flush.
/// A SentencePiece vocabulary's `decode` drops the first token's leading space, so the
/// decoder that must reproduce it starts with [`StreamDecoder::at_start`].
fn stream_decode(tok: &Tokenizer<'_, '_>, ids: &[u32], spm: bool) -> Vec<u8> {
    let mut dec = if spm {
        StreamDecoder::at_start()
    } else {
        StreamDecoder::new()
    };
    let mut buf = vec![0u8; 3 + tok.max_token_len()];
    let mut out = Vec::new();
    for &id in ids {
        let k = dec
            .push(tok, id, &mut buf)
            .expect("stream push of an in-range id");
        out.extend_from_slice(&buf[..k]);
        assert!(dec.held().len() <= 3);
    }
    let k = dec.flush(&mut buf).expect("flush");
    out.extend_from_slice(&buf[..k]);
    out
}

/// Fuzz the tokenizer on both vocabularies.
///
/// Input: byte 0 flags (bit 0: which tokenizer; bit 1: id mode), then the text
/// (text mode) or 3-byte ids (id mode: a u16 id, and a byte whose top bit puts it
/// in the high byte of the id, reaching ids near `u32::MAX`).
///
/// Text mode, with and without `parse_special`:
/// - `count(x) == encode(x)` (an exact-size buffer works, one id shorter is
///   `BufferTooSmall` with a prefix written);
/// - every id is in range, and without `parse_special` none is special;
/// - `decode(encode(x)) == x` for every byte string (documented in
///   `embergpt::tokenizer`: invalid UTF-8 bytes become single-byte tokens, and
///   special tokens decode to their literal text); `decode_len` agrees;
/// - the streaming decoder's output plus flush equals `decode`, and every
///   chunk it releases is valid UTF-8 when `x` is.
///
/// Id mode: `decode`/`decode_len`/`token_len` give `TokenOutOfRange` exactly
/// when an id is `>= n_vocab` (never a panic); a `StreamDecoder::push` of such
/// an id fails with it and leaves the decoder unchanged; otherwise decode works
/// and `decode(skip_special)` is `decode` with the special tokens removed.
pub fn tokenizer(data: &[u8]) {
    let flags = byte(data, 0);
    let rest = data.get(1..).unwrap_or(&[]);
    // Bit 2 selects the SentencePiece vocabulary, else bit 0 one of the two BPE ones.
    let spm = flags & 4 != 0;
    let which = if spm { 2 } else { (flags & 1) as usize };
    let mut tok = tokenizers()[which]
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let n_vocab = tok.n_vocab();

    if flags & 2 == 0 {
        let text = rest;
        for special in [false, true] {
            let n = tok.count(text, special);
            let mut ids = vec![0u32; n];
            let got = tok
                .encode(text, special, &mut ids)
                .expect("encode, exact buffer");
            assert_eq!(got, n, "count() != encode() length");
            if n > 0 {
                let mut short = vec![u32::MAX; n - 1];
                assert_eq!(
                    tok.encode(text, special, &mut short),
                    Err(Error::BufferTooSmall),
                    "encode into a short buffer"
                );
                assert_eq!(short[..], ids[..n - 1], "short buffer: not a prefix");
            }
            for &id in &ids {
                assert!(
                    (id as usize) < n_vocab,
                    "encode produced id {id} >= n_vocab"
                );
                if !special {
                    assert!(!tok.is_special(id), "special token without parse_special");
                }
            }
            let len = tok
                .decode_len(&ids, false)
                .expect("decode_len of encode output");
            let mut out = vec![0u8; len];
            let k = tok
                .decode(&ids, false, &mut out)
                .expect("decode of encode output");
            assert_eq!(k, len, "decode_len disagrees with decode");
            // SentencePiece: exact for valid UTF-8 without U+2581 and without
            // parse_special (documented in embergpt::tokenizer::spm).
            let round_trips = !spm
                || (!special && core::str::from_utf8(text).is_ok_and(|t| !t.contains('\u{2581}')));
            if round_trips {
                assert_eq!(
                    out, text,
                    "decode(encode(x)) != x (parse_special {special})"
                );
            }
            if len > 0 {
                let mut short = vec![0u8; len - 1];
                assert_eq!(
                    tok.decode(&ids, false, &mut short),
                    Err(Error::BufferTooSmall)
                );
            }
            let streamed = stream_decode(&tok, &ids, spm);
            assert_eq!(streamed, out, "stream decoding != decode");
        }
        // Chunks of a valid UTF-8 text are whole characters.
        if core::str::from_utf8(text).is_ok() {
            let n = tok.count(text, false);
            let mut ids = vec![0u32; n];
            tok.encode(text, false, &mut ids).unwrap();
            let mut dec = StreamDecoder::new();
            let mut buf = vec![0u8; 3 + tok.max_token_len()];
            for &id in &ids {
                let k = dec.push(&*tok, id, &mut buf).unwrap();
                assert!(
                    core::str::from_utf8(&buf[..k]).is_ok(),
                    "stream decoder released a broken character"
                );
            }
            assert!(
                dec.held().is_empty(),
                "bytes held at the end of valid UTF-8"
            );
        }
    } else {
        let ids: Vec<u32> = rest
            .chunks(3)
            .map(|c| {
                let lo = u16::from_le_bytes([c[0], byte(c, 1)]) as u32;
                let hi = byte(c, 2);
                if hi & 0x80 != 0 {
                    lo | (hi as u32) << 24
                } else {
                    lo
                }
            })
            .collect();
        let bad = ids.iter().any(|&id| id as usize >= n_vocab);
        for &id in &ids {
            assert_eq!(tok.token_len(id).is_err(), id as usize >= n_vocab);
        }
        let mut out = vec![0u8; ids.len() * (tok.max_token_len() + 1)];
        if bad {
            assert_eq!(tok.decode_len(&ids, false), Err(Error::TokenOutOfRange));
            assert_eq!(
                tok.decode(&ids, false, &mut out),
                Err(Error::TokenOutOfRange)
            );
            let mut dec = StreamDecoder::new();
            let mut buf = vec![0u8; 3 + tok.max_token_len()];
            for &id in &ids {
                let before = dec;
                match dec.push(&*tok, id, &mut buf) {
                    Ok(_) => assert!((id as usize) < n_vocab),
                    Err(e) => {
                        assert_eq!(e, Error::TokenOutOfRange);
                        assert_eq!(dec, before, "failed push changed the decoder");
                    }
                }
            }
        } else {
            let len = tok.decode_len(&ids, false).unwrap();
            let k = tok
                .decode(&ids, false, &mut out)
                .expect("decode of in-range ids");
            assert_eq!(k, len);
            let whole = out[..k].to_vec();
            assert_eq!(
                stream_decode(&tok, &ids, spm),
                whole,
                "stream decoding != decode"
            );
            let kept: Vec<u32> = ids
                .iter()
                .copied()
                .filter(|&i| !tok.is_special(i))
                .collect();
            let mut a = vec![0u8; len];
            let mut b = vec![0u8; len];
            let ka = tok.decode(&ids, true, &mut a).unwrap();
            let kb = tok.decode(&kept, false, &mut b).unwrap();
            // SentencePiece drops the leading space of the sequence's first token, so
            // removing a special first token changes which token that is.
            if !spm || ids.first().is_none_or(|&i| !tok.is_special(i)) {
                assert_eq!(a[..ka], b[..kb], "skip_special is not 'drop the specials'");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// sampler
// ---------------------------------------------------------------------------

use embergpt::{Sampler, SamplerParams};

/// The documented ranges of `SamplerParams`, written out independently.
fn params_valid(p: &SamplerParams) -> bool {
    p.temperature.is_finite()
        && p.temperature >= 0.0
        && p.top_p > 0.0
        && p.top_p <= 1.0
        && (0.0..=1.0).contains(&p.min_p)
        && p.repeat_penalty.is_finite()
        && p.repeat_penalty > 0.0
        && p.presence_penalty.is_finite()
        && p.frequency_penalty.is_finite()
}

/// Fuzz the sampler: arbitrary logits (NaN, infinities, ties, all `-inf`) and
/// arbitrary parameters.
///
/// Input: n_vocab (u16, `1 + v % 700`: both the top-k heap and quickselect
/// paths), temperature, top_k (u16), top_p, min_p, repeat, presence, frequency
/// penalties (floats, often boundary values), penalty_last_n, seed, a count of
/// tokens to accept (u32s, any value), then the logits (cycled over the rest).
///
/// Properties: `validate()` is `Ok` exactly for the documented ranges and
/// otherwise `BadParameter`, as are `arena_size` and `new`; an arena one byte
/// short is `ArenaTooSmall`; a logits row of the wrong length is `BadParameter`;
/// `sample` returns an id `< n_vocab` whose logit is not NaN or `-inf`, or
/// `NoCandidates` (always when every logit is NaN or `-inf`; never otherwise when
/// no penalty applies); greedy without penalties is the argmax with ties to the
/// lowest id; the same seed and inputs give the same tokens (a second sampler,
/// and the first after `reset`).
pub fn sampler(data: &[u8]) {
    let mut r = R::new(data);
    let n_vocab = 1 + r.u16() as usize % 700;
    let mut p = SamplerParams {
        temperature: r.f32(),
        top_k: r.u16() as usize,
        top_p: r.f32(),
        min_p: r.f32(),
        repeat_penalty: r.f32(),
        presence_penalty: r.f32(),
        frequency_penalty: r.f32(),
        penalty_last_n: r.u8() as usize % 80,
        seed: r.u32() as u64 * 0x9E37_79B9,
    };
    // Often a valid temperature, so the sampling paths are reached.
    if r.u8() & 1 == 1 {
        p.temperature = p.temperature.abs().min(4.0);
        if p.temperature.is_nan() {
            p.temperature = 0.0;
        }
    }
    let n_accept = r.u8() as usize % 16;
    let accepts: Vec<u32> = (0..n_accept)
        .map(|_| {
            let x = r.u32();
            if x & 0x8000_0000 != 0 {
                x
            } else {
                x % n_vocab as u32
            }
        })
        .collect();
    let tail = r.bytes(usize::MAX);
    let mut tr = R::new(tail);
    let logits: Vec<f32> = (0..n_vocab)
        .map(|_| {
            if tr.left() == 0 {
                tr.p = 0;
            }
            tr.f32()
        })
        .collect();

    let valid = params_valid(&p);
    assert_eq!(
        p.validate().is_ok(),
        valid,
        "validate() vs documented ranges"
    );
    if !valid {
        assert_eq!(p.validate(), Err(Error::BadParameter));
        assert_eq!(Sampler::arena_size(n_vocab, &p), Err(Error::BadParameter));
        let mut arena = vec![0u8; 1 << 16];
        assert_eq!(
            Sampler::new(n_vocab, &p, &mut arena).err(),
            Some(Error::BadParameter)
        );
        return;
    }
    let size = Sampler::arena_size(n_vocab, &p).expect("arena_size of valid params");
    let mut short = vec![0u8; size - 1];
    assert_eq!(
        Sampler::new(n_vocab, &p, &mut short).err(),
        Some(Error::ArenaTooSmall {
            needed: size,
            available: size - 1
        })
    );
    let mut a1 = vec![0u8; size];
    let mut a2 = vec![0u8; size];
    let mut s1 = Sampler::new(n_vocab, &p, &mut a1).expect("new with arena_size bytes");
    let mut s2 = Sampler::new(n_vocab, &p, &mut a2).unwrap();
    let mut bigger = p;
    bigger.penalty_last_n += 1;
    assert_eq!(s1.set_params(&bigger), Err(Error::BadParameter));
    assert_eq!(s1.sample(&logits[..n_vocab - 1]), Err(Error::BadParameter));
    let mut long = logits.clone();
    long.push(0.0);
    assert_eq!(s1.sample(&long), Err(Error::BadParameter));

    for &t in &accepts {
        s1.accept(t);
        s2.accept(t);
    }
    let none_left = logits.iter().all(|&l| l.is_nan() || l == f32::NEG_INFINITY);
    let penalties = p.penalty_last_n > 0
        && !accepts.is_empty()
        && (p.repeat_penalty != 1.0 || p.presence_penalty != 0.0 || p.frequency_penalty != 0.0);

    let run = |s: &mut Sampler<'_>| -> Vec<Result<u32, Error>> {
        (0..3)
            .map(|_| {
                let r = s.sample(&logits);
                if let Ok(t) = r {
                    s.accept(t);
                }
                r
            })
            .collect()
    };
    let first = run(&mut s1);
    for (i, res) in first.iter().enumerate() {
        match *res {
            Ok(t) => {
                assert!(
                    (t as usize) < n_vocab,
                    "sampled id {t} >= n_vocab {n_vocab}"
                );
                let l = logits[t as usize];
                assert!(
                    !l.is_nan() && l != f32::NEG_INFINITY,
                    "sampled token {t} with logit {l}"
                );
                assert!(!none_left, "sampled with no candidate");
                if i == 0 && p.temperature == 0.0 && !penalties {
                    // Independent argmax, ties to the lowest id (NaN is -inf).
                    let clean = |l: f32| if l.is_nan() { f32::NEG_INFINITY } else { l };
                    let best = (0..n_vocab).fold(0usize, |b, j| {
                        if clean(logits[j]) > clean(logits[b]) {
                            j
                        } else {
                            b
                        }
                    });
                    assert_eq!(t as usize, best, "greedy is not the argmax");
                }
            }
            Err(Error::NoCandidates) => {
                if i == 0 && !penalties {
                    assert!(none_left, "NoCandidates with candidates and no penalties");
                }
            }
            Err(e) => panic!("sample returned {e:?}"),
        }
    }
    if none_left {
        assert_eq!(first[0], Err(Error::NoCandidates));
    }
    assert_eq!(
        run(&mut s2),
        first,
        "same seed and inputs, different tokens"
    );
    s1.reset();
    for &t in &accepts {
        s1.accept(t);
    }
    assert_eq!(
        run(&mut s1),
        first,
        "reset does not restore the initial state"
    );
}

// ---------------------------------------------------------------------------
// capi_sequence
// ---------------------------------------------------------------------------

#[cfg(feature = "capi")]
#[allow(unused_imports)] // only the capi_sequence target and the replay test call it
pub use capi_seq::capi_sequence;

#[cfg(feature = "capi")]
mod capi_seq {
    use super::{OnceLock, BUNDLED, R};
    use core::ffi::{c_char, c_int, c_void};
    use core::ptr::{null, null_mut};
    use embergpt::capi::*;

    /// The bundled model, opened once through the C API (handle address).
    fn model() -> *const egpt_model {
        static M: OnceLock<usize> = OnceLock::new();
        *M.get_or_init(|| {
            let mem = Box::leak(vec![0u64; EGPT_MODEL_STORAGE_SIZE / 8].into_boxed_slice());
            let mut m = null_mut();
            // SAFETY: the bytes are static, `mem` is leaked (lives forever) and writable.
            let st = unsafe {
                egpt_model_open(
                    BUNDLED.as_ptr(),
                    BUNDLED.len(),
                    mem.as_mut_ptr().cast(),
                    EGPT_MODEL_STORAGE_SIZE,
                    &mut m,
                )
            };
            assert_eq!(st, EGPT_OK, "bundled model opens");
            m as usize
        }) as *const egpt_model
    }

    fn check(st: egpt_status, allowed: &[egpt_status], what: &str) {
        assert!(
            allowed.contains(&st),
            "{what}: status {st} not in the documented set {allowed:?}"
        );
    }

    /// What the callback of `egpt_generate` does (passed as `user`).
    struct Cb {
        ctx: *mut egpt_context,
        sampler: *mut egpt_sampler,
        tok: *mut egpt_tokenizer,
        stop_after: usize,
        calls: usize,
        nasty: bool,
    }

    unsafe extern "C" fn callback(
        user: *mut c_void,
        token: u32,
        bytes: *const c_char,
        len: usize,
    ) -> c_int {
        // SAFETY: `user` is the `Cb` the interpreter passed; only used during the call.
        let cb = unsafe { &mut *user.cast::<Cb>() };
        cb.calls += 1;
        assert!(
            len == 0 || !bytes.is_null(),
            "callback bytes NULL with len {len}"
        );
        assert!(
            token == EGPT_NO_TOKEN || token < 512,
            "callback token {token}"
        );
        if cb.nasty {
            // The context and sampler are busy during generation: BAD_STATE, no crash.
            let t = 0u32;
            // SAFETY: live handles (busy), valid token pointer.
            unsafe {
                assert_eq!(egpt_context_eval(cb.ctx, &t, 1), EGPT_ERR_BAD_STATE);
                assert_eq!(egpt_context_rewind(cb.ctx, 0), EGPT_ERR_BAD_STATE);
                assert_eq!(egpt_sampler_accept(cb.sampler, 0), EGPT_ERR_BAD_STATE);
                // The tokenizer is not busy.
                let mut n = 0usize;
                let mut out = [0u32; 8];
                let st = egpt_tokenize(cb.tok, c"ab".as_ptr(), 2, 0, out.as_mut_ptr(), 8, &mut n);
                assert_eq!(st, EGPT_OK);
            }
        }
        c_int::from(cb.calls >= cb.stop_after)
    }

    /// A pointer to use as a handle: the real one, NULL, a zeroed fake, or a
    /// handle of another kind (all memory the call may read exists).
    fn pick<T>(k: u8, real: *mut T, fake: *mut u8, other: *mut u8) -> *mut T {
        match k % 8 {
            5 => null_mut(),
            6 => fake.cast(),
            7 => other.cast(),
            _ => real,
        }
    }

    /// Interpret the input as a sequence of C API calls on the bundled model.
    ///
    /// Setup (3 bytes + sampler bytes): context parameters (`n_ctx` 1..=8,
    /// `n_batch`, `logits_all`; sometimes a wrong `struct_size` or `n_batch = 0`,
    /// which must fail with the documented status, then valid ones are used), an
    /// arena one byte short (`ARENA_TOO_SMALL`), sampler parameters (default or
    /// greedy, with arbitrary fields: invalid ones must be `BAD_PARAMETER`), the
    /// tokenizer. Then up to 24 operations, one byte each plus arguments:
    /// eval / eval_all (NULL or misaligned pointers, 0..n_ctx+2 tokens, ids up to
    /// n_vocab+2, wrong handles), rewind, reset, logits / copy_logits with short
    /// buffers, tokenize (short or NULL output), detokenize / token_to_piece
    /// (short buffers, bad ids), the stream decoder (also corrupted), sampler
    /// sample (wrong lengths, NaN rows) / accept / reset, and generate (budgets
    /// of 0..4, stop strings valid and not, NULL arrays, prompts, a callback that
    /// stops early or calls the busy handles).
    ///
    /// Every call must return a status from its documented list (exactly the
    /// predicted one for eval, eval_all, rewind, logits and the setup); `n_past`
    /// must follow the shadow state; after every failed call a valid `eval` of
    /// one token succeeds (rewinding one position first if the context is full).
    pub fn capi_sequence(data: &[u8]) {
        let model = model();
        let n_vocab = 512usize;
        let mut r = R::new(data);

        // ---- context
        let b0 = r.u8();
        let b1 = r.u8();
        let mut cp = egpt_context_default_params();
        cp.n_ctx = 1 + (b0 & 15) as usize % 8;
        cp.n_batch = 1 + (b1 & 7) as usize % cp.n_ctx;
        cp.logits_all = c_int::from(b0 & 0x10 != 0);
        let mut size = 0usize;
        if b1 & 0x80 != 0 {
            let mut bad = cp;
            let expect = if b1 & 0x40 != 0 {
                bad.struct_size += 8;
                EGPT_ERR_BAD_STRUCT_SIZE
            } else {
                bad.n_batch = 0;
                EGPT_ERR_BAD_BATCH_SIZE
            };
            // SAFETY: live model, readable params, writable out.
            let st = unsafe { egpt_context_arena_size(model, &bad, &mut size) };
            assert_eq!(st, expect, "arena_size of bad params");
        }
        // SAFETY: as above.
        let st = unsafe { egpt_context_arena_size(model, &cp, &mut size) };
        assert_eq!(st, EGPT_OK);
        let mut ctx_arena = vec![0u8; size + 1];
        let mut ctx: *mut egpt_context = null_mut();
        // SAFETY: the arena is writable for the lengths given.
        unsafe {
            let st = egpt_context_create(
                model,
                &cp,
                ctx_arena.as_mut_ptr().cast(),
                size - 1,
                &mut ctx,
            );
            assert_eq!(st, EGPT_ERR_ARENA_TOO_SMALL, "create with one byte short");
            // Any start alignment works: start at offset 1.
            let st = egpt_context_create(
                model,
                &cp,
                ctx_arena.as_mut_ptr().add(1).cast(),
                size,
                &mut ctx,
            );
            assert_eq!(st, EGPT_OK, "create with arena_size bytes");
        }

        // ---- sampler
        let sb = r.u8();
        let mut sp = if sb & 1 == 0 {
            egpt_sampler_greedy_params()
        } else {
            egpt_sampler_default_params()
        };
        if sb & 2 != 0 {
            sp.temperature = r.f32();
            sp.top_p = r.f32();
            sp.min_p = r.f32();
            sp.repeat_penalty = r.f32();
            sp.top_k = r.u8() as usize;
            sp.penalty_last_n = r.u8() as usize % 32;
        }
        sp.seed = r.u8() as u64;
        let mut ssize = 0usize;
        // SAFETY: live model, readable params, writable out.
        let st = unsafe { egpt_sampler_arena_size(model, &sp, &mut ssize) };
        if st != EGPT_OK {
            assert_eq!(st, EGPT_ERR_BAD_PARAMETER, "sampler params");
            sp = egpt_sampler_greedy_params();
            // SAFETY: as above.
            assert_eq!(
                unsafe { egpt_sampler_arena_size(model, &sp, &mut ssize) },
                EGPT_OK
            );
        }
        let mut s_arena = vec![0u8; ssize];
        let mut sampler: *mut egpt_sampler = null_mut();
        // SAFETY: writable arena of ssize bytes.
        let st = unsafe {
            egpt_sampler_create(model, &sp, s_arena.as_mut_ptr().cast(), ssize, &mut sampler)
        };
        assert_eq!(st, EGPT_OK);

        // ---- tokenizer
        let mut tsize = 0usize;
        // SAFETY: live model, writable out.
        assert_eq!(
            unsafe { egpt_tokenizer_arena_size(model, &mut tsize) },
            EGPT_OK
        );
        let mut t_arena = vec![0u8; tsize];
        let mut tok: *mut egpt_tokenizer = null_mut();
        // SAFETY: writable arena of tsize bytes.
        let st =
            unsafe { egpt_tokenizer_create(model, t_arena.as_mut_ptr().cast(), tsize, &mut tok) };
        assert_eq!(st, EGPT_OK);

        // A fake handle (zeroed, large enough for any handle) and a pointer of another kind.
        let mut fake = vec![0u64; 4096];
        let fake_p = fake.as_mut_ptr().cast::<u8>();
        let mut n_past = 0usize;
        let mut has_logits = false;
        let mut logit_rows = 0usize;
        let n_ctx = cp.n_ctx;
        let rows = if cp.logits_all != 0 { cp.n_batch } else { 1 };
        let mut dec = egpt_stream_decoder {
            magic: 0,
            held: [0; 3],
            n_held: 0,
        };
        // SAFETY: writable decoder.
        assert_eq!(unsafe { egpt_stream_decoder_init(&mut dec) }, EGPT_OK);

        let mut ops = 0;
        while r.left() > 0 && ops < 24 {
            ops += 1;
            let op = r.u8();
            let hk = r.u8();
            let st: egpt_status;
            match op % 14 {
                // eval / eval_all
                0 | 1 => {
                    let all = op % 14 == 1;
                    let n = r.u8() as usize % (n_ctx + 3);
                    let buf: Vec<u32> = (0..n + 1)
                        .map(|_| {
                            let b = r.u8();
                            if b == 0xff {
                                n_vocab as u32 + (r.u8() & 1) as u32
                            } else {
                                (b as u32 * 2 + (b as u32 >> 7)) % n_vocab as u32
                            }
                        })
                        .collect();
                    let (ptr, misaligned, null_tokens) = match (hk >> 3) % 8 {
                        0 => (null::<u32>(), false, true),
                        1 => (
                            buf.as_ptr().cast::<u8>().wrapping_add(1).cast::<u32>(),
                            true,
                            false,
                        ),
                        _ => (buf.as_ptr(), false, false),
                    };
                    let c = pick(hk, ctx, fake_p, tok.cast());
                    let oor = buf[..n].iter().any(|&t| t as usize >= n_vocab);
                    let expect = if null_tokens || c.is_null() {
                        EGPT_ERR_NULL_POINTER
                    } else if c != ctx {
                        EGPT_ERR_BAD_STATE
                    } else if n == 0 {
                        EGPT_ERR_EMPTY_INPUT
                    } else if n > n_ctx - n_past {
                        EGPT_ERR_CONTEXT_FULL
                    } else if misaligned {
                        EGPT_ERR_BAD_PARAMETER
                    } else if oor {
                        EGPT_ERR_TOKEN_OUT_OF_RANGE
                    } else if all && n > rows {
                        EGPT_ERR_BATCH_TOO_LARGE
                    } else {
                        EGPT_OK
                    };
                    // SAFETY: `ptr` is NULL or points into `buf` (n + 1 values; when
                    // misaligned, the call refuses before reading); handles are live or fakes.
                    st = unsafe {
                        if all {
                            egpt_context_eval_all(c, ptr, n)
                        } else {
                            egpt_context_eval(c, ptr, n)
                        }
                    };
                    assert_eq!(
                        st,
                        expect,
                        "eval{} n={n} n_past={n_past} n_ctx={n_ctx}",
                        if all { "_all" } else { "" }
                    );
                    if st == EGPT_OK {
                        n_past += n;
                        has_logits = true;
                        logit_rows = if all { n } else { 1 };
                    }
                }
                // rewind / reset
                2 => {
                    let pos = r.u8() as usize % (n_ctx + 3);
                    let c = pick(hk, ctx, fake_p, tok.cast());
                    // SAFETY: live or fake handle.
                    st = unsafe {
                        if hk & 0x40 != 0 {
                            egpt_context_reset(c)
                        } else {
                            egpt_context_rewind(c, pos)
                        }
                    };
                    let expect = if c.is_null() {
                        EGPT_ERR_NULL_POINTER
                    } else if c != ctx {
                        EGPT_ERR_BAD_STATE
                    } else if hk & 0x40 == 0 && pos > n_past {
                        EGPT_ERR_BAD_POSITION
                    } else {
                        EGPT_OK
                    };
                    assert_eq!(st, expect, "rewind/reset");
                    if st == EGPT_OK {
                        let pos = if hk & 0x40 != 0 { 0 } else { pos };
                        if pos < n_past {
                            has_logits = false;
                        }
                        n_past = pos;
                    }
                }
                // logits / copy_logits / all_logits
                3 => {
                    let c = pick(hk, ctx, fake_p, tok.cast());
                    let len = r.u16() as usize % (n_vocab * 2 + 2);
                    let mut buf = vec![0f32; len];
                    let mut p: *const f32 = null();
                    let mut n = 0usize;
                    let base = if c.is_null() {
                        EGPT_ERR_NULL_POINTER
                    } else if c != ctx {
                        EGPT_ERR_BAD_STATE
                    } else if !has_logits {
                        EGPT_ERR_NO_LOGITS
                    } else {
                        EGPT_OK
                    };
                    // SAFETY: live or fake handle, writable outs, buf writable for len.
                    st = unsafe {
                        match (hk >> 3) % 3 {
                            0 => {
                                let st = egpt_context_logits(c, &mut p, &mut n);
                                assert_eq!(st, base, "logits");
                                if st == EGPT_OK {
                                    assert_eq!(n, n_vocab);
                                    assert!(!p.is_null());
                                }
                                st
                            }
                            1 => {
                                let mut rows = 0usize;
                                let st = egpt_context_all_logits(c, &mut p, &mut rows, &mut n);
                                assert_eq!(st, base, "all_logits");
                                if st == EGPT_OK {
                                    assert_eq!(
                                        (rows, n),
                                        (logit_rows, n_vocab),
                                        "all_logits shape"
                                    );
                                }
                                st
                            }
                            _ => {
                                let st = egpt_context_copy_logits(
                                    c,
                                    if len == 0 {
                                        null_mut()
                                    } else {
                                        buf.as_mut_ptr()
                                    },
                                    len,
                                    &mut n,
                                );
                                check(
                                    st,
                                    &[base, EGPT_ERR_BUFFER_TOO_SMALL, EGPT_ERR_NULL_POINTER],
                                    "copy_logits",
                                );
                                if st == EGPT_OK {
                                    assert!(len >= n_vocab && n == n_vocab);
                                } else if base == EGPT_OK && len >= n_vocab {
                                    panic!("copy_logits failed ({st}) with a big enough buffer");
                                }
                                st
                            }
                        }
                    };
                }
                // tokenize (short or NULL output), then check the round trip
                4 => {
                    let tl = r.u8() as usize % 24;
                    let text = r.bytes(tl).to_vec();
                    let out_len = r.u8() as usize % 24;
                    let special = c_int::from(hk & 0x40 != 0);
                    let t = pick(hk, tok, fake_p, ctx.cast());
                    let mut out = vec![0u32; out_len];
                    let mut n = 0usize;
                    let outp = if out_len == 0 && hk & 0x20 != 0 {
                        null_mut()
                    } else {
                        out.as_mut_ptr()
                    };
                    // SAFETY: text readable, out writable for out_len.
                    st = unsafe {
                        egpt_tokenize(
                            t,
                            text.as_ptr().cast(),
                            text.len(),
                            special,
                            outp,
                            out_len,
                            &mut n,
                        )
                    };
                    let ok_set: &[egpt_status] = if t.is_null() {
                        &[EGPT_ERR_NULL_POINTER]
                    } else if t != tok {
                        &[EGPT_ERR_BAD_STATE]
                    } else {
                        &[EGPT_OK, EGPT_ERR_BUFFER_TOO_SMALL]
                    };
                    check(st, ok_set, "tokenize");
                    if t == tok && (st == EGPT_OK || st == EGPT_ERR_BUFFER_TOO_SMALL) {
                        assert_eq!(
                            st == EGPT_OK,
                            n <= out_len,
                            "tokenize: n_out {n} vs out_len {out_len}"
                        );
                        let mut ids = vec![0u32; n];
                        let mut m = 0usize;
                        // SAFETY: as above, exact buffer.
                        let st2 = unsafe {
                            egpt_tokenize(
                                tok,
                                text.as_ptr().cast(),
                                text.len(),
                                special,
                                ids.as_mut_ptr(),
                                n,
                                &mut m,
                            )
                        };
                        assert_eq!((st2, m), (EGPT_OK, n), "tokenize with the reported size");
                        let mut back = vec![0u8; text.len() + 1];
                        let mut k = 0usize;
                        // SAFETY: ids readable, back writable.
                        let st3 = unsafe {
                            egpt_detokenize(
                                tok,
                                ids.as_ptr(),
                                n,
                                0,
                                back.as_mut_ptr().cast(),
                                back.len(),
                                &mut k,
                            )
                        };
                        assert_eq!(st3, EGPT_OK);
                        assert_eq!(back[..k], text[..], "detokenize(tokenize(x)) != x");
                    }
                }
                // detokenize / token_to_piece with short buffers and bad ids
                5 => {
                    let n = r.u8() as usize % 6;
                    let ids: Vec<u32> = (0..n)
                        .map(|_| r.u16() as u32 % (n_vocab as u32 + 4))
                        .collect();
                    let bl = r.u8() as usize % 40;
                    let mut buf = vec![0u8; bl];
                    let mut k = 0usize;
                    let t = pick(hk, tok, fake_p, ctx.cast());
                    let bp = if bl == 0 && hk & 0x20 != 0 {
                        null_mut()
                    } else {
                        buf.as_mut_ptr().cast()
                    };
                    // SAFETY: ids readable for n, buf writable for bl.
                    st = unsafe {
                        if hk & 0x40 != 0 {
                            egpt_token_to_piece(
                                t,
                                ids.first().copied().unwrap_or(n_vocab as u32),
                                bp,
                                bl,
                                &mut k,
                            )
                        } else {
                            egpt_detokenize(
                                t,
                                if n == 0 { null() } else { ids.as_ptr() },
                                n,
                                c_int::from(hk & 0x10 != 0),
                                bp,
                                bl,
                                &mut k,
                            )
                        }
                    };
                    let ok_set: &[egpt_status] = if t.is_null() {
                        &[EGPT_ERR_NULL_POINTER]
                    } else if t != tok {
                        &[EGPT_ERR_BAD_STATE]
                    } else {
                        &[
                            EGPT_OK,
                            EGPT_ERR_BUFFER_TOO_SMALL,
                            EGPT_ERR_TOKEN_OUT_OF_RANGE,
                        ]
                    };
                    check(st, ok_set, "detokenize/token_to_piece");
                    if st == EGPT_OK {
                        assert!(k <= bl);
                    }
                }
                // stream decoder (sometimes corrupted)
                6 => {
                    let id = r.u16() as u32 % (n_vocab as u32 + 2);
                    let bl = r.u8() as usize % 12;
                    let mut buf = vec![0u8; bl];
                    let mut k = 0usize;
                    let mut d = dec;
                    let corrupt = hk & 0x60 == 0x60;
                    if corrupt {
                        d.n_held = 4 + (hk & 7);
                    }
                    let t = pick(hk, tok, fake_p, ctx.cast());
                    // SAFETY: decoder and buf writable.
                    st = unsafe {
                        if hk & 0x10 != 0 {
                            egpt_stream_decoder_flush(&mut d, buf.as_mut_ptr().cast(), bl, &mut k)
                        } else {
                            egpt_stream_decoder_push(
                                &mut d,
                                t,
                                id,
                                buf.as_mut_ptr().cast(),
                                bl,
                                &mut k,
                            )
                        }
                    };
                    check(
                        st,
                        &[
                            EGPT_OK,
                            EGPT_ERR_NULL_POINTER,
                            EGPT_ERR_BAD_STATE,
                            EGPT_ERR_BUFFER_TOO_SMALL,
                            EGPT_ERR_TOKEN_OUT_OF_RANGE,
                        ],
                        "stream decoder",
                    );
                    if corrupt {
                        assert_ne!(st, EGPT_OK, "corrupted decoder accepted");
                    }
                    if st == EGPT_OK {
                        assert!(k <= bl);
                        dec = d;
                    } else if !corrupt {
                        assert_eq!(
                            (d.magic, d.held, d.n_held),
                            (dec.magic, dec.held, dec.n_held),
                            "a failed decoder call changed it"
                        );
                    }
                }
                // sampler: sample (context logits or an arbitrary row) / accept / reset
                7 | 8 => {
                    let s = pick(hk, sampler, fake_p, tok.cast());
                    let len = if hk & 0x10 != 0 {
                        n_vocab
                    } else {
                        r.u16() as usize % (n_vocab + 8)
                    };
                    let fill = r.f32();
                    let mut row = vec![fill; len.max(1)];
                    if let Some(x) = row.get_mut(r.u16() as usize % len.max(1)) {
                        *x = r.f32();
                    }
                    let mut t = u32::MAX;
                    // SAFETY: row readable for len (>= 0) floats; out writable.
                    st = unsafe {
                        match hk >> 6 {
                            0 | 1 => egpt_sampler_sample(s, row.as_ptr(), len, &mut t),
                            2 => egpt_sampler_accept(s, r.u32()),
                            _ => egpt_sampler_reset(s),
                        }
                    };
                    let base = if s.is_null() {
                        EGPT_ERR_NULL_POINTER
                    } else if s != sampler {
                        EGPT_ERR_BAD_STATE
                    } else {
                        EGPT_OK
                    };
                    if hk >> 6 < 2 && base == EGPT_OK {
                        let none = row[..len]
                            .iter()
                            .all(|l| l.is_nan() || *l == f32::NEG_INFINITY);
                        if len != n_vocab {
                            assert_eq!(st, EGPT_ERR_BAD_PARAMETER, "sample with {len} logits");
                        } else {
                            check(st, &[EGPT_OK, EGPT_ERR_NO_CANDIDATES], "sample");
                            if none {
                                assert_eq!(st, EGPT_ERR_NO_CANDIDATES);
                            }
                            if st == EGPT_OK {
                                assert!((t as usize) < n_vocab, "sampled {t}");
                            }
                        }
                    } else {
                        assert_eq!(st, base, "sampler call");
                    }
                }
                // generate
                9 | 10 => {
                    let mut gp = egpt_generate_default_params();
                    gp.max_tokens = r.u8() as usize % 5;
                    gp.stop_at_eos = c_int::from(hk & 1 == 0);
                    let ns = r.u8() as usize % 10;
                    let stops: Vec<Vec<u8>> = (0..ns)
                        .map(|_| {
                            let l = r.u8() as usize;
                            let l = if l < 0xf0 { 1 + l % 4 } else { (l - 0xf0) * 9 };
                            (0..l)
                                .map(|i| b"e t\nao"[(i + r.u8() as usize) % 6])
                                .collect()
                        })
                        .collect();
                    let ptrs: Vec<*const c_char> =
                        stops.iter().map(|s| s.as_ptr().cast()).collect();
                    let lens: Vec<usize> = stops.iter().map(Vec::len).collect();
                    let sflags = r.u8();
                    if ns > 0 {
                        gp.stop_strings = if sflags & 0x0f == 1 {
                            null()
                        } else {
                            ptrs.as_ptr()
                        };
                        gp.stop_lens = if sflags & 0x0f == 2 {
                            null()
                        } else {
                            lens.as_ptr()
                        };
                    }
                    gp.n_stop = ns;
                    if sflags & 0xf0 == 0x10 {
                        gp.struct_size += 1;
                    }
                    let np = r.u8() as usize % 6;
                    let prompt: Vec<u32> = (0..np)
                        .map(|_| r.u16() as u32 % (n_vocab as u32 + 1))
                        .collect();
                    let c = pick(hk >> 1, ctx, fake_p, tok.cast());
                    let s = pick(hk >> 4, sampler, fake_p, ctx.cast());
                    let mut user = Cb {
                        ctx,
                        sampler,
                        tok,
                        stop_after: 1 + r.u8() as usize % 4,
                        calls: 0,
                        nasty: op % 14 == 10,
                    };
                    let mut res = egpt_generate_result {
                        struct_size: core::mem::size_of::<egpt_generate_result>(),
                        stop_reason: 0,
                        stop_index: 0,
                        n_sampled: 0,
                        n_emitted: 0,
                        unevaluated: 0,
                    };
                    let cb: egpt_token_callback = if sflags & 0x20 != 0 {
                        None
                    } else {
                        Some(callback)
                    };
                    // SAFETY: handles live or fakes; prompt, params and stop strings
                    // readable; the callback's user is `user`, alive during the call.
                    st = unsafe {
                        egpt_generate(
                            c,
                            tok,
                            s,
                            if np == 0 { null() } else { prompt.as_ptr() },
                            np,
                            &gp,
                            cb,
                            (&mut user as *mut Cb).cast(),
                            &mut res,
                        )
                    };
                    check(
                        st,
                        &[
                            EGPT_OK,
                            EGPT_ERR_NULL_POINTER,
                            EGPT_ERR_BAD_STATE,
                            EGPT_ERR_BAD_STRUCT_SIZE,
                            EGPT_ERR_BAD_PARAMETER,
                            EGPT_ERR_CONTEXT_FULL,
                            EGPT_ERR_TOKEN_OUT_OF_RANGE,
                            EGPT_ERR_NO_LOGITS,
                            EGPT_ERR_NO_CANDIDATES,
                        ],
                        "generate",
                    );
                    if c != ctx || s != sampler {
                        assert_ne!(st, EGPT_OK, "generate with a wrong handle");
                    }
                    if st == EGPT_OK {
                        assert!(res.n_emitted <= res.n_sampled);
                        if gp.max_tokens > 0 {
                            assert!(res.n_sampled <= gp.max_tokens, "budget exceeded");
                        }
                    }
                    // Resynchronise the shadow: generate only ever adds tokens.
                    let mut now = 0usize;
                    // SAFETY: live handle, writable out.
                    assert_eq!(unsafe { egpt_context_n_past(ctx, &mut now) }, EGPT_OK);
                    assert!(
                        now >= n_past && now <= n_ctx,
                        "n_past {n_past} -> {now} (n_ctx {n_ctx})"
                    );
                    if now != n_past {
                        n_past = now;
                    }
                    let mut p: *const f32 = null();
                    let mut n = 0usize;
                    // SAFETY: live handle, writable outs.
                    has_logits = unsafe { egpt_context_logits(ctx, &mut p, &mut n) } == EGPT_OK;
                    logit_rows = 1;
                }
                // getters with wrong handles and NULL outs
                11 => {
                    let c = pick(hk, ctx, fake_p, tok.cast());
                    let mut v = 0usize;
                    let outp: *mut usize = if hk & 0x40 != 0 { null_mut() } else { &mut v };
                    // SAFETY: handle live or fake; out NULL or writable.
                    st = unsafe {
                        match (hk >> 3) & 3 {
                            0 => egpt_context_n_past(c, outp),
                            1 => egpt_context_n_ctx(c, outp),
                            _ => egpt_context_n_batch(c, outp),
                        }
                    };
                    let expect = if c.is_null() || outp.is_null() {
                        EGPT_ERR_NULL_POINTER
                    } else if c != ctx {
                        EGPT_ERR_BAD_STATE
                    } else {
                        EGPT_OK
                    };
                    assert_eq!(st, expect, "getter");
                    if st == EGPT_OK {
                        let want = match (hk >> 3) & 3 {
                            0 => n_past,
                            1 => n_ctx,
                            _ => cp.n_batch,
                        };
                        assert_eq!(v, want, "getter value");
                    }
                }
                // model/tokenizer info with wrong struct sizes
                12 => {
                    let mut info = egpt_tokenizer_info {
                        struct_size: core::mem::size_of::<egpt_tokenizer_info>()
                            + (hk & 1) as usize,
                        n_vocab: 0,
                        n_merges: 0,
                        max_token_len: 0,
                        bos: 0,
                        eos: 0,
                    };
                    let t = pick(hk >> 1, tok, fake_p, ctx.cast());
                    // SAFETY: handle live or fake; info writable.
                    st = unsafe { egpt_tokenizer_get_info(t, &mut info) };
                    let expect = if t.is_null() {
                        EGPT_ERR_NULL_POINTER
                    } else if t != tok {
                        EGPT_ERR_BAD_STATE
                    } else if hk & 1 != 0 {
                        EGPT_ERR_BAD_STRUCT_SIZE
                    } else {
                        EGPT_OK
                    };
                    assert_eq!(st, expect, "tokenizer_get_info");
                    if st == EGPT_OK {
                        assert_eq!(info.n_vocab, n_vocab);
                    }
                }
                // a second context in a short / misaligned arena, or bad params
                _ => {
                    let mut p2 = cp;
                    p2.n_ctx = r.u16() as usize;
                    p2.n_batch = r.u8() as usize;
                    p2.backend = (r.u8() % 10) as egpt_backend;
                    let mut need = 0usize;
                    // SAFETY: live model, readable params, writable out.
                    st = unsafe { egpt_context_arena_size(model, &p2, &mut need) };
                    check(
                        st,
                        &[
                            EGPT_OK,
                            EGPT_ERR_BAD_CONTEXT_LENGTH,
                            EGPT_ERR_BAD_BATCH_SIZE,
                            EGPT_ERR_BAD_PARAMETER,
                        ],
                        "arena_size",
                    );
                    if st == EGPT_OK && need < (64 << 20) {
                        let give = if hk & 1 != 0 { need } else { need - 1 };
                        let mut a = vec![0u8; give + 3];
                        let mut c2: *mut egpt_context = null_mut();
                        // SAFETY: arena writable for give bytes from offset (hk>>1)&3 <= 3.
                        let st2 = unsafe {
                            egpt_context_create(
                                model,
                                &p2,
                                a.as_mut_ptr().add(((hk >> 1) & 3) as usize).cast(),
                                give,
                                &mut c2,
                            )
                        };
                        if hk & 1 == 0 {
                            assert_eq!(st2, EGPT_ERR_ARENA_TOO_SMALL);
                        } else {
                            check(st2, &[EGPT_OK, EGPT_ERR_BACKEND_UNAVAILABLE], "create");
                        }
                    }
                }
            }

            // After any error, a valid eval still works (and the shadow is right).
            if st != EGPT_OK {
                let mut now = 0usize;
                // SAFETY: live handle, writable out.
                assert_eq!(unsafe { egpt_context_n_past(ctx, &mut now) }, EGPT_OK);
                assert_eq!(now, n_past, "n_past changed by a failed call (status {st})");
                // SAFETY: live handle.
                unsafe {
                    if n_past == n_ctx {
                        assert_eq!(egpt_context_rewind(ctx, n_past - 1), EGPT_OK);
                        n_past -= 1;
                    }
                    let t = (ops as u32 * 7) % n_vocab as u32;
                    assert_eq!(
                        egpt_context_eval(ctx, &t, 1),
                        EGPT_OK,
                        "valid eval after error {st}"
                    );
                }
                n_past += 1;
                has_logits = true;
                logit_rows = 1;
            }
        }
        let _ = (has_logits, logit_rows);
    }
}
