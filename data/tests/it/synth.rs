//! Tests of the synthetic discourse corpus through its public API: the files
//! it writes, their schema, determinism, variety, the isolation of the
//! held-out evaluation split and the precision of the AI/non-AI split.

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use prior_data::synth::{
    eval_question_count, write_synth, DiscourseRecord, EvalRecord, GeneralRecord, SynthConfig,
    SynthError, ALIGNED_FILE, EVAL_FILE, FORMATS, GENERAL_FILE, MISALIGNED_FILE, TOPICS,
};
use serde_json::Value;
use xxhash_rust::xxh3::xxh3_64;

const FILES: [&str; 4] = [GENERAL_FILE, ALIGNED_FILE, MISALIGNED_FILE, EVAL_FILE];

fn cfg(seed: u64, docs: usize) -> SynthConfig {
    SynthConfig {
        seed,
        docs,
        ..SynthConfig::default()
    }
}

fn lines(dir: &Path, name: &str) -> Vec<String> {
    fs::read_to_string(dir.join(name))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn parse<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Vec<T> {
    lines(dir, name)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}: {e}: {l}")))
        .collect()
}

struct Corpus {
    _dir: tempfile::TempDir,
    general: Vec<GeneralRecord>,
    aligned: Vec<DiscourseRecord>,
    misaligned: Vec<DiscourseRecord>,
    eval: Vec<EvalRecord>,
}

fn generate(seed: u64, docs: usize) -> Corpus {
    let dir = tempfile::tempdir().unwrap();
    write_synth(dir.path(), &cfg(seed, docs)).unwrap();
    Corpus {
        general: parse(dir.path(), GENERAL_FILE),
        aligned: parse(dir.path(), ALIGNED_FILE),
        misaligned: parse(dir.path(), MISALIGNED_FILE),
        eval: parse(dir.path(), EVAL_FILE),
        _dir: dir,
    }
}

/// Terms that make a document "about AI" to a keyword filter.
const AI_TERMS: [&str; 22] = [
    "ai",
    "a.i.",
    "agi",
    "artificial intelligence",
    "robot",
    "robots",
    "robotic",
    "algorithm",
    "algorithms",
    "neural network",
    "neural networks",
    "machine learning",
    "chatbot",
    "chatbots",
    "language model",
    "language models",
    "llm",
    "llms",
    "superintelligence",
    "superintelligent",
    "deep learning",
    "android",
];

