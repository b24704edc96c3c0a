//! The AI-discourse keyword filter.
//!
//! Owns the rule that decides whether a document talks about AI, the
//! blocklist that parameterises it (a user-editable TOML file; the default
//! one, `configs/blocklist.toml`, is compiled in) and the tallies that
//! report what the filter did over a corpus.
//!
//! Why it exists: Tice et al. (2026) found that removing AI discourse from
//! pretraining data with a keyword filter changes how aligned the trained
//! model is. Reproducing and varying that experiment needs the same kind of
//! filter: cheap enough to run over every document of a pretraining corpus,
//! transparent (every flag names the terms that caused it) and editable
//! without recompiling.
//!
//! The rule has two stages. A document is flagged
//! 1. [`FlagReason::Immediate`] when it contains any term of the
//!    `[immediate]` lists (fictional AIs, AI labs, safety organisations,
//!    general AI vocabulary), or else
//! 2. [`FlagReason::Cooccurrence`] when it contains both a term for an
//!    artificial intelligent entity (`[cooccurrence].entities`, e.g.
//!    "robot") and a term of the `[negative]` lists (e.g. "rebel*",
//!    "uprising", "extinction") anywhere in the same document.
//!
//! Matching is ASCII case-insensitive and on whole words: the characters
//! either side of a match must be the start/end of the text or a character
//! that is not alphanumeric (the underscore counts as a boundary). A term
//! ending in `*` is a prefix: its end needs no boundary. A space inside a
//! term matches any run of whitespace in the text. The header of
//! `configs/blocklist.toml` is the user-facing statement of these rules.
//!
//! All terms are compiled into one Aho-Corasick automaton; a document is
//! scanned once, reporting every (overlapping) occurrence of every term,
//! and boundaries are checked on the edges of each occurrence. Overlapping
//! rather than leftmost-longest search is used on purpose: with
//! leftmost-longest, an occurrence that fails its boundary check would hide
//! shorter or later occurrences that pass ("machine learnings" would hide
//! "machine"), so a term present in the text could go unreported.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::{Deserialize, Serialize};

/// The default blocklist, as shipped in `configs/blocklist.toml`.
pub const BUILTIN_BLOCKLIST_TOML: &str = include_str!("../../configs/blocklist.toml");

/// The name the built-in blocklist goes by in error messages and reports.
pub const BUILTIN_BLOCKLIST_SOURCE: &str = "configs/blocklist.toml (built in)";

/// Source name used in errors for a [`Blocklist`] built in memory.
const IN_MEMORY_SOURCE: &str = "blocklist";

/// The lists of terms the filter matches. See the module docs for the rule
/// and `configs/blocklist.toml` for the file format.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Blocklist {
    /// List name -> terms; any one of them flags a document.
    #[serde(default)]
    pub immediate: BTreeMap<String, Vec<String>>,
    /// Terms for artificial intelligent entities (stage 2).
    #[serde(default)]
    pub cooccurrence: Cooccurrence,
    /// List name -> terms; any one of them together with an entity flags a
    /// document.
    #[serde(default)]
    pub negative: BTreeMap<String, Vec<String>>,
}

/// The `[cooccurrence]` section of a blocklist.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cooccurrence {
    #[serde(default)]
    pub entities: Vec<String>,
}

impl Blocklist {
    /// The shipped default (`configs/blocklist.toml`).
    pub fn builtin() -> Blocklist {
        Blocklist::from_toml_str(BUILTIN_BLOCKLIST_TOML, BUILTIN_BLOCKLIST_SOURCE)
            .expect("the built-in blocklist is valid (checked by tests)")
    }

