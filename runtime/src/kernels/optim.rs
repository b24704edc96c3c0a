//! AdamW over a flat parameter buffer, the global gradient norm and
//! clipping. The norm is a two-level fixed-tree reduction (partial sums per
//! cube, then one cube over the partials), so it is the same bits every run.

use cubecl::prelude::*;

use super::{block_sum, elementwise_launch, ROW_BLOCK};
use crate::buffer::Buf;
use crate::reference::AdamW;

/// PyTorch's AdamW on element `i`, with gradient `gi`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn adamw_element<F: Float + CubeElement>(
    p: &mut Array<F>,
    m: &mut Array<F>,
    v: &mut Array<F>,
    i: usize,
    gi: F,
    lr: F,
    beta1: F,
    beta2: F,
    eps: F,
    decay: F,
    bc1: F,
    bc2: F,
) {
    let mi = beta1 * m[i] + (F::new(1.0) - beta1) * gi;
    let vi = beta2 * v[i] + (F::new(1.0) - beta2) * gi * gi;
    let pi = p[i] * (F::new(1.0) - lr * decay);
    p[i] = pi - lr / bc1 * mi / (F::sqrt(vi / bc2) + eps);
    m[i] = mi;
    v[i] = vi;
}

/// The factor that unscales (by `inv_scale`) and clips gradients whose
/// scaled global norm is `norm`.
#[cube]
fn clip_coefficient<F: Float>(norm: F, max_norm: F, inv_scale: F) -> F {
    let n = norm * inv_scale;
    let mut coef = inv_scale;
    if n > max_norm {
        coef = inv_scale * (max_norm / (n + F::new(1e-6)));
    }
    coef
}

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn adamw_kernel<F: Float + CubeElement>(
    p: &mut Array<F>,
    g: &Array<F>,
    m: &mut Array<F>,
    v: &mut Array<F>,
    lr: F,
    beta1: F,
    beta2: F,
    eps: F,
    decay: F,
    bc1: F,
    bc2: F,
) {
    let i = ABSOLUTE_POS;
    if i < p.len() {
        adamw_element::<F>(p, m, v, i, g[i], lr, beta1, beta2, eps, decay, bc1, bc2);
    }
}

/// One AdamW step over `p` (PyTorch's formulation). Apply it per group of
/// tensors that share a weight decay (decayed matrices, undecayed norms and
/// biases), each a contiguous range of the flat buffer.
pub fn adamw<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    p: &Buf<R, F>,
    g: &Buf<R, F>,
    m: &Buf<R, F>,
    v: &Buf<R, F>,
    h: AdamW,
) {
    let bc1 = 1.0 - (h.beta1 as f64).powi(h.step as i32);
    let bc2 = 1.0 - (h.beta2 as f64).powi(h.step as i32);
    let (count, dim) = elementwise_launch(client, p.len());
    adamw_kernel::launch::<F, R>(
        client,
        count,
        dim,
        p.arg(),
        g.arg(),
        m.arg(),
        v.arg(),
        F::new(h.lr),
        F::new(h.beta1),
        F::new(h.beta2),
        F::new(h.eps),
        F::new(h.weight_decay),
        F::new(bc1 as f32),
        F::new(bc2 as f32),
    );
}

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn adamw_clipped_kernel<F: Float + CubeElement>(
    p: &mut Array<F>,
    g: &Array<F>,
    m: &mut Array<F>,
    v: &mut Array<F>,
    norm: &Array<F>,
    max_norm: F,
    inv_scale: F,
    lr: F,
    beta1: F,
    beta2: F,
    eps: F,
    decay: F,
    bc1: F,
    bc2: F,
) {
    let i = ABSOLUTE_POS;
    if i < p.len() {
        // The coefficient of `clip_kernel`, applied to this element's
        // gradient in registers instead of a pass of its own.
        let gi = g[i] * clip_coefficient::<F>(norm[0], max_norm, inv_scale);
        adamw_element::<F>(p, m, v, i, gi, lr, beta1, beta2, eps, decay, bc1, bc2);
    }
}

/// [`clip`] and [`adamw`] in one pass over the parameters: the gradient
/// is unscaled and clipped in registers (`norm[0]` is the norm of `g`,
/// which carries a loss scale of `1 / inv_scale`) and `g` is left as it
/// was. The same bits as the two passes.
#[allow(clippy::too_many_arguments)]
pub fn adamw_clipped<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    p: &Buf<R, F>,
    g: &Buf<R, F>,
    m: &Buf<R, F>,
    v: &Buf<R, F>,
    norm: &Buf<R, F>,
    max_norm: f32,
    inv_scale: f32,
    h: AdamW,
) {
    let bc1 = 1.0 - (h.beta1 as f64).powi(h.step as i32);
    let bc2 = 1.0 - (h.beta2 as f64).powi(h.step as i32);
    let (count, dim) = elementwise_launch(client, p.len());
    adamw_clipped_kernel::launch::<F, R>(
        client,
        count,
        dim,
        p.arg(),
        g.arg(),
        m.arg(),
        v.arg(),
        norm.arg(),
        F::new(max_norm),
        F::new(inv_scale),
        F::new(h.lr),
        F::new(h.beta1),
        F::new(h.beta2),
        F::new(h.eps),
        F::new(h.weight_decay),
        F::new(bc1 as f32),
        F::new(bc2 as f32),
    );
}

/// Elements each unit of the norm's first level sums before the tree.
const NORM_ITEMS: usize = 16;

