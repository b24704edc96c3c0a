//! Occupancy from a kernel's resources, as NVIDIA's occupancy calculator
//! computes it: how many cubes (blocks) of a kernel fit on one SM at once,
//! limited by the register file, shared memory, the warp slots and the
//! block slots, and the warps per SM that gives.
//!
//! Registers are allocated per warp in units of 256 (so 33 registers per
//! thread cost as much as 40); shared memory per block in units of 128
//! bytes plus 1 KiB the system reserves per block.

use serde::Serialize;

use super::Arch;

/// Per-SM limits of an architecture (CUDA C Programming Guide, table of
/// technical specifications per compute capability).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmLimits {
    pub registers: u32,
    pub max_warps: u32,
    pub max_blocks: u32,
    pub shared_bytes: u32,
    pub reserved_shared_per_block: u32,
}

impl SmLimits {
    pub fn of(arch: Arch) -> SmLimits {
        SmLimits {
            registers: 65_536,
            max_warps: 64,
            max_blocks: 32,
            // 228 KiB on Hopper, 164 KiB on A100.
            shared_bytes: if arch.version >= 90 { 233_472 } else { 167_936 },
            reserved_shared_per_block: 1024,
        }
    }
}

/// What limits a kernel's occupancy first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limiter {
    Registers,
    SharedMemory,
    Warps,
    Blocks,
}

/// Resident cubes and warps per SM.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Occupancy {
    pub blocks_per_sm: u32,
    pub warps_per_sm: u32,
    /// `warps_per_sm` over the SM's warp slots.
    pub fraction: f64,
    pub limiter: Limiter,
}

/// Occupancy of a kernel with `threads` units per cube, `registers` per
/// thread and `shared_bytes` of shared memory per cube.
pub fn occupancy(limits: SmLimits, threads: u32, registers: u32, shared_bytes: u32) -> Occupancy {
    let warps_per_block = threads.div_ceil(32).max(1);
    let by_warps = limits.max_warps / warps_per_block;
    let by_regs = if registers == 0 {
        u32::MAX
    } else {
        let per_warp = (registers * 32).div_ceil(256) * 256;
        (limits.registers / per_warp) / warps_per_block
    };
    let by_smem = if shared_bytes == 0 {
        u32::MAX
    } else {
        let per_block = shared_bytes.div_ceil(128) * 128 + limits.reserved_shared_per_block;
        limits.shared_bytes / per_block
    };
    let candidates = [
        (limits.max_blocks, Limiter::Blocks),
        (by_warps, Limiter::Warps),
        (by_regs, Limiter::Registers),
        (by_smem, Limiter::SharedMemory),
    ];
    let (blocks, limiter) = candidates
        .into_iter()
        .min_by_key(|c| c.0)
        .expect("four candidates");
    let warps = blocks * warps_per_block;
    Occupancy {
        blocks_per_sm: blocks,
        warps_per_sm: warps,
        fraction: warps as f64 / limits.max_warps as f64,
        limiter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn occupancy_follows_the_calculator() {
        let h100 = SmLimits::of(Arch::SM_90A);
        // 256 threads, 32 registers, no smem: 8 warps per block, warp slots
        // allow 8 blocks, registers 65536 / (1024 * 8) = 8: full.
        let o = occupancy(h100, 256, 32, 0);
        assert_eq!((o.blocks_per_sm, o.warps_per_sm), (8, 64));
        assert_eq!(o.fraction, 1.0);
        // 128 registers: 4096 per warp, 16 warps, 2 blocks of 8 warps.
        let o = occupancy(h100, 256, 128, 0);
        assert_eq!((o.blocks_per_sm, o.limiter), (2, Limiter::Registers));
        // 33 registers round up to 40 per thread (1280 per warp): 51 warps,
        // 6 blocks of 8.
        assert_eq!(occupancy(h100, 256, 33, 0).blocks_per_sm, 6);
        // 100 KiB of shared memory per block: two fit in 228 KiB.
        let o = occupancy(h100, 128, 16, 100 * 1024);
        assert_eq!((o.blocks_per_sm, o.limiter), (2, Limiter::SharedMemory));
        // 32 threads: the 32-block limit binds before the warp slots.
        let o = occupancy(h100, 32, 16, 0);
        assert_eq!(
            (o.blocks_per_sm, o.warps_per_sm, o.limiter),
            (32, 32, Limiter::Blocks)
        );
    }
}
