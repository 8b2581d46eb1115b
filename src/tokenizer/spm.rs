//! SentencePiece-style tokenizer: GGUF `tokenizer.ggml.model = "llama"` (llama.cpp's `llm_tokenizer_spm`).
//!
//! # Vocabulary
//! `tokenizer.ggml.tokens` (pieces, spaces written as U+2581 `▁`), `tokenizer.ggml.scores`
//! (f32, one per token, required), the optional `tokenizer.ggml.token_type` (int32, see
//! [`token_type`]; absent means every token is normal), `bos/eos/unknown_token_id`,
//! `tokenizer.ggml.add_space_prefix` (bool, default true) and `tokenizer.ggml.add_bos_token`
//! (bool, default true: [`super::Tokenizer::add_bos`]). The arena holds the string offsets
//! (u32 per token), a piece -> id hash table (every token with non-empty text, whatever its
//! type, as llama.cpp's `token_to_id`), the ids of the special tokens and the merge scratch.
//! Hostile metadata gives [`Error::BadTokenizer`]: scores missing, of the wrong type or length,
//! or NaN; token types of the wrong length; two tokens with the same non-empty text; a byte
//! token (type 6) whose text is not `<0xXX>`; out-of-range bos/eos/unk ids; a bool key of
//! another type.
//!
//! # Encoding
//! 1. Special tokens: control and unknown tokens (with `parse_special`) and user-defined tokens
//!    (always, as llama.cpp does) are found in the text (leftmost, then longest) and become their
//!    ids. llama.cpp instead splits on the longest special text first; the two agree unless two
//!    special texts overlap in the input.
//! 2. Each text fragment between them gets a leading space if `add_space_prefix` and it is the
//!    first fragment or follows a special token (llama.cpp's rule, so `"<s>hi"` with
//!    `parse_special` encodes `hi` as `▁hi`); spaces become `▁`.
//! 3. The fragment is split into symbols by UTF-8 lead byte (a lead byte claims as many bytes as
//!    it announces, without checking them: llama.cpp's `unicode_len_utf8`), then the adjacent
//!    pair whose concatenation is a token with the highest score is merged, leftmost on ties,
//!    until no pair is a token. Each symbol becomes its token, or, if it is not one, the byte
//!    tokens `<0xXX>` of its bytes (falling back to a token whose text is the byte itself, then
//!    to the unknown token; a byte with none of these is dropped).
//!
//! The merge runs on a window of at most [`SPM_WINDOW`] escaped bytes (symbols) with a binary
//! heap of candidate pairs, all in the arena: O(n log n) per window, like llama.cpp's priority
//! queue. A longer fragment is encoded window by window: the tokens that end in the first half
//! of the window are emitted and the next window starts at the end of the last one, a token
//! boundary of the result (scratch: 41 bytes per window byte, 164 KiB; stories260K's whole
//! tokenizer arena is 174,207 bytes). That is exact unless a merge decision depends on text more than half a
//! window to its right; the tests check long runs (letters, spaces, digits, CJK, emoji) against
//! llama.cpp with the full and with a 16-byte window.
//!
//! # Decoding
//! Normal tokens give their text with `▁` turned back into spaces, byte tokens their byte,
//! control, unknown and user-defined tokens their text (nothing with `skip_special`), unused
//! tokens nothing. [`super::Tokenizer::decode`] drops one leading space from the first token's
//! output when `add_space_prefix` is set, exactly as llama.cpp's `llama_detokenize`: so a
//! sequence that starts with BOS keeps the space (`[<s>, ▁Hello]` -> `"<s> Hello"`, or
//! `" Hello"` with `skip_special`). So `decode(encode(x)) == x` (without `parse_special`) for
//! valid UTF-8 with no `▁` (which encoding cannot tell from a space); invalid UTF-8 beside a
//! space may come back with `▁`'s bytes (llama.cpp splits lead bytes after escaping), and with
//! `parse_special` the text after a special token comes back with the added space. The ids
//! are llama.cpp's in every case.
//!
//! # Not implemented
//! llama.cpp's per-model quirks keyed by `general.name` (Phi-3's right-stripping of spaces after
//! special tokens), its order of special-token matching when special texts overlap (above), and
//! `tokenizer.ggml.add_eos_token` (never added; [`super::Tokenizer::encode`] adds nothing).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::{
    hash_str, insert_unique, opt_id, read_i32, table_cap, text_at, token_type, walk_tokens, Sink,
    NO_TOKEN,
};
use crate::arena::{Arena, Plan};
use crate::error::{Error, Result};
use crate::gguf::{ArrayView, Gguf, Value, ValueType};

