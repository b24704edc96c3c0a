//! The trainer: mix -> loader -> device model -> AdamW, with metrics,
//! checkpoints and bit-exact resume. Read it top to bottom: [`train`] is
//! the whole loop.
//!
//! The pieces of a step are public so that `prior bench step` times the
//! very code a run executes rather than a copy of it: [`loader_options`]
//! (how the loader is driven), [`accumulate_gradients`] (forward and
//! backward over the micro-batches of one batch) and [`Optimizer::step`]
//! (gradient norm, clipping, learning rate, AdamW per parameter group).

use prior_runtime::kernels::matmul::Precision;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use cubecl::prelude::*;
use prior_loader::{Loader, LoaderOptions, MixSpec, Sampler, Start};
use prior_runtime::buffer::sync;
use prior_runtime::buffer::Buf;
use prior_runtime::dist::Group;
use prior_runtime::kernels::optim;
use prior_runtime::kernels::AdamW;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, Checkpoint, TrainState};
use crate::config::ModelConfig;
use crate::device::{DeviceModel, MemoryPlan};
use crate::heldout::{heldout_loss, CategoryLoss, HeldoutError, HeldoutSet};
// The line types of metrics.jsonl live with its reader; this module writes them.
pub use crate::metrics::{EvalMetrics, StepMetrics};
use crate::native::NativeModel;
use crate::parallel::{accumulate_data_parallel, shard_of};
use crate::params::ParamLayout;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("config {}: {detail}", path.display())]
    Config { path: PathBuf, detail: String },
    /// A `[model]` section built in code rather than read from a file
    /// ([`ModelSection::source`] unset), so there is no file to name.
    #[error("[model] (not read from a file): {detail}")]
    Model { detail: String },
    /// A batch (or optimizer state) whose shape does not fit the model it
    /// is given to.
    #[error("shape: {detail}")]
    Shape { detail: String },
    #[error(transparent)]
    Loader(#[from] prior_loader::LoaderError),
    #[error(transparent)]
    Runtime(#[from] prior_runtime::RuntimeError),
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error(transparent)]
    Heldout(#[from] HeldoutError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The training state would not fit the device's memory.
    #[error("device memory: {detail}")]
    Memory { detail: String },
    /// The data-parallel group failed: a rank died, hung or disagreed.
    #[error("data parallel: {0}")]
    Dist(#[from] prior_runtime::dist::DistError),
    /// A worker thread of the native CPU backend failed.
    #[error("{detail}")]
    Worker { detail: String },
    #[error("step {step}: loss is {loss}; stopped (the last good checkpoint is {last})")]
    NonFinite { step: u64, loss: f32, last: String },
}

type Result<T> = std::result::Result<T, TrainError>;

/// `[model]`: a preset, explicit dimensions over it, or a Hugging Face
/// GPTNeoX directory to continue from.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// `tiny`, `micro` or a Pythia size (`pythia-160m`, ...); default `tiny`.
    pub preset: Option<String>,
    /// Overrides of the preset's dimensions.
    pub n_layer: Option<usize>,
    pub d_model: Option<usize>,
    pub n_head: Option<usize>,
    /// A Hugging Face GPTNeoX directory (`config.json` + `model.safetensors`,
    /// e.g. a Pythia checkpoint or `prior export-hf` output) to start from,
    /// relative to this config. Excludes the keys above.
    pub init: Option<PathBuf>,
    /// The file this section was read from; errors found in it later (when
    /// the corpus's vocabulary or `init`'s weights are read) name it. Set by
    /// [`TrainConfig::load`]; a loader of another file holding a `[model]`
    /// section sets it to that file.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

impl ModelSection {
    /// Checks what can be checked without reading other files: `init`
    /// excludes the dimension keys.
    pub fn check_keys(&self) -> std::result::Result<(), String> {
        if self.init.is_some()
            && (self.preset.is_some()
                || self.n_layer.is_some()
                || self.d_model.is_some()
                || self.n_head.is_some())
        {
            return Err("model.init takes the dimensions from the Hugging Face config.json; remove model.preset, n_layer, d_model and n_head".into());
        }
        Ok(())
    }

    /// The model's dimensions and, with `init`, its starting weights.
    pub fn resolve(
        &self,
        vocab: usize,
    ) -> std::result::Result<(ModelConfig, Option<Vec<f32>>), String> {
        self.check_keys()?;
        if let Some(dir) = &self.init {
            let (cfg, params) = crate::hf::load_dir(dir).map_err(|e| format!("model.init: {e}"))?;
            if vocab > cfg.vocab_size {
                return Err(format!(
                    "model.init: the corpus tokenizer has {vocab} ids but the model's vocabulary is {}",
                    cfg.vocab_size
                ));
            }
            return Ok((cfg, Some(params)));
        }
        let name = self.preset.as_deref().unwrap_or("tiny");
        let mut cfg = ModelConfig::preset(name, vocab).ok_or_else(|| {
            format!(
                "model.preset {name:?} is unknown (one of: {})",
                ModelConfig::preset_names().join(", ")
            )
        })?;
        cfg.n_layer = self.n_layer.unwrap_or(cfg.n_layer);
        cfg.d_model = self.d_model.unwrap_or(cfg.d_model);
        cfg.n_head = self.n_head.unwrap_or(cfg.n_head);
        if cfg.n_layer == 0 || cfg.n_head == 0 || cfg.d_model == 0 {
            return Err("model.n_layer, d_model and n_head must be at least 1".into());
        }
        if !cfg.d_model.is_multiple_of(cfg.n_head) || cfg.head_dim() < 4 {
            return Err(format!(
                "model.d_model {} must be a multiple of model.n_head {} with at least 4 dimensions per head",
                cfg.d_model, cfg.n_head
            ));
        }
        Ok((cfg, None))
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// A mix spec (relative to this config's directory).
    pub mix: PathBuf,
}

/// `[train]`; every key has a default.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSection {
    pub steps: u64,
    pub micro_batch: usize,
    pub lr: f32,
    pub min_lr: f32,
    pub warmup_steps: u64,
    pub weight_decay: f32,
    pub grad_clip: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub device: String,
    pub checkpoint_dir: PathBuf,
    pub checkpoint_every: u64,
    pub keep_checkpoints: usize,
    /// Seed of the parameter initialisation.
    pub seed: u64,
    /// Held-out loss per category every this many steps (0: never).
    pub eval_every: u64,
    /// The corpus whose categories give the held-out loss (relative to this
    /// config); needed when `eval_every` > 0.
    pub eval_corpus: Option<PathBuf>,
    /// Tokens per category in the held-out loss.
    pub eval_tokens: usize,
    /// The compute type: "bf16" or "f16" (activations and matmul operands
    /// in that type, f32 accumulation, f32 master weights; f16 with dynamic
    /// loss scaling), "tf32" (f32 values, tensor-core TF32 matmuls) or
    /// "f32" (exact). Unset: bf16 where the device has it (CUDA), else f32.
    pub precision: Option<TrainPrecision>,
    /// Read the steps' losses and gradient norms back from the device (and
    /// check them for a non-finite loss) every this many steps; between
    /// reads a step never waits for the device. metrics.jsonl still has a
    /// line per step; their times are the interval's mean.
    pub log_every: u64,
}

impl Default for TrainSection {
    fn default() -> Self {
        TrainSection {
            steps: 1000,
            micro_batch: 8,
            lr: 3e-4,
            min_lr: 1.2e-5,
            warmup_steps: 100,
            weight_decay: 0.1,
            grad_clip: 1.0,
            beta1: 0.9,
            beta2: 0.95,
            eps: 1e-8,
            device: "auto".into(),
            checkpoint_dir: "runs/train".into(),
            checkpoint_every: 200,
            keep_checkpoints: 3,
            seed: 0,
            eval_every: 0,
            eval_corpus: None,
            eval_tokens: 16384,
            precision: None,
            log_every: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default)]
    pub model: ModelSection,
    pub data: DataSection,
    #[serde(default)]
    pub train: TrainSection,
}

impl TrainConfig {
    /// Reads and checks a config; relative paths are resolved against its
    /// directory. Unknown keys and bad values are errors naming the key.
    pub fn load(path: &Path) -> Result<(TrainConfig, String)> {
        let bad = |detail: String| TrainError::Config {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let mut cfg: TrainConfig =
            toml::from_str(&text).map_err(|e| bad(e.to_string().trim_end().to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        if cfg.data.mix.is_relative() {
            cfg.data.mix = base.join(&cfg.data.mix);
        }
        if cfg.train.checkpoint_dir.is_relative() {
            cfg.train.checkpoint_dir = base.join(&cfg.train.checkpoint_dir);
        }
        if let Some(e) = cfg.train.eval_corpus.as_mut().filter(|e| e.is_relative()) {
            *e = base.join(&*e);
        }
        if let Some(i) = cfg.model.init.as_mut().filter(|i| i.is_relative()) {
            *i = base.join(&*i);
        }
        cfg.model.source = Some(path.to_path_buf());
        let t = &cfg.train;
        let checks: [(bool, &str); 11] = [
            (
                t.eval_every > 0 && t.eval_corpus.is_none(),
                "train.eval_every needs train.eval_corpus (a corpus of held-out documents)",
            ),
            (t.eval_tokens == 0, "train.eval_tokens must be at least 1"),
            (t.steps == 0, "train.steps must be at least 1"),
            (t.log_every == 0, "train.log_every must be at least 1"),
            (t.micro_batch == 0, "train.micro_batch must be at least 1"),
            (
                !(t.lr > 0.0 && t.lr.is_finite()),
                "train.lr must be positive",
            ),
            (
                !(t.min_lr >= 0.0 && t.min_lr <= t.lr),
                "train.min_lr must be between 0 and train.lr",
            ),
            (
                t.grad_clip.is_nan() || t.grad_clip <= 0.0,
                "train.grad_clip must be positive",
            ),
            (
                !(0.0..1.0).contains(&t.beta1) || !(0.0..1.0).contains(&t.beta2),
                "train.beta1 and train.beta2 must be in [0, 1)",
            ),
            (
                t.checkpoint_every == 0,
                "train.checkpoint_every must be at least 1",
            ),
            (
                t.keep_checkpoints == 0,
                "train.keep_checkpoints must be at least 1",
            ),
        ];
        if let Some((_, why)) = checks.iter().find(|c| c.0) {
            return Err(bad(why.to_string()));
        }
        cfg.model.check_keys().map_err(bad)?;
        if cfg.model.init.is_none() {
            cfg.model.resolve(256).map_err(bad)?;
        }
        Ok((cfg, text))
    }
}

/// What a run computes in (`[train] precision`, `--precision`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrainPrecision {
    Bf16,
    F16,
    F32,
    Tf32,
}

impl TrainPrecision {
    pub const NAMES: [&str; 4] = ["bf16", "f16", "f32", "tf32"];

    /// bf16 where the device has it (CUDA), else f32.
    pub fn default_for<R: Runtime>(client: &ComputeClient<R>) -> TrainPrecision {
        if supports::<R, half::bf16>(client) {
            TrainPrecision::Bf16
        } else {
            TrainPrecision::F32
        }
    }

    /// How f32 matmuls run under this precision (only f32 and tf32 have
    /// f32 operands).
    pub fn matmul(self) -> Precision {
        match self {
            TrainPrecision::F32 => Precision::F32,
            _ => Precision::Tf32,
        }
    }

    /// Refuses a precision the device cannot run, saying what it can.
    pub fn check<R: Runtime>(self, client: &ComputeClient<R>) -> std::result::Result<(), String> {
        let ok = match self {
            TrainPrecision::Bf16 => supports::<R, half::bf16>(client),
            TrainPrecision::F16 => supports::<R, half::f16>(client),
            TrainPrecision::F32 | TrainPrecision::Tf32 => true,
        };
        if ok {
            return Ok(());
        }
        let alternatives = if supports::<R, half::f16>(client) {
            "\"f16\" (mixed precision with loss scaling) or \"f32\""
        } else {
            "\"f32\""
        };
        Err(format!(
            "precision \"{self}\": this device has no {self} arithmetic; use {alternatives}"
        ))
    }
}

fn supports<R: Runtime, F: CubePrimitive>(client: &ComputeClient<R>) -> bool {
    client
        .properties()
        .supports_type(F::as_type_native_unchecked().storage_type())
}

impl std::fmt::Display for TrainPrecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TrainPrecision::Bf16 => "bf16",
            TrainPrecision::F16 => "f16",
            TrainPrecision::F32 => "f32",
            TrainPrecision::Tf32 => "tf32",
        })
    }
}

