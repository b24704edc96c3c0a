//! The Megatron importer reads the user's files: a `.bin` truncated or
//! rewritten while it is being read is an error naming the file, not a
//! crash (a memory map of it would die with SIGBUS).

use std::fs::OpenOptions;

use prior_data::megatron::{write_megatron, MegatronDataset};

#[test]
fn a_bin_truncated_after_open_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("neox_text_document");
    // Enough documents that the last ones start several pages into the
    // file, past what a truncation to 0 leaves mapped.
    let docs: Vec<Vec<u32>> = (0..64u32)
        .map(|d| (0..2048).map(|i| 1 + (d * 31 + i) % 5000).collect())
        .collect();
    write_megatron(&prefix, &docs).unwrap();
    let ds = MegatronDataset::open(&prefix).unwrap();
    assert_eq!(ds.document(0).unwrap().0, docs[0]);
    let bin = prefix.with_extension("bin");
    OpenOptions::new()
        .write(true)
        .open(&bin)
        .unwrap()
        .set_len(0)
        .unwrap();
    let err = ds
        .document(63)
        .expect_err("a document past the end of a truncated file");
    let msg = err.to_string();
    assert!(
        msg.contains("neox_text_document.bin") && msg.contains("truncated"),
        "{msg}"
    );
}

#[test]
fn a_negative_sequence_size_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let prefix = dir.path().join("m");
    write_megatron(&prefix, &[vec![1, 2, 3]]).unwrap();
    let idx_path = prefix.with_extension("idx");
    let mut idx = std::fs::read(&idx_path).unwrap();
    idx[34..38].copy_from_slice(&(-3i32).to_le_bytes());
    std::fs::write(&idx_path, idx).unwrap();
    let err = MegatronDataset::open(&prefix)
        .err()
        .expect("a negative size opens");
    assert!(err.to_string().contains("m.idx"), "{err}");
}
