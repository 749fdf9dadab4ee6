//! NT-Xent against PyTorch (`fixtures/nt_xent.json`, made by `make_fixtures.py` (beside it)
//! with `F.normalize` + `F.cross_entropy` over the masked similarity matrix, in f64),
//! a naive f64 loop written from SimCLR's Algorithm 1, the closed form `ln(2N - 1)`, and finite
//! differences; chunked and unchunked paths, with and without extra negatives.

use burn::tensor::{Device, Tensor, TensorData};
use repr_objectives::{NtXentLoss, NtXentLossConfig};
use repr_testing::{Array, assert_close, read_fixture};
use serde::Deserialize;

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    n: usize,
    d: usize,
    temperature: f64,
    z1: Array,
    z2: Array,
    loss: f64,
    per_anchor_loss: Array,
    grad_z1: Array,
    grad_z2: Array,
    closed_form_loss: Option<f64>,
}

/// SimCLR's Algorithm 1 as plain f64 loops over rows `[z1; z2]` (row-major `[N, D]` each), plus
/// `extra` negatives (`[M, D]`) that appear in every denominator. Returns `(mean, per anchor)`.
fn naive_nt_xent(z1: &[f64], z2: &[f64], extra: &[f64], d: usize, t: f64) -> (f64, Vec<f64>) {
    let rows: Vec<&[f64]> = z1.chunks(d).chain(z2.chunks(d)).collect();
    let negatives: Vec<&[f64]> = extra.chunks(d).collect();
    let m = rows.len();
    let n = m / 2;
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
    let sim = |a: &[f64], b: &[f64]| {
        a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / (norm(a) * norm(b)) / t
    };
    let mut per_anchor = Vec::with_capacity(m);
    for k in 0..m {
        let positive = sim(rows[k], rows[(k + n) % m]);
        let mut denominator = 0.0;
        for (j, row) in rows.iter().enumerate() {
            if j != k {
                denominator += sim(rows[k], row).exp();
            }
        }
        for neg in &negatives {
            denominator += sim(rows[k], neg).exp();
        }
        per_anchor.push(-(positive.exp() / denominator).ln());
    }
    (per_anchor.iter().sum::<f64>() / m as f64, per_anchor)
}

fn widen(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| f64::from(x)).collect()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

fn tensor(data: Vec<f32>, shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(data, shape), device)
}

/// Deterministic pseudo-normal values (sum of uniforms from a 64-bit LCG), so every backend sees
/// the same inputs.
fn pseudo_normal(len: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
    let mut uniform = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..len)
        .map(|_| ((0..4).map(|_| uniform()).sum::<f64>() - 2.0) as f32 * 1.7)
        .collect()
}

/// Loss value, per-anchor losses and both gradients of one call on `device` (made autodiff).
struct Run {
    loss: Vec<f32>,
    per_anchor: Vec<f32>,
    grad_z1: Vec<f32>,
    grad_z2: Vec<f32>,
    /// Empty without extra negatives.
    grad_extra: Vec<f32>,
}

fn run(
    loss_fn: &NtXentLoss,
    z1: &[f32],
    z2: &[f32],
    extra: Option<&[f32]>,
    [n, d]: [usize; 2],
    device: &Device,
) -> Run {
    let device = device.clone().autodiff();
    let a = tensor(z1.to_vec(), [n, d], &device).require_grad();
    let b = tensor(z2.to_vec(), [n, d], &device).require_grad();
    let extra = extra.map(|e| tensor(e.to_vec(), [e.len() / d, d], &device).require_grad());
    let per_anchor =
        loss_fn.forward_with_negatives_no_reduction(a.clone(), b.clone(), extra.clone());
    let loss = loss_fn.forward_with_negatives(a.clone(), b.clone(), extra.clone());
    let grads = loss.backward();
    Run {
        loss: values(loss),
        per_anchor: values(per_anchor),
        grad_z1: values(a.grad(&grads).expect("z1 has a gradient")),
        grad_z2: values(b.grad(&grads).expect("z2 has a gradient")),
        grad_extra: extra.map_or(Vec::new(), |e| values(e.grad(&grads).expect("a gradient"))),
    }
}

