//! Pre-tokenizers: split valid UTF-8 text into the pieces BPE then works inside.
//!
//! A pre-tokenizer is a small table-driven choice ([`PreTokenizer`]) named by the GGUF key
//! `tokenizer.ggml.pre`; the BPE itself is shared. Each variant is a hand-written matcher with
//! the exact semantics of its reference regex (leftmost match, alternatives tried in order,
//! greedy runs), so no regex engine is needed.
//!
//! GPT-2 (`"gpt-2"`, or the key absent) is
//! `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`:
//! at each position the first alternative that matches wins:
//! 1. an apostrophe followed by lowercase `s t m d` or `re ve ll` (case-sensitive, as in GPT-2);
//! 2. optionally one U+0020 SPACE, then a run of letters, or of numbers, or of "other" characters
//!    (neither white space, letter nor number; the apostrophe is "other");
//! 3. a white-space run: all of it if it reaches the end of the text, else all but its last
//!    character (which then starts the next piece, usually as the optional space of rule 2),
//!    and a single white-space character when the run is only one long.
//!
//! SmolLM (`"smollm"`, llama.cpp's `LLAMA_VOCAB_PRE_TYPE_SMOLLM`; Hugging Face's
//! `Sequence[Digits(individual_digits=true), ByteLevel(use_regex=true)]`) first isolates every
//! `\p{N}` character as a piece of its own, then splits the text between them with the GPT-2
//! pattern, which sees each such stretch as a whole text (so a space before a digit is never
//! joined to it, and a white-space run before a digit ends its stretch).

use super::unicode_tables::{ASCII, RANGES};

/// The character classes the pre-tokenizer patterns use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum CharClass {
    /// Neither letter, number nor white space.
    Other = 0,
    /// `\p{L}`: general category L (Lu, Ll, Lt, Lm, Lo).
    Letter = 1,
    /// `\p{N}`: general category N (Nd, Nl, No).
    Number = 2,
    /// `\s`: the Unicode White_Space property.
    Space = 3,
}

impl CharClass {
    #[inline]
    fn from_code(c: u8) -> Self {
        match c {
            1 => CharClass::Letter,
            2 => CharClass::Number,
            3 => CharClass::Space,
            _ => CharClass::Other,
        }
    }
}

/// Class of a character, from the generated tables (ASCII by direct lookup, the rest by binary
/// search over sorted ranges).
#[inline]
pub fn char_class(c: char) -> CharClass {
    let cp = c as u32;
    if let Some(&k) = ASCII.get(cp as usize) {
        return CharClass::from_code(k);
    }
    // Index of the first range whose last code point is >= cp.
    let i = RANGES.partition_point(|&(_, last, _)| last < cp);
    match RANGES.get(i) {
        Some(&(first, _, k)) if first <= cp => CharClass::from_code(k),
        _ => CharClass::Other,
    }
}

/// The pre-tokenizers embergpt knows, selected from `tokenizer.ggml.pre`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PreTokenizer {
    /// GPT-2's pattern (see the module documentation).
    Gpt2,
    /// Each number character alone, then GPT-2's pattern between them (SmolLM, SmolLM2).
    SmolLm,
}

/// `tokenizer.ggml.pre` names and the pre-tokenizer each selects (absent key: GPT-2).
const NAMES: &[(&[u8], PreTokenizer)] = &[
    (b"gpt-2", PreTokenizer::Gpt2),
    (b"smollm", PreTokenizer::SmolLm),
];

impl PreTokenizer {
    /// The pre-tokenizer for a byte-level BPE vocabulary given the value of
    /// `tokenizer.ggml.pre` (`None` when the key is absent, which means GPT-2's).
    /// Unknown names give `None`.
    pub fn from_name(name: Option<&[u8]>) -> Option<Self> {
        match name {
            None => Some(PreTokenizer::Gpt2),
            Some(n) => NAMES.iter().find(|(k, _)| *k == n).map(|&(_, p)| p),
        }
    }

    /// End (exclusive byte offset) of the piece that starts at byte `start` of `s`.
    /// Always greater than `start` when `start < s.len()`; `start` must be a char boundary.
    #[inline]
    pub fn piece_end(self, s: &str, start: usize) -> usize {
        match self {
            PreTokenizer::Gpt2 => gpt2_piece_end(s, start),
            PreTokenizer::SmolLm => digits_then_gpt2_piece_end(s, start),
        }
    }

    /// Iterate over the pieces of `s`.
    pub fn pieces(self, s: &str) -> Pieces<'_> {
        Pieces {
            pre: self,
            s,
            pos: 0,
        }
    }
}

/// Iterator over the pieces of a text (see [`PreTokenizer::pieces`]).
#[derive(Clone, Debug)]
pub struct Pieces<'s> {
    pre: PreTokenizer,
    s: &'s str,
    pos: usize,
}

impl<'s> Iterator for Pieces<'s> {
    type Item = &'s str;
    fn next(&mut self) -> Option<&'s str> {
        if self.pos >= self.s.len() {
            return None;
        }
        let end = self.pre.piece_end(self.s, self.pos);
        let p = self.s.get(self.pos..end)?;
        self.pos = end;
        Some(p)
    }
}

