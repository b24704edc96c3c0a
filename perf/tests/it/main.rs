//! prior-perf's integration tests, one binary (each test binary would
//! otherwise compile the GPU kernels again).
//!
//! - [`step`]: `prior bench step` runs the trainer's step on the loader's
//!   batches.
//! - [`report`]: `prior perf report`'s page from a metrics.jsonl.

mod report;
mod step;