fn matches_pytorch(device: &Device) {
    let fixture: Fixture = read_fixture("nt_xent.json");
    assert_eq!(fixture.cases.len(), 5);
    for case in &fixture.cases {
        let (n, d) = (case.n, case.d);
        assert_eq!(case.z1.dims(), [n, d]);
        // The definition in f64 on the exact f32 inputs reproduces PyTorch's f64 values.
        let (naive, naive_per_anchor) = naive_nt_xent(
            &widen(&case.z1.f32()),
            &widen(&case.z2.f32()),
            &[],
            d,
            case.temperature,
        );
        assert!(
            (naive - case.loss).abs() < 1e-10,
            "{}: naive {naive}",
            case.name
        );
        for (a, e) in naive_per_anchor.iter().zip(&case.per_anchor_loss.data) {
            assert!((a - e).abs() < 1e-10, "{}", case.name);
        }
        if let Some(closed) = case.closed_form_loss {
            assert!((closed - ((2 * n - 1) as f64).ln()).abs() < 1e-12);
        }
        // Unchunked, and chunked with chunks that do and do not divide 2N.
        for chunk_size in [None, Some(1), Some(3), Some(n)] {
            let loss_fn = NtXentLossConfig::new()
                .with_temperature(case.temperature)
                .with_chunk_size(chunk_size)
                .init()
                .unwrap();
            let out = run(
                &loss_fn,
                &case.z1.f32(),
                &case.z2.f32(),
                None,
                [n, d],
                device,
            );
            let what = format!("{} chunk {chunk_size:?}", case.name);
            assert_close(&out.loss, &[case.loss], 1e-5, 1e-5, &format!("{what} loss"));
            assert_close(
                &out.per_anchor,
                &case.per_anchor_loss.data,
                1e-5,
                1e-5,
                &format!("{what} per anchor"),
            );
            assert_close(
                &out.grad_z1,
                &case.grad_z1.data,
                1e-6,
                1e-4,
                &format!("{what} grad z1"),
            );
            assert_close(
                &out.grad_z2,
                &case.grad_z2.data,
                1e-6,
                1e-4,
                &format!("{what} grad z2"),
            );
        }
    }
}

fn closed_form_identical_embeddings(device: &Device) {
    // All 2N rows equal: every similarity is 1/τ, so l_k = -1/τ + ln((2N - 1) e^{1/τ}) = ln(2N - 1),
    // for any τ (τ = 0.01 puts e^{100} in the sum: the row maximum must be subtracted).
    for (n, t) in [(1, 0.5), (3, 1.0), (8, 0.1), (16, 0.01)] {
        let row = [0.3f32, -1.2, 2.0, 0.7];
        let z: Vec<f32> = row.iter().copied().cycle().take(n * 4).collect();
        for chunk_size in [None, Some(5)] {
            let loss_fn = NtXentLossConfig::new()
                .with_temperature(t)
                .with_chunk_size(chunk_size)
                .init()
                .unwrap();
            let out = run(&loss_fn, &z, &z, None, [n, 4], device);
            let expected = ((2 * n - 1) as f64).ln();
            let what = format!("N={n} t={t} chunk {chunk_size:?}");
            assert_close(&out.loss, &[expected], 1e-5, 1e-5, &what);
            assert_close(&out.per_anchor, &vec![expected; 2 * n], 1e-5, 1e-5, &what);
            // The loss is flat here: every gradient is 0 (up to rounding of 1/τ-sized terms).
            let tol = 1e-5 / t;
            assert_close(
                &out.grad_z1,
                &vec![0.0; n * 4],
                tol,
                0.0,
                &format!("{what} grad"),
            );
        }
    }
}

fn matches_naive_with_extra_negatives_and_chunks(device: &Device) {
    // N = 13 anchors per view, 5 extra negatives, τ = 0.2; chunks of 1, 4, 26 and 100 rows.
    let (n, d, m, t) = (13, 6, 5, 0.2);
    let z1 = pseudo_normal(n * d, 1);
    let noise = pseudo_normal(n * d, 2);
    let z2: Vec<f32> = z1.iter().zip(&noise).map(|(a, b)| a + 0.6 * b).collect();
    let extra = pseudo_normal(m * d, 3);
    for negatives in [None, Some(extra.as_slice())] {
        let (naive, naive_per_anchor) = naive_nt_xent(
            &widen(&z1),
            &widen(&z2),
            &widen(negatives.unwrap_or(&[])),
            d,
            t,
        );
        let reference = run(
            &NtXentLossConfig::new().with_temperature(t).init().unwrap(),
            &z1,
            &z2,
            negatives,
            [n, d],
            device,
        );
        let what = format!("extra negatives: {}", negatives.is_some());
        assert_close(&reference.loss, &[naive], 1e-5, 1e-5, &what);
        assert_close(&reference.per_anchor, &naive_per_anchor, 1e-5, 1e-5, &what);
        for chunk in [1, 4, 2 * n, 100] {
            let chunked = run(
                &NtXentLossConfig::new()
                    .with_temperature(t)
                    .with_chunk_size(Some(chunk))
                    .init()
                    .unwrap(),
                &z1,
                &z2,
                negatives,
                [n, d],
                device,
            );
            let what = format!("{what}, chunk {chunk}");
            let widen32 = |v: &[f32]| widen(v);
            assert_close(&chunked.loss, &widen32(&reference.loss), 1e-6, 1e-6, &what);
            assert_close(
                &chunked.per_anchor,
                &widen32(&reference.per_anchor),
                1e-6,
                1e-6,
                &what,
            );
            assert_close(
                &chunked.grad_z1,
                &widen32(&reference.grad_z1),
                1e-7,
                1e-5,
                &what,
            );
            assert_close(
                &chunked.grad_z2,
                &widen32(&reference.grad_z2),
                1e-7,
                1e-5,
                &what,
            );
            assert_close(
                &chunked.grad_extra,
                &widen32(&reference.grad_extra),
                1e-7,
                1e-5,
                &what,
            );
        }
    }
}

