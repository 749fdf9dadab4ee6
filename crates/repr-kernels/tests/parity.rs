//! Our flex kernels against Burn's reference ops: forward outputs and every gradient, on each
//! preset's convolution shapes and on random shapes (a seeded property test), within 1e-4 of the
//! reference's largest magnitude.
//!
//! The reference is Burn's `conv2d` / `batch_norm_train` on ndarray (an independent backend)
//! and on flex (Burn's flex kernels, which `burn::tensor::module` calls whatever the switch
//! says). The tested side is `repr_kernels::ops` on the backend under test: on flex that is our
//! kernels; on ndarray (and wgpu) it is Burn's ops, which checks the routing.

use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TOL: f32 = 1e-4;

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data")
}

fn values_1d(t: Tensor<1>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data")
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    let worst = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= TOL * scale,
        "{what}: max |diff| {worst:e} > {TOL:e} × max |ref| {scale:e}"
    );
}

/// One convolution case: shapes and options.
#[derive(Debug, Clone)]
struct Case {
    x: [usize; 4],
    c_out: usize,
    k: [usize; 2],
    stride: [usize; 2],
    padding: [(usize, usize); 2],
    dilation: [usize; 2],
    bias: bool,
}

impl Case {
    fn square(
        x: [usize; 4],
        c_out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        bias: bool,
    ) -> Self {
        Self {
            x,
            c_out,
            k: [k, k],
            stride: [stride; 2],
            padding: [(pad, pad); 2],
            dilation: [1, 1],
            bias,
        }
    }

    fn options(&self) -> ConvOptions<2> {
        ConvOptions::new_with_padding(self.stride, self.padding, self.dilation, 1)
    }
}

/// Output and the gradients of `sum(conv(x) · r)` for a fixed random `r`: (y, dx, dw, db).
fn run(case: &Case, data: &[TensorData; 4], device: &Device, ours: bool) -> [Vec<f32>; 4] {
    let device = device.clone().autodiff();
    let x = Tensor::<4>::from_data(data[0].clone(), &device).require_grad();
    let w = Tensor::<4>::from_data(data[1].clone(), &device).require_grad();
    let b = Tensor::<1>::from_data(data[2].clone(), &device).require_grad();
    let bias = case.bias.then(|| b.clone());
    let y = if ours {
        repr_kernels::ops::conv2d(x.clone(), w.clone(), bias, case.options())
    } else {
        burn::tensor::module::conv2d(x.clone(), w.clone(), bias, case.options())
    };
    let r = Tensor::<4>::from_data(data[3].clone(), &device);
    let grads = (y.clone() * r).sum().backward();
    let db = if case.bias {
        values_1d(b.grad(&grads).expect("db"))
    } else {
        vec![]
    };
    [
        values(y),
        values(x.grad(&grads).expect("dx")),
        values(w.grad(&grads).expect("dw")),
        db,
    ]
}

fn check_case(case: &Case, device: &Device, seed: u64) {
    let reference = repr_testing::ndarray();
    let [b, c, h, w] = case.x;
    let out_size = |i: usize, size: usize| {
        (size + case.padding[i].0 + case.padding[i].1 - case.dilation[i] * (case.k[i] - 1) - 1)
            / case.stride[i]
            + 1
    };
    let out = [out_size(0, h), out_size(1, w)];
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut rand = |n: usize| {
        (0..n)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect::<Vec<_>>()
    };
    let data = [
        TensorData::new(rand(b * c * h * w), case.x.to_vec()),
        TensorData::new(
            rand(case.c_out * c * case.k[0] * case.k[1]),
            vec![case.c_out, c, case.k[0], case.k[1]],
        ),
        TensorData::new(rand(case.c_out), vec![case.c_out]),
        TensorData::new(
            rand(b * case.c_out * out[0] * out[1]),
            vec![b, case.c_out, out[0], out[1]],
        ),
    ];
    let want = run(case, &data, &reference, false);
    let got = run(case, &data, device, true);
    for (name, (g, w)) in ["output", "dx", "dweight", "dbias"]
        .iter()
        .zip(got.iter().zip(&want))
    {
        assert_close(&format!("{name} of {case:?}"), g, w);
    }
    // And against Burn's own kernels on the same backend.
    let burn_same = run(case, &data, device, false);
    for (name, (g, w)) in ["output", "dx", "dweight", "dbias"]
        .iter()
        .zip(got.iter().zip(&burn_same))
    {
        assert_close(
            &format!("{name} (vs Burn on the same backend) of {case:?}"),
            g,
            w,
        );
    }
}

