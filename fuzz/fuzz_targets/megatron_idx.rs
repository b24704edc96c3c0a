//! Any bytes as a Megatron `.idx` (the first byte picks how many of the
//! rest form the `.bin`): opening and reading every document is tokens or
//! an error, never a panic or an out-of-bounds read.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prior_data::megatron::MegatronDataset;

fuzz_target!(|bytes: &[u8]| {
    let Some((&split, rest)) = bytes.split_first() else {
        return;
    };
    let bin_len = (split as usize * 8).min(rest.len());
    let (bin, idx) = rest.split_at(bin_len);
    let dir = scratch_dir();
    let prefix = dir.join("data");
    std::fs::write(prefix.with_extension("idx"), idx).expect("scratch file");
    std::fs::write(prefix.with_extension("bin"), bin).expect("scratch file");
    let Ok(ds) = MegatronDataset::open(&prefix) else {
        return;
    };
    for d in 0..ds.num_documents() {
        let _ = ds.document(d);
    }
});

fn scratch_dir() -> &'static std::path::Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("scratch directory"))
        .path()
}