fn gradient_matches_finite_differences(device: &Device) {
    // Central differences of the naive f64 definition (step 1e-6) against the gradient of the f32
    // implementation with respect to z1, z2 and 3 extra negatives: autodiff (unchunked) and the
    // explicit block-by-block gradient (chunks of 3 rows).
    let (n, d, m, t) = (4, 5, 3, 0.3);
    let inputs = [
        pseudo_normal(n * d, 11),
        pseudo_normal(n * d, 12),
        pseudo_normal(m * d, 13),
    ];
    let wide: Vec<Vec<f64>> = inputs.iter().map(|v| widen(v)).collect();
    let h = 1e-6;
    for chunk_size in [None, Some(3)] {
        let loss_fn = NtXentLossConfig::new()
            .with_temperature(t)
            .with_chunk_size(chunk_size)
            .init()
            .unwrap();
        let out = run(
            &loss_fn,
            &inputs[0],
            &inputs[1],
            Some(&inputs[2]),
            [n, d],
            device,
        );
        for (which, analytic) in [out.grad_z1, out.grad_z2, out.grad_extra]
            .iter()
            .enumerate()
        {
            let numeric: Vec<f64> = (0..wide[which].len())
                .map(|i| {
                    let f = |delta: f64| {
                        let mut x = wide.clone();
                        x[which][i] += delta;
                        naive_nt_xent(&x[0], &x[1], &x[2], d, t).0
                    };
                    (f(h) - f(-h)) / (2.0 * h)
                })
                .collect();
            let what = format!("input {which}, chunk {chunk_size:?}");
            assert_close(analytic, &numeric, 1e-6, 1e-4, &what);
        }
    }
}

fn small_temperature_stays_finite(device: &Device) {
    // τ = 0.01: similarities reach ±100, e^{200} overflows float32 without the row maximum.
    let (n, d, t) = (6, 4, 0.01);
    let z1 = pseudo_normal(n * d, 21);
    let z2 = pseudo_normal(n * d, 22);
    let (naive, _) = naive_nt_xent(&widen(&z1), &widen(&z2), &[], d, t);
    let mut reference: Option<Run> = None;
    for chunk_size in [None, Some(4)] {
        let loss_fn = NtXentLossConfig::new()
            .with_temperature(t)
            .with_chunk_size(chunk_size)
            .init()
            .unwrap();
        let out = run(&loss_fn, &z1, &z2, None, [n, d], device);
        assert_close(&out.loss, &[naive], 1e-4, 1e-5, "loss");
        assert!(
            out.grad_z1
                .iter()
                .chain(&out.grad_z2)
                .all(|g| g.is_finite())
        );
        if let Some(r) = &reference {
            assert_close(&out.grad_z1, &widen(&r.grad_z1), 1e-5, 1e-4, "chunked grad");
        }
        reference = Some(out);
    }
}

repr_testing::backend_tests!(
    matches_pytorch,
    closed_form_identical_embeddings,
    matches_naive_with_extra_negatives_and_chunks,
    gradient_matches_finite_differences,
    small_temperature_stays_finite
);

#[test]
fn shape_mismatch_is_a_clear_panic() {
    let device = repr_testing::flex();
    let loss_fn = NtXentLossConfig::new().init().unwrap();
    let result = std::panic::catch_unwind(|| {
        loss_fn.forward(
            Tensor::<2>::zeros([2, 3], &device),
            Tensor::<2>::zeros([3, 3], &device),
        )
    });
    let message = *result.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("z1 is [2, 3]"), "{message}");
}
