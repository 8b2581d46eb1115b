//! The bad-input contract (tests/BAD_INPUT.md), one test per row: every hostile
//! file, arena, parameter, token list and position gets its exact `Error`
//! variant, never a panic, and the context stays usable afterwards.
//!
//! Hostile GGUFs are built here with a tiny writer ([`G`]) that can also be
//! filled from a fixture and then changed one field at a time.

mod common;
use common::*;
use embergpt::gguf::{Gguf, Value, MAX_ARRAY_DEPTH, MAX_STRING_LEN, MAX_UNSORTED_TENSORS};
use embergpt::kernels::{matmul, Kernels, Matrix, QuantScratch};
use embergpt::quant::{dequantize_row, quantize_row, BlockQ8_0, BlockQ8_1};
use embergpt::{Backend, Context, ContextParams, Error, GgmlType, Model};

// ---------------------------------------------------------------------------
// A tiny GGUF writer
// ---------------------------------------------------------------------------

/// GGUF metadata value type ids.
mod vt {
    pub const U8: u32 = 0;
    pub const U32: u32 = 4;
    pub const I32: u32 = 5;
    pub const F32: u32 = 6;
    pub const BOOL: u32 = 7;
    pub const STR: u32 = 8;
    pub const ARR: u32 = 9;
    pub const U64: u32 = 10;
}

fn str_bytes(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

/// A metadata entry: key, type id, the encoded value (without the type id).
#[derive(Clone)]
struct Kv {
    key: Vec<u8>,
    ty: u32,
    payload: Vec<u8>,
}

fn kv_u32(key: &str, v: u32) -> Kv {
    Kv {
        key: key.into(),
        ty: vt::U32,
        payload: v.to_le_bytes().to_vec(),
    }
}
fn kv_str(key: &str, v: &str) -> Kv {
    Kv {
        key: key.into(),
        ty: vt::STR,
        payload: str_bytes(v.as_bytes()),
    }
}
/// An array payload: element type, count, element bytes.
fn arr_payload(elem: u32, n: u64, elems: &[u8]) -> Vec<u8> {
    let mut v = elem.to_le_bytes().to_vec();
    v.extend_from_slice(&n.to_le_bytes());
    v.extend_from_slice(elems);
    v
}

/// A tensor: name, dims (ggml order), type id, data; `offset` overrides the layout.
#[derive(Clone)]
struct T {
    name: Vec<u8>,
    dims: Vec<u64>,
    ty: u32,
    data: Vec<u8>,
    offset: Option<u64>,
}

/// A GGUF under construction.
#[derive(Clone)]
struct G {
    version: u32,
    kvs: Vec<Kv>,
    tensors: Vec<T>,
    align: u64,
    /// Written instead of the real counts when set.
    n_tensors: Option<u64>,
    n_kv: Option<u64>,
}

impl G {
    fn new() -> G {
        G {
            version: 3,
            kvs: vec![],
            tensors: vec![],
            align: 32,
            n_tensors: None,
            n_kv: None,
        }
    }

    /// Everything in a parsed file, re-encoded (the fixture round-trips byte for byte).
    fn from_bytes(bytes: &[u8]) -> G {
        let g = Gguf::parse(bytes).expect("fixture parses");
        let mut out = G::new();
        out.version = g.version();
        out.align = g.alignment() as u64;
        for (key, v) in g.metadata() {
            let (ty, payload) = encode(&v);
            out.kvs.push(Kv {
                key: key.to_vec(),
                ty,
                payload,
            });
        }
        for t in g.tensors() {
            out.tensors.push(T {
                name: t.name.to_vec(),
                dims: t.ne[..t.n_dims].iter().map(|&d| d as u64).collect(),
                ty: t.ty as u32,
                data: t.data.to_vec(),
                offset: None,
            });
        }
        out
    }

    fn kv_mut(&mut self, key: &str) -> &mut Kv {
        self.kvs
            .iter_mut()
            .find(|k| k.key == key.as_bytes())
            .expect("key present")
    }
    fn remove_kv(&mut self, key: &str) {
        self.kvs.retain(|k| k.key != key.as_bytes());
    }
    fn tensor_mut(&mut self, name: &str) -> &mut T {
        self.tensors
            .iter_mut()
            .find(|t| t.name == name.as_bytes())
            .expect("tensor present")
    }
    fn remove_tensor(&mut self, name: &str) {
        self.tensors.retain(|t| t.name != name.as_bytes());
    }

    /// Data offsets as the writer lays them out (aligned, in directory order).
    fn offsets(&self) -> Vec<u64> {
        let mut next = 0u64;
        self.tensors
            .iter()
            .map(|t| {
                let off = t.offset.unwrap_or(next);
                next = (off + t.data.len() as u64).next_multiple_of(self.align.max(1));
                off
            })
            .collect()
    }

    fn build(&self) -> Vec<u8> {
        self.build_layout().0
    }

    /// Build, then overwrite tensor `i`'s offset field with `off` (the data stays
    /// where the layout put it, so the file keeps its length).
    fn build_with_offset(&self, i: usize, off: u64) -> Vec<u8> {
        let (mut b, fields) = self.build_layout();
        b[fields[i]..fields[i] + 8].copy_from_slice(&off.to_le_bytes());
        b
    }

    /// The file and the position of every tensor's offset field.
    fn build_layout(&self) -> (Vec<u8>, Vec<usize>) {
        let mut fields = vec![];
        let mut b = b"GGUF".to_vec();
        b.extend_from_slice(&self.version.to_le_bytes());
        b.extend_from_slice(
            &self
                .n_tensors
                .unwrap_or(self.tensors.len() as u64)
                .to_le_bytes(),
        );
        b.extend_from_slice(&self.n_kv.unwrap_or(self.kvs.len() as u64).to_le_bytes());
        for kv in &self.kvs {
            b.extend_from_slice(&str_bytes(&kv.key));
            b.extend_from_slice(&kv.ty.to_le_bytes());
            b.extend_from_slice(&kv.payload);
        }
        let offs = self.offsets();
        for (t, off) in self.tensors.iter().zip(&offs) {
            b.extend_from_slice(&str_bytes(&t.name));
            b.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                b.extend_from_slice(&d.to_le_bytes());
            }
            b.extend_from_slice(&t.ty.to_le_bytes());
            fields.push(b.len());
            b.extend_from_slice(&off.to_le_bytes());
        }
        // One zeroed allocation for the whole file, then copies: Miri runs
        // `alloc_zeroed` and `copy_from_slice` as single operations, while a
        // growing `resize` is a byte loop there.
        let align = self.align.max(1) as usize;
        let data_start = b.len().next_multiple_of(align);
        let data_end = self
            .tensors
            .iter()
            .zip(&offs)
            .map(|(t, &off)| off as usize + t.data.len())
            .max()
            .map_or(0, |end| end.next_multiple_of(align));
        let mut file = vec![0u8; data_start + data_end];
        file[..b.len()].copy_from_slice(&b);
        for (t, &off) in self.tensors.iter().zip(&offs) {
            let at = data_start + off as usize;
            file[at..at + t.data.len()].copy_from_slice(&t.data);
        }
        let b = file;
        (b, fields)
    }
}

