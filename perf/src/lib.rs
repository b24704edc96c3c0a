//! prior-perf: where the time goes.
//!
//! - [`step`]: `prior bench step`, the trainer's own step (a real loader's
//!   batches, its micro-batch accumulation and optimizer) timed by phase
//!   (loader wait, host-to-device, forward, backward, optimizer) and by
//!   kernel, with tokens/s, model FLOPs per token and MFU.
//! - [`report`]: `prior perf report`, a training run's metrics.jsonl as an
//!   HTML page with SVG plots (throughput, stall share, loss).
//! - [`loader_bench`]: `prior loader bench`, the loader's throughput on a
//!   mix against one thread of raw zstd on the same shards, with latency,
//!   read amplification, memory and resume time.
//! - [`proc`]: the process's resident memory, for the benchmarks' reports.
//! - [`plot`]: every chart of the project (this report's and the
//!   experiment report's), SVG through plotters.
//!
//! Kernel micro-benchmarks are `prior bench kernels` (prior-runtime).

pub mod loader_bench;
pub mod plot;
pub mod proc;
pub mod report;
pub mod step;