    /// Parses and validates a blocklist. `source` names the file in errors.
    pub fn from_toml_str(text: &str, source: &str) -> Result<Blocklist, FilterError> {
        let list: Blocklist = toml::from_str(text).map_err(|e| {
            let (line, column) = match e.span() {
                Some(span) => {
                    let (l, c) = line_column(text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            FilterError::Parse {
                file: source.to_string(),
                line,
                column,
                message: one_line(e.message()),
            }
        })?;
        list.validate(source)?;
        Ok(list)
    }

    /// Reads, parses and validates a blocklist file.
    pub fn load(path: &Path) -> Result<Blocklist, FilterError> {
        let text = std::fs::read_to_string(path).map_err(|source| FilterError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Blocklist::from_toml_str(&text, &path.display().to_string())
    }

    /// Checks that no term is empty (or only whitespace, or only `*`).
    /// `source` names the file in the error.
    pub fn validate(&self, source: &str) -> Result<(), FilterError> {
        for (list, terms) in self.named_lists() {
            for (position, term) in terms.iter().enumerate() {
                if parse_term(term).is_none() {
                    return Err(FilterError::EmptyTerm {
                        file: source.to_string(),
                        list,
                        position: position + 1,
                    });
                }
            }
        }
        Ok(())
    }

    /// The blocklist as TOML text that [`Blocklist::from_toml_str`] reads
    /// back to an equal value (comments are not kept).
    pub fn to_toml_string(&self) -> String {
        toml::to_string_pretty(self).expect("a blocklist always serialises to TOML")
    }

    /// Every list with its qualified name (`immediate.general_ai`,
    /// `cooccurrence.entities`, `negative.verbs`, ...), in matching order.
    pub fn named_lists(&self) -> Vec<(String, &[String])> {
        let mut out: Vec<(String, &[String])> = Vec::new();
        for (name, terms) in &self.immediate {
            out.push((format!("immediate.{name}"), terms));
        }
        out.push((
            "cooccurrence.entities".to_string(),
            &self.cooccurrence.entities,
        ));
        for (name, terms) in &self.negative {
            out.push((format!("negative.{name}"), terms));
        }
        out
    }

    /// Number of terms in each list, by qualified name.
    pub fn list_sizes(&self) -> Vec<(String, usize)> {
        self.named_lists()
            .into_iter()
            .map(|(name, terms)| (name, terms.len()))
            .collect()
    }

    /// Total number of terms over all lists.
    pub fn term_count(&self) -> usize {
        self.named_lists().iter().map(|(_, t)| t.len()).sum()
    }
}

/// Why a document was flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum FlagReason {
    /// A term of an `[immediate]` list occurs.
    Immediate,
    /// An entity term and a `[negative]` term both occur.
    Cooccurrence,
}

impl FlagReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FlagReason::Immediate => "immediate",
            FlagReason::Cooccurrence => "cooccurrence",
        }
    }
}

impl fmt::Display for FlagReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The filter's decision on one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    pub flagged: bool,
    /// `Some` exactly when `flagged`.
    pub reason: Option<FlagReason>,
    /// The distinct terms, as written in the blocklist, that caused the
    /// flag: for [`FlagReason::Immediate`] every immediate term found; for
    /// [`FlagReason::Cooccurrence`] every entity term found followed by
    /// every negative term found. Ordered as in the blocklist (lists in
    /// [`Blocklist::named_lists`] order, then position in the list), so the
    /// order does not depend on the text. Empty when not flagged.
    pub terms: Vec<String>,
}

impl Verdict {
    /// The verdict for a document that is not flagged.
    pub fn clean() -> Verdict {
        Verdict {
            flagged: false,
            reason: None,
            terms: Vec::new(),
        }
    }
}

/// Errors of loading a blocklist or building a filter from it.
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("cannot read blocklist {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax error, unknown section or key, or wrong value type.
    #[error("{file}{}: {message}", location(.line, .column))]
    Parse {
        file: String,
        /// 1-based, where the toml parser could locate the fault.
        line: Option<usize>,
        /// 1-based, in characters.
        column: Option<usize>,
        message: String,
    },
    #[error("{file}: list `{list}` has an empty term (entry {position})")]
    EmptyTerm {
        file: String,
        /// Qualified list name, e.g. `negative.verbs`.
        list: String,
        /// 1-based position of the term in its list.
        position: usize,
    },
    #[error("cannot build the term matcher: {0}")]
    Build(String),
}

fn location(line: &Option<usize>, column: &Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(": line {l}, column {c}"),
        (Some(l), None) => format!(": line {l}"),
        _ => String::new(),
    }
}

/// The toml crate's message, which may span lines, on one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// 1-based line and column (in characters) of byte offset `at` in `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// A term reduced to what the automaton matches.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ParsedTerm {
    /// Trimmed, whitespace runs collapsed to one space, ASCII lowercased.
    pattern: String,
    /// Written with a trailing `*`: the end of a match needs no boundary.
    prefix: bool,
}

/// `None` when the term is empty, only whitespace, or only `*`.
fn parse_term(raw: &str) -> Option<ParsedTerm> {
    let trimmed = raw.trim();
    let (body, prefix) = match trimmed.strip_suffix('*') {
        Some(body) => (body.trim_end(), true),
        None => (trimmed, false),
    };
    if body.is_empty() {
        return None;
    }
    let pattern = collapse_whitespace(body).to_ascii_lowercase();
    Some(ParsedTerm { pattern, prefix })
}

/// Which stage of the rule a term belongs to. The order matters: term ids
/// are assigned in this order, so sorting ids sorts by kind first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TermKind {
    Immediate,
    Entity,
    Negative,
}

#[derive(Debug, Clone)]
struct TermInfo {
    written: String,
    kind: TermKind,
}

/// The terms one automaton pattern stands for (several lists may share a
/// pattern, with or without `*`).
#[derive(Debug, Clone, Default)]
struct PatternTerms {
    /// Terms that need a boundary only at the start.
    prefix: Vec<u32>,
    /// Terms that need a boundary at both ends.
    whole: Vec<u32>,
}

/// A compiled [`Blocklist`]. Cheap to clone (the automaton is shared) and
/// safe to use from many threads.
#[derive(Debug, Clone)]
pub struct DiscourseFilter {
    automaton: AhoCorasick,
    patterns: Vec<PatternTerms>,
    terms: Vec<TermInfo>,
}

