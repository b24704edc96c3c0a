//! The pure function at the heart of the loader: step -> batch.
//!
//! [`Sampler::batch`] builds any step's batch (or one rank's slice of it)
//! from the schedule's plan, the category streams and the shared frame
//! cache, with no state carried between calls. Threads, prefetch, resume
//! and replay all reduce to calling it with the right step, which is why
//! they cannot change the data.

use std::sync::Arc;

use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

use crate::cache::{FrameCache, ShardSet};
use crate::error::{LoaderError, Result};
use crate::mix::MixSpec;
use crate::schedule::{AllocState, MixSchedule, StepPlan};
use crate::stream::{CategoryStream, Piece};
use crate::token::{hash_u32, Token};

/// One sequence of a batch and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SequenceMeta {
    /// Position in the global batch.
    pub index: u32,
    /// Index into [`MixSpec::categories`].
    pub category: u16,
    /// Sequence number within the category's endless stream.
    pub seq: u64,
    /// Pass over the category this sequence belongs to (0 = first).
    pub epoch: u64,
    pub pieces: Vec<Piece>,
    /// xxh3-64 of the sequence's tokens (little-endian u32).
    pub token_hash: u64,
}

/// A step's batch (one rank's slice of it when sharded): `n` sequences of
/// `seq_len + 1` tokens in one contiguous row-major buffer of `T` (see
/// [`Token`]), ready to upload.
#[derive(Debug, Clone)]
pub struct Batch<T = u32> {
    pub step: u64,
    pub phase: usize,
    pub seq_tokens: usize,
    pub eot_id: u32,
    pub tokens: Vec<T>,
    pub sequences: Vec<SequenceMeta>,
    /// Hash of (step, each sequence's position, category and tokens).
    pub hash: u64,
    /// Schedule state after this step, for checkpoints.
    pub state_after: AllocState,
}

impl<T: Token> Batch<T> {
    pub fn len(&self) -> usize {
        self.sequences.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sequences.is_empty()
    }

    /// Tokens of sequence `i` (`seq_len + 1` of them).
    pub fn sequence(&self, i: usize) -> &[T] {
        &self.tokens[i * self.seq_tokens..(i + 1) * self.seq_tokens]
    }

    /// Positions in sequence `i` where a new document starts, for
    /// document masking: right after an end-of-text token, and where the
    /// sequence jumps from one block to an unrelated one (blocks are
    /// concatenated in shuffled order, so text on either side of such a
    /// jump belongs to different documents).
    pub fn document_starts(&self, i: usize) -> Vec<u32> {
        document_starts(self.sequence(i), &self.sequences[i].pieces, self.eot_id)
    }
}

/// [`Batch::document_starts`] of one sequence `s` made of `pieces`, for
/// callers that hold the sequence's tokens elsewhere (the Python package's
/// numpy arrays).
pub fn document_starts<T: Token>(s: &[T], pieces: &[Piece], eot_id: u32) -> Vec<u32> {
    {
        let mut out: Vec<u32> = Vec::new();
        let mut pos = 0u32;
        let mut jumps = Vec::new();
        for w in pieces.windows(2) {
            pos += w[0].len;
            let continues =
                w[1].shard == w[0].shard && w[1].frame == w[0].frame + 1 && w[1].start == 0;
            if !continues {
                jumps.push(pos);
            }
        }
        let mut jumps = jumps.into_iter().peekable();
        for j in 1..s.len() as u32 {
            let jump = jumps.next_if_eq(&j).is_some();
            if jump || s[j as usize - 1].to_u32() == eot_id {
                out.push(j);
            }
        }
        out
    }
}

pub struct Sampler {
    spec: MixSpec,
    schedule: MixSchedule,
    streams: Vec<CategoryStream>,
    cache: Arc<FrameCache>,
    eot_id: u32,
}

// Batch hashes are defined over little-endian u32 tokens, hashed as the
// bytes they occupy in memory.
#[cfg(target_endian = "big")]
compile_error!("prior's batch hashes assume a little-endian target");

