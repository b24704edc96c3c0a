//! Any bytes as a corpus manifest: opening the corpus, and then each of its
//! shards, is a value or an error naming the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prior_data::corpus::{Corpus, MANIFEST_FILE};

fuzz_target!(|bytes: &[u8]| {
    let dir = scratch_dir();
    std::fs::write(dir.join(MANIFEST_FILE), bytes).expect("scratch file");
    let Ok(corpus) = Corpus::open(dir) else {
        return;
    };
    let _ = corpus.tokenizer();
    for name in corpus.manifest().categories.keys() {
        if let Ok(cat) = corpus.category(name) {
            for entry in &cat.shards {
                let _ = corpus.open_shard_entry(entry);
            }
        }
    }
});

fn scratch_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("scratch directory"))
        .path()
}
