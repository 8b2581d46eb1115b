//! Fuzz the zero-copy GGUF reader: any bytes either fail with an `Error` value
//! or parse into a file whose every accessor is consistent with the parse.
//!
//! Properties checked on success:
//! - the metadata iterator yields exactly `n_metadata()` entries and `get` finds
//!   each key again (first occurrence wins), every value (arrays element by
//!   element, nested arrays too) decodes, and `ArrayView::get(i)` agrees with
//!   the iterator;
//! - the tensor iterator yields exactly `n_tensors()` entries; each
//!   `TensorInfo::data` lies inside the input slice at
//!   `data_offset() + offset` and is exactly `row_bytes * n_rows` long; offsets
//!   are aligned; no two tensors share bytes; `tensor(name)` finds a tensor of
//!   that name;
//! - `Model::load` on the same bytes does not panic.
#![no_main]

use embergpt::gguf::{ArrayView, Gguf, Value};
use libfuzzer_sys::fuzz_target;

fn walk_array(a: &ArrayView<'_>, depth: u32) {
    assert!(depth <= embergpt::gguf::MAX_ARRAY_DEPTH);
    let mut n = 0usize;
    for (i, v) in a.iter().enumerate() {
        if i < 64 {
            assert_eq!(a.get(i), Some(v), "ArrayView::get({i}) disagrees with iter");
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

fuzz_target!(|data: &[u8]| {
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
});
