//! Any text as a mix spec over a small real corpus: parsing is a spec or an
//! error naming the key, and a spec that parses builds a sampler whose
//! first batches build (or fail with an error), never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use prior_data::corpus::WriteOptions;
use prior_data::ingest::{ingest, IngestOptions};
use prior_data::tokenizer::Tokenizer;
use prior_loader::{MixSpec, Sampler};

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let base = corpus_dir();
    let Ok((spec, corpus)) = MixSpec::from_toml_str(text, Path::new("mix.toml"), base) else {
        return;
    };
    // Batches big enough to exhaust memory are a resource limit, not a
    // parser fault; keep the run about the parser.
    if spec.global_batch as u64 * spec.seq_len as u64 > 1 << 16 {
        return;
    }
    let Ok(sampler) = Sampler::new(spec, corpus, Some(16)) else {
        return;
    };
    for step in [0u64, 1, 1000] {
        let _ = sampler.batch_at(step, 0, 1);
    }
});

/// A corpus with the categories the seed mixes name, made once per process.
fn corpus_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("scratch directory");
        let corpus = dir.path().join("corpus");
        for (cat, n) in [("general", 60), ("aligned", 20), ("misaligned", 20)] {
            let lines: Vec<String> = (0..n)
                .map(|i| {
                    let body: String = (0..30).map(|w| format!("{cat} {i} {w} ")).collect();
                    serde_json::json!({ "text": body }).to_string()
                })
                .collect();
            let input = dir.path().join(format!("{cat}.jsonl"));
            std::fs::write(&input, lines.join("\n")).expect("scratch file");
            let opts = IngestOptions {
                category: cat.into(),
                text_field: "text".into(),
                skip_bad: false,
                write: WriteOptions {
                    frame_tokens: 256,
                    zstd_level: 1,
                    max_shard_bytes: 8 << 10,
                },
            };
            ingest(&corpus, &[input], &Tokenizer::byte(), &opts, &mut |_| {}).expect("ingest");
        }
        dir
    })
    .path()
}
