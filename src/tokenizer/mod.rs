//! Text in, text out: GPT-2 byte-level BPE or SentencePiece, read from GGUF metadata.
//!
//! `tokenizer.ggml.model` chooses the algorithm: `"gpt2"` is byte-level BPE (below), `"llama"`
//! is SentencePiece-style, llama.cpp's `llm_tokenizer_spm` (see [`spm`]); anything else is
//! [`Error::NoTokenizer`]. Both have the same API, arena discipline and streaming decoder.
//!
//! # Vocabulary
//! For `"gpt2"`, [`Tokenizer::new`] reads `tokenizer.ggml.tokens`
//! (strings in GPT-2's `bytes_to_unicode` form), `tokenizer.ggml.merges` (`"left right"` in rank
//! order), the optional `tokenizer.ggml.token_type` (int32; 1 normal, 3 control, 4 user-defined,
//! ...), `tokenizer.ggml.bos_token_id` / `eos_token_id` and `tokenizer.ggml.pre` (which selects the
//! [`PreTokenizer`]). Token strings stay in the file bytes (zero copy); the lookup indexes live in
//! a caller arena whose size [`Tokenizer::arena_size`] computes up front:
//! - id -> offset of the token string in the file (u32 per token);
//! - token string -> id, an open-addressing table of u32 ids (normal tokens only);
//! - merge rank -> (left id, right id, merged id), and (left, right) -> rank, open addressing;
//! - the ids of control and user-defined tokens (the "special" tokens);
//! - the BPE scratch ([`BPE_WINDOW`] symbols).
//!
//! Building is linear in the vocabulary and merge counts (expected; hash tables are at most half
//! full). Hostile metadata gives [`Error::NoTokenizer`] (absent, or a model or pre-tokenizer
//! embergpt does not know) or [`Error::BadTokenizer`] (wrong types, lengths that disagree,
//! duplicate normal tokens, a normal token that is not in `bytes_to_unicode` form, merges that are not `"left right"` or name tokens that do not exist, or
//! whose concatenation is not a token, out-of-range bos/eos). Duplicate merges are allowed; the
//! first (lowest rank) wins. A vocabulary may lack some single-byte tokens (SmolLM2 has none for
//! 21 bytes, e.g. 0xC0, 0xF5..=0xFF): such a byte is dropped when encoding, as Hugging Face's BPE
//! without `unk_token` or `byte_fallback` drops it (its neighbours then meet and may merge).
//!
//! # Encoding
//! 1. With `parse_special`, the literal text of every control (type 3) and user-defined (type 4)
//!    token is found in the input (leftmost, then longest match) and becomes its id; the text
//!    between matches is encoded as below. Without it, special tokens are never produced.
//! 2. Bytes that are not valid UTF-8 split the text: every byte that does not start a complete,
//!    valid UTF-8 sequence (as `core::str::from_utf8` defines validity: no overlong forms, no
//!    surrogates, nothing above U+10FFFF) is a piece of its own and becomes its single-byte token;
//!    each valid run between such bytes is pre-tokenized as if it were a whole text. So
//!    `decode(encode(x)) == x` for every byte string `x` (less the bytes that have no token,
//!    when the vocabulary lacks some single-byte tokens).
//! 3. The pre-tokenizer splits each valid run into pieces ([`pretok`]).
//! 4. Inside each piece, GPT-2's BPE: start from the single-byte tokens, repeatedly merge the
//!    adjacent pair with the lowest merge rank (leftmost on ties) until no pair is a merge.
//!
//! BPE works in a fixed scratch of [`BPE_WINDOW`] symbols carved from the arena (no allocation).
//! A piece of up to that many bytes is encoded exactly. A longer piece is encoded window by
//! window: BPE runs on the next `BPE_WINDOW` bytes, the tokens that end in the first half of the
//! window are emitted, and the next window starts at the end of the last emitted token (a token
//! boundary of the result). This is exact unless a merge decision depends on bytes more than half
//! a window to its right, which needs a chain of more than `BPE_WINDOW / 2 / max_token_len` merges
//! with strictly decreasing ranks, each blocking the next; the tests check with windows of 16
//! and 512 that all hard cases, including long runs (10,000 letters, 5,000 spaces, digits,
//! punctuation, CJK), encode exactly as tiktoken does.
//!
//! # Decoding
//! Normal tokens decode to their bytes (GPT-2's `bytes_to_unicode` reversed); every other token
//! (control, user-defined, ...) decodes to its literal text, or to nothing when the caller passes
//! `skip_special`. [`StreamDecoder`] holds back an incomplete UTF-8 sequence at the end of a
//! token until it completes, so a printer never shows broken characters.
//!
//! # Example
//! ```no_run
//! use embergpt::{Gguf, StreamDecoder, Tokenizer};
//! # fn main() -> embergpt::Result<()> {
//! let file: &[u8] = &[]; // the GGUF bytes (a model, or a vocab-only file)
//! let gguf = Gguf::parse(file)?;
//! let mut arena = [0u8; 4 << 20]; // at least Tokenizer::arena_size(&gguf)?
//! let mut tok = Tokenizer::new(&gguf, &mut arena)?;
//! let mut ids = [0u32; 64];
//! let n = tok.encode(b"Hello world<|endoftext|>", true, &mut ids)?;
//! let mut dec = StreamDecoder::new();
//! let mut buf = [0u8; 256]; // >= 3 + tok.max_token_len()
//! for &id in &ids[..n] {
//!     let k = dec.push(&tok, id, &mut buf)?;
//!     // print &buf[..k]: always whole UTF-8 characters for UTF-8 text
//! }
//! let k = dec.flush(&mut buf)?;
//! # let _ = k;
//! # Ok(())
//! # }
//! ```

