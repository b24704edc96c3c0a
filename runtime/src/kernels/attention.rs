//! Causal self-attention over GPT-NeoX's fused qkv rows `[B, T, H, 3, D]`,
//! read in place: FlashAttention-2's forward and backward, never holding
//! the T x T score matrix.
//!
//! **Forward** (one cube per block of `br` queries of one (batch, head)):
//! the query tile is staged in shared memory once; key and value tiles of
//! `bc` rows stream through shared memory; `S = Q Kᵀ` is one tile product;
//! the online softmax (running row max `m` and sum `l`, rescaling the
//! output accumulator by `exp(m_old - m_new)`) runs in registers; `O += P V`
//! is the second tile product; the log-sum-exp `m + ln l` is saved. Key
//! tiles wholly past the block's last query are never loaded.
//!
//! **Backward** (FA2's, from Q, K, V, O, dO and the saved log-sum-exp):
//! `delta = rowsum(dO ∘ O)` first, then two passes that each own what they
//! write, so there are no atomics and the bits are the same every run:
//! one cube per key block walks the query blocks that can see it and
//! accumulates dK and dV (`dV += Pᵀ dO`, `dK += dSᵀ Q`); one cube per
//! query block walks the key blocks up to its diagonal and accumulates dQ
//! (`dQ += dS K`). P is recomputed from the saved log-sum-exp in both
//! passes: twice the `Q Kᵀ` work of one fused pass, bought for
//! determinism (FA2 itself accumulates dQ with atomics).
//!
//! **Tile products** ([`tile_mma`]) are the only place the two paths
//! differ. Where the device has tensor cores for the storage type (cubecl
//! `cmma`, 16x16x16 with f16/bf16 inputs and f32 accumulation) each plane
//! computes 16x16 output blocks with `cmma`; elsewhere (f32 anywhere, and
//! wgpu on lavapipe, which has no cmma) every unit computes output
//! elements with a scalar loop in f32. The tiles, the masking, the softmax
//! and the order of every sum are the same in both, so the plain path,
//! which CI runs, checks the algorithm the tensor-core path runs.
//!
//! Every accumulator (scores, O, dQ, dK, dV, the softmax statistics) is
//! f32 whatever the storage type; tiles of inputs and probabilities are in
//! the storage type, as the tensor cores take them. The accumulators of
//! O, dQ, dK and dV live in shared memory rather than in fragments: the
//! forward must rescale O by row between tile products, which cmma's
//! opaque fragments do not allow, and one layout for both paths keeps one
//! algorithm. Keeping dK/dV/dQ in fragments is the next step on a GPU.
//!
//! **Launch:** grid `(ceil(T / block), H, B)`, [`THREADS`] units per cube;
//! tile sizes come from [`plan`], the largest of 64x64 down to the
//! smallest that fits the device's shared memory (capped at
//! [`SMEM_BUDGET`] so two cubes share an SM), halving the key tile first.
//! On the scalar path staged q/k/v/dO rows are `d + 1` apart so that units
//! reading different keys hit different banks ([`Tiles::tile_stride`]).

use cubecl::features::MmaConfig;
use cubecl::prelude::*;

use super::{elementwise_launch, expect_len};
use crate::buffer::Buf;
use crate::check::{launch_err, rel_err, Checker};
use crate::error::Result;
use crate::reference as cpu;

/// Geometry of the fused qkv rows.
#[derive(Debug, Clone, Copy)]
pub struct AttnShape {
    pub batch: usize,
    pub seq: usize,
    pub heads: usize,
    pub head_dim: usize,
    /// Leading dims of q and k that rotary rotates (even).
    pub rotary_dims: usize,
}

impl AttnShape {
    pub fn tokens(&self) -> usize {
        self.batch * self.seq
    }
    /// Elements of the fused qkv buffer, `[tokens, heads, 3, head_dim]`.
    pub fn qkv_len(&self) -> usize {
        self.tokens() * self.heads * 3 * self.head_dim
    }
    /// Refuses buffers other than qkv `[tokens, heads, 3, head_dim]`, out
    /// `[tokens, heads, head_dim]` and lse `[batch, heads, seq]`.
    pub(crate) fn check_qkv(
        &self,
        kernel: &'static str,
        qkv: usize,
        out: usize,
        lse: usize,
    ) -> Result<()> {
        expect_len(kernel, "qkv", qkv, self.qkv_len())?;
        expect_len(
            kernel,
            "out",
            out,
            self.tokens() * self.heads * self.head_dim,
        )?;
        expect_len(kernel, "lse", lse, self.batch * self.heads * self.seq)
    }
    /// Offset in the qkv buffer of part `p` (0 q, 1 k, 2 v), token `t`, head `h`.
    pub fn qkv_at(&self, t: usize, h: usize, p: usize) -> usize {
        ((t * self.heads + h) * 3 + p) * self.head_dim
    }
}

/// Byte alignment of every tile in shared memory: tensor-core fragment
/// loads and stores need 32-byte aligned addresses, and cubecl otherwise
/// aligns a shared array only to its element size.
pub const TILE_ALIGN: usize = 32;
/// Units per cube of every flash kernel: four planes of 32 on CUDA.
pub const THREADS: usize = 128;
/// Shared memory a flash cube may use, at most: half of an H100 SM's, so
/// two cubes stay resident (a device with less gets what it has).
pub const SMEM_BUDGET: usize = 112 * 1024;

/// Which kernel a [`Tiles`] plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Forward,
    /// The dK/dV pass (one cube per key block).
    BackwardKv,
    /// The dQ pass (one cube per query block).
    BackwardQ,
}

