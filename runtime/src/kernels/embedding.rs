//! Token embedding: a gather forward; a deterministic scatter-add backward.
//!
//! The backward must not race (two positions with the same token adding
//! into one row) and must not depend on scheduling, so positions are first
//! sorted by (token id, position) on the device ([`EmbeddingGrouping`], a
//! bitonic network: a fixed sequence of compare-exchanges, the same every
//! run), and the unit at the head of each token's run of sorted positions
//! sums that token's rows in position order. The order of every sum is
//! thus the same as a host sort would give, without a host round trip.

use cubecl::prelude::*;
use rand::Rng;

use super::{elementwise_launch, expect_len, rows_of};
use crate::buffer::Buf;
use crate::check::{launch_err, rel_err, Checker};
use crate::error::Result;
use crate::reference as cpu;

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
    keys: &Array<u32>,
    positions: &Array<u32>,
    dtable: &mut Array<G>,
    n: usize,
    dim: usize,
) {
    let i = ABSOLUTE_POS;
    if i < n * dim {
        let r = i / dim;
        let c = i % dim;
        let id = keys[r];
        // Only the first sorted position of each token sums its run.
        let head = r == 0 || keys[r - 1] != id;
        if head {
            let mut s = f32::new(0.0);
            let mut k = r;
            while k < n && keys[k] == id {
                s += f32::cast_from(dout[positions[k] as usize * dim + c]);
                k += 1;
            }
            let at = id as usize * dim + c;
            dtable[at] = G::cast_from(f32::cast_from(dtable[at]) + s);
        }
    }
}

/// The sort's units per cube, and its shared-memory tile in elements: the
/// compare-exchanges of distance below this run in one launch per merge.
const SORT_TILE: u32 = 256;

#[cube(launch)]
fn sort_init_kernel(ids: &Array<u32>, keys: &mut Array<u32>, positions: &mut Array<u32>, pad: u32) {
    let i = ABSOLUTE_POS;
    if i < keys.len() {
        if i < ids.len() {
            keys[i] = ids[i];
        } else {
            keys[i] = pad;
        }
        positions[i] = i as u32;
    }
}

/// Whether (ka, pa) sorts after (kb, pb).
#[cube]
fn after(ka: u32, pa: u32, kb: u32, pb: u32) -> bool {
    ka > kb || (ka == kb && pa > pb)
}

/// One compare-exchange stage of the bitonic network over the whole
/// array: merge size `k`, distance `j` (at least [`SORT_TILE`]).
#[cube(launch)]
fn sort_stage_kernel(keys: &mut Array<u32>, positions: &mut Array<u32>, k: u32, j: u32) {
    let i = ABSOLUTE_POS as u32;
    let l = i ^ j;
    if (i as usize) < keys.len() && l > i {
        let (ka, pa) = (keys[i as usize], positions[i as usize]);
        let (kb, pb) = (keys[l as usize], positions[l as usize]);
        let up = (i & k) == 0;
        if after(ka, pa, kb, pb) == up {
            keys[i as usize] = kb;
            positions[i as usize] = pb;
            keys[l as usize] = ka;
            positions[l as usize] = pa;
        }
    }
}

/// Every stage of distance below [`SORT_TILE`] for merge sizes `k_first`
/// to `k_last` (powers of two), in shared memory: each cube owns one tile
/// of `block` consecutive elements, inside which those partners lie.
#[cube(launch)]
fn sort_tile_kernel(
    keys: &mut Array<u32>,
    positions: &mut Array<u32>,
    k_first: u32,
    k_last: u32,
    #[comptime] block: u32,
) {
    let t = UNIT_POS;
    let base = CUBE_POS as u32 * block;
    let mut sk = SharedMemory::<u32>::new(block as usize);
    let mut sp = SharedMemory::<u32>::new(block as usize);
    sk[t as usize] = keys[(base + t) as usize];
    sp[t as usize] = positions[(base + t) as usize];
    sync_cube();
    let mut k = k_first;
    while k <= k_last {
        let mut j = k / 2;
        if j >= block {
            j = block / 2;
        }
        while j > 0 {
            let l = t ^ j;
            if l > t {
                let (ka, pa) = (sk[t as usize], sp[t as usize]);
                let (kb, pb) = (sk[l as usize], sp[l as usize]);
                let up = ((base + t) & k) == 0;
                if after(ka, pa, kb, pb) == up {
                    sk[t as usize] = kb;
                    sp[t as usize] = pb;
                    sk[l as usize] = ka;
                    sp[l as usize] = pa;
                }
            }
            sync_cube();
            j /= 2;
        }
        k *= 2;
    }
    keys[(base + t) as usize] = sk[t as usize];
    positions[(base + t) as usize] = sp[t as usize];
}

/// out[n, :] = table[ids[n], :]
pub fn embedding_fwd<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    table: &Buf<R, F>,
    ids: &Buf<R, u32>,
    out: &Buf<R, F>,
    dim: usize,
) -> Result<()> {
    rows_of("embedding_fwd", "table", table.len(), dim)?;
    expect_len("embedding_fwd", "out", out.len(), ids.len() * dim)?;
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
    Ok(())
}

/// The batch's positions sorted by (token id, position), on the device:
/// `keys[r]` is the id at sorted rank `r` and `positions[r]` where it was.
/// Both are padded to a power of two at least [`SORT_TILE`] (pad keys sort
/// last and are never read by the backward).
pub struct EmbeddingGrouping<R: Runtime> {
    pub keys: Buf<R, u32>,
    pub positions: Buf<R, u32>,
    /// Real positions (the ids' length).
    pub n: usize,
}

