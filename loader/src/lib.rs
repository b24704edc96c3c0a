//! prior-loader: a deterministic, replayable mixture of corpus categories.
//!
//! The global batch of step `s` is a pure function of (corpus fingerprint,
//! mix, seed, s). [`mix`] reads the spec; [`schedule`] decides how many
//! sequences of each category a step gets (exact shares, no drift);
//! [`stream`] says where a category's k-th sequence lies (epochs in keyed
//! block orders, lanes for spread); [`sampler`] builds any step's batch on
//! its own; [`pipeline`] runs it on worker threads with prefetch and keeps
//! the resumable [`pipeline::LoaderState`] with a running hash of
//! everything served.

mod cache;
pub mod error;
pub mod mix;
pub mod permute;
pub mod pipeline;
pub mod raw_rate;
pub mod sampler;
pub mod schedule;
pub mod stats;
pub mod stream;
pub mod token;

pub use cache::ShardSet;
pub use error::{LoaderError, Result};
pub use mix::MixSpec;
pub use pipeline::{Loader, LoaderOptions, LoaderState, Start};
pub use sampler::{Batch, Sampler};
pub use token::Token;