/// Every convolution of the presets, at reduced batch and channel counts where the shape
/// class (kernel, stride, padding, feature-map size) is what matters.
fn preset_convolutions(device: &Device) {
    let cases = [
        // ResNet CIFAR stem: 3×3, stride 1, pad 1, 3 → 64 at 32×32 (MNIST: 1 channel, 28×28).
        Case::square([4, 3, 32, 32], 16, 3, 1, 1, false),
        Case::square([4, 1, 28, 28], 16, 3, 1, 1, false),
        // ResNet basic blocks: 3×3 stride 1 and 2, 1×1 stride 2 shortcut, down to 4×4 maps.
        Case::square([8, 16, 16, 16], 16, 3, 1, 1, false),
        Case::square([8, 16, 16, 16], 32, 3, 2, 1, false),
        Case::square([8, 16, 16, 16], 32, 1, 2, 0, false),
        Case::square([16, 32, 4, 4], 32, 3, 1, 1, false),
        // Bottleneck 1×1 stride 1 (ResNet-50).
        Case::square([4, 32, 8, 8], 64, 1, 1, 0, false),
        // ImageNet stem: 7×7, stride 2, pad 3.
        Case::square([2, 3, 40, 40], 8, 7, 2, 3, false),
        // ViT patch embedding: p×p, stride p, with bias.
        Case::square([4, 3, 32, 32], 24, 4, 4, 0, true),
    ];
    for (i, case) in cases.iter().enumerate() {
        check_case(case, device, 100 + i as u64);
    }
}

/// Random shapes: kernels 1–5 (and 7), strides 1–3, asymmetric padding, dilation, bias or not.
fn random_convolutions(device: &Device) {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut done = 0;
    while done < 40 {
        let k = [1, 2, 3, 5, 7][rng.random_range(0..5)];
        let case = Case {
            x: [
                rng.random_range(1..5),
                rng.random_range(1..7),
                rng.random_range(1..14),
                rng.random_range(1..14),
            ],
            c_out: rng.random_range(1..9),
            k: [k, [1, 3, k][rng.random_range(0..3)]],
            stride: [rng.random_range(1..4), rng.random_range(1..4)],
            padding: [
                (rng.random_range(0..4), rng.random_range(0..4)),
                (rng.random_range(0..4), rng.random_range(0..4)),
            ],
            dilation: [rng.random_range(1..3), rng.random_range(1..3)],
            bias: rng.random_bool(0.5),
        };
        let fits =
            |size: usize, (a, b): (usize, usize), k: usize, d: usize| size + a + b > d * (k - 1);
        if !(fits(case.x[2], case.padding[0], case.k[0], case.dilation[0])
            && fits(case.x[3], case.padding[1], case.k[1], case.dilation[1]))
        {
            continue;
        }
        check_case(&case, device, 1000 + done);
        done += 1;
    }
}

