//! The model on a device: forward and hand-written backward over the
//! runtime's kernels, llm.c style. Parameters and gradients are one flat
//! buffer each, tensors are views of them, and every activation the
//! backward needs has its buffer allocated once for the (batch, seq) the
//! model was built for, so a step allocates nothing new.
//!
//! Every buffer is named and sized up front ([`Need`]) and checked against
//! the device's largest-buffer limit before anything is allocated: the
//! logits of a 50k vocabulary pass lavapipe's 128 MiB at a modest batch, and
//! past the limit cubecl fails only at the next sync with an error that
//! names nothing. Refused, the error names the buffer, its size, the limit
//! and the largest batch that fits.

use cubecl::prelude::*;
use prior_runtime::buffer::{Buf, BufferLimit};
use prior_runtime::kernels::matmul::Precision;
use prior_runtime::kernels::{
    attention, cross_entropy, elementwise, embedding, layernorm, matmul, rotary,
};
use prior_runtime::reference::AttnShape;
use prior_runtime::{Result, RuntimeError};

use crate::config::ModelConfig;
use crate::cpu::attn_shape;
use crate::params::{layer_name, ParamLayout};

type B<R> = Buf<R, f32>;

/// One kind of f32 buffer of the model: its name in messages and its
/// length, `per_token` elements for each of the batch * seq positions plus
/// `fixed` ones.
#[derive(Debug, Clone, Copy)]
struct Need {
    name: &'static str,
    per_token: usize,
    fixed: usize,
}

impl Need {
    fn len(&self, tokens: usize) -> usize {
        self.per_token * tokens + self.fixed
    }

    /// As the runtime allocates: at least one element.
    fn bytes(&self, tokens: usize) -> u64 {
        (self.len(tokens).max(1) as u64).saturating_mul(4)
    }

    /// The most positions this buffer fits in `limit` (`usize::MAX` when it
    /// does not grow with them, 0 when even its fixed part does not fit).
    fn max_tokens(&self, limit: &BufferLimit) -> usize {
        let elems = (limit.bytes / 4) as usize;
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
    row: Need,
    qkv: Need,
    mlp: Need,
    stats: Need,
    lse: Need,
    logits: Need,
    losses: Need,
    dw: Need,
}

impl Needs {
    fn new(cfg: &ModelConfig, layout: &ParamLayout) -> Self {
        let (c, v) = (cfg.d_model, cfg.vocab_size);
        let per = |name, per_token| Need {
            name,
            per_token,
            fixed: 0,
        };
        let fixed = |name, fixed| Need {
            name,
            per_token: 0,
            fixed,
        };
        Needs {
            params: fixed("parameters [n_params] f32", layout.total),
            grads: fixed("gradients [n_params] f32", layout.total),
            row: per("activation [batch*seq, d_model] f32", c),
            qkv: per("qkv [batch*seq, 3*d_model] f32", 3 * c),
            mlp: per("mlp activation [batch*seq, 4*d_model] f32", 4 * c),
            stats: per("layernorm stats [batch*seq, 2] f32", 2),
            lse: per("attention log-sum-exp [batch*heads*seq] f32", cfg.n_head),
            logits: per("logits [batch*seq, vocab] f32", v),
            losses: per("losses [batch*seq] f32", 1),
            dw: fixed(
                "weight-gradient scratch [largest weight] f32",
                [v * c, 4 * c * c, 3 * c * c].into_iter().max().unwrap_or(1),
            ),
        }
    }

    fn all(&self) -> [Need; 10] {
        // Destructured, so a new kind of buffer cannot be left out.
        let Needs {
            params,
            grads,
            row,
            qkv,
            mlp,
            stats,
            lse,
            logits,
            losses,
            dw,
        } = *self;
        [params, grads, row, qkv, mlp, stats, lse, logits, losses, dw]
    }

    /// Refuses a (batch, seq) at which some buffer exceeds `limit`, naming
    /// the largest such buffer and the largest batch that would fit.
    fn check(&self, limit: &BufferLimit, batch: usize, seq: usize) -> Result<()> {
        let tokens = batch * seq;
        let all = self.all();
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
            name: worst.name.to_string(),
            bytes: worst.bytes(tokens),
            limit: *limit,
            advice,
        })
    }
}

