//! prior-data: the on-disk side of prior.
//!
//! Owns the token shard format (independent zstd frames plus an index),
//! the corpus directory and its manifest, tokenizers, ingest from JSONL /
//! text / Megatron indexed datasets, the AI-discourse keyword filter and
//! the synthetic discourse corpus generator.

pub mod filter;
pub mod synth;
pub mod tokenizer;

pub mod atomic;
pub mod corpus;
pub mod corpus_filter;
pub mod error;
pub mod ingest;
pub mod megatron;
pub mod shard;

pub use corpus::{Corpus, CorpusWriter, Manifest, WriteOptions};
pub use error::{DataError, Result, ShardRegion};
pub use shard::{FrameDecoder, ShardReader, ShardWriter, TokenWidth};
