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
//! before rank 2's. Rank 0 then hands the sum to every rank, and each runs
//! the same optimizer step on the same bits, so the ranks stay identical
//! without a parameter exchange.
//!
//! Over the host collective this moves K/W gradients per rank and step
//! through rank 0: the CPU stand-in that proves the logic, not a fast
//! path.

use cubecl::prelude::*;
use prior_runtime::buffer::Buf;
use prior_runtime::dist::{DistError, Group};
use prior_runtime::kernels::elementwise;

use crate::device::DeviceModel;
use crate::train::{accumulate_share, split_micro, StepLog, TrainError};

type Result<T> = std::result::Result<T, TrainError>;

/// This rank's share of a step: its slice of the batch (`tokens`, rows of
/// `seq_tokens`) into the whole batch's gradient in `model.grads` on every
/// rank, and the batch's mean loss into `log` at `slot` on rank 0.
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
                elementwise::axpy(&client, &model.grads, &grad, 1.0);
                model.losses = Buf::upload(&client, &values[n_params..]);
                model.mean_loss_into(&log.losses, slot, 1.0 / all_steps, true);
            }
        }
        let sum = model.download_grads()?;
        group.broadcast(&bytes(&sum))?;
    } else {
        let loss_scale = model.loss_scale.map_or(1.0, |s| s.scale);
        for k in 0..micro_steps {
            let (ids, targets) = split_micro(tokens, seq_tokens, k * model.batch, model.batch);
            let ids_b = Buf::<R, u32>::upload(&client, &ids);
            let targets_b = Buf::<R, u32>::upload(&client, &targets);
            model.zero_grads();
            model.forward_to_losses(&ids_b, &targets_b, loss_scale / all_steps)?;
            model.backward(&ids_b)?;
            let mut msg = model.download_grads()?;
            msg.extend(model.losses.download(&client)?);
            group.send_to_root(&bytes(&msg))?;
        }
        let sum = floats(&group.broadcast(&[])?);
        if sum.len() != n_params {
            return Err(DistError::Peer {
                rank: 0,
                detail: format!(
                    "sent a gradient of {} values for {n_params} parameters",
                    sum.len()
                ),
            }
            .into());
        }
        // grads = 0 + sum: the values rank 0 holds.
        elementwise::fill(&client, &model.grads, 0.0);
        elementwise::axpy(&client, &model.grads, &Buf::upload(&client, &sum), 1.0);
    }
    Ok(())
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