/// Escaped bytes (and so at most symbols) in one merge window.
pub const SPM_WINDOW: usize = 4096;

/// U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space.
const SPACE: [u8; 3] = [0xE2, 0x96, 0x81];

/// "No symbol" in the prev/next links.
const NIL: u32 = u32::MAX;

/// Bytes a UTF-8 lead byte claims (llama.cpp's `unicode_len_utf8`: continuation bytes and
/// invalid lead bytes count as 1, 0xF8..=0xFF as 4).
#[inline]
fn utf8_len(b: u8) -> usize {
    match b >> 4 {
        0xC | 0xD => 2,
        0xE => 3,
        0xF => 4,
        _ => 1,
    }
}

#[inline]
fn read_f32(raw: &[u8], i: usize) -> Option<f32> {
    let s = raw.get(i.checked_mul(4)?..i.checked_mul(4)?.checked_add(4)?)?;
    let b: [u8; 4] = s.try_into().ok()?;
    Some(f32::from_le_bytes(b))
}

/// The byte of a `<0xXX>` token text.
fn byte_piece(t: &[u8]) -> Option<u8> {
    let [b'<', b'0', b'x', h, l, b'>'] = *t else {
        return None;
    };
    let hex = |c: u8| (c as char).to_digit(16);
    Some((hex(h)? * 16 + hex(l)?) as u8)
}

/// Length of `t` with every `▁` counted as one byte.
fn unescaped_len(t: &[u8]) -> usize {
    t.len() - 2 * t.windows(3).filter(|w| *w == SPACE).count()
}

fn opt_bool(g: &Gguf<'_>, key: &str, default: bool) -> Result<bool> {
    match g.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(b),
        Some(_) => Err(Error::BadTokenizer),
    }
}

// ------------------------------------------------------------------ metadata

/// SentencePiece metadata, checked for shape.
pub(super) struct Meta<'m> {
    tokens: ArrayView<'m>,
    scores: &'m [u8],
    types: Option<&'m [u8]>,
    n_vocab: usize,
    n_special: usize,
    pub(super) bos: Option<u32>,
    pub(super) eos: Option<u32>,
    unk: Option<u32>,
    pub(super) add_bos: bool,
    add_space_prefix: bool,
}

/// Is this file's tokenizer SentencePiece-style (`tokenizer.ggml.model = "llama"`)?
pub(super) fn is_spm(g: &Gguf<'_>) -> bool {
    matches!(g.get("tokenizer.ggml.model"), Some(Value::Str(b"llama")))
}