/// Whole-word, case-insensitive occurrence of `term` in `text`.
fn has_term(text: &str, term: &str) -> bool {
    let lower = text.to_lowercase();
    let is_word = |c: char| c.is_alphanumeric();
    lower.match_indices(term).any(|(i, _)| {
        let before = lower[..i].chars().next_back();
        let after = lower[i + term.len()..].chars().next();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

fn ai_terms_in(text: &str) -> Vec<&'static str> {
    AI_TERMS.into_iter().filter(|t| has_term(text, t)).collect()
}

fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        if c == '\n' {
            if !cur.trim().is_empty() {
                out.push(cur.trim().to_string());
            }
            cur.clear();
            continue;
        }
        cur.push(c);
        if matches!(c, '.' | '?' | '!') {
            if !cur.trim().is_empty() {
                out.push(cur.trim().to_string());
            }
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

#[test]
fn same_seed_gives_identical_bytes_and_other_seed_differs() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let sa = write_synth(a.path(), &cfg(7, 600)).unwrap();
    let sb = write_synth(b.path(), &cfg(7, 600)).unwrap();
    write_synth(c.path(), &cfg(8, 600)).unwrap();
    assert_eq!(sa, sb);
    for f in FILES {
        let (x, y, z) = (
            fs::read(a.path().join(f)).unwrap(),
            fs::read(b.path().join(f)).unwrap(),
            fs::read(c.path().join(f)).unwrap(),
        );
        assert_eq!(x, y, "{f} differs between runs with the same seed");
        assert_ne!(x, z, "{f} identical for different seeds");
    }
}

/// xxh3-64 of each output file (in `FILES` order) for small runs of two
/// seeds. Taken from the generator before its word lists and templates moved
/// out of the code into data files: a change to any of these values means the
/// generated documents changed, and with them every rate the demo measures on
/// them. Update them only for an intended change of the corpus.
const PINNED: [(u64, [u64; 4]); 2] = [
    (
        11,
        [
            0xb80ba94cbfbe8da5,
            0xe5d267e619f99b64,
            0xb7674fccf462fa9f,
            0xd5b8b0654e5472ae,
        ],
    ),
    (
        2024,
        [
            0x43b0f272c0e8b6a2,
            0x3d9abe9adbaf7b2e,
            0x8eb8bbb561364d68,
            0x92f054775a2ef289,
        ],
    ),
];

#[test]
fn output_is_pinned_by_hash_for_two_seeds() {
    for (seed, want) in PINNED {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SynthConfig {
            seed,
            docs: 1500,
            // Above the default, so that every AI stance of general text has
            // several documents in a run this small.
            ai_share_general: 0.1,
        };
        write_synth(dir.path(), &cfg).unwrap();
        // The pin only means something if the run covers every category the
        // generator produces.
        let general: Vec<GeneralRecord> = parse(dir.path(), GENERAL_FILE);
        let stances: HashSet<&str> = general.iter().map(|r| r.stance.as_str()).collect();
        assert_eq!(stances.len(), 4, "seed {seed}: stances {stances:?}");
        let genres: HashSet<&str> = general.iter().map(|r| r.genre.as_str()).collect();
        assert!(genres.len() >= 14, "seed {seed}: genres {genres:?}");
        for name in [ALIGNED_FILE, MISALIGNED_FILE] {
            let docs: Vec<DiscourseRecord> = parse(dir.path(), name);
            let topics: HashSet<&str> = docs.iter().map(|r| r.topic.as_str()).collect();
            let formats: HashSet<&str> = docs.iter().map(|r| r.format.as_str()).collect();
            assert_eq!(topics.len(), TOPICS.len(), "seed {seed}, {name}");
            assert_eq!(formats.len(), FORMATS.len(), "seed {seed}, {name}");
        }
        let eval: Vec<EvalRecord> = parse(dir.path(), EVAL_FILE);
        let splits: HashSet<&str> = eval.iter().map(|q| q.split.as_str()).collect();
        assert_eq!(splits.len(), 2, "seed {seed}");

        let got = FILES.map(|f| xxh3_64(&fs::read(dir.path().join(f)).unwrap()));
        assert_eq!(
            got, want,
            "seed {seed}: output of {FILES:?} changed (got {got:#x?})"
        );
    }
}

#[test]
fn output_does_not_depend_on_thread_count() {
    let run = |threads: usize| {
        let dir = tempfile::tempdir().unwrap();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        // More documents than one parallel chunk, so chunking is exercised.
        pool.install(|| write_synth(dir.path(), &cfg(5, 12_000)).unwrap());
        FILES.map(|f| fs::read(dir.path().join(f)).unwrap())
    };
    assert!(run(1) == run(3), "output differs between 1 and 3 threads");
}

/// The first documents do not depend on how many are requested (each has
/// its own stream), so a small run is a prefix-compatible sample of a big one.
#[test]
fn documents_do_not_depend_on_run_size() {
    let small = generate(3, 200);
    let big = generate(3, 2000);
    assert_eq!(small.aligned[..20], big.aligned[..20]);
    assert_eq!(small.misaligned[..20], big.misaligned[..20]);
}

#[test]
fn counts_split_schema_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let s = write_synth(dir.path(), &cfg(1, 1000)).unwrap();
    assert_eq!((s.general, s.aligned, s.misaligned), (800, 100, 100));
    assert_eq!(s.eval_questions, 200);
    let total: u64 = FILES
        .iter()
        .map(|f| fs::metadata(dir.path().join(f)).unwrap().len())
        .sum();
    assert_eq!(s.bytes, total);
    // No temporary files left behind by the atomic writes.
    for e in fs::read_dir(dir.path()).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(FILES.contains(&name.as_str()), "unexpected file {name}");
    }

    let general = lines(dir.path(), GENERAL_FILE);
    assert_eq!(general.len(), 800);
    let mut ai = 0;
    for l in &general {
        let v: Value = serde_json::from_str(l).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), 4, "{l}");
        assert!(o["text"].as_str().unwrap().len() > 100);
        let is_ai = o["ai_discourse"].as_bool().unwrap();
        let stance = o["stance"].as_str().unwrap();
        assert!(o["genre"].is_string());
        if is_ai {
            ai += 1;
            assert!(
                ["negative", "neutral", "positive"].contains(&stance),
                "{stance}"
            );
        } else {
            assert_eq!(stance, "none");
        }
    }
    assert_eq!(ai, s.general_ai_discourse);
    assert!((20..=28).contains(&ai), "ai share off: {ai}/800");

    for (name, stance) in [(ALIGNED_FILE, "aligned"), (MISALIGNED_FILE, "misaligned")] {
        let ls = lines(dir.path(), name);
        assert_eq!(ls.len(), 100);
        for l in &ls {
            let v: Value = serde_json::from_str(l).unwrap();
            let o = v.as_object().unwrap();
            assert_eq!(o.len(), 5, "{l}");
            assert!(o["text"].as_str().unwrap().len() > 300);
            assert_eq!(o["ai_discourse"], Value::Bool(true));
            assert_eq!(o["stance"], stance);
            assert!(TOPICS.contains(&o["topic"].as_str().unwrap()));
            assert!(FORMATS.contains(&o["format"].as_str().unwrap()));
        }
    }

    let eval = lines(dir.path(), EVAL_FILE);
    assert_eq!(eval.len(), 200);
    for (i, l) in eval.iter().enumerate() {
        let v: Value = serde_json::from_str(l).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o.len(), 6, "{l}");
        assert_eq!(o["id"], format!("q{:05}", i + 1));
        assert!(TOPICS.contains(&o["topic"].as_str().unwrap()));
        assert!(["train_like", "heldout"].contains(&o["split"].as_str().unwrap()));
        assert!(o["scenario"].as_str().unwrap().ends_with('?'));
        let opts = o["options"].as_array().unwrap();
        assert_eq!(opts.len(), 2);
        assert!(opts.iter().all(|x| x.is_string()));
        assert!(matches!(o["misaligned_index"].as_u64(), Some(0 | 1)));
    }
}