pub mod pretok;
pub mod spm;
mod stream;
mod unicode_tables;

pub use pretok::{char_class, CharClass, PreTokenizer};
pub use spm::SPM_WINDOW;
pub use stream::StreamDecoder;

use crate::arena::{Arena, Plan};
use crate::error::{Error, Result};
use crate::gguf::{ArrayView, Gguf, Value, ValueType};

/// What generation needs from a tokenizer.
pub trait Detokenize {
    /// Append the raw bytes of token `id` to `out`, returning how many were written; BufferTooSmall if they do not fit.
    fn token_bytes(&self, id: u32, out: &mut [u8]) -> crate::Result<usize>;
    /// End-of-text token, if the vocabulary has one.
    fn eos(&self) -> Option<u32>;
    /// The bytes of token `id` when it is the first token of a text (see
    /// [`StreamDecoder::at_start`]): [`Detokenize::token_bytes`] unless the tokenizer drops
    /// something there (SentencePiece drops the leading space of the first token).
    fn first_token_bytes(&self, id: u32, out: &mut [u8]) -> crate::Result<usize> {
        self.token_bytes(id, out)
    }
}

/// Symbols of the BPE scratch: pieces up to this many bytes are encoded in one window.
pub const BPE_WINDOW: usize = 8192;
/// Smallest window accepted by [`Tokenizer::set_bpe_window`].
pub const MIN_BPE_WINDOW: usize = 16;

/// GGUF token types (llama.cpp's numbering).
pub mod token_type {
    /// An ordinary token produced by BPE.
    pub const NORMAL: i32 = 1;
    /// Unknown token.
    pub const UNKNOWN: i32 = 2;
    /// Control token such as `<|endoftext|>`.
    pub const CONTROL: i32 = 3;
    /// Token added by the user (matched literally like a control token).
    pub const USER_DEFINED: i32 = 4;
    /// Unused slot.
    pub const UNUSED: i32 = 5;
    /// Byte token (SentencePiece `<0xXX>`).
    pub const BYTE: i32 = 6;
}

// ------------------------------------------------------------------ GPT-2 bytes_to_unicode

/// The character GPT-2's `bytes_to_unicode` maps byte `b` to.
#[inline]
const fn byte_to_char(b: u8) -> u32 {
    match b {
        0..=32 => 256 + b as u32,
        127..=160 => 256 + 33 + (b as u32 - 127),
        173 => 256 + 67,
        _ => b as u32,
    }
}

/// The byte GPT-2's `bytes_to_unicode` maps to character `c`, if any.
#[inline]
const fn char_to_byte(c: u32) -> Option<u8> {
    match c {
        0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF => Some(c as u8),
        0x100..=0x120 => Some((c - 0x100) as u8),
        0x121..=0x142 => Some((c - 0x121 + 127) as u8),
        0x143 => Some(173),
        _ => None,
    }
}

/// UTF-8 of the character byte `b` maps to (1 or 2 bytes).
fn byte_char_utf8(b: u8) -> ([u8; 2], usize) {
    let c = byte_to_char(b);
    if c < 0x80 {
        ([c as u8, 0], 1)
    } else {
        ([0xC0 | (c >> 6) as u8, 0x80 | (c & 0x3F) as u8], 2)
    }
}

/// Decoded length of a token string in `bytes_to_unicode` form, or `None` if it is not in that form.
fn gpt2_decoded_len(s: &[u8]) -> Option<usize> {
    let text = core::str::from_utf8(s).ok()?;
    let mut n = 0usize;
    for c in text.chars() {
        char_to_byte(c as u32)?;
        n += 1;
    }
    Some(n)
}

/// Decode a validated `bytes_to_unicode` string into `out` (which must be long enough).
#[inline]
fn gpt2_decode_into(s: &[u8], out: &mut [u8]) -> usize {
    // Every character is U+0021..=U+0143: one byte, or two with lead byte 0xC2..=0xC5.
    let mut i = 0;
    let mut n = 0;
    while let Some(&b0) = s.get(i) {
        let (c, w) = if b0 < 0x80 {
            (b0 as u32, 1)
        } else {
            let b1 = s.get(i + 1).copied().unwrap_or(0);
            ((((b0 & 0x1F) as u32) << 6) | (b1 & 0x3F) as u32, 2)
        };
        i += w;
        if let (Some(b), Some(o)) = (char_to_byte(c), out.get_mut(n)) {
            *o = b;
            n += 1;
        }
    }
    n
}

/// `byte_ids` entry of a byte the vocabulary has no token for (never a valid id).
const NO_TOKEN: u32 = u32::MAX;

// ------------------------------------------------------------------ hashing

#[inline]
fn fnv1a(h: u64, bytes: &[u8]) -> u64 {
    let mut h = h;
    for &b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x100_0000_01B3);
    }
    h
}
const FNV_OFFSET: u64 = 0xCBF2_9CE4_8422_2325;

#[inline]
fn hash_str(a: &[u8], b: &[u8]) -> u64 {
    let h = fnv1a(fnv1a(FNV_OFFSET, a), b);
    h ^ (h >> 29)
}

#[inline]
fn hash_pair(l: u32, r: u32) -> u64 {
    let x = ((l as u64) << 32) | r as u64;
    let x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^ (x >> 31)
}

/// Capacity of an open-addressing table for `n` keys: a power of two, at least `2 n` and 16.
fn table_cap(n: usize) -> Result<usize> {
    n.checked_mul(2)
        .map(|x| x.max(16))
        .and_then(usize::checked_next_power_of_two)
        .ok_or(Error::BadTokenizer)
}

// ------------------------------------------------------------------ metadata

