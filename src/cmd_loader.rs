//! `prior loader ...`: hash, replay, bench and stats of a mix.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use prior_loader::schedule::AllocState;
use prior_loader::{Loader, LoaderOptions, MixSpec, Sampler, Start};
use serde_json::json;

use crate::ui;

#[derive(Subcommand)]
pub enum LoaderCommand {
    /// Hash the batches of steps [FROM, TO): one line per step with
    /// --per-step, else the running hash over the range.
    Hash(HashArgs),
    /// Show one step's batch (rank slice) without iterating to it.
    Replay(ReplayArgs),
    /// Measure loader throughput against raw single-thread zstd on the same shards.
    Bench(BenchArgs),
    /// Sequences and tokens per phase and category, and repetition factors.
    Stats(StatsArgs),
}

#[derive(Args)]
pub struct RankArgs {
    /// This rank's index.
    #[arg(long, default_value_t = 0)]
    rank: u32,
    /// Data-parallel world size; ranks take disjoint slices of each global batch.
    #[arg(long, default_value_t = 1)]
    world: u32,
}

#[derive(Args)]
pub struct HashArgs {
    /// Mix spec (TOML).
    #[arg(long)]
    mix: PathBuf,
    #[arg(long, default_value_t = 0)]
    from: u64,
    #[arg(long)]
    to: u64,
    /// Loader worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    #[command(flatten)]
    rank: RankArgs,
    /// Print `<step> <hash>` for every step.
    #[arg(long)]
    per_step: bool,
}

#[derive(Args)]
pub struct ReplayArgs {
    #[arg(long)]
    mix: PathBuf,
    #[arg(long)]
    step: u64,
    #[command(flatten)]
    rank: RankArgs,
    #[arg(long)]
    json: bool,
    /// Include token ids (JSON) or print them instead of text.
    #[arg(long)]
    tokens: bool,
}

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long)]
    mix: PathBuf,
    #[arg(long, default_value_t = 200)]
    steps: u64,
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Batches built ahead of the consumer.
    #[arg(long, default_value_t = 8)]
    prefetch: usize,
    /// The integer type batches are filled in (what a trainer asks for).
    #[arg(long, value_enum, default_value_t = BenchDtype::Uint32)]
    dtype: BenchDtype,
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum BenchDtype {
    Uint16,
    Uint32,
    Int32,
    Int64,
}

#[derive(Args)]
pub struct StatsArgs {
    #[arg(long)]
    mix: PathBuf,
    /// Steps to account for (default: the mix's total, if bounded).
    #[arg(long)]
    steps: Option<u64>,
    #[arg(long)]
    json: bool,
}

pub fn run(cmd: LoaderCommand) -> Result<()> {
    match cmd {
        LoaderCommand::Hash(a) => hash(a),
        LoaderCommand::Replay(a) => replay(a),
        LoaderCommand::Bench(a) => bench(a),
        LoaderCommand::Stats(a) => stats(a),
    }
}

fn open(mix: &Path) -> Result<Arc<Sampler>> {
    let (spec, corpus) = MixSpec::load(mix)?;
    Ok(Arc::new(Sampler::new(spec, corpus, None)?))
}

fn hash(a: HashArgs) -> Result<()> {
    if a.to < a.from {
        bail!("--to {} is before --from {}", a.to, a.from);
    }
    let sampler = open(&a.mix)?;
    let opts = LoaderOptions {
        threads: a.threads,
        prefetch: 2 * a.threads.max(1),
        rank: a.rank.rank,
        world: a.rank.world,
        end_step: Some(a.to),
    };
    let mut loader = Loader::new(sampler, Start::Step(a.from), &opts)?;
    while let Some(b) = loader.next_batch()? {
        if a.per_step {
            println!("{} {:016x}", b.step, b.hash);
        }
    }
    if !a.per_step {
        println!("{:016x}", loader.running_hash());
    }
    Ok(())
}