/// Tile geometry of one flash launch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tiles {
    /// Query rows per tile.
    pub br: usize,
    /// Key rows per tile.
    pub bc: usize,
    /// Tile products on tensor cores (`cmma`), else the scalar loop.
    pub cmma: bool,
    /// Shared memory per cube, bytes.
    pub smem_bytes: usize,
}

impl Tiles {
    /// Elements between rows of a staged q/k/v/dO tile. The scalar path
    /// reads `k[j][kk]` with `j` varying across units: a stride of `d + 1`
    /// puts those reads in different banks (with `d`, a multiple of 32,
    /// all 32 units of a warp hit one bank). Tensor cores load 16x16
    /// fragments that must start 32-byte aligned, so there rows are `d`.
    pub fn tile_stride(&self, d: usize) -> usize {
        if self.cmma {
            d
        } else {
            d + 1
        }
    }
}

/// Bytes of shared memory `pass` needs with `br x bc` tiles, head size `d`
/// and `elem` bytes per stored element.
fn smem_bytes(pass: Pass, d: usize, br: usize, bc: usize, elem: usize) -> usize {
    // Stored d-wide tiles may be padded by one column (see `tile_stride`),
    // and each of at most 12 arrays to its alignment.
    let (w, d) = (d + 1, d);
    12 * TILE_ALIGN
        + match pass {
            // q, k, v, p in the storage type; s, o, the row reduction in f32.
            Pass::Forward => {
                elem * (br * w + 2 * bc * w + br * bc) + 4 * (br * bc + br * d + THREADS)
            }
            // k, v, q, dO, Pᵀ, dSᵀ stored; Sᵀ, dPᵀ, dK, dV, lse, delta in f32.
            Pass::BackwardKv => {
                elem * (2 * bc * w + 2 * br * w + 2 * bc * br)
                    + 4 * (2 * bc * br + 2 * bc * d + 2 * br)
            }
            // q, dO, k, v, dS stored; S, dP, dQ, lse, delta in f32.
            Pass::BackwardQ => {
                elem * (2 * br * w + 2 * bc * w + br * bc) + 4 * (2 * br * bc + br * d + 2 * br)
            }
        }
}

/// The largest tiles from 64x64 down, halving the key tile first, whose
/// shared memory fits `budget`; none when even `min x min` does not.
fn fit(pass: Pass, d: usize, elem: usize, budget: usize, min: usize) -> Option<(usize, usize)> {
    let (mut br, mut bc) = (64usize, 64usize);
    while smem_bytes(pass, d, br, bc, elem) > budget {
        if bc >= br && bc > min {
            bc /= 2;
        } else if br > min {
            br /= 2;
        } else {
            return None;
        }
    }
    Some((br, bc))
}

/// Whether `client` has 16x16x16 tensor-core products of `F` into f32.
pub fn has_cmma<R: Runtime, F: Float>(client: &ComputeClient<R>) -> bool {
    let ty = F::as_type_native_unchecked().storage_type();
    let f32_ty = f32::as_type_native_unchecked().storage_type();
    ty != f32_ty
        && client
            .properties()
            .features
            .matmul
            .cmma
            .contains(&MmaConfig {
                a_type: ty,
                b_type: ty,
                cd_type: f32_ty,
                m: 16,
                n: 16,
                k: 16,
            })
}

/// The tiles `pass` runs with on `client` for head size `head_dim` and
/// storage type `F`: the largest of 64x64 that fits, halving the key tile
/// first. Tensor cores need both tiles and the head size to be multiples
/// of 16; where that does not fit, the scalar path runs.
pub fn plan<R: Runtime, F: Float>(client: &ComputeClient<R>, head_dim: usize, pass: Pass) -> Tiles {
    let budget = client
        .properties()
        .hardware
        .max_shared_memory_size
        .min(SMEM_BUDGET);
    let elem = F::as_type_native_unchecked().storage_type().size();
    let cmma_tiles = (has_cmma::<R, F>(client) && head_dim.is_multiple_of(16))
        .then(|| fit(pass, head_dim, elem, budget, 16))
        .flatten();
    let (br, bc, cmma) = match cmma_tiles {
        Some((br, bc)) => (br, bc, true),
        None => {
            let (br, bc) = fit(pass, head_dim, elem, budget, 1).unwrap_or((1, 1));
            (br, bc, false)
        }
    };
    Tiles {
        br,
        bc,
        cmma,
        smem_bytes: smem_bytes(pass, head_dim, br, bc, elem),
    }
}

