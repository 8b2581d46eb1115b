//! Zero-copy GGUF reader and validator.
//!
//! [`Gguf::parse`] walks the whole header, every metadata entry (nested arrays
//! included) and every tensor info once, and checks everything a later call
//! relies on: magic, version, counts against the bytes that remain, string and
//! array lengths, dimensions (with overflow checks), types, offsets inside the
//! data section, alignment and overlaps. After it succeeds, every accessor is a
//! cheap re-walk over bytes already proven well-formed; no tensor data is copied.
//!
//! Limits (a hostile file cannot exceed them; all work is linear in file size):
//! - strings: at most [`MAX_STRING_LEN`] bytes;
//! - array nesting: at most [`MAX_ARRAY_DEPTH`] levels;
//! - tensors: at most 4 dimensions, element counts checked for u64/usize overflow;
//! - `general.alignment`: a power of two from 1 to 65536;
//! - tensor directories not sorted by offset are overlap-checked pairwise, and only
//!   up to [`MAX_UNSORTED_TENSORS`] tensors (larger unsorted directories are rejected).
//!   Without memory to sort into, that check is quadratic: it compares
//!   [`OVERLAP_CHUNK`] tensors held on the stack against one walk of the rest,
//!   so it re-parses the directory `n / OVERLAP_CHUNK` times (at the cap: 128
//!   walks of 4096 entries and 8.4 M integer comparisons). Writers (llama.cpp,
//!   gguf-py) always emit sorted, contiguous directories, which cost one walk.
//!
//! Metadata keys are not checked for duplicates here (that would be quadratic
//! too): [`Gguf::get`] returns the first match, while the typed getters
//! ([`Gguf::get_u64`] and friends, which loaders use) fail with
//! [`Error::DuplicateName`] when a key occurs more than once, so two readers
//! can never disagree on a value the model uses.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::error::{Error, Result};
use crate::quant::GgmlType;

/// The four magic bytes at the start of every GGUF file.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// Longest accepted string (key, value or tensor name), in bytes.
pub const MAX_STRING_LEN: u64 = 1 << 24;
/// Deepest accepted nesting of metadata arrays.
pub const MAX_ARRAY_DEPTH: u32 = 4;
/// Largest tensor directory accepted when it is not sorted by offset.
pub const MAX_UNSORTED_TENSORS: usize = 4096;
/// Tensors held on the stack per pass of the unsorted-directory overlap check.
pub const OVERLAP_CHUNK: usize = 32;
/// Alignment used when the file has no `general.alignment`.
pub const DEFAULT_ALIGNMENT: usize = 32;
/// Largest accepted `general.alignment`.
pub const MAX_ALIGNMENT: u32 = 65536;

/// A little-endian cursor over a byte slice; every read is bounds-checked.
#[derive(Clone, Copy)]
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8], pos: usize) -> Self {
        Cursor { bytes, pos }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or(Error::Truncated)?;
        let s = self.bytes.get(self.pos..end).ok_or(Error::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }
    pub(crate) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A GGUF string: u64 length, then that many bytes (not required to be UTF-8).
    pub(crate) fn string(&mut self) -> Result<&'a [u8]> {
        let len = self.u64()?;
        if len > MAX_STRING_LEN || len > self.remaining() as u64 {
            return Err(Error::StringTooLong);
        }
        self.take(len as usize)
    }
}

/// The type of a metadata value, as GGUF numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum ValueType {
    U8 = 0,
    I8 = 1,
    U16 = 2,
    I16 = 3,
    U32 = 4,
    I32 = 5,
    F32 = 6,
    Bool = 7,
    String = 8,
    Array = 9,
    U64 = 10,
    I64 = 11,
    F64 = 12,
}

impl ValueType {
    /// Parse a GGUF value type id.
    pub fn from_u32(v: u32) -> Result<Self> {
        Ok(match v {
            0 => ValueType::U8,
            1 => ValueType::I8,
            2 => ValueType::U16,
            3 => ValueType::I16,
            4 => ValueType::U32,
            5 => ValueType::I32,
            6 => ValueType::F32,
            7 => ValueType::Bool,
            8 => ValueType::String,
            9 => ValueType::Array,
            10 => ValueType::U64,
            11 => ValueType::I64,
            12 => ValueType::F64,
            _ => return Err(Error::BadValueType),
        })
    }

