//! Streaming detokenization that never releases half a UTF-8 character.

use super::Detokenize;
use crate::error::{Error, Result};

/// Turns tokens into bytes one at a time for a printer. An incomplete UTF-8 sequence at the end
/// of a token's bytes (a valid prefix of a character) is held back (at most 3 bytes) and released
/// when the next bytes complete it. If they do not (an invalid continuation), the held bytes are
/// released as they are, so every input byte comes out exactly once and in order: concatenating
/// all outputs plus [`StreamDecoder::flush`] gives the plain decoding.
///
/// A decoder from [`StreamDecoder::new`] continues a text (e.g. generation after a prompt): each
/// token gives [`Detokenize::token_bytes`]. One from [`StreamDecoder::at_start`] treats its first
/// token as the start of a text, as [`super::Tokenizer::decode`] does (SentencePiece drops that
/// token's leading space), so its output equals `decode` of the same ids.
///
/// No allocation; 6 bytes of state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamDecoder {
    held: [u8; 3],
    n_held: u8,
    at_start: bool,
}

impl StreamDecoder {
    /// A decoder with nothing held.
    pub const fn new() -> Self {
        StreamDecoder {
            held: [0; 3],
            n_held: 0,
            at_start: false,
        }
    }

    /// A decoder whose first token starts a text ([`Detokenize::first_token_bytes`]).
    pub const fn at_start() -> Self {
        StreamDecoder {
            held: [0; 3],
            n_held: 0,
            at_start: true,
        }
    }

    /// Bytes currently held back.
    pub fn held(&self) -> &[u8] {
        self.held.get(..self.n_held as usize).unwrap_or(&[])
    }

    /// Decode token `id` and write the bytes that are ready to `out`, returning how many.
    /// `out` needs room for the held bytes plus the token's bytes (3 + the longest token always
    /// suffices); otherwise [`Error::BufferTooSmall`] and the decoder is unchanged (so is it on
    /// any other error, e.g. [`Error::TokenOutOfRange`]). `out` beyond the returned count is scratch.
    pub fn push<D: Detokenize + ?Sized>(
        &mut self,
        tok: &D,
        id: u32,
        out: &mut [u8],
    ) -> Result<usize> {
        let h = self.n_held as usize;
        out.get_mut(..h)
            .ok_or(Error::BufferTooSmall)?
            .copy_from_slice(self.held());
        let rest = out.get_mut(h..).ok_or(Error::BufferTooSmall)?;
        let n = h + if self.at_start {
            tok.first_token_bytes(id, rest)?
        } else {
            tok.token_bytes(id, rest)?
        };
        self.at_start = false;
        let all = out.get(..n).unwrap_or(&[]);
        let k = incomplete_tail(all);
        let keep = n - k;
        self.held = [0; 3];
        // k <= 3 = held.len() and the tail is exactly k bytes long
        if let (Some(held), Some(tail)) = (self.held.get_mut(..k), all.get(keep..)) {
            held.copy_from_slice(tail);
        }
        self.n_held = k as u8;
        Ok(keep)
    }

    /// Release whatever is held (an incomplete sequence at the end of the stream) as it is.
    /// Needs `out.len() >= self.held().len()`.
    pub fn flush(&mut self, out: &mut [u8]) -> Result<usize> {
        let h = self.n_held as usize;
        out.get_mut(..h)
            .ok_or(Error::BufferTooSmall)?
            .copy_from_slice(self.held());
        *self = StreamDecoder::new();
        Ok(h)
    }
}

/// Length of the trailing bytes of `b` that form a valid but incomplete UTF-8 sequence (0..=3).
pub fn incomplete_tail(b: &[u8]) -> usize {
    for k in 1..=3.min(b.len()) {
        let tail = b.get(b.len() - k..).unwrap_or(&[]);
        match core::str::from_utf8(tail) {
            Ok(_) => return 0,
            Err(e) if e.valid_up_to() == 0 && e.error_len().is_none() => return k,
            Err(_) => {
                // A lead byte that is not a valid prefix, or ASCII: nothing incomplete further back.
                if tail.first().is_none_or(|&c| c & 0xC0 != 0x80) {
                    return 0;
                }
            }
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails() {
        assert_eq!(incomplete_tail(b""), 0);
        assert_eq!(incomplete_tail(b"abc"), 0);
        assert_eq!(incomplete_tail(b"a\xe2"), 1);
        assert_eq!(incomplete_tail(b"a\xe2\x82"), 2);
        assert_eq!(incomplete_tail(b"a\xe2\x82\xac"), 0);
        assert_eq!(incomplete_tail(b"\xf0\x9f\x98"), 3);
        assert_eq!(incomplete_tail(b"\xf0\x9f\x98\x80"), 0);
        assert_eq!(incomplete_tail(b"\x80"), 0);
        assert_eq!(incomplete_tail(b"\xc0"), 0); // never valid
        assert_eq!(incomplete_tail(b"\xed\xa0"), 0); // surrogate prefix
        assert_eq!(incomplete_tail(b"\xe2\x82\xe2"), 1);
    }
}