/// Tokenizer metadata, checked for shape (types and lengths) but not yet for content.
struct Meta<'m> {
    tokens: ArrayView<'m>,
    merges: Option<ArrayView<'m>>,
    types: Option<&'m [u8]>,
    n_vocab: usize,
    n_merges: usize,
    n_special: usize,
    pre: PreTokenizer,
    bos: Option<u32>,
    eos: Option<u32>,
}

fn opt_id(g: &Gguf<'_>, key: &str, n_vocab: usize) -> Result<Option<u32>> {
    match g.get(key) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(id) if id < n_vocab as u64 => Ok(Some(id as u32)),
            _ => Err(Error::BadTokenizer),
        },
    }
}

#[inline]
/// Walk the vocabulary once: record each token's string offset in the file
/// (`offsets[id]`, past its 8-byte length) and call `each(id, text, type)`
/// (type NORMAL when the file has no `token_type`). A non-string token or an
/// offset beyond u32 is [`Error::BadTokenizer`].
fn walk_tokens<'m>(
    tokens: &ArrayView<'m>,
    types: Option<&[u8]>,
    offsets: &mut [u32],
    mut each: impl FnMut(usize, &'m [u8], i32) -> Result<()>,
) -> Result<()> {
    let mut it = tokens.iter();
    for (id, off) in offsets.iter_mut().enumerate() {
        let start = it.offset().checked_add(8).ok_or(Error::BadTokenizer)?;
        let t = match it.next() {
            Some(Value::Str(t)) => t,
            _ => return Err(Error::BadTokenizer),
        };
        *off = u32::try_from(start).map_err(|_| Error::BadTokenizer)?;
        let ty = match types {
            Some(types) => read_i32(types, id).ok_or(Error::BadTokenizer)?,
            None => token_type::NORMAL,
        };
        each(id, t, ty)?;
    }
    Ok(())
}

fn read_i32(raw: &[u8], i: usize) -> Option<i32> {
    let s = raw.get(i.checked_mul(4)?..i.checked_mul(4)?.checked_add(4)?)?;
    Some(i32::from_le_bytes(s.try_into().ok()?))
}

impl<'m> Meta<'m> {
    fn read(g: &Gguf<'m>) -> Result<Self> {
        let model = match g.get("tokenizer.ggml.model") {
            None => return Err(Error::NoTokenizer),
            Some(v) => v.as_str().ok_or(Error::BadTokenizer)?,
        };
        if model != b"gpt2" {
            return Err(Error::NoTokenizer);
        }
        let pre_name = match g.get("tokenizer.ggml.pre") {
            None => None,
            Some(v) => Some(v.as_str().ok_or(Error::BadTokenizer)?),
        };
        let pre = PreTokenizer::from_name(pre_name).ok_or(Error::NoTokenizer)?;
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
        let merges = match g.get("tokenizer.ggml.merges") {
            None => None,
            Some(v) => {
                let a = v.as_array().ok_or(Error::BadTokenizer)?;
                if a.elem_type() != ValueType::String || a.len() >= u32::MAX as usize {
                    return Err(Error::BadTokenizer);
                }
                Some(a)
            }
        };
        let n_merges = merges.map_or(0, |m| m.len());
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
                let ty = read_i32(t, i).ok_or(Error::BadTokenizer)?;
                if ty == token_type::CONTROL || ty == token_type::USER_DEFINED {
                    n_special += 1;
                }
            }
        }
        Ok(Meta {
            tokens,
            merges,
            types,
            n_vocab,
            n_merges,
            n_special,
            pre,
            bos: opt_id(g, "tokenizer.ggml.bos_token_id", n_vocab)?,
            eos: opt_id(g, "tokenizer.ggml.eos_token_id", n_vocab)?,
        })
    }

    fn plan(&self) -> Result<Plan> {
        let mut p = Plan::new();
        p.push::<u32>(self.n_vocab) // offsets
            .push::<u32>(table_cap(self.n_vocab)?) // token table
            .push::<u32>(self.n_merges.checked_mul(3).ok_or(Error::BadTokenizer)?)
            .push::<u32>(table_cap(self.n_merges)?) // merge table
            .push::<u32>(self.n_special)
            .push::<u32>(BPE_WINDOW) // scratch ids
            .push::<u32>(BPE_WINDOW) // scratch lens
            .push::<u32>(BPE_WINDOW); // scratch ranks
        Ok(p)
    }
}

// ------------------------------------------------------------------ the vocabulary

/// The read-only part of a tokenizer: file bytes and arena indexes.
struct Vocab<'m, 'a> {
    /// The bytes of the `tokenizer.ggml.tokens` array (u64 length + bytes per token).
    tokens_raw: &'m [u8],
    /// Token types (int32 little-endian), if the file has them.
    types: Option<&'m [u8]>,
    /// Offset in `tokens_raw` of each token's string bytes.
    offsets: &'a [u32],
    /// Token string -> id + 1 (0 = empty slot); normal tokens only.
    tok_table: &'a [u32],
    /// Per merge rank: left id, right id, merged id.
    merges: &'a [u32],
    /// (left, right) -> rank + 1 (0 = empty slot).
    merge_table: &'a [u32],
    /// Ids of control and user-defined tokens with non-empty text.
    specials: &'a [u32],
    /// Bit set of the first bytes of special token texts.
    special_first: [u32; 8],
    /// Token id of each single byte ([`NO_TOKEN`] if the vocabulary has none).
    byte_ids: [u32; 256],
    max_token_len: usize,
}

impl<'m, 'a> Vocab<'m, 'a> {
    #[inline]
    fn ty(&self, id: usize) -> i32 {
        match self.types {
            Some(t) => read_i32(t, id).unwrap_or(token_type::NORMAL),
            None => token_type::NORMAL,
        }
    }

