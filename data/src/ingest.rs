//! Ingest: turn JSONL, plain text and Megatron indexed datasets into
//! shards of a corpus category.
//!
//! Text is tokenized on all cores (rayon) in batches, then written in input
//! order, so the same inputs always give the same shards. A bad input line
//! stops the ingest with its file and line, unless the caller asks to skip
//! bad lines, in which case they are counted and the first few reported.
//! The manifest is rewritten only after every shard is whole, so an ingest
//! that fails or is killed leaves the corpus as it was.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::corpus::{CategoryWriter, CorpusWriter, WriteOptions};
use crate::error::{DataError, IoContext, Result};
use crate::megatron::MegatronDataset;
use crate::tokenizer::Tokenizer;

/// Lines (or files) tokenized together; big enough to keep every core busy.
const BATCH_BYTES: usize = 8 << 20;
/// How many bad lines a report quotes.
const BAD_EXAMPLES: usize = 5;

#[derive(Debug, Clone)]
pub struct IngestOptions {
    pub category: String,
    /// JSON field holding the document text.
    pub text_field: String,
    /// Count and report bad lines instead of stopping at the first.
    pub skip_bad: bool,
    pub write: WriteOptions,
}

/// What one ingest did; printed by the CLI (and as JSON with `--json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub category: String,
    pub inputs: usize,
    pub documents: u64,
    pub tokens: u64,
    pub input_bytes: u64,
    pub compressed_bytes: u64,
    pub shards: usize,
    pub bad_lines: u64,
    pub bad_examples: Vec<String>,
    pub empty_documents_skipped: u64,
    /// End-of-text ids the tokenizer produced inside a document's text
    /// (the literal special token); they are removed so that end-of-text
    /// only ever separates documents.
    pub eot_in_text_removed: u64,
    pub seconds: f64,
    pub input_mb_per_s: f64,
    pub tokens_per_s: f64,
    /// Raw token bytes over compressed bytes.
    pub compression_ratio: f64,
    pub compressed_bytes_per_token: f64,
}

/// The kinds of input ingest understands, chosen by file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputKind {
    Jsonl,
    JsonlZst,
    Text,
    /// A Megatron/GPT-NeoX `.bin` + `.idx` pair, by common prefix.
    Megatron(PathBuf),
}

pub fn input_kind(path: &Path) -> Result<InputKind> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if name.ends_with(".jsonl") || name.ends_with(".json") || name.ends_with(".ndjson") {
        Ok(InputKind::Jsonl)
    } else if name.ends_with(".jsonl.zst") {
        Ok(InputKind::JsonlZst)
    } else if name.ends_with(".txt") {
        Ok(InputKind::Text)
    } else if name.ends_with(".bin") || name.ends_with(".idx") {
        Ok(InputKind::Megatron(path.with_extension("")))
    } else {
        Err(DataError::input(
            path,
            None,
            "unknown input type: expected .jsonl, .jsonl.zst, .txt, or a Megatron .bin/.idx pair",
        ))
    }
}