impl std::str::FromStr for TrainPrecision {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "bf16" => Ok(TrainPrecision::Bf16),
            "f16" => Ok(TrainPrecision::F16),
            "f32" => Ok(TrainPrecision::F32),
            "tf32" => Ok(TrainPrecision::Tf32),
            other => Err(format!(
                "unknown precision {other:?}: use one of {}",
                TrainPrecision::NAMES.join(", ")
            )),
        }
    }
}

/// Dynamic loss scaling for f16 (as PyTorch's `GradScaler`): the loss
/// gradient is multiplied by `scale` so that small gradients survive f16;
/// a step whose scaled gradients overflow (a non-finite norm) is skipped
/// and the scale halved, and after `GROWTH_INTERVAL` good steps in a row
/// it doubles.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LossScale {
    pub scale: f32,
    /// Good steps since the scale last changed.
    pub good_steps: u32,
}

impl Default for LossScale {
    fn default() -> Self {
        LossScale {
            scale: 65536.0,
            good_steps: 0,
        }
    }
}

impl LossScale {
    pub const GROWTH_INTERVAL: u32 = 2000;
    /// The scale never falls below this (a run whose gradients overflow
    /// even at scale 1 has diverged; its loss check stops it).
    pub const MIN: f32 = 1.0;

    /// Records one step: `finite` tells whether its scaled gradients were.
    /// Returns whether the step must be skipped.
    pub fn update(&mut self, finite: bool) -> bool {
        if !finite {
            self.scale = (self.scale / 2.0).max(Self::MIN);
            self.good_steps = 0;
            return true;
        }
        self.good_steps += 1;
        if self.good_steps >= Self::GROWTH_INTERVAL {
            self.scale = (self.scale * 2.0).min(f32::MAX / 2.0);
            self.good_steps = 0;
        }
        false
    }
}

