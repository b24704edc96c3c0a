//! The element-wise vector ops: bias add and its column-sum backward, the
//! parallel residual's closing add, scaling and accumulation, fills, and
//! casts between float types (GELU, fused with its bias, is gelu.rs).
//! Values are stored in the compute type `F`; the sums evaluate in f32.

use cubecl::prelude::*;

use super::{
    column_chunk, column_partials_launch, elementwise_launch, expect_len, rows_of,
    sum_column_partials,
};
use crate::buffer::Buf;
use crate::check::{launch_err, rel_err, Checker};
use crate::error::Result;
use crate::reference as cpu;

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
}

// `prior runtime check` (and the tests): this file's kernels against
// [`reference`] on fresh random inputs.

pub(crate) fn check<R: Runtime>(c: &mut Checker<R>) -> Result<(), String> {
    let client = c.client;
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
