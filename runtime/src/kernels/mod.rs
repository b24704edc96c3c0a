//! Every kernel of the transformer, one op per file, as llm.c lays out its
//! kernels: each file holds the op's kernels forward and backward side by
//! side (generic over the runtime `R` and the float type `F`), the
//! launchers the model calls (which check their buffers against the shape
//! and return a `Result`), the op's CPU definition (its `reference`
//! module, gathered for the reference model by `crate::reference`) and its
//! check against that definition (`check`, run by `crate::check`).
//!
//! Reductions are written so the order of additions is fixed by the launch
//! shape alone (tree reductions in shared memory, column sums walking rows
//! in order, no atomics), so the same inputs give the same bits every run.

pub mod attention;
pub mod attention_naive;
pub mod cross_entropy;
pub mod elementwise;
pub mod embedding;
pub mod gelu;
pub mod layernorm;
pub mod matmul;
pub mod optim;
pub mod rotary;

pub use attention::AttnShape;
pub use optim::AdamW;

use cubecl::prelude::*;

use crate::buffer::Buf;
use crate::error::{Result, RuntimeError};

/// The rows of a `[rows, cols]` tensor of `len` elements, refusing a
/// length that is not a whole number of rows (or rows of no columns)
/// instead of rounding down.
pub(crate) fn rows_of(kernel: &'static str, what: &str, len: usize, cols: usize) -> Result<usize> {
    if cols == 0 || !len.is_multiple_of(cols) {
        return Err(RuntimeError::Shape {
            kernel,
            detail: format!("{what} has {len} elements, not a whole number of rows of {cols}"),
        });
    }
    Ok(len / cols)
}

/// Refuses a buffer of fewer than `need` elements.
pub(crate) fn at_least(kernel: &'static str, what: &str, len: usize, need: usize) -> Result<()> {
    if len < need {
        return Err(RuntimeError::Shape {
            kernel,
            detail: format!("{what} has {len} elements, needs at least {need}"),
        });
    }
    Ok(())
}

/// Refuses a buffer of other than `want` elements.
pub(crate) fn expect_len(kernel: &'static str, what: &str, len: usize, want: usize) -> Result<()> {
    if len != want {
        return Err(RuntimeError::Shape {
            kernel,
            detail: format!("{what} has {len} elements, expected {want}"),
        });
    }
    Ok(())
}

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

/// Rows each partial sum of a column reduction covers.
pub const COLUMN_CHUNK: usize = 64;

/// Column reductions (bias and LayerNorm parameter gradients) in two
/// fixed-order stages, so that they spread over the device and still give
/// the same bits: stage one, a grid of (column blocks of [`ELEMWISE_DIM`],
/// row chunks of [`COLUMN_CHUNK`]), each unit summing its column over its
/// chunk's rows in order into `partials[chunk * cols + col]` (f32); stage
/// two ([`sum_column_partials`]) sums each column's partials in chunk order.
/// Returns the grid of stage one and the number of chunks.
pub(crate) fn column_partials_launch(rows: usize, cols: usize) -> (CubeCount, CubeDim, usize) {
    let chunks = rows.div_ceil(COLUMN_CHUNK).clamp(1, MAX_GRID);
    (
        CubeCount::Static(
            cols.div_ceil(ELEMWISE_DIM as usize) as u32,
            chunks as u32,
            1,
        ),
        CubeDim::new_1d(ELEMWISE_DIM),
        chunks,
    )
}

/// The (column, chunk, first row, end row) a unit of
/// [`column_partials_launch`] owns.
#[cube]
pub(crate) fn column_chunk(rows: usize) -> (usize, usize, usize, usize) {
    let col = CUBE_POS_X as usize * CUBE_DIM_X as usize + UNIT_POS_X as usize;
    let chunk = CUBE_POS_Y as usize;
    let per = rows.div_ceil(CUBE_COUNT_Y as usize);
    let first = chunk * per;
    (col, chunk, first, min(first + per, rows))
}

#[cube(launch)]
fn sum_column_partials_kernel<F: Float + CubeElement>(
    partials: &Array<f32>,
    out: &mut Array<F>,
    cols: usize,
    chunks: usize,
    accumulate: u32,
) {
    let c = ABSOLUTE_POS;
    if c < cols {
        let mut s = f32::new(0.0);
        for k in 0..chunks {
            s += partials[k * cols + c];
        }
        if accumulate == 1 {
            out[c] = F::cast_from(f32::cast_from(out[c]) + s);
        } else {
            out[c] = F::cast_from(s);
        }
    }
}

/// Stage two of a column reduction: `out[c] (+)= sum over chunks of
/// partials[chunk * cols + c]`, chunks in order.
pub(crate) fn sum_column_partials<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    partials: &Buf<R, f32>,
    out: &Buf<R, F>,
    chunks: usize,
    accumulate: bool,
) {
    let (count, dim) = elementwise_launch(client, out.len());
    sum_column_partials_kernel::launch::<F, R>(
        client,
        count,
        dim,
        partials.arg(),
        out.arg(),
        out.len(),
        chunks,
        accumulate as u32,
    );
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
