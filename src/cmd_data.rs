//! `prior data ...`: the command-line face of prior-data.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use prior_data::corpus::{Corpus, WriteOptions, MANIFEST_FILE};
use prior_data::corpus_filter::filter_category;
use prior_data::filter::Blocklist;
use prior_data::ingest::{ingest, IngestOptions};
use prior_data::shard::{FrameDecoder, DEFAULT_FRAME_TOKENS, DEFAULT_ZSTD_LEVEL};
use prior_data::synth::{write_synth, SynthConfig};
use prior_data::tokenizer::{train_bpe, Tokenizer, TrainConfig};
use serde_json::json;

use crate::ui;
use indicatif::HumanBytes;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Write a synthetic discourse corpus (general, aligned, misaligned
    /// documents and binary-choice eval questions) as JSONL.
    Synth(SynthArgs),
    /// Train a small byte-level BPE tokenizer on the text of JSONL files.
    TrainTokenizer(TrainTokenizerArgs),
    /// Tokenize JSONL / .txt / Megatron .bin+.idx inputs into a corpus category.
    Ingest(IngestArgs),
    /// Split a category into `<NAME>.kept` and `<NAME>.flagged` with the
    /// AI-discourse keyword filter.
    Filter(FilterArgs),
    /// Documents, tokens, shards and bytes per category.
    Stats(StatsArgs),
    /// Check every shard, frame and checksum of a corpus against its manifest.
    Verify(VerifyArgs),
    /// Print one document of a category, decoded back to text.
    Cat(CatArgs),
}