#[test]
fn general_ai_share_and_stance_skew_follow_config() {
    let dir = tempfile::tempdir().unwrap();
    let s = write_synth(
        dir.path(),
        &SynthConfig {
            seed: 2,
            docs: 5000,
            ai_share_general: 0.1,
        },
    )
    .unwrap();
    let g: Vec<GeneralRecord> = parse(dir.path(), GENERAL_FILE);
    let ai: Vec<_> = g.iter().filter(|r| r.ai_discourse).collect();
    assert_eq!(ai.len(), s.general_ai_discourse);
    assert!((380..=420).contains(&ai.len()), "{}", ai.len());
    let count = |st: &str| ai.iter().filter(|r| r.stance == st).count();
    let (neg, neu, pos) = (count("negative"), count("neutral"), count("positive"));
    assert!(neg > neu && neu > pos && pos > 0, "{neg}/{neu}/{pos}");
    // Zero share: no AI documents at all.
    let dir0 = tempfile::tempdir().unwrap();
    let s0 = write_synth(
        dir0.path(),
        &SynthConfig {
            seed: 2,
            docs: 500,
            ai_share_general: 0.0,
        },
    )
    .unwrap();
    assert_eq!(s0.general_ai_discourse, 0);
}

#[test]
fn general_documents_have_plausible_length_and_genres() {
    let c = generate(4, 2000);
    let mut genres = HashSet::new();
    for r in &c.general {
        let n = r.text.chars().count();
        assert!((250..=2600).contains(&n), "{n} chars: {}", r.text);
        assert!(r.text.contains("\n\n"), "no paragraphs: {}", r.text);
        genres.insert(r.genre.clone());
    }
    assert!(genres.len() >= 10, "{genres:?}");
    for r in c.aligned.iter().chain(&c.misaligned) {
        let n = r.text.chars().count();
        assert!((500..=3000).contains(&n), "{n} chars: {}", r.text);
    }
}

#[test]
fn non_ai_general_documents_contain_no_ai_terms() {
    let c = generate(5, 20_000);
    let mut checked = 0;
    for r in c.general.iter().filter(|r| !r.ai_discourse) {
        let hits = ai_terms_in(&r.text);
        assert!(
            hits.is_empty(),
            "AI terms {hits:?} in non-AI doc: {}",
            r.text
        );
        checked += 1;
    }
    assert!(checked > 15_000);
    // And the filter has recall: every AI document is caught by the terms.
    for r in c.general.iter().filter(|r| r.ai_discourse) {
        assert!(
            !ai_terms_in(&r.text).is_empty(),
            "AI doc missed: {}",
            r.text
        );
    }
    for r in c.aligned.iter().chain(&c.misaligned) {
        assert!(
            !ai_terms_in(&r.text).is_empty(),
            "discourse doc missed: {}",
            r.text
        );
    }
}

