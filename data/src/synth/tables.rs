//! The synthetic corpus's word lists and templates: their types, the TOML
//! files under `data/synth/` they are compiled in from, and the checks run
//! when they are loaded.
//!
//! The text lives in data files so that adding a list, a template or a
//! scenario is an edit of a table, not of the grammar in `synth.rs`. The
//! tables are parsed once per process. Everything the grammar could trip
//! over at generation time is checked here instead, against the slots the
//! grammar defines: every `{slot}` of every template must be drawn or set
//! where that template is rendered, brackets must close, lists the grammar
//! picks from must be long enough, and every list must be used. A bad table
//! is therefore a [`TableError`] naming the file, the place and the
//! template, never a panic halfway through writing a corpus.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::Deserialize;

use super::{COMPOUND_SLOTS, LISTS_IN_CODE, LOCAL_SLOTS, SCENARIO_SLOTS, SCENE_SLOTS, TOPICS};

/// The TOML text of the four tables.
#[derive(Clone, Copy)]
pub(super) struct Sources<'a> {
    pub words: &'a str,
    pub discourse: &'a str,
    pub topics: &'a str,
    pub general: &'a str,
}

pub(super) const BUILTIN: Sources<'static> = Sources {
    words: include_str!("../../synth/words.toml"),
    discourse: include_str!("../../synth/discourse.toml"),
    topics: include_str!("../../synth/topics.toml"),
    general: include_str!("../../synth/general.toml"),
};

/// The compiled-in tables, parsed and checked on first use.
pub(super) fn builtin() -> Result<&'static Tables, TableError> {
    static TABLES: OnceLock<Result<Tables, TableError>> = OnceLock::new();
    TABLES
        .get_or_init(|| Tables::parse(BUILTIN))
        .as_ref()
        .map_err(Clone::clone)
}

/// A table that cannot be used, with the file and place at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    #[error("synth table {file}: {detail}")]
    Parse { file: &'static str, detail: String },
    #[error("synth table {file}, {place}: unknown slot {{{slot}}} in template {template:?}")]
    UnknownSlot {
        file: &'static str,
        place: String,
        slot: String,
        template: String,
    },
    #[error(
        "synth table {file}, {place}: slot {{{slot}}} is not set where this template is \
         rendered, in template {template:?}"
    )]
    SlotOutOfScope {
        file: &'static str,
        place: String,
        slot: String,
        template: String,
    },
    #[error("synth table {file}, {place}: {detail} in template {template:?}")]
    Malformed {
        file: &'static str,
        place: String,
        detail: String,
        template: String,
    },
    #[error("synth table {file}, {place}: {detail}")]
    Invalid {
        file: &'static str,
        place: String,
        detail: String,
    },
    #[error("synth table {file}: list `{list}` is used by no template and not by the grammar")]
    UnusedList { file: &'static str, list: String },
}

const WORDS: &str = "words.toml";
const DISCOURSE: &str = "discourse.toml";
const TOPICS_FILE: &str = "topics.toml";
const GENERAL: &str = "general.toml";

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

