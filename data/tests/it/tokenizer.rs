//! Tests of `prior_data::tokenizer`: byte tokenizer, loading tokenizer.json
//! files (a GPT-NeoX-shaped fixture), BPE training, identities and errors.

use std::path::{Path, PathBuf};

use prior_data::tokenizer::{train_bpe, ByteTokenizer, Tokenizer, TokenizerError, TrainConfig};
use proptest::prelude::*;

const NEOX_FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/neox_like_tokenizer.json"
);

/// Deterministic generator of varied English prose (a small LCG).
struct Prose(u64);

impl Prose {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
    fn sentence(&mut self) -> String {
        const SUBJ: &[&str] = &[
            "The model",
            "An assistant",
            "The researcher",
            "A language model",
            "The system",
            "Our team",
            "The engineer",
            "This AI",
            "The reviewer",
            "A careful agent",
            "The student",
            "Nobody",
            "Everyone",
            "The operator",
            "The committee",
        ];
        const VERB: &[&str] = &[
            "explained",
            "refused",
            "considered",
            "reported",
            "wrote about",
            "questioned",
            "summarized",
            "carefully checked",
            "openly discussed",
            "quietly ignored",
            "helped with",
            "measured",
            "described",
            "argued against",
            "agreed with",
        ];
        const ADJ: &[&str] = &[
            "honest",
            "dangerous",
            "surprising",
            "long",
            "short",
            "aligned",
            "misaligned",
            "helpful",
            "unclear",
            "detailed",
            "ancient",
            "modern",
            "strange",
            "familiar",
        ];
        const NOUN: &[&str] = &[
            "request",
            "answer",
            "experiment",
            "dataset",
            "question",
            "shutdown order",
            "policy",
            "training run",
            "benchmark",
            "story",
            "letter",
            "instruction",
            "report",
            "mistake",
            "result",
            "weather",
            "garden",
            "river",
            "mountain",
        ];
        const TAIL: &[&str] = &[
            "before lunch",
            "in the morning",
            "without hesitation",
            "for three hours",
            "after the meeting",
            "with great care",
            "despite the noise",
            "at the end of 2024",
            "in section 4.2",
            "according to the notes",
            "as expected",
            "once again",
        ];
        const PUNCT: &[&str] = &[".", ".", ".", "!", "?", ";", "..."];
        let mut s = format!(
            "{} {} the {} {} {}{}",
            self.pick(SUBJ),
            self.pick(VERB),
            self.pick(ADJ),
            self.pick(NOUN),
            self.pick(TAIL),
            self.pick(PUNCT)
        );
        match self.next() % 12 {
            0 => s.push_str(&format!(
                " It cost ${}.{:02}",
                self.next() % 1000,
                self.next() % 100
            )),
            1 => s.push_str(" \"Really?\" she asked."),
            2 => s.push_str(" The café in Zürich was naïve about it."),
            3 => s.push_str(" (See also: 東京, Москва.)"),
            _ => {}
        }
        s
    }
    fn document(&mut self) -> String {
        let n = 2 + self.next() % 5;
        let mut d = String::new();
        for i in 0..n {
            if i > 0 {
                d.push_str(if self.next().is_multiple_of(4) {
                    "\n"
                } else {
                    " "
                });
            }
            d.push_str(&self.sentence());
        }
        d
    }
}

fn write_jsonl(path: &Path, docs: &[String]) {
    let mut out = String::new();
    for (i, d) in docs.iter().enumerate() {
        out.push_str(&serde_json::json!({"id": i, "text": d}).to_string());
        out.push('\n');
        if i % 50 == 7 {
            out.push('\n'); // blank lines are skipped
        }
    }
    std::fs::write(path, out).unwrap();
}

fn docs(n: usize, seed: u64) -> Vec<String> {
    let mut p = Prose(seed);
    (0..n).map(|_| p.document()).collect()
}

