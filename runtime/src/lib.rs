//! prior-runtime: the training engine's device layer, written in cubecl.
//!
//! - [`device`]: CUDA or wgpu (Vulkan, including Mesa's software driver),
//!   probed without panicking; `auto` says what it chose and why.
//! - [`buffer`]: typed device buffers (the model keeps one flat parameter
//!   and one flat gradient buffer and hands kernels views).
//! - [`kernels`]: every transformer op forward and backward, generic over
//!   the runtime and float type, with deterministic reductions.
//! - [`reference`]: the plain-Rust CPU definition of every op.
//! - [`check`]: kernels against the reference on fresh random inputs, the
//!   engine behind `prior runtime check` and the tests.
//! - [`cuda_offline`]: CUDA without a GPU: a runtime that compiles every
//!   kernel it is asked to launch for a named architecture, NVRTC for
//!   registers, spills and shared memory, and the occupancy they imply;
//!   the engine behind `prior runtime compile-check`.
//! - [`dist`]: data-parallel process groups: the launcher's environment,
//!   the TCP rendezvous at `MASTER_ADDR:MASTER_PORT`, the host collective.

pub mod bench;
pub mod buffer;
pub mod check;
pub mod cuda_offline;
pub mod device;
pub mod dist;
pub mod error;
pub mod kernels;
pub mod reference;

pub use cubecl;
pub use device::{DeviceInfo, DeviceKind, OnDevice};
pub use error::{Result, RuntimeError};

/// Runs [`check::run_checks`] on a chosen device.
pub struct CheckTask {
    pub seed: u64,
}

impl OnDevice for CheckTask {
    type Output = Vec<check::KernelCheck>;
    fn run<R: cubecl::Runtime>(
        self,
        client: cubecl::prelude::ComputeClient<R>,
        _device: &DeviceInfo,
    ) -> Self::Output {
        check::run_checks(&client, self.seed)
    }
}

/// Runs [`bench::bench_kernels`] on a chosen device.
pub struct BenchTask {
    pub shape: bench::BenchShape,
    pub reps: usize,
}

impl OnDevice for BenchTask {
    type Output = Result<Vec<bench::KernelTiming>>;
    fn run<R: cubecl::Runtime>(
        self,
        client: cubecl::prelude::ComputeClient<R>,
        _device: &DeviceInfo,
    ) -> Self::Output {
        bench::bench_kernels(&client, self.shape, self.reps)
    }
}
