//! Applies the AI-discourse filter to a corpus category, writing the
//! documents it keeps and the ones it flags into two new categories,
//! `<name>.kept` and `<name>.flagged`. The original category is left as it
//! is, so a filtered and an unfiltered run can be mixed from one corpus.
//!
//! Tokens are copied, not re-tokenized: the filter reads each document's
//! decoded text only to classify it.

use rayon::prelude::*;
use serde::Serialize;

use crate::corpus::{Corpus, CorpusWriter, WriteOptions, LABEL_NO, LABEL_YES};
use crate::error::{DataError, Result};
use crate::filter::{Blocklist, DiscourseFilter, FilterStats, Verdict};
use crate::shard::FrameDecoder;

/// Documents classified together (in parallel).
const BATCH_DOCS: usize = 2048;

#[derive(Debug, Clone, Serialize)]
pub struct FilterReport {
    pub category: String,
    pub kept_category: String,
    pub flagged_category: String,
    pub documents: u64,
    pub flagged_documents: u64,
    pub flagged_share: f64,
    pub tokens: u64,
    pub flagged_tokens: u64,
    pub flagged_token_share: f64,
    pub by_immediate_term: u64,
    pub by_cooccurrence: u64,
    pub top_terms: Vec<(String, u64)>,
    /// Against the documents' ground truth (`ai_discourse`), when ingest saw it.
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub labelled_documents: u64,
    pub seconds: f64,
}

pub fn filter_category(
    corpus_dir: &std::path::Path,
    category: &str,
    blocklist: &Blocklist,
    write: WriteOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<FilterReport> {
    let start = std::time::Instant::now();
    let corpus = Corpus::open(corpus_dir)?;
    let entry = corpus.category(category)?.clone();
    let kept_name = format!("{category}.kept");
    let flagged_name = format!("{category}.flagged");
    for n in [&kept_name, &flagged_name] {
        if corpus.manifest().categories.contains_key(n) {
            return Err(DataError::Usage(format!(
                "category {n:?} already exists in {}: this category was filtered before",
                corpus_dir.display()
            )));
        }
    }
    let tokenizer = corpus.tokenizer()?;
    let filter = DiscourseFilter::new(blocklist)?;
    let mut writer = CorpusWriter::open_or_create(corpus_dir, &tokenizer, write)?;
    let mut kept = writer.category(&kept_name)?;
    let mut flagged = writer.category(&flagged_name)?;
    let mut stats = FilterStats::default();
    let (mut tokens, mut flagged_tokens) = (0u64, 0u64);
    let mut dec = FrameDecoder::new();
    for shard in &entry.shards {
        let reader = corpus.open_shard_entry(shard)?;
        let labels = corpus.shard_labels(shard)?;
        let n = reader.num_documents();
        let mut d = 0u64;
        while d < n {
            let hi = (d + BATCH_DOCS as u64).min(n);
            // One contiguous read per batch: frames decompress once.
            let range =
                reader.document_token_range(d).start..reader.document_token_range(hi - 1).end;
            let all = reader.read_tokens(range.clone(), &mut dec)?;
            let docs: Vec<&[u32]> = (d..hi)
                .map(|i| {
                    let r = reader.document_token_range(i);
                    &all[(r.start - range.start) as usize..(r.end - 1 - range.start) as usize]
                })
                .collect();
            let verdicts: Vec<Result<Verdict>> = docs
                .par_iter()
                .map(|toks| Ok(filter.classify(&tokenizer.decode(toks)?)))
                .collect();
            for (k, (toks, v)) in docs.iter().zip(verdicts).enumerate() {
                let v = v?;
                let truth = labels.as_ref().and_then(|l| match l[(d as usize) + k] {
                    LABEL_YES => Some(true),
                    LABEL_NO => Some(false),
                    _ => None,
                });
                stats.record(&v, truth);
                tokens += toks.len() as u64 + 1;
                if v.flagged {
                    flagged_tokens += toks.len() as u64 + 1;
                    flagged.push_document(toks, truth)?;
                } else {
                    kept.push_document(toks, truth)?;
                }
            }
            d = hi;
        }
        progress(reader.file_bytes());
    }
    let kept_shards = kept.finish()?;
    let flagged_shards = flagged.finish()?;
    writer.add_shards(&kept_name, kept_shards);
    writer.add_shards(&flagged_name, flagged_shards);
    writer.commit()?;
    let share = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let labelled =
        stats.true_positive + stats.false_positive + stats.false_negative + stats.true_negative;
    Ok(FilterReport {
        category: category.to_string(),
        kept_category: kept_name,
        flagged_category: flagged_name,
        documents: stats.documents,
        flagged_documents: stats.flagged,
        flagged_share: share(stats.flagged, stats.documents),
        tokens,
        flagged_tokens,
        flagged_token_share: share(flagged_tokens, tokens),
        by_immediate_term: stats.immediate,
        by_cooccurrence: stats.cooccurrence,
        top_terms: stats.top_terms(10),
        precision: stats.precision(),
        recall: stats.recall(),
        labelled_documents: labelled,
        seconds: start.elapsed().as_secs_f64(),
    })
}