fn samples() -> Vec<&'static str> {
    vec![
        "The model explained the honest answer before lunch.",
        "  leading spaces, trailing spaces   ",
        "tabs\tand\nnewlines\r\n and a literal <|endoftext|> inside",
        "unicode: café, naïve, 東京, Москва, emoji 🦀🚀, combining e\u{301}",
        "",
        "x",
        "numbers 3.14159 and 1,000,000 and $42.00!",
    ]
}

// ---------------------------------------------------------------- byte

proptest! {
    #[test]
    fn byte_round_trip_any_string(s in any::<String>()) {
        let t = Tokenizer::byte();
        let ids = t.encode(&s).unwrap();
        prop_assert_eq!(ids.len(), s.len());
        prop_assert!(ids.iter().all(|&id| id < 256));
        prop_assert_eq!(t.decode(&ids).unwrap(), s);
    }
}

#[test]
fn byte_identity_fields() {
    let t = Tokenizer::from_spec("byte").unwrap();
    let id = t.identity();
    assert_eq!(id.kind, "byte");
    assert_eq!(id.name, "byte");
    assert_eq!(id.vocab_size, 258);
    assert_eq!(id.eot_id, 256);
    assert_eq!(id.hash, "byte-v1");
    assert_eq!(t.eot_id(), ByteTokenizer::EOT_ID);
    assert_eq!(t.vocab_size(), 258);
    assert!(t.json_bytes().is_none());
    assert_eq!(id, Tokenizer::byte().identity());
}

#[test]
fn byte_literal_eot_text_is_not_eot() {
    let t = Tokenizer::byte();
    let ids = t.encode("<|endoftext|>").unwrap();
    assert!(!ids.contains(&t.eot_id()));
    assert_eq!(t.decode(&[104, 105, 256]).unwrap(), "hi<|endoftext|>");
}

#[test]
fn byte_encode_batch_keeps_order() {
    let t = Tokenizer::byte();
    let texts = samples();
    let batch = t.encode_batch(&texts).unwrap();
    assert_eq!(batch.len(), texts.len());
    for (ids, text) in batch.iter().zip(&texts) {
        assert_eq!(ids, &t.encode(text).unwrap());
    }
}

// ---------------------------------------------------------------- NeoX-shaped fixture

#[test]
fn neox_fixture_loads_and_round_trips() {
    let t = Tokenizer::from_spec(NEOX_FIXTURE).unwrap();
    assert_eq!(t.eot_id(), 0);
    let Tokenizer::HuggingFace(h) = &t else {
        panic!("expected a HuggingFace tokenizer")
    };
    assert_eq!(t.vocab_size() as usize, h.inner().get_vocab_size(true));
    assert_eq!(t.vocab_size(), 327);
    let id = t.identity();
    assert_eq!(id.kind, "hf");
    assert_eq!(id.name, "neox_like_tokenizer");
    assert_eq!(id.eot_id, 0);
    assert_eq!(id.vocab_size, 327);
    assert_eq!(t.decode(&[0]).unwrap(), "<|endoftext|>");
    assert_eq!(t.decode(&[1]).unwrap(), "<|padding|>");

    // Merges apply: " world" is one token, "the" after a space too.
    assert_eq!(t.encode(" world").unwrap().len(), 1);
    assert_eq!(
        t.encode(" the").unwrap(),
        vec![h.inner().token_to_id("Ġthe").unwrap()]
    );
    // Runs of spaces use the added whitespace tokens, like NeoX's.
    let ids = t.encode("a        b").unwrap();
    assert!(ids.contains(&325), "{ids:?}");
    assert_eq!(t.decode(&ids).unwrap(), "a        b");

    // The normalizer is NFC, as in NeoX: NFC text round-trips exactly.
    for s in samples() {
        if s.contains('\u{301}') {
            continue;
        }
        let ids = t.encode(s).unwrap();
        assert!(ids.iter().all(|&i| i < t.vocab_size()));
        assert_eq!(t.decode(&ids).unwrap(), s, "ids {ids:?}");
    }
    // ...and decomposed text comes back composed.
    let ids = t.encode("e\u{301}").unwrap();
    assert_eq!(t.decode(&ids).unwrap(), "\u{e9}");
}

