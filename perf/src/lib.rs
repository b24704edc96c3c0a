//! prior-perf: where the time goes.
//!
//! - [`step`]: `prior bench step`, the trainer's own step (a real loader's
//!   batches, its micro-batch accumulation and optimizer) timed by phase
//!   (loader wait, host-to-device, forward, backward, optimizer) and by
//!   kernel, with tokens/s, model FLOPs per token and MFU.
//! - [`report`]: `prior perf report`, a training run's metrics.jsonl as an
//!   HTML page with SVG plots (throughput, stall share, loss).
//!
//! The loader's own benchmark is `prior loader bench` (prior-loader);
//! kernel micro-benchmarks are `prior bench kernels` (prior-runtime).

pub mod report;
pub mod step;