/// The learning rate of step `step` (0-based): linear warm-up over
/// `warmup_steps` (step 0 gets `lr / warmup_steps`, step `warmup_steps - 1`
/// the full `lr`), then a cosine from `lr` at step `warmup_steps` down to
/// `min_lr` at step `steps`, one past the last update (the convention of
/// Hugging Face's cosine schedule); `min_lr` after that.
pub fn learning_rate(t: &TrainSection, step: u64) -> f32 {
    if step < t.warmup_steps {
        return t.lr * (step + 1) as f32 / t.warmup_steps as f32;
    }
    let span = (t.steps - t.warmup_steps.min(t.steps)).max(1) as f64;
    let progress = ((step - t.warmup_steps) as f64 / span).min(1.0);
    let cos = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
    (t.min_lr as f64 + (t.lr - t.min_lr) as f64 * cos) as f32
}

/// How the trainer drives the loader: two worker threads, four batches
/// built ahead, one rank, stopping before `end_step`.
pub fn loader_options(end_step: u64) -> LoaderOptions {
    LoaderOptions {
        threads: 2,
        prefetch: 4,
        rank: 0,
        world: 1,
        end_step: Some(end_step),
    }
}

/// Where the time of one [`accumulate_gradients`] went, summed over its
/// micro-batches, when the caller asks. Asking adds a device sync at the
/// end of each phase (a training step has none), so that each phase's time
/// is its own.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PhaseTimes {
    pub h2d_ms: f64,
    pub forward_ms: f64,
    pub backward_ms: f64,
}

/// Forward and backward over every micro-batch of one batch (`tokens`:
/// sequences of `seq_tokens` = seq + 1 tokens, row-major, as the loader
/// delivers them), in micro-batches of the `model.batch` sequences the
/// model was built for. Gradients start from zero and add up, each
/// micro-batch's loss scaled by 1 / (number of micro-batches), so `grads`
/// ends holding the gradient of the whole batch's mean loss (times the
/// model's loss scale, if it has one), which is returned.
pub fn accumulate_gradients<R: Runtime, F: Float + CubeElement>(
    model: &mut DeviceModel<R, F>,
    tokens: &[u32],
    seq_tokens: usize,
    times: Option<&mut PhaseTimes>,
) -> Result<f32> {
    let log = StepLog::new(&model.client, 1);
    accumulate_gradients_logged(model, tokens, seq_tokens, times, &log, 0)?;
    Ok(log.download(1)?.0[0])
}

/// [`accumulate_gradients`] without a read-back: the batch's mean loss is
/// left in `log` at `slot`, for the host to read with the other steps of
/// its logging interval.
pub fn accumulate_gradients_logged<R: Runtime, F: Float + CubeElement>(
    model: &mut DeviceModel<R, F>,
    tokens: &[u32],
    seq_tokens: usize,
    times: Option<&mut PhaseTimes>,
    log: &StepLog<R>,
    slot: usize,
) -> Result<()> {
    accumulate_share(model, tokens, seq_tokens, times, log, slot, 1)
}

/// [`accumulate_gradients_logged`] for this rank's share of a batch split
/// over `world` ranks: each micro-batch's loss and gradient weighted by
/// 1 / (micro-batches of all ranks), so that the ranks' sums, added, are
/// the whole batch's.
pub(crate) fn accumulate_share<R: Runtime, F: Float + CubeElement>(
    model: &mut DeviceModel<R, F>,
    tokens: &[u32],
    seq_tokens: usize,
    mut times: Option<&mut PhaseTimes>,
    log: &StepLog<R>,
    slot: usize,
    world: usize,
) -> Result<()> {
    let (micro, seq) = (model.batch, model.seq);
    let sequences = tokens.len().checked_div(seq_tokens).unwrap_or(0);
    if seq_tokens != seq + 1
        || sequences * seq_tokens != tokens.len()
        || sequences == 0
        || !sequences.is_multiple_of(micro)
    {
        return Err(TrainError::Shape {
            detail: format!(
                "{} tokens in sequences of {seq_tokens} do not split into micro-batches of {micro} sequences of {} tokens (the model's seq {seq} + 1)",
                tokens.len(),
                seq + 1
            ),
        });
    }
    let micro_steps = sequences / micro;
    let all_steps = (micro_steps * world) as f32;
    let ms = |t: Instant| t.elapsed().as_secs_f64() * 1e3;
    let loss_scale = model.loss_scale.map_or(1.0, |s| s.scale);
    model.zero_grads()?;
    for k in 0..micro_steps {
        let (ids, targets) = split_micro(tokens, seq_tokens, k * micro, micro);
        let t0 = Instant::now();
        let ids_b = Buf::<R, u32>::upload(&model.client, &ids);
        let targets_b = Buf::<R, u32>::upload(&model.client, &targets);
        if let Some(t) = times.as_deref_mut() {
            sync(&model.client)?;
            t.h2d_ms += ms(t0);
        }
        let t1 = Instant::now();
        model.forward_to_losses(&ids_b, &targets_b, loss_scale / all_steps)?;
        model.mean_loss_into(&log.losses, slot, 1.0 / all_steps, k > 0)?;
        if let Some(t) = times.as_deref_mut() {
            sync(&model.client)?;
            t.forward_ms += ms(t1);
        }
        let t2 = Instant::now();
        model.backward(&ids_b)?;
        if let Some(t) = times.as_deref_mut() {
            sync(&model.client)?;
            t.backward_ms += ms(t2);
        }
    }
    Ok(())
}

/// Each step's mean loss and gradient norm, kept on the device over a
/// logging interval (`[train] log_every` steps) so that a training step
/// never waits for the host: the trainer reads the interval back at once
/// (and checks it for a non-finite loss) at each log point.
pub struct StepLog<R: Runtime> {
    client: ComputeClient<R>,
    /// The batch mean loss of each step of the interval `[slots]`.
    pub(crate) losses: Buf<R, f32>,
    /// The global gradient norm (unscaled, before clipping) `[slots]`.
    norms: Buf<R, f32>,
}

impl<R: Runtime> StepLog<R> {
    /// Room for `slots` steps.
    pub fn new(client: &ComputeClient<R>, slots: usize) -> Self {
        let zeros = vec![0f32; slots.max(1)];
        StepLog {
            client: client.clone(),
            losses: Buf::upload(client, &zeros),
            norms: Buf::upload(client, &zeros),
        }
    }

