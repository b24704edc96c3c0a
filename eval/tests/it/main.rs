//! prior-eval's integration tests, one binary for the crate: every test
//! binary compiles and instantiates the runtime's GPU kernels again, so the
//! modules share one.
//!
//! - [`eval`]: suite parsing, prompt rendering, option checks, and device
//!   scoring against a CPU recomputation.
//! - [`paired`]: paired differences between two score sets, by question id.
//! - [`report`]: the report's charts and text from data, and the metrics
//!   logs it refuses.
//! - [`experiment`]: experiment configs, condition mixes, and a small
//!   experiment end to end (resuming, and refusing damaged files).
//! - [`common`]: the questions, corpora and configs they build on.

mod common;
mod eval;
mod experiment;
mod paired;
mod report;
