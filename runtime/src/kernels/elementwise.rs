//! GELU (exact, erf form, as GPT-NeoX), bias add and its column-sum
//! backward, scaling and accumulation. Values are stored in the compute
//! type `F`; GELU and the sums evaluate in f32.

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
fn bias_add_kernel<F: Float + CubeElement>(x: &mut Array<F>, bias: &Array<F>, cols: usize) {
    let i = ABSOLUTE_POS;
    if i < x.len() {
        x[i] = x[i] + bias[i % cols];
    }
}

/// Stage one of `bias_bwd`: each unit sums its column over its chunk of
/// rows, in order, in f32.
#[cube(launch)]
fn column_sum_partial_kernel<F: Float + CubeElement>(
    dy: &Array<F>,
    partials: &mut Array<f32>,
    rows: usize,
    cols: usize,
) {
    let (c, chunk, first, end) = column_chunk(rows);
    if c < cols {
        let mut s = f32::new(0.0);
        for r in first..end {
            s += f32::cast_from(dy[r * cols + c]);
        }
        partials[chunk * cols + c] = s;
    }
}

/// x[r, c] += bias[c], in place.
pub fn bias_add<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    x: &Buf<R, F>,
    bias: &Buf<R, F>,
) -> Result<()> {
    rows_of("bias_add", "x", x.len(), bias.len())?;
    let (count, dim) = elementwise_launch(client, x.len());
    bias_add_kernel::launch::<F, R>(client, count, dim, x.arg(), bias.arg(), bias.len());
    Ok(())
}

/// dbias = sum over rows of dy (added to what `dbias` holds if `accumulate`),
/// summed in f32; `dbias` may be f32 under compute-type `dy`.
pub fn bias_bwd<R: Runtime, F: Float + CubeElement, G: Float + CubeElement>(
    client: &ComputeClient<R>,
    dy: &Buf<R, F>,
    dbias: &Buf<R, G>,
    accumulate: bool,
) -> Result<()> {
    let cols = dbias.len();
    let rows = rows_of("bias_bwd", "dy", dy.len(), cols)?;
    let (count, dim, chunks) = column_partials_launch(rows, cols);
    let partials = Buf::<R, f32>::empty(client, chunks * cols);
    column_sum_partial_kernel::launch::<F, R>(
        client,
        count,
        dim,
        dy.arg(),
        partials.arg(),
        rows,
        cols,
    );
    sum_column_partials(client, &partials, dbias, chunks, accumulate);
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
/// (two fixed-order stages, as [`bias_bwd`]).
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

#[cube(launch)]
fn residual_add_kernel<F: Float + CubeElement>(
    y: &mut Array<F>,
    bias: &Array<F>,
    a: &Array<F>,
    b: &Array<F>,
    cols: usize,
) {
    let i = ABSOLUTE_POS;
    if i < y.len() {
        y[i] = y[i] + bias[i % cols] + a[i] + b[i];
    }
}

/// The end of a parallel-residual layer in one pass: `y += bias + a + b`
/// (y the MLP's down-projection, `bias` its bias, `a` the attention
/// branch, `b` the residual stream).
pub fn residual_add<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    y: &Buf<R, F>,
    bias: &Buf<R, F>,
    a: &Buf<R, F>,
    b: &Buf<R, F>,
) -> Result<()> {
    rows_of("residual_add", "y", y.len(), bias.len())?;
    expect_len("residual_add", "a", a.len(), y.len())?;
    expect_len("residual_add", "b", b.len(), y.len())?;
    let (count, dim) = elementwise_launch(client, y.len());
    residual_add_kernel::launch::<F, R>(
        client,
        count,
        dim,
        y.arg(),
        bias.arg(),
        a.arg(),
        b.arg(),
        bias.len(),
    );
    Ok(())
}

#[cube(launch)]
fn axpy_kernel<F: Float + CubeElement>(y: &mut Array<F>, x: &Array<F>, a: F) {
    let i = ABSOLUTE_POS;
    if i < y.len() {
        y[i] = y[i] + a * x[i];
    }
}

#[cube(launch)]
fn fill_kernel<F: Float + CubeElement>(y: &mut Array<F>, v: F) {
    let i = ABSOLUTE_POS;
    if i < y.len() {
        y[i] = v;
    }
}

/// y += a * x
pub fn axpy<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    y: &Buf<R, F>,
    x: &Buf<R, F>,
    a: f32,
) -> Result<()> {
    expect_len("axpy", "x", x.len(), y.len())?;
    let (count, dim) = elementwise_launch(client, y.len());
    axpy_kernel::launch::<F, R>(client, count, dim, y.arg(), x.arg(), F::new(a));
    Ok(())
}

/// y = v everywhere.
pub fn fill<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    y: &Buf<R, F>,
    v: f32,
) -> Result<()> {
    let (count, dim) = elementwise_launch(client, y.len());
    fill_kernel::launch::<F, R>(client, count, dim, y.arg(), F::new(v));
    Ok(())
}

/// dst = `data` from the host, bit for bit (negative zeros and NaN
/// payloads kept, unlike `0 + x`): uploaded, then copied into `dst`, which
/// may be a view of a larger buffer.
pub fn write<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    dst: &Buf<R, F>,
    data: &[F],
) -> Result<()> {
    expect_len("write", "data", data.len(), dst.len())?;
    cast(client, &Buf::<R, F>::upload(client, data), dst)?;
    Ok(())
}

