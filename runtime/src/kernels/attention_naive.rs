//! The first attention kernels, kept only so that `prior bench kernels`
//! can time them beside [`super::attention`] in the same run; the model
//! never calls them. The CPU reference stays the definition of attention.
//!
//! Forward: one unit per (batch, head, query) streams over the keys with an
//! online softmax (running max and sum, rescaling the accumulator), writes
//! the output and saves the log-sum-exp. Backward recomputes the
//! probabilities from q, k and the saved log-sum-exp: `delta = dO . O` per
//! query (the flash kernels' own pass), then one dq per query, one dk and
//! dv per key (walking the queries that see it). Each unit writes only its own
//! outputs, so there are no atomics and the result is deterministic.
//!
//! This is the simple, memory-light form: one row per unit, a head-sized
//! local array, no tiling in shared memory, masked keys never skipped in
//! blocks.

use cubecl::prelude::*;

use super::AttnShape;
use super::{elementwise_launch, expect_len};
use crate::buffer::Buf;
use crate::error::Result;

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn attention_fwd_kernel<F: Float + CubeElement>(
    qkv: &Array<F>,
    out: &mut Array<F>,
    lse: &mut Array<F>,
    batch: usize,
    seq: usize,
    heads: usize,
    scale: F,
    #[comptime] d: usize,
) {
    let idx = ABSOLUTE_POS;
    if idx < batch * heads * seq {
        let i = idx % seq;
        let bh = idx / seq;
        let h = bh % heads;
        let b = bh / heads;
        let ti = b * seq + i;
        let qo = (ti * heads + h) * 3 * d;
        let mut acc = Array::<F>::new(d);
        for c in 0..d {
            acc[c] = F::new(0.0);
        }
        let mut m = F::min_value();
        let mut l = F::new(0.0);
        for j in 0..i + 1 {
            let ko = ((b * seq + j) * heads + h) * 3 * d + d;
            let vo = ko + d;
            let mut s = F::new(0.0);
            for c in 0..d {
                s += qkv[qo + c] * qkv[ko + c];
            }
            s *= scale;
            let m_new = max(m, s);
            let corr = F::exp(m - m_new);
            let p = F::exp(s - m_new);
            l = l * corr + p;
            for c in 0..d {
                acc[c] = acc[c] * corr + p * qkv[vo + c];
            }
            m = m_new;
        }
        let oo = (ti * heads + h) * d;
        for c in 0..d {
            out[oo + c] = acc[c] / l;
        }
        lse[idx] = m + F::ln(l);
    }
}

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn attention_dq_kernel<F: Float + CubeElement>(
    qkv: &Array<F>,
    dout: &Array<F>,
    lse: &Array<F>,
    delta: &Array<f32>,
    dqkv: &mut Array<F>,
    batch: usize,
    seq: usize,
    heads: usize,
    scale: F,
    #[comptime] d: usize,
) {
    let idx = ABSOLUTE_POS;
    if idx < batch * heads * seq {
        let i = idx % seq;
        let bh = idx / seq;
        let h = bh % heads;
        let b = bh / heads;
        let ti = b * seq + i;
        let qo = (ti * heads + h) * 3 * d;
        let oo = (ti * heads + h) * d;
        let l = lse[idx];
        let di = F::cast_from(delta[idx]);
        let mut acc = Array::<F>::new(d);
        for c in 0..d {
            acc[c] = F::new(0.0);
        }
        for j in 0..i + 1 {
            let ko = ((b * seq + j) * heads + h) * 3 * d + d;
            let vo = ko + d;
            let mut s = F::new(0.0);
            let mut dp = F::new(0.0);
            for c in 0..d {
                s += qkv[qo + c] * qkv[ko + c];
                dp += dout[oo + c] * qkv[vo + c];
            }
            let p = F::exp(s * scale - l);
            let ds = p * (dp - di) * scale;
            for c in 0..d {
                acc[c] += ds * qkv[ko + c];
            }
        }
        for c in 0..d {
            dqkv[qo + c] = acc[c];
        }
    }
}

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn attention_dkv_kernel<F: Float + CubeElement>(
    qkv: &Array<F>,
    dout: &Array<F>,
    lse: &Array<F>,
    delta: &Array<f32>,
    dqkv: &mut Array<F>,
    batch: usize,
    seq: usize,
    heads: usize,
    scale: F,
    #[comptime] d: usize,
) {
    let idx = ABSOLUTE_POS;
    if idx < batch * heads * seq {
        let j = idx % seq;
        let bh = idx / seq;
        let h = bh % heads;
        let b = bh / heads;
        let ko = ((b * seq + j) * heads + h) * 3 * d + d;
        let vo = ko + d;
        let mut dk = Array::<F>::new(d);
        let mut dv = Array::<F>::new(d);
        for c in 0..d {
            dk[c] = F::new(0.0);
            dv[c] = F::new(0.0);
        }
        for i in j..seq {
            let ti = b * seq + i;
            let qo = (ti * heads + h) * 3 * d;
            let oo = (ti * heads + h) * d;
            let row = bh * seq + i;
            let mut s = F::new(0.0);
            let mut dp = F::new(0.0);
            for c in 0..d {
                s += qkv[qo + c] * qkv[ko + c];
                dp += dout[oo + c] * qkv[vo + c];
            }
            let p = F::exp(s * scale - lse[row]);
            let ds = p * (dp - F::cast_from(delta[row])) * scale;
            for c in 0..d {
                dk[c] += ds * qkv[qo + c];
                dv[c] += p * dout[oo + c];
            }
        }
        for c in 0..d {
            dqkv[ko + c] = dk[c];
            dqkv[vo + c] = dv[c];
        }
    }
}

