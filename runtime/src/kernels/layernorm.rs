//! LayerNorm over the last dimension, forward and backward. One cube per
//! row, two-pass statistics (mean, then variance about it) for accuracy;
//! the forward saves (mean, rstd) per row for the backward. Activations
//! are in the compute type `F`; statistics, every sum and the saved
//! (mean, rstd) are f32 whatever `F` is, so a bf16 or f16 row loses only
//! the rounding of its stored values.

use cubecl::prelude::*;

use super::{
    block_sum, column_chunk, column_partials_launch, cube_row, rows_launch, sum_column_partials,
};
use crate::buffer::Buf;

#[cube(launch)]
fn layernorm_fwd_kernel<F: Float + CubeElement>(
    x: &Array<F>,
    gamma: &Array<F>,
    beta: &Array<F>,
    y: &mut Array<F>,
    stats: &mut Array<f32>,
    rows: usize,
    cols: usize,
    eps: f32,
    #[comptime] block: u32,
) {
    let row = cube_row();
    if row < rows {
        let tid = UNIT_POS as usize;
        let base = row * cols;
        let mut smem = SharedMemory::<f32>::new(block as usize);
        let mut s = f32::new(0.0);
        let mut c = tid;
        while c < cols {
            s += f32::cast_from(x[base + c]);
            c += block as usize;
        }
        smem[tid] = s;
        let mean = block_sum::<f32>(&mut smem) / f32::cast_from(cols);
        let mut v = f32::new(0.0);
        c = tid;
        while c < cols {
            let d = f32::cast_from(x[base + c]) - mean;
            v += d * d;
            c += block as usize;
        }
        smem[tid] = v;
        let var = block_sum::<f32>(&mut smem) / f32::cast_from(cols);
        let rstd = f32::new(1.0) / f32::sqrt(var + eps);
        c = tid;
        while c < cols {
            let xhat = (f32::cast_from(x[base + c]) - mean) * rstd;
            y[base + c] = F::cast_from(xhat * f32::cast_from(gamma[c]) + f32::cast_from(beta[c]));
            c += block as usize;
        }
        if tid == 0 {
            stats[2 * row] = mean;
            stats[2 * row + 1] = rstd;
        }
    }
}

#[cube(launch)]
fn layernorm_bwd_dx_kernel<F: Float + CubeElement>(
    dy: &Array<F>,
    x: &Array<F>,
    gamma: &Array<F>,
    stats: &Array<f32>,
    dx: &mut Array<F>,
    rows: usize,
    cols: usize,
    #[comptime] block: u32,
) {
    let row = cube_row();
    if row < rows {
        let tid = UNIT_POS as usize;
        let base = row * cols;
        let mean = stats[2 * row];
        let rstd = stats[2 * row + 1];
        let mut smem = SharedMemory::<f32>::new(block as usize);
        let mut sg = f32::new(0.0);
        let mut sgx = f32::new(0.0);
        let mut c = tid;
        while c < cols {
            let g = f32::cast_from(dy[base + c]) * f32::cast_from(gamma[c]);
            sg += g;
            sgx += g * (f32::cast_from(x[base + c]) - mean) * rstd;
            c += block as usize;
        }
        smem[tid] = sg;
        let mean_g = block_sum::<f32>(&mut smem) / f32::cast_from(cols);
        smem[tid] = sgx;
        let mean_gx = block_sum::<f32>(&mut smem) / f32::cast_from(cols);
        c = tid;
        while c < cols {
            let xhat = (f32::cast_from(x[base + c]) - mean) * rstd;
            let g = f32::cast_from(dy[base + c]) * f32::cast_from(gamma[c]);
            dx[base + c] = F::cast_from(rstd * (g - mean_g - xhat * mean_gx));
            c += block as usize;
        }
    }
}

/// dgamma[c] (+)= sum_r dy * xhat, dbeta[c] (+)= sum_r dy; rows in order.
/// Stage one of the γ/β gradients: each unit sums its column over its
/// chunk of rows, in order, in f32 (see `column_partials_launch`).
#[cube(launch)]
fn layernorm_bwd_params_kernel<F: Float + CubeElement>(
    dy: &Array<F>,
    x: &Array<F>,
    stats: &Array<f32>,
    dgamma_partials: &mut Array<f32>,
    dbeta_partials: &mut Array<f32>,
    rows: usize,
    cols: usize,
) {
    let (c, chunk, first, end) = column_chunk(rows);
    if c < cols {
        let mut sg = f32::new(0.0);
        let mut sb = f32::new(0.0);
        for r in first..end {
            let g = f32::cast_from(dy[r * cols + c]);
            let xhat = (f32::cast_from(x[r * cols + c]) - stats[2 * r]) * stats[2 * r + 1];
            sg += g * xhat;
            sb += g;
        }
        dgamma_partials[chunk * cols + c] = sg;
        dbeta_partials[chunk * cols + c] = sb;
    }
}