impl<'m> Meta<'m> {
    pub(super) fn read(g: &Gguf<'m>) -> Result<Self> {
        let tokens = g
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.as_array())
            .ok_or(Error::BadTokenizer)?;
        let n_vocab = tokens.len();
        if tokens.elem_type() != ValueType::String
            || n_vocab == 0
            || n_vocab >= u32::MAX as usize
            || tokens.raw().len() >= u32::MAX as usize
        {
            return Err(Error::BadTokenizer);
        }
        let scores = g
            .get("tokenizer.ggml.scores")
            .and_then(|v| v.as_array())
            .ok_or(Error::BadTokenizer)?;
        if scores.elem_type() != ValueType::F32 || scores.len() != n_vocab {
            return Err(Error::BadTokenizer);
        }
        let scores = scores.raw();
        for i in 0..n_vocab {
            if read_f32(scores, i).is_none_or(f32::is_nan) {
                return Err(Error::BadTokenizer);
            }
        }
        let types = match g.get("tokenizer.ggml.token_type") {
            None => None,
            Some(v) => {
                let a = v.as_array().ok_or(Error::BadTokenizer)?;
                if a.elem_type() != ValueType::I32 || a.len() != n_vocab {
                    return Err(Error::BadTokenizer);
                }
                Some(a.raw())
            }
        };
        let mut n_special = 0usize;
        if let Some(t) = types {
            for i in 0..n_vocab {
                if is_special_type(read_i32(t, i).ok_or(Error::BadTokenizer)?) {
                    n_special += 1;
                }
            }
        }
        Ok(Meta {
            tokens,
            scores,
            types,
            n_vocab,
            n_special,
            bos: opt_id(g, "tokenizer.ggml.bos_token_id", n_vocab)?,
            eos: opt_id(g, "tokenizer.ggml.eos_token_id", n_vocab)?,
            unk: opt_id(g, "tokenizer.ggml.unknown_token_id", n_vocab)?,
            add_bos: opt_bool(g, "tokenizer.ggml.add_bos_token", true)?,
            add_space_prefix: opt_bool(g, "tokenizer.ggml.add_space_prefix", true)?,
        })
    }

    pub(super) fn plan(&self) -> Result<Plan> {
        let mut p = Plan::new();
        p.push::<u32>(self.n_vocab) // offsets
            .push::<u32>(table_cap(self.n_vocab)?) // piece table
            .push::<u32>(self.n_special)
            .push::<u8>(SPM_WINDOW) // escaped text
            .push::<u32>(SPM_WINDOW) // symbol start
            .push::<u32>(SPM_WINDOW) // symbol length
            .push::<u32>(SPM_WINDOW) // prev
            .push::<u32>(SPM_WINDOW) // next
            .push::<u32>(HEAP_ENTRY * 2 * SPM_WINDOW); // candidate pairs
        Ok(p)
    }
}

/// Token types matched in text and dropped by `skip_special`.
#[inline]
fn is_special_type(ty: i32) -> bool {
    matches!(
        ty,
        token_type::CONTROL | token_type::USER_DEFINED | token_type::UNKNOWN
    )
}

// ------------------------------------------------------------------ the vocabulary

/// The merge scratch: the escaped window, its symbols and the candidate heap.
struct Scratch<'a> {
    esc: &'a mut [u8],
    start: &'a mut [u32],
    len: &'a mut [u32],
    prev: &'a mut [u32],
    next: &'a mut [u32],
    heap: &'a mut [u32],
}

/// A SentencePiece vocabulary over GGUF metadata (`'m`) with indexes in an arena (`'a`).
pub(super) struct Spm<'m, 'a> {
    tokens_raw: &'m [u8],
    scores: &'m [u8],
    types: Option<&'m [u8]>,
    offsets: &'a [u32],
    /// Piece -> id + 1 (0 = empty slot).
    table: &'a [u32],
    /// Control, unknown and user-defined tokens with non-empty text.
    specials: &'a [u32],
    special_first: [u32; 8],
    byte_ids: [u32; 256],
    max_token_len: usize,
    add_space_prefix: bool,
    scratch: Scratch<'a>,
}

