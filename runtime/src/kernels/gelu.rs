//! GPT-NeoX's exact GELU (the erf form, not the tanh approximation),
//! forward and backward, alone and fused with the MLP's bias: the
//! up-projection's bias add and GELU in one pass, and their backward with
//! the bias's column sums in the same pass. Values are stored in the
//! compute type `F`; GELU evaluates in f32, and the sums run in f32 in a
//! fixed order (two stages, as every column reduction here).

use cubecl::prelude::*;

use super::{
    column_chunk, column_partials_launch, elementwise_launch, expect_len, rows_of,
    sum_column_partials,
};
use crate::buffer::Buf;
use crate::check::{launch_err, rel_err, Checker};
use crate::error::Result;
use crate::reference as cpu;

/// Φ(v), the standard normal CDF, in the type of `v` (called with f32).
#[cube]
fn normal_cdf<T: Float>(v: T) -> T {
    T::new(0.5) * (T::new(1.0) + T::erf(v * T::new(std::f32::consts::FRAC_1_SQRT_2)))
}

/// gelu'(v) = Φ(v) + v φ(v), in the type of `v` (called with f32).
#[cube]
fn gelu_grad<T: Float>(v: T) -> T {
    // 1 / sqrt(2 pi)
    let pdf = T::exp(T::new(-0.5) * v * v) * T::new(0.398_942_3);
    normal_cdf::<T>(v) + v * pdf
}

#[cube(launch)]
fn gelu_fwd_kernel<F: Float + CubeElement>(x: &Array<F>, y: &mut Array<F>) {
    let i = ABSOLUTE_POS;
    if i < y.len() {
        let v = f32::cast_from(x[i]);
        y[i] = F::cast_from(v * normal_cdf::<f32>(v));
    }
}

#[cube(launch)]
fn gelu_bwd_kernel<F: Float + CubeElement>(dy: &Array<F>, x: &Array<F>, dx: &mut Array<F>) {
    let i = ABSOLUTE_POS;
    if i < dx.len() {
        let v = f32::cast_from(x[i]);
        dx[i] = F::cast_from(f32::cast_from(dy[i]) * gelu_grad::<f32>(v));
    }
}

/// y = gelu(x)
pub fn gelu_fwd<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    x: &Buf<R, F>,
    y: &Buf<R, F>,
) -> Result<()> {
    expect_len("gelu_fwd", "x", x.len(), y.len())?;
    let (count, dim) = elementwise_launch(client, y.len());
    gelu_fwd_kernel::launch::<F, R>(client, count, dim, x.arg(), y.arg());
    Ok(())
}

/// dx = dy * gelu'(x)
pub fn gelu_bwd<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    dy: &Buf<R, F>,
    x: &Buf<R, F>,
    dx: &Buf<R, F>,
) -> Result<()> {
    expect_len("gelu_bwd", "dy", dy.len(), dx.len())?;
    expect_len("gelu_bwd", "x", x.len(), dx.len())?;
    let (count, dim) = elementwise_launch(client, dx.len());
    gelu_bwd_kernel::launch::<F, R>(client, count, dim, dy.arg(), x.arg(), dx.arg());
    Ok(())
}

#[cube(launch)]
fn bias_gelu_fwd_kernel<F: Float + CubeElement>(
    pre: &mut Array<F>,
    bias: &Array<F>,
    act: &mut Array<F>,
    cols: usize,
) {
    let i = ABSOLUTE_POS;
    if i < pre.len() {
        let v = pre[i] + bias[i % cols];
        pre[i] = v;
        let x = f32::cast_from(v);
        act[i] = F::cast_from(x * normal_cdf::<f32>(x));
    }
}

/// The MLP's bias and GELU in one pass over the up-projection: `pre +=
/// bias` (kept: the backward's input) and `act = gelu(pre)`.
pub fn bias_gelu_fwd<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    pre: &Buf<R, F>,
    bias: &Buf<R, F>,
    act: &Buf<R, F>,
) -> Result<()> {
    rows_of("bias_gelu_fwd", "pre", pre.len(), bias.len())?;
    expect_len("bias_gelu_fwd", "act", act.len(), pre.len())?;
    let (count, dim) = elementwise_launch(client, pre.len());
    bias_gelu_fwd_kernel::launch::<F, R>(
        client,
        count,
        dim,
        pre.arg(),
        bias.arg(),
        act.arg(),
        bias.len(),
    );
    Ok(())
}

/// Stage one of [`gelu_bias_bwd`]: each unit walks its column over its
/// chunk of rows, writing `d_pre = d_act * gelu'(pre)` and summing it.
#[cube(launch)]
fn gelu_bias_bwd_partial_kernel<F: Float + CubeElement>(
    d_act: &Array<F>,
    pre: &Array<F>,
    d_pre: &mut Array<F>,
    partials: &mut Array<f32>,
    rows: usize,
    cols: usize,
) {
    let (c, chunk, first, end) = column_chunk(rows);
    if c < cols {
        let mut s = f32::new(0.0);
        for r in first..end {
            let at = r * cols + c;
            let v = f32::cast_from(pre[at]);
            let d = F::cast_from(f32::cast_from(d_act[at]) * gelu_grad::<f32>(v));
            d_pre[at] = d;
            // The bias gradient sums what is stored, as an unfused
            // gelu_bwd then bias_bwd would.
            s += f32::cast_from(d);
        }
        partials[chunk * cols + c] = s;
    }
}