/// Encode a parsed value back into (type id, payload).
fn encode(v: &Value<'_>) -> (u32, Vec<u8>) {
    match *v {
        Value::U8(x) => (0, vec![x]),
        Value::I8(x) => (1, vec![x as u8]),
        Value::U16(x) => (2, x.to_le_bytes().to_vec()),
        Value::I16(x) => (3, x.to_le_bytes().to_vec()),
        Value::U32(x) => (4, x.to_le_bytes().to_vec()),
        Value::I32(x) => (5, x.to_le_bytes().to_vec()),
        Value::F32(x) => (6, x.to_le_bytes().to_vec()),
        Value::Bool(x) => (7, vec![x as u8]),
        Value::Str(s) => (8, str_bytes(s)),
        Value::Array(a) => (
            9,
            arr_payload(a.elem_type() as u32, a.len() as u64, a.raw()),
        ),
        Value::U64(x) => (10, x.to_le_bytes().to_vec()),
        Value::I64(x) => (11, x.to_le_bytes().to_vec()),
        Value::F64(x) => (12, x.to_le_bytes().to_vec()),
    }
}

/// A small valid non-model file: one key, two F32 tensors.
fn small() -> G {
    let mut g = G::new();
    g.kvs.push(kv_str("general.name", "small"));
    for (i, name) in ["a", "b"].iter().enumerate() {
        g.tensors.push(T {
            name: name.as_bytes().to_vec(),
            dims: vec![8, 2],
            ty: 0,
            data: vec![i as u8; 64],
            offset: None,
        });
    }
    g
}

fn parse_err(bytes: &[u8]) -> Error {
    match Gguf::parse(bytes) {
        Ok(_) => panic!("parse accepted a bad file"),
        Err(e) => e,
    }
}

fn load_err(bytes: &[u8]) -> Error {
    match Model::load(bytes) {
        Ok(_) => panic!("load accepted a bad model"),
        Err(e) => e,
    }
}

/// The smallest fixture, as a writer (f32: any shape works).
fn model_a() -> G {
    G::from_bytes(&read_fixture("gpt2/a.f32.gguf"))
}

// ---------------------------------------------------------------------------
// The writer itself
// ---------------------------------------------------------------------------

#[test]
fn writer_round_trips_every_fixture() {
    for name in ["a.f32", "b.q4_1", "c.q8_0"] {
        let bytes = read_fixture(&format!("gpt2/{name}.gguf"));
        assert!(
            G::from_bytes(&bytes).build() == bytes,
            "{name} does not round-trip"
        );
    }
    Gguf::parse(&small().build()).expect("small file parses");
}

// ---------------------------------------------------------------------------
// File format
// ---------------------------------------------------------------------------

/// Every prefix of the header, metadata and directory, and a sample of prefixes
/// inside the data, fails with the error of the field that was cut.
#[test]
#[cfg_attr(miri, ignore = "quadratic in the header size; slow under Miri")]
fn truncation_at_every_offset() {
    for name in ["a.q4_0", "b.f16"] {
        let bytes = read_fixture(&format!("gpt2/{name}.gguf"));
        let data_start = Gguf::parse(&bytes).unwrap().data_offset();
        let mut offsets: Vec<usize> = (0..data_start).collect();
        offsets.extend((data_start..bytes.len()).step_by(97));
        offsets.push(bytes.len() - 1);
        for k in offsets {
            let cut = &bytes[..k];
            let e = parse_err(cut);
            let ok = match k {
                0..=3 => e == Error::BadMagic,
                4..=23 => e == Error::Truncated,
                // A cut string says StringTooLong, a cut fixed field Truncated,
                // and counts that no longer fit the remaining bytes CountTooLarge.
                _ if k < data_start => matches!(
                    e,
                    Error::Truncated | Error::StringTooLong | Error::CountTooLarge
                ),
                // The directory is whole; some tensor's bytes are not.
                _ => e == Error::TensorOutOfBounds,
            };
            assert!(ok, "{name} cut at {k}/{}: {e:?}", bytes.len());
            assert_eq!(
                Model::load(cut).err(),
                Some(e),
                "load and parse disagree at {k}"
            );
        }
    }
}

#[test]
fn wrong_magic() {
    let mut b = small().build();
    b[0] = b'g';
    assert_eq!(parse_err(&b), Error::BadMagic);
    assert_eq!(parse_err(b"GGU"), Error::BadMagic);
    assert_eq!(parse_err(b""), Error::BadMagic);
    assert_eq!(load_err(b"\x7fELF\x02\x01\x01\0"), Error::BadMagic);
}