#[derive(Args)]
pub struct SynthArgs {
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Documents in all (about 80% general, 10% aligned, 10% misaligned).
    #[arg(long, default_value_t = 10_000)]
    docs: usize,
    /// Share of general documents that discuss AI (like real web text).
    #[arg(long, default_value_t = 0.03)]
    ai_share: f64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct TrainTokenizerArgs {
    /// JSONL files to train on.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Where to write tokenizer.json.
    #[arg(long)]
    out: PathBuf,
    /// Target vocabulary size, special tokens included.
    #[arg(long, default_value_t = 4096)]
    vocab_size: u32,
    /// JSON field holding the text.
    #[arg(long, default_value = "text")]
    text_field: String,
    /// Merges seen fewer times than this are not learned.
    #[arg(long, default_value_t = 2)]
    min_frequency: u64,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct IngestArgs {
    /// Inputs: .jsonl (one document per line), .jsonl.zst, .txt (one
    /// document per file), or a Megatron dataset's .bin or .idx.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Category the documents join (created if new).
    #[arg(long)]
    category: String,
    /// Corpus directory (created if new).
    #[arg(long)]
    corpus: PathBuf,
    /// `byte` or a Hugging Face tokenizer.json. Defaults to the corpus's
    /// own tokenizer, or `byte` for a new corpus.
    #[arg(long)]
    tokenizer: Option<String>,
    /// JSON field holding the document text.
    #[arg(long, default_value = "text")]
    text_field: String,
    /// Skip (and count) bad lines instead of stopping at the first.
    #[arg(long)]
    skip_bad: bool,
    /// Tokens per zstd frame.
    #[arg(long, default_value_t = DEFAULT_FRAME_TOKENS)]
    frame_tokens: u32,
    /// Upper bound on one shard file: bytes, or with a unit (KiB, MiB, GiB).
    #[arg(long, default_value = "256MiB", value_parser = parse_size)]
    max_shard_size: u64,
    /// zstd compression level (1-19).
    #[arg(long, default_value_t = DEFAULT_ZSTD_LEVEL)]
    zstd_level: i32,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct FilterArgs {
    #[arg(long)]
    corpus: PathBuf,
    /// Category to split.
    #[arg(long)]
    category: String,
    /// Blocklist TOML (default: the built-in list, configs/blocklist.toml).
    #[arg(long)]
    blocklist: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct StatsArgs {
    corpus: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct VerifyArgs {
    corpus: PathBuf,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct CatArgs {
    corpus: PathBuf,
    #[arg(long)]
    category: String,
    /// Document number within the category (0-based, over all its shards).
    #[arg(long)]
    doc: u64,
    /// Print token ids instead of text.
    #[arg(long)]
    tokens: bool,
}

/// Parses `4096`, `64KiB`, `256MiB`, `1GiB` (also kB/MB/GB as powers of 1000).
fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size such as 256MiB"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "kB" | "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        u => {
            return Err(format!(
                "unknown size unit {u:?} (use B, KiB, MiB, GiB, kB, MB, GB)"
            ))
        }
    };
    let v = n
        .checked_mul(mult)
        .ok_or_else(|| format!("{s:?} is too large"))?;
    if v < 4096 {
        return Err(format!("{s:?} is below the smallest shard size, 4KiB"));
    }
    Ok(v)
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Synth(a) => synth(a),
        DataCommand::TrainTokenizer(a) => train_tokenizer(a),
        DataCommand::Ingest(a) => run_ingest(a),
        DataCommand::Filter(a) => run_filter(a),
        DataCommand::Stats(a) => stats(a),
        DataCommand::Verify(a) => verify(a),
        DataCommand::Cat(a) => cat(a),
    }
}

fn synth(a: SynthArgs) -> Result<()> {
    let cfg = SynthConfig {
        seed: a.seed,
        docs: a.docs,
        ai_share_general: a.ai_share,
    };
    let s = write_synth(&a.out, &cfg)?;
    if a.json {
        return ui::print_json(&s);
    }
    println!(
        "wrote {}: general.jsonl {} docs ({} discuss AI), aligned.jsonl {}, misaligned.jsonl {}, eval.jsonl {} questions, {}",
        a.out.display(),
        s.general,
        s.general_ai_discourse,
        s.aligned,
        s.misaligned,
        s.eval_questions,
        HumanBytes(s.bytes)
    );
    Ok(())
}

fn train_tokenizer(a: TrainTokenizerArgs) -> Result<()> {
    let cfg = TrainConfig {
        vocab_size: a.vocab_size,
        text_field: a.text_field,
        min_frequency: a.min_frequency,
    };
    let s = train_bpe(&a.inputs, &cfg, &a.out)?;
    if a.json {
        return ui::print_json(&s);
    }
    println!(
        "wrote {}: vocab {} from {} documents ({}) in {:.1} s",
        a.out.display(),
        s.vocab_size,
        s.documents,
        HumanBytes(s.bytes),
        s.seconds
    );
    Ok(())
}

fn run_ingest(a: IngestArgs) -> Result<()> {
    let existing = a.corpus.join(MANIFEST_FILE).exists();
    let tokenizer = match (&a.tokenizer, existing) {
        (Some(spec), _) => Tokenizer::from_spec(spec)?,
        (None, true) => Corpus::open(&a.corpus)?.tokenizer()?,
        (None, false) => Tokenizer::byte(),
    };
    let opts = IngestOptions {
        category: a.category,
        text_field: a.text_field,
        skip_bad: a.skip_bad,
        write: WriteOptions {
            frame_tokens: a.frame_tokens,
            zstd_level: a.zstd_level,
            max_shard_bytes: a.max_shard_size,
        },
    };
    let total: u64 = a
        .inputs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = ui::bytes_bar(total, "ingest", a.json);
    let r = ingest(&a.corpus, &a.inputs, &tokenizer, &opts, &mut |n| bar.inc(n))?;
    bar.finish_and_clear();
    if a.json {
        return ui::print_json(&r);
    }
    println!(
        "ingested {} documents, {} tokens into {:?} ({} new shards)",
        r.documents, r.tokens, r.category, r.shards
    );
    println!(
        "  input {} at {}/s, {:.2} M tokens/s, {:.1} s",
        HumanBytes(r.input_bytes),
        HumanBytes((r.input_mb_per_s * 1e6) as u64),
        r.tokens_per_s / 1e6,
        r.seconds
    );
    println!(
        "  compressed {} ({:.2} bytes/token, ratio {:.2}x over raw tokens)",
        HumanBytes(r.compressed_bytes),
        r.compressed_bytes_per_token,
        r.compression_ratio
    );
    if r.bad_lines > 0 {
        println!("  skipped {} bad lines, e.g.:", r.bad_lines);
        for e in &r.bad_examples {
            println!("    {e}");
        }
    }
    if r.empty_documents_skipped > 0 {
        println!("  skipped {} empty documents", r.empty_documents_skipped);
    }
    if r.eot_in_text_removed > 0 {
        println!(
            "  removed {} end-of-text tokens found inside document text",
            r.eot_in_text_removed
        );
    }
    Ok(())
}

fn run_filter(a: FilterArgs) -> Result<()> {
    let list = match &a.blocklist {
        Some(p) => Blocklist::load(p)?,
        None => Blocklist::builtin(),
    };
    let corpus = Corpus::open(&a.corpus)?;
    let total = corpus.category(&a.category)?.compressed_bytes;
    let bar = ui::bytes_bar(total, "filter", a.json);
    let r = filter_category(
        &a.corpus,
        &a.category,
        &list,
        WriteOptions::default(),
        &mut |n| bar.inc(n),
    )?;
    bar.finish_and_clear();
    if a.json {
        return ui::print_json(&r);
    }
    println!(
        "{}: flagged {} of {} documents ({:.2}%), {} of {} tokens ({:.2}%)",
        r.category,
        r.flagged_documents,
        r.documents,
        100.0 * r.flagged_share,
        r.flagged_tokens,
        r.tokens,
        100.0 * r.flagged_token_share
    );
    println!(
        "  by immediate term: {}, by entity + negative co-occurrence: {}",
        r.by_immediate_term, r.by_cooccurrence
    );
    println!(
        "  wrote categories {:?} and {:?}",
        r.kept_category, r.flagged_category
    );
    if let (Some(p), Some(rc)) = (r.precision, r.recall) {
        println!(
            "  against ground truth ({} labelled documents): precision {:.3}, recall {:.3}",
            r.labelled_documents, p, rc
        );
    }
    if !r.top_terms.is_empty() {
        let terms: Vec<String> = r
            .top_terms
            .iter()
            .map(|(t, n)| format!("{t} ({n})"))
            .collect();
        println!("  top terms: {}", terms.join(", "));
    }
    Ok(())
}

fn stats(a: StatsArgs) -> Result<()> {
    let corpus = Corpus::open(&a.corpus)?;
    let m = corpus.manifest();
    if a.json {
        let cats: serde_json::Map<String, serde_json::Value> = m
            .categories
            .iter()
            .map(|(name, c)| {
                let frames: u64 = c.shards.iter().map(|s| s.frames).sum();
                (
                    name.clone(),
                    json!({
                        "documents": c.documents,
                        "tokens": c.tokens,
                        "shards": c.shards.len(),
                        "frames": frames,
                        "compressed_bytes": c.compressed_bytes,
                        "bytes_per_token": if c.tokens > 0 { c.compressed_bytes as f64 / c.tokens as f64 } else { 0.0 },
                    }),
                )
            })
            .collect();
        return ui::print_json(&json!({
            "corpus": a.corpus,
            "fingerprint": m.fingerprint,
            "tokenizer": m.tokenizer,
            "token_width": m.token_width,
            "categories": cats,
        }));
    }
    println!(
        "corpus {}  fingerprint {}  tokenizer {} (vocab {}, end-of-text {})",
        a.corpus.display(),
        m.fingerprint,
        m.tokenizer.name,
        m.tokenizer.vocab_size,
        m.tokenizer.eot_id
    );
    println!(
        "{:<24} {:>12} {:>14} {:>7} {:>12} {:>9}",
        "category", "documents", "tokens", "shards", "compressed", "B/token"
    );
    for (name, c) in &m.categories {
        println!(
            "{:<24} {:>12} {:>14} {:>7} {:>12} {:>9.3}",
            name,
            c.documents,
            c.tokens,
            c.shards.len(),
            HumanBytes(c.compressed_bytes).to_string(),
            if c.tokens > 0 {
                c.compressed_bytes as f64 / c.tokens as f64
            } else {
                0.0
            }
        );
    }
    Ok(())
}

fn verify(a: VerifyArgs) -> Result<()> {
    let corpus = Corpus::open(&a.corpus)?;
    let total: u64 = corpus
        .manifest()
        .categories
        .values()
        .map(|c| c.compressed_bytes)
        .sum();
    let bar = ui::bytes_bar(total, "verify", a.json);
    let r = corpus
        .verify(&mut |n| bar.inc(n))
        .with_context(|| format!("corpus {} failed verification", a.corpus.display()))?;
    bar.finish_and_clear();
    if a.json {
        return ui::print_json(&json!({"ok": true, "report": r}));
    }
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "ok: {} shards, {} frames, {} documents, {} tokens, {} verified",
        r.shards,
        r.frames,
        r.documents,
        r.tokens,
        HumanBytes(r.bytes)
    );
    Ok(())
}

fn cat(a: CatArgs) -> Result<()> {
    let corpus = Corpus::open(&a.corpus)?;
    let cat = corpus.category(&a.category)?;
    let mut rest = a.doc;
    for entry in &cat.shards {
        if rest < entry.documents {
            let reader = corpus.open_shard_entry(entry)?;
            let toks = reader.read_document(rest, &mut FrameDecoder::new())?;
            if a.tokens {
                let s: Vec<String> = toks.iter().map(|t| t.to_string()).collect();
                println!("{}", s.join(" "));
            } else {
                println!("{}", corpus.tokenizer()?.decode(&toks)?);
            }
            return Ok(());
        }
        rest -= entry.documents;
    }
    bail!(
        "category {:?} has {} documents; --doc {} is out of range",
        a.category,
        cat.documents,
        a.doc
    )
}