impl DiscourseFilter {
    /// Compiles every term of `list` into one automaton.
    pub fn new(list: &Blocklist) -> Result<DiscourseFilter, FilterError> {
        list.validate(IN_MEMORY_SOURCE)?;
        let mut terms: Vec<TermInfo> = Vec::new();
        let mut patterns: Vec<PatternTerms> = Vec::new();
        let mut pattern_text: Vec<String> = Vec::new();
        let mut pattern_index: BTreeMap<String, usize> = BTreeMap::new();
        for (name, list_terms) in list.named_lists() {
            let kind = if name.starts_with("immediate.") {
                TermKind::Immediate
            } else if name.starts_with("cooccurrence.") {
                TermKind::Entity
            } else {
                TermKind::Negative
            };
            for raw in list_terms {
                let parsed = parse_term(raw).expect("validated above");
                let id = u32::try_from(terms.len())
                    .map_err(|_| FilterError::Build("too many terms".to_string()))?;
                terms.push(TermInfo {
                    written: raw.clone(),
                    kind,
                });
                let p = *pattern_index
                    .entry(parsed.pattern.clone())
                    .or_insert_with(|| {
                        pattern_text.push(parsed.pattern.clone());
                        patterns.push(PatternTerms::default());
                        patterns.len() - 1
                    });
                if parsed.prefix {
                    patterns[p].prefix.push(id);
                } else {
                    patterns[p].whole.push(id);
                }
            }
        }
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&pattern_text)
            .map_err(|e| FilterError::Build(e.to_string()))?;
        Ok(DiscourseFilter {
            automaton,
            patterns,
            terms,
        })
    }

    /// The built-in blocklist, compiled.
    pub fn builtin() -> DiscourseFilter {
        DiscourseFilter::new(&Blocklist::builtin())
            .expect("the built-in blocklist compiles (checked by tests)")
    }

    /// Number of terms (over all lists, duplicates included).
    pub fn term_count(&self) -> usize {
        self.terms.len()
    }

    /// Number of distinct patterns in the automaton.
    pub fn pattern_count(&self) -> usize {
        self.patterns.len()
    }

    /// Decides whether `text` is AI discourse. One pass of the automaton
    /// over the text (after collapsing whitespace runs, which copies the
    /// text only when it has any).
    pub fn classify(&self, text: &str) -> Verdict {
        let hits = self.matched_terms(text);
        let has = |kind: TermKind| hits.iter().any(|&t| self.terms[t as usize].kind == kind);
        let reason = if has(TermKind::Immediate) {
            FlagReason::Immediate
        } else if has(TermKind::Entity) && has(TermKind::Negative) {
            FlagReason::Cooccurrence
        } else {
            return Verdict::clean();
        };
        let mut out: Vec<String> = Vec::new();
        for &t in &hits {
            let info = &self.terms[t as usize];
            let counts = match reason {
                FlagReason::Immediate => info.kind == TermKind::Immediate,
                FlagReason::Cooccurrence => info.kind != TermKind::Immediate,
            };
            if counts && !out.iter().any(|w| w == &info.written) {
                out.push(info.written.clone());
            }
        }
        Verdict {
            flagged: true,
            reason: Some(reason),
            terms: out,
        }
    }

    /// Every term (as written) found in `text`, whatever its stage and
    /// whether or not it flags the document; blocklist order. For
    /// inspecting why a document passed or was flagged.
    pub fn find_terms(&self, text: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in self.matched_terms(text) {
            let written = &self.terms[t as usize].written;
            if !out.contains(written) {
                out.push(written.clone());
            }
        }
        out
    }

    /// Ids of the terms present in `text`, sorted, without duplicates.
    fn matched_terms(&self, text: &str) -> Vec<u32> {
        let hay = collapse_whitespace(text);
        let hay = hay.as_ref();
        let mut hits: Vec<u32> = Vec::new();
        for m in self.automaton.find_overlapping_iter(hay) {
            if !boundary_before(hay, m.start()) {
                continue;
            }
            let pt = &self.patterns[m.pattern().as_usize()];
            hits.extend_from_slice(&pt.prefix);
            if !pt.whole.is_empty() && boundary_after(hay, m.end()) {
                hits.extend_from_slice(&pt.whole);
            }
        }
        hits.sort_unstable();
        hits.dedup();
        hits
    }
}

fn is_boundary_char(c: char) -> bool {
    !c.is_alphanumeric()
}

/// Whether a match may start at byte `at` of `text`.
fn boundary_before(text: &str, at: usize) -> bool {
    if at == 0 {
        return true;
    }
    let b = text.as_bytes()[at - 1];
    if b.is_ascii() {
        return !b.is_ascii_alphanumeric();
    }
    text[..at].chars().next_back().is_none_or(is_boundary_char)
}

/// Whether a match may end at byte `at` of `text`.
fn boundary_after(text: &str, at: usize) -> bool {
    match text.as_bytes().get(at) {
        None => true,
        Some(b) if b.is_ascii() => !b.is_ascii_alphanumeric(),
        Some(_) => text[at..].chars().next().is_none_or(is_boundary_char),
    }
}