impl Sampler {
    /// Builds the streams of every category in the mix; reads the
    /// manifest only (no shard is opened here).
    pub fn new(
        spec: MixSpec,
        corpus: prior_data::Corpus,
        cache_frames: Option<usize>,
    ) -> Result<Sampler> {
        let mut entries = Vec::new();
        let mut doc_offsets = Vec::new();
        let mut streams = Vec::new();
        for name in &spec.categories {
            let cat = corpus.category(name)?;
            let mut shards = Vec::new();
            let mut docs = 0u64;
            for e in &cat.shards {
                let before = docs;
                docs += e.documents;
                if e.tokens == 0 {
                    continue;
                }
                shards.push((entries.len() as u32, e.tokens, e.frames, e.frame_tokens));
                entries.push(e.clone());
                doc_offsets.push(before);
            }
            streams.push(CategoryStream::new(
                name,
                &shards,
                spec.seq_len,
                spec.interleave,
                spec.key,
            )?);
        }
        // Enough frames for every lane of every category, twice over (a
        // lane's next frame is read while its current one is still in use),
        // plus the frames one batch spans.
        let lanes: u64 = streams
            .iter()
            .map(|s| (spec.interleave as u64).min(s.sequences_per_epoch()))
            .sum();
        let per_batch = spec.global_batch as usize * 2;
        let capacity = cache_frames.unwrap_or((2 * lanes as usize + 8).max(per_batch.min(4096)));
        let eot_id = corpus.manifest().tokenizer.eot_id;
        let shards = Arc::new(ShardSet::new(corpus, entries, doc_offsets));
        let schedule = MixSchedule::new(&spec);
        Ok(Sampler {
            spec,
            schedule,
            streams,
            cache: Arc::new(FrameCache::new(shards, capacity)),
            eot_id,
        })
    }

    pub fn spec(&self) -> &MixSpec {
        &self.spec
    }

    pub fn schedule(&self) -> &MixSchedule {
        &self.schedule
    }

    pub fn streams(&self) -> &[CategoryStream] {
        &self.streams
    }

    /// Bytes decompressed so far by every thread sharing this sampler's
    /// frame cache (the numerator of the loader's read amplification).
    pub fn decompressed_bytes(&self) -> u64 {
        self.cache.decompressed_bytes()
    }

    /// Frames decompressed so far (each once, however many threads read it).
    pub fn frames_decoded(&self) -> u64 {
        self.cache.frames_decoded()
    }

    pub fn shards(&self) -> &Arc<ShardSet> {
        self.cache.shards()
    }

    /// Positions `[lo, hi)` of the global batch that rank `rank` of
    /// `world` receives.
    pub fn rank_slice(&self, rank: u32, world: u32) -> Result<(usize, usize)> {
        let b = self.spec.global_batch;
        if world == 0 || rank >= world {
            return Err(LoaderError::Usage(format!(
                "rank {rank} is not within world size {world}"
            )));
        }
        if !b.is_multiple_of(world) {
            return Err(LoaderError::Usage(format!(
                "global_batch {b} does not split evenly over {world} ranks"
            )));
        }
        let per = (b / world) as usize;
        Ok((rank as usize * per, (rank as usize + 1) * per))
    }

    /// The frames positions `slice` of `plan` read, sorted and distinct.
    fn frame_keys(
        &self,
        plan: &StepPlan,
        slice: (usize, usize),
    ) -> (Vec<crate::stream::SequenceSource>, Vec<(u32, u32)>) {
        let sources: Vec<_> = plan.positions[slice.0..slice.1]
            .iter()
            .map(|&(category, seq)| self.streams[category as usize].sequence(seq))
            .collect();
        let mut keys: Vec<(u32, u32)> = sources
            .iter()
            .flat_map(|s| s.pieces.iter().map(|p| (p.shard, p.frame)))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        (sources, keys)
    }

    /// Decodes ahead the frames a future step will read (see the pipeline).
    pub fn warm(&self, plan: &StepPlan, slice: (usize, usize)) {
        let (_, keys) = self.frame_keys(plan, slice);
        self.cache.warm(&keys);
    }

    /// Builds the batch of `plan` for positions `slice` of the global batch.
    pub fn build(
        &self,
        plan: &StepPlan,
        slice: (usize, usize),
        state_after: AllocState,
    ) -> Result<Batch> {
        self.build_as(plan, slice, state_after)
    }

