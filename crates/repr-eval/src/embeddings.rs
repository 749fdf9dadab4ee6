//! A matrix of embeddings held on the host.

use burn::tensor::{Device, Tensor, TensorData};

use crate::EvalError;

/// `len` embeddings of `dim` values each, row-major on the host.
///
/// ```
/// use repr_eval::Embeddings;
///
/// let e = Embeddings::new(vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3)?;
/// assert_eq!(e.row(1), &[4.0, 5.0, 6.0]);
/// # Ok::<(), repr_eval::EvalError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// The values, `len * dim` of them, one embedding after another.
    pub data: Vec<f32>,
    /// The number of embeddings.
    pub len: usize,
    /// The length of each embedding.
    pub dim: usize,
}

impl Embeddings {
    /// Wraps `data` as `len` rows of `dim` values.
    ///
    /// # Errors
    /// [`EvalError::InvalidInput`] when `dim` is 0 or `data.len() != len * dim`.
    pub fn new(data: Vec<f32>, len: usize, dim: usize) -> Result<Self, EvalError> {
        if dim == 0 {
            return Err(EvalError::invalid(
                "dim",
                "embeddings need at least one dimension",
            ));
        }
        if Some(data.len()) != len.checked_mul(dim) {
            return Err(EvalError::invalid(
                "data",
                format!(
                    "{} values for {len} embeddings of dimension {dim}",
                    data.len()
                ),
            ));
        }
        Ok(Self { data, len, dim })
    }

    /// Reads a `[len, dim]` tensor back to the host.
    ///
    /// # Shapes
    /// - tensor: `[len, dim]`
    pub fn from_tensor(tensor: Tensor<2>) -> Self {
        let [len, dim] = tensor.dims();
        let data = tensor
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("a float tensor converts to f32");
        Self { data, len, dim }
    }

    /// The embeddings as a `[len, dim]` tensor on `device`.
    pub fn to_tensor(&self, device: &Device) -> Tensor<2> {
        Tensor::from_data(
            TensorData::new(self.data.clone(), [self.len, self.dim]),
            device,
        )
    }

    /// Embedding `index`.
    ///
    /// # Panics
    /// If `index >= len`.
    pub fn row(&self, index: usize) -> &[f32] {
        &self.data[index * self.dim..(index + 1) * self.dim]
    }

    /// Whether there is no embedding.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Embeddings `indices`, in that order.
    ///
    /// # Panics
    /// If an index is out of range.
    pub fn select(&self, indices: &[usize]) -> Self {
        let data = indices
            .iter()
            .flat_map(|&i| self.row(i).iter().copied())
            .collect();
        Self {
            data,
            len: indices.len(),
            dim: self.dim,
        }
    }

    /// Fails with [`EvalError::NonFinite`] naming `field` if a value is NaN or infinite, and
    /// with [`EvalError::InvalidInput`] if `data` does not hold `len * dim` values.
    pub fn check(&self, field: &str) -> Result<(), EvalError> {
        if self.dim == 0 || self.data.len() != self.len * self.dim {
            return Err(EvalError::invalid(
                field,
                format!(
                    "{} values for {} embeddings of dimension {}",
                    self.data.len(),
                    self.len,
                    self.dim
                ),
            ));
        }
        match self.data.iter().position(|v| !v.is_finite()) {
            Some(index) => Err(EvalError::NonFinite {
                field: field.into(),
                index,
            }),
            None => Ok(()),
        }
    }
}