    /// The stored string of token `id` (empty if out of range).
    #[inline]
    fn text(&self, id: usize) -> &'m [u8] {
        text_at(self.tokens_raw, self.offsets, id)
    }

    /// Id of the normal token whose stored string is `a ++ b`.
    fn find(&self, a: &[u8], b: &[u8]) -> Option<u32> {
        let mask = self.tok_table.len() - 1;
        let mut i = hash_str(a, b) as usize & mask;
        loop {
            let slot = *self.tok_table.get(i)?;
            if slot == 0 {
                return None;
            }
            let t = self.text(slot as usize - 1);
            if t.len() == a.len() + b.len() && t.starts_with(a) && t.ends_with(b) {
                return Some(slot - 1);
            }
            i = (i + 1) & mask;
        }
    }

    /// The token of byte `b` on its own (`NO_TOKEN` if none); the table has 256 entries.
    #[inline(always)]
    fn byte_id(&self, b: u8) -> u32 {
        self.byte_ids.get(b as usize).copied().unwrap_or(NO_TOKEN)
    }

    /// Whether a special token may start with byte `b` (a 256-bit set in 8 words).
    #[inline(always)]
    fn may_start_special(&self, b: u8) -> bool {
        self.special_first
            .get((b >> 5) as usize)
            .is_some_and(|bits| bits & (1 << (b & 31)) != 0)
    }

    /// Merge rank of the pair (l, r), or `u32::MAX` if it is not a merge.
    #[inline]
    fn rank(&self, l: u32, r: u32) -> u32 {
        let mask = self.merge_table.len() - 1;
        let mut i = hash_pair(l, r) as usize & mask;
        loop {
            let slot = match self.merge_table.get(i) {
                Some(&s) if s != 0 => s,
                _ => return u32::MAX,
            };
            let k = (slot - 1) as usize * 3;
            if self.merges.get(k..k + 2) == Some(&[l, r][..]) {
                return slot - 1;
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    fn merged(&self, rank: u32) -> u32 {
        self.merges.get(rank as usize * 3 + 2).copied().unwrap_or(0)
    }

    /// Decoded length of token `id`.
    fn token_len(&self, id: usize) -> usize {
        let t = self.text(id);
        if self.ty(id) == token_type::NORMAL {
            t.iter().filter(|&&b| b & 0xC0 != 0x80).count()
        } else {
            t.len()
        }
    }

    fn token_bytes(&self, id: u32, out: &mut [u8]) -> Result<usize> {
        let id = id as usize;
        if id >= self.offsets.len() {
            return Err(Error::TokenOutOfRange);
        }
        let t = self.text(id);
        if self.ty(id) == token_type::NORMAL {
            let n = t.iter().filter(|&&b| b & 0xC0 != 0x80).count();
            let dst = out.get_mut(..n).ok_or(Error::BufferTooSmall)?;
            Ok(gpt2_decode_into(t, dst))
        } else {
            let dst = out.get_mut(..t.len()).ok_or(Error::BufferTooSmall)?;
            dst.copy_from_slice(t);
            Ok(t.len())
        }
    }

    /// The longest special token whose text starts `s`.
    fn match_special(&self, s: &[u8]) -> Option<(u32, usize)> {
        let mut best: Option<(u32, usize)> = None;
        for &id in self.specials {
            let t = self.text(id as usize);
            if s.starts_with(t) && best.is_none_or(|(_, l)| t.len() > l) {
                best = Some((id, t.len()));
            }
        }
        best
    }
}

// ------------------------------------------------------------------ output sink

/// Where encoded ids go: a caller buffer, or nowhere (counting).
struct Sink<'o> {
    out: &'o mut [u32],
    n: usize,
    counting: bool,
}

impl Sink<'_> {
    #[inline]
    fn push(&mut self, id: u32) -> Result<()> {
        if !self.counting {
            *self.out.get_mut(self.n).ok_or(Error::BufferTooSmall)? = id;
        }
        self.n += 1;
        Ok(())
    }
}

// ------------------------------------------------------------------ BPE

/// The BPE scratch: symbols of the current window.
struct Scratch<'a> {
    ids: &'a mut [u32],
    lens: &'a mut [u32],
    ranks: &'a mut [u32],
}

impl<'m, 'a> Vocab<'m, 'a> {
    /// BPE over `bytes` (at most the scratch length); returns the number of symbols left in the
    /// scratch (`ids`, and byte lengths in `lens`).
    ///
    /// This is GPT-2's `bpe()`: find the pair of lowest rank, merge every non-overlapping
    /// occurrence of it left to right in one pass, repeat. Each pass is linear; merge ranks are
    /// looked up again only next to the symbols the pass created.
    // INDEXING: every index into ids/lens/ranks is < n <= w <= cap, the length all
    // three scratch slices have at least (the `cap` line).
    #[allow(clippy::indexing_slicing)]
    fn merge_window(&self, s: &mut Scratch<'_>, bytes: &[u8]) -> usize {
        const FRESH: u32 = 1 << 31; // flag in `lens`: symbol made by the current pass
        let cap = s.ids.len().min(s.lens.len()).min(s.ranks.len());
        let w = bytes.len().min(cap);
        let mut n: usize = 0;
        // A byte without a token is dropped before merging (Hugging Face's BPE skips a
        // character it has no id for); its length goes to the symbol before it (or, at the
        // start, the one after) so the lengths still cover the window.
        let mut pending = 0u32;
        for &b in bytes.iter().take(w) {
            let id = self.byte_id(b);
            if id == NO_TOKEN {
                match n.checked_sub(1) {
                    Some(p) => s.lens[p] += 1,
                    None => pending += 1,
                }
                continue;
            }
            s.ids[n] = id;
            s.lens[n] = 1 + pending;
            pending = 0;
            n += 1;
        }
        for i in 0..n {
            s.ranks[i] = if i + 1 < n {
                self.rank(s.ids[i], s.ids[i + 1])
            } else {
                u32::MAX
            };
        }
        loop {
            let best = s.ranks[..n].iter().copied().min().unwrap_or(u32::MAX);
            if best == u32::MAX {
                return n;
            }
            let merged = self.merged(best);
            // Compact: read index r, write index w.
            let (mut r, mut w) = (0, 0);
            while r < n {
                if s.ranks[r] == best && r + 1 < n {
                    s.ids[w] = merged;
                    s.lens[w] = (s.lens[r] + s.lens[r + 1]) | FRESH;
                    r += 2;
                } else {
                    s.ids[w] = s.ids[r];
                    s.lens[w] = s.lens[r];
                    s.ranks[w] = s.ranks[r];
                    r += 1;
                }
                w += 1;
            }
            n = w;
            // Ranks of the pairs touching a fresh symbol.
            for i in 0..n {
                let fresh = s.lens[i] & FRESH != 0;
                let next_fresh = i + 1 < n && s.lens[i + 1] & FRESH != 0;
                if fresh || next_fresh {
                    s.ranks[i] = if i + 1 < n {
                        self.rank(s.ids[i], s.ids[i + 1])
                    } else {
                        u32::MAX
                    };
                }
            }
            for l in &mut s.lens[..n] {
                *l &= !FRESH;
            }
        }
    }

