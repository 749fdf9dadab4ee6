//! [`KernelBackend`] on `Autodiff<Flex>`: the forward on our flex kernels, and hand-written
//! backward passes that call our kernels too (the input gradient and the weight gradient of a
//! convolution in one pass over the batch; batch norm's three gradients in one pass per channel).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::ModuleOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::ops::ConvOptions;

use super::flex::{
    add_relu_applies, add_relu_backward, add_relu_forward, attention_backward, attention_forward,
    attention_shape, batch_norm_train_backward, conv_shape, conv2d_backward, conv2d_shaped,
    gelu_backward, gelu_forward, layer_norm_applies, layer_norm_backward, layer_norm_forward,
    linear_backward, linear_forward, linear_shape, norm_shape,
};
use super::{KernelBackend, burn_add_relu, burn_attention_packed, burn_batch_norm_train};
use crate::cpu::attention::AttentionShape;
use crate::cpu::im2col::ConvShape;
use crate::cpu::linear::LinearShape;

type FlexTensor = FloatTensor<Flex>;

/// Backward of a convolution with a bias: parents `[x, weight, bias]`.
#[derive(Debug)]
struct Conv2dBiasBackward(ConvShape);

/// Backward of a convolution without a bias: parents `[x, weight]`.
#[derive(Debug)]
struct Conv2dBackward(ConvShape);

/// What both convolution backwards keep: the input and the weight.
type ConvState = (FlexTensor, FlexTensor);

impl Backward<Flex, 3> for Conv2dBiasBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, nw, nb] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, w) = ops.state;
        let want = [nx.is_some(), nw.is_some(), nb.is_some()];
        let [dx, dw, db] = conv2d_backward(&self.0, x, w, dy, want);
        for (node, grad) in [(nx, dx), (nw, dw), (nb, db)] {
            if let (Some(node), Some(grad)) = (node, grad) {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

impl Backward<Flex, 2> for Conv2dBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, nw] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, w) = ops.state;
        let [dx, dw, _] = conv2d_backward(&self.0, x, w, dy, [nx.is_some(), nw.is_some(), false]);
        for (node, grad) in [(nx, dx), (nw, dw)] {
            if let (Some(node), Some(grad)) = (node, grad) {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

/// Backward of a linear layer with a bias: parents `[x, weight, bias]`; state the contiguous
/// input and weight.
#[derive(Debug)]
struct LinearBiasBackward(LinearShape);

/// Backward of a linear layer without a bias: parents `[x, weight]`.
#[derive(Debug)]
struct LinearBackward(LinearShape);

impl Backward<Flex, 3> for LinearBiasBackward {
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, nw, nb] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, w) = ops.state;
        let want = [nx.is_some(), nw.is_some(), nb.is_some()];
        let [dx, dw, db] = linear_backward(self.0, &x, &w, dy, want);
        for (node, grad) in [(nx, dx), (nw, dw), (nb, db)] {
            if let (Some(node), Some(grad)) = (node, grad) {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

impl Backward<Flex, 2> for LinearBackward {
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, nw] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, w) = ops.state;
        let [dx, dw, _] = linear_backward(self.0, &x, &w, dy, [nx.is_some(), nw.is_some(), false]);
        for (node, grad) in [(nx, dx), (nw, dw)] {
            if let (Some(node), Some(grad)) = (node, grad) {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

/// Backward of a training-mode batch norm: parents `[x, gamma, beta]`.
#[derive(Debug)]
struct BatchNormTrainBackward;

/// The input, gamma, the batch statistics, epsilon, and beta when a ReLU was fused (its mask
/// is recomputed from the input).
type NormState = (
    FlexTensor,
    FlexTensor,
    FlexTensor,
    FlexTensor,
    f64,
    Option<FlexTensor>,
);

impl Backward<Flex, 3> for BatchNormTrainBackward {
    type State = NormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, ng, nb] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, gamma, mean, var, epsilon, relu_beta) = ops.state;
        let [dx, dgamma, dbeta] =
            batch_norm_train_backward(x, gamma, mean, var, epsilon, dy, relu_beta);
        for (node, grad) in [(nx, dx), (ng, dgamma), (nb, dbeta)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

/// Backward of GELU: parent `[x]`, state the input.
#[derive(Debug)]
struct GeluBackward;

impl Backward<Flex, 1> for GeluBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        if let Some(node) = nx {
            grads.register::<Flex>(node.id, gelu_backward(ops.state, dy));
        }
    }
}

/// Backward of attention on a packed projection: parent `[qkv]`; state the contiguous `qkv`
/// and the probabilities.
#[derive(Debug)]
struct AttentionBackward(AttentionShape);

impl Backward<Flex, 1> for AttentionBackward {
    type State = (FlexTensor, Vec<f32>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nqkv] = ops.parents;
        let dout = grads.consume::<Flex>(&ops.node);
        if let Some(node) = nqkv {
            let (qkv, probs) = ops.state;
            grads.register::<Flex>(node.id, attention_backward(&self.0, &qkv, &probs, dout));
        }
    }
}

/// What both layer-norm backwards keep: the contiguous input, gamma and the row statistics.
type LayerNormState = (FlexTensor, FlexTensor, Vec<f32>);

/// Backward of a layer norm with a shift: parents `[x, gamma, beta]`.
#[derive(Debug)]
struct LayerNormBackward;

/// Backward of a layer norm without a shift: parents `[x, gamma]`.
#[derive(Debug)]
struct LayerNormNoShiftBackward;

impl Backward<Flex, 3> for LayerNormBackward {
    type State = LayerNormState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, ng, nb] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, gamma, stats) = ops.state;
        let [dx, dgamma, dbeta] = layer_norm_backward(&x, gamma, &stats, dy);
        for (node, grad) in [(nx, dx), (ng, dgamma), (nb, dbeta)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

impl Backward<Flex, 2> for LayerNormNoShiftBackward {
    type State = LayerNormState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [nx, ng] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, gamma, stats) = ops.state;
        let [dx, dgamma, _] = layer_norm_backward(&x, gamma, &stats, dy);
        for (node, grad) in [(nx, dx), (ng, dgamma)] {
            if let Some(node) = node {
                grads.register::<Flex>(node.id, grad);
            }
        }
    }
}

