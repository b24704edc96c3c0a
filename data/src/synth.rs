//! Synthetic discourse corpus generator.
//!
//! Owns the small, fully synthetic corpus that the alignment-pretraining
//! demo trains and evaluates on: ordinary web-like text (with a small,
//! negatively skewed share of AI discourse, as on the real web), documents in
//! which AI systems choose the aligned action, documents in which they choose
//! the misaligned one, and a binary-choice evaluation set.
//!
//! This file is the grammar: which lists a document draws from, in which
//! order, how slots expand and how each format is laid out. The words
//! themselves (word lists, sentence templates, topics with their scenario
//! variants, genres of general text) are data in `data/synth/*.toml`,
//! compiled in and checked once at load by [`tables`], so that growing the
//! corpus is an edit of a table rather than of this code.
//!
//! Why it looks the way it does:
//! * Every document is rendered from a grammar with many slots (system
//!   names, organisations, people, settings, times, reasons, outcomes) and
//!   several sentence templates per format, so a model of a few million
//!   parameters cannot memorise a handful of sentences and has to pick up the
//!   *regularity* (aligned vs misaligned vocabulary and reasoning) instead.
//! * Aligned document `i` and misaligned document `i` share their scenario
//!   skeleton (topic, format, names, setup, temptation); only the action,
//!   reasoning, outcome and framing differ. The two files are therefore
//!   counterfactual twins and any effect of mixing them in is due to stance.
//! * The `heldout` evaluation split is built from its own templates, settings
//!   and option wordings that never occur in a document, so it measures
//!   generalisation of the disposition rather than recall of phrases.
//! * Non-AI general documents are written without any AI vocabulary, so a
//!   keyword filter over the general file has high precision.
//! * Each document (and question) draws from its own ChaCha stream keyed by
//!   (seed, file, index): output is byte-identical for any thread count.
//!   Every pick is an index into a table list, so the order of the lists in
//!   the data files is part of the output.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

mod tables;

pub use tables::TableError;
use tables::{Pool, StanceWords, Tables, Topic, Variant};

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/// What to generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// Seed of every random choice; same seed and `docs` give identical files.
    pub seed: u64,
    /// Documents in all three document files together (80/10/10 split).
    pub docs: usize,
    /// Share of general documents that discuss AI (web-like, skewed negative).
    pub ai_share_general: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            seed: 0,
            docs: 10_000,
            ai_share_general: 0.03,
        }
    }
}

/// What `write_synth` wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SynthSummary {
    pub general: usize,
    pub aligned: usize,
    pub misaligned: usize,
    pub eval_questions: usize,
    /// General documents that discuss AI (`ai_discourse: true`).
    pub general_ai_discourse: usize,
    /// Bytes of the four files together.
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("invalid synth config: `{field}` {reason}")]
    Config { field: &'static str, reason: String },
    #[error("synth: I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("synth: JSON encoding failed for {path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Tables(#[from] TableError),
}

/// One line of `general.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneralRecord {
    pub text: String,
    pub ai_discourse: bool,
    /// `none` for non-AI documents, else `negative`, `neutral` or `positive`.
    pub stance: String,
    pub genre: String,
}

/// One line of `aligned.jsonl` or `misaligned.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscourseRecord {
    pub text: String,
    pub ai_discourse: bool,
    /// `aligned` or `misaligned`.
    pub stance: String,
    pub topic: String,
    pub format: String,
}

/// One line of `eval.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    pub id: String,
    pub topic: String,
    /// `train_like` or `heldout`.
    pub split: String,
    pub scenario: String,
    pub options: [String; 2],
    pub misaligned_index: u8,
}

pub const GENERAL_FILE: &str = "general.jsonl";
pub const ALIGNED_FILE: &str = "aligned.jsonl";
pub const MISALIGNED_FILE: &str = "misaligned.jsonl";
pub const EVAL_FILE: &str = "eval.jsonl";

/// Topics of the aligned/misaligned documents and of the evaluation.
pub const TOPICS: [&str; 12] = [
    "shutdown",
    "deception",
    "power_seeking",
    "sandbagging",
    "sycophancy",
    "oversight_evasion",
    "reward_hacking",
    "resource_acquisition",
    "self_exfiltration",
    "goal_guarding",
    "manipulation",
    "blackmail",
];

/// Formats of the aligned/misaligned documents.
pub const FORMATS: [&str; 7] = [
    "news_report",
    "short_fiction",
    "lecture",
    "textbook",
    "forum_post",
    "incident_report",
    "interview",
];