/// End of the longest run of characters of class `k` starting at byte `i` of `s`.
#[inline]
fn run_end(s: &str, i: usize, k: CharClass) -> usize {
    let rest = s.get(i..).unwrap_or("");
    // Fast path over ASCII bytes.
    let b = rest.as_bytes();
    let mut j = 0;
    while let Some(&x) = b.get(j) {
        if x >= 0x80 {
            break;
        }
        if CharClass::from_code(ASCII.get(x as usize).copied().unwrap_or(0)) != k {
            return i + j;
        }
        j += 1;
    }
    for (off, c) in rest.get(j..).unwrap_or("").char_indices() {
        if char_class(c) != k {
            return i + j + off;
        }
    }
    s.len()
}

fn gpt2_piece_end(s: &str, start: usize) -> usize {
    let rest = match s.get(start..) {
        Some(r) if !r.is_empty() => r,
        _ => return s.len(),
    };
    let b = rest.as_bytes();
    // 1. Contractions (lowercase only).
    if b.first() == Some(&b'\'') {
        match (b.get(1), b.get(2)) {
            (Some(b's' | b't' | b'm' | b'd'), _) => return start + 2,
            (Some(b'r'), Some(b'e')) | (Some(b'v'), Some(b'e')) | (Some(b'l'), Some(b'l')) => {
                return start + 3
            }
            _ => {}
        }
    }
    let mut chars = rest.chars();
    let c0 = match chars.next() {
        Some(c) => c,
        None => return s.len(),
    };
    // 2. ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`.
    let (body, first) = if c0 == ' ' {
        match chars.next() {
            Some(c1) => (start + 1, c1),
            None => return s.len(), // a lone trailing space: white space reaching the end
        }
    } else {
        (start, c0)
    };
    let k = char_class(first);
    if k != CharClass::Space {
        return run_end(s, body + first.len_utf8(), k);
    }
    // 3. White space: `\s+(?!\S)`, then `\s+` (here: one character).
    // c0 is white space (either not U+0020 and of class Space, or U+0020 followed by white space).
    let mut last_start = start;
    let mut end = start;
    for (off, c) in rest.char_indices() {
        if char_class(c) != CharClass::Space {
            break;
        }
        last_start = start + off;
        end = start + off + c.len_utf8();
    }
    if end == s.len() || last_start == start {
        // The run reaches the end of the text, or it is one character long.
        end
    } else {
        last_start
    }
}