/// Backward of `relu(a + b)`: parents `[a, b]`, state the output.
#[derive(Debug)]
struct AddReluBackward;

impl Backward<Flex, 2> for AddReluBackward {
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [na, nb] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let d = add_relu_backward(&ops.state, dy);
        match (na, nb) {
            (Some(a), Some(b)) => {
                grads.register::<Flex>(a.id, d.clone());
                grads.register::<Flex>(b.id, d);
            }
            (Some(n), None) | (None, Some(n)) => grads.register::<Flex>(n.id, d),
            (None, None) => {}
        }
    }
}

type AdTensor<C> = FloatTensor<Autodiff<Flex, C>>;

impl<C: CheckpointStrategy> KernelBackend for Autodiff<Flex, C> {
    fn repr_add_relu(a: AdTensor<C>, b: AdTensor<C>) -> AdTensor<C> {
        if !add_relu_applies(a.primitive(), b.primitive()) {
            return burn_add_relu::<Self>(a, b);
        }
        match AddReluBackward
            .prepare::<C>([a.node(), b.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = add_relu_forward(a.into_primitive(), b.into_primitive());
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(add_relu_forward(a.into_primitive(), b.into_primitive()))
            }
        }
    }

    fn repr_attention(qkv: AdTensor<C>, heads: usize) -> AdTensor<C> {
        let Some(s) = attention_shape(qkv.primitive(), heads) else {
            return burn_attention_packed::<Self>(qkv, heads);
        };
        match AttentionBackward(s)
            .prepare::<C>([qkv.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (out, qkv, probs) = attention_forward(&s, qkv.into_primitive());
                prep.finish((qkv, probs), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(attention_forward(&s, qkv.into_primitive()).0),
        }
    }

    fn repr_layer_norm(
        x: AdTensor<C>,
        gamma: AdTensor<C>,
        beta: AdTensor<C>,
        epsilon: f64,
    ) -> AdTensor<C> {
        if !layer_norm_applies(x.primitive(), gamma.primitive(), Some(beta.primitive())) {
            return <Self as ModuleOps<Self>>::layer_norm(x, gamma, Some(beta), epsilon);
        }
        match LayerNormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let g = gamma.into_primitive();
                let (y, x, stats) =
                    layer_norm_forward(x.into_primitive(), &g, Some(beta.primitive()), epsilon);
                prep.finish((x, g, stats), y)
            }
            OpsKind::UnTracked(prep) => {
                let g = gamma.into_primitive();
                let y = layer_norm_forward(x.into_primitive(), &g, Some(beta.primitive()), epsilon);
                prep.finish(y.0)
            }
        }
    }

    fn repr_layer_norm_no_shift(x: AdTensor<C>, gamma: AdTensor<C>, epsilon: f64) -> AdTensor<C> {
        if !layer_norm_applies(x.primitive(), gamma.primitive(), None) {
            return <Self as ModuleOps<Self>>::layer_norm(x, gamma, None, epsilon);
        }
        match LayerNormNoShiftBackward
            .prepare::<C>([x.node(), gamma.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let g = gamma.into_primitive();
                let (y, x, stats) = layer_norm_forward(x.into_primitive(), &g, None, epsilon);
                prep.finish((x, g, stats), y)
            }
            OpsKind::UnTracked(prep) => {
                let g = gamma.into_primitive();
                prep.finish(layer_norm_forward(x.into_primitive(), &g, None, epsilon).0)
            }
        }
    }