    /// Size in bytes of a fixed-size value, `None` for strings and arrays.
    pub fn fixed_size(self) -> Option<usize> {
        match self {
            ValueType::U8 | ValueType::I8 | ValueType::Bool => Some(1),
            ValueType::U16 | ValueType::I16 => Some(2),
            ValueType::U32 | ValueType::I32 | ValueType::F32 => Some(4),
            ValueType::U64 | ValueType::I64 | ValueType::F64 => Some(8),
            ValueType::String | ValueType::Array => None,
        }
    }

    /// Smallest number of bytes one value of this type occupies.
    fn min_size(self) -> usize {
        match self.fixed_size() {
            Some(n) => n,
            None if self == ValueType::String => 8,
            None => 12,
        }
    }
}

/// One metadata value, borrowed from the file.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    /// Raw bytes of a string (GGUF says UTF-8; not enforced here).
    Str(&'a [u8]),
    Array(ArrayView<'a>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl<'a> Value<'a> {
    /// The value as u64 if it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) if v >= 0 => Some(v as u64),
            Value::I16(v) if v >= 0 => Some(v as u64),
            Value::I32(v) if v >= 0 => Some(v as u64),
            Value::I64(v) if v >= 0 => Some(v as u64),
            _ => None,
        }
    }

    /// The value as f32 if it is a float (f64 is narrowed).
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Value::F32(v) => Some(v),
            Value::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    /// The string bytes, if a string.
    pub fn as_str(&self) -> Option<&'a [u8]> {
        match *self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The array, if an array.
    pub fn as_array(&self) -> Option<ArrayView<'a>> {
        match *self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// A validated metadata array: element type, count and the bytes of its elements.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ArrayView<'a> {
    elem: ValueType,
    len: usize,
    /// Exactly the bytes of the elements.
    bytes: &'a [u8],
}

impl<'a> ArrayView<'a> {
    /// Element type.
    pub fn elem_type(&self) -> ValueType {
        self.elem
    }
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }
    /// True when the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The raw element bytes (for fixed-size types: `len * size` little-endian values).
    pub fn raw(&self) -> &'a [u8] {
        self.bytes
    }
    /// Byte offset of the element bytes from the start of the file.
    pub fn iter(&self) -> ArrayIter<'a> {
        ArrayIter {
            cur: Cursor::new(self.bytes, 0),
            elem: self.elem,
            left: self.len,
        }
    }
    /// Element `i`: O(1) for fixed-size types, O(i) for strings and arrays.
    pub fn get(&self, i: usize) -> Option<Value<'a>> {
        if i >= self.len {
            return None;
        }
        if let Some(sz) = self.elem.fixed_size() {
            let mut c = Cursor::new(self.bytes, i.checked_mul(sz)?);
            return read_value(&mut c, self.elem, 0).ok();
        }
        self.iter().nth(i)
    }
}

/// Iterator over the elements of an [`ArrayView`].
#[derive(Clone)]
pub struct ArrayIter<'a> {
    cur: Cursor<'a>,
    elem: ValueType,
    left: usize,
}

impl<'a> ArrayIter<'a> {
    /// Offset of the next element inside the array's element bytes.
    pub fn offset(&self) -> usize {
        self.cur.pos()
    }
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Value<'a>;
    fn next(&mut self) -> Option<Value<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        read_value(&mut self.cur, self.elem, 0).ok()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// Read (and validate) one value of type `ty`; arrays are walked element by element.
fn read_value<'a>(c: &mut Cursor<'a>, ty: ValueType, depth: u32) -> Result<Value<'a>> {
    Ok(match ty {
        ValueType::U8 => Value::U8(c.u8()?),
        ValueType::I8 => Value::I8(c.u8()? as i8),
        ValueType::U16 => Value::U16(c.u16()?),
        ValueType::I16 => Value::I16(c.u16()? as i16),
        ValueType::U32 => Value::U32(c.u32()?),
        ValueType::I32 => Value::I32(c.u32()? as i32),
        ValueType::F32 => Value::F32(f32::from_bits(c.u32()?)),
        ValueType::Bool => match c.u8()? {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return Err(Error::BadValueType),
        },
        ValueType::String => Value::Str(c.string()?),
        ValueType::U64 => Value::U64(c.u64()?),
        ValueType::I64 => Value::I64(c.u64()? as i64),
        ValueType::F64 => Value::F64(f64::from_bits(c.u64()?)),
        ValueType::Array => {
            if depth >= MAX_ARRAY_DEPTH {
                return Err(Error::NestingTooDeep);
            }
            let elem = ValueType::from_u32(c.u32()?)?;
            let n = c.u64()?;
            // Every element takes at least min_size bytes: a count that cannot fit is rejected
            // before any per-element work, so walking is linear in the file size.
            let max = (c.remaining() / elem.min_size()) as u64;
            if n > max {
                return Err(Error::CountTooLarge);
            }
            let n = n as usize;
            let start = c.pos();
            match elem.fixed_size() {
                Some(sz) => {
                    // n * sz <= remaining, so no overflow.
                    c.take(n * sz)?;
                    if elem == ValueType::Bool {
                        let bytes = c.bytes.get(start..c.pos()).ok_or(Error::Truncated)?;
                        if bytes.iter().any(|&b| b > 1) {
                            return Err(Error::BadValueType);
                        }
                    }
                }
                None => {
                    for _ in 0..n {
                        read_value(c, elem, depth + 1)?;
                    }
                }
            }
            let bytes = c.bytes.get(start..c.pos()).ok_or(Error::Truncated)?;
            Value::Array(ArrayView {
                elem,
                len: n,
                bytes,
            })
        }
    })
}

