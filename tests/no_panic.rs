//! Edge cases found while making the core's no-panic lints crate-wide (issue 7):
//! each used to panic (a zero chunk size or a division by zero), none of them
//! is reachable through a validated model, all of them through the public API.

use embergpt::kernels::{matmul, scalar, Kernels, Matrix, QuantScratch};
use embergpt::quant::{BlockQ8_0, BlockQ8_1};
use embergpt::{Backend, Error, GgmlType};

/// A batched dot over zero blocks is the empty sum, 0.0, like the single-row dot.
#[test]
fn scalar_gemm_over_zero_blocks_is_zero() {
    assert_eq!(scalar::vec_dot_q8_0_q8_0(&[], &[]), 0.0);
    let gemms: [fn(&mut [f32]); 3] = [
        |o| scalar::gemm_q8_0_q8_0(&[], 2, &[], 3, o),
        |o| scalar::gemm_q4_0_q8_0(&[], 2, &[], 3, o),
        |o| scalar::gemm_q4_1_q8_1(&[], 2, &[], 3, o),
    ];
    for g in gemms {
        let mut out = [1.0f32; 6];
        g(&mut out);
        assert_eq!(out, [0.0; 6]);
    }
}

/// A zero-width quantized matrix through `matmul` on every backend this CPU has.
#[test]
fn matmul_of_a_zero_width_matrix_does_not_panic() {
    for &b in Backend::ALL.iter().filter(|b| b.is_available()) {
        let k = Kernels::new(b).unwrap();
        for ty in [
            GgmlType::Q8_0,
            GgmlType::Q4_0,
            GgmlType::Q4_1,
            GgmlType::F32,
        ] {
            let w = Matrix {
                ty,
                rows: 5,
                cols: 0,
                data: &[],
            };
            let (mut q0, mut q1) = ([BlockQ8_0::default(); 1], [BlockQ8_1::default(); 1]);
            let mut scratch = QuantScratch {
                q8_0: &mut q0,
                q8_1: &mut q1,
            };
            let mut out = [1.0f32; 10];
            matmul(&k, &w, &[], 2, &mut out, &mut scratch).unwrap();
            assert_eq!(out, [0.0; 10], "{b:?} {ty:?}");
        }
    }
}

/// The GGUF writer rejects a zero-width tensor instead of dividing by zero.
#[cfg(feature = "std")]
#[test]
fn writer_rejects_zero_columns() {
    let mut g = embergpt::gguf_write::GgufWriter::new();
    let r = g.tensor_f32("t", GgmlType::F32, &[0, 4], &[]);
    assert_eq!(r.err(), Some(Error::BadDimension));
}