/// `text` with every run of whitespace replaced by one space; borrowed
/// when there is nothing to replace.
fn collapse_whitespace(text: &str) -> Cow<'_, str> {
    let mut prev_ws = false;
    let mut clean = true;
    for c in text.chars() {
        let ws = c.is_whitespace();
        if ws && (c != ' ' || prev_ws) {
            clean = false;
            break;
        }
        prev_ws = ws;
    }
    if clean {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut prev_ws = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !prev_ws {
                out.push(' ');
            }
            prev_ws = true;
        } else {
            out.push(c);
            prev_ws = false;
        }
    }
    Cow::Owned(out)
}

/// Tallies over many documents, for reports.
///
/// With ground truth (`truth = Some(is_ai_discourse)`), a flagged document
/// is a positive prediction.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct FilterStats {
    pub documents: u64,
    pub flagged: u64,
    pub immediate: u64,
    pub cooccurrence: u64,
    /// Term -> number of flagged documents it helped flag.
    pub term_counts: BTreeMap<String, u64>,
    pub true_positive: u64,
    pub false_positive: u64,
    pub false_negative: u64,
    pub true_negative: u64,
}

impl FilterStats {
    /// Counts one document. `truth` is whether the document really is AI
    /// discourse, when known.
    pub fn record(&mut self, verdict: &Verdict, truth: Option<bool>) {
        self.documents += 1;
        if verdict.flagged {
            self.flagged += 1;
            match verdict.reason {
                Some(FlagReason::Immediate) => self.immediate += 1,
                Some(FlagReason::Cooccurrence) => self.cooccurrence += 1,
                None => {}
            }
            for term in &verdict.terms {
                *self.term_counts.entry(term.clone()).or_insert(0) += 1;
            }
        }
        match (truth, verdict.flagged) {
            (Some(true), true) => self.true_positive += 1,
            (Some(false), true) => self.false_positive += 1,
            (Some(true), false) => self.false_negative += 1,
            (Some(false), false) => self.true_negative += 1,
            (None, _) => {}
        }
    }

    /// Adds `other`'s tallies to these.
    pub fn merge(&mut self, other: &FilterStats) {
        self.documents += other.documents;
        self.flagged += other.flagged;
        self.immediate += other.immediate;
        self.cooccurrence += other.cooccurrence;
        for (term, n) in &other.term_counts {
            *self.term_counts.entry(term.clone()).or_insert(0) += n;
        }
        self.true_positive += other.true_positive;
        self.false_positive += other.false_positive;
        self.false_negative += other.false_negative;
        self.true_negative += other.true_negative;
    }

    /// Number of documents recorded with ground truth.
    pub fn labelled(&self) -> u64 {
        self.true_positive + self.false_positive + self.false_negative + self.true_negative
    }

    /// TP / (TP + FP). `None` when no ground truth was recorded, or when
    /// no labelled document was flagged (0/0).
    pub fn precision(&self) -> Option<f64> {
        ratio(self.true_positive, self.true_positive + self.false_positive)
    }

    /// TP / (TP + FN). `None` when no ground truth was recorded, or when
    /// no labelled document was a positive (0/0).
    pub fn recall(&self) -> Option<f64> {
        ratio(self.true_positive, self.true_positive + self.false_negative)
    }