fn replay(a: ReplayArgs) -> Result<()> {
    let sampler = open(&a.mix)?;
    let b = sampler.batch_at(a.step, a.rank.rank, a.rank.world)?;
    let spec = sampler.spec();
    let shards = sampler.shards();
    let mut seqs = Vec::new();
    for (i, m) in b.sequences.iter().enumerate() {
        let first = m.pieces[0];
        let docs = sampler.documents(m)?;
        let pieces: Vec<_> = m
            .pieces
            .iter()
            .map(|p| json!({"shard": shards.entry(p.shard).file, "frame": p.frame, "start": p.start, "len": p.len}))
            .collect();
        let mut v = json!({
            "index": m.index,
            "category": spec.categories[m.category as usize],
            "shard": shards.entry(first.shard).file,
            "frame": first.frame,
            "docs": docs,
            "epoch": m.epoch,
            "seq": m.seq,
            "token_hash": format!("{:016x}", m.token_hash),
            "document_starts": b.document_starts(i),
            "pieces": pieces,
        });
        if a.tokens {
            v["tokens"] = json!(b.sequence(i));
        }
        seqs.push(v);
    }
    if a.json {
        return ui::print_json(&json!({
            "step": b.step,
            "phase": spec.phases[b.phase].name,
            "hash": format!("{:016x}", b.hash),
            "rank": a.rank.rank,
            "world": a.rank.world,
            "sequences": seqs,
        }));
    }
    let tok = shards.corpus().tokenizer().ok();
    println!(
        "step {} ({}), hash {:016x}, {} sequences of {} tokens",
        b.step,
        spec.phases[b.phase].name,
        b.hash,
        b.len(),
        b.seq_tokens
    );
    for (i, v) in seqs.iter().enumerate() {
        println!(
            "\n#{} {} shard {} frame {} docs {} epoch {}",
            v["index"],
            v["category"].as_str().unwrap_or(""),
            v["shard"].as_str().unwrap_or(""),
            v["frame"],
            v["docs"],
            v["epoch"]
        );
        match (&tok, a.tokens) {
            (Some(t), false) => println!("{}", t.decode(b.sequence(i))?),
            _ => println!("{:?}", b.sequence(i)),
        }
    }
    Ok(())
}

/// A field of /proc/self/status in bytes (0 where there is no /proc).
fn proc_status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn peak_rss_bytes() -> u64 {
    proc_status_bytes("VmHWM:")
}

fn dtype_name(d: BenchDtype) -> &'static str {
    use prior_loader::Token;
    match d {
        BenchDtype::Uint16 => u16::NAME,
        BenchDtype::Uint32 => u32::NAME,
        BenchDtype::Int32 => i32::NAME,
        BenchDtype::Int64 => i64::NAME,
    }
}

/// What one timed pass of the loader measured.
struct TimedRun {
    secs: f64,
    batches: u64,
    frames_per_batch: u64,
    delivered: u64,
    wait: hdrhistogram::Histogram<u64>,
    produce: hdrhistogram::Histogram<u64>,
    served: prior_loader::LoaderState,
    /// Heap and mapped-file RSS while the loader was still alive.
    rss_anon: u64,
    rss_file: u64,
}

/// Runs the loader from step 0 to `opts.end_step` with batches in `T`.
fn timed_run<T: prior_loader::Token>(
    sampler: &Arc<Sampler>,
    opts: &LoaderOptions,
    bar: &indicatif::ProgressBar,
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
        bar.inc(1);
    }
    Ok(TimedRun {
        secs: t0.elapsed().as_secs_f64(),
        batches,
        frames_per_batch,
        delivered: loader.delivered_tokens(),
        wait: loader.wait_histogram().clone(),
        produce: loader.produce_histogram(),
        served: loader.state().clone(),
        rss_anon: proc_status_bytes("RssAnon:"),
        rss_file: proc_status_bytes("RssFile:"),
    })
}

