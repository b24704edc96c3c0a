//! A category's endless token stream, epoch after epoch, each epoch in a
//! new block order, cut into sequences of `seq_len + 1` tokens.
//!
//! Blocks are the shards' zstd frames, so reading a block decompresses one
//! frame. Every frame but each shard's last holds exactly `frame_tokens`
//! tokens; those *full* blocks are shuffled with a keyed Feistel
//! permutation (O(1) memory, any position computable alone), and each
//! shard's short last frame goes, in a keyed order, after them. An epoch's
//! stream is the concatenation of its blocks; sequence `q` of an epoch is
//! tokens `[q*L, q*L + L + 1)` of it (consecutive sequences share one
//! token, as in GPT-NeoX), where `L = seq_len`.
//!
//! To spread a batch over the corpus without losing locality, the epoch is
//! split into `interleave` contiguous *lanes* read side by side: sequence
//! `k` of the category comes from lane `k mod I`. Each lane walks its part
//! of the epoch front to back, so each frame is still decompressed about
//! once per pass while a batch draws from I places.

use std::sync::{Arc, Mutex};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha12Rng;
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use crate::error::{LoaderError, Result};
use crate::permute::Permutation;

/// A contiguous run of a sequence's tokens inside one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Piece {
    /// Index into the loader's shard set.
    pub shard: u32,
    pub frame: u32,
    /// First token within the frame.
    pub start: u32,
    pub len: u32,
}

/// Where sequence `k` of a category lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceSource {
    pub epoch: u64,
    pub pieces: Vec<Piece>,
}

struct ShortOrder {
    epoch: u64,
    /// Indices into `short`, in this epoch's order, and prefix sums of
    /// their lengths (one longer).
    order: Vec<u32>,
    prefix: Vec<u64>,
}

pub struct CategoryStream {
    pub name: String,
    frame_tokens: u64,
    /// Global shard ids of this category, in manifest order.
    shard_ids: Vec<u32>,
    /// Prefix sums of full frames per shard (one longer than `shard_ids`).
    full_prefix: Vec<u64>,
    /// (global shard id, frame, tokens) of each shard's short last frame.
    short: Vec<(u32, u32, u64)>,
    n_full: u64,
    epoch_tokens: u64,
    seq_per_epoch: u64,
    lanes: u64,
    seq_len: u64,
    key: u64,
    short_cache: Mutex<Vec<Arc<ShortOrder>>>,
    /// The last epoch's block permutation (building one seeds ChaCha; a
    /// batch asks for the same epoch's many times).
    perm_cache: Mutex<Option<(u64, Arc<Permutation>)>>,
}

impl CategoryStream {
    /// `shards`: (global shard id, tokens, frames, frame_tokens) in
    /// manifest order.
    pub fn new(
        name: &str,
        shards: &[(u32, u64, u64, u32)],
        seq_len: u32,
        interleave: u32,
        mix_key: u64,
    ) -> Result<CategoryStream> {
        let frame_tokens = shards.iter().map(|s| s.3).max().unwrap_or(1) as u64;
        if let Some(s) = shards.iter().find(|s| s.3 as u64 != frame_tokens) {
            return Err(LoaderError::Usage(format!(
                "category {name:?} mixes frame sizes ({} and {frame_tokens} tokens, shard {}): re-ingest it with one --frame-tokens",
                s.3, s.0
            )));
        }
        let mut full_prefix = vec![0u64];
        let mut short = Vec::new();
        let mut shard_ids = Vec::new();
        for &(id, tokens, frames, _) in shards {
            shard_ids.push(id);
            // The corpus manifest checks the frame rule; checked here too
            // because block addressing is only correct under it.
            let last = frames
                .checked_sub(1)
                .and_then(|f| tokens.checked_sub(f * frame_tokens))
                .filter(|&l| l > 0 && l <= frame_tokens)
                .ok_or_else(|| {
                    LoaderError::Usage(format!(
                        "category {name:?}, shard {id}: {tokens} tokens do not fill {frames} frames of {frame_tokens} tokens as the frame rule requires"
                    ))
                })?;
            let full = if last == frame_tokens {
                frames
            } else {
                frames - 1
            };
            if last != frame_tokens {
                short.push((id, (frames - 1) as u32, last));
            }
            full_prefix.push(full_prefix.last().expect("non-empty") + full);
        }
        let n_full = *full_prefix.last().expect("non-empty");
        let epoch_tokens = n_full * frame_tokens + short.iter().map(|s| s.2).sum::<u64>();
        let seq_len = seq_len as u64;
        let seq_per_epoch = epoch_tokens.saturating_sub(1) / seq_len;
        if seq_per_epoch == 0 {
            return Err(LoaderError::Usage(format!(
                "category {name:?} holds {epoch_tokens} tokens, fewer than one sequence of {}",
                seq_len + 1
            )));
        }
        let mut h = Xxh3::new();
        h.update(&mix_key.to_le_bytes());
        h.update(name.as_bytes());
        Ok(CategoryStream {
            name: name.to_string(),
            frame_tokens,
            shard_ids,
            full_prefix,
            short,
            n_full,
            epoch_tokens,
            seq_per_epoch,
            lanes: (interleave as u64).min(seq_per_epoch),
            seq_len,
            key: h.digest(),
            short_cache: Mutex::new(Vec::new()),
            perm_cache: Mutex::new(None),
        })
    }