#[test]
fn wrong_version() {
    for v in [0, 1, 4, u32::MAX] {
        let mut g = small();
        g.version = v;
        assert_eq!(
            parse_err(&g.build()),
            Error::UnsupportedVersion,
            "version {v}"
        );
    }
    let mut g = small();
    g.version = 2;
    Gguf::parse(&g.build()).expect("version 2 is accepted");
}

#[test]
fn inflated_tensor_and_kv_counts() {
    for n in [u64::MAX, 1 << 40, 1 << 20] {
        let mut g = small();
        g.n_tensors = Some(n);
        assert_eq!(parse_err(&g.build()), Error::CountTooLarge, "n_tensors {n}");
        let mut g = small();
        g.n_kv = Some(n);
        assert_eq!(parse_err(&g.build()), Error::CountTooLarge, "n_kv {n}");
    }
    // One more tensor than written: the directory walk runs into the data.
    let mut g = small();
    g.n_tensors = Some(3);
    let e = parse_err(&g.build());
    assert!(
        matches!(
            e,
            Error::Truncated | Error::StringTooLong | Error::BadDimensionCount
        ),
        "{e:?}"
    );
}

#[test]
fn inflated_string_length() {
    let mut b = small().build();
    // The first key's length field is at 24.
    for len in [u64::MAX, 1 << 40, b.len() as u64] {
        b[24..32].copy_from_slice(&len.to_le_bytes());
        assert_eq!(parse_err(&b), Error::StringTooLong, "len {len}");
    }
}

#[test]
#[cfg_attr(miri, ignore = "16 MiB strings")]
fn string_length_limit() {
    let mut g = small();
    g.kvs[0].payload = str_bytes(&vec![b'x'; MAX_STRING_LEN as usize]);
    Gguf::parse(&g.build()).expect("a string of exactly MAX_STRING_LEN");
    g.kvs[0].payload = str_bytes(&vec![b'x'; MAX_STRING_LEN as usize + 1]);
    assert_eq!(parse_err(&g.build()), Error::StringTooLong);
}

#[test]
fn inflated_array_count() {
    for n in [u64::MAX, 1 << 40, 1 << 20] {
        let mut g = small();
        // 4 u32 elements written, n promised.
        g.kvs.push(Kv {
            key: b"arr".to_vec(),
            ty: vt::ARR,
            payload: arr_payload(vt::U32, n, &[0; 16]),
        });
        g.tensors.clear();
        assert_eq!(
            parse_err(&g.build()),
            Error::CountTooLarge,
            "array count {n}"
        );
    }
    // Strings: each needs at least 8 bytes.
    let mut g = G::new();
    g.kvs.push(Kv {
        key: b"s".to_vec(),
        ty: vt::ARR,
        payload: arr_payload(vt::STR, 1000, &[0; 16]),
    });
    assert_eq!(parse_err(&g.build()), Error::CountTooLarge);
}

/// `depth` levels of arrays, the innermost holding one u8.
fn nested(depth: u32) -> Vec<u8> {
    let mut p = arr_payload(vt::U8, 1, &[7]);
    for _ in 1..depth {
        p = arr_payload(vt::ARR, 1, &p);
    }
    p
}

#[test]
fn nested_arrays_too_deep() {
    let mut g = G::new();
    g.kvs.push(Kv {
        key: b"deep".to_vec(),
        ty: vt::ARR,
        payload: nested(MAX_ARRAY_DEPTH),
    });
    let b = g.build();
    let f = Gguf::parse(&b).expect("MAX_ARRAY_DEPTH levels are accepted");
    let mut v = f.get("deep").unwrap();
    for _ in 1..MAX_ARRAY_DEPTH {
        v = v.as_array().unwrap().get(0).unwrap();
    }
    assert_eq!(v.as_array().unwrap().get(0), Some(Value::U8(7)));
    g.kvs[0].payload = nested(MAX_ARRAY_DEPTH + 1);
    assert_eq!(parse_err(&g.build()), Error::NestingTooDeep);
    g.kvs[0].payload = nested(1000);
    assert_eq!(parse_err(&g.build()), Error::NestingTooDeep);
}

#[test]
fn bad_value_types() {
    let mut g = G::new();
    g.kvs.push(Kv {
        key: b"k".to_vec(),
        ty: 13,
        payload: vec![0; 8],
    });
    assert_eq!(parse_err(&g.build()), Error::BadValueType);
    g.kvs[0] = Kv {
        key: b"k".to_vec(),
        ty: vt::BOOL,
        payload: vec![2],
    };
    assert_eq!(parse_err(&g.build()), Error::BadValueType);
    g.kvs[0] = Kv {
        key: b"k".to_vec(),
        ty: vt::ARR,
        payload: arr_payload(vt::BOOL, 2, &[1, 9]),
    };
    assert_eq!(parse_err(&g.build()), Error::BadValueType);
    g.kvs[0] = Kv {
        key: b"k".to_vec(),
        ty: vt::ARR,
        payload: arr_payload(99, 0, &[]),
    };
    assert_eq!(parse_err(&g.build()), Error::BadValueType);
}

#[test]
fn bad_alignment() {
    let bad: [Kv; 5] = [
        kv_u32("general.alignment", 0),
        kv_u32("general.alignment", 48),
        kv_u32("general.alignment", 1 << 17),
        Kv {
            key: b"general.alignment".to_vec(),
            ty: vt::U64,
            payload: 32u64.to_le_bytes().to_vec(),
        },
        Kv {
            key: b"general.alignment".to_vec(),
            ty: vt::I32,
            payload: 32i32.to_le_bytes().to_vec(),
        },
    ];
    for kv in bad {
        let mut g = small();
        g.kvs.push(kv);
        assert_eq!(parse_err(&g.build()), Error::BadAlignment);
    }
    let mut g = small();
    g.kvs.push(kv_u32("general.alignment", 64));
    g.align = 64;
    assert_eq!(Gguf::parse(&g.build()).unwrap().alignment(), 64);
    g.kvs.push(kv_u32("general.alignment", 64));
    assert_eq!(parse_err(&g.build()), Error::DuplicateName);
}

