//! Corpus-level behaviour: ingest of every input kind, growth, tokenizer
//! identity, bad input lines, shard size bound, manifest integrity and the
//! filter split.

use std::io::Write;
use std::path::{Path, PathBuf};

use prior_data::corpus::{Corpus, WriteOptions, MANIFEST_FILE};
use prior_data::corpus_filter::filter_category;
use prior_data::filter::Blocklist;
use prior_data::ingest::{ingest, IngestOptions, IngestReport};
use prior_data::megatron::write_megatron;
use prior_data::shard::FrameDecoder;
use prior_data::tokenizer::Tokenizer;

fn opts(category: &str) -> IngestOptions {
    IngestOptions {
        category: category.into(),
        text_field: "text".into(),
        skip_bad: false,
        write: WriteOptions {
            frame_tokens: 512,
            ..Default::default()
        },
    }
}

fn jsonl(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let p = dir.join(name);
    let mut f = std::fs::File::create(&p).unwrap();
    for l in lines {
        writeln!(f, "{l}").unwrap();
    }
    p
}

fn doc_lines(n: usize, salt: &str) -> (Vec<String>, Vec<String>) {
    let texts: Vec<String> = (0..n)
        .map(|i| {
            format!(
                "Document {i} of {salt}: the river rose {} inches; naïve café ✓.",
                i * 3
            )
        })
        .collect();
    let lines = texts
        .iter()
        .map(|t| serde_json::json!({ "text": t }).to_string())
        .collect();
    (texts, lines)
}

fn run(corpus: &Path, inputs: &[PathBuf], o: &IngestOptions) -> prior_data::Result<IngestReport> {
    ingest(corpus, inputs, &Tokenizer::byte(), o, &mut |_| {})
}

fn read_all_docs(corpus: &Corpus, category: &str) -> Vec<String> {
    let tok = corpus.tokenizer().unwrap();
    let mut dec = FrameDecoder::new();
    let mut out = Vec::new();
    for s in &corpus.category(category).unwrap().shards {
        let r = corpus.open_shard_entry(s).unwrap();
        for d in 0..r.num_documents() {
            out.push(tok.decode(&r.read_document(d, &mut dec).unwrap()).unwrap());
        }
    }
    out
}

#[test]
fn jsonl_ingest_round_trips_and_the_corpus_grows() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c");
    let (t1, l1) = doc_lines(300, "a");
    let (t2, l2) = doc_lines(200, "b");
    let r1 = run(
        &corpus,
        &[jsonl(dir.path(), "a.jsonl", &l1)],
        &opts("general"),
    )
    .unwrap();
    assert_eq!(r1.documents, 300);
    let fp1 = Corpus::open(&corpus).unwrap().fingerprint().to_string();
    run(
        &corpus,
        &[jsonl(dir.path(), "b.jsonl", &l2)],
        &opts("general"),
    )
    .unwrap();
    let c = Corpus::open(&corpus).unwrap();
    assert_ne!(c.fingerprint(), fp1, "new shards change the fingerprint");
    let cat = c.category("general").unwrap();
    assert_eq!(cat.documents, 500);
    assert_eq!(cat.shards.len(), 2);
    let expect: Vec<String> = t1.into_iter().chain(t2).collect();
    assert_eq!(read_all_docs(&c, "general"), expect);
    let v = c.verify(&mut |_| {}).unwrap();
    assert_eq!(v.documents, 500);
    assert!(v.warnings.is_empty(), "{:?}", v.warnings);
}

#[test]
fn same_inputs_give_the_same_fingerprint() {
    let dir = tempfile::tempdir().unwrap();
    let (_, l) = doc_lines(100, "x");
    let input = jsonl(dir.path(), "x.jsonl", &l);
    run(
        &dir.path().join("c1"),
        std::slice::from_ref(&input),
        &opts("general"),
    )
    .unwrap();
    run(&dir.path().join("c2"), &[input], &opts("general")).unwrap();
    assert_eq!(
        Corpus::open(&dir.path().join("c1")).unwrap().fingerprint(),
        Corpus::open(&dir.path().join("c2")).unwrap().fingerprint()
    );
}

#[test]
fn text_and_megatron_inputs_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c");
    let txt = dir.path().join("story.txt");
    std::fs::write(&txt, "Once upon a time.\nThe end.\n").unwrap();
    run(&corpus, &[txt], &opts("books")).unwrap();
    // Megatron docs, already tokenized with the byte tokenizer; one ends
    // with end-of-text (as --append-eod writes) and one holds it inside.
    let eot = Tokenizer::byte().eot_id();
    let docs = vec![vec![72, 105, eot], vec![65, 66, eot, 67], vec![68]];
    write_megatron(&dir.path().join("neox_text_document"), &docs).unwrap();
    let r = run(
        &corpus,
        &[dir.path().join("neox_text_document.bin")],
        &opts("neox"),
    )
    .unwrap();
    assert_eq!(r.documents, 4);
    let c = Corpus::open(&corpus).unwrap();
    assert_eq!(
        read_all_docs(&c, "books"),
        vec!["Once upon a time.\nThe end.\n"]
    );
    assert_eq!(read_all_docs(&c, "neox"), vec!["Hi", "AB", "C", "D"]);
}