impl<'m, 'a> Spm<'m, 'a> {
    pub(super) fn new(meta: &Meta<'m>, arena: &'a mut [u8]) -> Result<Self> {
        let needed = meta.plan()?.total()?;
        if arena.len() < needed {
            return Err(Error::ArenaTooSmall {
                needed,
                available: arena.len(),
            });
        }
        let mut ar = Arena::new(arena);
        let offsets = ar.alloc::<u32>(meta.n_vocab)?;
        let table = ar.alloc::<u32>(table_cap(meta.n_vocab)?)?;
        let specials = ar.alloc::<u32>(meta.n_special)?;
        let scratch = Scratch {
            esc: ar.alloc::<u8>(SPM_WINDOW)?,
            start: ar.alloc::<u32>(SPM_WINDOW)?,
            len: ar.alloc::<u32>(SPM_WINDOW)?,
            prev: ar.alloc::<u32>(SPM_WINDOW)?,
            next: ar.alloc::<u32>(SPM_WINDOW)?,
            heap: ar.alloc::<u32>(HEAP_ENTRY * 2 * SPM_WINDOW)?,
        };

        // Pass 1: offsets, specials, byte tokens, longest decoded token.
        let raw = meta.tokens.raw();
        let mut n_special = 0usize;
        let mut max_len = 0usize;
        walk_tokens(&meta.tokens, meta.types, offsets, |id, t, ty| {
            if ty == token_type::BYTE && byte_piece(t).is_none() {
                return Err(Error::BadTokenizer);
            }
            max_len = max_len.max(decoded_len(ty, t));
            if is_special_type(ty) && !t.is_empty() {
                *specials.get_mut(n_special).ok_or(Error::BadTokenizer)? = id as u32;
                n_special += 1;
            }
            Ok(())
        })?;
        let offsets: &'a [u32] = offsets;
        let specials: &'a [u32] = specials.get(..n_special).ok_or(Error::BadTokenizer)?;

        // Pass 2: the piece table (every non-empty text; a duplicate is an error).
        for id in 0..meta.n_vocab {
            if !text_at(raw, offsets, id).is_empty() {
                insert_unique(table, raw, offsets, id)?;
            }
        }
        let mut spm = Spm {
            tokens_raw: raw,
            scores: meta.scores,
            types: meta.types,
            offsets,
            table,
            specials,
            special_first: [0; 8],
            byte_ids: [NO_TOKEN; 256],
            max_token_len: max_len,
            add_space_prefix: meta.add_space_prefix,
            scratch,
        };
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut byte_ids = [NO_TOKEN; 256];
        for (b, slot) in byte_ids.iter_mut().enumerate() {
            let hi = HEX.get(b >> 4).copied().unwrap_or(b'0');
            let lo = HEX.get(b & 15).copied().unwrap_or(b'0');
            *slot = spm
                .find(&[b'<', b'0', b'x', hi, lo, b'>'])
                .or_else(|| spm.find(&[b as u8]))
                .or(meta.unk)
                .unwrap_or(NO_TOKEN);
        }
        spm.byte_ids = byte_ids;
        for &id in specials {
            if let Some(&b) = spm.text(id as usize).first() {
                if let Some(w) = spm.special_first.get_mut((b >> 5) as usize) {
                    *w |= 1 << (b & 31);
                }
            }
        }
        Ok(spm)
    }

    pub(super) fn n_vocab(&self) -> usize {
        self.offsets.len()
    }

    pub(super) fn max_token_len(&self) -> usize {
        self.max_token_len
    }

    pub(super) fn add_space_prefix(&self) -> bool {
        self.add_space_prefix
    }