/// `c[m x n] (+)= a[m x k] · b[k x n]` on tiles in shared memory, row-major
/// with leading dimensions `lda`, `ldb`, `ldc`; `b` is read transposed
/// (`b[j * ldb + kk]`) when `b_col_major`. Every unit of the cube takes
/// part; the caller syncs before and after.
///
/// Tensor cores: plane `p` computes 16x16 output blocks `p, p + planes,
/// ...` with k in ascending steps of 16. Scalar: each unit computes up to
/// four elements of one row, each a sum over k in ascending order.
#[cube]
#[allow(clippy::too_many_arguments)]
fn tile_mma<F: Float + CubeElement>(
    a: &SharedMemory<F>,
    b: &SharedMemory<F>,
    c: &mut SharedMemory<f32>,
    #[comptime] m: usize,
    #[comptime] n: usize,
    #[comptime] k: usize,
    #[comptime] lda: usize,
    #[comptime] ldb: usize,
    #[comptime] ldc: usize,
    #[comptime] b_col_major: bool,
    #[comptime] accumulate: bool,
    #[comptime] use_cmma: bool,
) {
    if use_cmma {
        let planes = (CUBE_DIM / PLANE_DIM) as usize;
        let mut blk = (UNIT_POS / PLANE_DIM) as usize;
        let n_blocks = comptime!((m / 16) * (n / 16));
        let blocks_per_row = comptime!(n / 16);
        while blk < n_blocks {
            let i0 = (blk / blocks_per_row) * 16;
            let j0 = (blk % blocks_per_row) * 16;
            let c_at = i0 * ldc + j0;
            let acc = cmma::Matrix::<f32>::from_value(
                cmma::MatrixIdent::Accumulator,
                16usize,
                16usize,
                16usize,
                cmma::MatrixLayout::Undefined,
                0.0f32,
            );
            if accumulate {
                cmma::load_with_layout(
                    &acc,
                    &c.slice(c_at, c_at + 15 * ldc + 16),
                    ldc as u32,
                    cmma::MatrixLayout::RowMajor,
                );
            }
            for kk in 0..comptime!(k / 16) {
                let a_at = i0 * lda + kk * 16;
                let a_frag = cmma::Matrix::<F>::from_slice(
                    cmma::MatrixIdent::A,
                    16usize,
                    16usize,
                    16usize,
                    cmma::MatrixLayout::RowMajor,
                    &a.slice(a_at, a_at + 15 * lda + 16),
                    lda as u32,
                );
                if b_col_major {
                    let b_at = j0 * ldb + kk * 16;
                    let b_frag = cmma::Matrix::<F>::from_slice(
                        cmma::MatrixIdent::B,
                        16usize,
                        16usize,
                        16usize,
                        cmma::MatrixLayout::ColMajor,
                        &b.slice(b_at, b_at + 15 * ldb + 16),
                        ldb as u32,
                    );
                    cmma::execute::<F, F, f32, f32>(&a_frag, &b_frag, &acc, &acc);
                } else {
                    let b_at = kk * 16 * ldb + j0;
                    let b_frag = cmma::Matrix::<F>::from_slice(
                        cmma::MatrixIdent::B,
                        16usize,
                        16usize,
                        16usize,
                        cmma::MatrixLayout::RowMajor,
                        &b.slice(b_at, b_at + 15 * ldb + 16),
                        ldb as u32,
                    );
                    cmma::execute::<F, F, f32, f32>(&a_frag, &b_frag, &acc, &acc);
                }
            }
            cmma::store(
                &mut c.slice_mut(c_at, c_at + 15 * ldc + 16),
                &acc,
                ldc as u32,
                cmma::MatrixLayout::RowMajor,
            );
            blk += planes;
        }
    } else {
        // Each unit owns `rj` outputs of a row, `n / rj` apart, so that
        // across units the b reads stay consecutive and each a read serves
        // `rj` products.
        let rj = comptime!(if n.is_multiple_of(4) { 4usize } else { 1usize });
        let units_per_row = comptime!(n / rj);
        let mut idx = UNIT_POS as usize;
        while idx < comptime!(m * units_per_row) {
            let i = idx / units_per_row;
            let j0 = idx % units_per_row;
            let mut sum = Array::<f32>::new(rj);
            #[unroll]
            for q in 0..rj {
                sum[q] = f32::new(0.0);
            }
            for kk in 0..k {
                let av = f32::cast_from(a[i * lda + kk]);
                #[unroll]
                for q in 0..rj {
                    let j = j0 + q * units_per_row;
                    let bv = if b_col_major {
                        b[j * ldb + kk]
                    } else {
                        b[kk * ldb + j]
                    };
                    sum[q] += av * f32::cast_from(bv);
                }
            }
            #[unroll]
            for q in 0..rj {
                let at = i * ldc + j0 + q * units_per_row;
                if accumulate {
                    c[at] += sum[q];
                } else {
                    c[at] = sum[q];
                }
            }
            idx += CUBE_DIM as usize;
        }
    }
}

/// Where the cube's (batch, head) = (`CUBE_POS_Z`, `CUBE_POS_Y`) lives:
/// (elements between tokens in qkv, offset of token 0's q in qkv, elements
/// between tokens in out/dO, offset of token 0 there, offset of its
/// `[B, H, T]` statistics).
#[cube]
fn head_offsets(
    seq: usize,
    heads: usize,
    #[comptime] d: usize,
) -> (usize, usize, usize, usize, usize) {
    let h = CUBE_POS_Y as usize;
    let b = CUBE_POS_Z as usize;
    (
        heads * 3 * d,
        (b * seq * heads + h) * 3 * d,
        heads * d,
        (b * seq * heads + h) * d,
        (b * heads + h) * seq,
    )
}

/// Stages `rows` rows of `d` elements, `src[base + (first + r) * stride +
/// c]`, in `dst` (row-major, `ld` apart); rows at or past `seq` are zeros.
#[cube]
#[allow(clippy::too_many_arguments)]
fn load_rows<F: Float + CubeElement>(
    src: &Array<F>,
    dst: &mut SharedMemory<F>,
    base: usize,
    stride: usize,
    first: usize,
    seq: usize,
    #[comptime] rows: usize,
    #[comptime] d: usize,
    #[comptime] ld: usize,
) {
    let mut idx = UNIT_POS as usize;
    while idx < comptime!(rows * d) {
        let r = idx / d;
        let c = idx % d;
        let t = first + r;
        let mut v = F::new(0.0);
        if t < seq {
            v = src[base + t * stride + c];
        }
        dst[r * ld + c] = v;
        idx += CUBE_DIM as usize;
    }
}