impl<R: Runtime> EmbeddingGrouping<R> {
    /// Sorts `ids` (any length; ids below `u32::MAX`). Launches: one per
    /// stage of distance at least [`SORT_TILE`], one tile pass per merge
    /// size above it, and one tile pass for all merge sizes up to it
    /// (28 for 8,192 positions).
    pub fn new(client: &ComputeClient<R>, ids: &Buf<R, u32>) -> Self {
        let n = ids.len();
        let tile = SORT_TILE as usize;
        let p = n.next_power_of_two().max(tile);
        let keys = Buf::<R, u32>::empty(client, p);
        let positions = Buf::<R, u32>::empty(client, p);
        let (count, cube) = elementwise_launch(client, p);
        sort_init_kernel::launch::<R>(
            client,
            count.clone(),
            cube,
            ids.arg(),
            keys.arg(),
            positions.arg(),
            u32::MAX,
        );
        let tiles = CubeCount::Static((p / tile) as u32, 1, 1);
        let tile_pass = |k_first: usize, k_last: usize| {
            sort_tile_kernel::launch::<R>(
                client,
                tiles.clone(),
                CubeDim::new_1d(SORT_TILE),
                keys.arg(),
                positions.arg(),
                k_first as u32,
                k_last as u32,
                SORT_TILE,
            )
        };
        tile_pass(2, tile);
        let mut k = 2 * tile;
        while k <= p {
            let mut j = k / 2;
            while j >= tile {
                sort_stage_kernel::launch::<R>(
                    client,
                    count.clone(),
                    cube,
                    keys.arg(),
                    positions.arg(),
                    k as u32,
                    j as u32,
                );
                j /= 2;
            }
            tile_pass(k, k);
            k *= 2;
        }
        EmbeddingGrouping { keys, positions, n }
    }
}

/// dtable[id, :] += sum of dout over the positions holding `id` (summed in
/// f32 in position order; the table gradient may be f32 under
/// compute-type `dout`).
pub fn embedding_bwd<R: Runtime, F: Float + CubeElement, G: Float + CubeElement>(
    client: &ComputeClient<R>,
    dout: &Buf<R, F>,
    grouping: &EmbeddingGrouping<R>,
    dtable: &Buf<R, G>,
    dim: usize,
) -> Result<()> {
    rows_of("embedding_bwd", "dtable", dtable.len(), dim)?;
    expect_len("embedding_bwd", "dout", dout.len(), grouping.n * dim)?;
    let (count, cube) = elementwise_launch(client, grouping.n * dim);
    embedding_bwd_kernel::launch::<F, G, R>(
        client,
        count,
        cube,
        dout.arg(),
        grouping.keys.arg(),
        grouping.positions.arg(),
        dtable.arg(),
        grouping.n,
        dim,
    );
    Ok(())
}

/// The CPU definition of this file's kernels, in plain Rust with f64
/// accumulation: what [`check`] holds them to (re-exported, with every
/// other op's, by [`crate::reference`]).
pub mod reference {
    /// out[n, :] = table[ids[n], :]
    pub fn embedding_fwd(table: &[f32], ids: &[u32], dim: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(ids.len() * dim);
        for &id in ids {
            out.extend_from_slice(&table[id as usize * dim..(id as usize + 1) * dim]);
        }
        out
    }

    /// dtable[v, :] = sum over n with ids[n] == v of dout[n, :]
    pub fn embedding_bwd(dout: &[f32], ids: &[u32], vocab: usize, dim: usize) -> Vec<f32> {
        let mut acc = vec![0f64; vocab * dim];
        for (n, &id) in ids.iter().enumerate() {
            for c in 0..dim {
                acc[id as usize * dim + c] += dout[n * dim + c] as f64;
            }
        }
        acc.into_iter().map(|x| x as f32).collect()
    }
}

// `prior runtime check` (and the tests): this file's kernels against
// [`reference`] on fresh random inputs.

pub(crate) fn check<R: Runtime>(c: &mut Checker<R>) -> Result<(), String> {
    // 1,500 positions: the sort's whole-array stages as well as its tiles.
    for (vocab, dim, n) in [(97usize, 40usize, 61usize), (300, 64, 256), (50, 24, 1500)] {
        let table = c.rand(vocab * dim);
        // Few distinct ids, so the backward sums many positions per row.
        let ids: Vec<u32> = (0..n)
            .map(|_| c.rng.random_range(0..vocab.min(23) as u32))
            .collect();
        let dout = c.rand(n * dim);
        let case = format!("vocab {vocab}, dim {dim}, {n} tokens");
        let client = c.client;
        let fwd = (|| {
            let (t, i) = (c.up(&table), Buf::<R, u32>::upload(client, &ids));
            let out = Buf::<R, f32>::empty(client, n * dim);
            embedding_fwd(client, &t, &i, &out, dim).map_err(launch_err)?;
            Ok(vec![rel_err(
                &c.down(&out)?,
                &cpu::embedding_fwd(&table, &ids, dim),
            )])
        })();
        c.record("embedding_fwd", case.clone(), fwd);
        let bwd = (|| {
            let d = c.up(&dout);
            let dt = c.up(&vec![0.0; vocab * dim]);
            let g = EmbeddingGrouping::new(client, &Buf::upload(client, &ids));
            embedding_bwd(client, &d, &g, &dt, dim).map_err(launch_err)?;
            Ok(vec![rel_err(
                &c.down(&dt)?,
                &cpu::embedding_bwd(&dout, &ids, vocab, dim),
            )])
        })();
        c.record("embedding_bwd", case, bwd);
    }
    Ok(())
}
