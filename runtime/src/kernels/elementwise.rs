//! GELU (exact, erf form, as GPT-NeoX), bias add and its column-sum
//! backward, scaling and accumulation. Values are stored in the compute
//! type `F`; GELU and the sums evaluate in f32.

use cubecl::prelude::*;

use super::{column_chunk, column_partials_launch, elementwise_launch, sum_column_partials};
use crate::buffer::Buf;

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
) {
    let (count, dim) = elementwise_launch(client, y.len());
    gelu_fwd_kernel::launch::<F, R>(client, count, dim, x.arg(), y.arg());
}

/// dx = dy * gelu'(x)
pub fn gelu_bwd<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    dy: &Buf<R, F>,
    x: &Buf<R, F>,
    dx: &Buf<R, F>,
) {
    let (count, dim) = elementwise_launch(client, dx.len());
    gelu_bwd_kernel::launch::<F, R>(client, count, dim, dy.arg(), x.arg(), dx.arg());
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
) {
    let (count, dim) = elementwise_launch(client, x.len());
    bias_add_kernel::launch::<F, R>(client, count, dim, x.arg(), bias.arg(), bias.len());
}

/// dbias = sum over rows of dy (added to what `dbias` holds if `accumulate`),
/// summed in f32; `dbias` may be f32 under compute-type `dy`.
pub fn bias_bwd<R: Runtime, F: Float + CubeElement, G: Float + CubeElement>(
    client: &ComputeClient<R>,
    dy: &Buf<R, F>,
    dbias: &Buf<R, G>,
    accumulate: bool,
) {
    let cols = dbias.len();
    let rows = dy.len() / cols;
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
) {
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
) {
    let cols = dbias.len();
    let rows = pre.len() / cols;
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
) {
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
) {
    let (count, dim) = elementwise_launch(client, y.len());
    axpy_kernel::launch::<F, R>(client, count, dim, y.arg(), x.arg(), F::new(a));
}

/// y = v everywhere.
pub fn fill<R: Runtime, F: Float + CubeElement>(client: &ComputeClient<R>, y: &Buf<R, F>, v: f32) {
    let (count, dim) = elementwise_launch(client, y.len());
    fill_kernel::launch::<F, R>(client, count, dim, y.arg(), F::new(v));
}

/// dst = `data` from the host, bit for bit (negative zeros and NaN
/// payloads kept, unlike `0 + x`): uploaded, then copied into `dst`, which
/// may be a view of a larger buffer.
pub fn write<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    dst: &Buf<R, F>,
    data: &[F],
) {
    assert_eq!(dst.len(), data.len(), "write of {} values", data.len());
    cast(client, &Buf::<R, F>::upload(client, data), dst);
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
) {
    let (count, dim) = elementwise_launch(client, y.len());
    cast_kernel::launch::<A, B, R>(client, count, dim, x.arg(), y.arg());
}