struct LayerActs<R: Runtime> {
    h: B<R>,
    a_in: B<R>,
    st1: B<R>,
    qkv: B<R>,
    y: B<R>,
    lse: B<R>,
    m_in: B<R>,
    st2: B<R>,
    u: B<R>,
    gact: B<R>,
}

pub struct DeviceModel<R: Runtime> {
    pub cfg: ModelConfig,
    pub layout: ParamLayout,
    pub client: ComputeClient<R>,
    pub params: B<R>,
    pub grads: B<R>,
    pub batch: usize,
    pub seq: usize,
    /// How f32 matmuls run (TF32 tensor cores or exact f32); by default
    /// [`Precision::default_for`] the device.
    pub precision: Precision,
    shape: AttnShape,
    tables: rotary::RotaryTables<R, f32>,
    layers: Vec<LayerActs<R>>,
    h_last: B<R>,
    hf: B<R>,
    stf: B<R>,
    logits: B<R>,
    losses: B<R>,
    // Backward scratch.
    dh: B<R>,
    dtmp: B<R>,
    d4: B<R>,
    du: B<R>,
    dqkv: B<R>,
    delta: B<R>,
    dw: B<R>,
    a_out: B<R>,
    /// When set, every kernel is followed by a device sync and its time
    /// is added up by name (see [`Self::profile_kernels`]); off in training.
    profile: std::cell::RefCell<Option<KernelProfile>>,
}

/// Time per kernel, summed over the launches since profiling started.
#[derive(Debug, Clone, Default)]
pub struct KernelProfile {
    last: Option<std::time::Instant>,
    /// name -> (milliseconds, launches)
    pub totals: std::collections::BTreeMap<&'static str, (f64, u64)>,
}