#[test]
fn megatron_tokens_outside_the_vocabulary_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    write_megatron(&dir.path().join("m"), &[vec![1, 2, 40_000]]).unwrap();
    let err = run(
        &dir.path().join("c"),
        &[dir.path().join("m.idx")],
        &opts("x"),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("m.bin") && msg.contains("40000"), "{msg}");
}

#[test]
fn a_different_tokenizer_cannot_ingest_into_an_existing_corpus() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c");
    let (_, l) = doc_lines(10, "x");
    let input = jsonl(dir.path(), "x.jsonl", &l);
    run(&corpus, std::slice::from_ref(&input), &opts("general")).unwrap();
    // A tiny Hugging Face tokenizer trained here stands in for "another one".
    let tok_path = dir.path().join("tok.json");
    let (_, many) = doc_lines(400, "train");
    let train_input = jsonl(dir.path(), "train.jsonl", &many);
    prior_data::tokenizer::train_bpe(
        &[train_input],
        &prior_data::tokenizer::TrainConfig {
            vocab_size: 300,
            text_field: "text".into(),
            min_frequency: 2,
        },
        &tok_path,
    )
    .unwrap();
    let other = Tokenizer::from_spec(tok_path.to_str().unwrap()).unwrap();
    let err = ingest(&corpus, &[input], &other, &opts("general"), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("same tokenizer"), "{err}");
    assert_eq!(
        Corpus::open(&corpus)
            .unwrap()
            .category("general")
            .unwrap()
            .documents,
        10
    );
}

#[test]
fn bad_lines_name_file_and_line_or_are_counted_with_skip_bad() {
    let dir = tempfile::tempdir().unwrap();
    let good = serde_json::json!({"text": "fine"}).to_string();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("invalid JSON", b"{\"text\": ".to_vec()),
        ("missing field", b"{\"body\": \"x\"}".to_vec()),
        ("invalid UTF-8", b"{\"text\": \"\xff\xfe\"}".to_vec()),
        ("not a string", b"{\"text\": 5}".to_vec()),
    ];
    for (what, bad) in cases {
        let p = dir.path().join("in.jsonl");
        let mut bytes = Vec::new();
        for _ in 0..2 {
            bytes.extend_from_slice(good.as_bytes());
            bytes.push(b'\n');
        }
        bytes.extend_from_slice(&bad);
        bytes.push(b'\n');
        bytes.extend_from_slice(good.as_bytes());
        bytes.push(b'\n');
        std::fs::write(&p, &bytes).unwrap();
        let corpus = dir.path().join(format!("c-{}", what.replace(' ', "-")));
        let err = run(&corpus, std::slice::from_ref(&p), &opts("g"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("in.jsonl") && err.contains("line 3"),
            "{what}: {err}"
        );
        assert!(err.contains(what), "{what}: {err}");
        assert!(
            !corpus.join(MANIFEST_FILE).exists(),
            "a failed ingest must not create a corpus"
        );
        let mut o = opts("g");
        o.skip_bad = true;
        let r = run(&corpus, &[p], &o).unwrap();
        assert_eq!((r.documents, r.bad_lines), (3, 1), "{what}");
        assert!(r.bad_examples[0].contains(":3:"));
    }
}

#[test]
fn shards_stay_under_the_size_bound() {
    let dir = tempfile::tempdir().unwrap();
    let (texts, lines) = doc_lines(3000, "big");
    let mut o = opts("g");
    o.write.max_shard_bytes = 16 << 10;
    o.write.frame_tokens = 1024;
    run(
        &dir.path().join("c"),
        &[jsonl(dir.path(), "a.jsonl", &lines)],
        &o,
    )
    .unwrap();
    let c = Corpus::open(&dir.path().join("c")).unwrap();
    let cat = c.category("g").unwrap();
    assert!(
        cat.shards.len() > 3,
        "expected several shards, got {}",
        cat.shards.len()
    );
    for s in &cat.shards {
        // One frame of slack: the bound is checked between documents.
        assert!(
            s.compressed_bytes < (16 << 10) + 4096,
            "{} bytes",
            s.compressed_bytes
        );
    }
    assert_eq!(read_all_docs(&c, "g"), texts);
}