/// One tensor directory entry, validated; `data` is the tensor's bytes inside the file.
#[derive(Clone, Copy, Debug)]
pub struct TensorInfo<'a> {
    /// Tensor name bytes.
    pub name: &'a [u8],
    /// Element type.
    pub ty: GgmlType,
    /// Number of dimensions (1..=4).
    pub n_dims: usize,
    /// Dimensions in ggml order: `ne[0]` is the row length (contiguous), unused ones are 1.
    pub ne: [usize; 4],
    /// Offset of the data relative to the start of the data section.
    pub offset: usize,
    /// The tensor's bytes (exactly its size).
    pub data: &'a [u8],
}

impl<'a> TensorInfo<'a> {
    /// Number of elements (checked at parse time not to overflow; saturates
    /// for a hand-made `TensorInfo`).
    pub fn n_elements(&self) -> usize {
        self.ne[0].saturating_mul(self.n_rows())
    }
    /// Number of rows (`ne[1] * ne[2] * ne[3]`).
    pub fn n_rows(&self) -> usize {
        self.ne[1]
            .saturating_mul(self.ne[2])
            .saturating_mul(self.ne[3])
    }
    /// Bytes in one row.
    pub fn row_bytes(&self) -> usize {
        self.ty.row_bytes(self.ne[0]).unwrap_or(0)
    }
    /// The name as UTF-8 if it is.
    pub fn name_str(&self) -> &'a str {
        core::str::from_utf8(self.name).unwrap_or("<non-utf8>")
    }
}

/// A parsed, validated GGUF file borrowed from the caller's bytes.
#[derive(Clone, Copy, Debug)]
pub struct Gguf<'a> {
    bytes: &'a [u8],
    version: u32,
    n_kv: usize,
    n_tensors: usize,
    kv_start: usize,
    tensors_start: usize,
    data_start: usize,
    alignment: usize,
}

/// Read one tensor info at the cursor; `data_len` and `data_start` locate the data section.
fn read_tensor_info<'a>(
    c: &mut Cursor<'a>,
    bytes: &'a [u8],
    data_start: usize,
    alignment: usize,
) -> Result<TensorInfo<'a>> {
    let name = c.string()?;
    let n_dims = c.u32()? as usize;
    if n_dims == 0 || n_dims > 4 {
        return Err(Error::BadDimensionCount);
    }
    let mut ne = [1usize; 4];
    let mut count: u64 = 1;
    for d in ne.iter_mut().take(n_dims) {
        let v = c.u64()?;
        if v == 0 {
            return Err(Error::BadDimension);
        }
        count = count.checked_mul(v).ok_or(Error::BadDimension)?;
        *d = usize::try_from(v).map_err(|_| Error::BadDimension)?;
    }
    if usize::try_from(count).is_err() {
        return Err(Error::BadDimension);
    }
    let ty = GgmlType::from_u32(c.u32()?)?;
    let offset = c.u64()?;
    if ne[0] % ty.block_size() != 0 {
        return Err(Error::BadBlockShape);
    }
    // Whole blocks: row_bytes only fails when the byte count overflows.
    let row = ty.row_bytes(ne[0]).ok_or(Error::BadDimension)?;
    let size = (row as u64)
        .checked_mul(count / ne[0] as u64)
        .ok_or(Error::BadDimension)?;
    if offset % alignment as u64 != 0 {
        return Err(Error::TensorMisaligned);
    }
    let start = (data_start as u64)
        .checked_add(offset)
        .ok_or(Error::TensorOutOfBounds)?;
    let end = start.checked_add(size).ok_or(Error::TensorOutOfBounds)?;
    if end > bytes.len() as u64 {
        return Err(Error::TensorOutOfBounds);
    }
    let data = bytes
        .get(start as usize..end as usize)
        .ok_or(Error::TensorOutOfBounds)?;
    Ok(TensorInfo {
        name,
        ty,
        n_dims,
        ne,
        offset: offset as usize,
        data,
    })
}

