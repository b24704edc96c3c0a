//! Rotary position embedding, GPT-NeoX style (rotate-half), on the first
//! `rotary_dims` of each head's q and k inside the fused qkv rows, in
//! place. The cos/sin tables are computed once on the host in f64 (as
//! Hugging Face caches them), so large positions lose no precision on the
//! device. The backward is the inverse rotation.

use cubecl::prelude::*;

use super::AttnShape;
use super::{at_least, elementwise_launch, expect_len};
use crate::buffer::Buf;
use crate::check::{launch_err, rel_err, Checker};
use crate::error::Result;
use crate::reference as cpu;

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn rotary_kernel<F: Float + CubeElement>(
    qkv: &mut Array<F>,
    cos: &Array<f32>,
    sin: &Array<f32>,
    tokens: usize,
    seq: usize,
    heads: usize,
    head_dim: usize,
    half: usize,
    direction: f32,
) {
    // One unit per (token, head, q-or-k, pair index).
    let i = ABSOLUTE_POS;
    if i < tokens * heads * 2 * half {
        let k = i % half;
        let rest = i / half;
        let part = rest % 2;
        let th = rest / 2;
        let t = th / heads;
        let pos = t % seq;
        let base = (th * 3 + part) * head_dim;
        let c = cos[pos * half + k];
        let s = sin[pos * half + k] * direction;
        let x1 = f32::cast_from(qkv[base + k]);
        let x2 = f32::cast_from(qkv[base + k + half]);
        qkv[base + k] = F::cast_from(x1 * c - x2 * s);
        qkv[base + k + half] = F::cast_from(x2 * c + x1 * s);
    }
}

/// cos/sin tables `[seq, rotary_dims / 2]` for base 10000, in f32 whatever
/// the activations' type (a bf16 angle would be off by a degree at
/// position 100).
pub struct RotaryTables<R: Runtime> {
    pub cos: Buf<R, f32>,
    pub sin: Buf<R, f32>,
}

impl<R: Runtime> RotaryTables<R> {
    pub fn new(client: &ComputeClient<R>, seq: usize, rotary_dims: usize) -> Self {
        let half = rotary_dims / 2;
        let mut cos = Vec::with_capacity(seq * half);
        let mut sin = Vec::with_capacity(seq * half);
        for pos in 0..seq {
            for i in 0..half {
                let inv_freq = 1.0 / 10000f64.powf(2.0 * i as f64 / rotary_dims as f64);
                let (s, c) = (pos as f64 * inv_freq).sin_cos();
                cos.push(c as f32);
                sin.push(s as f32);
            }
        }
        RotaryTables {
            cos: Buf::upload(client, &cos),
            sin: Buf::upload(client, &sin),
        }
    }
}

/// Rotates q and k in place (`inverse` undoes it: the backward of rotary
/// applied to dq and dk).
pub fn rotary<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    qkv: &Buf<R, F>,
    tables: &RotaryTables<R>,
    s: AttnShape,
    inverse: bool,
) -> Result<()> {
    let half = s.rotary_dims / 2;
    expect_len("rotary", "qkv", qkv.len(), s.qkv_len())?;
    for (what, table) in [("cos", &tables.cos), ("sin", &tables.sin)] {
        at_least("rotary", what, table.len(), s.seq * half)?;
    }
    let n = s.tokens() * s.heads * 2 * half;
    if n == 0 {
        return Ok(());
    }
    let (count, dim) = elementwise_launch(client, n);
    rotary_kernel::launch::<F, R>(
        client,
        count,
        dim,
        qkv.arg(),
        tables.cos.arg(),
        tables.sin.arg(),
        s.tokens(),
        s.seq,
        s.heads,
        s.head_dim,
        half,
        if inverse { -1.0 } else { 1.0 },
    );
    Ok(())
}

/// The CPU definition of this file's kernels, in plain Rust with f64
/// accumulation: what [`check`] holds them to (re-exported, with every
/// other op's, by [`crate::reference`]).
pub mod reference {
    use super::AttnShape;

    /// GPT-NeoX rotary (rotate-half) on the first `rotary_dims` of q and k,
    /// position = index within the sequence, base 10000. In place.
    pub fn rotary(qkv: &mut [f32], s: AttnShape, inverse: bool) {
        let half = s.rotary_dims / 2;
        for t in 0..s.tokens() {
            let pos = (t % s.seq) as f64;
            for h in 0..s.heads {
                for p in 0..2 {
                    let o = s.qkv_at(t, h, p);
                    for i in 0..half {
                        let inv_freq = 1.0 / 10000f64.powf(2.0 * i as f64 / s.rotary_dims as f64);
                        let (sin, cos) = (pos * inv_freq).sin_cos();
                        let sin = if inverse { -sin } else { sin };
                        let (x1, x2) = (qkv[o + i] as f64, qkv[o + i + half] as f64);
                        qkv[o + i] = (x1 * cos - x2 * sin) as f32;
                        qkv[o + i + half] = (x2 * cos + x1 * sin) as f32;
                    }
                }
            }
        }
    }
}

// `prior runtime check` (and the tests): this file's kernels against
// [`reference`] on fresh random inputs.

pub(crate) fn check<R: Runtime>(c: &mut Checker<R>) -> Result<(), String> {
    let client = c.client;
    for s in super::attention::small_shapes() {
        let qkv = c.rand(s.tokens() * s.heads * 3 * s.head_dim);
        let dy = c.rand(qkv.len());
        let case = format!(
            "batch {}, seq {}, heads {}, head_dim {}, rotary {}",
            s.batch, s.seq, s.heads, s.head_dim, s.rotary_dims
        );
        let tables = RotaryTables::<R>::new(client, s.seq, s.rotary_dims);
        let b = c.up(&qkv);
        rotary(client, &b, &tables, s, false).map_err(launch_err)?;
        let mut want = qkv.clone();
        cpu::rotary(&mut want, s, false);
        let fwd = (|| Ok(vec![rel_err(&c.down(&b)?, &want)]))();
        c.record("rotary_fwd", case.clone(), fwd);
        let d = c.up(&dy);
        rotary(client, &d, &tables, s, true).map_err(launch_err)?;
        let mut want = dy.clone();
        cpu::rotary(&mut want, s, true);
        let bwd = (|| Ok(vec![rel_err(&c.down(&d)?, &want)]))();
        c.record("rotary_bwd", case, bwd);
    }
    Ok(())
}