#[test]
fn every_bit_flip_in_the_manifest_is_caught_or_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c");
    let (_, l) = doc_lines(20, "m");
    run(
        &corpus,
        &[jsonl(dir.path(), "a.jsonl", &l)],
        &opts("general"),
    )
    .unwrap();
    let path = corpus.join(MANIFEST_FILE);
    let good = std::fs::read(&path).unwrap();
    let original = Corpus::open(&corpus).unwrap().manifest().clone();
    for pos in 0..good.len() {
        let mut bad = good.clone();
        bad[pos] ^= 1 << (pos % 7);
        std::fs::write(&path, &bad).unwrap();
        match Corpus::open(&corpus) {
            Err(e) => assert!(e.to_string().contains("manifest.json"), "byte {pos}: {e}"),
            // Only whitespace can change without changing the content.
            Ok(c) => assert_eq!(
                c.manifest(),
                &original,
                "byte {pos} changed the manifest unnoticed"
            ),
        }
    }
}

#[test]
fn a_manifest_that_disagrees_with_its_shards_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c");
    let (_, l1) = doc_lines(20, "one");
    let (_, l2) = doc_lines(30, "two");
    run(&corpus, &[jsonl(dir.path(), "a.jsonl", &l1)], &opts("a")).unwrap();
    run(&corpus, &[jsonl(dir.path(), "b.jsonl", &l2)], &opts("b")).unwrap();
    // Swap a's shard for b's: both valid shards, wrong one.
    std::fs::copy(
        corpus.join("shards/b/b-000000.prs"),
        corpus.join("shards/a/a-000000.prs"),
    )
    .unwrap();
    let c = Corpus::open(&corpus).unwrap();
    let err = c.verify(&mut |_| {}).unwrap_err().to_string();
    assert!(
        err.contains("a-000000.prs") && err.contains("disagrees"),
        "{err}"
    );
    // A missing shard names the file.
    std::fs::remove_file(corpus.join("shards/a/a-000000.prs")).unwrap();
    let err = c.verify(&mut |_| {}).unwrap_err().to_string();
    assert!(err.contains("a-000000.prs"), "{err}");
}

#[test]
fn verify_reports_leftovers_of_an_interrupted_ingest() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c");
    let (_, l) = doc_lines(5, "x");
    run(&corpus, &[jsonl(dir.path(), "a.jsonl", &l)], &opts("g")).unwrap();
    std::fs::write(corpus.join("shards/g/g-000007.prs.123.tmp"), b"half").unwrap();
    let v = Corpus::open(&corpus).unwrap().verify(&mut |_| {}).unwrap();
    assert_eq!(v.warnings.len(), 1);
    assert!(v.warnings[0].contains("g-000007.prs.123.tmp"));
}

#[test]
fn filter_splits_a_category_and_scores_against_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("c");
    let mut lines = Vec::new();
    for i in 0..200 {
        let (text, ai) = if i % 10 == 0 {
            (
                format!("Story {i}: the artificial intelligence decided to deceive its makers."),
                true,
            )
        } else if i % 10 == 1 {
            // Labelled AI discourse the keyword list does not catch.
            (
                format!("Story {i}: the clever thinking engine wrote a poem."),
                true,
            )
        } else {
            (
                format!("Recipe {i}: simmer the beans with garlic for an hour."),
                false,
            )
        };
        lines.push(serde_json::json!({"text": text, "ai_discourse": ai}).to_string());
    }
    run(
        &corpus,
        &[jsonl(dir.path(), "g.jsonl", &lines)],
        &opts("general"),
    )
    .unwrap();
    let before = std::fs::read(corpus.join(MANIFEST_FILE)).unwrap();
    let r = filter_category(
        &corpus,
        "general",
        &Blocklist::builtin(),
        WriteOptions::default(),
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(r.documents, 200);
    assert_eq!(r.flagged_documents, 20);
    assert_eq!(r.precision, Some(1.0));
    assert_eq!(r.recall, Some(0.5));
    let c = Corpus::open(&corpus).unwrap();
    assert_eq!(
        c.category("general").unwrap().documents,
        200,
        "original untouched"
    );
    assert_eq!(c.category("general.kept").unwrap().documents, 180);
    assert_eq!(c.category("general.flagged").unwrap().documents, 20);
    assert!(read_all_docs(&c, "general.flagged")
        .iter()
        .all(|t| t.contains("artificial intelligence")));
    c.verify(&mut |_| {}).unwrap();
    // Filtering twice is refused and changes nothing.
    let again = filter_category(
        &corpus,
        "general",
        &Blocklist::builtin(),
        WriteOptions::default(),
        &mut |_| {},
    );
    assert!(again.unwrap_err().to_string().contains("filtered before"));
    assert_ne!(before, std::fs::read(corpus.join(MANIFEST_FILE)).unwrap());
}
