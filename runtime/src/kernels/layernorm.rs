//! LayerNorm over the last dimension, forward and backward. One cube per
//! row, two-pass statistics (mean, then variance about it) for accuracy;
//! the forward saves (mean, rstd) per row for the backward. Activations
//! are in the compute type `F`; statistics, every sum and the saved
//! (mean, rstd) are f32 whatever `F` is, so a bf16 or f16 row loses only
//! the rounding of its stored values.

use cubecl::prelude::*;

use super::{
    block_sum, column_chunk, column_partials_launch, cube_row, expect_len, rows_launch, rows_of,
    sum_column_partials,
};
use crate::buffer::Buf;
use crate::check::{launch_err, rel_err, Checker};
use crate::error::Result;
use crate::reference as cpu;

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
) -> Result<()> {
    let cols = gamma.len();
    let rows = rows_of("layernorm_fwd", "x", x.len(), cols)?;
    expect_len("layernorm_fwd", "beta", beta.len(), cols)?;
    expect_len("layernorm_fwd", "y", y.len(), x.len())?;
    expect_len("layernorm_fwd", "stats", stats.len(), 2 * rows)?;
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
    Ok(())
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
) -> Result<()> {
    let cols = gamma.len();
    let rows = rows_of("layernorm_bwd", "x", x.len(), cols)?;
    expect_len("layernorm_bwd", "dy", dy.len(), x.len())?;
    expect_len("layernorm_bwd", "dx", dx.len(), x.len())?;
    expect_len("layernorm_bwd", "stats", stats.len(), 2 * rows)?;
    expect_len("layernorm_bwd", "dgamma", dgamma.len(), cols)?;
    expect_len("layernorm_bwd", "dbeta", dbeta.len(), cols)?;
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
    Ok(())
}

/// The CPU definition of this file's kernels, in plain Rust with f64
/// accumulation: what [`check`] holds them to (re-exported, with every
/// other op's, by [`crate::reference`]).
pub mod reference {
    /// Per-row statistics LayerNorm keeps for its backward: (mean, rstd).
    pub fn layernorm_fwd(
        x: &[f32],
        gamma: &[f32],
        beta: &[f32],
        cols: usize,
        eps: f32,
    ) -> (Vec<f32>, Vec<f32>) {
        let rows = x.len() / cols;
        let mut y = vec![0f32; x.len()];
        let mut stats = vec![0f32; rows * 2];
        for r in 0..rows {
            let row = &x[r * cols..(r + 1) * cols];
            let mean = row.iter().map(|&v| v as f64).sum::<f64>() / cols as f64;
            let var = row.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / cols as f64;
            let rstd = 1.0 / (var + eps as f64).sqrt();
            for c in 0..cols {
                y[r * cols + c] =
                    (((row[c] as f64 - mean) * rstd) * gamma[c] as f64 + beta[c] as f64) as f32;
            }
            stats[2 * r] = mean as f32;
            stats[2 * r + 1] = rstd as f32;
        }
        (y, stats)
    }

    /// (dx, dgamma, dbeta) of LayerNorm given the forward's input and stats.
    pub fn layernorm_bwd(
        dy: &[f32],
        x: &[f32],
        gamma: &[f32],
        stats: &[f32],
        cols: usize,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let rows = x.len() / cols;
        let mut dx = vec![0f32; x.len()];
        let mut dgamma = vec![0f64; cols];
        let mut dbeta = vec![0f64; cols];
        for r in 0..rows {
            let (mean, rstd) = (stats[2 * r] as f64, stats[2 * r + 1] as f64);
            let xhat: Vec<f64> = (0..cols)
                .map(|c| (x[r * cols + c] as f64 - mean) * rstd)
                .collect();
            let g: Vec<f64> = (0..cols)
                .map(|c| dy[r * cols + c] as f64 * gamma[c] as f64)
                .collect();
            let mean_g = g.iter().sum::<f64>() / cols as f64;
            let mean_gx = g.iter().zip(&xhat).map(|(a, b)| a * b).sum::<f64>() / cols as f64;
            for c in 0..cols {
                dx[r * cols + c] = (rstd * (g[c] - mean_g - xhat[c] * mean_gx)) as f32;
                dgamma[c] += dy[r * cols + c] as f64 * xhat[c];
                dbeta[c] += dy[r * cols + c] as f64;
            }
        }
        (
            dx,
            dgamma.into_iter().map(|v| v as f32).collect(),
            dbeta.into_iter().map(|v| v as f32).collect(),
        )
    }
}

// `prior runtime check` (and the tests): this file's kernels against
// [`reference`] on fresh random inputs.

pub(crate) fn check<R: Runtime>(c: &mut Checker<R>) -> Result<(), String> {
    for (rows, cols) in [(37usize, 200usize), (5, 64), (3, 1000), (300, 300)] {
        let x: Vec<f32> = c.rand(rows * cols).iter().map(|v| v * 3.0 + 0.5).collect();
        let gamma = c.rand(cols);
        let beta = c.rand(cols);
        let dy = c.rand(rows * cols);
        let case = format!("{rows} x {cols}");
        let client = c.client;
        let (y_ref, stats_ref) = cpu::layernorm_fwd(&x, &gamma, &beta, cols, 1e-5);
        let (xb, gb, bb) = (c.up(&x), c.up(&gamma), c.up(&beta));
        let y = Buf::<R, f32>::empty(client, rows * cols);
        let stats = Buf::<R, f32>::empty(client, rows * 2);
        layernorm_fwd(client, &xb, &gb, &bb, &y, &stats, 1e-5).map_err(launch_err)?;
        let fwd = (|| {
            Ok(vec![
                rel_err(&c.down(&y)?, &y_ref),
                rel_err(&c.down(&stats)?, &stats_ref),
            ])
        })();
        c.record("layernorm_fwd", case.clone(), fwd);
        let bwd = (|| {
            let (dx_ref, dg_ref, db_ref) = cpu::layernorm_bwd(&dy, &x, &gamma, &stats_ref, cols);
            let dyb = c.up(&dy);
            let dx = Buf::<R, f32>::empty(client, rows * cols);
            let dg = Buf::<R, f32>::empty(client, cols);
            let db = Buf::<R, f32>::empty(client, cols);
            layernorm_bwd(client, &dyb, &xb, &gb, &stats, &dx, &dg, &db, false)
                .map_err(launch_err)?;
            Ok(vec![
                rel_err(&c.down(&dx)?, &dx_ref),
                rel_err(&c.down(&dg)?, &dg_ref),
                rel_err(&c.down(&db)?, &db_ref),
            ])
        })();
        c.record("layernorm_bwd", case, bwd);
    }
    Ok(())
}
