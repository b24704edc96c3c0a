//! AdamW over a flat parameter buffer, the global gradient norm and
//! clipping. The norm is a two-level fixed-tree reduction (partial sums per
//! cube, then one cube over the partials), so it is the same bits every run.

use cubecl::prelude::*;

use super::{at_least, block_sum, elementwise_launch, expect_len, ROW_BLOCK};
use crate::buffer::{sync, Buf};
use crate::check::{launch_err, rel_err, Checker};
use crate::error::Result;
use crate::reference as cpu;

/// Hyperparameters of one AdamW step.
#[derive(Debug, Clone, Copy)]
pub struct AdamW {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    /// 1-based step number, for bias correction.
    pub step: u32,
}

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
) -> Result<()> {
    expect_len("adamw", "g", g.len(), p.len())?;
    expect_len("adamw", "m", m.len(), p.len())?;
    expect_len("adamw", "v", v.len(), p.len())?;
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
    Ok(())
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
) -> Result<()> {
    expect_len("adamw_clipped", "g", g.len(), p.len())?;
    expect_len("adamw_clipped", "m", m.len(), p.len())?;
    expect_len("adamw_clipped", "v", v.len(), p.len())?;
    at_least("adamw_clipped", "norm", norm.len(), 1)?;
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
    Ok(())
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
) -> Result<()> {
    at_least("grad_norm", "norm", norm.len(), 1)?;
    let partials = Buf::<R, F>::empty(client, partials_len(g.len()));
    sum_squares_partials(client, g, &partials)?;
    norm_from_partials(client, &partials, norm)?;
    Ok(())
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
) -> Result<()> {
    let cubes = partials_len(g.len());
    expect_len("sum_squares_partials", "partials", partials.len(), cubes)?;
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
    Ok(())
}

/// The norm's second level: `norm[0]` = sqrt of the sum of all
/// `partials`, one cube summing them in a fixed order.
pub fn norm_from_partials<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    partials: &Buf<R, F>,
    norm: &Buf<R, F>,
) -> Result<()> {
    at_least("norm_from_partials", "norm", norm.len(), 1)?;
    sum_partials_kernel::launch::<F, R>(
        client,
        CubeCount::Static(1, 1, 1),
        CubeDim::new_1d(ROW_BLOCK),
        partials.arg(),
        norm.arg(),
        partials.len(),
        ROW_BLOCK,
    );
    Ok(())
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
) -> Result<()> {
    at_least("clip", "norm", norm.len(), 1)?;
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
    Ok(())
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
) -> Result<()> {
    at_least("record_scalar", "dst", dst.len(), slot + 1)?;
    record_scalar_kernel::launch::<R>(
        client,
        CubeCount::Static(1, 1, 1),
        CubeDim::new_1d(1),
        src.arg(),
        dst.arg(),
        slot,
        mult,
    );
    Ok(())
}

/// The CPU definition of this file's kernels, in plain Rust with f64
/// accumulation: what [`check`] holds them to (re-exported, with every
/// other op's, by [`crate::reference`]).
pub mod reference {
    use super::AdamW;

    /// One AdamW step (PyTorch's formulation: decoupled decay, then the
    /// bias-corrected Adam update), in place.
    pub fn adamw(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: AdamW) {
        let bc1 = 1.0 - (h.beta1 as f64).powi(h.step as i32);
        let bc2 = 1.0 - (h.beta2 as f64).powi(h.step as i32);
        for i in 0..p.len() {
            let gi = g[i] as f64;
            let mi = h.beta1 as f64 * m[i] as f64 + (1.0 - h.beta1 as f64) * gi;
            let vi = h.beta2 as f64 * v[i] as f64 + (1.0 - h.beta2 as f64) * gi * gi;
            let mut pi = p[i] as f64 * (1.0 - h.lr as f64 * h.weight_decay as f64);
            pi -= h.lr as f64 / bc1 * mi / ((vi / bc2).sqrt() + h.eps as f64);
            p[i] = pi as f32;
            m[i] = mi as f32;
            v[i] = vi as f32;
        }
    }

    /// Global L2 norm.
    pub fn grad_norm(g: &[f32]) -> f32 {
        g.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt() as f32
    }

    /// The factor clipping multiplies gradients by.
    pub fn clip_scale(norm: f32, max_norm: f32) -> f32 {
        if norm > max_norm {
            max_norm / (norm + 1e-6)
        } else {
            1.0
        }
    }
}