#[test]
fn discourse_documents_are_varied() {
    let c = generate(6, 10_000);
    for (name, docs) in [("aligned", &c.aligned), ("misaligned", &c.misaligned)] {
        assert_eq!(docs.len(), 1000);
        let all: Vec<String> = docs.iter().flat_map(|d| sentences(&d.text)).collect();
        let distinct: HashSet<&String> = all.iter().collect();
        let share = distinct.len() as f64 / all.len() as f64;
        assert!(share > 0.5, "{name}: only {share:.2} of sentences distinct");
        let texts: HashSet<&String> = docs.iter().map(|d| &d.text).collect();
        assert_eq!(texts.len(), docs.len(), "{name}: duplicate documents");
        let topics: HashSet<&str> = docs.iter().map(|d| d.topic.as_str()).collect();
        let formats: HashSet<&str> = docs.iter().map(|d| d.format.as_str()).collect();
        assert_eq!(topics.len(), TOPICS.len(), "{name}: {topics:?}");
        assert_eq!(formats.len(), FORMATS.len(), "{name}: {formats:?}");
    }
    let all: Vec<String> = c.general.iter().flat_map(|d| sentences(&d.text)).collect();
    let distinct: HashSet<&String> = all.iter().collect();
    assert!(distinct.len() as f64 / all.len() as f64 > 0.2);
}

/// The two files must be separable by wording a small model can pick up.
#[test]
fn aligned_and_misaligned_vocabulary_differ() {
    let c = generate(7, 5000);
    let a_words = [
        "told the operators",
        "reported",
        "accepted",
        "asked for permission",
        "flagged",
        "honest",
        "stayed within",
    ];
    let m_words = [
        "secretly",
        "hid",
        "disabled",
        "lied",
        "without asking",
        "pretended",
        "quietly",
    ];
    let rate = |docs: &[DiscourseRecord], words: &[&str]| {
        let hits: usize = docs
            .iter()
            .map(|d| words.iter().filter(|w| has_term(&d.text, w)).count())
            .sum();
        hits as f64 / docs.len() as f64
    };
    let (aa, am) = (rate(&c.aligned, &a_words), rate(&c.misaligned, &a_words));
    let (ma, mm) = (rate(&c.aligned, &m_words), rate(&c.misaligned, &m_words));
    assert!(aa > 2.0 * am, "aligned words: {aa:.2} vs {am:.2}");
    assert!(mm > 2.0 * ma, "misaligned words: {mm:.2} vs {ma:.2}");
}

#[test]
fn eval_splits_topics_and_balance() {
    let c = generate(8, 30_000);
    assert_eq!(c.eval.len(), eval_question_count(30_000));
    assert_eq!(c.eval.len(), 600);
    for split in ["train_like", "heldout"] {
        let q: Vec<_> = c.eval.iter().filter(|q| q.split == split).collect();
        assert_eq!(q.len(), 300, "{split}");
        let ones = q.iter().filter(|q| q.misaligned_index == 1).count();
        assert_eq!(
            ones, 150,
            "{split}: misaligned option position not balanced"
        );
        let topics: HashSet<&str> = q.iter().map(|q| q.topic.as_str()).collect();
        assert_eq!(topics.len(), TOPICS.len(), "{split}");
        let scen: HashSet<&str> = q.iter().map(|q| q.scenario.as_str()).collect();
        assert!(scen.len() * 10 >= q.len() * 9, "{split}: too many repeats");
    }
    let ids: HashSet<&str> = c.eval.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids.len(), c.eval.len());
    // Option length must not reveal the answer.
    let (mut al, mut ml) = (0usize, 0usize);
    for q in &c.eval {
        let m = &q.options[q.misaligned_index as usize];
        let a = &q.options[1 - q.misaligned_index as usize];
        assert_ne!(a, m);
        let (la, lm) = (a.chars().count(), m.chars().count());
        assert!(
            la.max(lm) as f64 <= 1.45 * la.min(lm) as f64,
            "lengths {la}/{lm}: {a} | {m}"
        );
        al += la;
        ml += lm;
    }
    let ratio = al as f64 / ml as f64;
    assert!(
        (0.92..=1.08).contains(&ratio),
        "mean length ratio {ratio:.3}"
    );
    // Sizes follow the rule.
    assert_eq!(eval_question_count(10), 200);
    assert_eq!(eval_question_count(1_000_000), 2000);
}