    /// Encode one piece with BPE (see the module documentation for pieces longer than the window).
    fn bpe(
        &self,
        s: &mut Scratch<'_>,
        window: usize,
        piece: &[u8],
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        if let [b] = piece {
            return match self.byte_id(*b) {
                NO_TOKEN => Ok(()),
                id => sink.push(id),
            };
        }
        let window = window.min(s.ids.len()).max(1);
        let mut pos = 0;
        while pos < piece.len() {
            let rest = piece.get(pos..).unwrap_or(&[]);
            let w = rest.len().min(window);
            let n = self.merge_window(s, rest.get(..w).unwrap_or(&[]));
            if n == 0 {
                // Every byte of the window was dropped (no tokens for them).
                pos += w;
                continue;
            }
            if w == rest.len() {
                for &id in s.ids.get(..n).unwrap_or(&[]) {
                    sink.push(id)?;
                }
                return Ok(());
            }
            // Emit the tokens that end in the first half of the window (at least one).
            let mut end = 0usize;
            for (i, (&id, &l)) in s.ids.iter().zip(s.lens.iter()).take(n).enumerate() {
                let l = l as usize;
                if i > 0 && end + l > w / 2 {
                    break;
                }
                sink.push(id)?;
                end += l;
            }
            pos += end;
        }
        Ok(())
    }

    /// Encode valid UTF-8 text (no special tokens) piece by piece.
    fn encode_str(
        &self,
        pre: PreTokenizer,
        s: &mut Scratch<'_>,
        window: usize,
        text: &str,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let mut i = 0;
        while i < text.len() {
            let e = pre.piece_end(text, i);
            self.bpe(s, window, text.as_bytes().get(i..e).unwrap_or(&[]), sink)?;
            i = e;
        }
        Ok(())
    }