#[test]
fn tensor_offset_outside_the_file() {
    let g = small();
    let len = g.build().len() as u64;
    let data_start = Gguf::parse(&g.build()).unwrap().data_offset() as u64;
    // Past the end, far past it, wrapping around u64, and straddling the end.
    for off in [len, 1 << 40, u64::MAX - 31, len - data_start - 32] {
        let b = g.build_with_offset(1, off);
        assert_eq!(b.len() as u64, len);
        assert_eq!(parse_err(&b), Error::TensorOutOfBounds, "offset {off}");
    }
}

#[test]
fn misaligned_offset() {
    let mut g = small();
    g.tensors[1].offset = Some(64 + 4);
    assert_eq!(parse_err(&g.build()), Error::TensorMisaligned);
    // With general.alignment = 4 the same offset is fine.
    g.kvs.push(kv_u32("general.alignment", 4));
    g.align = 4;
    Gguf::parse(&g.build()).expect("aligned to 4");
}

#[test]
fn overlapping_tensors() {
    // Second starts inside the first.
    let mut g = small();
    g.tensors[0].data = vec![0; 128];
    g.tensors[0].dims = vec![8, 4];
    g.tensors[1].offset = Some(32);
    assert_eq!(parse_err(&g.build()), Error::TensorOverlap);
    // Same offset.
    let mut g = small();
    g.tensors[1].offset = Some(0);
    assert_eq!(parse_err(&g.build()), Error::TensorOverlap);
    // Unsorted directory, the later one overlapping the earlier.
    let mut g = small();
    g.tensors[0].offset = Some(64);
    g.tensors[1].offset = Some(32);
    assert_eq!(parse_err(&g.build()), Error::TensorOverlap);
    // Unsorted but disjoint is fine.
    let mut g = small();
    g.tensors[0].offset = Some(64);
    g.tensors[1].offset = Some(0);
    let b = g.build();
    let f = Gguf::parse(&b).expect("unsorted, disjoint");
    assert_eq!(f.tensor("a").unwrap().data, &[0u8; 64][..]);
    assert_eq!(f.tensor("b").unwrap().data, &[1u8; 64][..]);
}

#[test]
#[cfg_attr(miri, ignore = "thousands of tensors")]
fn unsorted_directory_limit() {
    let mk = |n: usize| {
        let mut g = G::new();
        for i in 0..n {
            g.tensors.push(T {
                name: format!("t{i}").into_bytes(),
                dims: vec![1],
                ty: 0,
                data: vec![0; 4],
                // Reverse order: unsorted, disjoint.
                offset: Some(((n - 1 - i) * 32) as u64),
            });
        }
        g.build()
    };
    Gguf::parse(&mk(64)).expect("small unsorted directory");
    Gguf::parse(&mk(MAX_UNSORTED_TENSORS)).expect("MAX_UNSORTED_TENSORS unsorted tensors");
    assert_eq!(
        parse_err(&mk(MAX_UNSORTED_TENSORS + 1)),
        Error::TensorOverlap
    );
}

#[test]
fn unknown_tensor_type() {
    for ty in [4, 5, 16, 29, 31, 1000, u32::MAX] {
        let mut g = small();
        g.tensors[0].ty = ty;
        assert_eq!(parse_err(&g.build()), Error::UnknownTensorType, "type {ty}");
    }
}

#[test]
fn bad_dimensions() {
    let mut g = small();
    g.tensors[0].dims = vec![8, 0];
    assert_eq!(parse_err(&g.build()), Error::BadDimension);
    g.tensors[0].dims = vec![];
    assert_eq!(parse_err(&g.build()), Error::BadDimensionCount);
    g.tensors[0].dims = vec![1, 1, 1, 1, 1];
    assert_eq!(parse_err(&g.build()), Error::BadDimensionCount);
    // Element count overflows u64.
    g.tensors[0].dims = vec![1 << 32, 1 << 32];
    assert_eq!(parse_err(&g.build()), Error::BadDimension);
    g.tensors[0].dims = vec![u64::MAX, 2];
    assert_eq!(parse_err(&g.build()), Error::BadDimension);
    // Element count fits, byte size does not.
    g.tensors[0].dims = vec![1 << 62];
    assert_eq!(parse_err(&g.build()), Error::BadDimension);
    g.tensors[0].dims = vec![4, 1 << 62];
    assert_eq!(parse_err(&g.build()), Error::BadDimension);
    // Huge but representable: out of bounds.
    g.tensors[0].dims = vec![1 << 20, 1 << 20];
    assert_eq!(parse_err(&g.build()), Error::TensorOutOfBounds);
    // Row not a whole number of blocks.
    g.tensors[0].dims = vec![33, 1];
    g.tensors[0].ty = GgmlType::Q8_0 as u32;
    assert_eq!(parse_err(&g.build()), Error::BadBlockShape);
}

// ---------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------

#[test]
fn model_writer_baseline_loads() {
    Model::load(&model_a().build()).expect("re-encoded fixture loads");
}