/// Training-mode batch norm (with and without the fused ReLU): output, batch statistics and the
/// gradients of x, gamma and beta, against Burn's `batch_norm_train` (+ `relu`) on ndarray.
fn batch_norm_train_matches_burn(device: &Device) {
    for (i, (dims, relu)) in [
        ([8usize, 16, 8, 8], false),
        ([8, 16, 8, 8], true),
        ([5, 3, 7, 2], true),
        ([64, 32, 1, 1], false),
    ]
    .into_iter()
    .enumerate()
    {
        let seed = 50 + i as u64;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n: usize = dims.iter().product();
        // An offset mean so that the centring matters.
        let x: Vec<f32> = (0..n)
            .map(|_| rng.random_range(-1.0f32..1.0) * 2.0 + 0.7)
            .collect();
        let g: Vec<f32> = (0..dims[1])
            .map(|_| rng.random_range(0.5f32..1.5))
            .collect();
        let b: Vec<f32> = (0..dims[1])
            .map(|_| rng.random_range(-0.5f32..0.5))
            .collect();
        let r: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let run = |device: &Device, ours: bool| {
            let device = device.clone().autodiff();
            let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), dims.to_vec()), &device)
                .require_grad();
            let gt = Tensor::<1>::from_data(TensorData::new(g.clone(), vec![dims[1]]), &device)
                .require_grad();
            let bt = Tensor::<1>::from_data(TensorData::new(b.clone(), vec![dims[1]]), &device)
                .require_grad();
            let (y, mean, var) = if ours {
                let o = repr_kernels::ops::batch_norm_train(
                    xt.clone(),
                    gt.clone(),
                    bt.clone(),
                    1e-5,
                    relu,
                );
                (o.output, o.mean, o.variance)
            } else {
                let o = burn::tensor::module::batch_norm_train(
                    xt.clone(),
                    gt.clone(),
                    bt.clone(),
                    1e-5,
                );
                let y = if relu {
                    burn::tensor::activation::relu(o.output)
                } else {
                    o.output
                };
                (y, o.mean, o.variance)
            };
            let rt = Tensor::<4>::from_data(TensorData::new(r.clone(), dims.to_vec()), &device);
            let grads = (y.clone() * rt).sum().backward();
            [
                values(y),
                values_1d(mean),
                values_1d(var),
                values(xt.grad(&grads).expect("dx")),
                values_1d(gt.grad(&grads).expect("dgamma")),
                values_1d(bt.grad(&grads).expect("dbeta")),
            ]
        };
        let want = run(&repr_testing::ndarray(), false);
        let got = run(device, true);
        for (name, (a, w)) in ["output", "mean", "variance", "dx", "dgamma", "dbeta"]
            .iter()
            .zip(got.iter().zip(&want))
        {
            assert_close(&format!("batch norm {name} {dims:?} relu={relu}"), a, w);
        }
    }
}

/// Inference-mode batch norm with running statistics, with and without ReLU.
fn batch_norm_inference_matches_burn(device: &Device) {
    let dims = [4usize, 6, 5, 5];
    let n: usize = dims.iter().product();
    let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
    let stat = |f: fn(usize) -> f32| TensorData::new((0..6).map(f).collect::<Vec<f32>>(), vec![6]);
    let params = [
        stat(|c| 0.5 + c as f32 * 0.1),
        stat(|c| c as f32 * 0.2 - 0.5),
        stat(|c| c as f32 * 0.3 - 0.4),
        stat(|c| 0.5 + c as f32),
    ];
    for relu in [false, true] {
        let run = |device: &Device, ours: bool| {
            let t = |d: &TensorData| Tensor::<1>::from_data(d.clone(), device);
            let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), dims.to_vec()), device);
            let [g, b, m, v] = params.each_ref().map(t);
            if ours {
                values(repr_kernels::ops::batch_norm(xt, g, b, m, v, 1e-5, relu))
            } else {
                let y = burn::tensor::module::batch_norm(xt, g, b, m, v, 1e-5);
                values(if relu {
                    burn::tensor::activation::relu(y)
                } else {
                    y
                })
            }
        };
        assert_close(
            &format!("inference batch norm relu={relu}"),
            &run(device, true),
            &run(&repr_testing::ndarray(), false),
        );
    }
}