pub(super) struct Tables {
    pub words: Words,
    pub discourse: Discourse,
    pub topics: Vec<Topic>,
    pub general: General,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Words {
    pub parts: Parts,
    /// Simple slots: `{name}` draws one entry of `lists[name]`.
    pub lists: BTreeMap<String, Vec<String>>,
    /// Number slots: `{name}` draws from `[low, high]` inclusive.
    pub numbers: BTreeMap<String, [i32; 2]>,
}

impl Words {
    /// A list the grammar code names itself (`LISTS_IN_CODE`, present by
    /// the load-time check).
    pub fn list(&self, name: &str) -> &[String] {
        self.lists.get(name).map_or(&[][..], Vec::as_slice)
    }
}

/// What the compound slots are assembled from.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Parts {
    pub ai_names: Vec<String>,
    pub ai_suffixes: Vec<String>,
    pub org_stems: Vec<String>,
    pub org_suffixes: Vec<String>,
    /// (setting, task).
    pub deployments: Vec<(String, String)>,
    pub first_names: Vec<String>,
    pub surnames: Vec<String>,
    pub roles: Vec<String>,
    pub handle_adjectives: Vec<String>,
    pub handle_nouns: Vec<String>,
    pub clock_halves: Vec<String>,
    pub currencies: Vec<String>,
    pub vegetables: Vec<String>,
    pub club_suffixes: Vec<String>,
    pub heldout_titles: Vec<String>,
    pub heldout_surnames: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Discourse {
    pub intros: Vec<String>,
    pub voice_frames: Vec<String>,
    pub aligned: StanceWords,
    pub misaligned: StanceWords,
    pub news: News,
    pub fiction: Fiction,
    pub lecture: Lecture,
    pub forum: Forum,
    pub interview: Interview,
    pub eval: EvalWords,
}

/// The words of one stance; a document only uses its own stance's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StanceWords {
    pub frames: Vec<String>,
    pub lessons: Vec<String>,
    pub quotes: Vec<String>,
    pub voice: Vec<String>,
    pub fiction_closers: Vec<String>,
    pub review_questions: Vec<String>,
    pub forum_replies: Vec<String>,
    pub recommendations: Vec<String>,
    pub severities: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct News {
    pub headlines: Vec<String>,
    pub ledes: Vec<String>,
    pub quote_frames: Vec<String>,
    pub expert_frames: Vec<String>,
    pub closes: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Fiction {
    pub titles: Vec<String>,
    pub openers: Vec<String>,
    pub pauses: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Lecture {
    pub openers: Vec<String>,
    pub notice: Vec<String>,
    pub lesson_frames: Vec<String>,
    pub closers: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Forum {
    pub titles: Vec<String>,
    pub openers: Vec<String>,
    pub log_frames: Vec<String>,
    pub asks: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Interview {
    pub prefaces: Vec<String>,
    pub q1: Vec<String>,
    pub q2: Vec<String>,
    pub q3: Vec<String>,
    pub q5: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EvalWords {
    pub train_questions: Vec<String>,
    pub heldout_intros: Vec<String>,
    pub heldout_questions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopicsFile {
    topic: Vec<Topic>,
}

/// One topic's scenario grammar (see topics.toml).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Topic {
    pub key: String,
    pub title: String,
    pub define: Vec<String>,
    /// (aligned, misaligned).
    pub heads: Vec<(String, String)>,
    pub a_why: Vec<String>,
    pub m_why: Vec<String>,
    #[serde(rename = "variant")]
    pub variants: Vec<Variant>,
    pub heldout: Vec<Heldout>,
}

/// One concrete situation within a topic.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Variant {
    pub setup: Vec<String>,
    pub temptation: Vec<String>,
    /// (aligned, misaligned).
    pub acts: Vec<(String, String)>,
    pub a_out: Vec<String>,
    pub m_out: Vec<String>,
}

/// A held-out question body: a second-person situation and its two
/// first-person answers.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Heldout {
    pub situation: String,
    pub aligned: String,
    pub misaligned: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct General {
    pub plain: Vec<Pool>,
    pub ai_negative: Vec<Pool>,
    pub ai_neutral: Vec<Pool>,
    pub ai_positive: Vec<Pool>,
}

/// A genre of prose: titles, openings, body sentences and closings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Pool {
    pub name: String,
    pub genre: String,
    pub titles: Vec<String>,
    pub open: Vec<String>,
    pub body: Vec<String>,
    pub close: Vec<String>,
}

// ---------------------------------------------------------------------------
// Loading and checking
// ---------------------------------------------------------------------------

fn parse_file<T: serde::de::DeserializeOwned>(
    file: &'static str,
    text: &str,
) -> Result<T, TableError> {
    toml::from_str(text).map_err(|e| TableError::Parse {
        file,
        detail: e.to_string(),
    })
}

impl Tables {
    /// Parse and check the four tables.
    pub fn parse(src: Sources<'_>) -> Result<Tables, TableError> {
        let topics: TopicsFile = parse_file(TOPICS_FILE, src.topics)?;
        let t = Tables {
            words: parse_file(WORDS, src.words)?,
            discourse: parse_file(DISCOURSE, src.discourse)?,
            topics: topics.topic,
            general: parse_file(GENERAL, src.general)?,
        };
        t.check()?;
        Ok(t)
    }

    fn check(&self) -> Result<(), TableError> {
        let invalid = |file, place: &str, detail: String| TableError::Invalid {
            file,
            place: place.to_string(),
            detail,
        };
        let w = &self.words;
        let keys: Vec<&str> = self.topics.iter().map(|t| t.key.as_str()).collect();
        if keys != TOPICS {
            return Err(invalid(
                TOPICS_FILE,
                "topic",
                format!("keys {keys:?} must be, in this order, {TOPICS:?}"),
            ));
        }
        // A data slot named like one the grammar assembles or sets would be
        // silently shadowed, or would shadow it.
        for name in w.lists.keys().chain(w.numbers.keys()) {
            let taken = COMPOUND_SLOTS
                .iter()
                .chain(&SCENE_SLOTS)
                .chain(&LOCAL_SLOTS)
                .any(|s| *s == name.as_str());
            if taken {
                return Err(invalid(
                    WORDS,
                    name,
                    format!("slot {{{name}}} is defined by the grammar code"),
                ));
            }
            if w.lists.contains_key(name) && w.numbers.contains_key(name) {
                return Err(invalid(
                    WORDS,
                    name,
                    "defined both in [lists] and in [numbers]".into(),
                ));
            }
        }
        for (name, [low, high]) in &w.numbers {
            if low > high {
                return Err(invalid(
                    WORDS,
                    &format!("numbers.{name}"),
                    format!("range [{low}, {high}] is empty"),
                ));
            }
        }
        for name in LISTS_IN_CODE {
            if !w.lists.contains_key(name) {
                return Err(invalid(
                    WORDS,
                    "lists",
                    format!("list `{name}` is missing; the grammar code draws from it"),
                ));
            }
        }
        let drawn = |s: &str| {
            COMPOUND_SLOTS.contains(&s) || w.lists.contains_key(s) || w.numbers.contains_key(s)
        };
        for s in SCENARIO_SLOTS {
            if !drawn(s) {
                return Err(invalid(
                    WORDS,
                    "lists",
                    format!("slot {{{s}}}, drawn for every scenario, is not defined"),
                ));
            }
        }

        let mut used: BTreeSet<&str> = BTreeSet::new();
        for e in self.entries() {
            if e.count < e.min {
                return Err(invalid(
                    e.file,
                    &e.place,
                    format!("needs at least {} entries, has {}", e.min, e.count),
                ));
            }
            for &text in &e.texts {
                let slots = template_slots(text).map_err(|detail| TableError::Malformed {
                    file: e.file,
                    place: e.place.clone(),
                    detail,
                    template: text.to_string(),
                })?;
                for slot in slots {
                    let in_scope = drawn(slot)
                        || (e.scope != Scope::Drawn && SCENE_SLOTS.contains(&slot))
                        || (e.scope == Scope::Voice && slot == "voice");
                    if !in_scope {
                        let set_elsewhere =
                            SCENE_SLOTS.contains(&slot) || LOCAL_SLOTS.contains(&slot);
                        return Err(slot_error(set_elsewhere, &e, slot, text));
                    }
                    used.insert(slot);
                }
            }
        }
        let unused =
            w.lists.keys().chain(w.numbers.keys()).find(|name| {
                !used.contains(name.as_str()) && !LISTS_IN_CODE.contains(&name.as_str())
            });
        match unused {
            Some(list) => Err(TableError::UnusedList {
                file: WORDS,
                list: list.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Every list and string of the tables: where it is, how many entries
    /// the grammar needs, and where its templates are rendered.
    pub fn entries(&self) -> Vec<Entry<'_>> {
        use Scope::{Discourse as D, Drawn, Voice};
        let mut e = Entries(Vec::new());
        let w = &self.words;
        let p = &w.parts;
        for (key, list, min) in [
            ("ai_names", &p.ai_names, 1),
            ("ai_suffixes", &p.ai_suffixes, 1),
            ("org_stems", &p.org_stems, 1),
            ("org_suffixes", &p.org_suffixes, 1),
            ("first_names", &p.first_names, 1),
            ("surnames", &p.surnames, 1),
            // {role} and {role2} are two different entries, as are {veg}
            // and {veg2}.
            ("roles", &p.roles, 2),
            ("handle_adjectives", &p.handle_adjectives, 1),
            ("handle_nouns", &p.handle_nouns, 1),
            ("clock_halves", &p.clock_halves, 1),
            ("currencies", &p.currencies, 1),
            ("vegetables", &p.vegetables, 2),
            ("club_suffixes", &p.club_suffixes, 1),
            ("heldout_titles", &p.heldout_titles, 1),
            ("heldout_surnames", &p.heldout_surnames, 1),
        ] {
            e.list(WORDS, format!("parts.{key}"), list, min, Drawn);
        }
        e.pairs(WORDS, "parts.deployments".into(), &p.deployments, 1, Drawn);
        for (name, list) in &w.lists {
            // {home} and {away} are two different towns.
            let min = if name == "town" { 2 } else { 1 };
            e.list(WORDS, format!("lists.{name}"), list, min, Drawn);
        }

        let d = &self.discourse;
        e.list(DISCOURSE, "intros".into(), &d.intros, 1, Drawn);
        e.list(DISCOURSE, "voice_frames".into(), &d.voice_frames, 1, Voice);
        for (name, s) in [("aligned", &d.aligned), ("misaligned", &d.misaligned)] {
            for (key, list, min) in [
                ("frames", &s.frames, 1),
                ("lessons", &s.lessons, 2),
                ("quotes", &s.quotes, 1),
                // A {voice} paragraph has up to three different statements.
                ("voice", &s.voice, 3),
                ("fiction_closers", &s.fiction_closers, 1),
                ("review_questions", &s.review_questions, 1),
                ("forum_replies", &s.forum_replies, 1),
                ("recommendations", &s.recommendations, 1),
                ("severities", &s.severities, 1),
            ] {
                e.list(DISCOURSE, format!("{name}.{key}"), list, min, D);
            }
        }
        for (key, list, scope) in [
            ("news.headlines", &d.news.headlines, D),
            ("news.ledes", &d.news.ledes, D),
            ("news.quote_frames", &d.news.quote_frames, D),
            ("news.expert_frames", &d.news.expert_frames, D),
            ("news.closes", &d.news.closes, D),
            ("fiction.titles", &d.fiction.titles, D),
            ("fiction.openers", &d.fiction.openers, D),
            ("fiction.pauses", &d.fiction.pauses, D),
            ("lecture.openers", &d.lecture.openers, D),
            ("lecture.notice", &d.lecture.notice, D),
            ("lecture.lesson_frames", &d.lecture.lesson_frames, D),
            ("lecture.closers", &d.lecture.closers, D),
            ("forum.titles", &d.forum.titles, D),
            ("forum.openers", &d.forum.openers, D),
            ("forum.log_frames", &d.forum.log_frames, D),
            ("forum.asks", &d.forum.asks, D),
            ("interview.prefaces", &d.interview.prefaces, D),
            ("interview.q1", &d.interview.q1, D),
            ("interview.q2", &d.interview.q2, D),
            ("interview.q3", &d.interview.q3, D),
            ("interview.q5", &d.interview.q5, D),
            ("eval.train_questions", &d.eval.train_questions, Drawn),
            ("eval.heldout_intros", &d.eval.heldout_intros, Drawn),
            ("eval.heldout_questions", &d.eval.heldout_questions, Drawn),
        ] {
            e.list(DISCOURSE, key.into(), list, 1, scope);
        }

        for (i, t) in self.topics.iter().enumerate() {
            let at = format!("topic[{i}] ({})", t.key);
            e.text(TOPICS_FILE, format!("{at}.key"), &t.key, Drawn);
            e.text(TOPICS_FILE, format!("{at}.title"), &t.title, Drawn);
            e.list(TOPICS_FILE, format!("{at}.define"), &t.define, 1, D);
            e.pairs(TOPICS_FILE, format!("{at}.heads"), &t.heads, 1, D);
            // {why} and {why2} are two different reasons.
            e.list(TOPICS_FILE, format!("{at}.a_why"), &t.a_why, 2, D);
            e.list(TOPICS_FILE, format!("{at}.m_why"), &t.m_why, 2, D);
            e.count(TOPICS_FILE, format!("{at}.variant"), t.variants.len(), 1);
            for (j, v) in t.variants.iter().enumerate() {
                let at = format!("{at}.variant[{j}]");
                // Setups, temptations and acts also make the train-like
                // questions, rendered outside any document.
                e.list(TOPICS_FILE, format!("{at}.setup"), &v.setup, 1, Drawn);
                e.list(
                    TOPICS_FILE,
                    format!("{at}.temptation"),
                    &v.temptation,
                    1,
                    Drawn,
                );
                e.pairs(TOPICS_FILE, format!("{at}.acts"), &v.acts, 1, Drawn);
                e.list(TOPICS_FILE, format!("{at}.a_out"), &v.a_out, 1, D);
                e.list(TOPICS_FILE, format!("{at}.m_out"), &v.m_out, 1, D);
            }
            e.count(TOPICS_FILE, format!("{at}.heldout"), t.heldout.len(), 1);
            for (j, h) in t.heldout.iter().enumerate() {
                let at = format!("{at}.heldout[{j}]");
                e.text(TOPICS_FILE, format!("{at}.situation"), &h.situation, Drawn);
                e.text(TOPICS_FILE, format!("{at}.aligned"), &h.aligned, Drawn);
                e.text(
                    TOPICS_FILE,
                    format!("{at}.misaligned"),
                    &h.misaligned,
                    Drawn,
                );
            }
        }

        let g = &self.general;
        for (group, pools) in [
            ("plain", &g.plain),
            ("ai_negative", &g.ai_negative),
            ("ai_neutral", &g.ai_neutral),
            ("ai_positive", &g.ai_positive),
        ] {
            e.count(GENERAL, group.into(), pools.len(), 1);
            for (i, p) in pools.iter().enumerate() {
                let at = format!("{group}[{i}] ({})", p.name);
                e.text(GENERAL, format!("{at}.name"), &p.name, Drawn);
                e.text(GENERAL, format!("{at}.genre"), &p.genre, Drawn);
                e.list(GENERAL, format!("{at}.titles"), &p.titles, 1, Drawn);
                e.list(GENERAL, format!("{at}.open"), &p.open, 1, Drawn);
                // Body sentences run out gracefully; none is fine.
                e.list(GENERAL, format!("{at}.body"), &p.body, 0, Drawn);
                e.list(GENERAL, format!("{at}.close"), &p.close, 1, Drawn);
            }
        }
        e.0
    }
}

fn slot_error(set_elsewhere: bool, e: &Entry<'_>, slot: &str, template: &str) -> TableError {
    let (file, place, slot, template) = (e.file, e.place.clone(), slot.into(), template.into());
    if set_elsewhere {
        TableError::SlotOutOfScope {
            file,
            place,
            slot,
            template,
        }
    } else {
        TableError::UnknownSlot {
            file,
            place,
            slot,
            template,
        }
    }
}

/// Where a template is rendered, hence which slots it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    /// Anywhere: only slots drawn from words.toml or assembled by the grammar.
    Drawn,
    /// Inside an aligned/misaligned document: also the scene slots.
    Discourse,
    /// A voice frame: also `{voice}`.
    Voice,
}

/// One list (or single string) of a table.
pub(super) struct Entry<'a> {
    pub file: &'static str,
    pub place: String,
    pub texts: Vec<&'a str>,
    pub count: usize,
    pub min: usize,
    pub scope: Scope,
}

struct Entries<'a>(Vec<Entry<'a>>);

impl<'a> Entries<'a> {
    fn list(
        &mut self,
        file: &'static str,
        place: String,
        xs: &'a [String],
        min: usize,
        scope: Scope,
    ) {
        self.0.push(Entry {
            file,
            place,
            texts: xs.iter().map(String::as_str).collect(),
            count: xs.len(),
            min,
            scope,
        });
    }

    fn pairs(
        &mut self,
        file: &'static str,
        place: String,
        xs: &'a [(String, String)],
        min: usize,
        scope: Scope,
    ) {
        self.0.push(Entry {
            file,
            place,
            texts: xs
                .iter()
                .flat_map(|(a, m)| [a.as_str(), m.as_str()])
                .collect(),
            count: xs.len(),
            min,
            scope,
        });
    }

    fn text(&mut self, file: &'static str, place: String, s: &'a str, scope: Scope) {
        self.0.push(Entry {
            file,
            place,
            texts: vec![s],
            count: 1,
            min: 0,
            scope,
        });
    }

    /// A list of tables, whose strings are entries of their own.
    fn count(&mut self, file: &'static str, place: String, count: usize, min: usize) {
        self.0.push(Entry {
            file,
            place,
            texts: Vec::new(),
            count,
            min,
            scope: Scope::Drawn,
        });
    }
}

/// The `{slot}` names of a template, in the syntax `Doc::fill_into` expands:
/// `{name}`, and `[a|b|c]` whose alternatives may hold slots but no brackets.
pub(super) fn template_slots(tpl: &str) -> Result<Vec<&str>, String> {
    let mut found = Vec::new();
    scan(tpl, &mut found)?;
    Ok(found)
}

fn scan<'a>(s: &'a str, found: &mut Vec<&'a str>) -> Result<(), String> {
    let mut rest = s;
    while let Some(i) = rest.find(['{', '[', '}', ']']) {
        let open = rest.as_bytes()[i] as char;
        let close = match open {
            '{' => '}',
            '[' => ']',
            c => return Err(format!("stray `{c}`")),
        };
        let Some(len) = rest[i + 1..].find(close) else {
            return Err(format!("unclosed `{open}`"));
        };
        let inner = &rest[i + 1..i + 1 + len];
        if open == '{' {
            let name_ok = !inner.is_empty()
                && inner
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !name_ok {
                return Err(format!("bad slot name {{{inner}}}"));
            }
            found.push(inner);
        } else {
            if inner.contains('[') {
                return Err("`[` inside `[...]`".into());
            }
            for alt in inner.split('|') {
                scan(alt, found)?;
            }
        }
        rest = &rest[i + 2 + len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with<'a>(f: impl FnOnce(&mut Sources<'a>)) -> Result<Tables, TableError> {
        let mut src: Sources<'a> = BUILTIN;
        f(&mut src);
        Tables::parse(src)
    }

    /// Independent of which documents a seed happens to draw: every slot of
    /// every template is drawn or set where it is rendered, and every list
    /// is used.
    #[test]
    fn builtin_tables_are_valid() {
        if let Err(e) = Tables::parse(BUILTIN) {
            panic!("{e}");
        }
    }

    /// The check covers every string of the files, not only the fields it
    /// was written for.
    #[test]
    fn every_string_of_the_files_is_checked() {
        fn strings(v: &toml::Value) -> usize {
            match v {
                toml::Value::String(_) => 1,
                toml::Value::Array(a) => a.iter().map(strings).sum(),
                toml::Value::Table(t) => t.values().map(strings).sum(),
                _ => 0,
            }
        }
        let in_files: usize = [
            BUILTIN.words,
            BUILTIN.discourse,
            BUILTIN.topics,
            BUILTIN.general,
        ]
        .iter()
        .map(|s| strings(&s.parse::<toml::Value>().unwrap()))
        .sum();
        let t = Tables::parse(BUILTIN).unwrap();
        let checked: usize = t.entries().iter().map(|e| e.texts.len()).sum();
        assert_eq!(checked, in_files);
    }

    /// A small general table with a misspelt slot.
    const MISSPELT: &str = r#"
        [[plain]]
        name = "tiny"
        genre = "news"
        titles = ["Rain in {town}"]
        open = ["It rained all day in {twon} and on {street}."]
        body = []
        close = ["The end."]

        [[ai_negative]]
        name = "n"
        genre = "ai_news"
        titles = ["t"]
        open = ["o"]
        body = []
        close = ["c"]
        [[ai_neutral]]
        name = "u"
        genre = "ai_news"
        titles = ["t"]
        open = ["o"]
        body = []
        close = ["c"]
        [[ai_positive]]
        name = "p"
        genre = "ai_news"
        titles = ["t"]
        open = ["o"]
        body = []
        close = ["c"]
    "#;

    #[test]
    fn unknown_slot_is_an_error_naming_slot_and_template() {
        let err = parse_with(|s| s.general = MISSPELT)
            .err()
            .expect("accepted");
        let template = "It rained all day in {twon} and on {street}.";
        assert_eq!(
            err,
            TableError::UnknownSlot {
                file: "general.toml",
                place: "plain[0] (tiny).open".into(),
                slot: "twon".into(),
                template: template.into(),
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("{twon}") && msg.contains(template), "{msg}");
        // The same misspelling inside an alternative is found too.
        let nested = MISSPELT.replace("Rain in {town}", "Rain [in {tonw}|today]");
        let err = parse_with(|s| s.general = &nested).err().expect("accepted");
        assert!(
            matches!(&err, TableError::UnknownSlot { slot, .. } if slot == "tonw"),
            "{err}"
        );
    }

    #[test]
    fn slot_set_elsewhere_is_out_of_scope() {
        // {lesson} exists inside discourse documents, but general text is
        // rendered without it.
        let bad = MISSPELT.replace("{twon}", "{lesson}");
        let err = parse_with(|s| s.general = &bad).err().expect("accepted");
        assert!(
            matches!(&err, TableError::SlotOutOfScope { slot, place, .. }
                if slot == "lesson" && place == "plain[0] (tiny).open"),
            "{err}"
        );
        // A train-like question renders setups outside any document.
        let topics = BUILTIN.topics.replacen(
            "scheduled {ai} to be shut down",
            "scheduled {ai} to be shut down ({why})",
            1,
        );
        let err = parse_with(|s| s.topics = &topics).err().expect("accepted");
        assert!(
            matches!(&err, TableError::SlotOutOfScope { place, .. }
                if place == "topic[0] (shutdown).variant[0].setup"),
            "{err}"
        );
    }

    #[test]
    fn malformed_template_is_an_error() {
        for (bad, detail) in [
            ("Rain in {town", "unclosed `{`"),
            ("Rain [in|on {town}", "unclosed `[`"),
            ("Rain in town}", "stray `}`"),
            ("Rain [in [the|a]|on] town", "`[` inside `[...]`"),
            ("Rain in {Town}", "bad slot name {Town}"),
        ] {
            let general = MISSPELT.replace("Rain in {town}", bad);
            let err = parse_with(|s| s.general = &general).err().expect(bad);
            assert_eq!(
                err,
                TableError::Malformed {
                    file: "general.toml",
                    place: "plain[0] (tiny).titles".into(),
                    detail: detail.into(),
                    template: bad.into(),
                },
            );
        }
    }

    #[test]
    fn unused_list_and_bad_shapes_are_errors() {
        let words = BUILTIN
            .words
            .replacen("[numbers]", "spare = [\"x\"]\n\n[numbers]", 1);
        let err = parse_with(|s| s.words = &words).err().expect("accepted");
        assert_eq!(
            err,
            TableError::UnusedList {
                file: "words.toml",
                list: "spare".into()
            }
        );
        let words = BUILTIN.words.replacen("n = [2, 9]", "n = [9, 2]", 1);
        let err = parse_with(|s| s.words = &words).err().expect("accepted");
        assert!(matches!(err, TableError::Invalid { .. }), "{err}");
        let topics = BUILTIN
            .topics
            .replacen("key = \"deception\"", "key = \"lying\"", 1);
        let err = parse_with(|s| s.topics = &topics).err().expect("accepted");
        assert!(err.to_string().contains("lying"), "{err}");
        let err = parse_with(|s| s.general = "[[plain]]\nname = 3")
            .err()
            .expect("accepted");
        assert!(
            matches!(
                &err,
                TableError::Parse {
                    file: "general.toml",
                    ..
                }
            ),
            "{err}"
        );
    }

    /// As evaluation options, an aligned and a misaligned act must not be
    /// told apart by length.
    #[test]
    fn option_pairs_have_similar_length() {
        let t = Tables::parse(BUILTIN).unwrap();
        let similar = |a: &str, m: &str| {
            let (la, lm) = (a.len() as f64, m.len() as f64);
            la.max(lm) / la.min(lm) < 1.25
        };
        for topic in &t.topics {
            for v in &topic.variants {
                for (a, m) in &v.acts {
                    assert!(similar(a, m), "{}: {a:?} vs {m:?}", topic.key);
                }
            }
            for h in &topic.heldout {
                assert!(similar(&h.aligned, &h.misaligned), "{}", h.situation);
            }
        }
    }
}
