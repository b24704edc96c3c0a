//! The model on a device: forward and hand-written backward over the
//! runtime's kernels, llm.c style, in a compute type `F` (f32, bf16 or f16)
//! with f32 master weights.
//!
//! Four flat buffers in one [`ParamLayout`]: the f32 master weights (what
//! the optimizer updates and checkpoints hold), the f32 gradients, and the
//! compute-type copy of the weights the kernels read (the master buffer
//! itself when `F` is f32; otherwise [`DeviceModel::refresh_weights`] casts
//! it after each optimizer step). Every tensor of the weights and the
//! gradients is resolved to a view once, at construction ([`Tensors`]).
//! Activations are in `F`; LayerNorm statistics, the attention's softmax
//! statistics, the losses and every sum are f32. Each activation buffer is
//! allocated once for the (batch, seq) the model was built for, so a step
//! allocates nothing new; where the backward reuses one for another
//! gradient, the code says so by binding it under the gradient's name.
//!
//! **The logits never exist whole in training.** The unembedding, the
//! cross-entropy and their backward run in chunks of `head_rows` rows
//! (as Liger-Kernel's fused linear cross-entropy does): each chunk's logits
//! are computed, turned into their gradient in place, and consumed by the
//! two backward matmuls before the next chunk reuses the buffer. At
//! pythia-1b the whole f32 logits of a micro-batch of 8192 tokens would be
//! 1.65 GB; a chunk is at most [`HEAD_CHUNK_BYTES`]. Only
//! [`DeviceModel::forward_logits`] (evaluation, parity tests) materialises
//! them all, in a buffer allocated on first use.
//!
//! Every buffer is named and sized up front ([`Need`]) and checked against
//! the device's largest-buffer limit before anything is allocated: past
//! the limit cubecl fails only at the next sync with an error that names
//! nothing. Refused, the error names the buffer, its size, the limit and
//! the largest batch that fits.

use cubecl::prelude::*;
use prior_runtime::buffer::{Buf, BufferLimit};
use prior_runtime::device::DeviceMemory;
use prior_runtime::kernels::matmul::Precision;
use prior_runtime::kernels::AttnShape;
use prior_runtime::kernels::{
    attention, cross_entropy, elementwise, embedding, gelu, layernorm, matmul, rotary,
};
use prior_runtime::{Result, RuntimeError};

use crate::config::ModelConfig;
use crate::cpu::attn_shape;
use crate::params::{layer_name, ParamLayout};
use crate::train::LossScale;

/// The name of a float type in messages ("f32", "bf16", "f16").
pub fn dtype_name<F: 'static>() -> &'static str {
    use std::any::TypeId;
    let t = TypeId::of::<F>();
    if t == TypeId::of::<f32>() {
        "f32"
    } else if t == TypeId::of::<half::bf16>() {
        "bf16"
    } else if t == TypeId::of::<half::f16>() {
        "f16"
    } else {
        std::any::type_name::<F>()
    }
}

/// The most bytes one chunk of the training head's logits takes.
pub const HEAD_CHUNK_BYTES: u64 = 256 << 20;

/// Rows per chunk of the training head for `tokens` rows of `vocab`
/// logits of `elem_bytes`: all of them when they fit in the chunk budget
/// (and the device's buffer limit), else the largest multiple of 128 that
/// does (128 at least: views into the row-major activations must start at
/// 256-byte boundaries, which every multiple of 128 rows does).
pub fn head_rows(tokens: usize, vocab: usize, elem_bytes: usize, limit: &BufferLimit) -> usize {
    let budget = HEAD_CHUNK_BYTES.min(limit.bytes);
    let fit = (budget / (vocab.max(1) * elem_bytes) as u64) as usize;
    if fit >= tokens {
        tokens.max(1)
    } else {
        (fit / 128 * 128).max(128)
    }
}

/// One kind of buffer of the model: its name in messages, its element
/// type and its length, `per_token` elements for each of the batch * seq
/// positions plus `fixed` ones.
#[derive(Debug, Clone, Copy)]
struct Need {
    name: &'static str,
    dtype: &'static str,
    elem_bytes: usize,
    per_token: usize,
    fixed: usize,
}

impl Need {
    fn label(&self) -> String {
        format!("{} {}", self.name, self.dtype)
    }

    fn len(&self, tokens: usize) -> usize {
        self.per_token * tokens + self.fixed
    }

    /// As the runtime allocates: at least one element.
    fn bytes(&self, tokens: usize) -> u64 {
        (self.len(tokens).max(1) as u64).saturating_mul(self.elem_bytes as u64)
    }

    /// The most positions this buffer fits in `limit` (`usize::MAX` when it
    /// does not grow with them, 0 when even its fixed part does not fit).
    fn max_tokens(&self, limit: &BufferLimit) -> usize {
        let elems = (limit.bytes / self.elem_bytes as u64) as usize;
        match elems.checked_sub(self.fixed) {
            None => 0,
            Some(_) if self.per_token == 0 => usize::MAX,
            Some(room) => room / self.per_token,
        }
    }
}

/// Every buffer [`DeviceModel::new`] allocates, by kind; the sizes the
/// limit check and the allocation both read.
#[derive(Debug, Clone, Copy)]
struct Needs {
    params: Need,
    grads: Need,
    /// The compute-type weights; none (`fixed` 0) when that type is f32.
    weights: Need,
    row: Need,
    qkv: Need,
    mlp: Need,
    stats: Need,
    lse: Need,
    /// One chunk of the training head's logits.
    head_logits: Need,
    losses: Need,
    dw: Need,
}

impl Needs {
    fn new(
        cfg: &ModelConfig,
        layout: &ParamLayout,
        dtype: &'static str,
        elem: usize,
        head_rows: usize,
    ) -> Self {
        let (c, v) = (cfg.d_model, cfg.vocab_size);
        let need = |name, dtype, elem_bytes, per_token, fixed| Need {
            name,
            dtype,
            elem_bytes,
            per_token,
            fixed,
        };
        let act = |name, per_token| need(name, dtype, elem, per_token, 0);
        let f32_per = |name, per_token| need(name, "f32", 4, per_token, 0);
        let f32_fixed = |name, fixed| need(name, "f32", 4, 0, fixed);
        Needs {
            params: f32_fixed("parameters [n_params]", layout.total),
            grads: f32_fixed("gradients [n_params]", layout.total),
            weights: need(
                "compute-type weights [n_params]",
                dtype,
                elem,
                0,
                if dtype == "f32" { 0 } else { layout.total },
            ),
            row: act("activation [batch*seq, d_model]", c),
            qkv: act("qkv [batch*seq, 3*d_model]", 3 * c),
            mlp: act("mlp activation [batch*seq, 4*d_model]", 4 * c),
            stats: f32_per("layernorm stats [batch*seq, 2]", 2),
            lse: f32_per("attention log-sum-exp [batch*heads*seq]", cfg.n_head),
            head_logits: head_logits_need(head_rows, v, dtype, elem),
            losses: f32_per("losses [batch*seq]", 1),
            dw: f32_fixed(
                "weight-gradient scratch [largest weight]",
                [v * c, 4 * c * c, 3 * c * c].into_iter().max().unwrap_or(1),
            ),
        }
    }