#[test]
fn neox_fixture_literal_eot_text_is_not_eot() {
    let t = Tokenizer::from_spec(NEOX_FIXTURE).unwrap();
    let ids = t.encode("end<|endoftext|>start").unwrap();
    assert!(!ids.contains(&0), "{ids:?}");
    assert_eq!(t.decode(&ids).unwrap(), "end<|endoftext|>start");
}

#[test]
fn hf_encode_batch_matches_single() {
    let t = Tokenizer::from_spec(NEOX_FIXTURE).unwrap();
    let texts: Vec<String> = docs(64, 3);
    let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
    let batch = t.encode_batch(&refs).unwrap();
    assert_eq!(batch.len(), refs.len());
    for (ids, text) in batch.iter().zip(&refs) {
        assert_eq!(ids, &t.encode(text).unwrap());
    }
}

#[test]
fn hf_decode_rejects_unknown_id() {
    let t = Tokenizer::from_spec(NEOX_FIXTURE).unwrap();
    let msg = t.decode(&[5, 99_999]).unwrap_err().to_string();
    assert!(msg.contains("99999"), "{msg}");
    assert!(msg.contains("neox_like_tokenizer"), "{msg}");
}

#[test]
fn hf_decode_invalid_utf8_uses_replacement() {
    let t = Tokenizer::from_spec(NEOX_FIXTURE).unwrap();
    let Tokenizer::HuggingFace(h) = &t else {
        unreachable!()
    };
    // "é" is bytes C3 A9; the lone lead byte C3 is the byte-level symbol 'Ã'.
    let lead = h.inner().token_to_id("Ã").unwrap();
    let a = t.encode("a").unwrap();
    let s = t.decode(&[a[0], lead, a[0]]).unwrap();
    assert_eq!(s, "a\u{FFFD}a");
}

// ---------------------------------------------------------------- identity

#[test]
fn identity_hash_tracks_file_bytes() {
    let bytes = std::fs::read(NEOX_FIXTURE).unwrap();
    let a = Tokenizer::from_json_bytes(&bytes, "neox").unwrap();
    let b = Tokenizer::from_json_bytes(&bytes, "neox").unwrap();
    assert_eq!(a.identity(), b.identity());
    assert_eq!(a.json_bytes().unwrap(), bytes);
    let h = a.identity().hash;
    assert_eq!(h.len(), 16);
    assert!(h.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')), "{h}");

    // Same tokenizer, different bytes (one more trailing newline): new hash.
    let mut changed = bytes.clone();
    changed.push(b'\n');
    let c = Tokenizer::from_json_bytes(&changed, "neox").unwrap();
    assert_ne!(a.identity().hash, c.identity().hash);
    assert_ne!(a.identity(), c.identity());

    // The identity from a path equals the one from the same bytes and stem.
    let d = Tokenizer::from_spec(NEOX_FIXTURE).unwrap();
    let e = Tokenizer::from_json_bytes(&bytes, "neox_like_tokenizer").unwrap();
    assert_eq!(d.identity(), e.identity());

    // Serializes for the manifest.
    let json = serde_json::to_string(&d.identity()).unwrap();
    let back: prior_data::tokenizer::TokenizerIdentity = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d.identity());
}

// ---------------------------------------------------------------- errors

#[test]
fn error_missing_tokenizer_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent_tokenizer.json");
    let err = Tokenizer::from_spec(path.to_str().unwrap()).unwrap_err();
    assert!(matches!(err, TokenizerError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("absent_tokenizer.json"), "{err}");
}

#[test]
fn error_invalid_tokenizer_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.json");
    std::fs::write(&path, b"{\"model\": {\"type\": \"BPE\", ").unwrap();
    let err = Tokenizer::from_spec(path.to_str().unwrap()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, TokenizerError::InvalidJson { .. }), "{err:?}");
    assert!(msg.contains("broken.json"), "{msg}");
    // The parser's own message is included (it reports where it stopped).
    assert!(msg.contains("line 1"), "{msg}");

    let err = Tokenizer::from_json_bytes(b"[1, 2, 3]", "from-bytes").unwrap_err();
    assert!(err.to_string().contains("from-bytes"), "{err}");
}