/// The backward of [`bias_gelu_fwd`] in one pass over the activations:
/// `d_pre = d_act * gelu'(pre)` and `dbias (+)= column sums of d_pre`
/// (two fixed-order stages, as [`super::elementwise::bias_bwd`]).
pub fn gelu_bias_bwd<R: Runtime, F: Float + CubeElement, G: Float + CubeElement>(
    client: &ComputeClient<R>,
    d_act: &Buf<R, F>,
    pre: &Buf<R, F>,
    d_pre: &Buf<R, F>,
    dbias: &Buf<R, G>,
    accumulate: bool,
) -> Result<()> {
    expect_len("gelu_bias_bwd", "d_act", d_act.len(), pre.len())?;
    expect_len("gelu_bias_bwd", "d_pre", d_pre.len(), pre.len())?;
    let cols = dbias.len();
    let rows = rows_of("gelu_bias_bwd", "pre", pre.len(), cols)?;
    let (count, dim, chunks) = column_partials_launch(rows, cols);
    let partials = Buf::<R, f32>::empty(client, chunks * cols);
    gelu_bias_bwd_partial_kernel::launch::<F, R>(
        client,
        count,
        dim,
        d_act.arg(),
        pre.arg(),
        d_pre.arg(),
        partials.arg(),
        rows,
        cols,
    );
    sum_column_partials(client, &partials, dbias, chunks, accumulate);
    Ok(())
}

/// The CPU definition of this file's kernels, in plain Rust with f64
/// accumulation: what [`check`] holds them to (re-exported, with every
/// other op's, by [`crate::reference`]).
pub mod reference {
    /// libm's erf (correctly rounded to within an ulp), in f64 as every
    /// reference op computes.
    fn erf(x: f64) -> f64 {
        libm::erf(x)
    }

    /// GPT-NeoX's exact GELU: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
    pub fn gelu_fwd(x: &[f32]) -> Vec<f32> {
        x.iter()
            .map(|&v| {
                let v = v as f64;
                (0.5 * v * (1.0 + erf(v / std::f64::consts::SQRT_2))) as f32
            })
            .collect()
    }

    pub fn gelu_bwd(dy: &[f32], x: &[f32]) -> Vec<f32> {
        x.iter()
            .zip(dy)
            .map(|(&v, &g)| {
                let v = v as f64;
                let cdf = 0.5 * (1.0 + erf(v / std::f64::consts::SQRT_2));
                let pdf = (-0.5 * v * v).exp() / (2.0 * std::f64::consts::PI).sqrt();
                (g as f64 * (cdf + v * pdf)) as f32
            })
            .collect()
    }
}

// `prior runtime check` (and the tests): this file's kernels against
// [`reference`] on fresh random inputs.

pub(crate) fn check<R: Runtime>(c: &mut Checker<R>) -> Result<(), String> {
    let client = c.client;
    for n in [1000usize, 4097] {
        let x: Vec<f32> = c.rand(n).iter().map(|v| v * 4.0).collect();
        let dy = c.rand(n);
        let xb = c.up(&x);
        let y = Buf::<R, f32>::empty(client, n);
        gelu_fwd(client, &xb, &y).map_err(launch_err)?;
        let fwd = (|| Ok(vec![rel_err(&c.down(&y)?, &cpu::gelu_fwd(&x))]))();
        c.record("gelu_fwd", format!("{n} elements"), fwd);
        let dx = Buf::<R, f32>::empty(client, n);
        gelu_bwd(client, &c.up(&dy), &xb, &dx).map_err(launch_err)?;
        let bwd = (|| Ok(vec![rel_err(&c.down(&dx)?, &cpu::gelu_bwd(&dy, &x))]))();
        c.record("gelu_bwd", format!("{n} elements"), bwd);
    }
    for (rows, cols) in [(13usize, 37usize), (300, 64), (200, 300)] {
        let x = c.rand(rows * cols);
        let bias = c.rand(cols);
        // The fused MLP bias + GELU, both ways, against the two references
        // composed.
        let x: Vec<f32> = x.iter().map(|v| v * 4.0).collect();
        let pre_ref = cpu::bias_add(&x, &bias);
        let (pre, act) = (c.up(&x), Buf::<R, f32>::empty(client, rows * cols));
        bias_gelu_fwd(client, &pre, &c.up(&bias), &act).map_err(launch_err)?;
        let fwd = (|| {
            Ok(vec![
                rel_err(&c.down(&pre)?, &pre_ref),
                rel_err(&c.down(&act)?, &cpu::gelu_fwd(&pre_ref)),
            ])
        })();
        c.record("bias_gelu_fwd", format!("{rows} x {cols}"), fwd);
        let d_act = c.rand(rows * cols);
        let d_pre_ref = cpu::gelu_bwd(&d_act, &pre_ref);
        let seed_db = c.rand(cols);
        let db_ref: Vec<f32> = cpu::bias_bwd(&d_pre_ref, cols)
            .iter()
            .zip(&seed_db)
            .map(|(a, b)| a + b)
            .collect();
        let (d_pre, db) = (Buf::<R, f32>::empty(client, rows * cols), c.up(&seed_db));
        gelu_bias_bwd(client, &c.up(&d_act), &pre, &d_pre, &db, true).map_err(launch_err)?;
        let bwd = (|| {
            Ok(vec![
                rel_err(&c.down(&d_pre)?, &d_pre_ref),
                rel_err(&c.down(&db)?, &db_ref),
            ])
        })();
        c.record(
            "gelu_bias_bwd",
            format!("{rows} x {cols}, accumulating"),
            bwd,
        );
    }
    Ok(())
}
