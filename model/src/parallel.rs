//! Data-parallel gradients over a process group: each rank computes the
//! micro-batches of its slice of the global batch, and rank 0 sums them in
//! the order one process would have, so any world size gives the bits of a
//! world of one.
//!
//! One process sums a step's micro-batches 0, 1, ..., K-1 in order: the
//! first written fresh, each later one added (the loss slot likewise).
//! Ranks hold contiguous slices, so rank 0 computes micro-batches
//! `0..K/W` itself exactly so; every other rank computes each of its
//! micro-batches fresh and sends its gradient and per-position losses to
//! rank 0, which adds them on its device with the same kernels, rank 1's
//! before rank 2's.
//!
//! The optimizer is sharded as in ZeRO stage 1: rank `r` holds the AdamW
//! moments of its contiguous shard of the parameters ([`shard_of`]) and
//! nothing else. Rank 0 scatters the summed gradient, each rank its shard
//! (a reduce-scatter); the gradient norm is the square root of the
//! shards' partial sums gathered in rank order, which are the unsharded
//! vector's (shards are cut at the norm's block size), so every rank
//! clips by the norm one process would compute; each rank updates its
//! shard of the f32 master weights, and an all-gather of the updated
//! shards leaves every rank with the whole model. Element-wise AdamW on
//! the same bits gives the same bits, so any world size gives the weights
//! of a world of one. Checkpoints hold the full moments, gathered to rank
//! 0, so a run resumes at any world size.
//!
//! Over the host collective this moves K/W gradients per rank and step
//! through rank 0: the CPU stand-in that proves the logic, not a fast
//! path.

use cubecl::prelude::*;
use prior_runtime::buffer::Buf;
use prior_runtime::dist::{DistError, Group};
use prior_runtime::kernels::{elementwise, optim};

use crate::device::DeviceModel;
use crate::train::{
    accumulate_share, split_micro, Optimizer, OptimizerUpdate, StepLog, TrainError, TrainSection,
};

type Result<T> = std::result::Result<T, TrainError>;

/// This rank's share of a step: its slice of the batch (`tokens`, rows of
/// `seq_tokens`) into the whole batch's gradient, in `model.grads` on rank
/// 0 and in this rank's [`shard_of`] of `model.grads` elsewhere, and the
/// batch's mean loss into `log` at `slot` on rank 0.
pub fn accumulate_data_parallel<R: Runtime, F: Float + CubeElement>(
    model: &mut DeviceModel<R, F>,
    group: &mut Group,
    tokens: &[u32],
    seq_tokens: usize,
    log: &StepLog<R>,
    slot: usize,
) -> Result<()> {
    let world = group.world() as usize;
    if world == 1 {
        return accumulate_share(model, tokens, seq_tokens, None, log, slot, 1);
    }
    let client = model.client.clone();
    let n_params = model.grads.len();
    let positions = model.batch * model.seq;
    let micro_steps = tokens.len() / seq_tokens / model.batch;
    let all_steps = (micro_steps * world) as f32;
    if group.rank() == 0 {
        accumulate_share(model, tokens, seq_tokens, None, log, slot, world)?;
        for rank in 1..world as u32 {
            for _ in 0..micro_steps {
                let msg = group.recv_from(rank)?;
                let values = floats(&msg);
                if values.len() != n_params + positions {
                    return Err(DistError::Peer {
                        rank,
                        detail: format!(
                            "sent {} values for a micro-batch; this model has {n_params} parameters and {positions} positions (is it the same config?)",
                            values.len()
                        ),
                    }
                    .into());
                }
                let grad = Buf::<R, f32>::upload(&client, &values[..n_params]);
                elementwise::axpy(&client, &model.grads, &grad, 1.0)?;
                model.losses = Buf::upload(&client, &values[n_params..]);
                model.mean_loss_into(&log.losses, slot, 1.0 / all_steps, true)?;
            }
        }
        // The reduce-scatter's second half: each rank its shard of the sum.
        let sum = model.download_grads()?;
        let parts: Vec<Vec<u8>> = (0..world as u32)
            .map(|r| match r {
                0 => Vec::new(),
                r => bytes(&sum[shard_of(n_params, r, world as u32)]),
            })
            .collect();
        group.scatter(&parts)?;
    } else {
        let loss_scale = model.loss_scale.map_or(1.0, |s| s.scale);
        for k in 0..micro_steps {
            let (ids, targets) = split_micro(tokens, seq_tokens, k * model.batch, model.batch);
            let ids_b = Buf::<R, u32>::upload(&client, &ids);
            let targets_b = Buf::<R, u32>::upload(&client, &targets);
            model.zero_grads()?;
            model.forward_to_losses(&ids_b, &targets_b, loss_scale / all_steps)?;
            model.backward(&ids_b)?;
            let mut msg = model.download_grads()?;
            msg.extend(model.losses.download(&client)?);
            group.send_to_root(&bytes(&msg))?;
        }
        let shard = shard_of(n_params, group.rank(), world as u32);
        let sum = floats(&group.scatter(&[])?);
        if sum.len() != shard.len() {
            return Err(DistError::Peer {
                rank: 0,
                detail: format!(
                    "sent a gradient shard of {} values for parameters {shard:?}",
                    sum.len()
                ),
            }
            .into());
        }
        if !shard.is_empty() {
            elementwise::write(&client, &model.grads.view(shard.start, shard.len()), &sum)?;
        }
    }
    Ok(())
}