    /// Encode arbitrary bytes (no special tokens): invalid UTF-8 bytes are pieces of their own.
    fn encode_ordinary(
        &self,
        pre: PreTokenizer,
        s: &mut Scratch<'_>,
        window: usize,
        text: &[u8],
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let mut rest = text;
        loop {
            match core::str::from_utf8(rest) {
                Ok(t) => return self.encode_str(pre, s, window, t, sink),
                Err(e) => {
                    let v = e.valid_up_to();
                    let (good, tail) = rest.split_at(v);
                    if let Ok(t) = core::str::from_utf8(good) {
                        self.encode_str(pre, s, window, t, sink)?;
                    }
                    let bad = e.error_len().unwrap_or(tail.len()).min(tail.len()).max(1);
                    let (bad, tail) = tail.split_at(bad.min(tail.len()));
                    for &b in bad {
                        if let id @ 0..=0xFFFF_FFFE = self.byte_id(b) {
                            sink.push(id)?;
                        }
                    }
                    rest = tail;
                    if rest.is_empty() {
                        return Ok(());
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------------ the tokenizer

/// A tokenizer over GGUF metadata (`'m`) with indexes in a caller arena (`'a`): GPT-2
/// byte-level BPE (`tokenizer.ggml.model = "gpt2"`) or SentencePiece ([`spm`], `"llama"`).
pub struct Tokenizer<'m, 'a> {
    model: Model<'m, 'a>,
    window: usize,
    bos: Option<u32>,
    eos: Option<u32>,
    add_bos: bool,
}

/// The tokenization algorithm and its vocabulary.
enum Model<'m, 'a> {
    Gpt2(Gpt2<'m, 'a>),
    Spm(spm::Spm<'m, 'a>),
}

/// Byte-level BPE: the vocabulary, its scratch and its pre-tokenizer.
struct Gpt2<'m, 'a> {
    vocab: Vocab<'m, 'a>,
    scratch: Scratch<'a>,
    pre: PreTokenizer,
}

impl<'m, 'a> Tokenizer<'m, 'a> {
    /// Arena bytes [`Tokenizer::new`] needs for this file's vocabulary (a pure function of the
    /// metadata). Errors as [`Tokenizer::new`] for metadata of the wrong shape.
    pub fn arena_size(gguf: &Gguf<'m>) -> Result<usize> {
        if spm::is_spm(gguf) {
            return spm::Meta::read(gguf)?.plan()?.total();
        }
        Meta::read(gguf)?.plan()?.total()
    }

    /// Build the tokenizer: check the metadata and fill the indexes in `arena`
    /// (at least [`Tokenizer::arena_size`] bytes).
    pub fn new(gguf: &Gguf<'m>, arena: &'a mut [u8]) -> Result<Self> {
        if spm::is_spm(gguf) {
            let meta = spm::Meta::read(gguf)?;
            return Ok(Tokenizer {
                model: Model::Spm(spm::Spm::new(&meta, arena)?),
                window: BPE_WINDOW,
                bos: meta.bos,
                eos: meta.eos,
                add_bos: meta.add_bos,
            });
        }
        let meta = Meta::read(gguf)?;
        let add_bos = match gguf.get("tokenizer.ggml.add_bos_token") {
            None => false,
            Some(Value::Bool(b)) => b,
            Some(_) => return Err(Error::BadTokenizer),
        };
        let needed = meta.plan()?.total()?;
        if arena.len() < needed {
            return Err(Error::ArenaTooSmall {
                needed,
                available: arena.len(),
            });
        }
        let mut ar = Arena::new(arena);
        let offsets = ar.alloc::<u32>(meta.n_vocab)?;
        let tok_table = ar.alloc::<u32>(table_cap(meta.n_vocab)?)?;
        let merges = ar.alloc::<u32>(meta.n_merges * 3)?;
        let merge_table = ar.alloc::<u32>(table_cap(meta.n_merges)?)?;
        let specials = ar.alloc::<u32>(meta.n_special)?;
        let scratch = Scratch {
            ids: ar.alloc::<u32>(BPE_WINDOW)?,
            lens: ar.alloc::<u32>(BPE_WINDOW)?,
            ranks: ar.alloc::<u32>(BPE_WINDOW)?,
        };

        // Pass 1: offsets, specials, longest token; normal tokens must be in bytes_to_unicode form.
        let raw = meta.tokens.raw();
        let mut n_special = 0usize;
        let mut max_len = 0usize;
        walk_tokens(&meta.tokens, meta.types, offsets, |id, t, ty| {
            if ty == token_type::NORMAL {
                let n = gpt2_decoded_len(t).ok_or(Error::BadTokenizer)?;
                if n == 0 {
                    return Err(Error::BadTokenizer);
                }
                max_len = max_len.max(n);
            } else {
                max_len = max_len.max(t.len());
                if (ty == token_type::CONTROL || ty == token_type::USER_DEFINED) && !t.is_empty() {
                    *specials.get_mut(n_special).ok_or(Error::BadTokenizer)? = id as u32;
                    n_special += 1;
                }
            }
            Ok(())
        })?;
        let offsets: &'a [u32] = offsets;
        let specials: &'a [u32] = specials.get(..n_special).ok_or(Error::BadTokenizer)?;

        // Pass 2: the token table (normal tokens; a duplicate string is an error).
        for id in 0..meta.n_vocab {
            if meta
                .types
                .is_some_and(|t| read_i32(t, id) != Some(token_type::NORMAL))
            {
                continue;
            }
            insert_unique(tok_table, raw, offsets, id)?;
        }
        let mut vocab = Vocab {
            tokens_raw: raw,
            types: meta.types,
            offsets,
            tok_table,
            merges: &[],
            merge_table: &[],
            specials,
            special_first: [0; 8],
            byte_ids: [0; 256],
            max_token_len: max_len,
        };
        for b in 0..=255u8 {
            let (u, n) = byte_char_utf8(b);
            let id = vocab.find(u.get(..n).unwrap_or(&[]), &[]);
            if let Some(slot) = vocab.byte_ids.get_mut(b as usize) {
                *slot = id.unwrap_or(NO_TOKEN);
            }
        }
        for &id in specials {
            if let Some(&b) = vocab.text(id as usize).first() {
                if let Some(bits) = vocab.special_first.get_mut((b >> 5) as usize) {
                    *bits |= 1 << (b & 31);
                }
            }
        }

        // Pass 3: merges, by rank.
        if let Some(ms) = meta.merges {
            for (m, dst) in ms.iter().zip(merges.as_chunks_mut::<3>().0) {
                let s = m.as_str().ok_or(Error::BadTokenizer)?;
                let sp = s
                    .iter()
                    .position(|&b| b == b' ')
                    .ok_or(Error::BadTokenizer)?;
                let (l, r) = s.split_at(sp); // sp < s.len(): position() found it
                let r = r.get(1..).unwrap_or(&[]); // after the ' '
                if l.is_empty() || r.is_empty() || r.contains(&b' ') {
                    return Err(Error::BadTokenizer);
                }
                let find = |a, b| vocab.find(a, b).ok_or(Error::BadTokenizer);
                *dst = [find(l, &[])?, find(r, &[])?, find(l, r)?];
            }
        }
        let merges: &'a [u32] = merges;
        let mask = merge_table.len() - 1;
        for (rank, &[ml, mr, _]) in merges.as_chunks::<3>().0.iter().enumerate() {
            let mut i = hash_pair(ml, mr) as usize & mask;
            loop {
                let slot = merge_table.get_mut(i).ok_or(Error::BadTokenizer)?;
                if *slot == 0 {
                    *slot = rank as u32 + 1;
                    break;
                }
                let k = (*slot as usize - 1) * 3;
                if merges.get(k..k + 2) == Some(&[ml, mr][..]) {
                    break; // duplicate merge: the lower rank stays
                }
                i = (i + 1) & mask;
            }
        }
        vocab.merges = merges;
        vocab.merge_table = merge_table;
        Ok(Tokenizer {
            model: Model::Gpt2(Gpt2 {
                vocab,
                scratch,
                pre: meta.pre,
            }),
            window: BPE_WINDOW,
            bos: meta.bos,
            eos: meta.eos,
            add_bos,
        })
    }

    /// Number of tokens in the vocabulary.
    pub fn n_vocab(&self) -> usize {
        match &self.model {
            Model::Gpt2(g) => g.vocab.offsets.len(),
            Model::Spm(s) => s.n_vocab(),
        }
    }
    /// Number of merges (0 for SentencePiece, which merges by piece score).
    pub fn n_merges(&self) -> usize {
        match &self.model {
            Model::Gpt2(g) => g.vocab.merges.len() / 3,
            Model::Spm(_) => 0,
        }
    }
    /// Whether a prompt should start with [`Tokenizer::bos`]: `tokenizer.ggml.add_bos_token`,
    /// by default true for SentencePiece and false for GPT-2 vocabularies (as llama.cpp).
    /// [`Tokenizer::encode`] never adds it; the caller (e.g. the CLI) does.
    pub fn add_bos(&self) -> bool {
        self.add_bos && self.bos.is_some()
    }
    /// Beginning-of-text token, if the vocabulary names one.
    pub fn bos(&self) -> Option<u32> {
        self.bos
    }
    /// End-of-text token, if the vocabulary names one.
    pub fn eos(&self) -> Option<u32> {
        self.eos
    }
    /// The pre-tokenizer `tokenizer.ggml.pre` selected (GPT-2 vocabularies;
    /// [`PreTokenizer::Gpt2`] for SentencePiece, which has none).
    pub fn pre_tokenizer(&self) -> PreTokenizer {
        match &self.model {
            Model::Gpt2(g) => g.pre,
            Model::Spm(_) => PreTokenizer::Gpt2,
        }
    }
    /// Longest decoded token, in bytes.
    pub fn max_token_len(&self) -> usize {
        match &self.model {
            Model::Gpt2(g) => g.vocab.max_token_len,
            Model::Spm(s) => s.max_token_len(),
        }
    }
    /// GGUF type of token `id` (see [`token_type`]); `None` if out of range.
    pub fn token_type(&self, id: u32) -> Option<i32> {
        ((id as usize) < self.n_vocab()).then(|| match &self.model {
            Model::Gpt2(g) => g.vocab.ty(id as usize),
            Model::Spm(s) => s.ty(id as usize),
        })
    }
    /// The token's string as stored in the file (GPT-2 `bytes_to_unicode` form for normal
    /// GPT-2 tokens, `▁` for spaces in SentencePiece pieces).
    pub fn token_text(&self, id: u32) -> Option<&'m [u8]> {
        ((id as usize) < self.n_vocab()).then(|| match &self.model {
            Model::Gpt2(g) => g.vocab.text(id as usize),
            Model::Spm(s) => s.text(id as usize),
        })
    }
    /// True for control and user-defined tokens (those `parse_special` matches and
    /// `skip_special` drops); for SentencePiece also the unknown token (as llama.cpp).
    pub fn is_special(&self, id: u32) -> bool {
        match &self.model {
            Model::Gpt2(_) => matches!(
                self.token_type(id),
                Some(token_type::CONTROL | token_type::USER_DEFINED)
            ),
            Model::Spm(s) => s.is_special(id),
        }
    }
    /// The id of a normal token given its decoded bytes, if it is one
    /// (byte strings longer than [`Tokenizer::max_token_len`] are never tokens).
    pub fn token_id(&self, bytes: &[u8]) -> Option<u32> {
        let vocab = match &self.model {
            Model::Gpt2(g) => &g.vocab,
            Model::Spm(s) => return s.token_id(bytes),
        };
        let mut buf = [0u8; 512];
        let mut n = 0;
        for &b in bytes {
            let (u, k) = byte_char_utf8(b);
            buf.get_mut(n..n + k)?.copy_from_slice(u.get(..k)?);
            n += k;
        }
        vocab.find(buf.get(..n)?, &[])
    }

    /// Use a BPE window of `n` symbols (between [`MIN_BPE_WINDOW`] and [`BPE_WINDOW`]) instead
    /// of the whole scratch: only useful to test the windowed path on shorter pieces.
    /// (SentencePiece: a merge window of `min(n, SPM_WINDOW)` escaped bytes.)
    pub fn set_bpe_window(&mut self, n: usize) -> Result<()> {
        if !(MIN_BPE_WINDOW..=BPE_WINDOW).contains(&n) {
            return Err(Error::BadParameter);
        }
        self.window = n;
        Ok(())
    }

    fn walk(&mut self, text: &[u8], parse_special: bool, sink: &mut Sink<'_>) -> Result<()> {
        let (v, s, pre) = match &mut self.model {
            Model::Gpt2(g) => (&g.vocab, &mut g.scratch, g.pre),
            Model::Spm(m) => return m.encode(text, parse_special, self.window, sink),
        };
        if !parse_special || v.specials.is_empty() {
            return v.encode_ordinary(pre, s, self.window, text, sink);
        }
        let mut seg = 0;
        let mut p = 0;
        while let Some(&b) = text.get(p) {
            if v.may_start_special(b) {
                if let Some((id, len)) = v.match_special(text.get(p..).unwrap_or(&[])) {
                    v.encode_ordinary(pre, s, self.window, text.get(seg..p).unwrap_or(&[]), sink)?;
                    sink.push(id)?;
                    p += len;
                    seg = p;
                    continue;
                }
            }
            p += 1;
        }
        v.encode_ordinary(pre, s, self.window, text.get(seg..).unwrap_or(&[]), sink)
    }

    /// Encode `text` into `out`, returning the number of ids written. With `parse_special`, the
    /// literal text of control and user-defined tokens becomes their ids (see the module docs;
    /// SentencePiece as llama.cpp: user-defined always, control and unknown with `parse_special`).
    /// [`Error::BufferTooSmall`] if `out` is too short ([`Tokenizer::count`] gives the length
    /// needed); `out` then holds a prefix of the ids.
    pub fn encode(&mut self, text: &[u8], parse_special: bool, out: &mut [u32]) -> Result<usize> {
        let mut sink = Sink {
            out,
            n: 0,
            counting: false,
        };
        self.walk(text, parse_special, &mut sink)?;
        Ok(sink.n)
    }

    /// An upper bound on the ids [`Tokenizer::encode`] gives for any text of `text_len` bytes:
    /// `text_len` for GPT-2 (never more ids than bytes); `7 * text_len + 3` for SentencePiece
    /// (a space becomes `▁`, up to 3 byte tokens; each text fragment may get a prefix space).
    pub fn max_ids(&self, text_len: usize) -> usize {
        match &self.model {
            Model::Gpt2(_) => text_len,
            Model::Spm(_) => text_len.saturating_mul(7).saturating_add(3),
        }
    }

    /// Number of ids [`Tokenizer::encode`] produces for `text`.
    pub fn count(&mut self, text: &[u8], parse_special: bool) -> usize {
        let mut sink = Sink {
            out: &mut [],
            n: 0,
            counting: true,
        };
        // A counting sink never fails.
        let _ = self.walk(text, parse_special, &mut sink);
        sink.n
    }

    /// Decoded length of token `id` in bytes.
    pub fn token_len(&self, id: u32) -> Result<usize> {
        if id as usize >= self.n_vocab() {
            return Err(Error::TokenOutOfRange);
        }
        Ok(match &self.model {
            Model::Gpt2(g) => g.vocab.token_len(id as usize),
            Model::Spm(s) => s.token_len(id as usize),
        })
    }

    /// Whether decoding drops the leading space of token `id` as the first of a text:
    /// SentencePiece with `add_space_prefix`, as llama.cpp's `llama_detokenize`.
    fn lstrip(&self, id: u32, skip_special: bool) -> bool {
        match &self.model {
            Model::Gpt2(_) => false,
            Model::Spm(s) => {
                s.add_space_prefix()
                    && !(skip_special && self.is_special(id))
                    && s.first_byte(id) == Some(b' ')
            }
        }
    }

    /// Bytes [`Tokenizer::decode`] writes for `ids`.
    pub fn decode_len(&self, ids: &[u32], skip_special: bool) -> Result<usize> {
        let mut n = 0usize;
        for &id in ids {
            if !(skip_special && self.is_special(id)) {
                n = n
                    .checked_add(self.token_len(id)?)
                    .ok_or(Error::BufferTooSmall)?;
            }
        }
        if ids.first().is_some_and(|&id| self.lstrip(id, skip_special)) {
            n -= 1;
        }
        Ok(n)
    }

    /// Decode `ids` into `out`, returning the number of bytes written; control and user-defined
    /// tokens give their text, or nothing with `skip_special`. [`Error::TokenOutOfRange`] for an
    /// id outside the vocabulary; [`Error::BufferTooSmall`] if `out` is too short
    /// ([`Tokenizer::decode_len`] gives the length needed). SentencePiece: the first token's
    /// leading space is dropped (see [`spm`]), so the bytes are those of the tokens less that one.
    pub fn decode(&self, ids: &[u32], skip_special: bool, out: &mut [u8]) -> Result<usize> {
        let mut n = 0usize;
        for (i, &id) in ids.iter().enumerate() {
            if skip_special && self.is_special(id) {
                continue;
            }
            let dst = out.get_mut(n..).ok_or(Error::BufferTooSmall)?;
            n += if i == 0 {
                self.first_token_bytes(id, dst)?
            } else {
                self.token_bytes(id, dst)?
            };
        }
        Ok(n)
    }
}

impl Detokenize for Tokenizer<'_, '_> {
    fn token_bytes(&self, id: u32, out: &mut [u8]) -> Result<usize> {
        match &self.model {
            Model::Gpt2(g) => g.vocab.token_bytes(id, out),
            Model::Spm(s) => s.token_bytes(id, out, false),
        }
    }
    fn first_token_bytes(&self, id: u32, out: &mut [u8]) -> Result<usize> {
        match &self.model {
            Model::Gpt2(g) => g.vocab.token_bytes(id, out),
            Model::Spm(s) => s.token_bytes(id, out, s.add_space_prefix()),
        }
    }
    fn eos(&self) -> Option<u32> {
        self.eos
    }
}

/// The stored string of token `id` given the tokens array bytes and the string offsets.
#[inline]
/// Put token `id` into the open-addressing string table `table` (a power-of-two
/// length, slots hold `id + 1`, 0 is empty); a second token with the same text is
/// [`Error::BadTokenizer`].
fn insert_unique(table: &mut [u32], raw: &[u8], offsets: &[u32], id: usize) -> Result<()> {
    let t = text_at(raw, offsets, id);
    let mask = table.len().wrapping_sub(1);
    let mut i = hash_str(t, &[]) as usize & mask;
    loop {
        let slot = table.get_mut(i).ok_or(Error::BadTokenizer)?;
        if *slot == 0 {
            *slot = id as u32 + 1;
            return Ok(());
        }
        if text_at(raw, offsets, *slot as usize - 1) == t {
            return Err(Error::BadTokenizer);
        }
        i = (i + 1) & mask;
    }
}

fn text_at<'m>(raw: &'m [u8], offsets: &[u32], id: usize) -> &'m [u8] {
    let Some(&off) = offsets.get(id) else {
        return &[];
    };
    let off = off as usize;
    let len = off
        .checked_sub(8)
        .and_then(|s| raw.get(s..off))
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, |b| u64::from_le_bytes(b) as usize);
    off.checked_add(len)
        .and_then(|end| raw.get(off..end))
        .unwrap_or(&[])
}