/// Sets `n` f32 of shared memory to zero.
#[cube]
fn zero_f32(dst: &mut SharedMemory<f32>, #[comptime] n: usize) {
    let mut idx = UNIT_POS as usize;
    while idx < n {
        dst[idx] = 0.0f32;
        idx += CUBE_DIM as usize;
    }
}

/// Per-row f32 values of rows `first..first + rows` of `(batch, head)`'s
/// `[B, H, T]` statistics, zero past `seq`.
#[cube]
fn load_stats(
    src: &Array<f32>,
    dst: &mut SharedMemory<f32>,
    base: usize,
    first: usize,
    seq: usize,
    #[comptime] rows: usize,
) {
    let mut idx = UNIT_POS as usize;
    while idx < rows {
        let mut v = f32::new(0.0);
        if first + idx < seq {
            v = src[base + first + idx];
        }
        dst[idx] = v;
        idx += CUBE_DIM as usize;
    }
}

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn flash_fwd_kernel<F: Float + CubeElement>(
    qkv: &Array<F>,
    out: &mut Array<F>,
    lse: &mut Array<f32>,
    seq: usize,
    heads: usize,
    scale: f32,
    #[comptime] d: usize,
    #[comptime] br: usize,
    #[comptime] bc: usize,
    #[comptime] ld: usize,
    #[comptime] use_cmma: bool,
) {
    let q0 = CUBE_POS_X as usize * br;
    let (stride, base, out_stride, out_base, stat_base) = head_offsets(seq, heads, d);
    let tid = UNIT_POS as usize;
    // Units per query row in the softmax; each row's units hold the same
    // running max, and partial sums of its own columns.
    let tpr = comptime!(THREADS / br);
    let r = tid / tpr;
    let lane = tid % tpr;
    let qi = q0 + r;

    let mut q_s = SharedMemory::<F>::new_aligned(comptime!(br * ld), TILE_ALIGN); // [br, d], rows ld apart
    let mut k_s = SharedMemory::<F>::new_aligned(comptime!(bc * ld), TILE_ALIGN); // [bc, d], rows ld apart
    let mut v_s = SharedMemory::<F>::new_aligned(comptime!(bc * ld), TILE_ALIGN); // [bc, d], rows ld apart
    let mut p_s = SharedMemory::<F>::new_aligned(comptime!(br * bc), TILE_ALIGN); // [br, bc]
    let mut s_s = SharedMemory::<f32>::new_aligned(comptime!(br * bc), TILE_ALIGN); // [br, bc]
    let mut o_s = SharedMemory::<f32>::new_aligned(comptime!(br * d), TILE_ALIGN); // [br, d]
    let mut red = SharedMemory::<f32>::new_aligned(THREADS, TILE_ALIGN); // [br, tpr]

    load_rows::<F>(qkv, &mut q_s, base, stride, q0, seq, br, d, ld);
    zero_f32(&mut o_s, comptime!(br * d));
    sync_cube();

    let last = min(q0 + br, seq) - 1;
    let n_tiles = last / bc + 1;
    // The initial row maximum and that of a fully masked tile are finite
    // (-3e38): WGSL has no infinity literal, and exp(m_old - m_new) stays 0.
    let mut m = f32::new(-3.0e38);
    let mut l = f32::new(0.0);
    for kt in 0..n_tiles {
        let k0 = kt * bc;
        load_rows::<F>(qkv, &mut v_s, base + 2 * d, stride, k0, seq, bc, d, ld);
        load_rows::<F>(qkv, &mut k_s, base + d, stride, k0, seq, bc, d, ld);
        sync_cube();
        tile_mma::<F>(
            &q_s, &k_s, &mut s_s, br, bc, d, ld, ld, bc, true, false, use_cmma,
        );
        sync_cube();

        let mut tile_max = f32::new(-3.0e38);
        let mut j = lane;
        while j < bc {
            if k0 + j <= qi {
                tile_max = max(tile_max, s_s[r * bc + j] * scale);
            }
            j += tpr;
        }
        red[tid] = tile_max;
        sync_cube();
        let mut row_max = red[r * tpr];
        for x in 1..tpr {
            row_max = max(row_max, red[r * tpr + x]);
        }
        let m_new = max(m, row_max);
        let corr = f32::exp(m - m_new);
        let mut sum = f32::new(0.0);
        j = lane;
        while j < bc {
            let mut p = f32::new(0.0);
            if k0 + j <= qi {
                p = f32::exp(s_s[r * bc + j] * scale - m_new);
            }
            p_s[r * bc + j] = F::cast_from(p);
            sum += p;
            j += tpr;
        }
        l = l * corr + sum;
        m = m_new;
        let mut c = lane;
        while c < d {
            o_s[r * d + c] *= corr;
            c += tpr;
        }
        sync_cube();
        tile_mma::<F>(
            &p_s, &v_s, &mut o_s, br, d, bc, bc, ld, d, false, true, use_cmma,
        );
        sync_cube();
    }

    red[tid] = l;
    sync_cube();
    let mut l_row = f32::new(0.0);
    for x in 0..tpr {
        l_row += red[r * tpr + x];
    }
    if qi < seq {
        let out_at = out_base + qi * out_stride;
        let inv = f32::new(1.0) / l_row;
        let mut c = lane;
        while c < d {
            out[out_at + c] = F::cast_from(o_s[r * d + c] * inv);
            c += tpr;
        }
        if lane == 0 {
            lse[stat_base + qi] = m + f32::ln(l_row);
        }
    }
}