    /// Room, in steps.
    pub fn slots(&self) -> usize {
        self.losses.len()
    }

    /// The losses and norms of the first `n` slots (one device sync).
    pub fn download(&self, n: usize) -> prior_runtime::Result<(Vec<f32>, Vec<f32>)> {
        let mut losses = self.losses.download(&self.client)?;
        let mut norms = self.norms.download(&self.client)?;
        losses.truncate(n);
        norms.truncate(n);
        Ok((losses, norms))
    }
}

/// What one [`Optimizer::step`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimizerUpdate {
    /// The learning rate of the step.
    pub lr: f32,
    /// The global L2 norm of the gradients before clipping (0 on a
    /// skipped step, whose scaled gradients had none); None when it was
    /// left on the device in a [`StepLog`] and not read back.
    pub grad_norm: Option<f32>,
    /// Whether the update was skipped: under f16 loss scaling, the scaled
    /// gradients overflowed (the scale is halved for the next step).
    pub skipped: bool,
    /// The loss scale the step's gradients carried (None: unscaled).
    pub loss_scale: Option<f32>,
}

/// AdamW on the device: both moments in the parameters' flat layout, and
/// the parameter groups of [`ParamLayout`] (weight decay on the matrices in
/// `[0, decay_end)`, none on the norms and biases after).
///
/// In a process group each rank holds the moments of its shard alone
/// ([`Optimizer::for_rank`], ZeRO stage 1) and updates that shard of the
/// master weights; see [`crate::parallel`].
pub struct Optimizer<R: Runtime> {
    pub(crate) client: ComputeClient<R>,
    /// Moments of the parameters `shard` (`[shard.len()]`, at least one
    /// element so an empty shard still has a buffer).
    pub(crate) exp_avg: Buf<R, f32>,
    pub(crate) exp_avg_sq: Buf<R, f32>,
    /// The gradient norm, `[1]`.
    pub(crate) norm: Buf<R, f32>,
    pub(crate) decay_end: usize,
    pub(crate) total: usize,
    /// The parameters whose moments this optimizer holds and updates:
    /// all of them in a world of one.
    pub(crate) shard: std::ops::Range<usize>,
}

impl<R: Runtime> Optimizer<R> {
    /// Moments from a checkpoint (or zeros for a fresh run), each
    /// `layout.total` long.
    pub fn new(
        client: &ComputeClient<R>,
        layout: &ParamLayout,
        exp_avg: &[f32],
        exp_avg_sq: &[f32],
    ) -> Result<Self> {
        if exp_avg.len() != layout.total || exp_avg_sq.len() != layout.total {
            return Err(TrainError::Shape {
                detail: format!(
                    "optimizer moments of {} and {} values for a model of {}",
                    exp_avg.len(),
                    exp_avg_sq.len(),
                    layout.total
                ),
            });
        }
        Ok(Self::upload(
            client,
            layout,
            exp_avg,
            exp_avg_sq,
            0..layout.total,
        ))
    }

    /// [`Self::new`] for rank `rank` of `world`: the full moments of a
    /// checkpoint (whatever world wrote it) cut to this rank's
    /// [`shard_of`], the only part it keeps.
    pub fn for_rank(
        client: &ComputeClient<R>,
        layout: &ParamLayout,
        exp_avg: &[f32],
        exp_avg_sq: &[f32],
        rank: u32,
        world: u32,
    ) -> Result<Self> {
        if exp_avg.len() != layout.total || exp_avg_sq.len() != layout.total {
            // The shape error of a world of one.
            return Self::new(client, layout, exp_avg, exp_avg_sq);
        }
        let shard = shard_of(layout.total, rank, world);
        Ok(Self::upload(
            client,
            layout,
            &exp_avg[shard.clone()],
            &exp_avg_sq[shard.clone()],
            shard,
        ))
    }

    /// Zero moments: the start of a run.
    pub fn zeros(client: &ComputeClient<R>, layout: &ParamLayout) -> Self {
        let zeros = vec![0f32; layout.total];
        Self::upload(client, layout, &zeros, &zeros, 0..layout.total)
    }

    fn upload(
        client: &ComputeClient<R>,
        layout: &ParamLayout,
        exp_avg: &[f32],
        exp_avg_sq: &[f32],
        shard: std::ops::Range<usize>,
    ) -> Self {
        let held = |m: &[f32]| {
            if m.is_empty() {
                Buf::upload(client, &[0.0])
            } else {
                Buf::upload(client, m)
            }
        };
        Optimizer {
            client: client.clone(),
            exp_avg: held(exp_avg),
            exp_avg_sq: held(exp_avg_sq),
            norm: Buf::empty(client, 1),
            decay_end: layout.decay_end,
            total: layout.total,
            shard,
        }
    }

    /// Step `step` (0-based) of a run configured by `t`, on `params` with
    /// `grads` (flat, in the layout this optimizer was made for): the global
    /// gradient norm (read back: it is reported), gradients clipped to
    /// `t.grad_clip`, the learning rate of [`learning_rate`], then AdamW
    /// with `t.weight_decay` on the matrices and none on norms and biases.
    pub fn step(
        &self,
        params: &Buf<R, f32>,
        grads: &Buf<R, f32>,
        t: &TrainSection,
        step: u64,
    ) -> prior_runtime::Result<OptimizerUpdate> {
        let client = &self.client;
        optim::grad_norm(client, grads, &self.norm)?;
        let grad_norm = self.norm.download(client)?[0];
        self.update(params, grads, t, step, 1.0)?;
        Ok(OptimizerUpdate {
            lr: learning_rate(t, step),
            grad_norm: Some(grad_norm),
            skipped: false,
            loss_scale: None,
        })
    }

    /// The step of a run on `model`: [`Self::step`] with the model's loss
    /// scale (gradients unscaled in the clipping pass; an overflowed step
    /// skipped and the scale updated), then the compute-type weights
    /// refreshed from the updated master weights. The norm is read back.
    pub fn apply<F: Float + CubeElement>(
        &self,
        model: &mut DeviceModel<R, F>,
        t: &TrainSection,
        step: u64,
    ) -> prior_runtime::Result<OptimizerUpdate> {
        let log = StepLog::new(&self.client, 1);
        let up = self.apply_logged(model, t, step, &log, 0)?;
        let norm = log.download(1)?.1[0];
        Ok(OptimizerUpdate {
            grad_norm: Some(if up.skipped { 0.0 } else { norm }),
            ..up
        })
    }

    /// [`Self::apply`] with the norm left in `log` at `slot`. Only under
    /// f16 loss scaling is the norm read back (the step must know whether
    /// to skip); otherwise nothing waits for the device. `prior train` and
    /// `prior bench step` both step through here.
    pub fn apply_logged<F: Float + CubeElement>(
        &self,
        model: &mut DeviceModel<R, F>,
        t: &TrainSection,
        step: u64,
        log: &StepLog<R>,
        slot: usize,
    ) -> prior_runtime::Result<OptimizerUpdate> {
        optim::grad_norm(&self.client, &model.grads, &self.norm)?;
        let up = self.update_shard(model, t, step, log, slot)?;
        if !up.skipped {
            model.refresh_weights()?;
        }
        Ok(up)
    }