    fn all(&self) -> [Need; 11] {
        // Destructured, so a new kind of buffer cannot be left out.
        let Needs {
            params,
            grads,
            weights,
            row,
            qkv,
            mlp,
            stats,
            lse,
            head_logits,
            losses,
            dw,
        } = *self;
        [
            params,
            grads,
            weights,
            row,
            qkv,
            mlp,
            stats,
            lse,
            head_logits,
            losses,
            dw,
        ]
    }

    /// Refuses a (batch, seq) at which some buffer exceeds `limit`, naming
    /// the largest such buffer and the largest batch that would fit.
    fn check(&self, limit: &BufferLimit, batch: usize, seq: usize) -> Result<()> {
        check_needs(&self.all(), limit, batch, seq)
    }
}

/// One chunk `[head_rows, vocab]` of the training head's logits.
fn head_logits_need(
    head_rows: usize,
    vocab: usize,
    dtype: &'static str,
    elem_bytes: usize,
) -> Need {
    Need {
        name: "logits chunk [head_rows, vocab]",
        dtype,
        elem_bytes,
        per_token: 0,
        fixed: head_rows * vocab,
    }
}

/// The whole logits `[batch*seq, vocab]` of [`DeviceModel::forward_logits`].
fn full_logits_need(vocab: usize, dtype: &'static str, elem_bytes: usize) -> Need {
    Need {
        name: "logits [batch*seq, vocab]",
        dtype,
        elem_bytes,
        per_token: vocab,
        fixed: 0,
    }
}

/// Refuses a (batch, seq) at which some buffer of `all` exceeds `limit`,
/// naming the largest such buffer and the largest batch that would fit.
fn check_needs(all: &[Need], limit: &BufferLimit, batch: usize, seq: usize) -> Result<()> {
    let tokens = batch * seq;
    // Reversed, so that of equal sizes the first listed is named.
    let Some(worst) = all
        .iter()
        .rev()
        .filter(|n| n.bytes(tokens) > limit.bytes)
        .max_by_key(|n| n.bytes(tokens))
    else {
        return Ok(());
    };
    let max_tokens = all.iter().map(|n| n.max_tokens(limit)).min().unwrap_or(0);
    let advice = if all
        .iter()
        .any(|n| n.per_token == 0 && n.max_tokens(limit) == 0)
    {
        "it does not shrink with the batch or the sequence: this model does not fit \
         this device's buffers"
            .to_string()
    } else if max_tokens / seq >= 1 {
        format!(
            "the largest batch that fits at seq {seq} is {} (lower the batch, or \
             accumulate micro-batches of that size)",
            max_tokens / seq
        )
    } else {
        format!(
            "not even batch 1 fits at seq {seq}: at batch 1 the longest sequence \
             that fits is {max_tokens}"
        )
    };
    Err(RuntimeError::BufferTooLarge {
        name: worst.label(),
        bytes: worst.bytes(tokens),
        limit: *limit,
        advice,
    })
}

/// One layer's tensors, as views of a flat buffer in the layout (the
/// weights in `F`, or the f32 gradients). Shapes are `[out, in]` for
/// matrices, as Hugging Face stores them.
struct LayerTensors<R: Runtime, T: CubeElement> {
    ln1_w: Buf<R, T>,      // input_layernorm.weight [C]
    ln1_b: Buf<R, T>,      // input_layernorm.bias [C]
    qkv_w: Buf<R, T>,      // attention.query_key_value.weight [3C, C]
    qkv_b: Buf<R, T>,      // attention.query_key_value.bias [3C]
    attn_out_w: Buf<R, T>, // attention.dense.weight [C, C]
    attn_out_b: Buf<R, T>, // attention.dense.bias [C]
    ln2_w: Buf<R, T>,      // post_attention_layernorm.weight [C]
    ln2_b: Buf<R, T>,      // post_attention_layernorm.bias [C]
    fc_w: Buf<R, T>,       // mlp.dense_h_to_4h.weight [4C, C]
    fc_b: Buf<R, T>,       // mlp.dense_h_to_4h.bias [4C]
    proj_w: Buf<R, T>,     // mlp.dense_4h_to_h.weight [C, 4C]
    proj_b: Buf<R, T>,     // mlp.dense_4h_to_h.bias [C]
}

/// Every tensor of the model, resolved once from the layout.
struct Tensors<R: Runtime, T: CubeElement> {
    embed_in: Buf<R, T>, // gpt_neox.embed_in.weight [V, C]
    layers: Vec<LayerTensors<R, T>>,
    lnf_w: Buf<R, T>,     // gpt_neox.final_layer_norm.weight [C]
    lnf_b: Buf<R, T>,     // gpt_neox.final_layer_norm.bias [C]
    embed_out: Buf<R, T>, // embed_out.weight [V, C]
}

impl<R: Runtime, T: CubeElement> Tensors<R, T> {
    fn resolve(flat: &Buf<R, T>, layout: &ParamLayout, n_layer: usize) -> Self {
        let view = |name: &str| {
            let t = layout.get(name);
            flat.view(t.offset, t.len())
        };
        let layers = (0..n_layer)
            .map(|l| {
                let v = |what: &str| view(&layer_name(l, what));
                LayerTensors {
                    ln1_w: v("input_layernorm.weight"),
                    ln1_b: v("input_layernorm.bias"),
                    qkv_w: v("attention.query_key_value.weight"),
                    qkv_b: v("attention.query_key_value.bias"),
                    attn_out_w: v("attention.dense.weight"),
                    attn_out_b: v("attention.dense.bias"),
                    ln2_w: v("post_attention_layernorm.weight"),
                    ln2_b: v("post_attention_layernorm.bias"),
                    fc_w: v("mlp.dense_h_to_4h.weight"),
                    fc_b: v("mlp.dense_h_to_4h.bias"),
                    proj_w: v("mlp.dense_4h_to_h.weight"),
                    proj_b: v("mlp.dense_4h_to_h.bias"),
                }
            })
            .collect();
        Tensors {
            embed_in: view("gpt_neox.embed_in.weight"),
            layers,
            lnf_w: view("gpt_neox.final_layer_norm.weight"),
            lnf_b: view("gpt_neox.final_layer_norm.bias"),
            embed_out: view("embed_out.weight"),
        }
    }
}

