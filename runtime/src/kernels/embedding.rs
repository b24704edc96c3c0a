//! Token embedding: a gather forward; a deterministic scatter-add backward.
//!
//! The backward must not race (two positions with the same token adding
//! into one row) and must not depend on scheduling, so the host groups
//! positions by token id first ([`EmbeddingGrouping`]) and each thread sums
//! one (token, channel) over its positions in order.

use cubecl::prelude::*;

use super::elementwise_launch;
use crate::buffer::Buf;

#[cube(launch)]
fn embedding_fwd_kernel<F: Float + CubeElement>(
    table: &Array<F>,
    ids: &Array<u32>,
    out: &mut Array<F>,
    dim: usize,
) {
    let i = ABSOLUTE_POS;
    if i < out.len() {
        let n = i / dim;
        let c = i % dim;
        out[i] = table[ids[n] as usize * dim + c];
    }
}

#[cube(launch)]
fn embedding_bwd_kernel<F: Float + CubeElement, G: Float + CubeElement>(
    dout: &Array<F>,
    unique: &Array<u32>,
    offsets: &Array<u32>,
    positions: &Array<u32>,
    dtable: &mut Array<G>,
    n_unique: usize,
    dim: usize,
) {
    let i = ABSOLUTE_POS;
    if i < n_unique * dim {
        let u = i / dim;
        let c = i % dim;
        let mut s = f32::new(0.0);
        for k in offsets[u]..offsets[u + 1] {
            s += f32::cast_from(dout[positions[k as usize] as usize * dim + c]);
        }
        let at = unique[u] as usize * dim + c;
        dtable[at] = G::cast_from(f32::cast_from(dtable[at]) + s);
    }
}

/// out[n, :] = table[ids[n], :]
pub fn embedding_fwd<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    table: &Buf<R, F>,
    ids: &Buf<R, u32>,
    out: &Buf<R, F>,
    dim: usize,
) {
    let (count, cube) = elementwise_launch(client, out.len());
    embedding_fwd_kernel::launch::<F, R>(
        client,
        count,
        cube,
        table.arg(),
        ids.arg(),
        out.arg(),
        dim,
    );
}

/// Positions grouped by token id, built on the host from the batch's ids.
pub struct EmbeddingGrouping<R: Runtime> {
    pub unique: Buf<R, u32>,
    pub offsets: Buf<R, u32>,
    pub positions: Buf<R, u32>,
    pub n_unique: usize,
}

impl<R: Runtime> EmbeddingGrouping<R> {
    pub fn new(client: &ComputeClient<R>, ids: &[u32]) -> Self {
        let mut order: Vec<u32> = (0..ids.len() as u32).collect();
        order.sort_by_key(|&p| (ids[p as usize], p));
        let mut unique = Vec::new();
        let mut offsets = Vec::new();
        for (k, &p) in order.iter().enumerate() {
            if unique.last() != Some(&ids[p as usize]) {
                unique.push(ids[p as usize]);
                offsets.push(k as u32);
            }
        }
        offsets.push(order.len() as u32);
        EmbeddingGrouping {
            n_unique: unique.len(),
            unique: Buf::upload(client, &unique),
            offsets: Buf::upload(client, &offsets),
            positions: Buf::upload(client, &order),
        }
    }
}

/// dtable[id, :] += sum of dout over the positions holding `id` (summed in
/// f32; the table gradient may be f32 under compute-type `dout`).
pub fn embedding_bwd<R: Runtime, F: Float + CubeElement, G: Float + CubeElement>(
    client: &ComputeClient<R>,
    dout: &Buf<R, F>,
    grouping: &EmbeddingGrouping<R>,
    dtable: &Buf<R, G>,
    dim: usize,
) {
    let (count, cube) = elementwise_launch(client, grouping.n_unique * dim);
    embedding_bwd_kernel::launch::<F, G, R>(
        client,
        count,
        cube,
        dout.arg(),
        grouping.unique.arg(),
        grouping.offsets.arg(),
        grouping.positions.arg(),
        dtable.arg(),
        grouping.n_unique,
        dim,
    );
}