fn bench(a: BenchArgs) -> Result<()> {
    let t_open = Instant::now();
    let sampler = open(&a.mix)?;
    let open_s = t_open.elapsed().as_secs_f64();
    let width = sampler.shards().corpus().manifest().token_width.bytes() as u64;
    let seq_tokens = sampler.spec().sequence_tokens() as u64;
    let budget = a.steps * sampler.spec().global_batch as u64 * seq_tokens;

    let opts = LoaderOptions {
        threads: a.threads,
        prefetch: a.prefetch,
        rank: 0,
        world: 1,
        end_step: Some(a.steps),
    };
    let bar = ui::count_bar(a.steps, "loader", a.json);
    let run = match a.dtype {
        BenchDtype::Uint16 => timed_run::<u16>(&sampler, &opts, &bar)?,
        BenchDtype::Uint32 => timed_run::<u32>(&sampler, &opts, &bar)?,
        BenchDtype::Int32 => timed_run::<i32>(&sampler, &opts, &bar)?,
        BenchDtype::Int64 => timed_run::<i64>(&sampler, &opts, &bar)?,
    };
    bar.finish_and_clear();
    let TimedRun {
        secs,
        batches,
        frames_per_batch,
        delivered,
        wait,
        produce,
        served,
        rss_anon,
        rss_file,
    } = run;
    let peak_rss = peak_rss_bytes();

    // Measured after the loader so that its reads do not count in the
    // loader's RSS. The median of three runs: this rate is the bar, so one lucky or
    // unlucky run on a shared machine should not set it.
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
    let far_state = prior_loader::LoaderState {
        alloc,
        batches_served: far,
        ..served
    };
    let far_opts = LoaderOptions {
        end_step: Some(far + 1),
        ..opts.clone()
    };
    let t_resume = Instant::now();
    let mut resumed = Loader::new(sampler.clone(), Start::Resume(far_state), &far_opts)?;
    let resume_ms = t_resume.elapsed().as_secs_f64() * 1e3;
    resumed.next_batch()?;
    let resume_first_batch_ms = t_resume.elapsed().as_secs_f64() * 1e3;
    let one_batch_ms = resumed.produce_histogram().max() as f64 / 1e3;
    drop(resumed);
    let tokens_per_s = delivered as f64 / secs;
    let decompressed = sampler.cache().decompressed_bytes();
    let amplification = decompressed as f64 / (delivered * width) as f64;
    let result = json!({
        "mix": a.mix,
        "steps": batches,
        "threads": a.threads,
        "dtype": dtype_name(a.dtype),
        "global_batch": sampler.spec().global_batch,
        "seq_len": sampler.spec().seq_len,
        "tokens_delivered": delivered,
        "seconds": secs,
        "tokens_per_s": tokens_per_s,
        "raw_zstd_tokens_per_s": raw_rate,
        "raw_zstd_tokens_measured": raw_tokens,
        "ratio": tokens_per_s / raw_rate,
        "amplification": amplification,
        "frames_decoded": sampler.cache().frames_decoded(),
        "distinct_frames_per_batch": frames_per_batch as f64 / batches.max(1) as f64,
        "p50_us": wait.value_at_quantile(0.5),
        "p99_us": wait.value_at_quantile(0.99),
        "max_us": wait.max(),
        "produce_p50_us": produce.value_at_quantile(0.5),
        "produce_p99_us": produce.value_at_quantile(0.99),
        "rss_bytes": peak_rss,
        "rss_anon_bytes": rss_anon,
        "rss_file_bytes": rss_file,
        "open_seconds": open_s,
        "shards": sampler.shards().len(),
        "resume_step": far,
        "resume_ms": resume_ms,
        "resume_first_batch_ms": resume_first_batch_ms,
        "one_batch_ms": one_batch_ms,
        "cold_start_ms": cold_ms,
    });
    if a.json {
        return ui::print_json(&result);
    }
    println!(
        "loader: {:.1} M tokens/s over {} threads, batches in {} ({} steps, {} tokens, {:.2} s)",
        tokens_per_s / 1e6,
        a.threads,
        dtype_name(a.dtype),
        batches,
        delivered,
        secs
    );
    println!(
        "raw zstd, 1 thread, same shards (median of 3): {:.1} M tokens/s  ->  ratio {:.2}",
        raw_rate / 1e6,
        tokens_per_s / raw_rate
    );
    println!(
        "amplification {:.3} (bytes decompressed / bytes delivered), {:.1} distinct frames per batch",
        amplification,
        frames_per_batch as f64 / batches.max(1) as f64
    );
    println!(
        "consumer wait p50 {} us, p99 {} us, max {} us; batch build p50 {} us, p99 {} us",
        wait.value_at_quantile(0.5),
        wait.value_at_quantile(0.99),
        wait.max(),
        produce.value_at_quantile(0.5),
        produce.value_at_quantile(0.99)
    );
    println!(
        "peak RSS {} (at the end: {} heap, {} mapped shard pages); mix open {:.4} s over {} shards",
        ui::human_bytes(peak_rss),
        ui::human_bytes(rss_anon),
        ui::human_bytes(rss_file),
        open_s,
        sampler.shards().len()
    );
    println!(
        "resume at step {far}: loader ready in {resume_ms:.3} ms, first batch after {resume_first_batch_ms:.2} ms (one batch takes {one_batch_ms:.2} ms); cold start there (no saved state): {cold_ms:.0} ms"
    );
    Ok(())
}