    /// The stored text of token `id` (empty if out of range).
    #[inline]
    pub(super) fn text(&self, id: usize) -> &'m [u8] {
        text_at(self.tokens_raw, self.offsets, id)
    }

    #[inline]
    pub(super) fn ty(&self, id: usize) -> i32 {
        match self.types {
            Some(t) => read_i32(t, id).unwrap_or(token_type::NORMAL),
            None => token_type::NORMAL,
        }
    }

    #[inline]
    fn score(&self, id: u32) -> f32 {
        read_f32(self.scores, id as usize).unwrap_or(f32::NEG_INFINITY)
    }

    pub(super) fn is_special(&self, id: u32) -> bool {
        (id as usize) < self.n_vocab() && is_special_type(self.ty(id as usize))
    }

    /// Id of the token whose stored text is `t` (any type).
    fn find(&self, t: &[u8]) -> Option<u32> {
        let mask = self.table.len().checked_sub(1)?;
        let mut i = hash_str(t, &[]) as usize & mask;
        loop {
            let slot = *self.table.get(i)?;
            if slot == 0 {
                return None;
            }
            if self.text(slot as usize - 1) == t {
                return Some(slot - 1);
            }
            i = (i + 1) & mask;
        }
    }

    /// The id of a normal token given its decoded bytes (spaces as bytes).
    pub(super) fn token_id(&self, bytes: &[u8]) -> Option<u32> {
        let mut buf = [0u8; 512];
        let mut n = 0;
        for &b in bytes {
            let piece: &[u8] = if b == b' ' {
                &SPACE
            } else {
                core::slice::from_ref(&b)
            };
            buf.get_mut(n..n + piece.len())?.copy_from_slice(piece);
            n += piece.len();
        }
        let id = self.find(buf.get(..n)?)?;
        (self.ty(id as usize) == token_type::NORMAL).then_some(id)
    }

    /// Decoded length of token `id` (in range).
    pub(super) fn token_len(&self, id: usize) -> usize {
        decoded_len(self.ty(id), self.text(id))
    }

    /// Decode token `id` into `out`; with `lstrip`, without its first byte if that is a space.
    pub(super) fn token_bytes(&self, id: u32, out: &mut [u8], lstrip: bool) -> Result<usize> {
        let id = id as usize;
        if id >= self.n_vocab() {
            return Err(Error::TokenOutOfRange);
        }
        let mut t = self.text(id);
        let ty = self.ty(id);
        let drop = lstrip && self.first_byte(id as u32) == Some(b' ');
        let n = decoded_len(ty, t) - usize::from(drop);
        let dst = out.get_mut(..n).ok_or(Error::BufferTooSmall)?;
        match ty {
            token_type::NORMAL => {
                if drop {
                    let w = if t.starts_with(&SPACE) { 3 } else { 1 };
                    t = t.get(w..).unwrap_or(&[]);
                }
                let (mut i, mut k) = (0, 0);
                while let Some(&b) = t.get(i) {
                    let (c, w) = if t.get(i..i + 3) == Some(&SPACE[..]) {
                        (b' ', 3)
                    } else {
                        (b, 1)
                    };
                    if let Some(o) = dst.get_mut(k) {
                        *o = c;
                    }
                    i += w;
                    k += 1;
                }
            }
            token_type::BYTE => {
                if let (Some(o), Some(b)) = (dst.first_mut(), byte_piece(t)) {
                    *o = b;
                }
            }
            _ => {
                let from = usize::from(drop);
                dst.copy_from_slice(t.get(from..from + n).unwrap_or(&[]));
            }
        }
        Ok(n)
    }

    /// First byte of the decoded token, if it has any.
    pub(super) fn first_byte(&self, id: u32) -> Option<u8> {
        let t = self.text(id as usize);
        match self.ty(id as usize) {
            token_type::NORMAL if t.starts_with(&SPACE) => Some(b' '),
            token_type::BYTE => byte_piece(t),
            token_type::NORMAL
            | token_type::CONTROL
            | token_type::UNKNOWN
            | token_type::USER_DEFINED => t.first().copied(),
            _ => None,
        }
    }

    /// The longest special token whose text starts `s` (control and unknown ones only with
    /// `parse_special`).
    fn match_special(&self, s: &[u8], parse_special: bool) -> Option<(u32, usize)> {
        let mut best: Option<(u32, usize)> = None;
        for &id in self.specials {
            if !parse_special && self.ty(id as usize) != token_type::USER_DEFINED {
                continue;
            }
            let t = self.text(id as usize);
            if s.starts_with(t) && best.is_none_or(|(_, l)| t.len() > l) {
                best = Some((id, t.len()));
            }
        }
        best
    }

    /// Encode `text` (any bytes) into `sink`, splitting on special tokens first.
    pub(super) fn encode(
        &mut self,
        text: &[u8],
        parse_special: bool,
        window: usize,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let window = window.clamp(16, SPM_WINDOW);
        let mut prev_special = true;
        let (mut seg, mut p) = (0usize, 0usize);
        if self.specials.is_empty() {
            p = text.len();
        }
        while let Some(&b) = text.get(p) {
            let hit = self
                .special_first
                .get((b >> 5) as usize)
                .is_some_and(|w| w & (1 << (b & 31)) != 0);
            if hit {
                if let Some((id, len)) =
                    self.match_special(text.get(p..).unwrap_or(&[]), parse_special)
                {
                    if p > seg {
                        let frag = text.get(seg..p).unwrap_or(&[]);
                        self.fragment(frag, prev_special, window, sink)?;
                    }
                    sink.push(id)?;
                    prev_special = true;
                    p += len;
                    seg = p;
                    continue;
                }
            }
            p += 1;
        }
        if seg < text.len() {
            let frag = text.get(seg..).unwrap_or(&[]);
            self.fragment(frag, prev_special, window, sink)?;
        }
        Ok(())
    }

    /// One text fragment: the optional space prefix, spaces escaped, merged window by window.
    fn fragment(
        &mut self,
        frag: &[u8],
        prev_special: bool,
        window: usize,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let src = Escaped {
            prefix: self.add_space_prefix && prev_special,
            text: frag,
        };
        let mut cur = Cursor { i: 0, sub: 0 };
        loop {
            let (n, done) = src.fill(cur, self.scratch.esc.get_mut(..window).unwrap_or(&mut []));
            let n_sym = self.split(n, done);
            if n_sym == 0 {
                return Ok(());
            }
            self.merge(n_sym)?;
            let keep = if done { usize::MAX } else { n / 2 };
            let emitted = self.emit(keep, sink)?;
            if done {
                return Ok(());
            }
            cur = src.advance(cur, emitted);
        }
    }

    /// Split the first `n` escaped bytes into symbols by lead byte; unless `done` (the window
    /// holds the rest of the fragment), a symbol cut by the window end is left out.
    fn split(&mut self, n: usize, done: bool) -> usize {
        let s = &mut self.scratch;
        let mut k = 0usize;
        let mut off = 0usize;
        while let Some(&b) = s.esc.get(off).filter(|_| off < n) {
            let want = utf8_len(b);
            if off + want > n && !done {
                break;
            }
            let len = want.min(n - off);
            let (Some(st), Some(ln), Some(pv), Some(nx)) = (
                s.start.get_mut(k),
                s.len.get_mut(k),
                s.prev.get_mut(k),
                s.next.get_mut(k),
            ) else {
                break;
            };
            *st = off as u32;
            *ln = len as u32;
            *pv = if k == 0 { NIL } else { k as u32 - 1 };
            *nx = k as u32 + 1;
            off += len;
            k += 1;
        }
        if let Some(last) = k.checked_sub(1).and_then(|l| s.next.get_mut(l)) {
            *last = NIL;
        }
        k
    }

    /// The escaped text of symbols `l` and its successor `r` together.
    #[inline]
    fn pair_text(&self, l: u32, r: u32) -> Option<&[u8]> {
        let s = &self.scratch;
        let a = *s.start.get(l as usize)? as usize;
        let b = *s.start.get(r as usize)? as usize + *s.len.get(r as usize)? as usize;
        s.esc.get(a..b)
    }

    /// Push the pair (l, r) if its text is a token.
    fn try_pair(&mut self, heap: &mut usize, l: u32, r: u32) -> Result<()> {
        if l == NIL || r == NIL {
            return Ok(());
        }
        let Some(text) = self.pair_text(l, r) else {
            return Ok(());
        };
        let size = text.len() as u32;
        let Some(id) = self.find(text) else {
            return Ok(());
        };
        let score = self.score(id);
        heap_push(
            self.scratch.heap,
            heap,
            Entry {
                score,
                left: l,
                size,
            },
        )
    }

    /// llama.cpp's merge loop over `n` symbols: the best pair (highest score, leftmost) first.
    fn merge(&mut self, n: usize) -> Result<()> {
        let mut heap = 0usize;
        for i in 1..n as u32 {
            self.try_pair(&mut heap, i - 1, i)?;
        }
        while let Some(e) = heap_pop(self.scratch.heap, &mut heap) {
            let s = &mut self.scratch;
            let l = e.left as usize;
            let ll = s.len.get(l).copied().unwrap_or(0);
            let r = s.next.get(l).copied().unwrap_or(NIL);
            if ll == 0 || r == NIL {
                continue;
            }
            let rl = s.len.get(r as usize).copied().unwrap_or(0);
            if rl == 0 || ll + rl != e.size {
                continue; // stale: one side changed since the pair was pushed
            }
            let rn = s.next.get(r as usize).copied().unwrap_or(NIL);
            if let Some(x) = s.len.get_mut(l) {
                *x = ll + rl;
            }
            if let Some(x) = s.len.get_mut(r as usize) {
                *x = 0;
            }
            if let Some(x) = s.next.get_mut(l) {
                *x = rn;
            }
            if let Some(x) = s.prev.get_mut(rn as usize) {
                *x = l as u32;
            }
            let lp = s.prev.get(l).copied().unwrap_or(NIL);
            self.try_pair(&mut heap, lp, l as u32)?;
            self.try_pair(&mut heap, l as u32, rn)?;
        }
        Ok(())
    }

    /// Emit the symbols (as tokens, or byte tokens) that end at or before `keep` escaped bytes
    /// (at least one); returns the escaped bytes emitted.
    fn emit(&self, keep: usize, sink: &mut Sink<'_>) -> Result<usize> {
        let s = &self.scratch;
        let mut i = 0u32;
        let mut end = 0usize;
        while i != NIL {
            let st = s.start.get(i as usize).copied().unwrap_or(0) as usize;
            let ln = s.len.get(i as usize).copied().unwrap_or(0) as usize;
            if end > 0 && st + ln > keep {
                break;
            }
            let text = s.esc.get(st..st + ln).unwrap_or(&[]);
            match self.find(text) {
                Some(id) => sink.push(id)?,
                None => {
                    for &b in text {
                        match self.byte_ids.get(b as usize) {
                            Some(&id) if id != NO_TOKEN => sink.push(id)?,
                            _ => {}
                        }
                    }
                }
            }
            end = st + ln;
            i = s.next.get(i as usize).copied().unwrap_or(NIL);
        }
        Ok(end)
    }
}

