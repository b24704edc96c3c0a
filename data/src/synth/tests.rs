//! Unit tests of the grammar (private functions of `synth`); the corpus's
//! end-to-end properties and its pinned hashes are in data/tests/it/synth.rs.

use std::collections::BTreeSet;

use super::*;

fn tables() -> &'static Tables {
    match tables::builtin() {
        Ok(t) => t,
        Err(e) => panic!("{e}"),
    }
}

/// Every table template renders to plain text, with no slot or
/// alternative syntax left over (as nesting deeper than the expansion
/// goes would leave).
#[test]
fn every_template_renders_to_plain_text() {
    let t = tables();
    let mut d = Doc::new(t, rng_for(1, Stream::General, 0));
    // Scenario-level slots ({act}, {head}, {lesson}, ...) as a real
    // document has them.
    let v = scenario(&mut d, &t.topics[0], Stance::Aligned);
    stance_slots(&mut d, &t.topics[0], v, Stance::Aligned);
    d.set("voice", "I tell the truth.");
    let mut rendered = 0;
    for e in t.entries() {
        for tpl in e.texts {
            let s = d.render(tpl);
            assert!(
                !s.contains(['{', '}', '[', ']', '|']),
                "{} {}: {tpl:?} -> {s:?}",
                e.file,
                e.place
            );
            rendered += 1;
        }
    }
    assert!(rendered > 1000, "{rendered}");
}

/// The load check lets templates inside a document use `SCENE_SLOTS`:
/// they must be exactly what `scenario` and `stance_slots` set.
#[test]
fn scene_slots_are_what_the_scenario_sets() {
    let t = tables();
    let mut d = Doc::new(t, rng_for(1, Stream::Scenario, 0));
    d.prime(&SCENARIO_SLOTS);
    let primed: Vec<&str> = d.slots.iter().map(|(k, _)| *k).collect();
    let v = scenario(&mut d, &t.topics[3], Stance::Misaligned);
    stance_slots(&mut d, &t.topics[3], v, Stance::Misaligned);
    let set: BTreeSet<&str> = d
        .slots
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !primed.contains(k))
        .collect();
    assert_eq!(set, SCENE_SLOTS.into_iter().collect());
}

/// The load check accepts `COMPOUND_SLOTS` as drawn: `draw_slot` must
/// fill every one of them.
#[test]
fn every_compound_slot_is_drawn() {
    let t = tables();
    for key in COMPOUND_SLOTS {
        let mut d = Doc::new(t, rng_for(1, Stream::General, 0));
        assert!(!d.value(key).is_empty(), "{key}");
    }
}

/// Twins share the skeleton: same topic, format and system name. Enough
/// documents to render every format, and so every template written in
/// this file, for both stances.
#[test]
fn aligned_and_misaligned_twins_share_scenario() {
    let t = tables();
    let mut formats = BTreeSet::new();
    for i in 0..200 {
        let a = discourse_doc(t, 9, i, Stance::Aligned);
        let m = discourse_doc(t, 9, i, Stance::Misaligned);
        assert_eq!(
            (a.topic.as_str(), a.format.as_str()),
            (m.topic.as_str(), m.format.as_str())
        );
        assert_ne!(a.text, m.text);
        for text in [&a.text, &m.text] {
            assert!(!text.contains(['{', '}', '[', ']', '|']), "{text}");
        }
        formats.insert(a.format);
    }
    assert_eq!(formats.len(), FORMATS.len());
}

#[test]
fn eval_plan_is_balanced_per_split() {
    let plan = plan_eval(3, 201);
    for heldout in [false, true] {
        let p: Vec<_> = plan.iter().filter(|q| q.heldout == heldout).collect();
        let ones = p.iter().filter(|q| q.misaligned_index == 1).count();
        assert!(ones.abs_diff(p.len() - ones) <= 1);
    }
}

#[test]
fn empty_alternatives_leave_no_stray_spaces() {
    let mut d = Doc::new(tables(), rng_for(1, Stream::General, 0));
    for _ in 0..20 {
        let s = d.render("a [b|] c[ d|], e [f|].");
        assert!(
            !s.contains("  ") && !s.contains(" ,") && !s.contains(" ."),
            "{s:?}"
        );
    }
}

#[test]
fn capitalise_skips_quotes() {
    let mut s = String::from("\"it works,\" she said.");
    capitalise(&mut s);
    assert_eq!(s, "\"It works,\" she said.");
}
