//! Softmax cross-entropy fused with its gradient. One cube per row reads
//! the row's logits twice: once for the log-sum-exp (an online softmax per
//! unit, merged across the cube), once to write the gradient over them in
//! place. Full-vocabulary probabilities are never stored and the logits
//! buffer is reused. The
//! logits may be bf16 or f16; the softmax, the loss and the gradient are
//! computed in f32 (the gradient is stored back in the logits' type, so
//! f16 needs the loss scale folded into `grad_scale`).

use cubecl::prelude::*;
use rand::Rng;

use super::{at_least, block_max, block_sum, cube_row, expect_len, rows_launch};
use crate::buffer::Buf;
use crate::check::{launch_err, rel_err, Checker};
use crate::error::Result;
use crate::reference as cpu;

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
) -> Result<()> {
    let rows = targets.len();
    expect_len("cross_entropy", "logits", logits.len(), rows * vocab)?;
    expect_len("cross_entropy", "losses", losses.len(), rows)?;
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
    Ok(())
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
) -> Result<()> {
    at_least("mean_loss", "out", out.len(), slot + 1)?;
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
    Ok(())
}

/// The CPU definition of this file's kernels, in plain Rust with f64
/// accumulation: what [`check`] holds them to (re-exported, with every
/// other op's, by [`crate::reference`]).
pub mod reference {
    /// Mean cross-entropy over rows and its gradient w.r.t. the logits.
    pub fn cross_entropy(logits: &[f32], targets: &[u32], vocab: usize) -> (f32, Vec<f32>) {
        let rows = targets.len();
        let mut loss = 0f64;
        let mut grad = vec![0f32; logits.len()];
        for r in 0..rows {
            let row = &logits[r * vocab..(r + 1) * vocab];
            let m = row
                .iter()
                .map(|&v| v as f64)
                .fold(f64::NEG_INFINITY, f64::max);
            let z: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
            let lse = m + z.ln();
            loss += lse - row[targets[r] as usize] as f64;
            for c in 0..vocab {
                let p = (row[c] as f64 - lse).exp();
                let onehot = if c == targets[r] as usize { 1.0 } else { 0.0 };
                grad[r * vocab + c] = ((p - onehot) / rows as f64) as f32;
            }
        }
        ((loss / rows as f64) as f32, grad)
    }
}

// `prior runtime check` (and the tests): this file's kernels against
// [`reference`] on fresh random inputs.

pub(crate) fn check<R: Runtime>(c: &mut Checker<R>) -> Result<(), String> {
    let client = c.client;
    for (rows, vocab) in [(23usize, 389usize), (4, 1000), (64, 130)] {
        let logits: Vec<f32> = c.rand(rows * vocab).iter().map(|v| v * 5.0).collect();
        let targets: Vec<u32> = (0..rows)
            .map(|_| c.rng.random_range(0..vocab as u32))
            .collect();
        let (loss_ref, grad_ref) = cpu::cross_entropy(&logits, &targets, vocab);
        let lb = c.up(&logits);
        let losses = Buf::<R, f32>::empty(client, rows);
        cross_entropy(
            client,
            &lb,
            &Buf::<R, u32>::upload(client, &targets),
            &losses,
            vocab,
            1.0 / rows as f32,
        )
        .map_err(launch_err)?;
        let case = format!("{rows} rows, vocab {vocab}");
        let fwd = (|| {
            let l = c.down(&losses)?;
            let mean = l.iter().map(|&v| v as f64).sum::<f64>() / rows as f64;
            Ok(vec![rel_err(&[mean as f32], &[loss_ref])])
        })();
        c.record("cross_entropy_fwd", case.clone(), fwd);
        let bwd = (|| Ok(vec![rel_err(&c.down(&lb)?, &grad_ref)]))();
        c.record("cross_entropy_bwd", case, bwd);
    }
    Ok(())
}