/// Ingests `inputs` into `opts.category` of the corpus at `corpus_dir`,
/// creating the corpus if needed. `progress` receives input bytes consumed.
pub fn ingest(
    corpus_dir: &Path,
    inputs: &[PathBuf],
    tokenizer: &Tokenizer,
    opts: &IngestOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<IngestReport> {
    if inputs.is_empty() {
        return Err(DataError::Usage("no inputs given".into()));
    }
    // Resolve kinds first so a typo in the last input fails before any work.
    let mut plan: Vec<(PathBuf, InputKind)> = Vec::new();
    for p in inputs {
        let kind = input_kind(p)?;
        if let InputKind::Megatron(prefix) = &kind {
            if plan.iter().any(|(_, k)| k == &kind) {
                continue; // both .bin and .idx named
            }
            MegatronDataset::check_pair(prefix)?;
        } else if !p.is_file() {
            return Err(DataError::input(p, None, "no such file"));
        }
        plan.push((p.clone(), kind));
    }

    let start = Instant::now();
    let mut corpus = CorpusWriter::open_or_create(corpus_dir, tokenizer, opts.write)?;
    let mut sink = corpus.category(&opts.category)?;
    let mut report = IngestReport {
        category: opts.category.clone(),
        inputs: plan.len(),
        ..Default::default()
    };
    for (path, kind) in &plan {
        match kind {
            InputKind::Jsonl => {
                let f = File::open(path).at(path)?;
                ingest_jsonl(
                    path,
                    BufReader::with_capacity(1 << 20, f),
                    tokenizer,
                    opts,
                    &mut sink,
                    &mut report,
                    progress,
                )?;
            }
            InputKind::JsonlZst => {
                let f = File::open(path).at(path)?;
                let counted = CountingReader { inner: f, count: 0 };
                let dec = zstd::Decoder::new(counted).at(path)?;
                ingest_jsonl(
                    path,
                    BufReader::with_capacity(1 << 20, dec),
                    tokenizer,
                    opts,
                    &mut sink,
                    &mut report,
                    progress,
                )?;
            }
            InputKind::Text => ingest_text(path, tokenizer, &mut sink, &mut report, progress)?,
            InputKind::Megatron(prefix) => {
                ingest_megatron(prefix, tokenizer, &mut sink, &mut report, progress)?
            }
        }
    }
    let shards = sink.finish()?;
    report.shards = shards.len();
    report.compressed_bytes = shards.iter().map(|s| s.compressed_bytes).sum();
    corpus.add_shards(&opts.category, shards);
    let manifest = corpus.commit()?;
    report.seconds = start.elapsed().as_secs_f64();
    let secs = report.seconds.max(1e-9);
    report.input_mb_per_s = report.input_bytes as f64 / 1e6 / secs;
    report.tokens_per_s = report.tokens as f64 / secs;
    let raw = report.tokens as f64 * manifest.token_width.bytes() as f64;
    if report.compressed_bytes > 0 {
        report.compression_ratio = raw / report.compressed_bytes as f64;
    }
    if report.tokens > 0 {
        report.compressed_bytes_per_token = report.compressed_bytes as f64 / report.tokens as f64;
    }
    Ok(report)
}

struct CountingReader<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}

/// One line's outcome after parsing and tokenizing.
enum Parsed {
    Doc {
        tokens: Vec<u32>,
        truth: Option<bool>,
        eot_removed: u64,
    },
    Empty,
    Bad(String),
}

fn parse_line(line: &[u8], field: &str, tokenizer: &Tokenizer) -> Parsed {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => return Parsed::Bad(format!("invalid UTF-8 at byte {}", e.valid_up_to())),
    };
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Parsed::Bad(format!("invalid JSON: {e}")),
    };
    let Some(obj) = value.as_object() else {
        return Parsed::Bad("not a JSON object".into());
    };
    let doc = match obj.get(field) {
        Some(serde_json::Value::String(s)) => s,
        Some(_) => return Parsed::Bad(format!("field {field:?} is not a string")),
        None => return Parsed::Bad(format!("missing field {field:?}")),
    };
    let truth = obj.get("ai_discourse").and_then(|v| v.as_bool());
    if doc.is_empty() {
        return Parsed::Empty;
    }
    match tokenizer.encode(doc) {
        Ok(mut tokens) => {
            let eot = tokenizer.eot_id();
            let before = tokens.len();
            tokens.retain(|&t| t != eot);
            let eot_removed = (before - tokens.len()) as u64;
            if tokens.is_empty() {
                Parsed::Empty
            } else {
                Parsed::Doc {
                    tokens,
                    truth,
                    eot_removed,
                }
            }
        }
        Err(e) => Parsed::Bad(format!("tokenizer: {e}")),
    }
}