#[test]
fn shape_mismatch() {
    // A matrix with the wrong number of rows.
    let mut g = model_a();
    let t = g.tensor_mut("blk.0.ffn_up.weight");
    t.dims = vec![64, 128];
    t.data.truncate(64 * 128 * 4);
    assert_eq!(load_err(&g.build()), Error::ShapeMismatch);
    // A matrix stored transposed.
    let mut g = model_a();
    g.tensor_mut("blk.1.ffn_down.weight").dims = vec![64, 256];
    assert_eq!(load_err(&g.build()), Error::ShapeMismatch);
    // A vector written as a 2-D tensor.
    let mut g = model_a();
    g.tensor_mut("output_norm.bias").dims = vec![32, 2];
    assert_eq!(load_err(&g.build()), Error::ShapeMismatch);
    // Extra trailing dimension.
    let mut g = model_a();
    g.tensor_mut("position_embd.weight").dims = vec![64, 16, 2];
    assert_eq!(load_err(&g.build()), Error::ShapeMismatch);
    // Hyperparameter disagreeing with the tensors.
    let mut g = model_a();
    g.kv_mut("gpt2.feed_forward_length").payload = 128u32.to_le_bytes().to_vec();
    assert_eq!(load_err(&g.build()), Error::ShapeMismatch);
    let mut g = model_a();
    g.kv_mut("gpt2.context_length").payload = 64u32.to_le_bytes().to_vec();
    assert_eq!(load_err(&g.build()), Error::ShapeMismatch);
}

#[test]
fn missing_tensor() {
    for name in [
        "blk.1.attn_qkv.bias",
        "blk.0.ffn_norm.weight",
        "position_embd.weight",
        "output_norm.bias",
        "token_embd.weight",
    ] {
        let mut g = model_a();
        g.remove_tensor(name);
        assert_eq!(load_err(&g.build()), Error::MissingTensor, "{name}");
    }
}

#[test]
fn duplicate_tensor() {
    for name in [
        "output_norm.weight",
        "blk.0.attn_output.bias",
        "token_embd.weight",
    ] {
        let mut g = model_a();
        let t = g.tensor_mut(name).clone();
        g.tensors.push(t);
        assert_eq!(load_err(&g.build()), Error::DuplicateName, "{name}");
    }
}

#[test]
fn unexpected_tensor() {
    let mut g = model_a();
    let mut t = g.tensor_mut("output_norm.bias").clone();
    for name in [
        "blk.2.attn_norm.weight",
        "blk.00.attn_norm.weight",
        "extra",
        "blk.0.nope",
    ] {
        t.name = name.as_bytes().to_vec();
        let mut h = g.clone();
        h.tensors.push(t.clone());
        assert_eq!(load_err(&h.build()), Error::UnexpectedTensor, "{name}");
    }
}

#[test]
fn unsupported_architecture() {
    for arch in ["mamba", "", "gpt2 ", "GPT2"] {
        let mut g = model_a();
        g.kv_mut("general.architecture").payload = str_bytes(arch.as_bytes());
        assert_eq!(
            load_err(&g.build()),
            Error::UnsupportedArchitecture,
            "{arch:?}"
        );
    }
}

#[test]
fn missing_metadata() {
    for key in [
        "general.architecture",
        "gpt2.context_length",
        "gpt2.embedding_length",
        "gpt2.feed_forward_length",
        "gpt2.block_count",
        "gpt2.attention.head_count",
        "gpt2.attention.layer_norm_epsilon",
    ] {
        let mut g = model_a();
        g.remove_kv(key);
        assert_eq!(load_err(&g.build()), Error::MissingMetadata, "{key}");
    }
}

#[test]
fn wrong_metadata_type() {
    let cases: [(&str, Kv); 4] = [
        ("gpt2.block_count", kv_str("gpt2.block_count", "2")),
        ("general.architecture", kv_u32("general.architecture", 2)),
        (
            "gpt2.attention.layer_norm_epsilon",
            kv_u32("gpt2.attention.layer_norm_epsilon", 0),
        ),
        (
            "gpt2.embedding_length",
            Kv {
                key: b"gpt2.embedding_length".to_vec(),
                ty: vt::I32,
                payload: (-64i32).to_le_bytes().to_vec(),
            },
        ),
    ];
    for (key, kv) in cases {
        let mut g = model_a();
        *g.kv_mut(key) = kv;
        assert_eq!(load_err(&g.build()), Error::BadMetadataType, "{key}");
    }
}

#[test]
fn duplicate_metadata_key() {
    // A second, different block count: readers that take the first and the last
    // would disagree, so the model refuses the file.
    let mut g = model_a();
    g.kvs.push(kv_u32("gpt2.block_count", 1));
    assert_eq!(load_err(&g.build()), Error::DuplicateName);
    let mut g = model_a();
    g.kvs.push(kv_str("general.architecture", "gpt2"));
    assert_eq!(load_err(&g.build()), Error::DuplicateName);
}

#[test]
fn bad_hyperparameters() {
    let cases: [(&str, Kv); 6] = [
        (
            "gpt2.attention.head_count",
            kv_u32("gpt2.attention.head_count", 3),
        ),
        (
            "gpt2.attention.head_count",
            kv_u32("gpt2.attention.head_count", 0),
        ),
        ("gpt2.block_count", kv_u32("gpt2.block_count", 0)),
        ("gpt2.block_count", kv_u32("gpt2.block_count", 257)),
        (
            "gpt2.attention.layer_norm_epsilon",
            Kv {
                key: b"gpt2.attention.layer_norm_epsilon".to_vec(),
                ty: vt::F32,
                payload: f32::NAN.to_le_bytes().to_vec(),
            },
        ),
        (
            "gpt2.attention.layer_norm_epsilon",
            Kv {
                key: b"gpt2.attention.layer_norm_epsilon".to_vec(),
                ty: vt::F32,
                payload: 0f32.to_le_bytes().to_vec(),
            },
        ),
    ];
    for (key, kv) in cases {
        let mut g = model_a();
        *g.kv_mut(key) = kv;
        assert_eq!(load_err(&g.build()), Error::BadHyperparameters, "{key}");
    }
}

