//! Every kernel of the transformer, forward and backward side by side, each
//! generic over the runtime `R` and the float type `F`, with the launcher
//! the model calls. `crate::reference` holds the CPU definition each one is
//! checked against.
//!
//! Reductions are written so the order of additions is fixed by the launch
//! shape alone (tree reductions in shared memory, column sums walking rows
//! in order, no atomics), so the same inputs give the same bits every run.

pub mod attention;
pub mod attention_naive;
pub mod cross_entropy;
pub mod elementwise;
pub mod embedding;
pub mod layernorm;
pub mod matmul;
pub mod optim;
pub mod rotary;

use cubecl::prelude::*;

/// Threads per cube for elementwise kernels.
pub const ELEMWISE_DIM: u32 = 256;
/// Threads per cube for row-wise reductions (a power of two).
pub const ROW_BLOCK: u32 = 128;
/// Largest cube count per grid dimension every backend accepts.
const MAX_GRID: usize = 65_535;

pub(crate) fn elementwise_launch<R: Runtime>(
    client: &ComputeClient<R>,
    n: usize,
) -> (CubeCount, CubeDim) {
    let dim = CubeDim::new_1d(ELEMWISE_DIM);
    (
        cubecl::calculate_cube_count_elemwise(client, n.max(1), dim),
        dim,
    )
}

/// One cube per row, spread over x and y when rows exceed one grid
/// dimension, with as many units as the row has columns (a power of two
/// from 32 to [`ROW_BLOCK`]): idle units still pay for every barrier of the
/// tree reduction, which dominates narrow rows (on lavapipe, 4x for
/// d_model 32). Returns the block size for the kernel's comptime argument.
pub(crate) fn rows_launch(rows: usize, cols: usize) -> (CubeCount, CubeDim, u32) {
    let x = rows.clamp(1, MAX_GRID);
    let y = rows.div_ceil(MAX_GRID).max(1);
    let block = (cols.next_power_of_two() as u32).clamp(32, ROW_BLOCK);
    (
        CubeCount::Static(x as u32, y as u32, 1),
        CubeDim::new_1d(block),
        block,
    )
}

/// The row a cube of [`rows_launch`] owns.
#[cube]
pub(crate) fn cube_row() -> usize {
    (CUBE_POS_Y * CUBE_COUNT_X + CUBE_POS_X) as usize
}

/// Sum of `smem[0..CUBE_DIM]` by a fixed tree; every unit gets the result.
/// Callers store their partial in `smem[UNIT_POS]` first.
#[cube]
pub(crate) fn block_sum<F: Float>(smem: &mut SharedMemory<F>) -> F {
    sync_cube();
    let tid = UNIT_POS;
    let mut stride = CUBE_DIM / 2;
    while stride > 0 {
        if tid < stride {
            smem[tid as usize] = smem[tid as usize] + smem[(tid + stride) as usize];
        }
        sync_cube();
        stride /= 2;
    }
    let total = smem[0];
    sync_cube();
    total
}

/// Maximum of `smem[0..CUBE_DIM]`, as [`block_sum`].
#[cube]
pub(crate) fn block_max<F: Float>(smem: &mut SharedMemory<F>) -> F {
    sync_cube();
    let tid = UNIT_POS;
    let mut stride = CUBE_DIM / 2;
    while stride > 0 {
        if tid < stride {
            smem[tid as usize] = max(smem[tid as usize], smem[(tid + stride) as usize]);
        }
        sync_cube();
        stride /= 2;
    }
    let total = smem[0];
    sync_cube();
    total
}
