//! One training step of a model on a compile-only CUDA device
//! (`prior_runtime::cuda_offline`): every kernel the step launches, as
//! CUDA C++ for a named architecture, without a GPU. The engine behind
//! `prior runtime compile-check`.
//!
//! The step is the trainer's own: [`accumulate_gradients`] (embedding,
//! every layer forward and backward, the head and the loss) and
//! [`Optimizer::step`] (gradient norm, clipping, AdamW). Every layer runs
//! the same kernels at the same shapes, so the model is built with one
//! layer: the kernels are those of the full depth, and the host memory is
//! that of one layer (pythia-1b's full parameter set would be 4 GB of
//! zeros uploaded to a device that stores nothing).
//!
//! The step runs in the compute type asked for: bf16 and f16 are the
//! trainer's mixed-precision step (activations and matmul operands in that
//! type, f32 master weights, gradients and optimizer, the weight refresh
//! cast after the update), exactly what `prior train --precision bf16`
//! launches.

use cubecl::prelude::*;
use prior_runtime::cuda_offline::{self, Arch, CompileOnlyRuntime, KernelSource};
use prior_runtime::kernels::matmul::Precision;

use crate::config::ModelConfig;
use crate::device::DeviceModel;
use crate::params::ParamLayout;
use crate::train::{accumulate_gradients, Optimizer, TrainError, TrainSection};

type Result<T> = std::result::Result<T, TrainError>;

/// A float type the check compiles kernels for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelDtype {
    F32,
    Bf16,
    F16,
}

impl std::fmt::Display for KernelDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KernelDtype::F32 => "f32",
            KernelDtype::Bf16 => "bf16",
            KernelDtype::F16 => "f16",
        })
    }
}

impl std::str::FromStr for KernelDtype {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "f32" => Ok(KernelDtype::F32),
            "bf16" => Ok(KernelDtype::Bf16),
            "f16" => Ok(KernelDtype::F16),
            other => Err(format!("unknown dtype {other:?}: use f32, bf16 or f16")),
        }
    }
}

/// The kernels of one training step of `cfg` (micro-batch `batch` of `seq`
/// tokens) in `dtype` on a fresh compile-only device of `arch`, in launch
/// order, each once.
pub fn step_kernels(
    arch: Arch,
    cfg: &ModelConfig,
    batch: usize,
    seq: usize,
    dtype: KernelDtype,
    precision: Precision,
) -> Result<Vec<KernelSource>> {
    let client = cuda_offline::compile_client(arch);
    match dtype {
        KernelDtype::F32 => model_step::<f32>(&client, cfg, batch, seq, precision)?,
        KernelDtype::Bf16 => model_step::<half::bf16>(&client, cfg, batch, seq, precision)?,
        KernelDtype::F16 => model_step::<half::f16>(&client, cfg, batch, seq, precision)?,
    }
    Ok(cuda_offline::take_kernels(&client))
}

/// The trainer's step in `F`, on one layer of `cfg`.
fn model_step<F: Float + CubeElement>(
    client: &ComputeClient<CompileOnlyRuntime>,
    cfg: &ModelConfig,
    batch: usize,
    seq: usize,
    precision: Precision,
) -> Result<()> {
    let one_layer = ModelConfig { n_layer: 1, ..*cfg };
    let layout = ParamLayout::new(&one_layer);
    let params = vec![0f32; layout.total];
    let mut model =
        DeviceModel::<_, F>::with_compute_type(client.clone(), one_layer, &params, batch, seq)?;
    model.precision = precision;
    let seq_tokens = seq + 1;
    let tokens: Vec<u32> = (0..batch * seq_tokens)
        .map(|i| (i % cfg.vocab_size) as u32)
        .collect();
    accumulate_gradients(&mut model, &tokens, seq_tokens, None)?;
    let optimizer = Optimizer::zeros(client, &layout);
    optimizer.apply(&mut model, &TrainSection::default(), 0)?;
    Ok(())
}