fn stats(a: StatsArgs) -> Result<()> {
    let sampler = open(&a.mix)?;
    let spec = sampler.spec();
    let steps = match (a.steps, spec.total_steps()) {
        (Some(s), _) => s,
        (None, Some(t)) => t,
        (None, None) => bail!("the mix's last phase is open-ended: give --steps"),
    };
    let n = spec.categories.len();
    let sched = sampler.schedule();
    let seq_tokens = spec.sequence_tokens() as u64;
    let mut per_phase = vec![vec![0u64; n]; spec.phases.len()];
    let mut st = AllocState {
        step: 0,
        consumed: vec![0; n],
        deficit: vec![0; n],
    };
    while st.step < steps {
        let p = spec.phase_of(st.step);
        let counts = sched.advance(&mut st);
        for c in 0..n {
            per_phase[p][c] += counts[c] as u64;
        }
    }
    let mut phases_json = Vec::new();
    for (p, phase) in spec.phases.iter().enumerate() {
        let cats: serde_json::Map<String, serde_json::Value> = (0..n)
            .map(|c| {
                (
                    spec.categories[c].clone(),
                    json!({"share": phase.share(c), "sequences": per_phase[p][c], "tokens": per_phase[p][c] * seq_tokens}),
                )
            })
            .collect();
        phases_json.push(json!({"name": phase.name, "first_step": phase.first_step, "steps": phase.steps, "categories": cats}));
    }
    let cats: serde_json::Map<String, serde_json::Value> = (0..n)
        .map(|c| {
            let stream = &sampler.streams()[c];
            let seqs = st.consumed[c];
            (
                spec.categories[c].clone(),
                json!({
                    "sequences": seqs,
                    "tokens": seqs * seq_tokens,
                    "category_tokens": stream.epoch_tokens(),
                    "repetition": seqs as f64 / stream.sequences_per_epoch() as f64,
                }),
            )
        })
        .collect();
    let out = json!({"steps": steps, "global_batch": spec.global_batch, "seq_len": spec.seq_len, "phases": phases_json, "categories": cats});
    if a.json {
        return ui::print_json(&out);
    }
    println!(
        "{} steps x {} sequences x {} tokens (weights normalised to sum to 1 per phase)",
        steps, spec.global_batch, seq_tokens
    );
    for pj in &phases_json {
        println!(
            "phase {} (from step {}, {} steps)",
            pj["name"].as_str().unwrap_or(""),
            pj["first_step"],
            if pj["steps"].is_null() {
                "open-ended".to_string()
            } else {
                pj["steps"].to_string()
            }
        );
        for (name, v) in pj["categories"].as_object().into_iter().flatten() {
            println!(
                "  {:<22} share {:>8.4}  {:>12} sequences  {:>14} tokens",
                name,
                v["share"].as_f64().unwrap_or(0.0),
                v["sequences"],
                v["tokens"]
            );
        }
    }
    println!("over the run:");
    for (name, v) in cats.iter() {
        println!(
            "  {:<22} {:>14} tokens served of {:>12} in the corpus: repetition x{:.3}",
            name,
            v["tokens"],
            v["category_tokens"],
            v["repetition"].as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}
