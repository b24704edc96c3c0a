//! `prior loader bench`: the loader's throughput on a mix, against the
//! physical bar of one thread decompressing the same shards with raw zstd.
//!
//! The loader's worth is delivering packed, mixed batches at close to the
//! rate zstd decodes frames, so the figure that matters is the ratio of the
//! two measured in the same process on the same shards, not tokens/s alone.
//! Beside it: read amplification (bytes decompressed per byte delivered),
//! the consumer's wait and the workers' batch-build latencies, resident
//! memory, and how fast a loader resumes far into a run.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use prior_loader::{Loader, LoaderOptions, LoaderState, MixSpec, Sampler, Start, Token};
use serde::Serialize;

use crate::proc;

/// What failed while benchmarking the loader.
#[derive(Debug, thiserror::Error)]
pub enum LoaderBenchError {
    #[error(transparent)]
    Loader(#[from] prior_loader::LoaderError),
}

type Result<T> = std::result::Result<T, LoaderBenchError>;

/// The integer type batches are filled in (what a trainer asks for).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchDtype {
    Uint16,
    Uint32,
    Int32,
    Int64,
}

impl BatchDtype {
    pub fn name(self) -> &'static str {
        match self {
            BatchDtype::Uint16 => u16::NAME,
            BatchDtype::Uint32 => u32::NAME,
            BatchDtype::Int32 => i32::NAME,
            BatchDtype::Int64 => i64::NAME,
        }
    }
}

/// How to run the benchmark.
#[derive(Clone, Debug)]
pub struct LoaderBenchOptions {
    /// Steps to load from step 0.
    pub steps: u64,
    /// Loader worker threads.
    pub threads: usize,
    /// Batches built ahead of the consumer.
    pub prefetch: usize,
    pub dtype: BatchDtype,
}

/// Every figure of one benchmark run; serialized as `prior loader bench
/// --json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct LoaderBench {
    pub mix: PathBuf,
    pub steps: u64,
    pub threads: usize,
    pub dtype: &'static str,
    pub global_batch: u32,
    pub seq_len: u32,
    pub tokens_delivered: u64,
    pub seconds: f64,
    pub tokens_per_s: f64,
    /// One thread's raw zstd rate on the same shards (median of three runs).
    pub raw_zstd_tokens_per_s: f64,
    pub raw_zstd_tokens_measured: u64,
    /// Loader rate / raw zstd rate.
    pub ratio: f64,
    /// Bytes decompressed / bytes delivered.
    pub amplification: f64,
    pub frames_decoded: u64,
    pub distinct_frames_per_batch: f64,
    /// The consumer's wait for a batch, in microseconds.
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// A worker's time to build one batch, in microseconds.
    pub produce_p50_us: u64,
    pub produce_p99_us: u64,
    /// Peak resident memory of the process (0 where there is no /proc).
    pub rss_bytes: u64,
    /// Heap and mapped-file RSS while the loader was still alive.
    pub rss_anon_bytes: u64,
    pub rss_file_bytes: u64,
    /// Opening the mix (manifest, shard index) before the first batch.
    pub open_seconds: f64,
    pub shards: usize,
    /// The far step a saved state is resumed at.
    pub resume_step: u64,
    /// Building a loader from that state.
    pub resume_ms: f64,
    /// Until its first batch arrived.
    pub resume_first_batch_ms: f64,
    /// The slowest batch build of the resumed loader (its only batch).
    pub one_batch_ms: f64,
    /// Computing the allocation state at the far step without a saved state.
    pub cold_start_ms: f64,
}

/// What one timed pass of the loader measured.
struct TimedRun {
    secs: f64,
    batches: u64,
    frames_per_batch: u64,
    delivered: u64,
    wait: hdrhistogram::Histogram<u64>,
    produce: hdrhistogram::Histogram<u64>,
    served: LoaderState,
    rss_anon: u64,
    rss_file: u64,
}

/// Runs the loader from step 0 to `opts.end_step` with batches in `T`.
fn timed_run<T: Token>(
    sampler: &Arc<Sampler>,
    opts: &LoaderOptions,
    on_batch: &mut dyn FnMut(),
) -> Result<TimedRun> {
    let t0 = Instant::now();
    let mut loader = Loader::<T>::typed(sampler.clone(), Start::Step(0), opts)?;
    let mut frames_per_batch = 0u64;
    let mut batches = 0u64;
    while let Some(b) = loader.next_batch()? {
        let distinct: HashSet<(u32, u32)> = b
            .sequences
            .iter()
            .flat_map(|s| s.pieces.iter().map(|p| (p.shard, p.frame)))
            .collect();
        frames_per_batch += distinct.len() as u64;
        batches += 1;
        on_batch();
    }
    Ok(TimedRun {
        secs: t0.elapsed().as_secs_f64(),
        batches,
        frames_per_batch,
        delivered: loader.delivered_tokens(),
        wait: loader.wait_histogram().clone(),
        produce: loader.produce_histogram(),
        served: loader.state().clone(),
        rss_anon: proc::status_bytes("RssAnon:"),
        rss_file: proc::status_bytes("RssFile:"),
    })
}