#[test]
fn unsupported_tensor_type() {
    // A norm vector must be F32.
    let mut g = model_a();
    let t = g.tensor_mut("blk.0.attn_norm.weight");
    t.ty = GgmlType::F16 as u32;
    t.data.truncate(64 * 2);
    assert_eq!(load_err(&g.build()), Error::UnsupportedTensorType);
    // A matrix in a valid type the kernels do not run (Q5_0: 22 bytes / 32).
    let mut g = model_a();
    let t = g.tensor_mut("blk.0.attn_output.weight");
    t.ty = GgmlType::Q5_0 as u32;
    t.data = vec![0; 64 * 2 * 22];
    assert_eq!(load_err(&g.build()), Error::UnsupportedTensorType);
}

// ---------------------------------------------------------------------------
// Arena and parameters
// ---------------------------------------------------------------------------

fn fixture_model(bytes: &[u8]) -> Model<'_> {
    Model::load(bytes).expect("fixture loads")
}

fn params(n_ctx: usize, n_batch: usize, logits_all: bool) -> ContextParams {
    ContextParams {
        n_ctx,
        n_batch,
        logits_all,
        backend: None,
        parallel: None,
    }
}

#[test]
fn arena_one_byte_too_small_and_exact() {
    let bytes = read_fixture("gpt2/a.q8_0.gguf");
    let model = fixture_model(&bytes);
    for p in [
        params(0, 32, false),
        params(8, 3, true),
        params(1, 1, false),
    ] {
        let need = Context::arena_size(&model, &p).unwrap();
        // Every start alignment of the caller's buffer.
        let mut buf = vec![0u8; need + 64];
        let shifts = if cfg!(miri) { 0..2 } else { 0..64 };
        for shift in shifts {
            let arena = &mut buf[shift..shift + need - 1];
            match Context::new(model, &p, arena) {
                Err(Error::ArenaTooSmall { needed, available }) => {
                    assert_eq!((needed, available), (need, need - 1));
                }
                other => panic!("expected ArenaTooSmall, got {:?}", other.err()),
            }
            let arena = &mut buf[shift..shift + need];
            let mut ctx = Context::new(model, &p, arena).expect("exact size works");
            assert!(ctx.arena_used() <= need);
            // A forward pass costs about a minute per token under Miri.
            if !cfg!(miri) {
                ctx.eval(&[1, 2, 3][..p.n_batch.min(3)]).unwrap();
            }
        }
        assert!(matches!(
            Context::new(model, &p, &mut []),
            Err(Error::ArenaTooSmall { needed, available: 0 }) if needed == need
        ));
    }
}

#[test]
fn bad_context_parameters() {
    let bytes = read_fixture("gpt2/a.q4_0.gguf");
    let model = fixture_model(&bytes);
    let n_ctx = model.hparams().n_ctx;
    let mut arena = vec![0u8; 1 << 20];
    let cases = [
        (params(n_ctx + 1, 1, false), Error::BadContextLength),
        (params(usize::MAX, 1, false), Error::BadContextLength),
        (params(0, 0, false), Error::BadBatchSize),
        (params(8, 0, false), Error::BadBatchSize),
        (params(8, 9, false), Error::BadBatchSize),
        (params(0, n_ctx + 1, true), Error::BadBatchSize),
    ];
    for (p, e) in cases {
        assert_eq!(Context::arena_size(&model, &p), Err(e), "{p:?}");
        assert_eq!(Context::new(model, &p, &mut arena).err(), Some(e), "{p:?}");
    }
    for &b in Backend::ALL {
        let p = ContextParams {
            backend: Some(b),
            ..params(4, 4, false)
        };
        let r = Context::new(model, &p, &mut arena);
        if b.is_available() {
            assert_eq!(r.unwrap().backend(), b);
        } else {
            assert_eq!(r.err(), Some(Error::BackendUnavailable), "{b:?}");
        }
    }
}

// ---------------------------------------------------------------------------
// Tokens, positions, logits
// ---------------------------------------------------------------------------

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Logits of a fresh context after `tokens`.
fn fresh_logits(model: Model<'_>, p: &ContextParams, tokens: &[u32]) -> Vec<u32> {
    let mut arena = vec![0u8; Context::arena_size(&model, p).unwrap()];
    let mut ctx = Context::new(model, p, &mut arena).unwrap();
    ctx.eval(tokens).unwrap();
    bits(ctx.logits().unwrap())
}

#[test]
#[cfg_attr(miri, ignore = "forward passes: minutes under Miri")]
fn bad_token_ids_leave_the_context_usable() {
    let bytes = read_fixture("gpt2/a.f32.gguf");
    let model = fixture_model(&bytes);
    let v = model.hparams().n_vocab as u32;
    let p = params(16, 4, true);
    let mut arena = vec![0u8; Context::arena_size(&model, &p).unwrap()];
    let mut ctx = Context::new(model, &p, &mut arena).unwrap();
    ctx.eval(&[5, 6]).unwrap();
    let before = bits(ctx.logits().unwrap());
    // Bad id anywhere in the list, also beyond the first batch: nothing is evaluated.
    for bad in [&[v][..], &[1, 2, v][..], &[1, 2, 3, 4, 5, 6, u32::MAX][..]] {
        assert_eq!(ctx.eval(bad), Err(Error::TokenOutOfRange));
        assert_eq!(
            ctx.eval_all(&bad[bad.len().saturating_sub(4)..]),
            Err(Error::TokenOutOfRange)
        );
        assert_eq!(ctx.n_past(), 2);
        assert_eq!(
            bits(ctx.logits().unwrap()),
            before,
            "logits changed by a failed eval"
        );
    }
    ctx.eval(&[7]).unwrap();
    assert_eq!(
        bits(ctx.logits().unwrap()),
        fresh_logits(model, &p, &[5, 6, 7])
    );
}

#[test]
fn empty_input() {
    let bytes = read_fixture("gpt2/a.q4_0.gguf");
    let model = fixture_model(&bytes);
    let p = params(8, 4, true);
    let mut arena = vec![0u8; Context::arena_size(&model, &p).unwrap()];
    let mut ctx = Context::new(model, &p, &mut arena).unwrap();
    assert_eq!(ctx.eval(&[]), Err(Error::EmptyInput));
    assert_eq!(ctx.eval_all(&[]), Err(Error::EmptyInput));
    assert_eq!(ctx.n_past(), 0);
}