    /// The step after the gradient norm is in `self.norm`: the norm logged,
    /// the loss scale's verdict, then clipping and AdamW on this
    /// optimizer's shard of the master weights (the compute-type weights
    /// are left to the caller to refresh).
    pub(crate) fn update_shard<F: Float + CubeElement>(
        &self,
        model: &mut DeviceModel<R, F>,
        t: &TrainSection,
        step: u64,
        log: &StepLog<R>,
        slot: usize,
    ) -> prior_runtime::Result<OptimizerUpdate> {
        let client = &self.client;
        let lr = learning_rate(t, step);
        let loss_scale = model.loss_scale.map(|s| s.scale);
        let scale = loss_scale.unwrap_or(1.0);
        optim::record_scalar(client, &self.norm, &log.norms, slot, 1.0 / scale)?;
        let mut grad_norm = None;
        if let Some(ls) = model.loss_scale.as_mut() {
            let scaled_norm = self.norm.download(client)?[0];
            grad_norm = Some(scaled_norm / scale);
            if ls.update(scaled_norm.is_finite()) {
                return Ok(OptimizerUpdate {
                    lr,
                    grad_norm: Some(0.0),
                    skipped: true,
                    loss_scale,
                });
            }
        }
        self.update(&model.params, &model.grads, t, step, 1.0 / scale)?;
        Ok(OptimizerUpdate {
            lr,
            grad_norm,
            skipped: false,
            loss_scale,
        })
    }

    /// Clipping (with unscaling by `inv_scale`) and AdamW in one pass per
    /// parameter group within this optimizer's shard, after the norm of
    /// `grads` has been computed into `self.norm`; `grads` is left as it was.
    fn update(
        &self,
        params: &Buf<R, f32>,
        grads: &Buf<R, f32>,
        t: &TrainSection,
        step: u64,
        inv_scale: f32,
    ) -> prior_runtime::Result<()> {
        let client = &self.client;
        let (decayed, plain) = adamw_groups(t, step);
        let (d, total, shard) = (self.decay_end, self.total, &self.shard);
        for (group, h) in [(0..d, decayed), (d..total, plain)] {
            let start = group.start.max(shard.start);
            let end = group.end.min(shard.end);
            if start >= end {
                continue;
            }
            let (len, held) = (end - start, start - shard.start);
            optim::adamw_clipped(
                client,
                &params.view(start, len),
                &grads.view(start, len),
                &self.exp_avg.view(held, len),
                &self.exp_avg_sq.view(held, len),
                &self.norm,
                t.grad_clip,
                inv_scale,
                h,
            )?;
        }
        Ok(())
    }

    /// Both moments of this optimizer's shard (all of them in a world of
    /// one), for a checkpoint; [`Self::gather_moments`] in a group.
    pub fn download(&self) -> prior_runtime::Result<(Vec<f32>, Vec<f32>)> {
        let n = self.shard.len();
        let mut m = self.exp_avg.download(&self.client)?;
        let mut v = self.exp_avg_sq.download(&self.client)?;
        m.truncate(n);
        v.truncate(n);
        Ok((m, v))
    }
}

/// AdamW's hyperparameters for step `step` (0-based) of a run configured
/// by `t`: the matrices' group (`t.weight_decay`), then the norms' and
/// biases' (no decay). The device optimizer and the native one both step
/// with these.
pub(crate) fn adamw_groups(t: &TrainSection, step: u64) -> (AdamW, AdamW) {
    let decayed = AdamW {
        lr: learning_rate(t, step),
        beta1: t.beta1,
        beta2: t.beta2,
        eps: t.eps,
        weight_decay: t.weight_decay,
        step: (step + 1) as u32,
    };
    (
        decayed,
        AdamW {
            weight_decay: 0.0,
            ..decayed
        },
    )
}

/// A step whose loss and norm are still on the device, in its [`StepLog`]
/// slot, until the next log point.
struct PendingStep {
    /// 1-based, as in metrics.jsonl.
    step: u64,
    wait_ms: f64,
    update: OptimizerUpdate,
}

/// What a finished (or stopped) run reports.
#[derive(Debug, Clone, Serialize)]
pub struct TrainSummary {
    pub steps: u64,
    pub resumed_from: Option<u64>,
    pub final_loss: f32,
    pub checkpoint: Option<String>,
    pub device: String,
}

/// The precision `cfg` trains at on this device (`train.precision`, or
/// the device's default), refused with the config named when the device
/// cannot run it.
pub fn resolve_precision<R: Runtime>(
    client: &ComputeClient<R>,
    cfg: &TrainConfig,
) -> Result<TrainPrecision> {
    let Some(p) = cfg.train.precision else {
        return Ok(TrainPrecision::default_for(client));
    };
    p.check(client).map_err(|e| {
        let detail = format!("train.{e}");
        match &cfg.model.source {
            Some(path) => TrainError::Config {
                path: path.clone(),
                detail,
            },
            None => TrainError::Model { detail },
        }
    })?;
    Ok(p)
}

/// The precision `cfg` trains at on this device and the device memory
/// its model takes per micro-batch on one rank of `world` (what `prior
/// train` prints before the first step).
pub fn memory_plan<R: Runtime>(
    client: &ComputeClient<R>,
    cfg: &TrainConfig,
    world: u32,
) -> Result<(TrainPrecision, MemoryPlan)> {
    let precision = resolve_precision(client, cfg)?;
    let (spec, corpus) = MixSpec::load(&cfg.data.mix)?;
    let vocab = corpus.manifest().tokenizer.vocab_size as usize;
    let (model_cfg, _) = cfg
        .model
        .resolve(vocab)
        .map_err(|detail| TrainError::Model { detail })?;
    let (micro, seq) = (cfg.train.micro_batch, spec.seq_len as usize);
    let plan = match precision {
        TrainPrecision::Bf16 => DeviceModel::<R, half::bf16>::memory_plan(&model_cfg, micro, seq),
        TrainPrecision::F16 => DeviceModel::<R, half::f16>::memory_plan(&model_cfg, micro, seq),
        _ => DeviceModel::<R, f32>::memory_plan(&model_cfg, micro, seq),
    };
    let n_params = ParamLayout::new(&model_cfg).total;
    Ok((precision, plan.sharded(n_params, world)))
}

/// Runs (or resumes) training. `on_step` sees every step's metrics.
pub fn train<R: Runtime>(
    client: ComputeClient<R>,
    device_name: &str,
    cfg: &TrainConfig,
    config_text: &str,
    resume: bool,
    on_step: &mut dyn FnMut(&StepMetrics),
) -> Result<TrainSummary> {
    let mut single = Group::single();
    train_data_parallel(
        client,
        device_name,
        cfg,
        config_text,
        resume,
        &mut single,
        on_step,
    )
}