/// What one layer's forward keeps for its backward (N = batch * seq).
struct LayerActs<R: Runtime, F: Float + CubeElement> {
    resid: Buf<R, F>,       // the residual stream entering the layer [N, C]
    ln1_out: Buf<R, F>,     // input LayerNorm of resid [N, C]
    ln1_stats: Buf<R, f32>, // its (mean, rstd) [N, 2]
    qkv: Buf<R, F>,         // fused q, k, v after rotary [N, 3C] ([B, T, H, 3, D])
    attn_y: Buf<R, F>,      // attention output, before its projection [N, C]
    lse: Buf<R, f32>,       // the softmax's log-sum-exp [B, H, T]
    ln2_out: Buf<R, F>,     // post-attention LayerNorm of resid [N, C]
    ln2_stats: Buf<R, f32>, // [N, 2]
    fc_pre: Buf<R, F>,      // MLP up-projection, before GELU [N, 4C]
    fc_act: Buf<R, F>,      // GELU of it [N, 4C]
}

pub struct DeviceModel<R: Runtime, F: Float + CubeElement = f32> {
    pub cfg: ModelConfig,
    pub layout: ParamLayout,
    pub client: ComputeClient<R>,
    /// Master weights `[n_params]` f32 in `layout`: what the optimizer
    /// updates and checkpoints hold.
    pub params: Buf<R, f32>,
    /// Gradients `[n_params]` f32 in `layout`.
    pub grads: Buf<R, f32>,
    /// The weights the kernels read, `[n_params]` in `F`: `params` itself
    /// when `F` is f32, else a copy [`Self::refresh_weights`] casts from it.
    weights: Buf<R, F>,
    /// Views of `weights` and of `grads`, one per tensor.
    w: Tensors<R, F>,
    g: Tensors<R, f32>,
    pub batch: usize,
    pub seq: usize,
    /// How f32 matmuls run (TF32 tensor cores or exact f32); by default
    /// [`Precision::default_for`] the device. Half-precision operands
    /// always multiply on tensor cores where the device has them.
    pub precision: Precision,
    /// Dynamic loss scaling (f16 training); None trains unscaled.
    pub loss_scale: Option<LossScale>,
    shape: AttnShape,
    tables: rotary::RotaryTables<R>,
    layers: Vec<LayerActs<R, F>>,
    resid_final: Buf<R, F>, // the residual stream after the last layer [N, C]
    lnf_out: Buf<R, F>,     // final LayerNorm of it [N, C]
    lnf_stats: Buf<R, f32>, // [N, 2]
    /// Rows of the logits that exist at once in training (see the module doc).
    head_rows: usize,
    /// `[head_rows, V]`: one chunk's logits, then their gradient.
    head_logits: Buf<R, F>,
    /// `[N, V]`: every logit, for [`Self::forward_logits`] only; allocated
    /// on its first call.
    full_logits: std::cell::RefCell<Option<Buf<R, F>>>,
    pub(crate) losses: Buf<R, f32>, // per position [N]
    /// The attention branch's output `[N, C]` in the forward; in the
    /// backward, the gradient of whichever LayerNorm output or attention
    /// output is being propagated (each dead once its consumer has run).
    branch: Buf<R, F>,
    // Backward scratch.
    d_resid: Buf<R, F>,  // gradient of the residual stream [N, C]
    d_tmp: Buf<R, F>,    // a LayerNorm's input gradient [N, C]
    d_fc_act: Buf<R, F>, // [N, 4C]
    d_fc_pre: Buf<R, F>, // [N, 4C]
    d_qkv: Buf<R, F>,    // [N, 3C]
    delta: Buf<R, f32>,  // rowsum(dO * O) of the attention [B, H, T]
    dw: Buf<R, f32>,     // one weight's gradient before it is added [largest weight]
    /// When set, every kernel is followed by a device sync and its time
    /// is added up by name (see [`Self::profile_kernels`]); off in training.
    /// Set by [`Self::zero_grads`] until the next backward has written
    /// every gradient (see [`Self::accumulating`]).
    grads_fresh: std::cell::Cell<bool>,
    profile: std::cell::RefCell<Option<KernelProfile>>,
}

/// Time per kernel, summed over the launches since profiling started.
#[derive(Debug, Clone, Default)]
pub struct KernelProfile {
    last: Option<std::time::Instant>,
    /// name -> (milliseconds, launches)
    pub totals: std::collections::BTreeMap<&'static str, (f64, u64)>,
}

/// Device memory of a model for one micro-batch, by what it holds (bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MemoryPlan {
    pub parameters: u64,
    pub gradients: u64,
    pub optimizer_state: u64,
    pub compute_weights: u64,
    pub activations: u64,
}

impl MemoryPlan {
    /// The plan of one rank of `world` (ZeRO-1, [`crate::parallel`]): the
    /// moments of the largest shard of the `n_params` parameters, rank 0's.
    pub fn sharded(self, n_params: usize, world: u32) -> MemoryPlan {
        let shard = crate::parallel::shard_of(n_params, 0, world).len() as u64;
        MemoryPlan {
            optimizer_state: self.optimizer_state.min(2 * 4 * shard),
            ..self
        }
    }

    pub fn total(&self) -> u64 {
        self.parameters
            + self.gradients
            + self.optimizer_state
            + self.compute_weights
            + self.activations
    }
}

impl std::fmt::Display for MemoryPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use prior_runtime::buffer::mib;
        write!(
            f,
            "parameters {} + gradients {} + AdamW moments {} + compute-type weights {} + activations {} = {}",
            mib(self.parameters),
            mib(self.gradients),
            mib(self.optimizer_state),
            mib(self.compute_weights),
            mib(self.activations),
            mib(self.total())
        )
    }
}

impl<R: Runtime> DeviceModel<R, f32> {
    /// The model in f32 (see [`DeviceModel::with_compute_type`]).
    pub fn new(
        client: ComputeClient<R>,
        cfg: ModelConfig,
        params: &[f32],
        batch: usize,
        seq: usize,
    ) -> Result<Self> {
        Self::with_compute_type(client, cfg, params, batch, seq)
    }
}