/// Rank `rank`'s contiguous shard of `total` parameters in a world of
/// `world`: cut at multiples of [`optim::NORM_SPAN`], so the shards'
/// gradient-norm partials, gathered in rank order, are the unsharded
/// vector's and the norm has the same bits at any world size. The last
/// ranks' shards are empty when there are fewer spans than ranks.
pub fn shard_of(total: usize, rank: u32, world: u32) -> std::ops::Range<usize> {
    let spans = total.div_ceil(optim::NORM_SPAN);
    let per_rank = spans.div_ceil(world as usize) * optim::NORM_SPAN;
    let start = (rank as usize * per_rank).min(total);
    start..(start + per_rank).min(total)
}

impl<R: Runtime> Optimizer<R> {
    /// The optimizer step of this rank of `group` after
    /// [`accumulate_data_parallel`]: the global gradient norm from every
    /// shard's partial sums, clipping and AdamW on this rank's shard, then
    /// the updated shards all-gathered into every rank's master weights and
    /// the compute-type weights refreshed. [`Self::apply_logged`] in a
    /// world of one.
    pub fn apply_sharded<F: Float + CubeElement>(
        &self,
        model: &mut DeviceModel<R, F>,
        group: &mut Group,
        t: &TrainSection,
        step: u64,
        log: &StepLog<R>,
        slot: usize,
    ) -> Result<OptimizerUpdate> {
        let world = group.world();
        if world == 1 {
            return Ok(self.apply_logged(model, t, step, log, slot)?);
        }
        let client = &self.client;
        let shard = self.shard.clone();
        let mine = match shard.is_empty() {
            true => Vec::new(),
            false => {
                let partials = Buf::<R, f32>::empty(client, optim::partials_len(shard.len()));
                let grads = model.grads.view(shard.start, shard.len());
                optim::sum_squares_partials(client, &grads, &partials)?;
                bytes(&partials.download(client)?)
            }
        };
        let partials = floats(&group.all_gather(&mine)?.concat());
        if partials.len() != optim::partials_len(self.total) {
            return Err(DistError::Peer {
                rank: 0,
                detail: format!(
                    "the gathered gradient-norm partials are {} values; {} parameters have {}",
                    partials.len(),
                    self.total,
                    optim::partials_len(self.total)
                ),
            }
            .into());
        }
        optim::norm_from_partials(client, &Buf::upload(client, &partials), &self.norm)?;
        let up = self.update_shard(model, t, step, log, slot)?;
        if up.skipped {
            // Every rank saw the same overflowed norm and skips alike.
            return Ok(up);
        }
        let mine = match shard.is_empty() {
            true => Vec::new(),
            false => bytes(
                &model
                    .params
                    .view(shard.start, shard.len())
                    .download(client)?,
            ),
        };
        for (r, part) in group.all_gather(&mine)?.iter().enumerate() {
            let theirs = shard_of(self.total, r as u32, world);
            if r as u32 == group.rank() || theirs.is_empty() {
                continue;
            }
            if part.len() != theirs.len() * 4 {
                return Err(DistError::Peer {
                    rank: r as u32,
                    detail: format!(
                        "sent {} updated weights for its shard {theirs:?}",
                        part.len() / 4
                    ),
                }
                .into());
            }
            let dst = model.params.view(theirs.start, theirs.len());
            elementwise::write(client, &dst, &floats(part))?;
        }
        model.refresh_weights()?;
        Ok(up)
    }

    /// Both full moments on rank 0 (None elsewhere), gathered from every
    /// rank's shard, for a checkpoint that any world size can resume.
    pub fn gather_moments(&self, group: &mut Group) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
        let (m, v) = self.download()?;
        let mut mine = bytes(&m);
        mine.extend(bytes(&v));
        let Some(parts) = group.gather(&mine)? else {
            return Ok(None);
        };
        let (mut exp_avg, mut exp_avg_sq) = (Vec::new(), Vec::new());
        for (r, part) in parts.iter().enumerate() {
            let theirs = shard_of(self.total, r as u32, group.world());
            let values = floats(part);
            if values.len() != 2 * theirs.len() {
                return Err(DistError::Peer {
                    rank: r as u32,
                    detail: format!(
                        "sent {} moment values for its shard {theirs:?}",
                        values.len()
                    ),
                }
                .into());
            }
            let (a, b) = values.split_at(theirs.len());
            exp_avg.extend_from_slice(a);
            exp_avg_sq.extend_from_slice(b);
        }
        Ok(Some((exp_avg, exp_avg_sq)))
    }
}

fn bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn floats(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}