/// y = LayerNorm(x) * gamma + beta over rows of `gamma.len()` columns;
/// `stats` receives (mean, rstd) per row.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_fwd<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    x: &Buf<R, F>,
    gamma: &Buf<R, F>,
    beta: &Buf<R, F>,
    y: &Buf<R, F>,
    stats: &Buf<R, f32>,
    eps: f32,
) {
    let cols = gamma.len();
    let rows = x.len() / cols;
    let (count, dim, block) = rows_launch(rows, cols);
    layernorm_fwd_kernel::launch::<F, R>(
        client,
        count,
        dim,
        x.arg(),
        gamma.arg(),
        beta.arg(),
        y.arg(),
        stats.arg(),
        rows,
        cols,
        eps,
        block,
    );
}

/// dx of LayerNorm, and dgamma/dbeta (added to their contents if `accumulate`).
/// The activations are in `F`, the parameter gradients in `G` (f32 in
/// mixed-precision training); every sum runs in f32.
#[allow(clippy::too_many_arguments)]
pub fn layernorm_bwd<R: Runtime, F: Float + CubeElement, G: Float + CubeElement>(
    client: &ComputeClient<R>,
    dy: &Buf<R, F>,
    x: &Buf<R, F>,
    gamma: &Buf<R, F>,
    stats: &Buf<R, f32>,
    dx: &Buf<R, F>,
    dgamma: &Buf<R, G>,
    dbeta: &Buf<R, G>,
    accumulate: bool,
) {
    let cols = gamma.len();
    let rows = x.len() / cols;
    let (count, dim, block) = rows_launch(rows, cols);
    layernorm_bwd_dx_kernel::launch::<F, R>(
        client,
        count,
        dim,
        dy.arg(),
        x.arg(),
        gamma.arg(),
        stats.arg(),
        dx.arg(),
        rows,
        cols,
        block,
    );
    let (count, dim, chunks) = column_partials_launch(rows, cols);
    let dgamma_partials = Buf::<R, f32>::empty(client, chunks * cols);
    let dbeta_partials = Buf::<R, f32>::empty(client, chunks * cols);
    layernorm_bwd_params_kernel::launch::<F, R>(
        client,
        count,
        dim,
        dy.arg(),
        x.arg(),
        stats.arg(),
        dgamma_partials.arg(),
        dbeta_partials.arg(),
        rows,
        cols,
    );
    sum_column_partials(client, &dgamma_partials, dgamma, chunks, accumulate);
    sum_column_partials(client, &dbeta_partials, dbeta, chunks, accumulate);
}

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn residual_layernorm_fwd_kernel<F: Float + CubeElement>(
    x: &Array<F>,
    r: &Array<F>,
    gamma: &Array<F>,
    beta: &Array<F>,
    sum: &mut Array<F>,
    y: &mut Array<F>,
    stats: &mut Array<f32>,
    rows: usize,
    cols: usize,
    eps: f32,
    #[comptime] block: u32,
) {
    let row = cube_row();
    if row < rows {
        let tid = UNIT_POS as usize;
        let base = row * cols;
        let mut smem = SharedMemory::<f32>::new(block as usize);
        let mut s = f32::new(0.0);
        let mut c = tid;
        while c < cols {
            // The stored sum is what the backward sees: statistics of it.
            let v = x[base + c] + r[base + c];
            sum[base + c] = v;
            s += f32::cast_from(v);
            c += block as usize;
        }
        smem[tid] = s;
        let mean = block_sum::<f32>(&mut smem) / f32::cast_from(cols);
        let mut var = f32::new(0.0);
        c = tid;
        while c < cols {
            let d = f32::cast_from(sum[base + c]) - mean;
            var += d * d;
            c += block as usize;
        }
        smem[tid] = var;
        let rstd =
            f32::new(1.0) / f32::sqrt(block_sum::<f32>(&mut smem) / f32::cast_from(cols) + eps);
        c = tid;
        while c < cols {
            let xhat = (f32::cast_from(sum[base + c]) - mean) * rstd;
            y[base + c] = F::cast_from(xhat * f32::cast_from(gamma[c]) + f32::cast_from(beta[c]));
            c += block as usize;
        }
        if tid == 0 {
            stats[2 * row] = mean;
            stats[2 * row + 1] = rstd;
        }
    }
}

/// The residual add fused with the next LayerNorm: `sum = x + r` (the new
/// residual stream, kept for the backward) and `y = LayerNorm(sum)`, in one
/// pass over the row. Its backward is [`layernorm_bwd`] on `sum`, whose dx
/// flows to both x and r.
#[allow(clippy::too_many_arguments)]
pub fn residual_layernorm_fwd<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    x: &Buf<R, F>,
    r: &Buf<R, F>,
    gamma: &Buf<R, F>,
    beta: &Buf<R, F>,
    sum: &Buf<R, F>,
    y: &Buf<R, F>,
    stats: &Buf<R, f32>,
    eps: f32,
) {
    let cols = gamma.len();
    let rows = x.len() / cols;
    let (count, dim, block) = rows_launch(rows, cols);
    residual_layernorm_fwd_kernel::launch::<F, R>(
        client,
        count,
        dim,
        x.arg(),
        r.arg(),
        gamma.arg(),
        beta.arg(),
        sum.arg(),
        y.arg(),
        stats.arg(),
        rows,
        cols,
        eps,
        block,
    );
}