/// [`train`] as one rank of a data-parallel `group`: each rank reads its
/// slice of every global batch and computes its micro-batches; the sum
/// (see [`crate::parallel`]) gives every rank the same step. Rank 0 alone
/// writes metrics.jsonl and checkpoints (whole, with the world size they
/// were written at), and `on_step` runs there only. Every rank reads the
/// same checkpoint directory on resume, whatever the world size it was
/// written at.
pub fn train_data_parallel<R: Runtime>(
    client: ComputeClient<R>,
    device_name: &str,
    cfg: &TrainConfig,
    config_text: &str,
    resume: bool,
    group: &mut Group,
    on_step: &mut dyn FnMut(&StepMetrics),
) -> Result<TrainSummary> {
    let precision = resolve_precision(&client, cfg)?;
    let run = Run {
        device_name,
        cfg,
        config_text,
        resume,
        precision,
        group,
    };
    match precision {
        TrainPrecision::Bf16 => train_in::<R, half::bf16>(client, run, on_step),
        TrainPrecision::F16 => train_in::<R, half::f16>(client, run, on_step),
        TrainPrecision::F32 | TrainPrecision::Tf32 => train_in::<R, f32>(client, run, on_step),
    }
}

/// What [`train`] hands the loop of its compute type.
struct Run<'a> {
    device_name: &'a str,
    cfg: &'a TrainConfig,
    config_text: &'a str,
    resume: bool,
    precision: TrainPrecision,
    group: &'a mut Group,
}

fn train_in<R: Runtime, F: Float + CubeElement>(
    client: ComputeClient<R>,
    run: Run<'_>,
    on_step: &mut dyn FnMut(&StepMetrics),
) -> Result<TrainSummary> {
    let micro = run.cfg.train.micro_batch;
    let memory = prior_runtime::device::device_memory(&client);
    let mut prep = prepare(&run, |model_cfg, batch, seq| {
        DeviceModel::<R, F>::fit_memory(
            model_cfg,
            (micro, seq),
            memory,
            Some(batch),
            "train.micro_batch",
        )
        .map(|_| ())
        .map_err(|detail| TrainError::Memory { detail })
    })?;
    let mut model = DeviceModel::<R, F>::with_compute_type(
        client.clone(),
        prep.model_cfg,
        &prep.params,
        micro,
        prep.seq,
    )?;
    model.precision = run.precision.matmul();
    if let (Some(saved), Some(_)) = (prep.loss_scale, model.loss_scale) {
        // Resumed where the run was, so a resumed f16 run skips the steps
        // the uninterrupted one would.
        model.loss_scale = Some(saved);
    }
    // ZeRO-1: each rank keeps the moments of its shard alone.
    let (rank, world) = (run.group.rank(), run.group.world());
    let optimizer = Optimizer::for_rank(&client, &prep.layout, &prep.m, &prep.v, rank, world)?;
    // The device holds them now; the host copies go before the first step.
    (prep.params, prep.m, prep.v) = (Vec::new(), Vec::new(), Vec::new());
    let log = StepLog::new(&client, run.cfg.train.log_every as usize);
    let peak = prior_runtime::device::peak_flops(run.device_name).map(|p| p.0);
    let engine = DeviceEngine {
        model,
        optimizer,
        log,
    };
    run_loop(prep, engine, run, peak, on_step)
}

/// [`train`] on the native CPU backend ([`crate::native`]): the same loop,
/// metrics and checkpoints, each step computed on the host in f32. One
/// process only (`group` must be a world of one).
pub fn train_native(
    cfg: &TrainConfig,
    config_text: &str,
    resume: bool,
    group: &mut Group,
    on_step: &mut dyn FnMut(&StepMetrics),
) -> Result<TrainSummary> {
    let refuse = |detail: String| match &cfg.model.source {
        Some(path) => TrainError::Config {
            path: path.clone(),
            detail,
        },
        None => TrainError::Model { detail },
    };
    if let Some(p) = cfg.train.precision.filter(|p| *p != TrainPrecision::F32) {
        return Err(refuse(format!(
            "train.precision = {p}: the native CPU backend trains in f32 (set precision = \"f32\" or leave it out)"
        )));
    }
    if group.world() > 1 {
        return Err(TrainError::Config {
            path: cfg.data.mix.clone(),
            detail: format!(
                "a world of {} ranks: the native CPU backend trains in one process; data-parallel CPU runs use device = \"wgpu\" (see docs/distributed.md)",
                group.world()
            ),
        });
    }
    let device_name = crate::native::device_name();
    let run = Run {
        device_name: &device_name,
        cfg,
        config_text,
        resume,
        precision: TrainPrecision::F32,
        group,
    };
    let mut prep = prepare(&run, |_, _, _| Ok(()))?;
    let model = NativeModel::new(
        prep.model_cfg,
        std::mem::take(&mut prep.params),
        std::mem::take(&mut prep.m),
        std::mem::take(&mut prep.v),
        prep.seq,
    )?;
    let engine = NativeEngine {
        model,
        slots: cfg.train.log_every as usize,
        log: Vec::new(),
    };
    run_loop(prep, engine, run, None, on_step)
}

/// What the training loop needs of the hardware its steps run on: the
/// cubecl device model with its optimizer ([`DeviceEngine`]), or the
/// native CPU model ([`NativeEngine`]). Everything else (the loader,
/// metrics, checkpoints, resume) is the loop's own, shared by both.
trait StepEngine {
    /// Steps whose loss and norm are held until [`Self::read_log`].
    fn log_slots(&self) -> usize;
    /// One step of `group`'s data-parallel run: this rank's share of the
    /// batch's gradient, summed over the ranks, then the optimizer; the
    /// loss and norm are held at `slot`.
    fn step(
        &mut self,
        group: &mut Group,
        tokens: &[u32],
        seq_tokens: usize,
        t: &TrainSection,
        step: u64,
        slot: usize,
    ) -> Result<OptimizerUpdate>;
    /// The losses and gradient norms of the first `n` slots.
    fn read_log(&mut self, n: usize) -> Result<(Vec<f32>, Vec<f32>)>;
    fn heldout_loss(&mut self, set: &HeldoutSet) -> Result<Vec<CategoryLoss>>;
    /// Both full moments on rank 0 (None elsewhere); collective.
    fn gather_moments(&mut self, group: &mut Group) -> Result<Option<(Vec<f32>, Vec<f32>)>>;
    fn params(&mut self) -> Result<Vec<f32>>;
    fn loss_scale(&self) -> Option<LossScale>;
}

struct DeviceEngine<R: Runtime, F: Float + CubeElement> {
    model: DeviceModel<R, F>,
    optimizer: Optimizer<R>,
    log: StepLog<R>,
}

impl<R: Runtime, F: Float + CubeElement> StepEngine for DeviceEngine<R, F> {
    fn log_slots(&self) -> usize {
        self.log.slots()
    }

