//! Softmax cross-entropy fused with its gradient. One cube per row reads
//! the row's logits twice: once for the log-sum-exp (an online softmax per
//! unit, merged across the cube), once to write the gradient over them in
//! place. Full-vocabulary probabilities are never stored and the logits
//! buffer is reused. The
//! logits may be bf16 or f16; the softmax, the loss and the gradient are
//! computed in f32 (the gradient is stored back in the logits' type, so
//! f16 needs the loss scale folded into `grad_scale`).

use cubecl::prelude::*;

use super::{block_max, block_sum, cube_row, rows_launch};
use crate::buffer::Buf;

#[cube(launch)]
fn cross_entropy_kernel<F: Float + CubeElement>(
    logits: &mut Array<F>,
    targets: &Array<u32>,
    losses: &mut Array<f32>,
    rows: usize,
    vocab: usize,
    grad_scale: f32,
    #[comptime] block: u32,
) {
    let row = cube_row();
    if row < rows {
        let tid = UNIT_POS as usize;
        let base = row * vocab;
        let mut smem = SharedMemory::<f32>::new(block as usize);
        // One read for the statistics: each unit keeps an online softmax
        // (its running max and the sum of exponentials relative to it)...
        let mut m = f32::min_value();
        let mut s = f32::new(0.0);
        let mut c = tid;
        while c < vocab {
            let x = f32::cast_from(logits[base + c]);
            if x > m {
                s = s * f32::exp(m - x) + 1.0;
                m = x;
            } else {
                s += f32::exp(x - m);
            }
            c += block as usize;
        }
        // ...and the units' pairs merge: the row max, then each sum
        // rescaled to it.
        smem[tid] = m;
        let row_max = block_max::<f32>(&mut smem);
        smem[tid] = s * f32::exp(m - row_max);
        let lse = row_max + f32::ln(block_sum::<f32>(&mut smem));
        let target = targets[row] as usize;
        if tid == 0 {
            losses[row] = lse - f32::cast_from(logits[base + target]);
        }
        sync_cube();
        c = tid;
        while c < vocab {
            let p = f32::exp(f32::cast_from(logits[base + c]) - lse);
            let mut g = p;
            if c == target {
                g = p - 1.0;
            }
            logits[base + c] = F::cast_from(g * grad_scale);
            c += block as usize;
        }
    }
}

/// Per-row losses into `losses`; `logits` is overwritten with
/// `grad_scale * (softmax - onehot(target))`. With `grad_scale = 1/rows`
/// that is the gradient of the mean loss.
pub fn cross_entropy<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    logits: &Buf<R, F>,
    targets: &Buf<R, u32>,
    losses: &Buf<R, f32>,
    vocab: usize,
    grad_scale: f32,
) {
    let rows = targets.len();
    let (count, dim, block) = rows_launch(rows, vocab);
    cross_entropy_kernel::launch::<F, R>(
        client,
        count,
        dim,
        logits.arg(),
        targets.arg(),
        losses.arg(),
        rows,
        vocab,
        grad_scale,
        block,
    );
}

#[cube(launch)]
fn mean_loss_kernel(
    losses: &Array<f32>,
    out: &mut Array<f32>,
    slot: usize,
    weight: f32,
    #[comptime] accumulate: bool,
    #[comptime] block: u32,
) {
    let tid = UNIT_POS as usize;
    let mut s = f32::new(0.0);
    let mut i = tid;
    while i < losses.len() {
        s += losses[i];
        i += block as usize;
    }
    let mut smem = SharedMemory::<f32>::new(block as usize);
    smem[tid] = s;
    let total = block_sum::<f32>(&mut smem);
    if tid == 0 {
        let mut v = total * weight;
        if accumulate {
            v += out[slot];
        }
        out[slot] = v;
    }
}

/// `out[slot] = weight * sum(losses)`, or `+=` with `accumulate`: a
/// micro-batch's mean loss added into its step's slot on the device, so a
/// training step needs no read-back of the loss. One cube of
/// [`ROW_BLOCK`](super::ROW_BLOCK) units: each sums a fixed stride of the
/// losses, then a fixed tree, so the bits do not depend on scheduling.
pub fn mean_loss<R: Runtime>(
    client: &ComputeClient<R>,
    losses: &Buf<R, f32>,
    out: &Buf<R, f32>,
    slot: usize,
    weight: f32,
    accumulate: bool,
) {
    assert!(slot < out.len(), "loss slot {slot} of {}", out.len());
    mean_loss_kernel::launch::<R>(
        client,
        CubeCount::Static(1, 1, 1),
        CubeDim::new_1d(super::ROW_BLOCK),
        losses.arg(),
        out.arg(),
        slot,
        weight,
        accumulate,
        super::ROW_BLOCK,
    );
}
