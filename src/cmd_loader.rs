//! `prior loader ...`: hash, replay, bench and stats of a mix.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use prior_loader::{Loader, LoaderOptions, MixSpec, Sampler, Start};
use serde_json::json;

use crate::ui;
use indicatif::HumanBytes;

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

fn bench(a: BenchArgs) -> Result<()> {
    use prior_perf::loader_bench::{bench_loader, BatchDtype, LoaderBenchOptions};
    let opts = LoaderBenchOptions {
        steps: a.steps,
        threads: a.threads,
        prefetch: a.prefetch,
        dtype: match a.dtype {
            BenchDtype::Uint16 => BatchDtype::Uint16,
            BenchDtype::Uint32 => BatchDtype::Uint32,
            BenchDtype::Int32 => BatchDtype::Int32,
            BenchDtype::Int64 => BatchDtype::Int64,
        },
    };
    let bar = ui::count_bar(a.steps, "loader", a.json);
    // Cleared after the timed pass, before the raw-zstd and resume runs.
    let r = bench_loader(&a.mix, &opts, &mut || {
        bar.inc(1);
        if bar.position() >= a.steps {
            bar.finish_and_clear();
        }
    })?;
    bar.finish_and_clear();
    if a.json {
        return ui::print_json(&r);
    }
    println!(
        "loader: {:.1} M tokens/s over {} threads, batches in {} ({} steps, {} tokens, {:.2} s)",
        r.tokens_per_s / 1e6,
        r.threads,
        r.dtype,
        r.steps,
        r.tokens_delivered,
        r.seconds
    );
    println!(
        "raw zstd, 1 thread, same shards (median of 3): {:.1} M tokens/s  ->  ratio {:.2}",
        r.raw_zstd_tokens_per_s / 1e6,
        r.ratio
    );
    println!(
        "amplification {:.3} (bytes decompressed / bytes delivered), {:.1} distinct frames per batch",
        r.amplification, r.distinct_frames_per_batch
    );
    println!(
        "consumer wait p50 {} us, p99 {} us, max {} us; batch build p50 {} us, p99 {} us",
        r.p50_us, r.p99_us, r.max_us, r.produce_p50_us, r.produce_p99_us
    );
    println!(
        "peak RSS {} (at the end: {} heap, {} mapped shard pages); mix open {:.4} s over {} shards",
        HumanBytes(r.rss_bytes),
        HumanBytes(r.rss_anon_bytes),
        HumanBytes(r.rss_file_bytes),
        r.open_seconds,
        r.shards
    );
    println!(
        "resume at step {}: loader ready in {:.3} ms, first batch after {:.2} ms (one batch takes {:.2} ms); cold start there (no saved state): {:.0} ms",
        r.resume_step, r.resume_ms, r.resume_first_batch_ms, r.one_batch_ms, r.cold_start_ms
    );
    Ok(())
}

fn stats(a: StatsArgs) -> Result<()> {
    let sampler = open(&a.mix)?;
    let steps = match (a.steps, sampler.spec().total_steps()) {
        (Some(s), _) => s,
        (None, Some(t)) => t,
        (None, None) => bail!("the mix's last phase is open-ended: give --steps"),
    };
    let stats = sampler.stats(steps);
    let seq_tokens = stats.sequence_tokens;
    let phases_json: Vec<serde_json::Value> = stats
        .phases
        .iter()
        .map(|phase| {
            let cats: serde_json::Map<String, serde_json::Value> = phase
                .categories
                .iter()
                .map(|c| {
                    (
                        c.category.clone(),
                        json!({"share": c.share, "sequences": c.sequences, "tokens": c.tokens}),
                    )
                })
                .collect();
            json!({"name": phase.name, "first_step": phase.first_step, "steps": phase.steps, "categories": cats})
        })
        .collect();
    let cats: serde_json::Map<String, serde_json::Value> = stats
        .categories
        .iter()
        .map(|c| {
            (
                c.category.clone(),
                json!({
                    "sequences": c.sequences,
                    "tokens": c.tokens,
                    "category_tokens": c.category_tokens,
                    "repetition": c.repetition,
                }),
            )
        })
        .collect();
    let out = json!({"steps": steps, "global_batch": stats.global_batch, "seq_len": stats.seq_len, "phases": phases_json, "categories": cats});
    if a.json {
        return ui::print_json(&out);
    }
    println!(
        "{} steps x {} sequences x {} tokens (weights normalised to sum to 1 per phase)",
        steps, stats.global_batch, seq_tokens
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