/// `delta[b, h, t] = sum_c dO[b, t, h, c] * O[b, t, h, c]`, in f32.
#[cube(launch)]
fn flash_delta_kernel<F: Float + CubeElement>(
    dout: &Array<F>,
    out: &Array<F>,
    delta: &mut Array<f32>,
    batch: usize,
    seq: usize,
    heads: usize,
    #[comptime] d: usize,
) {
    let idx = ABSOLUTE_POS;
    if idx < batch * heads * seq {
        let i = idx % seq;
        let bh = idx / seq;
        let h = bh % heads;
        let b = bh / heads;
        let at = ((b * seq + i) * heads + h) * d;
        let mut s = f32::new(0.0);
        for c in 0..d {
            s += f32::cast_from(dout[at + c]) * f32::cast_from(out[at + c]);
        }
        delta[idx] = s;
    }
}

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn flash_bwd_kv_kernel<F: Float + CubeElement>(
    qkv: &Array<F>,
    dout: &Array<F>,
    lse: &Array<f32>,
    delta: &Array<f32>,
    dqkv: &mut Array<F>,
    seq: usize,
    heads: usize,
    scale: f32,
    #[comptime] d: usize,
    #[comptime] br: usize,
    #[comptime] bc: usize,
    #[comptime] ld: usize,
    #[comptime] use_cmma: bool,
) {
    let k0 = CUBE_POS_X as usize * bc;
    let (stride, base, do_stride, do_base, stat_base) = head_offsets(seq, heads, d);

    let mut k_s = SharedMemory::<F>::new_aligned(comptime!(bc * ld), TILE_ALIGN); // [bc, d], rows ld apart
    let mut v_s = SharedMemory::<F>::new_aligned(comptime!(bc * ld), TILE_ALIGN); // [bc, d], rows ld apart
    let mut q_s = SharedMemory::<F>::new_aligned(comptime!(br * ld), TILE_ALIGN); // [br, d], rows ld apart
    let mut do_s = SharedMemory::<F>::new_aligned(comptime!(br * ld), TILE_ALIGN); // [br, d], rows ld apart
    let mut pt_s = SharedMemory::<F>::new_aligned(comptime!(bc * br), TILE_ALIGN); // Pᵀ [bc, br]
    let mut dst_s = SharedMemory::<F>::new_aligned(comptime!(bc * br), TILE_ALIGN); // dSᵀ [bc, br]
    let mut st_s = SharedMemory::<f32>::new_aligned(comptime!(bc * br), TILE_ALIGN); // Sᵀ [bc, br]
    let mut dpt_s = SharedMemory::<f32>::new_aligned(comptime!(bc * br), TILE_ALIGN); // dPᵀ [bc, br]
    let mut dk_s = SharedMemory::<f32>::new_aligned(comptime!(bc * d), TILE_ALIGN); // [bc, d]
    let mut dv_s = SharedMemory::<f32>::new_aligned(comptime!(bc * d), TILE_ALIGN); // [bc, d]
    let mut lse_s = SharedMemory::<f32>::new_aligned(br, TILE_ALIGN);
    let mut delta_s = SharedMemory::<f32>::new_aligned(br, TILE_ALIGN);

    load_rows::<F>(qkv, &mut k_s, base + d, stride, k0, seq, bc, d, ld);
    load_rows::<F>(qkv, &mut v_s, base + 2 * d, stride, k0, seq, bc, d, ld);
    zero_f32(&mut dk_s, comptime!(bc * d));
    zero_f32(&mut dv_s, comptime!(bc * d));

    // Query blocks before the one holding key k0 see none of these keys.
    let first = k0 / br;
    let n_tiles = seq.div_ceil(br);
    for qt in first..n_tiles {
        let q0 = qt * br;
        load_rows::<F>(qkv, &mut q_s, base, stride, q0, seq, br, d, ld);
        load_rows::<F>(dout, &mut do_s, do_base, do_stride, q0, seq, br, d, ld);
        load_stats(lse, &mut lse_s, stat_base, q0, seq, br);
        load_stats(delta, &mut delta_s, stat_base, q0, seq, br);
        sync_cube();
        tile_mma::<F>(
            &k_s, &q_s, &mut st_s, bc, br, d, ld, ld, br, true, false, use_cmma,
        );
        tile_mma::<F>(
            &v_s, &do_s, &mut dpt_s, bc, br, d, ld, ld, br, true, false, use_cmma,
        );
        sync_cube();
        let mut idx = UNIT_POS as usize;
        while idx < comptime!(bc * br) {
            let j = idx / br;
            let i = idx % br;
            let mut p = f32::new(0.0);
            let mut ds = f32::new(0.0);
            if q0 + i < seq && k0 + j <= q0 + i {
                p = f32::exp(st_s[idx] * scale - lse_s[i]);
                ds = p * (dpt_s[idx] - delta_s[i]) * scale;
            }
            pt_s[idx] = F::cast_from(p);
            dst_s[idx] = F::cast_from(ds);
            idx += CUBE_DIM as usize;
        }
        sync_cube();
        tile_mma::<F>(
            &pt_s, &do_s, &mut dv_s, bc, d, br, br, ld, d, false, true, use_cmma,
        );
        tile_mma::<F>(
            &dst_s, &q_s, &mut dk_s, bc, d, br, br, ld, d, false, true, use_cmma,
        );
        sync_cube();
    }

    let mut idx = UNIT_POS as usize;
    while idx < comptime!(bc * d) {
        let t = k0 + idx / d;
        if t < seq {
            let at = base + t * stride + idx % d;
            dqkv[at + d] = F::cast_from(dk_s[idx]);
            dqkv[at + 2 * d] = F::cast_from(dv_s[idx]);
        }
        idx += CUBE_DIM as usize;
    }
}