/// Decoded length of a token of type `ty` with stored text `t`.
fn decoded_len(ty: i32, t: &[u8]) -> usize {
    match ty {
        token_type::NORMAL => unescaped_len(t),
        token_type::BYTE => 1,
        token_type::CONTROL | token_type::UNKNOWN | token_type::USER_DEFINED => t.len(),
        _ => 0,
    }
}

// ------------------------------------------------------------------ escaped text

/// The fragment as llama.cpp sees it: an optional leading space, then the text, every space
/// written as `▁` (3 bytes); read without materialising it.
struct Escaped<'t> {
    prefix: bool,
    text: &'t [u8],
}

/// A position in the escaped text: input byte `i` (counting the prefix) and the byte inside its
/// `▁` when it is a space.
#[derive(Clone, Copy)]
struct Cursor {
    i: usize,
    sub: usize,
}

impl Escaped<'_> {
    #[inline]
    fn input(&self, i: usize) -> Option<u8> {
        match (self.prefix, i) {
            (true, 0) => Some(b' '),
            (true, _) => self.text.get(i - 1).copied(),
            (false, _) => self.text.get(i).copied(),
        }
    }

    /// Write escaped bytes from `cur` into `out` until it is full or the text ends; returns the
    /// count and whether the text ended.
    fn fill(&self, cur: Cursor, out: &mut [u8]) -> (usize, bool) {
        let mut c = cur;
        let mut n = 0;
        for o in out.iter_mut() {
            match self.input(c.i) {
                None => return (n, true),
                Some(b' ') => {
                    *o = SPACE.get(c.sub).copied().unwrap_or(0);
                    c.sub += 1;
                    if c.sub == 3 {
                        c = Cursor { i: c.i + 1, sub: 0 };
                    }
                }
                Some(b) => {
                    *o = b;
                    c.i += 1;
                }
            }
            n += 1;
        }
        (n, self.input(c.i).is_none())
    }

    /// `cur` moved `k` escaped bytes on.
    fn advance(&self, cur: Cursor, k: usize) -> Cursor {
        let mut c = cur;
        for _ in 0..k {
            match self.input(c.i) {
                None => break,
                Some(b' ') if c.sub < 2 => c.sub += 1,
                Some(_) => c = Cursor { i: c.i + 1, sub: 0 },
            }
        }
        c
    }
}