#[test]
#[cfg_attr(miri, ignore = "forward passes: minutes under Miri")]
fn context_full_leaves_the_context_usable() {
    let bytes = read_fixture("gpt2/a.f32.gguf");
    let model = fixture_model(&bytes);
    let p = params(6, 2, false);
    let mut arena = vec![0u8; Context::arena_size(&model, &p).unwrap()];
    let mut ctx = Context::new(model, &p, &mut arena).unwrap();
    assert_eq!(ctx.eval(&[1; 7]), Err(Error::ContextFull));
    assert_eq!(ctx.n_past(), 0);
    assert_eq!(ctx.logits(), Err(Error::NoLogits));
    ctx.eval(&[1, 2, 3, 4, 5]).unwrap();
    let before = bits(ctx.logits().unwrap());
    assert_eq!(ctx.eval(&[6, 7]), Err(Error::ContextFull));
    assert_eq!(ctx.n_past(), 5);
    assert_eq!(bits(ctx.logits().unwrap()), before);
    ctx.eval(&[6]).unwrap();
    assert_eq!(ctx.eval(&[7]), Err(Error::ContextFull));
    assert_eq!(
        bits(ctx.logits().unwrap()),
        fresh_logits(model, &p, &[1, 2, 3, 4, 5, 6])
    );
    // Rewinding makes room again.
    ctx.rewind(3).unwrap();
    ctx.eval(&[9, 9]).unwrap();
    assert_eq!(
        bits(ctx.logits().unwrap()),
        fresh_logits(model, &p, &[1, 2, 3, 9, 9])
    );
}

#[test]
#[cfg_attr(miri, ignore = "forward passes: minutes under Miri")]
fn rewind_past_n_past() {
    let bytes = read_fixture("gpt2/a.q4_0.gguf");
    let model = fixture_model(&bytes);
    let p = params(8, 4, false);
    let mut arena = vec![0u8; Context::arena_size(&model, &p).unwrap()];
    let mut ctx = Context::new(model, &p, &mut arena).unwrap();
    assert_eq!(ctx.rewind(1), Err(Error::BadPosition));
    ctx.rewind(0).unwrap();
    ctx.eval(&[1, 2, 3]).unwrap();
    let before = bits(ctx.logits().unwrap());
    for pos in [4, 9, usize::MAX] {
        assert_eq!(ctx.rewind(pos), Err(Error::BadPosition));
        assert_eq!(ctx.n_past(), 3);
    }
    // Rewinding to n_past keeps the logits; below it drops them.
    ctx.rewind(3).unwrap();
    assert_eq!(bits(ctx.logits().unwrap()), before);
    ctx.rewind(2).unwrap();
    assert_eq!(ctx.logits(), Err(Error::NoLogits));
    assert_eq!(ctx.all_logits(), Err(Error::NoLogits));
    ctx.eval(&[3]).unwrap();
    assert_eq!(bits(ctx.logits().unwrap()), before);
}

/// Also the one forward pass that runs under Miri (tests/scripts/miri.sh): two
/// tokens of the Q4_0 model `a` (activation quantization, the Q4_0 kernel,
/// dequantized embeddings, all arena-carved buffers); the f32 path costs
/// several times more Miri time per token, and every kernel is covered on its
/// own by `kernels_read_unaligned_rows`.
#[test]
fn logits_before_eval() {
    let bytes = read_fixture("gpt2/a.q4_0.gguf");
    let model = fixture_model(&bytes);
    let p = params(4, 2, true);
    let mut arena = vec![0u8; Context::arena_size(&model, &p).unwrap()];
    let mut ctx = Context::new(model, &p, &mut arena).unwrap();
    assert_eq!(ctx.logits(), Err(Error::NoLogits));
    assert_eq!(ctx.all_logits(), Err(Error::NoLogits));
    ctx.eval_all(&[1, 2]).unwrap();
    let v = model.hparams().n_vocab;
    assert_eq!(ctx.all_logits().unwrap().len(), 2 * v);
    assert_eq!(ctx.logits().unwrap(), &ctx.all_logits().unwrap()[v..]);
    assert!(ctx.logits().unwrap().iter().all(|x| x.is_finite()));
    ctx.reset();
    assert_eq!(ctx.logits(), Err(Error::NoLogits));
    assert_eq!(ctx.all_logits(), Err(Error::NoLogits));
}

#[test]
#[cfg_attr(miri, ignore = "forward passes: minutes under Miri")]
fn eval_all_more_than_the_batch() {
    let bytes = read_fixture("gpt2/a.q4_0.gguf");
    let model = fixture_model(&bytes);
    // logits_all with n_batch 3: 4 tokens are too many.
    let p = params(8, 3, true);
    let mut arena = vec![0u8; Context::arena_size(&model, &p).unwrap()];
    let mut ctx = Context::new(model, &p, &mut arena).unwrap();
    assert_eq!(ctx.eval_all(&[1, 2, 3, 4]), Err(Error::BatchTooLarge));
    assert_eq!(ctx.n_past(), 0);
    ctx.eval_all(&[1, 2, 3]).unwrap();
    assert_eq!(ctx.all_logits().unwrap().len(), 3 * model.hparams().n_vocab);
    // Without logits_all only one row is kept: two tokens are too many.
    let p = params(8, 3, false);
    let mut arena = vec![0u8; Context::arena_size(&model, &p).unwrap()];
    let mut ctx = Context::new(model, &p, &mut arena).unwrap();
    assert_eq!(ctx.eval_all(&[1, 2]), Err(Error::BatchTooLarge));
    ctx.eval_all(&[1]).unwrap();
}