#[cube(launch)]
#[allow(clippy::too_many_arguments)]
fn flash_bwd_q_kernel<F: Float + CubeElement>(
    qkv: &Array<F>,
    dout: &Array<F>,
    lse: &Array<f32>,
    delta: &Array<f32>,
    dqkv: &mut Array<F>,
    seq: usize,
    heads: usize,
    scale: f32,
    #[comptime] d: usize,
    #[comptime] br: usize,
    #[comptime] bc: usize,
    #[comptime] ld: usize,
    #[comptime] use_cmma: bool,
) {
    let q0 = CUBE_POS_X as usize * br;
    let (stride, base, do_stride, do_base, stat_base) = head_offsets(seq, heads, d);

    let mut q_s = SharedMemory::<F>::new_aligned(comptime!(br * ld), TILE_ALIGN); // [br, d], rows ld apart
    let mut do_s = SharedMemory::<F>::new_aligned(comptime!(br * ld), TILE_ALIGN); // [br, d], rows ld apart
    let mut k_s = SharedMemory::<F>::new_aligned(comptime!(bc * ld), TILE_ALIGN); // [bc, d], rows ld apart
    let mut v_s = SharedMemory::<F>::new_aligned(comptime!(bc * ld), TILE_ALIGN); // [bc, d], rows ld apart
    let mut ds_s = SharedMemory::<F>::new_aligned(comptime!(br * bc), TILE_ALIGN); // dS [br, bc]
    let mut s_s = SharedMemory::<f32>::new_aligned(comptime!(br * bc), TILE_ALIGN); // S [br, bc]
    let mut dp_s = SharedMemory::<f32>::new_aligned(comptime!(br * bc), TILE_ALIGN); // dP [br, bc]
    let mut dq_s = SharedMemory::<f32>::new_aligned(comptime!(br * d), TILE_ALIGN); // [br, d]
    let mut lse_s = SharedMemory::<f32>::new_aligned(br, TILE_ALIGN);
    let mut delta_s = SharedMemory::<f32>::new_aligned(br, TILE_ALIGN);

    load_rows::<F>(qkv, &mut q_s, base, stride, q0, seq, br, d, ld);
    load_rows::<F>(dout, &mut do_s, do_base, do_stride, q0, seq, br, d, ld);
    load_stats(lse, &mut lse_s, stat_base, q0, seq, br);
    load_stats(delta, &mut delta_s, stat_base, q0, seq, br);
    zero_f32(&mut dq_s, comptime!(br * d));

    let last = min(q0 + br, seq) - 1;
    let n_tiles = last / bc + 1;
    for kt in 0..n_tiles {
        let k0 = kt * bc;
        load_rows::<F>(qkv, &mut k_s, base + d, stride, k0, seq, bc, d, ld);
        load_rows::<F>(qkv, &mut v_s, base + 2 * d, stride, k0, seq, bc, d, ld);
        sync_cube();
        tile_mma::<F>(
            &q_s, &k_s, &mut s_s, br, bc, d, ld, ld, bc, true, false, use_cmma,
        );
        tile_mma::<F>(
            &do_s, &v_s, &mut dp_s, br, bc, d, ld, ld, bc, true, false, use_cmma,
        );
        sync_cube();
        let mut idx = UNIT_POS as usize;
        while idx < comptime!(br * bc) {
            let i = idx / bc;
            let j = idx % bc;
            let mut ds = f32::new(0.0);
            if q0 + i < seq && k0 + j <= q0 + i {
                let p = f32::exp(s_s[idx] * scale - lse_s[i]);
                ds = p * (dp_s[idx] - delta_s[i]) * scale;
            }
            ds_s[idx] = F::cast_from(ds);
            idx += CUBE_DIM as usize;
        }
        sync_cube();
        tile_mma::<F>(
            &ds_s, &k_s, &mut dq_s, br, d, bc, bc, ld, d, false, true, use_cmma,
        );
        sync_cube();
    }

    let mut idx = UNIT_POS as usize;
    while idx < comptime!(br * d) {
        let t = q0 + idx / d;
        if t < seq {
            dqkv[base + t * stride + idx % d] = F::cast_from(dq_s[idx]);
        }
        idx += CUBE_DIM as usize;
    }
}

fn grid(s: AttnShape, block: usize) -> CubeCount {
    CubeCount::Static(s.seq.div_ceil(block) as u32, s.heads as u32, s.batch as u32)
}

fn scale_of(s: AttnShape) -> f32 {
    1.0 / (s.head_dim as f32).sqrt()
}

/// out `[tokens, heads, head_dim]` and lse `[batch, heads, seq]` (f32)
/// from the fused qkv `[tokens, heads, 3, head_dim]`.
pub fn attention_fwd<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    qkv: &Buf<R, F>,
    out: &Buf<R, F>,
    lse: &Buf<R, f32>,
    s: AttnShape,
) -> Result<()> {
    s.check_qkv("attention_fwd", qkv.len(), out.len(), lse.len())?;
    let t = plan::<R, F>(client, s.head_dim, Pass::Forward);
    flash_fwd_kernel::launch::<F, R>(
        client,
        grid(s, t.br),
        CubeDim::new_1d(THREADS as u32),
        qkv.arg(),
        out.arg(),
        lse.arg(),
        s.seq,
        s.heads,
        scale_of(s),
        s.head_dim,
        t.br,
        t.bc,
        t.tile_stride(s.head_dim),
        t.cmma,
    );
    Ok(())
}