// ------------------------------------------------------------------ candidate heap

/// u32 words per heap entry: score bits, left symbol, pair size in bytes.
const HEAP_ENTRY: usize = 3;

#[derive(Clone, Copy)]
struct Entry {
    score: f32,
    left: u32,
    size: u32,
}

impl Entry {
    /// Pops before `o`: higher score, then the leftmost (llama.cpp's comparator).
    #[inline]
    fn before(&self, o: &Entry) -> bool {
        self.score > o.score || (self.score == o.score && self.left < o.left)
    }
}

#[inline]
fn heap_get(h: &[u32], i: usize) -> Option<Entry> {
    let w = h.get(i * HEAP_ENTRY..i * HEAP_ENTRY + HEAP_ENTRY)?;
    match *w {
        [s, left, size] => Some(Entry {
            score: f32::from_bits(s),
            left,
            size,
        }),
        _ => None,
    }
}

#[inline]
fn heap_set(h: &mut [u32], i: usize, e: Entry) {
    if let Some(w) = h.get_mut(i * HEAP_ENTRY..i * HEAP_ENTRY + HEAP_ENTRY) {
        w.copy_from_slice(&[e.score.to_bits(), e.left, e.size]);
    }
}

/// Push onto the max-heap of `*n` entries. Pairs pushed in one window are at most
/// `n_symbols - 1 + merges`, merges at most `n_symbols - 1`: the `2 * SPM_WINDOW` entries
/// never run out (an overflow would be an internal error, reported, not a panic).
fn heap_push(h: &mut [u32], n: &mut usize, e: Entry) -> Result<()> {
    if (*n + 1) * HEAP_ENTRY > h.len() {
        return Err(Error::BufferTooSmall);
    }
    let mut i = *n;
    *n += 1;
    while i > 0 {
        let p = (i - 1) / 2;
        match heap_get(h, p) {
            Some(pe) if e.before(&pe) => {
                heap_set(h, i, pe);
                i = p;
            }
            _ => break,
        }
    }
    heap_set(h, i, e);
    Ok(())
}