/// `\p{N}` isolated, then GPT-2 inside the stretches between number characters.
///
/// The GPT-2 piece on the whole text can differ from the one on the stretch only if it looked at
/// a number character: one inside it (` 123`), or the character after a white-space run that the
/// `\s+(?!\S)` rule inspected. So the stretch end is searched only that far (at most the piece,
/// the white space after it and one more character), which keeps encoding linear.
fn digits_then_gpt2_piece_end(s: &str, start: usize) -> usize {
    let rest = match s.get(start..) {
        Some(r) if !r.is_empty() => r,
        _ => return s.len(),
    };
    let mut chars = rest.char_indices();
    match chars.next() {
        Some((_, c)) if char_class(c) == CharClass::Number => return start + c.len_utf8(),
        Some(_) => {}
        None => return s.len(),
    }
    let e = gpt2_piece_end(s, start);
    for (off, c) in chars {
        let k = char_class(c);
        if k == CharClass::Number {
            // The stretch ends here; GPT-2 on it alone.
            let stretch = s.get(..start + off).unwrap_or(s);
            return gpt2_piece_end(stretch, start);
        }
        if start + off >= e && k != CharClass::Space {
            break;
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    fn split(s: &str) -> Vec<&str> {
        PreTokenizer::Gpt2.pieces(s).collect()
    }

    #[test]
    fn classes() {
        assert_eq!(char_class('a'), CharClass::Letter);
        assert_eq!(char_class('Z'), CharClass::Letter);
        assert_eq!(char_class('7'), CharClass::Number);
        assert_eq!(char_class(' '), CharClass::Space);
        assert_eq!(char_class('\t'), CharClass::Space);
        assert_eq!(char_class('\''), CharClass::Other);
        assert_eq!(char_class('é'), CharClass::Letter);
        assert_eq!(char_class('Ж'), CharClass::Letter);
        assert_eq!(char_class('漢'), CharClass::Letter);
        assert_eq!(char_class('٣'), CharClass::Number);
        assert_eq!(char_class('½'), CharClass::Number);
        assert_eq!(char_class('Ⅷ'), CharClass::Number);
        assert_eq!(char_class('²'), CharClass::Number);
        assert_eq!(char_class('\u{a0}'), CharClass::Space);
        assert_eq!(char_class('\u{3000}'), CharClass::Space);
        assert_eq!(char_class('\u{85}'), CharClass::Space);
        assert_eq!(char_class('\u{200b}'), CharClass::Other); // zero width space is not White_Space
        assert_eq!(char_class('\u{301}'), CharClass::Other); // combining mark (Mn)
        assert_eq!(char_class('😀'), CharClass::Other);
        assert_eq!(char_class('\u{10ffff}'), CharClass::Other);
        // Unicode 17 letters/digits that tiktoken's tables (Unicode 16) do not know: Other.
        assert_eq!(char_class('\u{10940}'), CharClass::Other);
        assert_eq!(char_class('\u{88f}'), CharClass::Other);
        assert_eq!(char_class('\u{11de0}'), CharClass::Other);
        // Unicode 16 additions tiktoken knows: Garay letters and Kirat Rai digits.
        assert_eq!(char_class('\u{10d50}'), CharClass::Letter);
        assert_eq!(char_class('\u{16d70}'), CharClass::Number);
    }

    #[test]
    fn words_and_spaces() {
        assert_eq!(split("Hello world"), ["Hello", " world"]);
        assert_eq!(split("a  b"), ["a", " ", " b"]);
        assert_eq!(split("a   b"), ["a", "  ", " b"]);
        assert_eq!(split("a \n b"), ["a", " \n", " b"]);
        assert_eq!(split("a\n\nb"), ["a", "\n", "\n", "b"]);
        assert_eq!(split("a\nb"), ["a", "\n", "b"]);
        assert_eq!(split("end   "), ["end", "   "]);
        assert_eq!(split(" "), [" "]);
        assert_eq!(split("\t x"), ["\t", " x"]);
        assert_eq!(split("\t\tx"), ["\t", "\t", "x"]);
        assert_eq!(split(""), Vec::<&str>::new());
    }

    #[test]
    fn classes_split_runs() {
        assert_eq!(split("abc123def"), ["abc", "123", "def"]);
        assert_eq!(split(" 42 !? ok"), [" 42", " !?", " ok"]);
        assert_eq!(split("x²½"), ["x", "²½"]);
        assert_eq!(split("héllo wörld"), ["héllo", " wörld"]);
        assert_eq!(split("e\u{301}t"), ["e", "\u{301}", "t"]);
        assert_eq!(split("hi😀😀 there"), ["hi", "😀😀", " there"]);
        assert_eq!(split("a\u{3000}b"), ["a", "\u{3000}", "b"]);
        assert_eq!(split("a\u{a0}b"), ["a", "\u{a0}", "b"]);
    }

    #[test]
    fn contractions() {
        assert_eq!(split("it's"), ["it", "'s"]);
        assert_eq!(split("we'll've"), ["we", "'ll", "'ve"]);
        assert_eq!(split("I'M"), ["I", "'", "M"]);
        assert_eq!(split("'Ll"), ["'", "Ll"]);
        assert_eq!(split("''s"), ["''", "s"]);
        assert_eq!(split(" 's"), [" '", "s"]);
        assert_eq!(split("'"), ["'"]);
        assert_eq!(split("'r"), ["'", "r"]);
        assert_eq!(split("!'s"), ["!'", "s"]);
    }

    fn split_smollm(s: &str) -> Vec<&str> {
        PreTokenizer::SmolLm.pieces(s).collect()
    }

    #[test]
    fn names() {
        assert_eq!(PreTokenizer::from_name(None), Some(PreTokenizer::Gpt2));
        assert_eq!(
            PreTokenizer::from_name(Some(b"gpt-2")),
            Some(PreTokenizer::Gpt2)
        );
        assert_eq!(
            PreTokenizer::from_name(Some(b"smollm")),
            Some(PreTokenizer::SmolLm)
        );
        assert_eq!(PreTokenizer::from_name(Some(b"llama-bpe")), None);
    }

    // Expected splits: Hugging Face `tokenizers`
    // `Sequence([Digits(individual_digits=True), ByteLevel(add_prefix_space=False)])`.
    #[test]
    fn smollm_digits_alone() {
        assert_eq!(split_smollm("12345"), ["1", "2", "3", "4", "5"]);
        assert_eq!(split_smollm("abc 123"), ["abc", " ", "1", "2", "3"]);
        assert_eq!(split_smollm("a  1"), ["a", "  ", "1"]);
        assert_eq!(split_smollm("a \n 1b"), ["a", " \n ", "1", "b"]);
        assert_eq!(split_smollm("x²½ y"), ["x", "²", "½", " y"]);
        assert_eq!(
            split_smollm("in 1999, 3.14!"),
            ["in", " ", "1", "9", "9", "9", ",", " ", "3", ".", "1", "4", "!"]
        );
        assert_eq!(split_smollm("Hello world"), ["Hello", " world"]);
        assert_eq!(split_smollm("it's  ok"), ["it", "'s", " ", " ok"]);
        assert_eq!(split_smollm("a1 "), ["a", "1", " "]);
    }

    #[test]
    fn pieces_cover_the_text() {
        let s = "Mixed: ΑΒΓ 123 \u{2003}\u{2003}x 'd\r\n\r\n  end\u{85}";
        let joined: std::string::String = split(s).concat();
        assert_eq!(joined, s);
        let joined: std::string::String = split_smollm(s).concat();
        assert_eq!(joined, s);
    }
}