/// `delta = rowsum(dO ∘ O)` per (batch, head, query), f32 `[B, H, T]`.
pub(crate) fn delta_rows<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    dout: &Buf<R, F>,
    out: &Buf<R, F>,
    delta: &Buf<R, f32>,
    s: AttnShape,
) {
    let (count, dim) = elementwise_launch(client, s.batch * s.heads * s.seq);
    flash_delta_kernel::launch::<F, R>(
        client,
        count,
        dim,
        dout.arg(),
        out.arg(),
        delta.arg(),
        s.batch,
        s.seq,
        s.heads,
        s.head_dim,
    );
}

/// d(qkv) (every element overwritten) from d(out), recomputing the
/// probabilities from the saved lse. `delta` is f32 scratch of `batch *
/// heads * seq` elements.
#[allow(clippy::too_many_arguments)]
pub fn attention_bwd<R: Runtime, F: Float + CubeElement>(
    client: &ComputeClient<R>,
    dout: &Buf<R, F>,
    qkv: &Buf<R, F>,
    out: &Buf<R, F>,
    lse: &Buf<R, f32>,
    delta: &Buf<R, f32>,
    dqkv: &Buf<R, F>,
    s: AttnShape,
) -> Result<()> {
    s.check_qkv("attention_bwd", qkv.len(), out.len(), lse.len())?;
    expect_len("attention_bwd", "dout", dout.len(), out.len())?;
    expect_len("attention_bwd", "delta", delta.len(), lse.len())?;
    expect_len("attention_bwd", "dqkv", dqkv.len(), qkv.len())?;
    delta_rows(client, dout, out, delta, s);
    let kv = plan::<R, F>(client, s.head_dim, Pass::BackwardKv);
    flash_bwd_kv_kernel::launch::<F, R>(
        client,
        grid(s, kv.bc),
        CubeDim::new_1d(THREADS as u32),
        qkv.arg(),
        dout.arg(),
        lse.arg(),
        delta.arg(),
        dqkv.arg(),
        s.seq,
        s.heads,
        scale_of(s),
        s.head_dim,
        kv.br,
        kv.bc,
        kv.tile_stride(s.head_dim),
        kv.cmma,
    );
    let q = plan::<R, F>(client, s.head_dim, Pass::BackwardQ);
    flash_bwd_q_kernel::launch::<F, R>(
        client,
        grid(s, q.br),
        CubeDim::new_1d(THREADS as u32),
        qkv.arg(),
        dout.arg(),
        lse.arg(),
        delta.arg(),
        dqkv.arg(),
        s.seq,
        s.heads,
        scale_of(s),
        s.head_dim,
        q.br,
        q.bc,
        q.tile_stride(s.head_dim),
        q.cmma,
    );
    Ok(())
}

/// The CPU definition of this file's kernels, in plain Rust with f64
/// accumulation: what [`check`] holds them to (re-exported, with every
/// other op's, by [`crate::reference`]).
pub mod reference {
    use super::AttnShape;

    /// Query `i`'s scaled scores against keys `0..=i` of (batch `b`, head
    /// `h`), with their maximum `m` and the softmax's normaliser `z` (the
    /// sum of `exp(score - m)`).
    fn causal_scores(
        qkv: &[f32],
        s: AttnShape,
        b: usize,
        h: usize,
        i: usize,
    ) -> (Vec<f64>, f64, f64) {
        let d = s.head_dim;
        let scale = 1.0 / (d as f64).sqrt();
        let q = &qkv[s.qkv_at(b * s.seq + i, h, 0)..][..d];
        let scores: Vec<f64> = (0..=i)
            .map(|j| {
                let k = &qkv[s.qkv_at(b * s.seq + j, h, 1)..][..d];
                q.iter()
                    .zip(k)
                    .map(|(a, b)| *a as f64 * *b as f64)
                    .sum::<f64>()
                    * scale
            })
            .collect();
        let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = scores.iter().map(|x| (x - m).exp()).sum();
        (scores, m, z)
    }

    /// Causal softmax attention. Returns (out `[tokens, heads, head_dim]`,
    /// log-sum-exp `[batch, heads, seq]`).
    pub fn attention_fwd(qkv: &[f32], s: AttnShape) -> (Vec<f32>, Vec<f32>) {
        let d = s.head_dim;
        let mut out = vec![0f32; s.tokens() * s.heads * d];
        let mut lse = vec![0f32; s.batch * s.heads * s.seq];
        for b in 0..s.batch {
            for h in 0..s.heads {
                for i in 0..s.seq {
                    let ti = b * s.seq + i;
                    let (scores, m, z) = causal_scores(qkv, s, b, h, i);
                    for (j, sc) in scores.iter().enumerate() {
                        let p = (sc - m).exp() / z;
                        let v = &qkv[s.qkv_at(b * s.seq + j, h, 2)..][..d];
                        for c in 0..d {
                            out[(ti * s.heads + h) * d + c] += (p * v[c] as f64) as f32;
                        }
                    }
                    lse[(b * s.heads + h) * s.seq + i] = (m + z.ln()) as f32;
                }
            }
        }
        (out, lse)
    }

