//! The bar the loader's throughput is measured against: one thread doing
//! nothing but zstd-decompressing the frames of the mix's categories.
//!
//! A loader that delivers at or above this rate with two threads is bound
//! by decompression alone; `prior loader bench` and the Python package's
//! benchmark print their rates beside it.

use std::time::Instant;

use crate::error::{LoaderError, Result};
use crate::sampler::Sampler;

/// Tokens per second of one thread decompressing the frames of `sampler`'s
/// categories in file order (about `budget_tokens` of them, fewer if the
/// corpus is smaller), and the tokens it decoded.
pub fn raw_zstd_rate(sampler: &Sampler, budget_tokens: u64) -> Result<(f64, u64)> {
    let shards = sampler.shards();
    let corpus = shards.corpus();
    let mut dec = zstd::bulk::Decompressor::new()
        .map_err(|e| LoaderError::Usage(format!("zstd decompression context: {e}")))?;
    let mut buf: Vec<u8> = Vec::new();
    let mut tokens = 0u64;
    let t0 = Instant::now();
    'outer: for name in &sampler.spec().categories {
        for e in &corpus.category(name)?.shards {
            let r = corpus.open_shard_entry(e)?;
            let width = r.width().bytes();
            for f in 0..r.num_frames() {
                let fr = r.frame(f);
                buf.clear();
                buf.reserve(fr.tokens as usize * width);
                dec.decompress_to_buffer(r.compressed_frame(f), &mut buf)
                    .map_err(|err| LoaderError::Frame {
                        shard: corpus.dir().join(&e.file),
                        frame: f as u32,
                        detail: format!("zstd: {err}"),
                    })?;
                tokens += (buf.len() / width) as u64;
                if tokens >= budget_tokens {
                    break 'outer;
                }
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64().max(1e-9);
    Ok((tokens as f64 / secs, tokens))
}