/// Elements of `g` behind each partial sum of [`sum_squares_partials`]: a
/// slice that starts at a multiple of it has the partials of the whole
/// vector's blocks there, so shards cut at multiples of it give, gathered
/// in order, the very partials (and norm) of the unsharded vector.
pub const NORM_SPAN: usize = ROW_BLOCK as usize * NORM_ITEMS;

#[cube(launch)]
fn sum_squares_partial_kernel<F: Float + CubeElement>(
    g: &Array<F>,
    partials: &mut Array<F>,
    n: usize,
    #[comptime] block: u32,
) {
    let tid = UNIT_POS as usize;
    let cube = CUBE_POS;
    let span = block as usize * 16;
    let start = cube * span;
    let mut s = F::new(0.0);
    for k in 0..16usize {
        let i = start + k * block as usize + tid;
        if i < n {
            s += g[i] * g[i];
        }
    }
    let mut smem = SharedMemory::<F>::new(block as usize);
    smem[tid] = s;
    let total = block_sum::<F>(&mut smem);
    if tid == 0 {
        partials[cube] = total;
    }
}

#[cube(launch)]
fn sum_partials_kernel<F: Float + CubeElement>(
    partials: &Array<F>,
    out: &mut Array<F>,
    n: usize,
    #[comptime] block: u32,
) {
    let tid = UNIT_POS as usize;
    let mut s = F::new(0.0);
    let mut i = tid;
    while i < n {
        s += partials[i];
        i += block as usize;
    }
    let mut smem = SharedMemory::<F>::new(block as usize);
    smem[tid] = s;
    let total = block_sum::<F>(&mut smem);
    if tid == 0 {
        out[0] = F::sqrt(total);
    }
}

#[cube(launch)]
fn clip_kernel<F: Float + CubeElement>(
    g: &mut Array<F>,
    norm: &Array<F>,
    max_norm: F,
    inv_scale: F,
) {
    let i = ABSOLUTE_POS;
    if i < g.len() {
        let coef = clip_coefficient::<F>(norm[0], max_norm, inv_scale);
        if coef != F::new(1.0) {
            g[i] = g[i] * coef;
        }
    }
}

/// The global L2 norm of `g` into `norm[0]` (device side, no sync):
/// [`sum_squares_partials`] then [`norm_from_partials`].
pub fn grad_norm<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    g: &Buf<R, F>,
    norm: &Buf<R, F>,
) {
    let partials = Buf::<R, F>::empty(client, partials_len(g.len()));
    sum_squares_partials(client, g, &partials);
    norm_from_partials(client, &partials, norm);
}

/// How many partial sums [`sum_squares_partials`] writes for `n` elements.
pub fn partials_len(n: usize) -> usize {
    n.div_ceil(NORM_SPAN).max(1)
}

/// The norm's first level: `partials[c]` = the sum of squares of
/// `g[c * NORM_SPAN ..][.. NORM_SPAN]`, summed in a fixed order. One cube
/// of [`ROW_BLOCK`] units per span, each unit striding over 16 elements
/// before the cube's tree; wide vectors spread over x and y.
pub fn sum_squares_partials<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    g: &Buf<R, F>,
    partials: &Buf<R, F>,
) {
    let cubes = partials_len(g.len());
    assert_eq!(partials.len(), cubes, "partials for {} elements", g.len());
    let x = cubes.min(65_535);
    let y = cubes.div_ceil(65_535);
    sum_squares_partial_kernel::launch::<F, R>(
        client,
        CubeCount::Static(x as u32, y as u32, 1),
        CubeDim::new_1d(ROW_BLOCK),
        g.arg(),
        partials.arg(),
        g.len(),
        ROW_BLOCK,
    );
}

/// The norm's second level: `norm[0]` = sqrt of the sum of all
/// `partials`, one cube summing them in a fixed order.
pub fn norm_from_partials<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    partials: &Buf<R, F>,
    norm: &Buf<R, F>,
) {
    sum_partials_kernel::launch::<F, R>(
        client,
        CubeCount::Static(1, 1, 1),
        CubeDim::new_1d(ROW_BLOCK),
        partials.arg(),
        norm.arg(),
        partials.len(),
        ROW_BLOCK,
    );
}

/// Unscales and clips in one pass, reading the norm on the device: `g`
/// holds gradients multiplied by a loss scale `1 / inv_scale` (1 without
/// loss scaling) and `norm[0]` their norm; afterwards `g` holds the true
/// gradients, times `max_norm / true norm` when that norm exceeds `max_norm`.
pub fn clip<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    g: &Buf<R, F>,
    norm: &Buf<R, F>,
    max_norm: f32,
    inv_scale: f32,
) {
    let (count, dim) = elementwise_launch(client, g.len());
    clip_kernel::launch::<F, R>(
        client,
        count,
        dim,
        g.arg(),
        norm.arg(),
        F::new(max_norm),
        F::new(inv_scale),
    );
}

#[cube(launch)]
fn record_scalar_kernel(src: &Array<f32>, dst: &mut Array<f32>, slot: usize, mult: f32) {
    if ABSOLUTE_POS == 0 {
        dst[slot] = src[0] * mult;
    }
}

/// `dst[slot] = src[0] * mult` on the device: a step's gradient norm kept
/// in a log of steps until the host reads them together. One unit.
pub fn record_scalar<R: Runtime>(
    client: &ComputeClient<R>,
    src: &Buf<R, f32>,
    dst: &Buf<R, f32>,
    slot: usize,
    mult: f32,
) {
    assert!(slot < dst.len(), "slot {slot} of {}", dst.len());
    record_scalar_kernel::launch::<R>(
        client,
        CubeCount::Static(1, 1, 1),
        CubeDim::new_1d(1),
        src.arg(),
        dst.arg(),
        slot,
        mult,
    );
}