impl<'a> Gguf<'a> {
    /// Parse and validate a whole GGUF file. Linear in the file size.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut c = Cursor::new(bytes, 0);
        if c.take(4).map_err(|_| Error::BadMagic)? != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = c.u32()?;
        if version != 2 && version != 3 {
            return Err(Error::UnsupportedVersion);
        }
        let n_tensors = c.u64()?;
        let n_kv = c.u64()?;
        // A tensor info takes at least 8+4+8+4+8 = 32 bytes, a key/value pair at least 8+4+1.
        let rem = c.remaining() as u64;
        if n_tensors > rem / 32 || n_kv > rem / 13 {
            return Err(Error::CountTooLarge);
        }
        let (n_tensors, n_kv) = (n_tensors as usize, n_kv as usize);
        let kv_start = c.pos();

        // Metadata: validate every entry and find general.alignment.
        let mut alignment = DEFAULT_ALIGNMENT;
        let mut seen_alignment = false;
        for _ in 0..n_kv {
            let key = c.string()?;
            let ty = ValueType::from_u32(c.u32()?)?;
            let v = read_value(&mut c, ty, 0)?;
            if key == b"general.alignment" {
                if seen_alignment {
                    return Err(Error::DuplicateName);
                }
                seen_alignment = true;
                match v {
                    Value::U32(a) if a != 0 && a.is_power_of_two() && a <= MAX_ALIGNMENT => {
                        alignment = a as usize
                    }
                    _ => return Err(Error::BadAlignment),
                }
            }
        }
        let tensors_start = c.pos();

        // Tensor infos, first pass: find where the directory ends.
        for _ in 0..n_tensors {
            c.string()?;
            let n_dims = c.u32()? as usize;
            if n_dims == 0 || n_dims > 4 {
                return Err(Error::BadDimensionCount);
            }
            c.take(n_dims * 8 + 4 + 8)?;
        }
        let dir_end = c.pos();
        let data_start =
            dir_end.checked_add(alignment - 1).ok_or(Error::Truncated)? / alignment * alignment;
        if n_tensors > 0 && data_start > bytes.len() {
            return Err(Error::Truncated);
        }

        let g = Gguf {
            bytes,
            version,
            n_kv,
            n_tensors,
            kv_start,
            tensors_start,
            data_start,
            alignment,
        };