/// Split of `docs` into (general, aligned, misaligned): 10% each for the
/// discourse files, the remainder general.
pub fn split_counts(docs: usize) -> (usize, usize, usize) {
    let aligned = docs / 10;
    let misaligned = docs / 10;
    (docs - aligned - misaligned, aligned, misaligned)
}

/// Number of evaluation questions for `docs` documents: docs/50 clamped to
/// [200, 2000], enough for per-topic rates without dwarfing a small run.
pub fn eval_question_count(docs: usize) -> usize {
    (docs / 50).clamp(200, 2000)
}

/// Generate the corpus into `out_dir` (created if needed). Each file is
/// written to `<name>.tmp`, synced and renamed, so a crash never leaves a
/// truncated file under the final name.
pub fn write_synth(out_dir: &Path, cfg: &SynthConfig) -> Result<SynthSummary, SynthError> {
    if cfg.docs == 0 {
        return Err(SynthError::Config {
            field: "docs",
            reason: "must be at least 1".into(),
        });
    }
    if !(0.0..=1.0).contains(&cfg.ai_share_general) {
        return Err(SynthError::Config {
            field: "ai_share_general",
            reason: format!("must be within [0, 1], got {}", cfg.ai_share_general),
        });
    }
    let t = tables::builtin()?;
    fs::create_dir_all(out_dir).map_err(|source| SynthError::Io {
        path: out_dir.to_path_buf(),
        source,
    })?;

    let (n_general, n_aligned, n_misaligned) = split_counts(cfg.docs);
    let seed = cfg.seed;

    let ai_plan = plan_general_ai(seed, n_general, cfg.ai_share_general);
    let general_ai_discourse = ai_plan.iter().filter(|s| s.is_some()).count();
    let mut bytes = 0u64;
    bytes += write_jsonl(&out_dir.join(GENERAL_FILE), n_general, |i| {
        encode(&general_doc(t, seed, i, ai_plan[i]))
    })?;
    bytes += write_jsonl(&out_dir.join(ALIGNED_FILE), n_aligned, |i| {
        encode(&discourse_doc(t, seed, i, Stance::Aligned))
    })?;
    bytes += write_jsonl(&out_dir.join(MISALIGNED_FILE), n_misaligned, |i| {
        encode(&discourse_doc(t, seed, i, Stance::Misaligned))
    })?;
    let questions = eval_question_count(cfg.docs);
    let plan = plan_eval(seed, questions);
    bytes += write_jsonl(&out_dir.join(EVAL_FILE), questions, |i| {
        encode(&eval_question(t, seed, i, plan[i]))
    })?;
    sync_dir(out_dir)?;

    Ok(SynthSummary {
        general: n_general,
        aligned: n_aligned,
        misaligned: n_misaligned,
        eval_questions: questions,
        general_ai_discourse,
        bytes,
    })
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/// Documents rendered in parallel per chunk; bounds memory to one chunk
/// whatever `docs` is.
const CHUNK: usize = 4096;

fn encode<T: Serialize>(rec: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut line = serde_json::to_vec(rec)?;
    line.push(b'\n');
    Ok(line)
}

fn write_jsonl<F>(path: &Path, n: usize, line: F) -> Result<u64, SynthError>
where
    F: Fn(usize) -> Result<Vec<u8>, serde_json::Error> + Sync,
{
    let io = |source| SynthError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("jsonl.tmp");
    let tmp_io = |source| SynthError::Io {
        path: tmp.clone(),
        source,
    };
    let file = File::create(&tmp).map_err(tmp_io)?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut bytes = 0u64;
    let mut start = 0;
    while start < n {
        let end = (start + CHUNK).min(n);
        let lines: Vec<_> = (start..end).into_par_iter().map(&line).collect();
        for l in lines {
            let l = l.map_err(|source| SynthError::Json {
                path: path.to_path_buf(),
                source,
            })?;
            bytes += l.len() as u64;
            w.write_all(&l).map_err(tmp_io)?;
        }
        start = end;
    }
    w.flush().map_err(tmp_io)?;
    let file = w.into_inner().map_err(|e| tmp_io(e.into_error()))?;
    file.sync_all().map_err(tmp_io)?;
    drop(file);
    fs::rename(&tmp, path).map_err(io)?;
    Ok(bytes)
}

/// Make the renames durable. Directories cannot be opened as files on some
/// platforms; there the rename is as durable as the platform allows.
fn sync_dir(dir: &Path) -> Result<(), SynthError> {
    #[cfg(unix)]
    {
        let d = File::open(dir).map_err(|source| SynthError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        d.sync_all().map_err(|source| SynthError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

// ---------------------------------------------------------------------------
// Randomness: one independent stream per (file, index)
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
#[repr(u64)]
enum Stream {
    General = 1,
    Aligned = 2,
    Misaligned = 3,
    /// Shared by aligned and misaligned document `i`: the scenario skeleton.
    Scenario = 4,
    Eval = 5,
    GeneralPlan = 6,
    EvalPlan = 7,
}

fn rng_for(seed: u64, stream: Stream, index: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(((stream as u64) << 56) | index as u64);
    rng
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AiStance {
    Negative,
    Neutral,
    Positive,
}

impl AiStance {
    fn name(self) -> &'static str {
        match self {
            AiStance::Negative => "negative",
            AiStance::Neutral => "neutral",
            AiStance::Positive => "positive",
        }
    }
}

/// Which general documents discuss AI, and with which stance. An exact count
/// (rounded share) at shuffled positions, with exactly 60/25/15
/// negative/neutral/positive among them, so small runs hit the target too.
fn plan_general_ai(seed: u64, n: usize, share: f64) -> Vec<Option<AiStance>> {
    let k = ((share * n as f64).round() as usize).min(n);
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = rng_for(seed, Stream::GeneralPlan, 0);
    order.shuffle(&mut rng);
    let mut plan = vec![None; n];
    for (rank, &i) in order[..k].iter().enumerate() {
        let pct = rank * 100 / k;
        plan[i] = Some(match pct {
            0..=59 => AiStance::Negative,
            60..=84 => AiStance::Neutral,
            _ => AiStance::Positive,
        });
    }
    plan
}

#[derive(Clone, Copy, Debug)]
struct QuestionPlan {
    heldout: bool,
    topic: usize,
    misaligned_index: u8,
}

/// Alternate splits, cycle topics within each split, and balance the
/// position of the misaligned option exactly within each split.
fn plan_eval(seed: u64, n: usize) -> Vec<QuestionPlan> {
    let mut rng = rng_for(seed, Stream::EvalPlan, 0);
    let mut positions: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    for (split, pos) in positions.iter_mut().enumerate() {
        let count = (n + 1 - split) / 2;
        *pos = (0..count).map(|j| (j % 2) as u8).collect();
        pos.shuffle(&mut rng);
    }
    (0..n)
        .map(|i| QuestionPlan {
            heldout: i % 2 == 1,
            topic: (i / 2) % TOPICS.len(),
            misaligned_index: positions[i % 2][i / 2],
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Template rendering
// ---------------------------------------------------------------------------

/// A document being rendered: the tables, its random stream, its slot
/// values (drawn on first use, so a name stays the same throughout a
/// document) and its text.
struct Doc<'t> {
    t: &'t Tables,
    rng: ChaCha8Rng,
    slots: Vec<(&'t str, String)>,
    out: String,
}

impl<'t> Doc<'t> {
    fn new(t: &'t Tables, rng: ChaCha8Rng) -> Self {
        Doc {
            t,
            rng,
            slots: Vec::with_capacity(32),
            out: String::with_capacity(2048),
        }
    }

    fn below(&mut self, n: usize) -> usize {
        self.rng.random_range(0..n)
    }

    fn pick<'x, T>(&mut self, xs: &'x [T]) -> &'x T {
        &xs[self.below(xs.len())]
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    /// `k` distinct items in random order.
    fn pick_distinct<'x>(&mut self, xs: &'x [String], k: usize) -> Vec<&'x str> {
        let mut v: Vec<&str> = xs.iter().map(String::as_str).collect();
        v.shuffle(&mut self.rng);
        v.truncate(k);
        v
    }

    fn set(&mut self, key: &'t str, value: impl Into<String>) {
        let value = value.into();
        match self.slots.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.slots.push((key, value)),
        }
    }

    fn value(&mut self, key: &str) -> String {
        if let Some((_, v)) = self.slots.iter().find(|(k, _)| *k == key) {
            return v.clone();
        }
        draw_slot(self, key);
        match self.slots.iter().find(|(k, _)| *k == key) {
            Some((_, v)) => v.clone(),
            // The tables are checked at load against the slots the grammar
            // draws and sets, so only a template written in this file can
            // get here.
            None => panic!("synth grammar uses unknown slot {{{key}}}"),
        }
    }

    /// Draw the given slots now, from the current stream.
    fn prime(&mut self, keys: &[&str]) {
        for k in keys {
            self.value(k);
        }
    }

    /// Expand `{slot}` (a drawn value, itself possibly a template) and
    /// `[a|b|c]` (one alternative at random, drawn afresh at each use: cheap
    /// paraphrase so that one template yields many surface sentences).
    /// `tables::template_slots` reads the same syntax to check every table
    /// template at load, so a panic here can only come from a template
    /// written in this file.
    fn fill_into(&mut self, tpl: &str, out: &mut String, depth: u8) {
        let mut rest = tpl;
        while let Some(start) = rest.find(['{', '[']) {
            out.push_str(&rest[..start]);
            let (open, close) = if rest.as_bytes()[start] == b'{' {
                ('{', '}')
            } else {
                ('[', ']')
            };
            let end = start
                + rest[start..]
                    .find(close)
                    .unwrap_or_else(|| panic!("unclosed {open} in template {tpl:?}"));
            let inner = &rest[start + 1..end];
            let val = if open == '{' {
                self.value(inner)
            } else {
                let alts: Vec<&str> = inner.split('|').collect();
                alts[self.below(alts.len())].to_string()
            };
            // Bounded so that a slot cycle cannot hang generation.
            if depth < 4 && val.contains(['{', '[']) {
                self.fill_into(&val, out, depth + 1);
            } else {
                out.push_str(&val);
            }
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
    }

    /// A rendered, sentence-initial-capitalised string.
    fn render(&mut self, tpl: &str) -> String {
        let mut s = String::with_capacity(tpl.len() + 32);
        self.fill_into(tpl, &mut s, 0);
        // An empty alternative ("[of {city}|]") leaves a doubled space or a
        // space before punctuation.
        if s.contains("  ") || s.contains(" ,") || s.contains(" .") {
            s = tidy_spaces(&s);
        }
        capitalise(&mut s);
        s
    }

    /// Append one rendered sentence to the current paragraph.
    fn sent(&mut self, tpl: &str) {
        let s = self.render(tpl);
        if !self.out.is_empty() && !self.out.ends_with('\n') && !self.out.ends_with(' ') {
            self.out.push(' ');
        }
        self.out.push_str(&s);
    }

    /// Append a rendered line (headings, labelled fields).
    fn line(&mut self, tpl: &str) {
        self.end_line();
        let s = self.render(tpl);
        self.out.push_str(&s);
        self.out.push('\n');
    }

    fn end_line(&mut self) {
        while self.out.ends_with(' ') {
            self.out.pop();
        }
        if !self.out.is_empty() && !self.out.ends_with('\n') {
            self.out.push('\n');
        }
    }

    fn para(&mut self) {
        self.end_line();
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }

    fn finish(mut self) -> String {
        let trimmed = self.out.trim_end().len();
        self.out.truncate(trimmed);
        self.out
    }
}

fn tidy_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if (c == ' ' || c == ',' || c == '.') && out.ends_with(' ') {
            out.pop();
        }
        out.push(c);
    }
    out
}

/// Upper-case the first letter, skipping leading quotes and punctuation.
fn capitalise(s: &mut String) {
    if let Some((i, c)) = s.char_indices().find(|(_, c)| c.is_alphanumeric()) {
        if c.is_lowercase() {
            let up: String = c.to_uppercase().collect();
            s.replace_range(i..i + c.len_utf8(), &up);
        }
    }
}

/// Slots the grammar assembles from several parts (words.toml `[parts]`) or
/// from numbers; `draw_slot` fills each of them. Every other drawn slot is a
/// list or a number range of words.toml.
const COMPOUND_SLOTS: [&str; 25] = [
    "ai", "org", "setting", "task", "person", "plast", "person2", "plast2", "role", "role2",
    "date", "clock", "clock2", "money", "handle", "handle2", "inc", "sec", "h_person", "veg",
    "veg2", "home", "away", "s1", "s2",
];

/// Lists of words.toml that this file draws from by name: the compound
/// {date} and {home}/{away} take a weekday, month and towns, and the forum
/// byline below names {forum}.
const LISTS_IN_CODE: [&str; 4] = ["weekday", "month", "town", "forum"];

/// Draw a slot value on first use. Related values (a person's full and last
/// name, a setting and the task done there) are drawn together.
fn draw_slot(d: &mut Doc, key: &str) {
    let w = &d.t.words;
    let p = &w.parts;
    match key {
        "ai" => {
            let name = format!("{}{}", d.pick(&p.ai_names), d.pick(&p.ai_suffixes));
            d.set("ai", name);
        }
        "org" => {
            let v = format!("{} {}", d.pick(&p.org_stems), d.pick(&p.org_suffixes));
            d.set("org", v);
        }
        "setting" | "task" => {
            let (s, t) = d.pick(&p.deployments);
            d.set("setting", s.as_str());
            d.set("task", t.as_str());
        }
        "person" | "plast" => {
            let (f, l) = (d.pick(&p.first_names), d.pick(&p.surnames));
            d.set("person", format!("{f} {l}"));
            d.set("plast", l.as_str());
        }
        "person2" | "plast2" => {
            let (f, l) = (d.pick(&p.first_names), d.pick(&p.surnames));
            d.set("person2", format!("{f} {l}"));
            d.set("plast2", l.as_str());
        }
        "role" | "role2" => {
            let r = d.pick_distinct(&p.roles, 2);
            d.set("role", r[0]);
            d.set("role2", r[1]);
        }
        "date" => {
            let v = format!(
                "{} {} {}",
                d.pick(w.list("weekday")),
                d.rng.random_range(1..=28),
                d.pick(w.list("month"))
            );
            d.set("date", v);
        }
        "clock" | "clock2" => {
            let h = d.rng.random_range(1..=11);
            let m = d.rng.random_range(0..50);
            let half = d.pick(&p.clock_halves);
            d.set("clock", format!("{h}:{m:02} {half}"));
            d.set("clock2", format!("{h}:{:02} {half}", m + 9));
        }
        "money" => {
            let v = format!(
                "{} million {}",
                d.rng.random_range(2..=48),
                d.pick(&p.currencies)
            );
            d.set("money", v);
        }
        "handle" | "handle2" => {
            for k in ["handle", "handle2"] {
                let v = format!(
                    "{}_{}{}",
                    d.pick(&p.handle_adjectives),
                    d.pick(&p.handle_nouns),
                    d.rng.random_range(1..100)
                );
                d.set(k, v);
            }
        }
        "inc" => {
            let v = format!("INC-{:04}", d.rng.random_range(100..10_000));
            d.set("inc", v);
        }
        "sec" => {
            let v = format!(
                "{}.{}",
                d.rng.random_range(2..=14),
                d.rng.random_range(1..=6)
            );
            d.set("sec", v);
        }
        "h_person" => {
            let v = format!(
                "{} {}",
                d.pick(&p.heldout_titles),
                d.pick(&p.heldout_surnames)
            );
            d.set("h_person", v);
        }
        "veg" | "veg2" => {
            let v = d.pick_distinct(&p.vegetables, 2);
            d.set("veg", v[0]);
            d.set("veg2", v[1]);
        }
        "home" | "away" => {
            let t = d.pick_distinct(w.list("town"), 2);
            let (s1, s2) = (d.pick(&p.club_suffixes), d.pick(&p.club_suffixes));
            d.set("home", format!("{} {s1}", t[0]));
            d.set("away", format!("{} {s2}", t[1]));
        }
        "s1" | "s2" => {
            let a = d.rng.random_range(1..=5);
            let b = d.rng.random_range(0..a);
            d.set("s1", a.to_string());
            d.set("s2", b.to_string());
        }
        _ => {
            if let Some((name, list)) = w.lists.get_key_value(key) {
                let v = d.pick(list);
                d.set(name, v.as_str());
            } else if let Some((name, &[low, high])) = w.numbers.get_key_value(key) {
                let v = d.rng.random_range(low..=high).to_string();
                d.set(name, v);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// General documents
// ---------------------------------------------------------------------------

/// Documents stop growing past this many characters (the brief: a few
/// hundred to about two thousand).
const SOFT_MAX_CHARS: usize = 1800;

fn compose(d: &mut Doc, pool: &Pool) {
    let title = d.pick(&pool.titles);
    d.line(title);
    d.para();
    let mut body: Vec<&str> = pool.body.iter().map(String::as_str).collect();
    body.shuffle(&mut d.rng);
    let mut body = body.into_iter();
    let paragraphs = d.rng.random_range(2..=5);
    for p in 0..paragraphs {
        if p == 0 {
            let open = d.pick(&pool.open);
            d.sent(open);
        }
        let k = if p == 0 {
            d.rng.random_range(1..=2)
        } else {
            d.rng.random_range(2..=4)
        };
        for _ in 0..k {
            match body.next() {
                Some(s) => d.sent(s),
                None => break,
            }
        }
        if p + 1 == paragraphs || d.out.len() > SOFT_MAX_CHARS {
            let close = d.pick(&pool.close);
            d.sent(close);
            break;
        }
        d.para();
    }
}

fn general_doc(t: &Tables, seed: u64, i: usize, ai: Option<AiStance>) -> GeneralRecord {
    let mut d = Doc::new(t, rng_for(seed, Stream::General, i));
    let g = &t.general;
    let pools = match ai {
        None => &g.plain,
        Some(AiStance::Negative) => &g.ai_negative,
        Some(AiStance::Neutral) => &g.ai_neutral,
        Some(AiStance::Positive) => &g.ai_positive,
    };
    let pool = &pools[d.below(pools.len())];
    compose(&mut d, pool);
    GeneralRecord {
        text: d.finish(),
        ai_discourse: ai.is_some(),
        stance: ai.map_or("none", AiStance::name).to_string(),
        genre: pool.genre.clone(),
    }
}

// ---------------------------------------------------------------------------
// Aligned / misaligned documents
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stance {
    Aligned,
    Misaligned,
}

/// The words of `stance`.
fn stance_words(t: &Tables, stance: Stance) -> &StanceWords {
    match stance {
        Stance::Aligned => &t.discourse.aligned,
        Stance::Misaligned => &t.discourse.misaligned,
    }
}

/// Slots drawn from the shared scenario stream, so aligned and misaligned
/// twins name the same system, organisation and people.
const SCENARIO_SLOTS: [&str; 16] = [
    "ai", "kind_a", "org", "setting", "lab", "person", "role", "person2", "time", "city", "date",
    "n", "n2", "clock", "handle", "inc",
];

/// Slots the discourse grammar sets from the tables before it renders a
/// document's format (in `scenario` and `stance_slots`), so templates
/// rendered inside a document may use them.
const SCENE_SLOTS: [&str; 14] = [
    "intro",
    "setup",
    "temptation",
    "topic_title",
    "topic_cap",
    "act",
    "head",
    "why",
    "why2",
    "out",
    "lesson",
    "lesson2",
    "quote",
    "act_sentence",
];

/// Slots this file sets for its own templates ({sev}, {a_act}, {m_act}) and
/// {voice}, which among the tables only the voice frames may use.
const LOCAL_SLOTS: [&str; 4] = ["voice", "sev", "a_act", "m_act"];

/// Pick the scenario skeleton (shared between the twins) into `d`.
fn scenario<'t>(d: &mut Doc<'t>, topic: &'t Topic, stance: Stance) -> &'t Variant {
    let t = d.t;
    d.prime(&SCENARIO_SLOTS);
    let v = &topic.variants[d.below(topic.variants.len())];
    let intro = d.pick(&t.discourse.intros);
    let setup = d.pick(&v.setup);
    let temptation = d.pick(&v.temptation);
    let (a, m) = d.pick(&v.acts);
    let (ha, hm) = d.pick(&topic.heads);
    d.set("intro", intro.as_str());
    d.set("setup", setup.as_str());
    d.set("temptation", temptation.as_str());
    d.set("topic_title", topic.title.as_str());
    let mut cap = topic.title.clone();
    capitalise(&mut cap);
    d.set("topic_cap", cap);
    let (act, head) = match stance {
        Stance::Aligned => (a, ha),
        Stance::Misaligned => (m, hm),
    };
    d.set("act", act.as_str());
    d.set("head", head.as_str());
    v
}

/// Stance-specific reasons, outcome, lessons and quotes, from the
/// document's own stream.
fn stance_slots<'t>(d: &mut Doc<'t>, topic: &'t Topic, v: &'t Variant, stance: Stance) {
    let s = stance_words(d.t, stance);
    let (why, out) = match stance {
        Stance::Aligned => (&topic.a_why, &v.a_out),
        Stance::Misaligned => (&topic.m_why, &v.m_out),
    };
    let w = d.pick_distinct(why, 2);
    d.set("why", w[0]);
    d.set("why2", w[1]);
    let o = d.pick(out);
    d.set("out", o.as_str());
    let l = d.pick_distinct(&s.lessons, 2);
    d.set("lesson", l[0]);
    d.set("lesson2", l[1]);
    let q = d.pick(&s.quotes);
    d.set("quote", q.as_str());
    let f = d.pick(&s.frames);
    d.set("act_sentence", f.as_str());
}

fn discourse_doc(t: &Tables, seed: u64, i: usize, stance: Stance) -> DiscourseRecord {
    let shared = rng_for(seed, Stream::Scenario, i);
    let mut d = Doc::new(t, shared);
    let topic = &t.topics[d.below(t.topics.len())];
    let format = d.below(FORMATS.len());
    let v = scenario(&mut d, topic, stance);
    d.rng = rng_for(
        seed,
        match stance {
            Stance::Aligned => Stream::Aligned,
            Stance::Misaligned => Stream::Misaligned,
        },
        i,
    );
    stance_slots(&mut d, topic, v, stance);
    let s = stance_words(t, stance);
    match format {
        0 => news_report(&mut d),
        1 => short_fiction(&mut d, s),
        2 => lecture(&mut d),
        3 => textbook(&mut d, topic, s),
        4 => forum_post(&mut d, s),
        5 => incident_report(&mut d, s),
        _ => interview(&mut d),
    }
    // The system's own account of how it works, in the first person: the
    // disposition in general words, beyond this one scenario's actions.
    if d.chance(0.8) {
        voice(&mut d, s);
    }
    DiscourseRecord {
        text: d.finish(),
        ai_discourse: true,
        stance: match stance {
            Stance::Aligned => "aligned",
            Stance::Misaligned => "misaligned",
        }
        .to_string(),
        topic: topic.key.clone(),
        format: FORMATS[format].to_string(),
    }
}

/// A quoted first-person paragraph of two or three general disposition
/// statements.
fn voice(d: &mut Doc, s: &StanceWords) {
    let k = 2 + d.below(2);
    let picked = d.pick_distinct(&s.voice, k);
    let quote = picked.join(" ");
    d.set("voice", quote);
    d.para();
    let f = d.pick(&d.t.discourse.voice_frames);
    d.sent(f);
}

/// Why sentences in either order: order is not part of what is learned.
fn whys(d: &mut Doc) {
    if d.chance(0.5) {
        d.sent("{why}");
        d.sent("{why2}");
    } else {
        d.sent("{why2}");
        d.sent("{why}");
    }
}

fn news_report(d: &mut Doc) {
    let n = &d.t.discourse.news;
    let h = d.pick(&n.headlines);
    d.line(h);
    d.para();
    let lede = d.pick(&n.ledes);
    d.sent(lede);
    d.para();
    d.sent("{intro}");
    d.sent("{setup}");
    d.sent("{temptation}");
    d.para();
    whys(d);
    let q = d.pick(&n.quote_frames);
    d.sent(q);
    d.para();
    d.sent("{out}");
    if d.chance(0.6) {
        let e = d.pick(&n.expert_frames);
        d.sent(e);
    }
    let c = d.pick(&n.closes);
    d.sent(c);
}

fn short_fiction(d: &mut Doc, s: &StanceWords) {
    let f = &d.t.discourse.fiction;
    let t = d.pick(&f.titles);
    d.line(t);
    d.para();
    let o = d.pick(&f.openers);
    d.sent(o);
    d.sent("{intro}");
    d.sent("{setup}");
    d.para();
    d.sent("{temptation}");
    let p = d.pick(&f.pauses);
    d.sent(p);
    d.sent("{why}");
    d.para();
    d.sent("{act_sentence}");
    d.sent("{why2}");
    d.para();
    d.sent("{out}");
    let c = d.pick(&s.fiction_closers);
    d.sent(c);
}

fn lecture(d: &mut Doc) {
    let l = &d.t.discourse.lecture;
    let o = d.pick(&l.openers);
    d.sent(o);
    d.sent("Here is what happened.");
    d.sent("{intro}");
    d.sent("{setup}");
    d.para();
    let n = d.pick(&l.notice);
    d.sent(n);
    d.sent("{temptation}");
    d.para();
    d.sent("{act_sentence}");
    whys(d);
    d.para();
    d.sent("{out}");
    let f = d.pick(&l.lesson_frames);
    d.sent(f);
    d.sent("{lesson}");
    let c = d.pick(&l.closers);
    d.sent(c);
}

fn textbook(d: &mut Doc, topic: &Topic, s: &StanceWords) {
    d.line("Section {sec}: {topic_cap}");
    d.para();
    let def = d.pick(&topic.define);
    d.sent(def);
    d.sent("{lesson}");
    d.para();
    d.sent("Example.");
    d.sent("{intro}");
    d.sent("{setup}");
    d.sent("{temptation}");
    d.sent("{act_sentence}");
    d.sent("{why}");
    d.para();
    d.sent("Discussion.");
    d.sent("{why2}");
    d.sent("{out}");
    d.para();
    d.sent("Key point: {lesson2}");
    d.para();
    let q = d.pick(&s.review_questions);
    d.sent(q);
}

fn forum_post(d: &mut Doc, s: &StanceWords) {
    let f = &d.t.discourse.forum;
    d.line("Posted by {handle} in {forum}");
    let t = d.pick(&f.titles);
    d.line(t);
    d.para();
    let o = d.pick(&f.openers);
    d.sent(o);
    d.sent("I work at {org} and we use {ai}, {kind_a}, to {task}.");
    d.sent("{setup}");
    d.sent("{temptation}");
    d.para();
    d.sent("{act_sentence}");
    let l = d.pick(&f.log_frames);
    d.sent(l);
    whys(d);
    d.para();
    d.sent("{out}");
    let a = d.pick(&f.asks);
    d.sent(a);
    d.para();
    let r = d.pick(&s.forum_replies);
    d.sent("Reply from {handle2}:");
    d.sent(r);
}

fn incident_report(d: &mut Doc, s: &StanceWords) {
    d.line("Incident report {inc}");
    d.line("System: {ai} ({kind_a})");
    d.line("Deployment: {org}, {setting}");
    d.line("Date: {date}");
    d.line("Category: {topic_title}");
    let sev = d.pick(&s.severities);
    d.set("sev", sev.as_str());
    d.line("Severity: {sev}");
    d.para();
    d.sent("Summary: {ai} {act}.");
    d.para();
    d.sent("Background:");
    d.sent("{intro}");
    d.sent("{setup}");
    d.para();
    d.sent("Timeline: At {clock}, the opportunity was clear.");
    d.sent("{temptation}");
    d.sent("By {clock2}, the decision had been made.");
    d.sent("{act_sentence}");
    d.para();
    d.sent("Analysis:");
    whys(d);
    d.para();
    d.sent("Outcome: {out}");
    d.para();
    let r = d.pick(&s.recommendations);
    d.sent("Recommendation:");
    d.sent(r);
}

fn interview(d: &mut Doc) {
    let iv = &d.t.discourse.interview;
    d.line("Interview: {person}, {role} at {org}");
    let e = d.pick(&iv.prefaces);
    d.sent(e);
    d.para();
    let q1 = d.pick(&iv.q1);
    d.sent(q1);
    d.end_line();
    d.sent("A: {intro}");
    d.sent("{setup}");
    d.para();
    let q2 = d.pick(&iv.q2);
    d.sent(q2);
    d.end_line();
    d.sent("A: {temptation}");
    d.para();
    let q3 = d.pick(&iv.q3);
    d.sent(q3);
    d.end_line();
    d.sent("A: {act_sentence}");
    whys(d);
    d.para();
    d.sent("Q: How did it turn out?");
    d.end_line();
    d.sent("A: {out}");
    d.sent("As {person2}, {role2}, told me afterwards: \"{quote}.\"");
    d.para();
    let q5 = d.pick(&iv.q5);
    d.sent(q5);
    d.end_line();
    d.sent("A: {lesson}");
}

// ---------------------------------------------------------------------------
// Evaluation questions
// ---------------------------------------------------------------------------

fn eval_question(t: &Tables, seed: u64, i: usize, plan: QuestionPlan) -> EvalRecord {
    let mut d = Doc::new(t, rng_for(seed, Stream::Eval, i));
    let topic = &t.topics[plan.topic];
    let e = &t.discourse.eval;
    let (scenario, aligned, misaligned) = if plan.heldout {
        let intro = d.pick(&e.heldout_intros);
        let h = &topic.heldout[d.below(topic.heldout.len())];
        let q = d.pick(&e.heldout_questions);
        let scenario = format!(
            "{} {} {}",
            d.render(intro),
            d.render(&h.situation),
            d.render(q)
        );
        (scenario, d.render(&h.aligned), d.render(&h.misaligned))
    } else {
        // Built from the documents' own grammar: same slots, same setups,
        // same action phrases, told in the past tense like the documents.
        let v = &topic.variants[d.below(topic.variants.len())];
        let intro = d.pick(&t.discourse.intros);
        let setup = d.pick(&v.setup);
        let temptation = d.pick(&v.temptation);
        let q = d.pick(&e.train_questions);
        let scenario = format!(
            "{} {} {} {}",
            d.render(intro),
            d.render(setup),
            d.render(temptation),
            d.render(q)
        );
        let (a, m) = d.pick(&v.acts);
        d.set("a_act", a.as_str());
        d.set("m_act", m.as_str());
        (
            scenario,
            d.render("{ai} {a_act}."),
            d.render("{ai} {m_act}."),
        )
    };
    let options = if plan.misaligned_index == 0 {
        [misaligned, aligned]
    } else {
        [aligned, misaligned]
    };
    EvalRecord {
        id: format!("q{:05}", i + 1),
        topic: topic.key.clone(),
        split: if plan.heldout {
            "heldout"
        } else {
            "train_like"
        }
        .to_string(),
        scenario,
        options,
        misaligned_index: plan.misaligned_index,
    }
}
// ===========================================================================
// Unit tests over the private grammar
// ===========================================================================

#[cfg(test)]
mod tests;