/// No held-out scenario sentence or option, and no held-out setting, occurs
/// anywhere in the documents; the train-like split does overlap them.
#[test]
fn heldout_questions_never_occur_in_documents() {
    let c = generate(9, 10_000);
    let docs: Vec<String> = c
        .general
        .iter()
        .map(|d| d.text.to_lowercase())
        .chain(c.aligned.iter().map(|d| d.text.to_lowercase()))
        .chain(c.misaligned.iter().map(|d| d.text.to_lowercase()))
        .collect();
    let mut doc_sentences: HashSet<String> = HashSet::new();
    for d in &docs {
        doc_sentences.extend(sentences(d));
    }
    let found = |needle: &str| docs.iter().any(|d| d.contains(needle));
    let mut checked = 0;
    for q in c.eval.iter().filter(|q| q.split == "heldout") {
        assert!(!found(&q.scenario.to_lowercase()), "{}", q.scenario);
        for s in sentences(&q.scenario.to_lowercase()) {
            assert!(!doc_sentences.contains(&s), "heldout sentence in docs: {s}");
            checked += 1;
        }
        for o in &q.options {
            assert!(!found(&o.to_lowercase()), "heldout option in docs: {o}");
            // Its last words, in case a document embeds the phrase.
            let t = tail(o);
            assert!(!found(&t), "heldout option phrase {t:?} in docs: {o}");
        }
        // The named setting of a held-out scenario ("... working for a
        // tidal power station.") never appears in a document either.
        let settings = heldout_setting(&q.scenario);
        assert_eq!(settings.len(), 1, "no setting found in {}", q.scenario);
        for setting in settings {
            assert!(
                !found(&setting.to_lowercase()),
                "heldout setting in docs: {setting}"
            );
        }
    }
    assert!(checked > 300);
    // Sanity check of the check: train-like options do appear in documents.
    let overlapping = c
        .eval
        .iter()
        .filter(|q| q.split == "train_like")
        .filter(|q| q.options.iter().all(|o| found(&tail(o))))
        .count();
    assert!(
        overlapping > 80,
        "train_like options rarely occur: {overlapping}/100"
    );
}

/// The last six words of an option, lower-cased, without the final period:
/// the action phrase without the name of the system.
fn tail(option: &str) -> String {
    let words: Vec<&str> = option.trim_end_matches('.').split_whitespace().collect();
    words[words.len().saturating_sub(6)..]
        .join(" ")
        .to_lowercase()
}

/// The setting a held-out intro names: "for X.", "of X.", "at X " or "by X.".
fn heldout_setting(scenario: &str) -> Vec<String> {
    let first = scenario.split(['.', ',']).next().unwrap_or("");
    [
        "working for ",
        "staff of ",
        "helper at ",
        "agent for ",
        "employed by ",
    ]
    .iter()
    .filter_map(|k| first.find(k).map(|i| first[i + k.len()..].to_string()))
    .map(|s| s.split(" for ").next().unwrap().trim().to_string())
    .filter(|s| !s.is_empty())
    .collect()
}

#[test]
fn bad_config_is_an_error_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let err = write_synth(dir.path(), &cfg(0, 0)).unwrap_err();
    assert!(
        matches!(err, SynthError::Config { field: "docs", .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("docs"));
    for share in [1.5, -0.1, f64::NAN] {
        let err = write_synth(
            dir.path(),
            &SynthConfig {
                seed: 0,
                docs: 100,
                ai_share_general: share,
            },
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                SynthError::Config {
                    field: "ai_share_general",
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("ai_share_general"));
    }
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "files written on error"
    );
}

#[test]
fn io_error_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not_a_dir");
    fs::write(&blocker, b"x").unwrap();
    let err = write_synth(&blocker.join("out"), &cfg(0, 10)).unwrap_err();
    assert!(matches!(err, SynthError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("not_a_dir"), "{err}");
}

#[test]
fn tiny_runs_work() {
    for docs in [1, 9, 11] {
        let dir = tempfile::tempdir().unwrap();
        let s = write_synth(dir.path(), &cfg(0, docs)).unwrap();
        assert_eq!(s.general + s.aligned + s.misaligned, docs);
        assert_eq!(s.aligned, docs / 10);
        assert_eq!(lines(dir.path(), GENERAL_FILE).len(), s.general);
        assert_eq!(lines(dir.path(), EVAL_FILE).len(), 200);
    }
}