    /// [`Sampler::build`] with the tokens in `T`, filled straight from the
    /// decoded frames; the same hash as a u32 batch.
    pub fn build_as<T: Token>(
        &self,
        plan: &StepPlan,
        slice: (usize, usize),
        state_after: AllocState,
    ) -> Result<Batch<T>> {
        self.check_width::<T>()?;
        let seq_tokens = self.spec.sequence_tokens();
        let n = slice.1 - slice.0;
        let mut tokens = Vec::with_capacity(n * seq_tokens);
        let mut sequences = Vec::with_capacity(n);
        let mut h = Xxh3::new();
        h.update(&plan.step.to_le_bytes());
        let sources: Vec<_> = plan.positions[slice.0..slice.1]
            .iter()
            .map(|&(category, seq)| self.streams[category as usize].sequence(seq))
            .collect();
        let mut keys: Vec<(u32, u32)> = sources
            .iter()
            .flat_map(|s| s.pieces.iter().map(|p| (p.shard, p.frame)))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let frames = self.cache.get_many(&keys)?;
        for (k, src) in sources.into_iter().enumerate() {
            let index = slice.0 + k;
            let (category, seq) = plan.positions[index];
            let start = tokens.len();
            for p in &src.pieces {
                let frame = &frames[keys
                    .binary_search(&(p.shard, p.frame))
                    .expect("key collected above")];
                crate::cache::set_reading_frame(Some((p.shard, p.frame)));
                if !frame.copy_tokens(p.start as usize, p.len as usize, &mut tokens) {
                    return Err(LoaderError::Frame {
                        shard: self
                            .shards()
                            .corpus()
                            .dir()
                            .join(&self.shards().entry(p.shard).file),
                        frame: p.frame,
                        detail: format!(
                            "tokens {}..{} asked, the frame holds {}",
                            p.start,
                            p.start + p.len,
                            frame.len()
                        ),
                    });
                }
            }
            crate::cache::set_reading_frame(None);
            let token_hash = hash_u32(&tokens[start..]);
            h.update(&(index as u32).to_le_bytes());
            h.update(&category.to_le_bytes());
            h.update(&token_hash.to_le_bytes());
            sequences.push(SequenceMeta {
                index: index as u32,
                category,
                seq,
                epoch: src.epoch,
                pieces: src.pieces,
                token_hash,
            });
        }
        Ok(Batch {
            step: plan.step,
            phase: plan.phase,
            seq_tokens,
            eot_id: self.eot_id,
            tokens,
            sequences,
            hash: h.digest(),
            state_after,
        })
    }

    /// Category-level numbers of the documents sequence `meta` overlaps.
    pub fn documents(&self, meta: &SequenceMeta) -> Result<Vec<u64>> {
        let mut out: Vec<u64> = Vec::new();
        for p in &meta.pieces {
            let reader = self.shards().reader(p.shard)?;
            let base = reader.frame_token_range(p.frame as usize).start + p.start as u64;
            let starts = reader.document_starts();
            let first = starts.partition_point(|&s| s <= base).saturating_sub(1);
            let last = starts
                .partition_point(|&s| s < base + p.len as u64)
                .saturating_sub(1);
            let off = self.shards().doc_offset(p.shard);
            for d in first..=last {
                let id = off + d as u64;
                if out.last() != Some(&id) {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    /// Step `step`'s batch (rank slice), computed on its own.
    pub fn batch_at(&self, step: u64, rank: u32, world: u32) -> Result<Batch> {
        self.batch_at_as(step, rank, world)
    }

    /// [`Sampler::batch_at`] with the tokens in `T`.
    pub fn batch_at_as<T: Token>(&self, step: u64, rank: u32, world: u32) -> Result<Batch<T>> {
        let slice = self.rank_slice(rank, world)?;
        let mut st = self.schedule.state_at(step);
        let plan = self.schedule.plan(&mut st);
        self.build_as(&plan, slice, st)
    }

    /// An error unless every id of the corpus's vocabulary fits in `T`.
    pub fn check_width<T: Token>(&self) -> Result<()> {
        let vocab = self.shards().corpus().manifest().tokenizer.vocab_size as u64;
        if vocab > T::MAX_ID + 1 {
            return Err(LoaderError::Usage(format!(
                "{} cannot hold the ids of a vocabulary of {vocab}",
                T::NAME
            )));
        }
        Ok(())
    }
}