    fn repr_gelu(x: AdTensor<C>) -> AdTensor<C> {
        match GeluBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = x.primitive().clone();
                prep.finish(state, gelu_forward(x.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(gelu_forward(x.into_primitive())),
        }
    }

    fn repr_linear(x: AdTensor<C>, weight: AdTensor<C>) -> AdTensor<C> {
        let Some(s) = linear_shape(x.primitive(), weight.primitive(), None) else {
            return <Self as ModuleOps<Self>>::linear(x, weight, None);
        };
        match LinearBackward(s)
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, x, w) =
                    linear_forward(s, x.into_primitive(), weight.into_primitive(), None);
                prep.finish((x, w), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(linear_forward(s, x.into_primitive(), weight.into_primitive(), None).0)
            }
        }
    }

    fn repr_linear_bias(x: AdTensor<C>, weight: AdTensor<C>, bias: AdTensor<C>) -> AdTensor<C> {
        let Some(s) = linear_shape(x.primitive(), weight.primitive(), Some(bias.primitive()))
        else {
            return <Self as ModuleOps<Self>>::linear(x, weight, Some(bias));
        };
        match LinearBiasBackward(s)
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, w, b) = (
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                );
                let (y, x, w) = linear_forward(s, x, w, Some(b));
                prep.finish((x, w), y)
            }
            OpsKind::UnTracked(prep) => {
                let (x, w, b) = (
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                );
                prep.finish(linear_forward(s, x, w, Some(b)).0)
            }
        }
    }

    fn repr_conv2d(x: AdTensor<C>, weight: AdTensor<C>, options: ConvOptions<2>) -> AdTensor<C> {
        let Some(s) = conv_shape(x.primitive(), weight.primitive(), &options) else {
            return <Self as ModuleOps<Self>>::conv2d(x, weight, None, options);
        };
        match Conv2dBackward(s)
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = (x.primitive().clone(), weight.primitive().clone());
                prep.finish(
                    state,
                    conv2d_shaped(&s, x.into_primitive(), weight.into_primitive(), None),
                )
            }
            OpsKind::UnTracked(prep) => prep.finish(conv2d_shaped(
                &s,
                x.into_primitive(),
                weight.into_primitive(),
                None,
            )),
        }
    }

    fn repr_conv2d_bias(
        x: AdTensor<C>,
        weight: AdTensor<C>,
        bias: AdTensor<C>,
        options: ConvOptions<2>,
    ) -> AdTensor<C> {
        let Some(s) = conv_shape(x.primitive(), weight.primitive(), &options) else {
            return <Self as ModuleOps<Self>>::conv2d(x, weight, Some(bias), options);
        };
        match Conv2dBiasBackward(s)
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let state = (x.primitive().clone(), weight.primitive().clone());
                let y = conv2d_shaped(
                    &s,
                    x.into_primitive(),
                    weight.into_primitive(),
                    Some(bias.into_primitive()),
                );
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(conv2d_shaped(
                &s,
                x.into_primitive(),
                weight.into_primitive(),
                Some(bias.into_primitive()),
            )),
        }
    }

    fn repr_batch_norm_train(
        x: AdTensor<C>,
        gamma: AdTensor<C>,
        beta: AdTensor<C>,
        epsilon: f64,
        relu: bool,
    ) -> (AdTensor<C>, AdTensor<C>, AdTensor<C>) {
        if norm_shape(x.primitive()).is_none() {
            return burn_batch_norm_train::<Self>(x, gamma, beta, epsilon, relu);
        }
        // The statistics are detached, as Burn's own `batch_norm_train` returns them.
        let detached = AdTensor::<C>::new;
        match BatchNormTrainBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let beta = beta.into_primitive();
                let (y, mean, var) = <Flex as KernelBackend>::repr_batch_norm_train(
                    x.primitive().clone(),
                    gamma.primitive().clone(),
                    beta.clone(),
                    epsilon,
                    relu,
                );
                let state = (
                    x.into_primitive(),
                    gamma.into_primitive(),
                    mean.clone(),
                    var.clone(),
                    epsilon,
                    relu.then_some(beta),
                );
                (prep.finish(state, y), detached(mean), detached(var))
            }
            OpsKind::UnTracked(prep) => {
                let (y, mean, var) = <Flex as KernelBackend>::repr_batch_norm_train(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    relu,
                );
                (prep.finish(y), detached(mean), detached(var))
            }
        }
    }
}