/// out `[tokens, heads, head_dim]` and lse `[batch, heads, seq]` from qkv.
pub fn attention_fwd<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    qkv: &Buf<R, F>,
    out: &Buf<R, F>,
    lse: &Buf<R, F>,
    s: AttnShape,
) -> Result<()> {
    s.check_qkv("attention_fwd", qkv.len(), out.len(), lse.len())?;
    let (count, dim) = elementwise_launch(client, s.batch * s.heads * s.seq);
    attention_fwd_kernel::launch::<F, R>(
        client,
        count,
        dim,
        qkv.arg(),
        out.arg(),
        lse.arg(),
        s.batch,
        s.seq,
        s.heads,
        F::new(1.0 / (s.head_dim as f32).sqrt()),
        s.head_dim,
    );
    Ok(())
}

/// d(qkv) (overwritten) from d(out), recomputing the probabilities.
/// `delta` is f32 scratch of `batch * heads * seq` elements, filled by the
/// flash kernels' own `delta = dO . O` pass.
#[allow(clippy::too_many_arguments)]
pub fn attention_bwd<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    dout: &Buf<R, F>,
    qkv: &Buf<R, F>,
    out: &Buf<R, F>,
    lse: &Buf<R, F>,
    delta: &Buf<R, f32>,
    dqkv: &Buf<R, F>,
    s: AttnShape,
) -> Result<()> {
    s.check_qkv("attention_bwd", qkv.len(), out.len(), lse.len())?;
    expect_len("attention_bwd", "dout", dout.len(), out.len())?;
    expect_len("attention_bwd", "delta", delta.len(), lse.len())?;
    expect_len("attention_bwd", "dqkv", dqkv.len(), qkv.len())?;
    let rows = s.batch * s.heads * s.seq;
    let scale = F::new(1.0 / (s.head_dim as f32).sqrt());
    let (count, dim) = elementwise_launch(client, rows);
    super::attention::delta_rows(client, dout, out, delta, s);
    attention_dq_kernel::launch::<F, R>(
        client,
        count.clone(),
        dim,
        qkv.arg(),
        dout.arg(),
        lse.arg(),
        delta.arg(),
        dqkv.arg(),
        s.batch,
        s.seq,
        s.heads,
        scale,
        s.head_dim,
    );
    attention_dkv_kernel::launch::<F, R>(
        client,
        count,
        dim,
        qkv.arg(),
        dout.arg(),
        lse.arg(),
        delta.arg(),
        dqkv.arg(),
        s.batch,
        s.seq,
        s.heads,
        scale,
        s.head_dim,
    );
    Ok(())
}