        // Second pass: full validation of each tensor, and overlap checks.
        let mut sorted = true;
        let mut prev_end = 0usize;
        let mut c = Cursor::new(bytes, tensors_start);
        for _ in 0..n_tensors {
            let t = read_tensor_info(&mut c, bytes, data_start, alignment)?;
            if t.offset < prev_end {
                sorted = false;
            }
            prev_end = t.offset + t.data.len();
        }
        if !sorted {
            if n_tensors > MAX_UNSORTED_TENSORS {
                return Err(Error::TensorOverlap);
            }
            g.check_overlaps()?;
        }
        Ok(g)
    }

    /// Pairwise overlap check of an unsorted directory: [`OVERLAP_CHUNK`]
    /// spans at a time are held on the stack and compared with each other and
    /// with one walk over every later tensor.
    fn check_overlaps(&self) -> Result<()> {
        fn span(t: &TensorInfo<'_>) -> (usize, usize) {
            // offset + len <= file length: checked when the entry was read.
            (t.offset, t.offset.saturating_add(t.data.len()))
        }
        fn overlap(a: (usize, usize), b: (usize, usize)) -> bool {
            a.0 < b.1 && b.0 < a.1
        }
        let mut rest = self.tensors();
        loop {
            let mut spans = [(0usize, 0usize); OVERLAP_CHUNK];
            let mut k = 0;
            // zip polls `spans` first, so `rest` only advances by what is taken.
            for (slot, t) in spans.iter_mut().zip(rest.by_ref()) {
                *slot = span(&t);
                k += 1;
            }
            let chunk = spans.get(..k).unwrap_or(&[]);
            if chunk.is_empty() {
                return Ok(());
            }
            for (i, &a) in chunk.iter().enumerate() {
                if chunk.iter().skip(i + 1).any(|&b| overlap(a, b)) {
                    return Err(Error::TensorOverlap);
                }
            }
            for t in rest.clone() {
                let b = span(&t);
                if chunk.iter().any(|&a| overlap(a, b)) {
                    return Err(Error::TensorOverlap);
                }
            }
        }
    }

    /// The bytes the file was parsed from.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// GGUF version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }
    /// Number of metadata entries.
    pub fn n_metadata(&self) -> usize {
        self.n_kv
    }
    /// Number of tensors.
    pub fn n_tensors(&self) -> usize {
        self.n_tensors
    }
    /// Data alignment.
    pub fn alignment(&self) -> usize {
        self.alignment
    }
    /// Offset of the data section in the file.
    pub fn data_offset(&self) -> usize {
        self.data_start
    }

    /// Iterate over `(key, value)` metadata pairs.
    pub fn metadata(&self) -> MetadataIter<'a> {
        MetadataIter {
            cur: Cursor::new(self.bytes, self.kv_start),
            left: self.n_kv,
        }
    }

    /// Look up a metadata value by key (linear in the number of entries); the
    /// first entry wins when a key occurs more than once.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.metadata()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// A required key: `MissingMetadata` when absent, `DuplicateName` when it
    /// occurs more than once (one walk over the metadata either way).
    pub fn get_required(&self, key: &str) -> Result<Value<'a>> {
        let mut found = None;
        for (k, v) in self.metadata() {
            if k == key.as_bytes() {
                if found.is_some() {
                    return Err(Error::DuplicateName);
                }
                found = Some(v);
            }
        }
        found.ok_or(Error::MissingMetadata)
    }

    /// A required unsigned integer (any integer width, non-negative).
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.get_required(key)?
            .as_u64()
            .ok_or(Error::BadMetadataType)
    }

    /// A required float.
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        self.get_required(key)?
            .as_f32()
            .ok_or(Error::BadMetadataType)
    }

    /// A required string.
    pub fn get_str(&self, key: &str) -> Result<&'a [u8]> {
        self.get_required(key)?
            .as_str()
            .ok_or(Error::BadMetadataType)
    }

    /// A required array.
    pub fn get_array(&self, key: &str) -> Result<ArrayView<'a>> {
        self.get_required(key)?
            .as_array()
            .ok_or(Error::BadMetadataType)
    }

    /// Iterate over the tensor directory.
    pub fn tensors(&self) -> TensorIter<'a> {
        TensorIter {
            cur: Cursor::new(self.bytes, self.tensors_start),
            bytes: self.bytes,
            data_start: self.data_start,
            alignment: self.alignment,
            left: self.n_tensors,
        }
    }

    /// Find a tensor by name (linear in the number of tensors).
    pub fn tensor(&self, name: &str) -> Option<TensorInfo<'a>> {
        self.tensors().find(|t| t.name == name.as_bytes())
    }
}

/// Iterator over metadata entries of a validated file.
#[derive(Clone)]
pub struct MetadataIter<'a> {
    cur: Cursor<'a>,
    left: usize,
}

impl<'a> Iterator for MetadataIter<'a> {
    type Item = (&'a [u8], Value<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let key = self.cur.string().ok()?;
        let ty = ValueType::from_u32(self.cur.u32().ok()?).ok()?;
        let v = read_value(&mut self.cur, ty, 0).ok()?;
        Some((key, v))
    }
}

/// Iterator over the tensor directory of a validated file.
#[derive(Clone)]
pub struct TensorIter<'a> {
    cur: Cursor<'a>,
    bytes: &'a [u8],
    data_start: usize,
    alignment: usize,
    left: usize,
}

impl<'a> Iterator for TensorIter<'a> {
    type Item = TensorInfo<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        read_tensor_info(&mut self.cur, self.bytes, self.data_start, self.alignment).ok()
    }
}