fn heap_pop(h: &mut [u32], n: &mut usize) -> Option<Entry> {
    if *n == 0 {
        return None;
    }
    let top = heap_get(h, 0)?;
    *n -= 1;
    let last = heap_get(h, *n)?;
    let mut i = 0;
    loop {
        let (a, b) = (2 * i + 1, 2 * i + 2);
        if a >= *n {
            break;
        }
        let mut c = a;
        let ca = heap_get(h, a)?;
        let mut ce = ca;
        if b < *n {
            let cb = heap_get(h, b)?;
            if cb.before(&ca) {
                c = b;
                ce = cb;
            }
        }
        if ce.before(&last) {
            heap_set(h, i, ce);
            i = c;
        } else {
            break;
        }
    }
    if *n > 0 {
        heap_set(h, i, last);
    }
    Some(top)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lead_bytes() {
        assert_eq!(utf8_len(b'a'), 1);
        assert_eq!(utf8_len(0x80), 1);
        assert_eq!(utf8_len(0xC3), 2);
        assert_eq!(utf8_len(0xE2), 3);
        assert_eq!(utf8_len(0xF0), 4);
        assert_eq!(utf8_len(0xFF), 4);
    }

    #[test]
    fn byte_pieces() {
        assert_eq!(byte_piece(b"<0x0A>"), Some(10));
        assert_eq!(byte_piece(b"<0xff>"), Some(255));
        assert_eq!(byte_piece(b"<0xG0>"), None);
        assert_eq!(byte_piece(b"<0x0A"), None);
    }

    #[test]
    fn escaping_and_cursor() {
        let e = Escaped {
            prefix: true,
            text: b"a b",
        };
        let mut buf = [0u8; 16];
        let (n, done) = e.fill(Cursor { i: 0, sub: 0 }, &mut buf);
        assert!(done);
        assert_eq!(buf.get(..n), Some(&b"\xe2\x96\x81a\xe2\x96\x81b"[..]));
        let (n, done) = e.fill(Cursor { i: 0, sub: 0 }, buf.get_mut(..4).unwrap_or(&mut []));
        assert_eq!((n, done), (4, false));
        let c = e.advance(Cursor { i: 0, sub: 0 }, 5);
        assert_eq!((c.i, c.sub), (2, 1));
        let (n, _) = e.fill(c, &mut buf);
        assert_eq!(buf.get(..n), Some(&b"\x96\x81b"[..]));
    }

    #[test]
    fn heap_order() {
        let mut h = [0u32; 3 * 8];
        let mut n = 0;
        for (score, left) in [(1.0, 5), (3.0, 2), (3.0, 1), (-1.0, 0), (2.0, 7)] {
            assert!(heap_push(
                &mut h,
                &mut n,
                Entry {
                    score,
                    left,
                    size: 2
                }
            )
            .is_ok());
        }
        let order: [u32; 5] =
            core::array::from_fn(|_| heap_pop(&mut h, &mut n).map_or(99, |e| e.left));
        assert_eq!(order, [1, 2, 7, 5, 0]);
        assert!(heap_pop(&mut h, &mut n).is_none());
    }
}