#[allow(clippy::too_many_arguments)]
fn ingest_jsonl<R: BufRead>(
    path: &Path,
    mut reader: R,
    tokenizer: &Tokenizer,
    opts: &IngestOptions,
    sink: &mut CategoryWriter,
    report: &mut IngestReport,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let mut line_no = 0u64;
    let mut eof = false;
    while !eof {
        // Read one batch of raw lines.
        let mut batch: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut batch_bytes = 0usize;
        while batch_bytes < BATCH_BYTES {
            let mut buf = Vec::new();
            let n = reader.read_until(b'\n', &mut buf).at(path)?;
            if n == 0 {
                eof = true;
                break;
            }
            line_no += 1;
            batch_bytes += n;
            while buf.last().is_some_and(|&b| b == b'\n' || b == b'\r') {
                buf.pop();
            }
            if buf.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            batch.push((line_no, buf));
        }
        let parsed: Vec<Parsed> = batch
            .par_iter()
            .map(|(_, line)| parse_line(line, &opts.text_field, tokenizer))
            .collect();
        for ((line, _), p) in batch.iter().zip(parsed) {
            match p {
                Parsed::Doc {
                    tokens,
                    truth,
                    eot_removed,
                } => {
                    report.documents += 1;
                    report.tokens += tokens.len() as u64 + 1;
                    report.eot_in_text_removed += eot_removed;
                    sink.push_document(&tokens, truth)?;
                }
                Parsed::Empty => report.empty_documents_skipped += 1,
                Parsed::Bad(why) => {
                    if !opts.skip_bad {
                        return Err(DataError::input(
                            path,
                            Some(*line),
                            format!("{why} (use --skip-bad to skip such lines)"),
                        ));
                    }
                    report.bad_lines += 1;
                    if report.bad_examples.len() < BAD_EXAMPLES {
                        report
                            .bad_examples
                            .push(format!("{}:{line}: {why}", path.display()));
                    }
                }
            }
        }
        report.input_bytes += batch_bytes as u64;
        progress(batch_bytes as u64);
    }
    Ok(())
}

fn ingest_text(
    path: &Path,
    tokenizer: &Tokenizer,
    sink: &mut CategoryWriter,
    report: &mut IngestReport,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let bytes = std::fs::read(path).at(path)?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64
            + 1;
        DataError::input(path, Some(line), "invalid UTF-8")
    })?;
    report.input_bytes += bytes.len() as u64;
    if text.trim().is_empty() {
        report.empty_documents_skipped += 1;
    } else {
        let mut tokens = tokenizer.encode(text)?;
        let eot = tokenizer.eot_id();
        let before = tokens.len();
        tokens.retain(|&t| t != eot);
        report.eot_in_text_removed += (before - tokens.len()) as u64;
        report.documents += 1;
        report.tokens += tokens.len() as u64 + 1;
        sink.push_document(&tokens, None)?;
    }
    progress(bytes.len() as u64);
    Ok(())
}

fn ingest_megatron(
    prefix: &Path,
    tokenizer: &Tokenizer,
    sink: &mut CategoryWriter,
    report: &mut IngestReport,
    progress: &mut dyn FnMut(u64),
) -> Result<()> {
    let ds = MegatronDataset::open(prefix)?;
    let eot = tokenizer.eot_id();
    let vocab = tokenizer.vocab_size();
    let bin = ds.bin_path().to_path_buf();
    let mut doc: Vec<u32> = Vec::new();
    for d in 0..ds.num_documents() {
        let (tokens, bytes) = ds.document(d)?;
        // End-of-text inside a Megatron document (e.g. appended by
        // --append-eod) marks a boundary: store each piece as a document.
        for &t in &tokens {
            if t >= vocab {
                return Err(DataError::input(
                    &bin,
                    None,
                    format!("document {d} holds token {t}, outside the tokenizer's vocabulary of {vocab}; was it tokenized with this tokenizer?"),
                ));
            }
            if t == eot {
                if !doc.is_empty() {
                    report.documents += 1;
                    report.tokens += doc.len() as u64 + 1;
                    sink.push_document(&doc, None)?;
                    doc.clear();
                }
            } else {
                doc.push(t);
            }
        }
        if !doc.is_empty() {
            report.documents += 1;
            report.tokens += doc.len() as u64 + 1;
            sink.push_document(&doc, None)?;
            doc.clear();
        }
        report.input_bytes += bytes;
        progress(bytes);
    }
    Ok(())
}