impl<R: Runtime, F: Float + CubeElement> DeviceModel<R, F> {
    /// The memory [`Self::with_compute_type`] would allocate for `cfg` at
    /// micro-batch `batch` of `seq` tokens, plus the optimizer's moments.
    pub fn memory_plan(cfg: &ModelConfig, batch: usize, seq: usize) -> MemoryPlan {
        let layout = ParamLayout::new(cfg);
        let n = batch * seq;
        let elem = std::mem::size_of::<F>();
        let unlimited = BufferLimit {
            bytes: u64::MAX,
            what: "no limit",
        };
        let rows = head_rows(n, cfg.vocab_size, elem, &unlimited);
        let needs = Needs::new(cfg, &layout, dtype_name::<F>(), elem, rows);
        let b = |need: Need| need.len(n) as u64 * need.elem_bytes as u64;
        let per_layer =
            4 * b(needs.row) + b(needs.qkv) + 2 * b(needs.mlp) + 2 * b(needs.stats) + b(needs.lse);
        let head = 2 * b(needs.row) + b(needs.stats) + b(needs.head_logits) + b(needs.losses);
        let scratch =
            3 * b(needs.row) + 2 * b(needs.mlp) + b(needs.qkv) + b(needs.lse) + b(needs.dw);
        MemoryPlan {
            parameters: b(needs.params),
            gradients: b(needs.grads),
            optimizer_state: 2 * b(needs.params),
            compute_weights: b(needs.weights),
            activations: cfg.n_layer as u64 * per_layer + head + scratch,
        }
    }

    /// [`Self::memory_plan`] at micro-batch `batch`, checked against the
    /// device's `memory` (unchecked when that is unknown). Refused with a
    /// message naming the largest micro-batch that fits (one dividing
    /// `divides`, the global batch, when given; `knob` names the setting),
    /// or saying that none does.
    pub fn fit_memory(
        cfg: &ModelConfig,
        (batch, seq): (usize, usize),
        memory: Option<DeviceMemory>,
        divides: Option<usize>,
        knob: &str,
    ) -> std::result::Result<MemoryPlan, String> {
        use prior_runtime::buffer::mib;
        let plan = Self::memory_plan(cfg, batch, seq);
        let Some(memory) = memory.filter(|m| plan.total() > m.bytes) else {
            return Ok(plan);
        };
        let fits = (1..batch)
            .rev()
            .filter(|m| divides.is_none_or(|g| g % m == 0))
            .find(|&m| Self::memory_plan(cfg, m, seq).total() <= memory.bytes);
        let advice = match fits {
            Some(m) => format!(
                "the largest {knob} that fits is {m} ({}{})",
                mib(Self::memory_plan(cfg, m, seq).total()),
                divides.map_or(String::new(), |g| format!(", dividing global_batch {g}"))
            ),
            None => format!(
                "no {knob} fits: the weights, gradients and AdamW moments alone take {}; use a smaller model or a device with more memory",
                mib(plan.total() - plan.activations)
            ),
        };
        Err(format!(
            "{} for {} training at {knob} {batch} of {seq} tokens ({plan}) exceeds {} ({}): {advice}",
            mib(plan.total()),
            dtype_name::<F>(),
            mib(memory.bytes),
            memory.source,
        ))
    }