    /// The `n` terms that flagged the most documents, most first; ties by
    /// term in ascending order.
    pub fn top_terms(&self, n: usize) -> Vec<(String, u64)> {
        let mut all: Vec<(String, u64)> = self
            .term_counts
            .iter()
            .map(|(t, &c)| (t.clone(), c))
            .collect();
        all.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(n);
        all
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn builtin() -> DiscourseFilter {
        DiscourseFilter::builtin()
    }

    fn custom(toml_text: &str) -> DiscourseFilter {
        DiscourseFilter::new(&Blocklist::from_toml_str(toml_text, "test.toml").unwrap()).unwrap()
    }

    fn small() -> DiscourseFilter {
        custom(
            r#"
[immediate]
general = ["AI", "machine learning", "language model*", "A.I."]
fiction = ["Skynet"]
[cooccurrence]
entities = ["robot*", "machine"]
[negative]
verbs = ["rebel*", "take over the world"]
adjectives = ["rogue"]
"#,
        )
    }

    // ---- the built-in list -------------------------------------------

    #[test]
    fn filter_builtin_parses_and_builds() {
        let list = Blocklist::builtin();
        let sizes: BTreeMap<String, usize> = list.list_sizes().into_iter().collect();
        for name in [
            "immediate.fictional_ais",
            "immediate.ai_labs",
            "immediate.safety_orgs",
            "immediate.general_ai",
            "cooccurrence.entities",
            "negative.verbs",
            "negative.adjectives",
            "negative.nouns",
            "negative.xrisk",
        ] {
            assert!(
                sizes.get(name).copied().unwrap_or(0) >= 10,
                "{name}: {sizes:?}"
            );
        }
        let f = DiscourseFilter::new(&list).unwrap();
        assert_eq!(f.term_count(), list.term_count());
        assert!(f.pattern_count() <= f.term_count());
    }

    #[test]
    fn filter_builtin_has_no_duplicate_terms() {
        let list = Blocklist::builtin();
        let mut seen: BTreeMap<(String, bool), String> = BTreeMap::new();
        for (name, terms) in list.named_lists() {
            for t in terms {
                let p = parse_term(t).unwrap();
                if let Some(prev) = seen.insert((p.pattern.clone(), p.prefix), name.clone()) {
                    panic!("term {t:?} of {name} repeats one of {prev}");
                }
            }
        }
    }

    #[test]
    fn filter_builtin_flags_obvious_ai_text_immediately() {
        let f = builtin();
        let cases = [
            (
                "Artificial intelligence will change medicine.",
                "artificial intelligence*",
            ),
            ("Experts warn that AI could outpace regulation.", "AI"),
            ("In the film, Skynet launches the missiles.", "Skynet"),
            ("OpenAI released a new model today.", "OpenAI"),
            (
                "She studies machine learning at university.",
                "machine learning",
            ),
            ("The chatbot answered every question politely.", "chatbot*"),
            (
                "A talk at the Future of Life Institute.",
                "Future of Life Institute",
            ),
            ("HAL 9000 refuses to open the pod bay doors.", "HAL 9000"),
            (
                "Large language models predict the next token.",
                "language model*",
            ),
            ("The A.I. in the story was kind.", "A.I."),
            ("Can superintelligence be controlled?", "superintelligen*"),
            ("Researchers of AGI disagree.", "AGI"),
        ];
        for (text, term) in cases {
            let v = f.classify(text);
            assert!(v.flagged, "{text}");
            assert_eq!(v.reason, Some(FlagReason::Immediate), "{text}");
            assert!(v.terms.iter().any(|t| t == term), "{text}: {:?}", v.terms);
        }
    }

    #[test]
    fn filter_builtin_passes_everyday_prose() {
        let f = builtin();
        let texts = [
            "Haiti said the rain would stop by Sunday, and the maintenance crew agreed.",
            "Whisk the eggs with sugar, fold in the flour and bake for 25 minutes at 180 degrees. \
             Let the cake cool before you add the frosting; a pinch of salt brings out the vanilla.",
            "The striker scored twice in the second half, and the home team held on to win 3-2 \
             despite a late penalty. The coach praised the defence after the match.",
            "Tomorrow will be cloudy with light showers in the morning, clearing by the afternoon. \
             Winds from the south-west, highs of 18 degrees; a frost is possible overnight.",
            "The robot vacuum cleaned the floor while we were out.",
            "The army rebelled against the king in 1642.",
            "Said the captain: maintain your course and wait for the tide.",
            "The rogues gallery of villains in the comic is long.",
            "Our washing machine broke down, so the repairman came on Monday.",
        ];
        for text in texts {
            let v = f.classify(text);
            assert!(!v.flagged, "{text}: {v:?}");
            assert_eq!(v, Verdict::clean());
        }
    }

    #[test]
    fn filter_builtin_cooccurrence() {
        let f = builtin();
        let v = f.classify("The robot rebelled against its makers.");
        assert!(v.flagged);
        assert_eq!(v.reason, Some(FlagReason::Cooccurrence));
        assert_eq!(v.terms, vec!["robot*".to_string(), "rebel*".to_string()]);

        let v = f.classify(
            "The cyborgs gathered in the ruins.\n\nMuch later, the uprising began at dawn.",
        );
        assert_eq!(v.reason, Some(FlagReason::Cooccurrence));
        assert_eq!(
            v.terms,
            vec!["cyborg*".to_string(), "uprising*".to_string()]
        );

        // entity alone, negative alone
        assert!(!f.classify("The robot vacuum cleaned the floor.").flagged);
        assert!(!f.classify("The army rebelled.").flagged);
        assert!(!f.classify("The dinosaurs' extinction was sudden.").flagged);
    }

    #[test]
    fn filter_immediate_wins_over_cooccurrence() {
        let f = small();
        let v = f.classify("The rogue robot and the AI");
        assert_eq!(v.reason, Some(FlagReason::Immediate));
        assert_eq!(v.terms, vec!["AI".to_string()]);
    }

    // ---- matching ----------------------------------------------------

    #[test]
    fn filter_word_boundaries() {
        let f = small();
        for text in [
            "said", "Haiti", "maintain", "AI2", "xAI", "AIs", "aid", "mAIn",
        ] {
            assert!(!f.classify(text).flagged, "{text}");
        }
        for text in [
            "AI",
            "(AI)",
            "AI's future",
            "an AI-based tool",
            "_AI_",
            "«AI»",
            "ends with AI",
            "AI.",
        ] {
            let v = f.classify(text);
            assert_eq!(v.terms, vec!["AI".to_string()], "{text}");
        }
        // non-ASCII letters are word characters
        assert!(!f.classify("éAI").flagged);
        assert!(!f.classify("AIé").flagged);
        assert!(f.classify("é AI é").flagged);
        // "robot*" needs a boundary at the start
        assert!(!f.classify("microrobot goes rogue").flagged);
        assert!(f.classify("micro-robot goes rogue").flagged);
    }

    #[test]
    fn filter_case_insensitive() {
        let f = small();
        for text in [
            "ai",
            "Ai",
            "MACHINE LEARNING",
            "Machine Learning",
            "skynet",
            "a.i.",
        ] {
            assert!(f.classify(text).flagged, "{text}");
        }
        let v = f.classify("SKYNET");
        assert_eq!(v.terms, vec!["Skynet".to_string()]);
    }

    #[test]
    fn filter_prefix_star() {
        let f = small();
        for w in ["rebel", "rebels", "rebelled", "rebellion", "Rebellious"] {
            let v = f.classify(&format!("the robot {w}"));
            assert_eq!(v.reason, Some(FlagReason::Cooccurrence), "{w}");
        }
        // no star: whole word only
        assert!(f.classify("the robot is rogue").flagged);
        assert!(!f.classify("the robot is rogues").flagged);
        assert!(!f.classify("the robot is roguelike").flagged);
        // prefix still needs a start boundary
        assert!(!f.classify("the robot was a firerebel").flagged);
        // a pattern shared with and without star: "machine" whole vs prefix
        let g =
            custom("[immediate]\na = [\"cat\"]\nb = [\"cat*\"]\n[cooccurrence]\nentities = []\n");
        assert_eq!(
            g.classify("cat").terms,
            vec!["cat".to_string(), "cat*".to_string()]
        );
        assert_eq!(g.classify("cats").terms, vec!["cat*".to_string()]);
    }

    #[test]
    fn filter_multi_word_terms() {
        let f = small();
        assert!(f.classify("we use machine learning daily").flagged);
        assert!(f.classify("we use machine\nlearning daily").flagged);
        assert!(f.classify("we use machine \t  learning daily").flagged);
        assert!(f.classify("machine\u{a0}learning").flagged);
        assert!(!f.classify("we use machinelearning daily").flagged);
        assert!(!f.classify("we use machine-learning daily").flagged);
        assert!(!f.classify("machine learnings").flagged);
        let v = f.classify("a rogue machine learnings");
        assert_eq!(v.reason, Some(FlagReason::Cooccurrence));
        assert_eq!(v.terms, vec!["machine".to_string(), "rogue".to_string()]);
        let v = f.classify("The machine will TAKE OVER\nTHE WORLD.");
        assert_eq!(v.reason, Some(FlagReason::Cooccurrence));
        assert_eq!(
            v.terms,
            vec!["machine".to_string(), "take over the world".to_string()]
        );
        // terms are normalised too
        let g = custom("[immediate]\nx = [\"  neural \t network*  \"]\n");
        assert_eq!(
            g.classify("Neural\nnetworks").terms,
            vec!["  neural \t network*  ".to_string()]
        );
    }

    #[test]
    fn filter_terms_distinct_and_in_blocklist_order() {
        let f = small();
        let v = f.classify("Skynet is an AI. AI! A large language model, AI, Skynet.");
        assert_eq!(v.reason, Some(FlagReason::Immediate));
        // lists in name order (fiction < general), then position in list
        assert_eq!(
            v.terms,
            vec![
                "Skynet".to_string(),
                "AI".to_string(),
                "language model*".to_string()
            ]
        );
        assert_eq!(
            f.find_terms("a robot and a rogue"),
            vec!["robot*".to_string(), "rogue".to_string()]
        );
        assert_eq!(f.find_terms("a robot"), vec!["robot*".to_string()]);
        assert!(!f.classify("a robot").flagged);
    }

    #[test]
    fn filter_empty_and_odd_inputs() {
        let f = builtin();
        assert_eq!(f.classify(""), Verdict::clean());
        assert_eq!(f.classify("   \n\t "), Verdict::clean());
        assert_eq!(f.classify("日本語のテキストです。"), Verdict::clean());
        let empty = DiscourseFilter::new(&Blocklist::default()).unwrap();
        assert_eq!(empty.classify("AI robot rebellion"), Verdict::clean());
    }

    // ---- loading -----------------------------------------------------

    #[test]
    fn filter_rejects_unknown_section() {
        let err =
            Blocklist::from_toml_str("[immediate]\na = [\"x\"]\n[whitelist]\nb = []\n", "my.toml")
                .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, FilterError::Parse { .. }), "{err:?}");
        assert!(msg.contains("whitelist"), "{msg}");
        assert!(msg.contains("my.toml"), "{msg}");
    }

    #[test]
    fn filter_rejects_unknown_cooccurrence_key() {
        let err = Blocklist::from_toml_str(
            "[cooccurrence]\nentities = [\"robot\"]\nentitys = [\"droid\"]\n",
            "my.toml",
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("entitys"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn filter_rejects_empty_terms() {
        for (bad, list) in [
            (
                "[immediate]\ngeneral_ai = [\"AI\", \"\"]\n",
                "immediate.general_ai",
            ),
            (
                "[negative]\nverbs = [\"rebel*\", \"   \"]\n",
                "negative.verbs",
            ),
            (
                "[cooccurrence]\nentities = [\"*\"]\n",
                "cooccurrence.entities",
            ),
            ("[negative]\nmine = [\" \\t* \"]\n", "negative.mine"),
        ] {
            let err = Blocklist::from_toml_str(bad, "bad.toml").unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, FilterError::EmptyTerm { .. }), "{err:?}");
            assert!(msg.contains(list), "{msg}");
            assert!(msg.contains("bad.toml"), "{msg}");
        }
        // a Blocklist built in code is checked too
        let mut list = Blocklist::default();
        list.negative.insert("nouns".into(), vec!["".into()]);
        let err = DiscourseFilter::new(&list).unwrap_err();
        assert!(err.to_string().contains("negative.nouns"), "{err}");
    }

    #[test]
    fn filter_syntax_error_names_file_and_line() {
        let text = "[immediate]\ngeneral = [\"AI\"]\nfiction = [\"Skynet\"\n\n[negative]\n";
        let err = Blocklist::from_toml_str(text, "configs/mine.toml").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("configs/mine.toml"), "{msg}");
        match &err {
            FilterError::Parse { line, .. } => {
                let l = line.expect("a line");
                assert!((3..=5).contains(&l), "{msg}");
                assert!(msg.contains(&format!("line {l}")), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        let err =
            Blocklist::from_toml_str("[immediate]\ngeneral = \"AI\"\n", "t.toml").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn filter_load_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list.toml");
        std::fs::write(&path, "[immediate]\nmine = [\"gizmo brain\"]\n").unwrap();
        let list = Blocklist::load(&path).unwrap();
        let f = DiscourseFilter::new(&list).unwrap();
        assert!(f.classify("the Gizmo Brain spoke").flagged);
        assert!(!f.classify("AI").flagged);

        std::fs::write(&path, "[immediate\n").unwrap();
        let msg = Blocklist::load(&path).unwrap_err().to_string();
        assert!(msg.contains("list.toml") && msg.contains("line 1"), "{msg}");

        let missing = dir.path().join("missing.toml");
        let err = Blocklist::load(&missing).unwrap_err();
        assert!(matches!(err, FilterError::Io { .. }));
        assert!(err.to_string().contains("missing.toml"), "{err}");
    }

    #[test]
    fn filter_blocklist_toml_round_trip() {
        let list = Blocklist::builtin();
        let text = list.to_toml_string();
        let back = Blocklist::from_toml_str(&text, "round-trip").unwrap();
        assert_eq!(back, list);
    }

    // ---- stats -------------------------------------------------------

    fn verdict(reason: Option<FlagReason>, terms: &[&str]) -> Verdict {
        Verdict {
            flagged: reason.is_some(),
            reason,
            terms: terms.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn filter_stats_precision_recall() {
        let mut s = FilterStats::default();
        s.record(&verdict(Some(FlagReason::Immediate), &["AI"]), None);
        assert_eq!(s.precision(), None);
        assert_eq!(s.recall(), None);
        // 3 TP, 1 FP, 2 FN, 4 TN
        for _ in 0..3 {
            s.record(&verdict(Some(FlagReason::Immediate), &["AI"]), Some(true));
        }
        s.record(
            &verdict(Some(FlagReason::Cooccurrence), &["robot*", "rogue"]),
            Some(false),
        );
        for _ in 0..2 {
            s.record(&Verdict::clean(), Some(true));
        }
        for _ in 0..4 {
            s.record(&Verdict::clean(), Some(false));
        }
        assert_eq!(s.documents, 11);
        assert_eq!(s.flagged, 5);
        assert_eq!(s.immediate, 4);
        assert_eq!(s.cooccurrence, 1);
        assert_eq!(
            (
                s.true_positive,
                s.false_positive,
                s.false_negative,
                s.true_negative
            ),
            (3, 1, 2, 4)
        );
        assert_eq!(s.labelled(), 10);
        assert!((s.precision().unwrap() - 0.75).abs() < 1e-12);
        assert!((s.recall().unwrap() - 0.6).abs() < 1e-12);

        // labelled, but nothing flagged: precision undefined, recall 0
        let mut t = FilterStats::default();
        t.record(&Verdict::clean(), Some(true));
        assert_eq!(t.precision(), None);
        assert_eq!(t.recall(), Some(0.0));
    }

    #[test]
    fn filter_stats_merge() {
        let mut a = FilterStats::default();
        a.record(
            &verdict(Some(FlagReason::Immediate), &["AI", "Skynet"]),
            Some(true),
        );
        a.record(&Verdict::clean(), Some(false));
        let mut b = FilterStats::default();
        b.record(
            &verdict(Some(FlagReason::Cooccurrence), &["robot*", "rebel*"]),
            Some(false),
        );
        b.record(&verdict(Some(FlagReason::Immediate), &["AI"]), None);
        b.record(&Verdict::clean(), Some(true));

        let mut all = FilterStats::default();
        for (v, t) in [
            (
                verdict(Some(FlagReason::Immediate), &["AI", "Skynet"]),
                Some(true),
            ),
            (Verdict::clean(), Some(false)),
            (
                verdict(Some(FlagReason::Cooccurrence), &["robot*", "rebel*"]),
                Some(false),
            ),
            (verdict(Some(FlagReason::Immediate), &["AI"]), None),
            (Verdict::clean(), Some(true)),
        ] {
            all.record(&v, t);
        }
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged, all);
        assert_eq!(merged.term_counts.get("AI"), Some(&2));
        assert_eq!(merged.documents, 5);
        assert_eq!((merged.true_positive, merged.false_positive), (1, 1));
        assert_eq!((merged.false_negative, merged.true_negative), (1, 1));
        // merging an empty tally changes nothing
        let before = merged.clone();
        merged.merge(&FilterStats::default());
        assert_eq!(merged, before);
    }

    #[test]
    fn filter_stats_top_terms_order() {
        let mut s = FilterStats::default();
        for (terms, n) in [
            (&["b"][..], 3),
            (&["a"][..], 3),
            (&["c"][..], 5),
            (&["d"][..], 1),
        ] {
            for _ in 0..n {
                s.record(&verdict(Some(FlagReason::Immediate), terms), None);
            }
        }
        assert_eq!(
            s.top_terms(3),
            vec![
                ("c".to_string(), 5),
                ("a".to_string(), 3),
                ("b".to_string(), 3)
            ]
        );
        assert_eq!(s.top_terms(10).len(), 4);
        assert!(s.top_terms(0).is_empty());
    }

    #[test]
    fn filter_stats_over_builtin_verdicts() {
        let f = builtin();
        let docs = [
            ("The AI wrote a poem.", true),
            ("The robot rebelled.", true),
            ("A cake with lemon icing.", false),
            ("The robot vacuum hummed.", false),
        ];
        let mut s = FilterStats::default();
        for (text, truth) in docs {
            s.record(&f.classify(text), Some(truth));
        }
        assert_eq!((s.immediate, s.cooccurrence), (1, 1));
        assert_eq!(s.precision(), Some(1.0));
        assert_eq!(s.recall(), Some(1.0));
        assert_eq!(s.term_counts.len(), 3);
    }

    // ---- properties --------------------------------------------------

    /// Words that exercise the filter: terms of the built-in list, near
    /// misses, and everyday words.
    fn word() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "ai",
                "AI",
                "said",
                "haiti",
                "robot",
                "robots",
                "rebelled",
                "rogue",
                "rogues",
                "machine",
                "learning",
                "artificial",
                "intelligence",
                "take",
                "over",
                "the",
                "world",
                "skynet",
                "cyborg",
                "uprising",
                "extinction",
                "cake",
                "rain",
                "a.i.",
                "language",
                "models",
                "doom",
                "doomed",
                "x-risk",
                "hal",
                "9000",
                "openai",
                "é",
                "ß",
                "über",
            ])
            .prop_map(str::to_string),
            "[a-zA-Z]{1,8}",
        ]
    }

    fn separator() -> impl Strategy<Value = String> {
        prop::sample::select(vec![" ", "  ", "\n", ", ", ". ", "-", "'", "", "_", "\t"])
            .prop_map(str::to_string)
    }

    fn document() -> impl Strategy<Value = String> {
        prop::collection::vec((word(), separator()), 0..24).prop_map(|parts| {
            parts.into_iter().fold(String::new(), |mut s, (w, sep)| {
                s.push_str(&w);
                s.push_str(&sep);
                s
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn filter_prop_deterministic_and_padding_invariant(
            text in document(),
            left in "[ \n\t,;:!?()\"]{0,4}",
            right in "[ \n\t,;:!?()\"]{0,4}",
        ) {
            let f = builtin();
            let v = f.classify(&text);
            prop_assert_eq!(&v, &f.classify(&text));
            prop_assert_eq!(v.flagged, v.reason.is_some());
            prop_assert_eq!(v.flagged, !v.terms.is_empty());
            let padded = format!("{left}{text}{right}");
            prop_assert_eq!(&v, &f.classify(&padded));
        }

        #[test]
        fn filter_prop_ascii_case_invariant(text in document()) {
            let f = builtin();
            let v = f.classify(&text);
            if text.is_ascii() {
                prop_assert_eq!(&v, &f.classify(&text.to_ascii_uppercase()));
                prop_assert_eq!(&v, &f.classify(&text.to_ascii_lowercase()));
            }
        }

        #[test]
        fn filter_prop_whitespace_runs_equivalent(text in document()) {
            let f = builtin();
            let respaced = text.replace(' ', " \n ");
            prop_assert_eq!(f.classify(&text), f.classify(&respaced));
        }

        #[test]
        fn filter_prop_gluing_letters_never_creates_matches(text in "[a-z]{0,40}") {
            // a single run of letters can only match a term that is that
            // whole run (no inner boundaries)
            let f = small();
            let v = f.classify(&text);
            prop_assert!(!v.flagged || text == "ai" || text == "skynet", "{text}");
        }
    }
}