/// Benchmarks the loader on the mix at `mix`; `on_batch` is called after
/// every batch of the timed pass (a progress bar).
pub fn bench_loader(
    mix: &Path,
    opts: &LoaderBenchOptions,
    on_batch: &mut dyn FnMut(),
) -> Result<LoaderBench> {
    let t_open = Instant::now();
    let (spec, corpus) = MixSpec::load(mix)?;
    let sampler = Arc::new(Sampler::new(spec, corpus, None)?);
    let open_s = t_open.elapsed().as_secs_f64();
    let width = sampler.shards().corpus().manifest().token_width.bytes() as u64;
    let seq_tokens = sampler.spec().sequence_tokens() as u64;
    let budget = opts.steps * sampler.spec().global_batch as u64 * seq_tokens;

    let loader_opts = LoaderOptions {
        threads: opts.threads,
        prefetch: opts.prefetch,
        rank: 0,
        world: 1,
        end_step: Some(opts.steps),
    };
    let run = match opts.dtype {
        BatchDtype::Uint16 => timed_run::<u16>(&sampler, &loader_opts, on_batch)?,
        BatchDtype::Uint32 => timed_run::<u32>(&sampler, &loader_opts, on_batch)?,
        BatchDtype::Int32 => timed_run::<i32>(&sampler, &loader_opts, on_batch)?,
        BatchDtype::Int64 => timed_run::<i64>(&sampler, &loader_opts, on_batch)?,
    };
    let peak_rss = proc::peak_rss_bytes();

    // Measured after the loader so that its reads do not count in the
    // loader's RSS. The median of three runs: this rate is the bar, so one
    // lucky or unlucky run on a shared machine should not set it.
    let mut raw_runs = Vec::new();
    for _ in 0..3 {
        raw_runs.push(prior_loader::raw_rate::raw_zstd_rate(
            &sampler,
            budget.clamp(1 << 24, 1 << 28),
        )?);
    }
    raw_runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (raw_rate, raw_tokens) = raw_runs[1];

    // Resume far into a run: a state at step 10^7 (computed untimed), then
    // time building a loader from it and receiving its first batch.
    let far = 10_000_000u64;
    let t_cold = Instant::now();
    let alloc = sampler.schedule().state_at(far);
    let cold_ms = t_cold.elapsed().as_secs_f64() * 1e3;
    let far_state = LoaderState {
        alloc,
        batches_served: far,
        ..run.served
    };
    let far_opts = LoaderOptions {
        end_step: Some(far + 1),
        ..loader_opts
    };
    let t_resume = Instant::now();
    let mut resumed = Loader::new(sampler.clone(), Start::Resume(far_state), &far_opts)?;
    let resume_ms = t_resume.elapsed().as_secs_f64() * 1e3;
    resumed.next_batch()?;
    let resume_first_batch_ms = t_resume.elapsed().as_secs_f64() * 1e3;
    let one_batch_ms = resumed.produce_histogram().max() as f64 / 1e3;
    drop(resumed);

    let tokens_per_s = run.delivered as f64 / run.secs;
    Ok(LoaderBench {
        mix: mix.to_path_buf(),
        steps: run.batches,
        threads: opts.threads,
        dtype: opts.dtype.name(),
        global_batch: sampler.spec().global_batch,
        seq_len: sampler.spec().seq_len,
        tokens_delivered: run.delivered,
        seconds: run.secs,
        tokens_per_s,
        raw_zstd_tokens_per_s: raw_rate,
        raw_zstd_tokens_measured: raw_tokens,
        ratio: tokens_per_s / raw_rate,
        amplification: sampler.decompressed_bytes() as f64 / (run.delivered * width) as f64,
        frames_decoded: sampler.frames_decoded(),
        distinct_frames_per_batch: run.frames_per_batch as f64 / run.batches.max(1) as f64,
        p50_us: run.wait.value_at_quantile(0.5),
        p99_us: run.wait.value_at_quantile(0.99),
        max_us: run.wait.max(),
        produce_p50_us: run.produce.value_at_quantile(0.5),
        produce_p99_us: run.produce.value_at_quantile(0.99),
        rss_bytes: peak_rss,
        rss_anon_bytes: run.rss_anon,
        rss_file_bytes: run.rss_file,
        open_seconds: open_s,
        shards: sampler.shards().len(),
        resume_step: far,
        resume_ms,
        resume_first_batch_ms,
        one_batch_ms,
        cold_start_ms: cold_ms,
    })
}