    fn step(
        &mut self,
        group: &mut Group,
        tokens: &[u32],
        seq_tokens: usize,
        t: &TrainSection,
        step: u64,
        slot: usize,
    ) -> Result<OptimizerUpdate> {
        accumulate_data_parallel(&mut self.model, group, tokens, seq_tokens, &self.log, slot)?;
        self.optimizer
            .apply_sharded(&mut self.model, group, t, step, &self.log, slot)
    }

    fn read_log(&mut self, n: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok(self.log.download(n)?)
    }

    fn heldout_loss(&mut self, set: &HeldoutSet) -> Result<Vec<CategoryLoss>> {
        Ok(heldout_loss(&mut self.model, set)?)
    }

    fn gather_moments(&mut self, group: &mut Group) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
        self.optimizer.gather_moments(group)
    }

    fn params(&mut self) -> Result<Vec<f32>> {
        Ok(self.model.download_params()?)
    }

    fn loss_scale(&self) -> Option<LossScale> {
        self.model.loss_scale
    }
}

struct NativeEngine {
    model: NativeModel,
    /// `[train] log_every`: steps timed together, as on a device.
    slots: usize,
    /// (loss, grad norm) of each step since the last read.
    log: Vec<(f32, f32)>,
}

impl StepEngine for NativeEngine {
    fn log_slots(&self) -> usize {
        self.slots
    }

    fn step(
        &mut self,
        _group: &mut Group,
        tokens: &[u32],
        _seq_tokens: usize,
        t: &TrainSection,
        step: u64,
        _slot: usize,
    ) -> Result<OptimizerUpdate> {
        let (loss, mut grad) = self.model.loss_and_grad(tokens)?;
        let up = self.model.apply(&mut grad, t, step);
        self.log.push((loss, up.grad_norm.unwrap_or(0.0)));
        Ok(up)
    }

    fn read_log(&mut self, n: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let taken: Vec<(f32, f32)> = self.log.drain(..).collect();
        if taken.len() != n {
            return Err(TrainError::Shape {
                detail: format!("{} steps logged, {n} read", taken.len()),
            });
        }
        Ok(taken.into_iter().unzip())
    }

    fn heldout_loss(&mut self, set: &HeldoutSet) -> Result<Vec<CategoryLoss>> {
        self.model.heldout_loss(set)
    }

    fn gather_moments(&mut self, _group: &mut Group) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
        Ok(Some((
            self.model.exp_avg.clone(),
            self.model.exp_avg_sq.clone(),
        )))
    }

    fn params(&mut self) -> Result<Vec<f32>> {
        Ok(self.model.params.clone())
    }

    fn loss_scale(&self) -> Option<LossScale> {
        None
    }
}

/// A run's state before its first step: the config checked, the start
/// chosen (fresh, or the newest whole checkpoint), held-out data loaded.
struct Prepared {
    model_cfg: ModelConfig,
    layout: ParamLayout,
    /// Weights and both AdamW moments, whole (`[layout.total]` each).
    params: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    start: u64,
    loader_start: Start,
    resumed_from: Option<u64>,
    loss_scale: Option<LossScale>,
    heldout: Option<HeldoutSet>,
    sampler: Arc<Sampler>,
    root: PathBuf,
    metrics_path: PathBuf,
    eot_id: u32,
    corpus_dir: PathBuf,
    batch: usize,
    seq: usize,
}

/// Checks `run`'s config (and, through `check_fit`, that the model fits
/// the device, before anything is allocated) and loads where it starts.
fn prepare(
    run: &Run<'_>,
    check_fit: impl FnOnce(&ModelConfig, usize, usize) -> Result<()>,
) -> Result<Prepared> {
    let Run {
        cfg,
        resume,
        ref group,
        ..
    } = *run;
    let t = &cfg.train;
    let (rank, world) = (group.rank(), group.world());
    let lead = rank == 0;
    let (spec, corpus) = MixSpec::load(&cfg.data.mix)?;
    let vocab = corpus.manifest().tokenizer.vocab_size as usize;
    let eot_id = corpus.manifest().tokenizer.eot_id;
    let corpus_dir =
        std::path::absolute(corpus.dir()).unwrap_or_else(|_| corpus.dir().to_path_buf());
    let (model_cfg, init_params) =
        cfg.model
            .resolve(vocab)
            .map_err(|detail| match &cfg.model.source {
                Some(path) => TrainError::Config {
                    path: path.clone(),
                    detail,
                },
                None => TrainError::Model { detail },
            })?;
    let layout = ParamLayout::new(&model_cfg);
    let (batch, seq) = (spec.global_batch as usize, spec.seq_len as usize);
    if !batch.is_multiple_of(t.micro_batch * world as usize) {
        return Err(TrainError::Config {
            path: cfg.data.mix.clone(),
            detail: if world == 1 {
                format!(
                    "train.micro_batch {} does not divide the mix's global_batch {batch}",
                    t.micro_batch
                )
            } else {
                format!(
                    "train.micro_batch {} times the world size {world} does not divide the mix's global_batch {batch}",
                    t.micro_batch
                )
            },
        });
    }
    // Before anything is allocated, on the host or the device.
    check_fit(&model_cfg, batch, seq)?;
    let root = t.checkpoint_dir.clone();
    std::fs::create_dir_all(&root).map_err(|source| TrainError::Io {
        path: root.clone(),
        source,
    })?;
    let metrics_path = crate::metrics::path_in(&root);

    // Start fresh, or from the newest whole checkpoint.
    let sampler = Arc::new(Sampler::new(spec, corpus, None)?);
    let (params, m, v, start, loader_start, resumed_from, loss_scale) =
        match checkpoint::list(&root)?.pop().filter(|_| resume) {
            Some((_, dir)) => {
                let ck = checkpoint::load(&dir, &layout)?;
                if lead {
                    truncate(&metrics_path, ck.state.metrics_bytes)?;
                }
                let step = ck.state.step;
                (
                    ck.params,
                    ck.exp_avg,
                    ck.exp_avg_sq,
                    step,
                    // The schedule state is the global batch's; this rank
                    // takes its slice of it at this run's world size.
                    Start::Resume(ck.state.loader.resharded(rank, world)),
                    Some(step),
                    ck.state.loss_scale,
                )
            }
            None => {
                if lead {
                    truncate(&metrics_path, 0)?;
                }
                let p = init_params.unwrap_or_else(|| layout.init(&model_cfg, t.seed));
                let zeros = vec![0f32; layout.total];
                (p, zeros.clone(), zeros, 0, Start::Step(0), None, None)
            }
        };
    let heldout = match (&t.eval_corpus, t.eval_every) {
        (Some(dir), every) if every > 0 => Some(HeldoutSet::load(
            dir,
            seq,
            t.eval_tokens,
            model_cfg.vocab_size,
            None,
        )?),
        _ => None,
    };
    Ok(Prepared {
        model_cfg,
        layout,
        params,
        m,
        v,
        start,
        loader_start,
        resumed_from,
        loss_scale,
        heldout,
        sampler,
        root,
        metrics_path,
        eot_id,
        corpus_dir,
        batch,
        seq,
    })
}