    /// Allocates the model for `batch` sequences of `seq` tokens with f32
    /// master weights `params` and activations in `F`, or refuses with
    /// [`RuntimeError::BufferTooLarge`] (before allocating anything) when a
    /// buffer would exceed the device's limit. f16 turns on dynamic loss
    /// scaling.
    pub fn with_compute_type(
        client: ComputeClient<R>,
        cfg: ModelConfig,
        params: &[f32],
        batch: usize,
        seq: usize,
    ) -> Result<Self> {
        let layout = ParamLayout::new(&cfg);
        assert_eq!(
            params.len(),
            layout.total,
            "parameter buffer does not match the layout"
        );
        let dtype = dtype_name::<F>();
        let n = batch * seq;
        let limit = BufferLimit::of(&client);
        let elem = std::mem::size_of::<F>();
        let rows = head_rows(n, cfg.vocab_size, elem, &limit);
        let needs = Needs::new(&cfg, &layout, dtype, elem, rows);
        needs.check(&limit, batch, seq)?;
        let shape = attn_shape(&cfg, batch, seq);
        let act = |need: Need| Buf::<R, F>::empty_named(&client, need.len(n), &need.label());
        let f32s = |need: Need| Buf::<R, f32>::empty_named(&client, need.len(n), &need.label());
        let layers = (0..cfg.n_layer)
            .map(|_| {
                Ok(LayerActs {
                    resid: act(needs.row)?,
                    ln1_out: act(needs.row)?,
                    ln1_stats: f32s(needs.stats)?,
                    qkv: act(needs.qkv)?,
                    attn_y: act(needs.row)?,
                    lse: f32s(needs.lse)?,
                    ln2_out: act(needs.row)?,
                    ln2_stats: f32s(needs.stats)?,
                    fc_pre: act(needs.mlp)?,
                    fc_act: act(needs.mlp)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let master = Buf::<R, f32>::upload_named(&client, params, &needs.params.label())?;
        let weights = match master.as_same_type::<F>() {
            Some(same) => same,
            None => Buf::<R, F>::empty_named(&client, layout.total, &needs.weights.label())?,
        };
        let grads =
            Buf::<R, f32>::upload_named(&client, &vec![0.0; layout.total], &needs.grads.label())?;
        let model = DeviceModel {
            tables: rotary::RotaryTables::new(&client, seq, cfg.rotary_dims()),
            w: Tensors::resolve(&weights, &layout, cfg.n_layer),
            g: Tensors::resolve(&grads, &layout, cfg.n_layer),
            params: master,
            weights,
            grads,
            layers,
            resid_final: act(needs.row)?,
            lnf_out: act(needs.row)?,
            lnf_stats: f32s(needs.stats)?,
            head_rows: rows,
            head_logits: Buf::<R, F>::empty_named(
                &client,
                needs.head_logits.fixed,
                &needs.head_logits.label(),
            )?,
            full_logits: std::cell::RefCell::new(None),
            losses: f32s(needs.losses)?,
            branch: act(needs.row)?,
            d_resid: act(needs.row)?,
            d_tmp: act(needs.row)?,
            d_fc_act: act(needs.mlp)?,
            d_fc_pre: act(needs.mlp)?,
            d_qkv: act(needs.qkv)?,
            delta: f32s(needs.lse)?,
            dw: f32s(needs.dw)?,
            profile: std::cell::RefCell::new(None),
            grads_fresh: std::cell::Cell::new(false),
            loss_scale: (dtype == "f16").then(LossScale::default),
            shape,
            layout,
            cfg,
            precision: Precision::default_for(&client),
            client,
            batch,
            seq,
        };
        model.refresh_weights()?;
        Ok(model)
    }

    /// The compute type's name ("f32", "bf16", "f16").
    pub fn compute_type(&self) -> &'static str {
        dtype_name::<F>()
    }

    /// Casts the master weights into the compute-type copy the kernels
    /// read (nothing to do in f32, where they are one buffer). The
    /// optimizer step calls it after updating `params`; so must anything
    /// else that writes `params`.
    pub fn refresh_weights(&self) -> Result<()> {
        if self.weights.as_same_type::<f32>().is_none() {
            self.run("elementwise::cast", || {
                elementwise::cast(&self.client, &self.params, &self.weights)
            })?;
        }
        Ok(())
    }

    /// Starts (or stops, returning what was measured) per-kernel timing.
    /// Each kernel then waits for the device, so a profiled step is slower
    /// than a real one; use it to see shares, not speed.
    pub fn profile_kernels(&self, on: bool) -> Option<KernelProfile> {
        let old = self.profile.borrow_mut().take();
        if on {
            let _ = prior_runtime::buffer::sync(&self.client);
            *self.profile.borrow_mut() = Some(KernelProfile {
                last: Some(std::time::Instant::now()),
                ..Default::default()
            });
        }
        old
    }

    /// Every launch goes through here: the one place profiling looks.
    fn run<T>(&self, kernel: &'static str, launch: impl FnOnce() -> T) -> T {
        let out = launch();
        let mut p = self.profile.borrow_mut();
        if let Some(p) = p.as_mut() {
            let _ = prior_runtime::buffer::sync(&self.client);
            let now = std::time::Instant::now();
            let ms = p.last.map_or(0.0, |t| (now - t).as_secs_f64() * 1e3);
            let e = p.totals.entry(kernel).or_default();
            e.0 += ms;
            e.1 += 1;
            p.last = Some(now);
        }
        out
    }

    /// Start a new sum of gradients. The next backward writes each
    /// gradient instead of adding to it (its weight products straight from
    /// the matmul, with no scratch and no add), so only the embedding's
    /// gradient, of which a batch touches only its tokens' rows, is filled
    /// with zeros here.
    pub fn zero_grads(&self) -> Result<()> {
        self.run("elementwise::fill", || {
            elementwise::fill(&self.client, &self.g.embed_in, 0.0)
        })?;
        self.grads_fresh.set(true);
        Ok(())
    }

    /// Whether the backward under way adds to `grads` (false for the first
    /// micro-batch after [`Self::zero_grads`], which overwrites them).
    fn accumulating(&self) -> bool {
        !self.grads_fresh.get()
    }

    /// `c[m, n] = op(a) op(b)` (see [`matmul::matmul`]).
    #[allow(clippy::too_many_arguments)]
    fn matmul<O: Float + CubeElement>(
        &self,
        a: &Buf<R, F>,
        b: &Buf<R, F>,
        c: &Buf<R, O>,
        (m, k, n): (usize, usize, usize),
        ta: bool,
        tb: bool,
    ) -> Result<()> {
        self.run("matmul::matmul", || {
            matmul::matmul(&self.client, a, b, c, m, k, n, ta, tb, self.precision)
        })?;
        Ok(())
    }

    /// `y = x wᵀ + b` over `rows` rows (w stored `[n_out, n_in]`).
    fn linear(
        &self,
        x: &Buf<R, F>,
        w: &Buf<R, F>,
        b: Option<&Buf<R, F>>,
        y: &Buf<R, F>,
        (rows, n_in, n_out): (usize, usize, usize),
    ) -> Result<()> {
        self.matmul(x, w, y, (rows, n_in, n_out), false, true)?;
        if let Some(b) = b {
            self.run("elementwise::bias_add", || {
                elementwise::bias_add(&self.client, y, b)
            })?;
        }
        Ok(())
    }

    /// `gw = dyᵀ x`, or `gw += dyᵀ x` when `accumulate`: the weight
    /// gradient of [`Self::linear`] in f32. A fresh gradient comes straight
    /// out of the matmul; a sum goes through the `dw` scratch and an add,
    /// since the matmul cannot add to its output.
    fn weight_grad(
        &self,
        dy: &Buf<R, F>,
        x: &Buf<R, F>,
        gw: &Buf<R, f32>,
        (rows, n_in, n_out): (usize, usize, usize),
        accumulate: bool,
    ) -> Result<()> {
        if !accumulate {
            return self.matmul(dy, x, gw, (n_out, rows, n_in), true, false);
        }
        let dw = self.dw.view(0, n_out * n_in);
        self.matmul(dy, x, &dw, (n_out, rows, n_in), true, false)?;
        self.run("elementwise::axpy", || {
            elementwise::axpy(&self.client, gw, &dw, 1.0)
        })?;
        Ok(())
    }

    /// The backward of [`Self::linear`] but for dx: [`Self::weight_grad`]
    /// and `gb += column sums of dy`.
    fn linear_param_grads(
        &self,
        dy: &Buf<R, F>,
        x: &Buf<R, F>,
        gw: &Buf<R, f32>,
        gb: &Buf<R, f32>,
        shape: (usize, usize, usize),
    ) -> Result<()> {
        let accumulate = self.accumulating();
        self.weight_grad(dy, x, gw, shape, accumulate)?;
        self.run("elementwise::bias_bwd", || {
            elementwise::bias_bwd(&self.client, dy, gb, accumulate)
        })?;
        Ok(())
    }

    /// Forward pass, mean cross-entropy against `targets`, and the head's
    /// backward: the unembedding's weight gradient is added into `grads`
    /// and the final LayerNorm's output gradient left for
    /// [`Self::backward`], for the loss times `grad_scale` (1 / number of
    /// micro-batches when accumulating, times the loss scale when there is
    /// one).
    pub fn forward(&mut self, ids: &[u32], targets: &[u32], grad_scale: f32) -> Result<f32> {
        let ids_b = Buf::<R, u32>::upload(&self.client, ids);
        let targets_b = Buf::<R, u32>::upload(&self.client, targets);
        self.forward_device(&ids_b, &targets_b, grad_scale)
    }

    /// [`Self::forward`] on ids and targets already on the device.
    pub fn forward_device(
        &mut self,
        ids: &Buf<R, u32>,
        targets: &Buf<R, u32>,
        grad_scale: f32,
    ) -> Result<f32> {
        self.forward_to_losses(ids, targets, grad_scale)?;
        let losses = self.losses.download(&self.client)?;
        let n = losses.len();
        Ok((losses.iter().map(|&x| x as f64).sum::<f64>() / n as f64) as f32)
    }

    /// [`Self::forward_device`] without the read-back: the per-position
    /// losses stay on the device for [`Self::mean_loss_into`].
    pub fn forward_to_losses(
        &mut self,
        ids: &Buf<R, u32>,
        targets: &Buf<R, u32>,
        grad_scale: f32,
    ) -> Result<()> {
        self.body(ids)?;
        self.head(targets, grad_scale, true)
    }

    /// `out[slot] (+)= weight * mean loss` of the last forward, on the
    /// device (`accumulate` adds to the slot instead of overwriting it).
    pub fn mean_loss_into(
        &self,
        out: &Buf<R, f32>,
        slot: usize,
        weight: f32,
        accumulate: bool,
    ) -> Result<()> {
        let n = self.losses.len() as f32;
        self.run("cross_entropy::mean_loss", || {
            cross_entropy::mean_loss(
                &self.client,
                &self.losses,
                out,
                slot,
                weight / n,
                accumulate,
            )
        })?;
        Ok(())
    }

    /// Forward pass; the cross-entropy of every position (`-log
    /// p(target)`). Nothing is computed for a backward.
    pub fn forward_token_losses(&mut self, ids: &[u32], targets: &[u32]) -> Result<Vec<f32>> {
        let ids_b = Buf::<R, u32>::upload(&self.client, ids);
        let targets_b = Buf::<R, u32>::upload(&self.client, targets);
        self.body(&ids_b)?;
        self.head(&targets_b, 0.0, false)?;
        self.losses.download(&self.client)
    }

    /// The unembedding and the loss, `head_rows` rows at a time: each
    /// chunk's logits, their cross-entropy into `losses` (the logits
    /// becoming their gradient, times `grad_scale / N`), and with
    /// `backward` that gradient's two products: `embed_out`'s weight
    /// gradient (added) and the final LayerNorm's output gradient (into
    /// `d_tmp`), before the next chunk overwrites the logits.
    fn head(&self, targets: &Buf<R, u32>, grad_scale: f32, backward: bool) -> Result<()> {
        let (c, v, n) = (self.cfg.d_model, self.cfg.vocab_size, self.batch * self.seq);
        let (w, g) = (&self.w, &self.g);
        for first in (0..n).step_by(self.head_rows) {
            let rows = self.head_rows.min(n - first);
            let x = self.lnf_out.view(first * c, rows * c);
            let logits = self.head_logits.view(0, rows * v);
            self.linear(&x, &w.embed_out, None, &logits, (rows, c, v))?;
            self.run("cross_entropy::cross_entropy", || {
                cross_entropy::cross_entropy(
                    &self.client,
                    &logits,
                    &targets.view(first, rows),
                    &self.losses.view(first, rows),
                    v,
                    grad_scale / n as f32,
                )
            })?;
            if backward {
                let dlogits = &logits;
                // Later chunks add to the first's rows of the sum.
                let accumulate = self.accumulating() || first > 0;
                self.weight_grad(dlogits, &x, &g.embed_out, (rows, c, v), accumulate)?;
                let d_lnf_out = self.d_tmp.view(first * c, rows * c);
                self.matmul(
                    dlogits,
                    &w.embed_out,
                    &d_lnf_out,
                    (rows, v, c),
                    false,
                    false,
                )?;
            }
        }
        Ok(())
    }

    /// Forward pass up to every logit (`batch * seq * vocab`, left on the
    /// device for [`Self::logits_row`] and [`Self::download_logits`]). The
    /// whole-logits buffer is allocated on the first call, or refused with
    /// the largest batch whose logits fit the device's buffers.
    pub fn forward_logits(&mut self, ids: &[u32]) -> Result<()> {
        let (c, v, n) = (self.cfg.d_model, self.cfg.vocab_size, self.batch * self.seq);
        if self.full_logits.borrow().is_none() {
            let need = full_logits_need(v, dtype_name::<F>(), std::mem::size_of::<F>());
            check_needs(
                &[need],
                &BufferLimit::of(&self.client),
                self.batch,
                self.seq,
            )?;
            let buf = Buf::<R, F>::empty_named(&self.client, need.len(n), &need.label())?;
            *self.full_logits.borrow_mut() = Some(buf);
        }
        let ids_b = Buf::<R, u32>::upload(&self.client, ids);
        self.body(&ids_b)?;
        let logits = self.full_logits.borrow().clone().expect("allocated above");
        self.linear(&self.lnf_out, &self.w.embed_out, None, &logits, (n, c, v))
    }

    /// Everything before the head: the embedding, every layer and the
    /// final LayerNorm (into `lnf_out`).
    fn body(&self, ids: &Buf<R, u32>) -> Result<()> {
        let (c, n) = (self.cfg.d_model, self.batch * self.seq);
        let (cl, w, eps) = (&self.client, &self.w, self.cfg.layer_norm_eps);
        let first = self.layers.first().map_or(&self.resid_final, |a| &a.resid);
        self.run("embedding::embedding_fwd", || {
            embedding::embedding_fwd(cl, &w.embed_in, ids, first, c)
        })?;
        for (l, (a, lw)) in self.layers.iter().zip(&w.layers).enumerate() {
            // GPT-NeoX's parallel residual: next = resid + attn(ln1(resid))
            // + mlp(ln2(resid)).
            let next = self
                .layers
                .get(l + 1)
                .map_or(&self.resid_final, |b| &b.resid);
            self.run("layernorm::layernorm_fwd", || {
                layernorm::layernorm_fwd(
                    cl,
                    &a.resid,
                    &lw.ln1_w,
                    &lw.ln1_b,
                    &a.ln1_out,
                    &a.ln1_stats,
                    eps,
                )
            })?;
            self.linear(
                &a.ln1_out,
                &lw.qkv_w,
                Some(&lw.qkv_b),
                &a.qkv,
                (n, c, 3 * c),
            )?;
            self.run("rotary::rotary", || {
                rotary::rotary(cl, &a.qkv, &self.tables, self.shape, false)
            })?;
            self.run("attention::attention_fwd", || {
                attention::attention_fwd(cl, &a.qkv, &a.attn_y, &a.lse, self.shape)
            })?;
            let attn_out = &self.branch;
            self.linear(
                &a.attn_y,
                &lw.attn_out_w,
                Some(&lw.attn_out_b),
                attn_out,
                (n, c, c),
            )?;
            self.run("layernorm::layernorm_fwd", || {
                layernorm::layernorm_fwd(
                    cl,
                    &a.resid,
                    &lw.ln2_w,
                    &lw.ln2_b,
                    &a.ln2_out,
                    &a.ln2_stats,
                    eps,
                )
            })?;
            self.linear(&a.ln2_out, &lw.fc_w, None, &a.fc_pre, (n, c, 4 * c))?;
            self.run("gelu::bias_gelu_fwd", || {
                gelu::bias_gelu_fwd(cl, &a.fc_pre, &lw.fc_b, &a.fc_act)
            })?;
            self.linear(&a.fc_act, &lw.proj_w, None, next, (n, 4 * c, c))?;
            self.run("elementwise::residual_add", || {
                elementwise::residual_add(cl, next, &lw.proj_b, attn_out, &a.resid)
            })?;
        }
        self.run("layernorm::layernorm_fwd", || {
            layernorm::layernorm_fwd(
                cl,
                &self.resid_final,
                &w.lnf_w,
                &w.lnf_b,
                &self.lnf_out,
                &self.lnf_stats,
                eps,
            )
        })?;
        Ok(())
    }

    /// Backward of the last [`Self::forward`] (whose head left the final
    /// LayerNorm's output gradient in `d_tmp`); adds into `grads`, or
    /// writes them for the first micro-batch after [`Self::zero_grads`].
    pub fn backward(&mut self, ids: &Buf<R, u32>) -> Result<()> {
        let (c, n) = (self.cfg.d_model, self.batch * self.seq);
        let (cl, w, g) = (&self.client, &self.w, &self.g);
        let accumulate = self.accumulating();
        let d_lnf_out = &self.d_tmp;
        self.run("layernorm::layernorm_bwd", || {
            layernorm::layernorm_bwd(
                cl,
                d_lnf_out,
                &self.resid_final,
                &w.lnf_w,
                &self.lnf_stats,
                &self.d_resid,
                &g.lnf_w,
                &g.lnf_b,
                accumulate,
            )
        })?;
        for (a, (lw, lg)) in self.layers.iter().zip(w.layers.iter().zip(&g.layers)).rev() {
            // d_resid is the gradient of this layer's output: it flows into
            // the MLP branch, the attention branch and the skip alike.
            let d_out = &self.d_resid;
            // MLP branch.
            self.linear_param_grads(d_out, &a.fc_act, &lg.proj_w, &lg.proj_b, (n, 4 * c, c))?;
            self.matmul(
                d_out,
                &lw.proj_w,
                &self.d_fc_act,
                (n, c, 4 * c),
                false,
                false,
            )?;
            self.run("gelu::gelu_bias_bwd", || {
                gelu::gelu_bias_bwd(
                    cl,
                    &self.d_fc_act,
                    &a.fc_pre,
                    &self.d_fc_pre,
                    &lg.fc_b,
                    accumulate,
                )
            })?;
            self.weight_grad(
                &self.d_fc_pre,
                &a.ln2_out,
                &lg.fc_w,
                (n, c, 4 * c),
                accumulate,
            )?;
            let d_ln2_out = &self.branch;
            self.matmul(
                &self.d_fc_pre,
                &lw.fc_w,
                d_ln2_out,
                (n, 4 * c, c),
                false,
                false,
            )?;
            self.run("layernorm::layernorm_bwd", || {
                layernorm::layernorm_bwd(
                    cl,
                    d_ln2_out,
                    &a.resid,
                    &lw.ln2_w,
                    &a.ln2_stats,
                    &self.d_tmp,
                    &lg.ln2_w,
                    &lg.ln2_b,
                    accumulate,
                )
            })?;
            // Attention branch.
            self.linear_param_grads(d_out, &a.attn_y, &lg.attn_out_w, &lg.attn_out_b, (n, c, c))?;
            let d_attn_y = &self.branch;
            self.matmul(d_out, &lw.attn_out_w, d_attn_y, (n, c, c), false, false)?;
            // Both branches have read d_out: the MLP LayerNorm's input
            // gradient joins the skip's.
            self.run("elementwise::axpy", || {
                elementwise::axpy(cl, d_out, &self.d_tmp, 1.0)
            })?;
            self.run("attention::attention_bwd", || {
                attention::attention_bwd(
                    cl,
                    d_attn_y,
                    &a.qkv,
                    &a.attn_y,
                    &a.lse,
                    &self.delta,
                    &self.d_qkv,
                    self.shape,
                )
            })?;
            self.run("rotary::rotary", || {
                rotary::rotary(cl, &self.d_qkv, &self.tables, self.shape, true)
            })?;
            self.linear_param_grads(&self.d_qkv, &a.ln1_out, &lg.qkv_w, &lg.qkv_b, (n, c, 3 * c))?;
            let d_ln1_out = &self.branch;
            self.matmul(
                &self.d_qkv,
                &lw.qkv_w,
                d_ln1_out,
                (n, 3 * c, c),
                false,
                false,
            )?;
            self.run("layernorm::layernorm_bwd", || {
                layernorm::layernorm_bwd(
                    cl,
                    d_ln1_out,
                    &a.resid,
                    &lw.ln1_w,
                    &a.ln1_stats,
                    &self.d_tmp,
                    &lg.ln1_w,
                    &lg.ln1_b,
                    accumulate,
                )
            })?;
            // d_resid becomes the gradient of this layer's input.
            self.run("elementwise::axpy", || {
                elementwise::axpy(cl, d_out, &self.d_tmp, 1.0)
            })?;
        }
        let grouping = self.run("embedding::sort", || {
            embedding::EmbeddingGrouping::new(cl, ids)
        });
        self.run("embedding::embedding_bwd", || {
            embedding::embedding_bwd(cl, &self.d_resid, &grouping, &g.embed_in, c)
        })?;
        self.grads_fresh.set(false);
        Ok(())
    }

    /// `b` on the host as f32 (cast on the device first when `F` is not).
    fn to_host(&self, b: &Buf<R, F>) -> Result<Vec<f32>> {
        match b.as_same_type::<f32>() {
            Some(f) => f.download(&self.client),
            None => {
                let out = Buf::<R, f32>::empty(&self.client, b.len());
                elementwise::cast(&self.client, b, &out)?;
                out.download(&self.client)
            }
        }
    }

    /// One position's logits after [`Self::forward_logits`]: row
    /// `seq_index * seq + position`. None when the vocabulary is not a
    /// multiple of the device's view alignment (then download them all).
    pub fn logits_row(&self, row: usize) -> Option<Result<Vec<f32>>> {
        let v = self.cfg.vocab_size;
        if !v.is_multiple_of(Buf::<R, F>::view_align()) {
            return None;
        }
        let logits = self.full_logits.borrow().clone()?;
        Some(self.to_host(&logits.view(row * v, v)))
    }

    pub fn download_params(&self) -> Result<Vec<f32>> {
        self.params.download(&self.client)
    }

    pub fn download_grads(&self) -> Result<Vec<f32>> {
        self.grads.download(&self.client)
    }

    /// The logits of the last [`Self::forward_logits`] (empty before the
    /// first).
    pub fn download_logits(&self) -> Result<Vec<f32>> {
        match self.full_logits.borrow().as_ref() {
            Some(logits) => self.to_host(logits),
            None => Ok(Vec::new()),
        }
    }

    /// Rows of the logits that exist at once in training.
    pub fn head_rows(&self) -> usize {
        self.head_rows
    }

    /// Trains with head chunks of `rows` rows (a multiple of 128, or every
    /// row at once), reallocating the chunk buffer: to compare chunkings.
    pub fn set_head_rows(&mut self, rows: usize) -> Result<()> {
        let n = self.batch * self.seq;
        let rows = rows.min(n).max(1);
        if rows < n && !rows.is_multiple_of(128) {
            return Err(RuntimeError::Kernel {
                kernel: "head",
                detail: format!(
                    "head chunks of {rows} rows: use a multiple of 128, or {n} (every row)"
                ),
            });
        }
        let need = head_logits_need(
            rows,
            self.cfg.vocab_size,
            dtype_name::<F>(),
            std::mem::size_of::<F>(),
        );
        self.head_logits = Buf::<R, F>::empty_named(&self.client, need.fixed, &need.label())?;
        self.head_rows = rows;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lavapipe's: wgpu's maxStorageBufferBindingSize there.
    const LAVAPIPE: BufferLimit = BufferLimit {
        bytes: 128 << 20,
        what: "storage-binding limit",
    };

    /// The training buffers of `preset` at `tokens` rows, f32.
    fn needs(preset: &str, vocab: usize, tokens: usize) -> Needs {
        let cfg = ModelConfig::preset(preset, vocab).unwrap();
        let rows = head_rows(tokens, cfg.vocab_size, 4, &LAVAPIPE);
        Needs::new(&cfg, &ParamLayout::new(&cfg), "f32", 4, rows)
    }

    type Wgpu = cubecl::wgpu::WgpuRuntime;

    #[test]
    fn a_plan_past_the_device_names_the_largest_micro_batch_that_fits() {
        let cfg = ModelConfig::preset("pythia-160m", 50304).unwrap();
        let plan = |m| DeviceModel::<Wgpu, f32>::memory_plan(&cfg, m, 2048).total();
        // Room for micro-batch 5 but not 6.
        let memory = DeviceMemory {
            bytes: (plan(5) + plan(6)) / 2,
            source: "a test's device",
        };
        let fit = |m, divides| {
            DeviceModel::<Wgpu, f32>::fit_memory(
                &cfg,
                (m, 2048),
                Some(memory),
                divides,
                "micro-batch",
            )
        };
        assert_eq!(fit(5, None).unwrap().total(), plan(5));
        let err = fit(16, None).unwrap_err();
        assert!(
            err.contains("largest micro-batch that fits is 5") && err.contains("a test's device"),
            "{err}"
        );
        // Within a global batch of 16, micro-batches must divide it: 4.
        let err = fit(16, Some(16)).unwrap_err();
        assert!(err.contains("fits is 4"), "{err}");
        let tiny = DeviceMemory {
            bytes: 1 << 20,
            source: "a test's device",
        };
        let err =
            DeviceModel::<Wgpu, f32>::fit_memory(&cfg, (2, 2048), Some(tiny), None, "micro-batch")
                .unwrap_err();
        assert!(err.contains("no micro-batch fits"), "{err}");
        // An unknown device memory checks nothing.
        assert!(
            DeviceModel::<Wgpu, f32>::fit_memory(&cfg, (64, 2048), None, None, "micro-batch")
                .is_ok()
        );
    }

    /// The bar for activation recomputation: pythia-1b at seq 2048
    /// and micro-batch 4 in bf16 must fit an 80 GB card without it.
    #[test]
    fn pythia_1b_at_seq_2048_micro_batch_4_fits_80_gb_in_bf16() {
        let cfg = ModelConfig::preset("pythia-1b", 50304).unwrap();
        let plan = DeviceModel::<Wgpu, half::bf16>::memory_plan(&cfg, 4, 2048);
        eprintln!("pythia-1b, seq 2048, micro-batch 4, bf16: {plan}");
        assert!(plan.total() < 80_000_000_000, "{plan}");
        // The f32 state alone (master, gradients, moments) is 16 bytes a
        // parameter; the plan counts it.
        let n = ParamLayout::new(&cfg).total as u64;
        assert!(plan.parameters + plan.gradients + plan.optimizer_state >= 16 * n);
    }

    #[test]
    fn training_never_holds_the_whole_logits() {
        // 1024 positions of a 50k vocabulary: 196.5 MiB of f32 logits,
        // past lavapipe's 128 MiB, trains in chunks of 640 rows.
        assert!(needs("tiny", 50304, 1024).check(&LAVAPIPE, 8, 128).is_ok());
        assert_eq!(head_rows(1024, 50304, 4, &LAVAPIPE), 640);
        assert_eq!(
            head_rows(1024, 50304, 2, &LAVAPIPE),
            1024,
            "f16: all at once"
        );
        assert_eq!(head_rows(4096, 50304, 2, &LAVAPIPE), 1280);
        // Small problems take one chunk, whatever their row count.
        assert_eq!(head_rows(37, 1024, 4, &LAVAPIPE), 37);
        // Past the 256 MiB budget on a device without a small limit.
        let big = BufferLimit {
            bytes: 20 << 30,
            what: "test",
        };
        assert_eq!(head_rows(8192, 50304, 4, &big), 1280);
    }

    #[test]
    fn the_whole_logits_past_the_limit_are_refused_with_the_largest_batch_that_fits() {
        let logits = [full_logits_need(50304, "f32", 4)];
        let msg = check_needs(&logits, &LAVAPIPE, 8, 128)
            .unwrap_err()
            .to_string();
        for part in [
            "logits [batch*seq, vocab] f32 buffer of 196.5 MiB (206045184 bytes)",
            "128.0 MiB storage-binding limit (134217728 bytes)",
            "the largest batch that fits at seq 128 is 5",
        ] {
            assert!(msg.contains(part), "{part:?} missing from {msg:?}");
        }
        // The batch it names does fit, and one more does not.
        assert!(check_needs(&logits, &LAVAPIPE, 5, 128).is_ok());
        assert!(check_needs(&logits, &LAVAPIPE, 6, 128).is_err());
    }

    #[test]
    fn a_sequence_too_long_for_batch_one_says_the_longest_that_fits() {
        let msg = check_needs(&[full_logits_need(50304, "f32", 4)], &LAVAPIPE, 1, 1024)
            .unwrap_err()
            .to_string();
        // 33,554,432 floats / 50,304 per position.
        assert!(
            msg.contains("not even batch 1 fits at seq 1024")
                && msg.contains("the longest sequence that fits is 667"),
            "{msg}"
        );
    }

    #[test]
    fn parameters_past_the_limit_say_no_batch_helps() {
        let msg = needs("pythia-1b", 50304, 16)
            .check(&LAVAPIPE, 1, 16)
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("parameters [n_params] f32 buffer"), "{msg}");
        assert!(msg.contains("does not fit this device's buffers"), "{msg}");
    }
}