#[cube(launch)]
fn cast_kernel<A: Float + CubeElement, B: Float + CubeElement>(x: &Array<A>, y: &mut Array<B>) {
    let i = ABSOLUTE_POS;
    if i < y.len() {
        y[i] = B::cast_from(x[i]);
    }
}

/// y = x converted element by element (f32 master weights to bf16 compute
/// copies and back, on devices that have bf16).
pub fn cast<R: Runtime, A: Float + CubeElement, B: Float + CubeElement>(
    client: &ComputeClient<R>,
    x: &Buf<R, A>,
    y: &Buf<R, B>,
) -> Result<()> {
    expect_len("cast", "x", x.len(), y.len())?;
    let (count, dim) = elementwise_launch(client, y.len());
    cast_kernel::launch::<A, B, R>(client, count, dim, x.arg(), y.arg());
    Ok(())
}

/// The CPU definition of this file's kernels, in plain Rust with f64
/// accumulation: what [`check`] holds them to (re-exported, with every
/// other op's, by [`crate::reference`]).
pub mod reference {
    /// y[r, c] = x[r, c] + bias[c]
    pub fn bias_add(x: &[f32], bias: &[f32]) -> Vec<f32> {
        let cols = bias.len();
        x.iter()
            .enumerate()
            .map(|(i, &v)| v + bias[i % cols])
            .collect()
    }

    /// dbias[c] = sum over rows of dy[r, c]
    pub fn bias_bwd(dy: &[f32], cols: usize) -> Vec<f32> {
        let mut acc = vec![0f64; cols];
        for (i, &v) in dy.iter().enumerate() {
            acc[i % cols] += v as f64;
        }
        acc.into_iter().map(|v| v as f32).collect()
    }

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
        let xb = c.up(&x);
        bias_add(client, &xb, &c.up(&bias)).map_err(launch_err)?;
        let fwd = (|| Ok(vec![rel_err(&c.down(&xb)?, &cpu::bias_add(&x, &bias))]))();
        c.record("bias_fwd", format!("{rows} x {cols}"), fwd);
        let db = Buf::<R, f32>::empty(client, cols);
        bias_bwd(client, &c.up(&x), &db, false).map_err(launch_err)?;
        let bwd = (|| Ok(vec![rel_err(&c.down(&db)?, &cpu::bias_bwd(&x, cols))]))();
        c.record("bias_bwd", format!("{rows} x {cols}"), bwd);

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

        // The parallel residual's end: y + bias + a + b.
        let (y, a, b) = (
            c.rand(rows * cols),
            c.rand(rows * cols),
            c.rand(rows * cols),
        );
        let want: Vec<f32> = cpu::bias_add(&y, &bias)
            .iter()
            .zip(a.iter().zip(&b))
            .map(|(yb, (a, b))| yb + a + b)
            .collect();
        let yb = c.up(&y);
        residual_add(client, &yb, &c.up(&bias), &c.up(&a), &c.up(&b)).map_err(launch_err)?;
        let res = (|| Ok(vec![rel_err(&c.down(&yb)?, &want)]))();
        c.record("residual_add", format!("{rows} x {cols}"), res);
    }
    Ok(())
}

/// f32 <-> bf16 and f32 <-> f16 round trips, each where the device has the
/// type (bf16: CUDA; f16: CUDA and most Vulkan drivers, lavapipe included);
/// the expected values are the host's `half` conversions (round to nearest
/// even).
pub(crate) fn check_casts<R: Runtime>(c: &mut Checker<R>) -> Result<(), String> {
    check_cast::<R, half::bf16>(c, "cast_f32_bf16", |v| half::bf16::from_f32(v).to_f32())?;
    // The inputs (|x| < 100) are well inside f16's range.
    check_cast::<R, half::f16>(c, "cast_f32_f16", |v| half::f16::from_f32(v).to_f32())?;
    Ok(())
}

fn check_cast<R: Runtime, H: Float + CubeElement>(
    c: &mut Checker<R>,
    name: &str,
    round: fn(f32) -> f32,
) -> Result<(), String> {
    let client = c.client;
    if !client
        .properties()
        .supports_type(<H as CubeElement>::cube_type())
    {
        c.skip(
            name,
            format!(
                "the device ({}) has no {}",
                R::name(client),
                <H as CubeElement>::type_name()
            ),
        );
        return Ok(());
    }
    for n in [1000usize, 4097] {
        let x: Vec<f32> = c.rand(n).iter().map(|v| v * 100.0).collect();
        let xb = c.up(&x);
        let h = Buf::<R, H>::empty(client, n);
        let back = Buf::<R, f32>::empty(client, n);
        cast(client, &xb, &h).map_err(launch_err)?;
        cast(client, &h, &back).map_err(launch_err)?;
        let want: Vec<f32> = x.iter().map(|&v| round(v)).collect();
        let res = (|| Ok(vec![rel_err(&c.down(&back)?, &want)]))();
        c.record(name, format!("{n} elements"), res);
    }
    Ok(())
}