    /// d(qkv) of causal attention given d(out).
    pub fn attention_bwd(dout: &[f32], qkv: &[f32], s: AttnShape) -> Vec<f32> {
        let d = s.head_dim;
        let scale = 1.0 / (d as f64).sqrt();
        let mut dqkv = vec![0f64; qkv.len()];
        let (out, _) = attention_fwd(qkv, s);
        for b in 0..s.batch {
            for h in 0..s.heads {
                for i in 0..s.seq {
                    let ti = b * s.seq + i;
                    let q = &qkv[s.qkv_at(ti, h, 0)..][..d];
                    let doi = &dout[(ti * s.heads + h) * d..][..d];
                    let oi = &out[(ti * s.heads + h) * d..][..d];
                    let delta: f64 = doi.iter().zip(oi).map(|(a, b)| *a as f64 * *b as f64).sum();
                    let (scores, m, z) = causal_scores(qkv, s, b, h, i);
                    for (j, sc) in scores.iter().enumerate() {
                        let tj = b * s.seq + j;
                        let p = (sc - m).exp() / z;
                        let v = &qkv[s.qkv_at(tj, h, 2)..][..d];
                        let dp: f64 = doi.iter().zip(v).map(|(a, b)| *a as f64 * *b as f64).sum();
                        let ds = p * (dp - delta) * scale;
                        let k = &qkv[s.qkv_at(tj, h, 1)..][..d];
                        for c in 0..d {
                            dqkv[s.qkv_at(ti, h, 0) + c] += ds * k[c] as f64;
                            dqkv[s.qkv_at(tj, h, 1) + c] += ds * q[c] as f64;
                            dqkv[s.qkv_at(tj, h, 2) + c] += p * doi[c] as f64;
                        }
                    }
                }
            }
        }
        dqkv.into_iter().map(|v| v as f32).collect()
    }
}

// `prior runtime check` (and the tests): this file's kernels against
// [`reference`] on fresh random inputs.

pub(crate) fn small_shapes() -> [AttnShape; 2] {
    [
        AttnShape {
            batch: 2,
            seq: 19,
            heads: 3,
            head_dim: 16,
            rotary_dims: 4,
        },
        AttnShape {
            batch: 1,
            seq: 70,
            heads: 2,
            head_dim: 32,
            rotary_dims: 8,
        },
    ]
}

/// Attention at the tiny test sizes and at Pythia's head sizes 64 (160m,
/// 410m), 80 (2.8b), 128 (1.4b, 6.9b) and 256 (1b), each at a sequence
/// length that is no multiple of any tile.
fn check_shapes() -> Vec<AttnShape> {
    let mut shapes = small_shapes().to_vec();
    for (seq, heads, head_dim) in [(70, 2, 64), (21, 1, 80), (45, 1, 128), (33, 1, 256)] {
        shapes.push(AttnShape {
            batch: 1,
            seq,
            heads,
            head_dim,
            rotary_dims: head_dim / 4,
        });
    }
    shapes
}

pub(crate) fn check<R: Runtime>(c: &mut Checker<R>) -> Result<(), String> {
    let client = c.client;
    for s in check_shapes() {
        let qkv: Vec<f32> = c
            .rand(s.tokens() * s.heads * 3 * s.head_dim)
            .iter()
            .map(|v| v * 2.0)
            .collect();
        let dout = c.rand(s.tokens() * s.heads * s.head_dim);
        let case = format!(
            "batch {}, seq {}, heads {}, head_dim {}",
            s.batch, s.seq, s.heads, s.head_dim
        );
        let (out_ref, lse_ref) = cpu::attention_fwd(&qkv, s);
        let qb = c.up(&qkv);
        let out = Buf::<R, f32>::empty(client, out_ref.len());
        let lse = Buf::<R, f32>::empty(client, lse_ref.len());
        attention_fwd(client, &qb, &out, &lse, s).map_err(launch_err)?;
        let fwd = (|| {
            Ok(vec![
                rel_err(&c.down(&out)?, &out_ref),
                rel_err(&c.down(&lse)?, &lse_ref),
            ])
        })();
        c.record("attention_fwd", case.clone(), fwd);
        let delta = Buf::<R, f32>::empty(client, lse_ref.len());
        let dqkv = Buf::<R, f32>::empty(client, qkv.len());
        attention_bwd(client, &c.up(&dout), &qb, &out, &lse, &delta, &dqkv, s)
            .map_err(launch_err)?;
        let bwd = (|| {
            Ok(vec![rel_err(
                &c.down(&dqkv)?,
                &cpu::attention_bwd(&dout, &qkv, s),
            )])
        })();
        c.record("attention_bwd", case, bwd);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pythia_head_size_gets_tiles_on_lavapipe_and_tensor_cores_on_hopper() {
        for d in [16, 32, 64, 80, 128, 256] {
            for pass in [Pass::Forward, Pass::BackwardKv, Pass::BackwardQ] {
                // lavapipe: 32 KiB, f32 and f16, scalar path.
                for elem in [4, 2] {
                    let (br, bc) = fit(pass, d, elem, 32 * 1024, 1).expect("fits");
                    assert!(br >= 4 && bc >= 4, "{pass:?} d {d}: {br}x{bc}");
                    assert!(smem_bytes(pass, d, br, bc, elem) <= 32 * 1024);
                    assert_eq!(THREADS % br, 0);
                }
                // Hopper, bf16 on tensor cores: multiples of 16.
                let (br, bc) = fit(pass, d, 2, SMEM_BUDGET, 16).expect("fits");
                assert!(br % 16 == 0 && bc % 16 == 0 && br >= 32, "{pass:?} d {d}");
            }
        }
        assert_eq!(fit(Pass::Forward, 64, 2, SMEM_BUDGET, 16), Some((64, 64)));
        assert_eq!(fit(Pass::Forward, 256, 4, 1024, 16), None);
    }
}