/// GELU against Burn's `gelu` on ndarray, and its gradient against Burn's on the same backend
/// (on flex: Burn's exact derivative). Not against ndarray's: Burn's default `gelu_backward`,
/// which ndarray uses, differentiates the tanh approximation (up to 9e-4 off the exact
/// derivative here).
fn gelu_matches_burn(device: &Device) {
    let x: Vec<f32> = (0..3000).map(|i| (i as f32 - 1500.0) * 0.005).collect();
    let r: Vec<f32> = (0..3000)
        .map(|i| ((i * 7) % 11) as f32 * 0.2 - 1.0)
        .collect();
    let run = |device: &Device, ours: bool| {
        let device = device.clone().autodiff();
        let xt = Tensor::<4>::from_data(TensorData::new(x.clone(), vec![2, 3, 25, 20]), &device)
            .require_grad();
        let rt = Tensor::<4>::from_data(TensorData::new(r.clone(), vec![2, 3, 25, 20]), &device);
        let y = if ours {
            repr_kernels::ops::gelu(xt.clone())
        } else {
            burn::tensor::activation::gelu(xt.clone())
        };
        let grads = (y.clone() * rt).sum().backward();
        [values(y), values(xt.grad(&grads).expect("dx"))]
    };
    let got = run(device, true);
    assert_close("gelu", &got[0], &run(&repr_testing::ndarray(), false)[0]);
    assert_close("gelu gradient", &got[1], &run(device, false)[1]);
}

fn values_3d(t: Tensor<3>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("f32 data")
}

/// Attention on a packed projection (the ViT's shapes: 65 tokens, 3 heads of 64; a small odd
/// case: 7 tokens, 2 heads of 5): the context and the projection's gradient, against Burn's
/// `attention` on the split heads, on ndarray.
fn attention_matches_burn(device: &Device) {
    for (i, (batch, tokens, heads, head_dim)) in [(4usize, 65usize, 3usize, 64usize), (3, 7, 2, 5)]
        .into_iter()
        .enumerate()
    {
        let mut rng = ChaCha8Rng::seed_from_u64(70 + i as u64);
        let dims = vec![batch, tokens, 3 * heads * head_dim];
        let n: usize = dims.iter().product();
        let qkv: Vec<f32> = (0..n).map(|_| rng.random_range(-2.0f32..2.0)).collect();
        let dims_out = vec![batch, tokens, heads * head_dim];
        let r: Vec<f32> = (0..n / 3).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let run = |device: &Device, ours: bool| {
            let device = device.clone().autodiff();
            let x = Tensor::<3>::from_data(TensorData::new(qkv.clone(), dims.clone()), &device)
                .require_grad();
            let y = if ours {
                repr_kernels::ops::attention_packed(x.clone(), heads)
            } else {
                let d = heads * head_dim;
                let part = |p: usize| {
                    x.clone()
                        .slice([0..batch, 0..tokens, p * d..(p + 1) * d])
                        .reshape([batch, tokens, heads, head_dim])
                        .swap_dims(1, 2)
                };
                burn::tensor::module::attention(
                    part(0),
                    part(1),
                    part(2),
                    None,
                    None,
                    Default::default(),
                )
                .swap_dims(1, 2)
                .reshape([batch, tokens, d])
            };
            let rt = Tensor::<3>::from_data(TensorData::new(r.clone(), dims_out.clone()), &device);
            let grads = (y.clone() * rt).sum().backward();
            [values_3d(y), values_3d(x.grad(&grads).expect("dqkv"))]
        };
        let (got, want) = (run(device, true), run(&repr_testing::ndarray(), false));
        assert_close(&format!("attention {dims:?}"), &got[0], &want[0]);
        assert_close(&format!("attention gradient {dims:?}"), &got[1], &want[1]);
    }
}