// ---------------------------------------------------------------------------
// Kernels at their safe boundary
// ---------------------------------------------------------------------------

#[test]
fn matmul_rejects_mismatched_lengths() {
    let k = Kernels::new(Backend::Scalar).unwrap();
    let mut q0 = vec![BlockQ8_0::default(); 4];
    let mut q1 = vec![BlockQ8_1::default(); 4];
    let w_bytes = vec![0u8; 2 * 64 * 4];
    let w = Matrix {
        ty: GgmlType::F32,
        rows: 2,
        cols: 64,
        data: &w_bytes,
    };
    let x = vec![1.0f32; 64];
    let mut out = vec![0.0f32; 2];
    let mut s = QuantScratch {
        q8_0: &mut q0,
        q8_1: &mut q1,
    };
    matmul(&k, &w, &x, 1, &mut out, &mut s).unwrap();
    assert_eq!(
        matmul(&k, &w, &x[..63], 1, &mut out, &mut s),
        Err(Error::ShapeMismatch)
    );
    assert_eq!(
        matmul(&k, &w, &x, 1, &mut out[..1], &mut s),
        Err(Error::ShapeMismatch)
    );
    assert_eq!(
        matmul(&k, &w, &x, 2, &mut out, &mut s),
        Err(Error::ShapeMismatch)
    );
    let short = Matrix {
        data: &w_bytes[..w_bytes.len() - 1],
        ..w
    };
    assert_eq!(
        matmul(&k, &short, &x, 1, &mut out, &mut s),
        Err(Error::ShapeMismatch)
    );
    // Quantized weights need scratch for n rows of blocks.
    let wq = vec![0u8; 2 * 2 * 34];
    let m = Matrix {
        ty: GgmlType::Q8_0,
        rows: 2,
        cols: 64,
        data: &wq,
    };
    let x3 = vec![1.0f32; 3 * 64];
    let mut out3 = vec![0.0f32; 6];
    assert_eq!(
        matmul(&k, &m, &x3, 3, &mut out3, &mut s),
        Err(Error::ShapeMismatch)
    );
    let bad_cols = Matrix {
        ty: GgmlType::Q8_0,
        rows: 2,
        cols: 33,
        data: &wq,
    };
    assert_eq!(
        matmul(&k, &bad_cols, &x, 1, &mut out, &mut s),
        Err(Error::BadBlockShape)
    );
    let q5 = Matrix {
        ty: GgmlType::Q5_0,
        rows: 1,
        cols: 32,
        data: &[0; 22],
    };
    assert_eq!(
        matmul(&k, &q5, &x[..32], 1, &mut out[..1], &mut s),
        Err(Error::UnsupportedTensorType)
    );
}

#[test]
fn row_conversions_reject_mismatched_lengths() {
    let mut y = vec![0.0f32; 32];
    assert_eq!(
        dequantize_row(GgmlType::Q8_0, &[0; 33], &mut y),
        Err(Error::BadBlockShape)
    );
    assert_eq!(
        dequantize_row(GgmlType::F32, &[0; 4], &mut y),
        Err(Error::BadBlockShape)
    );
    assert_eq!(
        dequantize_row(GgmlType::Q4_0, &[0; 18], &mut y[..31]),
        Err(Error::BadBlockShape)
    );
    assert_eq!(
        dequantize_row(GgmlType::Q4_K, &[0; 144], &mut vec![0.0; 256]),
        Err(Error::UnsupportedTensorType)
    );
    let mut out = vec![0u8; 34];
    assert_eq!(
        quantize_row(GgmlType::Q8_0, &y[..31], &mut out),
        Err(Error::BadBlockShape)
    );
    assert_eq!(
        quantize_row(GgmlType::Q8_0, &y, &mut out[..33]),
        Err(Error::BadBlockShape)
    );
    quantize_row(GgmlType::Q8_0, &y, &mut out).unwrap();
}

/// Weight rows are raw file bytes at any alignment: every scalar kernel gives
/// the same bits for a row at offsets 0..8 (Miri checks the reads are sound).
#[test]
fn kernels_read_unaligned_rows() {
    let k = Kernels::new(Backend::Scalar).unwrap();
    let x: Vec<f32> = (0..64)
        .map(|i| ((i * 7) % 13) as f32 * 0.25 - 1.5)
        .collect();
    let mut xq0 = vec![BlockQ8_0::default(); 2];
    let mut xq1 = vec![BlockQ8_1::default(); 2];
    (k.quantize_row_q8_0)(&x, &mut xq0);
    (k.quantize_row_q8_1)(&x, &mut xq1);
    for ty in [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q8_0,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
    ] {
        let mut row = vec![0u8; ty.row_bytes(64).unwrap()];
        let w: Vec<f32> = (0..64).map(|i| ((i * 5) % 11) as f32 * 0.1 - 0.5).collect();
        quantize_row(ty, &w, &mut row).unwrap();
        let dot = |r: &[u8]| match ty {
            GgmlType::F32 => (k.vec_dot_f32_f32)(r, &x),
            GgmlType::F16 => (k.vec_dot_f16_f32)(r, &x),
            GgmlType::Q8_0 => (k.vec_dot_q8_0_q8_0)(r, &xq0),
            GgmlType::Q4_0 => (k.vec_dot_q4_0_q8_0)(r, &xq0),
            _ => (k.vec_dot_q4_1_q8_1)(r, &xq1),
        };
        let want = dot(&row).to_bits();
        let mut buf = vec![0u8; row.len() + 8];
        for off in 0..8 {
            buf[off..off + row.len()].copy_from_slice(&row);
            assert_eq!(
                dot(&buf[off..off + row.len()]).to_bits(),
                want,
                "{ty:?} at +{off}"
            );
        }
        // Short rows only shorten the loop.
        let _ = dot(&row[..row.len() - 1]);
        let _ = dot(&[]);
    }
}