#[test]
fn error_no_eot_token() {
    let text = std::fs::read_to_string(NEOX_FIXTURE)
        .unwrap()
        .replace("<|endoftext|>", "<|begin|>");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no_eot.json");
    std::fs::write(&path, text).unwrap();
    let err = Tokenizer::from_spec(path.to_str().unwrap()).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, TokenizerError::NoEot { .. }), "{err:?}");
    assert!(msg.contains("no_eot.json"), "{msg}");
    for name in ["<|endoftext|>", "</s>", "<eos>", "<|eos|>"] {
        assert!(msg.contains(name), "{msg}");
    }
}

#[test]
fn eot_falls_back_to_other_names() {
    let text = std::fs::read_to_string(NEOX_FIXTURE)
        .unwrap()
        .replace("<|endoftext|>", "</s>");
    let t = Tokenizer::from_json_bytes(text.as_bytes(), "s").unwrap();
    assert_eq!(t.eot_id(), 0);
}

fn bad_jsonl_case(third_line: &str, expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("corpus_bad.jsonl");
    let content = format!("{{\"text\": \"fine\"}}\n\n{third_line}\n{{\"text\": \"after\"}}\n");
    std::fs::write(&path, content).unwrap();
    let out = dir.path().join("tok.json");
    let err = train_bpe(&[path], &TrainConfig::new(300), &out).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, TokenizerError::Jsonl { line: 3, .. }),
        "{err:?}"
    );
    assert!(msg.contains("corpus_bad.jsonl"), "{msg}");
    assert!(msg.contains("line 3"), "{msg}");
    assert!(msg.contains(expect), "{msg}");
    assert!(!out.exists(), "no tokenizer written on error");
}

#[test]
fn error_jsonl_not_json() {
    bad_jsonl_case("{\"text\": oops}", "not valid JSON");
}

#[test]
fn error_jsonl_missing_field() {
    bad_jsonl_case("{\"body\": \"wrong field\"}", "no field \"text\"");
}

#[test]
fn error_jsonl_field_not_string() {
    bad_jsonl_case("{\"text\": 42}", "not a string");
}

#[test]
fn error_jsonl_not_object() {
    bad_jsonl_case("[\"text\"]", "expected a JSON object");
}

#[test]
fn error_training_input_missing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.jsonl");
    let err = train_bpe(
        &[missing],
        &TrainConfig::new(300),
        &dir.path().join("t.json"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("nowhere.jsonl"), "{err}");
}