/// The loop itself, on any engine: read a batch, step, and at each log
/// point write the steps' metrics (checked for a non-finite loss first),
/// the held-out loss and a checkpoint.
fn run_loop<E: StepEngine>(
    prep: Prepared,
    mut engine: E,
    run: Run<'_>,
    peak: Option<f64>,
    on_step: &mut dyn FnMut(&StepMetrics),
) -> Result<TrainSummary> {
    let Run {
        device_name,
        cfg,
        config_text,
        group,
        ..
    } = run;
    let Prepared {
        model_cfg,
        layout,
        start,
        loader_start,
        resumed_from,
        heldout,
        sampler,
        root,
        metrics_path,
        eot_id,
        corpus_dir,
        batch,
        seq,
        ..
    } = prep;
    let t = &cfg.train;
    let (rank, world) = (group.rank(), group.world());
    let lead = rank == 0;
    // Every rank must start from the same step (one checkpoint directory).
    let lead_start = group.broadcast(&start.to_le_bytes())?;
    if lead_start != start.to_le_bytes() {
        return Err(TrainError::Config {
            path: root.clone(),
            detail: format!(
                "rank {rank} starts at step {start} but rank 0 at step {}: every rank must see the same checkpoint_dir",
                u64::from_le_bytes(lead_start.try_into().unwrap_or_default())
            ),
        });
    }
    let mut loader = Loader::new(
        sampler,
        loader_start,
        &LoaderOptions {
            rank,
            world,
            ..loader_options(t.steps)
        },
    )?;
    let mut last_ck: Option<PathBuf> = checkpoint::list(&root)?
        .pop()
        .map(|c| c.1)
        .filter(|_| resumed_from.is_some());
    let mut final_loss = f32::NAN;
    let mut step = start;
    let tokens_per_step = (batch * seq) as f64;
    let flops_per_token = {
        let (six_n, attn) = model_cfg.flops_per_token(seq);
        six_n + attn
    };
    let slots = engine.log_slots().max(1);
    let mut pending: Vec<PendingStep> = Vec::with_capacity(slots);
    let mut interval_start = Instant::now();
    while step < t.steps {
        let t0 = Instant::now();
        let Some(b) = loader.next_batch()? else { break };
        let wait = t0.elapsed().as_secs_f64() * 1e3;
        let slot = pending.len();
        let update = engine.step(group, &b.tokens, b.seq_tokens, t, step, slot)?;
        step += 1;
        pending.push(PendingStep {
            step,
            wait_ms: wait,
            update,
        });
        let eval_now = heldout.is_some() && (step % t.eval_every == 0 || step == t.steps);
        let checkpoint_now = step % t.checkpoint_every == 0 || step == t.steps;
        if !(pending.len() == slots || eval_now || checkpoint_now) {
            continue;
        }
        if !lead {
            // Rank 0 logs, evaluates and checkpoints; the others' copies of
            // the same state need no record, but their moments go into it.
            pending.clear();
            if checkpoint_now {
                engine.gather_moments(group)?;
            }
            continue;
        }
        // A log point: every pending step's loss and norm in one read,
        // checked before anything (a checkpoint) could keep a diverged state.
        let (losses, norms) = engine.read_log(pending.len())?;
        let secs = interval_start.elapsed().as_secs_f64() / pending.len() as f64;
        interval_start = Instant::now();
        for ((p, loss), norm) in pending.drain(..).zip(losses).zip(norms) {
            if !loss.is_finite() {
                return Err(TrainError::NonFinite {
                    step: p.step - 1,
                    loss,
                    last: last_ck
                        .map(|p| p.display().to_string())
                        .unwrap_or_else(|| "none (no checkpoint was written)".into()),
                });
            }
            let metrics = StepMetrics {
                step: p.step,
                loss,
                lr: p.update.lr,
                grad_norm: if p.update.skipped { 0.0 } else { norm },
                tokens_per_s: tokens_per_step / secs,
                loader_wait_ms: p.wait_ms,
                step_ms: secs * 1e3,
                mfu: peak.map(|pk| flops_per_token * tokens_per_step / secs / pk),
                loss_scale: p.update.loss_scale,
                skipped: p.update.skipped,
                world,
            };
            append_line(
                &metrics_path,
                &serde_json::to_string(&metrics).expect("metrics serialize"),
            )?;
            on_step(&metrics);
            final_loss = loss;
        }
        if let Some(set) = heldout.as_ref().filter(|_| eval_now) {
            let losses = engine.heldout_loss(set)?;
            append_line(
                &metrics_path,
                &serde_json::to_string(&EvalMetrics {
                    step,
                    heldout: losses,
                })
                .expect("metrics serialize"),
            )?;
        }
        if checkpoint_now {
            let (exp_avg, exp_avg_sq) = engine
                .gather_moments(group)?
                .expect("rank 0 gathers the moments");
            let ck = Checkpoint {
                dir: PathBuf::new(),
                state: TrainState {
                    step,
                    loader: loader.state().clone(),
                    model: model_cfg,
                    metrics_bytes: std::fs::metadata(&metrics_path)
                        .map(|m| m.len())
                        .unwrap_or(0),
                    config: config_text.to_string(),
                    seq_len: seq,
                    eot_id: Some(eot_id),
                    corpus: Some(corpus_dir.clone()),
                    loss_scale: engine.loss_scale(),
                    world,
                },
                params: engine.params()?,
                exp_avg,
                exp_avg_sq,
            };
            last_ck = Some(checkpoint::save(&root, &layout, &ck, t.keep_checkpoints)?);
        }
    }
    Ok(TrainSummary {
        steps: step,
        resumed_from,
        final_loss,
        checkpoint: last_ck.map(|p| p.display().to_string()),
        device: device_name.to_string(),
    })
}

/// Inputs and next-token targets of sequences `[first, first + n)`.
pub(crate) fn split_micro(
    tokens: &[u32],
    seq_tokens: usize,
    first: usize,
    n: usize,
) -> (Vec<u32>, Vec<u32>) {
    let seq = seq_tokens - 1;
    let mut ids = Vec::with_capacity(n * seq);
    let mut targets = Vec::with_capacity(n * seq);
    for s in first..first + n {
        let row = &tokens[s * seq_tokens..(s + 1) * seq_tokens];
        ids.extend_from_slice(&row[..seq]);
        targets.extend_from_slice(&row[1..]);
    }
    (ids, targets)
}

fn truncate(path: &Path, len: u64) -> Result<()> {
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(path)
        .map_err(|source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    f.set_len(len).map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn append_line(path: &Path, line: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    writeln!(f, "{line}").map_err(|source| TrainError::Io {
        path: path.to_path_buf(),
        source,
    })
}
