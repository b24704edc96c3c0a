//! prior-data's integration tests, one binary (each test binary links the
//! whole crate again, so they are modules of one).

mod corpus;
mod megatron;
mod shard_format;
mod synth;
mod tokenizer;