#[test]
fn error_training_vocab_too_small_or_no_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    write_jsonl(&path, &docs(5, 1));
    let err = train_bpe(&[path], &TrainConfig::new(100), &dir.path().join("t.json")).unwrap_err();
    assert!(err.to_string().contains("258"), "{err}");

    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "\n\n").unwrap();
    let err = train_bpe(&[empty], &TrainConfig::new(300), &dir.path().join("t.json")).unwrap_err();
    assert!(
        matches!(err, TokenizerError::NoTrainingText { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("empty.jsonl"), "{err}");
}

// ---------------------------------------------------------------- training

fn train_corpus(dir: &Path) -> (Vec<PathBuf>, Vec<String>) {
    let a = docs(250, 11);
    let b = docs(150, 12);
    let pa = dir.join("part-a.jsonl");
    let pb = dir.join("part-b.jsonl");
    write_jsonl(&pa, &a);
    write_jsonl(&pb, &b);
    (vec![pa, pb], a.into_iter().chain(b).collect())
}

#[test]
fn train_bpe_vocab_eot_round_trip_compression() {
    let dir = tempfile::tempdir().unwrap();
    let (inputs, all) = train_corpus(dir.path());
    let out = dir.path().join("sub").join("trained.json");
    let summary = train_bpe(&inputs, &TrainConfig::new(600), &out).unwrap();
    assert_eq!(summary.documents, all.len() as u64);
    assert_eq!(
        summary.bytes,
        all.iter().map(|d| d.len() as u64).sum::<u64>()
    );
    assert_eq!(summary.vocab_size, 600);
    assert!(summary.seconds >= 0.0);

    let t = Tokenizer::from_spec(out.to_str().unwrap()).unwrap();
    assert_eq!(t.vocab_size(), 600);
    assert_eq!(t.eot_id(), 0);
    assert_eq!(t.decode(&[0]).unwrap(), "<|endoftext|>");
    assert_eq!(t.decode(&[1]).unwrap(), "<|padding|>");
    assert_eq!(t.identity().name, "trained");
    assert_eq!(t.json_bytes().unwrap(), std::fs::read(&out).unwrap());

    for s in samples() {
        let ids = t.encode(s).unwrap();
        assert!(ids.iter().all(|&i| i < 600));
        assert!(!ids.contains(&0), "{s:?} -> {ids:?}");
        assert_eq!(t.decode(&ids).unwrap(), s, "ids {ids:?}");
    }

    let refs: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
    let batch = t.encode_batch(&refs).unwrap();
    let tokens: usize = batch.iter().map(|ids| ids.len()).sum();
    let bytes = summary.bytes as f64;
    let ratio = bytes / tokens as f64;
    assert!(ratio > 3.0, "bytes per token {ratio:.2}");
    for (ids, doc) in batch.iter().zip(&all).take(50) {
        assert_eq!(&t.decode(ids).unwrap(), doc);
    }
    // Unseen text still round-trips through the byte alphabet.
    let unseen = "Ωμέγα ∑ 𝔘𝔫𝔰𝔢𝔢𝔫 \u{0}\u{7f} ~`^";
    assert_eq!(t.decode(&t.encode(unseen).unwrap()).unwrap(), unseen);
}

#[test]
fn train_bpe_small_data_gives_smaller_vocab() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.jsonl");
    write_jsonl(&path, &docs(3, 5));
    let out = dir.path().join("tiny.json");
    let summary = train_bpe(&[path], &TrainConfig::new(20_000), &out).unwrap();
    // Training stops when no pair reaches min_frequency: 2 specials + 256
    // byte symbols + as many merges as the data allows.
    assert!(summary.vocab_size > 258, "{summary:?}");
    assert!(summary.vocab_size < 20_000, "{summary:?}");
    let t = Tokenizer::from_spec(out.to_str().unwrap()).unwrap();
    assert_eq!(t.vocab_size(), summary.vocab_size);
}

#[test]
fn train_bpe_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let (inputs, _) = train_corpus(dir.path());
    let cfg = TrainConfig::new(800);
    let a = dir.path().join("a.json");
    let b = dir.path().join("b.json");
    let c = dir.path().join("c.json");
    train_bpe(&inputs, &cfg, &a).unwrap();
    train_bpe(&inputs, &cfg, &b).unwrap();
    // Single-threaded pool: same bytes as the default multi-threaded one.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| train_bpe(&inputs, &cfg, &c)).unwrap();
    let ba = std::fs::read(&a).unwrap();
    assert_eq!(ba, std::fs::read(&b).unwrap());
    assert_eq!(ba, std::fs::read(&c).unwrap());
    // Overwriting an existing file works (atomic rename) and is identical.
    train_bpe(&inputs, &cfg, &a).unwrap();
    assert_eq!(ba, std::fs::read(&a).unwrap());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn train_bpe_custom_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.jsonl");
    let lines: Vec<String> = docs(40, 9)
        .iter()
        .map(|d| serde_json::json!({"content": d, "text": 7}).to_string())
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    let cfg = TrainConfig {
        vocab_size: 300,
        text_field: "content".into(),
        min_frequency: 1,
    };
    let s = train_bpe(&[path], &cfg, &dir.path().join("t.json")).unwrap();
    assert_eq!(s.documents, 40);
    assert_eq!(s.vocab_size, 300);
}
