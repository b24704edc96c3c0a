//! Where an evaluation's arithmetic runs: a cubecl device
//! (`ComputeClient<R>`: CUDA, or wgpu) or the native CPU backend
//! ([`NativeCpu`], `--device cpu`). Scoring and experiments are written
//! against [`Backend`], so one experiment file trains and scores on either.

use cubecl::prelude::*;
use prior_model::device::DeviceModel;
use prior_model::heldout::{heldout_loss, CategoryLoss, HeldoutSet};
use prior_model::native::NativeModel;
use prior_model::train::{StepMetrics, TrainConfig, TrainError, TrainSummary};
use prior_model::ModelConfig;
use prior_runtime::dist::Group;

use crate::EvalError;

/// A model built for `batch` rows of `seq` tokens, as scoring reads it.
pub trait Scorer {
    /// Each position's cross-entropy for `ids` and `targets` (`batch x seq`).
    fn token_losses(&mut self, ids: &[u32], targets: &[u32]) -> Result<Vec<f32>, EvalError>;
    /// The logits (`[vocab]`) at each of `positions` (flat, row * seq +
    /// column) of `ids`.
    fn logits_at(&mut self, ids: &[u32], positions: &[usize]) -> Result<Vec<Vec<f32>>, EvalError>;
    /// Mean held-out loss per category (the model built for `set.seq`).
    fn heldout(&mut self, set: &HeldoutSet) -> Result<Vec<CategoryLoss>, EvalError>;
}

/// What an experiment runs on: training and scoring.
pub trait Backend {
    /// Whether a single row of logits can be read on its own (letter
    /// scoring's one-pass path) for a vocabulary of `vocab`.
    fn row_views(&self, vocab: usize) -> bool;
    /// `params` as a model for `batch` rows of `seq` tokens.
    fn scorer(
        &self,
        cfg: ModelConfig,
        params: &[f32],
        batch: usize,
        seq: usize,
    ) -> Result<Box<dyn Scorer>, EvalError>;
    /// [`prior_model::train::train`] here.
    fn train(
        &self,
        device_name: &str,
        cfg: &TrainConfig,
        config_text: &str,
        resume: bool,
        on_step: &mut dyn FnMut(&StepMetrics),
    ) -> Result<TrainSummary, TrainError>;
}

impl<R: Runtime> Backend for ComputeClient<R> {
    fn row_views(&self, vocab: usize) -> bool {
        vocab.is_multiple_of(prior_runtime::buffer::Buf::<R, f32>::view_align())
    }

    fn scorer(
        &self,
        cfg: ModelConfig,
        params: &[f32],
        batch: usize,
        seq: usize,
    ) -> Result<Box<dyn Scorer>, EvalError> {
        Ok(Box::new(DeviceModel::new(
            self.clone(),
            cfg,
            params,
            batch,
            seq,
        )?))
    }

    fn train(
        &self,
        device_name: &str,
        cfg: &TrainConfig,
        config_text: &str,
        resume: bool,
        on_step: &mut dyn FnMut(&StepMetrics),
    ) -> Result<TrainSummary, TrainError> {
        prior_model::train::train(self.clone(), device_name, cfg, config_text, resume, on_step)
    }
}

impl<R: Runtime> Scorer for DeviceModel<R> {
    fn token_losses(&mut self, ids: &[u32], targets: &[u32]) -> Result<Vec<f32>, EvalError> {
        Ok(self.forward_token_losses(ids, targets)?)
    }

    fn logits_at(&mut self, ids: &[u32], positions: &[usize]) -> Result<Vec<Vec<f32>>, EvalError> {
        self.forward_logits(ids)?;
        positions
            .iter()
            .map(|&p| match self.logits_row(p) {
                Some(row) => Ok(row?),
                None => Err(EvalError::Usage(
                    "this device cannot read one row of logits for this vocabulary".into(),
                )),
            })
            .collect()
    }

    fn heldout(&mut self, set: &HeldoutSet) -> Result<Vec<CategoryLoss>, EvalError> {
        Ok(heldout_loss(self, set)?)
    }
}

/// The native CPU backend of prior-model ([`prior_model::native`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct NativeCpu;

struct NativeScorer {
    model: NativeModel,
}

impl Backend for NativeCpu {
    fn row_views(&self, _vocab: usize) -> bool {
        true
    }

    fn scorer(
        &self,
        cfg: ModelConfig,
        params: &[f32],
        _batch: usize,
        seq: usize,
    ) -> Result<Box<dyn Scorer>, EvalError> {
        let zeros = vec![0f32; params.len()];
        let model = NativeModel::new(cfg, params.to_vec(), zeros.clone(), zeros, seq)?;
        Ok(Box::new(NativeScorer { model }))
    }

    fn train(
        &self,
        _device_name: &str,
        cfg: &TrainConfig,
        config_text: &str,
        resume: bool,
        on_step: &mut dyn FnMut(&StepMetrics),
    ) -> Result<TrainSummary, TrainError> {
        prior_model::train::train_native(cfg, config_text, resume, &mut Group::single(), on_step)
    }
}

impl Scorer for NativeScorer {
    fn token_losses(&mut self, ids: &[u32], targets: &[u32]) -> Result<Vec<f32>, EvalError> {
        Ok(self.model.token_losses(ids, targets, self.model.seq)?)
    }

    fn logits_at(&mut self, ids: &[u32], positions: &[usize]) -> Result<Vec<Vec<f32>>, EvalError> {
        let v = self.model.cfg.vocab_size;
        let logits = self.model.logits(ids, self.model.seq)?;
        Ok(positions
            .iter()
            .map(|&p| logits[p * v..(p + 1) * v].to_vec())
            .collect())
    }

    fn heldout(&mut self, set: &HeldoutSet) -> Result<Vec<CategoryLoss>, EvalError> {
        Ok(self.model.heldout_loss(set)?)
    }
}