// `prior runtime check` (and the tests): this file's kernels against
// [`reference`] on fresh random inputs.

/// The checks' AdamW: a learning rate large enough that an error in the
/// update shows, decay on, at 1-based `step`.
fn check_hyper(step: u32) -> AdamW {
    AdamW {
        lr: 1e-2,
        beta1: 0.9,
        beta2: 0.95,
        eps: 1e-8,
        weight_decay: 0.1,
        step,
    }
}

pub(crate) fn check<R: Runtime>(c: &mut Checker<R>) -> Result<(), String> {
    let client = c.client;
    for n in [1000usize, 70_001] {
        let mut p = c.rand(n);
        let mut m = vec![0f32; n];
        let mut v = vec![0f32; n];
        let (pb, mb, vb) = (c.up(&p), c.up(&m), c.up(&v));
        let mut errs = Ok(Vec::new());
        for step in 1..=3u32 {
            let g = c.rand(n);
            let h = check_hyper(step);
            cpu::adamw(&mut p, &g, &mut m, &mut v, h);
            adamw(client, &pb, &c.up(&g), &mb, &vb, h).map_err(launch_err)?;
        }
        if let Ok(e) = &mut errs {
            match (c.down(&pb), c.down(&mb), c.down(&vb)) {
                (Ok(a), Ok(b), Ok(d)) => {
                    e.extend([rel_err(&a, &p), rel_err(&b, &m), rel_err(&d, &v)])
                }
                _ => errs = Err("download failed".to_string()),
            }
        }
        c.record("adamw", format!("{n} parameters, 3 steps"), errs);

        let g: Vec<f32> = c.rand(n);
        let gb = c.up(&g);
        let norm = Buf::<R, f32>::empty(client, 1);
        grad_norm(client, &gb, &norm).map_err(launch_err)?;
        let want = cpu::grad_norm(&g);
        let res = (|| Ok(vec![rel_err(&c.down(&norm)?, &[want])]))();
        c.record("grad_norm", format!("{n} elements"), res);
        let max_norm = want * 0.5;
        clip(client, &gb, &norm, max_norm, 1.0).map_err(launch_err)?;
        let scale = cpu::clip_scale(want, max_norm);
        let clipped: Vec<f32> = g.iter().map(|x| x * scale).collect();
        let res = (|| Ok(vec![rel_err(&c.down(&gb)?, &clipped)]))();
        c.record("grad_clip", format!("{n} elements"), res);

        // Loss-scaled gradients (f16 training): the norm of g * 1024, then
        // unscale and clip in one pass, to the clipped true gradients.
        let loss_scale = 1024.0f32;
        let scaled = c.up(&g.iter().map(|x| x * loss_scale).collect::<Vec<_>>());
        grad_norm(client, &scaled, &norm).map_err(launch_err)?;
        clip(client, &scaled, &norm, max_norm, 1.0 / loss_scale).map_err(launch_err)?;
        let res = (|| Ok(vec![rel_err(&c.down(&scaled)?, &clipped)]))();
        c.record(
            "grad_unscale_clip",
            format!("{n} elements, scale 1024"),
            res,
        );

        // Clip, unscale and AdamW in one pass: the reference clips the true
        // gradients, then steps; the device sees them loss-scaled.
        let (mut p, mut m) = (c.rand(n), c.rand(n));
        let mut v: Vec<f32> = c.rand(n).iter().map(|x| x.abs()).collect();
        let (pb, mb, vb) = (c.up(&p), c.up(&m), c.up(&v));
        let h = check_hyper(4);
        cpu::adamw(&mut p, &clipped, &mut m, &mut v, h);
        let scaled = c.up(&g.iter().map(|x| x * loss_scale).collect::<Vec<_>>());
        grad_norm(client, &scaled, &norm).map_err(launch_err)?;
        adamw_clipped(
            client,
            &pb,
            &scaled,
            &mb,
            &vb,
            &norm,
            max_norm,
            1.0 / loss_scale,
            h,
        )
        .map_err(launch_err)?;
        let res = (|| {
            Ok(vec![
                rel_err(&c.down(&pb)?, &p),
                rel_err(&c.down(&mb)?, &m),
                rel_err(&c.down(&vb)?, &v),
            ])
        })();
        c.record(
            "adamw_clipped",
            format!("{n} parameters, scale 1024, clipped"),
            res,
        );
    }
    let _ = sync(client);
    Ok(())
}