    /// Tokens one pass over the category takes.
    pub fn epoch_tokens(&self) -> u64 {
        self.epoch_tokens
    }

    pub fn sequences_per_epoch(&self) -> u64 {
        self.seq_per_epoch
    }

    pub fn frame_tokens(&self) -> u64 {
        self.frame_tokens
    }

    fn epoch_key(&self, epoch: u64, what: u64) -> u64 {
        let mut h = Xxh3::new();
        h.update(&self.key.to_le_bytes());
        h.update(&epoch.to_le_bytes());
        h.update(&what.to_le_bytes());
        h.digest()
    }

    fn short_order(&self, epoch: u64) -> Arc<ShortOrder> {
        let mut cache = self.short_cache.lock().expect("short-block cache");
        if let Some(o) = cache.iter().find(|o| o.epoch == epoch) {
            return o.clone();
        }
        let mut order: Vec<u32> = (0..self.short.len() as u32).collect();
        order.shuffle(&mut ChaCha12Rng::seed_from_u64(self.epoch_key(epoch, 2)));
        let mut prefix = Vec::with_capacity(order.len() + 1);
        prefix.push(0u64);
        for &i in &order {
            prefix.push(prefix.last().expect("non-empty") + self.short[i as usize].2);
        }
        let o = Arc::new(ShortOrder {
            epoch,
            order,
            prefix,
        });
        if cache.len() >= 4 {
            cache.remove(0);
        }
        cache.push(o.clone());
        o
    }

    fn permutation(&self, epoch: u64) -> Arc<Permutation> {
        let mut cache = self.perm_cache.lock().expect("permutation cache");
        match &*cache {
            Some((e, p)) if *e == epoch => p.clone(),
            _ => {
                let p = Arc::new(Permutation::new(self.n_full, self.epoch_key(epoch, 1)));
                *cache = Some((epoch, p.clone()));
                p
            }
        }
    }

    /// Sequence `k` of the category's endless stream.
    pub fn sequence(&self, k: u64) -> SequenceSource {
        let epoch = k / self.seq_per_epoch;
        let q = k % self.seq_per_epoch;
        let (lane, j) = (q % self.lanes, q / self.lanes);
        let base = self.seq_per_epoch / self.lanes;
        let extra = self.seq_per_epoch % self.lanes;
        let slot = lane * base + lane.min(extra) + j;
        let mut pos = slot * self.seq_len;
        let mut left = self.seq_len + 1;
        let perm = self.permutation(epoch);
        let full_tokens = self.n_full * self.frame_tokens;
        let mut pieces = Vec::with_capacity(2);
        let mut short: Option<Arc<ShortOrder>> = None;
        while left > 0 {
            let (shard, frame, off, avail) = if pos < full_tokens {
                let b = perm.apply(pos / self.frame_tokens);
                let s = self.full_prefix.partition_point(|&p| p <= b) - 1;
                let off = pos % self.frame_tokens;
                (
                    self.shard_ids[s],
                    (b - self.full_prefix[s]) as u32,
                    off,
                    self.frame_tokens - off,
                )
            } else {
                let so = short.get_or_insert_with(|| self.short_order(epoch));
                let p = pos - full_tokens;
                let i = so.prefix.partition_point(|&x| x <= p) - 1;
                let (shard, frame, len) = self.short[so.order[i] as usize];
                let off = p - so.prefix[i];
                (shard, frame, off, len - off)
            };
            let take = avail.min(left);
            pieces.push(Piece {
                shard,
                frame,
                start: off as u32,
                len: take as u32,
            });
            pos += take;
            left -= take;
        }
        SequenceSource { epoch, pieces }
    }
}