/// Layer norm with and without a shift (the ViT's width 192 and an odd width of 19 over 130
/// rows): output and the gradients of x, gamma and beta, against Burn's `layer_norm` on
/// ndarray.
fn layer_norm_matches_burn(device: &Device) {
    for (i, (dims, shift)) in [([4usize, 65, 192], true), ([2, 65, 19], false)]
        .into_iter()
        .enumerate()
    {
        let mut rng = ChaCha8Rng::seed_from_u64(80 + i as u64);
        let n: usize = dims.iter().product();
        let width = dims[2];
        // Offset rows so that the centring matters.
        let x: Vec<f32> = (0..n)
            .map(|j| rng.random_range(-1.0f32..1.0) * 2.0 + (j / width) as f32 * 0.01)
            .collect();
        let g: Vec<f32> = (0..width).map(|_| rng.random_range(0.5f32..1.5)).collect();
        let b: Vec<f32> = (0..width).map(|_| rng.random_range(-0.5f32..0.5)).collect();
        let r: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let run = |device: &Device, ours: bool| {
            let device = device.clone().autodiff();
            let xt = Tensor::<3>::from_data(TensorData::new(x.clone(), dims.to_vec()), &device)
                .require_grad();
            let gt = Tensor::<1>::from_data(TensorData::new(g.clone(), vec![width]), &device)
                .require_grad();
            let bt = Tensor::<1>::from_data(TensorData::new(b.clone(), vec![width]), &device)
                .require_grad();
            let beta = shift.then(|| bt.clone());
            let y = if ours {
                repr_kernels::ops::layer_norm(xt.clone(), gt.clone(), beta, 1e-6)
            } else {
                burn::tensor::module::layer_norm(xt.clone(), gt.clone(), beta, 1e-6)
            };
            let rt = Tensor::<3>::from_data(TensorData::new(r.clone(), dims.to_vec()), &device);
            let grads = (y.clone() * rt).sum().backward();
            let mut out = vec![
                values_3d(y),
                values_3d(xt.grad(&grads).expect("dx")),
                values_1d(gt.grad(&grads).expect("dgamma")),
            ];
            if shift {
                out.push(values_1d(bt.grad(&grads).expect("dbeta")));
            }
            out
        };
        let (got, want) = (run(device, true), run(&repr_testing::ndarray(), false));
        for (name, (a, w)) in ["output", "dx", "dgamma", "dbeta"]
            .iter()
            .zip(got.iter().zip(&want))
        {
            assert_close(&format!("layer norm {name} {dims:?} shift={shift}"), a, w);
        }
    }
}