impl<R: Runtime> DeviceModel<R> {
    /// Allocates the model for `batch` sequences of `seq` tokens, or
    /// refuses with [`RuntimeError::BufferTooLarge`] (before allocating
    /// anything) when a buffer would exceed the device's limit.
    pub fn new(
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
        let needs = Needs::new(&cfg, &layout);
        needs.check(&BufferLimit::of(&client), batch, seq)?;
        let n = batch * seq;
        let shape = attn_shape(&cfg, batch, seq);
        let e = |need: Need| B::<R>::empty_named(&client, need.len(n), need.name);
        let layers = (0..cfg.n_layer)
            .map(|_| {
                Ok(LayerActs {
                    h: e(needs.row)?,
                    a_in: e(needs.row)?,
                    st1: e(needs.stats)?,
                    qkv: e(needs.qkv)?,
                    y: e(needs.row)?,
                    lse: e(needs.lse)?,
                    m_in: e(needs.row)?,
                    st2: e(needs.stats)?,
                    u: e(needs.mlp)?,
                    gact: e(needs.mlp)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let grads = B::<R>::upload_named(&client, &vec![0.0; layout.total], needs.grads.name)?;
        Ok(DeviceModel {
            tables: rotary::RotaryTables::new(&client, seq, cfg.rotary_dims()),
            params: B::<R>::upload_named(&client, params, needs.params.name)?,
            grads,
            layers,
            h_last: e(needs.row)?,
            hf: e(needs.row)?,
            stf: e(needs.stats)?,
            logits: e(needs.logits)?,
            losses: e(needs.losses)?,
            dh: e(needs.row)?,
            dtmp: e(needs.row)?,
            d4: e(needs.mlp)?,
            du: e(needs.mlp)?,
            dqkv: e(needs.qkv)?,
            delta: e(needs.lse)?,
            dw: e(needs.dw)?,
            a_out: e(needs.row)?,
            profile: std::cell::RefCell::new(None),
            shape,
            layout,
            cfg,
            precision: Precision::default_for(&client),
            client,
            batch,
            seq,
        })
    }

    fn p(&self, name: &str) -> B<R> {
        let t = self.layout.get(name);
        self.params.view(t.offset, t.len())
    }

    fn g(&self, name: &str) -> B<R> {
        let t = self.layout.get(name);
        self.grads.view(t.offset, t.len())
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

    fn mark(&self, name: &'static str) {
        let mut p = self.profile.borrow_mut();
        if let Some(p) = p.as_mut() {
            let _ = prior_runtime::buffer::sync(&self.client);
            let now = std::time::Instant::now();
            let ms = p.last.map_or(0.0, |t| (now - t).as_secs_f64() * 1e3);
            let e = p.totals.entry(name).or_default();
            e.0 += ms;
            e.1 += 1;
            p.last = Some(now);
        }
    }

    pub fn zero_grads(&self) {
        elementwise::fill(&self.client, &self.grads, 0.0);
        self.mark("elementwise::fill");
    }

    /// y = x W^T + b (W stored [out, in]).
    #[allow(clippy::too_many_arguments)]
    fn linear(
        &self,
        x: &B<R>,
        w: &str,
        b: Option<&str>,
        y: &B<R>,
        rows: usize,
        n_in: usize,
        n_out: usize,
    ) -> Result<()> {
        matmul::matmul(
            &self.client,
            x,
            &self.p(w),
            y,
            rows,
            n_in,
            n_out,
            false,
            true,
            self.precision,
        )?;
        self.mark("matmul::matmul");
        if let Some(b) = b {
            elementwise::bias_add(&self.client, y, &self.p(b));
            self.mark("elementwise::bias_add");
        }
        Ok(())
    }

    /// grad(w) += dy^T x  (the weight gradient of y = x W^T).
    fn acc_weight_grad(
        &self,
        dy: &B<R>,
        x: &B<R>,
        w: &str,
        rows: usize,
        n_in: usize,
        n_out: usize,
    ) -> Result<()> {
        let dw = self.dw.view(0, n_out * n_in);
        matmul::matmul(
            &self.client,
            dy,
            x,
            &dw,
            n_out,
            rows,
            n_in,
            true,
            false,
            self.precision,
        )?;
        self.mark("matmul::matmul");
        elementwise::axpy(&self.client, &self.g(w), &dw, 1.0);
        self.mark("elementwise::axpy");
        Ok(())
    }

    /// Forward over one micro-batch; returns the mean loss. `grad_scale`
    /// multiplies the loss gradient the backward will use (1 / number of
    /// micro-batches when accumulating).
    /// Forward pass and mean cross-entropy against `targets`; the logits
    /// buffer is left holding d(loss * grad_scale)/d(logits) for [`Self::backward`].
    pub fn forward(&mut self, ids: &[u32], targets: &[u32], grad_scale: f32) -> Result<f32> {
        let losses = self.forward_token_losses(ids, targets, grad_scale)?;
        let n = losses.len();
        Ok((losses.iter().map(|&x| x as f64).sum::<f64>() / n as f64) as f32)
    }

    /// Forward pass; the cross-entropy of every position (`-log p(target)`).
    pub fn forward_token_losses(
        &mut self,
        ids: &[u32],
        targets: &[u32],
        grad_scale: f32,
    ) -> Result<Vec<f32>> {
        let (v, n) = (self.cfg.vocab_size, self.batch * self.seq);
        self.forward_logits(ids)?;
        let cl = &self.client;
        let t = Buf::<R, u32>::upload(cl, targets);
        cross_entropy::cross_entropy(cl, &self.logits, &t, &self.losses, v, grad_scale / n as f32);
        self.mark("cross_entropy::cross_entropy");
        self.losses.download(cl)
    }

    /// [`Self::forward`] on ids and targets already on the device.
    pub fn forward_device(
        &mut self,
        ids: &Buf<R, u32>,
        targets: &Buf<R, u32>,
        grad_scale: f32,
    ) -> Result<f32> {
        let (v, n) = (self.cfg.vocab_size, self.batch * self.seq);
        self.forward_logits_device(ids)?;
        let cl = &self.client;
        cross_entropy::cross_entropy(
            cl,
            &self.logits,
            targets,
            &self.losses,
            v,
            grad_scale / n as f32,
        );
        self.mark("cross_entropy::cross_entropy");
        let losses = self.losses.download(cl)?;
        Ok((losses.iter().map(|&x| x as f64).sum::<f64>() / n as f64) as f32)
    }

    /// Forward pass up to the logits (`batch * seq * vocab`, left on the device).
    pub fn forward_logits(&mut self, ids: &[u32]) -> Result<()> {
        let ids_b = Buf::<R, u32>::upload(&self.client, ids);
        self.forward_logits_device(&ids_b)
    }

    fn forward_logits_device(&mut self, ids_b: &Buf<R, u32>) -> Result<()> {
        let (c, v, n) = (self.cfg.d_model, self.cfg.vocab_size, self.batch * self.seq);
        let cl = &self.client;
        let eps = self.cfg.layer_norm_eps;
        embedding::embedding_fwd(
            cl,
            &self.p("gpt_neox.embed_in.weight"),
            ids_b,
            &self
                .layers
                .first()
                .map_or(self.h_last.clone(), |l| l.h.clone()),
            c,
        );
        self.mark("embedding::embedding_fwd");
        for l in 0..self.cfg.n_layer {
            let a = &self.layers[l];
            let name = |w: &str| layer_name(l, w);
            layernorm::layernorm_fwd(
                cl,
                &a.h,
                &self.p(&name("input_layernorm.weight")),
                &self.p(&name("input_layernorm.bias")),
                &a.a_in,
                &a.st1,
                eps,
            );
            self.mark("layernorm::layernorm_fwd");
            self.linear(
                &a.a_in,
                &name("attention.query_key_value.weight"),
                Some(&name("attention.query_key_value.bias")),
                &a.qkv,
                n,
                c,
                3 * c,
            )?;
            rotary::rotary(cl, &a.qkv, &self.tables, self.shape, false);
            self.mark("rotary::rotary");
            attention::attention_fwd(cl, &a.qkv, &a.y, &a.lse, self.shape);
            self.mark("attention::attention_fwd");
            self.linear(
                &a.y,
                &name("attention.dense.weight"),
                Some(&name("attention.dense.bias")),
                &self.a_out,
                n,
                c,
                c,
            )?;
            layernorm::layernorm_fwd(
                cl,
                &a.h,
                &self.p(&name("post_attention_layernorm.weight")),
                &self.p(&name("post_attention_layernorm.bias")),
                &a.m_in,
                &a.st2,
                eps,
            );
            self.mark("layernorm::layernorm_fwd");
            self.linear(
                &a.m_in,
                &name("mlp.dense_h_to_4h.weight"),
                Some(&name("mlp.dense_h_to_4h.bias")),
                &a.u,
                n,
                c,
                4 * c,
            )?;
            elementwise::gelu_fwd(cl, &a.u, &a.gact);
            self.mark("elementwise::gelu_fwd");
            let next = if l + 1 < self.cfg.n_layer {
                self.layers[l + 1].h.clone()
            } else {
                self.h_last.clone()
            };
            self.linear(
                &a.gact,
                &name("mlp.dense_4h_to_h.weight"),
                Some(&name("mlp.dense_4h_to_h.bias")),
                &next,
                n,
                4 * c,
                c,
            )?;
            elementwise::axpy(cl, &next, &self.a_out, 1.0);
            self.mark("elementwise::axpy");
            elementwise::axpy(cl, &next, &a.h, 1.0);
            self.mark("elementwise::axpy");
        }
        layernorm::layernorm_fwd(
            cl,
            &self.h_last,
            &self.p("gpt_neox.final_layer_norm.weight"),
            &self.p("gpt_neox.final_layer_norm.bias"),
            &self.hf,
            &self.stf,
            eps,
        );
        self.mark("layernorm::layernorm_fwd");
        self.linear(&self.hf, "embed_out.weight", None, &self.logits, n, c, v)
    }

    /// Backward of the last forward; adds into `grads`.
    pub fn backward(&mut self, ids: &[u32]) -> Result<()> {
        let (c, v, n) = (self.cfg.d_model, self.cfg.vocab_size, self.batch * self.seq);
        let cl = self.client.clone();
        let cl = &cl;
        // self.logits now holds dlogits.
        self.acc_weight_grad(&self.logits, &self.hf, "embed_out.weight", n, c, v)?;
        matmul::matmul(
            cl,
            &self.logits,
            &self.p("embed_out.weight"),
            &self.dtmp,
            n,
            v,
            c,
            false,
            false,
            self.precision,
        )?;
        self.mark("matmul::matmul");
        layernorm::layernorm_bwd(
            cl,
            &self.dtmp,
            &self.h_last,
            &self.p("gpt_neox.final_layer_norm.weight"),
            &self.stf,
            &self.dh,
            &self.g("gpt_neox.final_layer_norm.weight"),
            &self.g("gpt_neox.final_layer_norm.bias"),
            true,
        );
        self.mark("layernorm::layernorm_bwd");
        for l in (0..self.cfg.n_layer).rev() {
            let a = &self.layers[l];
            let name = |w: &str| layer_name(l, w);
            // MLP branch: dm = dh.
            self.acc_weight_grad(
                &self.dh,
                &a.gact,
                &name("mlp.dense_4h_to_h.weight"),
                n,
                4 * c,
                c,
            )?;
            elementwise::bias_bwd(cl, &self.dh, &self.g(&name("mlp.dense_4h_to_h.bias")), true);
            self.mark("elementwise::bias_bwd");
            matmul::matmul(
                cl,
                &self.dh,
                &self.p(&name("mlp.dense_4h_to_h.weight")),
                &self.d4,
                n,
                c,
                4 * c,
                false,
                false,
                self.precision,
            )?;
            self.mark("matmul::matmul");
            elementwise::gelu_bwd(cl, &self.d4, &a.u, &self.du);
            self.mark("elementwise::gelu_bwd");
            self.acc_weight_grad(
                &self.du,
                &a.m_in,
                &name("mlp.dense_h_to_4h.weight"),
                n,
                c,
                4 * c,
            )?;
            elementwise::bias_bwd(cl, &self.du, &self.g(&name("mlp.dense_h_to_4h.bias")), true);
            self.mark("elementwise::bias_bwd");
            let dm_in = self.a_out.clone();
            matmul::matmul(
                cl,
                &self.du,
                &self.p(&name("mlp.dense_h_to_4h.weight")),
                &dm_in,
                n,
                4 * c,
                c,
                false,
                false,
                self.precision,
            )?;
            self.mark("matmul::matmul");
            layernorm::layernorm_bwd(
                cl,
                &dm_in,
                &a.h,
                &self.p(&name("post_attention_layernorm.weight")),
                &a.st2,
                &self.dtmp,
                &self.g(&name("post_attention_layernorm.weight")),
                &self.g(&name("post_attention_layernorm.bias")),
                true,
            );
            self.mark("layernorm::layernorm_bwd");
            // Attention branch: da_out = dh. dy reuses a_out's buffer.
            self.acc_weight_grad(&self.dh, &a.y, &name("attention.dense.weight"), n, c, c)?;
            elementwise::bias_bwd(cl, &self.dh, &self.g(&name("attention.dense.bias")), true);
            self.mark("elementwise::bias_bwd");
            let dy = self.a_out.clone();
            matmul::matmul(
                cl,
                &self.dh,
                &self.p(&name("attention.dense.weight")),
                &dy,
                n,
                c,
                c,
                false,
                false,
                self.precision,
            )?;
            self.mark("matmul::matmul");
            // The MLP's LayerNorm gradient joins the residual now that dh
            // has been read by both branches.
            elementwise::axpy(cl, &self.dh, &self.dtmp, 1.0);
            self.mark("elementwise::axpy");
            attention::attention_bwd(
                cl,
                &dy,
                &a.qkv,
                &a.y,
                &a.lse,
                &self.delta,
                &self.dqkv,
                self.shape,
            );
            self.mark("attention::attention_bwd");
            rotary::rotary(cl, &self.dqkv, &self.tables, self.shape, true);
            self.mark("rotary::rotary");
            self.acc_weight_grad(
                &self.dqkv,
                &a.a_in,
                &name("attention.query_key_value.weight"),
                n,
                c,
                3 * c,
            )?;
            elementwise::bias_bwd(
                cl,
                &self.dqkv,
                &self.g(&name("attention.query_key_value.bias")),
                true,
            );
            self.mark("elementwise::bias_bwd");
            let da_in = self.a_out.clone();
            matmul::matmul(
                cl,
                &self.dqkv,
                &self.p(&name("attention.query_key_value.weight")),
                &da_in,
                n,
                3 * c,
                c,
                false,
                false,
                self.precision,
            )?;
            self.mark("matmul::matmul");
            layernorm::layernorm_bwd(
                cl,
                &da_in,
                &a.h,
                &self.p(&name("input_layernorm.weight")),
                &a.st1,
                &self.dtmp,
                &self.g(&name("input_layernorm.weight")),
                &self.g(&name("input_layernorm.bias")),
                true,
            );
            self.mark("layernorm::layernorm_bwd");
            elementwise::axpy(cl, &self.dh, &self.dtmp, 1.0);
            self.mark("elementwise::axpy");
        }
        let grouping = embedding::EmbeddingGrouping::new(cl, ids);
        embedding::embedding_bwd(
            cl,
            &self.dh,
            &grouping,
            &self.g("gpt_neox.embed_in.weight"),
            c,
        );
        self.mark("embedding::embedding_bwd");
        Ok(())
    }

    /// One position's logits after [`Self::forward_logits`]: row
    /// `seq_index * seq + position`. None when the vocabulary is not a
    /// multiple of the device's view alignment (then download them all).
    pub fn logits_row(&self, row: usize) -> Option<Result<Vec<f32>>> {
        let v = self.cfg.vocab_size;
        if !v.is_multiple_of(B::<R>::view_align()) {
            return None;
        }
        Some(self.logits.view(row * v, v).download(&self.client))
    }

    pub fn download_params(&self) -> Result<Vec<f32>> {
        self.params.download(&self.client)
    }

    pub fn download_grads(&self) -> Result<Vec<f32>> {
        self.grads.download(&self.client)
    }

    /// The logits of the last [`Self::forward_logits`] (a [`Self::forward`]
    /// overwrites them with their gradient).
    pub fn download_logits(&self) -> Result<Vec<f32>> {
        self.logits.download(&self.client)
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

    fn needs(preset: &str, vocab: usize) -> Needs {
        let cfg = ModelConfig::preset(preset, vocab).unwrap();
        Needs::new(&cfg, &ParamLayout::new(&cfg))
    }

    #[test]
    fn the_logits_past_the_limit_are_refused_with_the_largest_batch_that_fits() {
        let n = needs("tiny", 50304);
        let msg = n.check(&LAVAPIPE, 8, 128).unwrap_err().to_string();
        for part in [
            "logits [batch*seq, vocab] f32 buffer of 196.5 MiB (206045184 bytes)",
            "128.0 MiB storage-binding limit (134217728 bytes)",
            "the largest batch that fits at seq 128 is 5",
        ] {
            assert!(msg.contains(part), "{part:?} missing from {msg:?}");
        }
        // The batch it names does fit, and one more does not.
        assert!(n.check(&LAVAPIPE, 5, 128).is_ok());
        assert!(n.check(&LAVAPIPE, 6, 128).is_err());
    }

    #[test]
    fn a_sequence_too_long_for_batch_one_says_the_longest_that_fits() {
        let msg = needs("tiny", 50304)
            .check(&LAVAPIPE, 1, 1024)
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
        let msg = needs("pythia-1b", 50304)
            .check(&LAVAPIPE, 1, 16)
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("parameters [n_params] f32 buffer"), "{msg}");
        assert!(msg.contains("does not fit this device's buffers"), "{msg}");
    }
}