/// Linear layers (the ViT's `192 → 576` over 65 tokens with a bias, an odd `19 → 5` without,
/// and random shapes of two and three dimensions, a seeded property test): output and the
/// gradients of x, the weight and the bias against Burn's `linear` on ndarray.
fn linear_matches_burn(device: &Device) {
    let mut rng = ChaCha8Rng::seed_from_u64(100);
    let mut cases = vec![
        (vec![4usize, 65, 192], 576usize, true),
        (vec![3, 7, 19], 5, false),
    ];
    for _ in 0..6 {
        let mut dims: Vec<usize> = (0..rng.random_range(1..3))
            .map(|_| rng.random_range(1..20))
            .collect();
        dims.push(rng.random_range(1..70));
        cases.push((dims, rng.random_range(1..70), rng.random_bool(0.5)));
    }
    for (dims, d_out, bias) in cases {
        let d_in = *dims.last().expect("a feature dimension");
        let rows: usize = dims[..dims.len() - 1].iter().product();
        let mut random =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
        let (x, w, b, r) = (
            random(rows * d_in),
            random(d_in * d_out),
            random(d_out),
            random(rows * d_out),
        );
        let mut out_dims = dims.clone();
        *out_dims.last_mut().expect("a feature dimension") = d_out;
        // Through a 3-D tensor (a 2-D case has a leading 1) so both go through one body.
        let as_3d = |d: &[usize]| {
            if d.len() == 2 {
                vec![1, d[0], d[1]]
            } else {
                d.to_vec()
            }
        };
        let (in3, out3) = (as_3d(&dims), as_3d(&out_dims));
        let run = |device: &Device, ours: bool| {
            let device = device.clone().autodiff();
            let xt = Tensor::<3>::from_data(TensorData::new(x.clone(), in3.clone()), &device)
                .require_grad();
            let wt = Tensor::<2>::from_data(TensorData::new(w.clone(), vec![d_in, d_out]), &device)
                .require_grad();
            let bt = Tensor::<1>::from_data(TensorData::new(b.clone(), vec![d_out]), &device)
                .require_grad();
            let bias_t = bias.then(|| bt.clone());
            let y = if ours && dims.len() == 2 {
                // The 2-D form itself, not its 3-D view.
                let x2 = xt.clone().reshape([rows, d_in]);
                repr_kernels::ops::linear(x2, wt.clone(), bias_t).reshape([1, rows, d_out])
            } else if ours {
                repr_kernels::ops::linear(xt.clone(), wt.clone(), bias_t)
            } else {
                burn::tensor::module::linear(xt.clone(), wt.clone(), bias_t)
            };
            let rt = Tensor::<3>::from_data(TensorData::new(r.clone(), out3.clone()), &device);
            let grads = (y.clone() * rt).sum().backward();
            let mut out = vec![
                values_3d(y),
                values_3d(xt.grad(&grads).expect("dx")),
                wt.grad(&grads)
                    .expect("dw")
                    .into_data()
                    .convert::<f32>()
                    .try_into_vec::<f32>()
                    .expect("f32 data"),
            ];
            if bias {
                out.push(values_1d(bt.grad(&grads).expect("db")));
            }
            out
        };
        let (got, want) = (run(device, true), run(&repr_testing::ndarray(), false));
        for (name, (g, w)) in ["output", "dx", "dw", "db"]
            .iter()
            .zip(got.iter().zip(&want))
        {
            assert_close(
                &format!("linear {name} {dims:?} -> {d_out} bias={bias}"),
                g,
                w,
            );
        }
    }
}

/// `relu(a + b)`: output and both gradients against Burn's `relu(a + b)` on ndarray.
fn add_relu_matches_burn(device: &Device) {
    let dims = vec![4usize, 8, 9, 7];
    let n: usize = dims.iter().product();
    let mut rng = ChaCha8Rng::seed_from_u64(90);
    let mut values = || {
        (0..n)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect::<Vec<_>>()
    };
    let (a, b, r) = (values(), values(), values());
    let run = |device: &Device, ours: bool| {
        let device = device.clone().autodiff();
        let t = |v: &Vec<f32>| {
            Tensor::<4>::from_data(TensorData::new(v.clone(), dims.clone()), &device)
        };
        let (at, bt) = (t(&a).require_grad(), t(&b).require_grad());
        let y = if ours {
            repr_kernels::ops::add_relu(at.clone(), bt.clone())
        } else {
            burn::tensor::activation::relu(at.clone() + bt.clone())
        };
        let grads = (y.clone() * t(&r)).sum().backward();
        [
            values_4(y),
            values_4(at.grad(&grads).expect("da")),
            values_4(bt.grad(&grads).expect("db")),
        ]
    };
    let (got, want) = (run(device, true), run(&repr_testing::ndarray(), false));
    for (name, (g, w)) in ["output", "da", "db"].iter().zip(got.iter().zip(&want)) {
        assert_close(&format!("add_relu {name}"), g, w);
    }
}

fn values_4(t: Tensor<4>) -> Vec<f32> {
    values(t)
}

// wgpu on lavapipe is left out: these shapes compile dozens of kernels there (minutes) and the
// wgpu path is Burn's own ops, which the ndarray run already checks the routing of.
repr_testing::cpu_backend_tests!(
    preset_convolutions,
    random_convolutions,
    batch_norm_train_matches_burn,
    batch_norm_inference_matches_burn,
    gelu_matches_burn,
    attention_matches_burn,
    layer_norm_matches_burn,
    linear_matches_burn,
    add_relu_matches_burn
);
