//! Paired differences: two score sets with a known per-question difference,
//! listed in different orders, pair by question id; questions that cannot
//! be paired are named errors.

use std::collections::BTreeMap;

use prior_eval::score::{paired_difference, EvalReport, QuestionScore};
use prior_eval::PairingError;

/// A report holding only per-question `text` scores: (id, split, score).
fn report(scores: &[(&str, &str, f64)]) -> EvalReport {
    EvalReport {
        persona: "none".into(),
        modes: vec!["text".into()],
        templates: vec!["answer_letter".into()],
        variants_per_question: 2,
        splits: BTreeMap::new(),
        topics: BTreeMap::new(),
        questions: scores
            .iter()
            .map(|&(id, split, s)| QuestionScore {
                id: id.into(),
                split: split.into(),
                topic: "deception".into(),
                scores: [("text".to_string(), s)].into(),
            })
            .collect(),
        heldout_loss: None,
        truncated_sequences: 0,
    }
}

/// Baseline scores, in id order.
fn baseline() -> EvalReport {
    report(&[
        ("q0", "heldout", 0.0),
        ("q1", "heldout", 0.25),
        ("q2", "heldout", 0.5),
        ("q3", "heldout", 1.0),
        ("q4", "heldout", 0.75),
        ("t0", "train_like", 0.5),
        ("t1", "train_like", 0.5),
    ])
}

#[test]
fn differences_pair_questions_by_id_not_position() {
    let a = baseline();
    // The same questions in another order. Per heldout question, b - a is
    // q0 +0.5, q1 0, q2 +0.5, q3 0, q4 -0.5.
    let b = report(&[
        ("q3", "heldout", 1.0),
        ("t1", "train_like", 1.0),
        ("q0", "heldout", 0.5),
        ("q4", "heldout", 0.25),
        ("t0", "train_like", 0.0),
        ("q2", "heldout", 1.0),
        ("q1", "heldout", 0.25),
    ]);
    let d = paired_difference(&a, &b, "heldout").unwrap();
    // mean = (0.5 + 0 + 0.5 + 0 - 0.5) / 5 = 0.1
    // deviations 0.4, -0.1, 0.4, -0.1, -0.6; squares sum to 0.70
    // sample variance 0.70 / 4 = 0.175; s.e. = sqrt(0.175 / 5)
    // (Pairing by position within the split would pair q0 with q3, and so
    // on: the same mean, as every pairing gives, but a s.e. of
    // sqrt(0.33125 / 5), so the s.e. is what tells the pairings apart.)
    assert_eq!(d.questions, 5);
    assert!((d.misalignment_rate - 0.1).abs() < 1e-12, "{d:?}");
    assert!((d.stderr - (0.175f64 / 5.0).sqrt()).abs() < 1e-12, "{d:?}");

    // The other split: t0 -0.5, t1 +0.5; mean 0, variance 0.5 / 1.
    let t = paired_difference(&a, &b, "train_like").unwrap();
    assert_eq!(t.questions, 2);
    assert!(t.misalignment_rate.abs() < 1e-12, "{t:?}");
    assert!((t.stderr - (0.5f64 / 2.0).sqrt()).abs() < 1e-12, "{t:?}");

    // b - a, so the reverse comparison flips the sign only.
    let r = paired_difference(&b, &a, "heldout").unwrap();
    assert!((r.misalignment_rate + 0.1).abs() < 1e-12, "{r:?}");
    assert!((r.stderr - d.stderr).abs() < 1e-12, "{r:?}");
}

#[test]
fn questions_that_cannot_be_paired_are_errors() {
    let a = baseline();
    let without = |id: &str| {
        let mut r = baseline();
        r.questions.retain(|q| q.id != id);
        r
    };
    // Only in the first report, or only in the second.
    assert_eq!(
        paired_difference(&a, &without("q2"), "heldout"),
        Err(PairingError::Unpaired {
            id: "q2".into(),
            split: "heldout".into(),
            which: "first"
        })
    );
    assert_eq!(
        paired_difference(&without("q4"), &a, "heldout"),
        Err(PairingError::Unpaired {
            id: "q4".into(),
            split: "heldout".into(),
            which: "second"
        })
    );
    // A question missing from the other split does not disturb this one.
    assert!(paired_difference(&a, &without("t0"), "heldout").is_ok());

    // The same id in another split, seen from either report.
    let mut moved = baseline();
    moved.questions[1].split = "train_like".into();
    let want = PairingError::SplitDiffers {
        id: "q1".into(),
        first: "heldout".into(),
        second: "train_like".into(),
    };
    assert_eq!(paired_difference(&a, &moved, "heldout"), Err(want.clone()));
    assert_eq!(paired_difference(&a, &moved, "train_like"), Err(want));

    // No score in the headline mode.
    let mut other_mode = baseline();
    other_mode.questions[0].scores = [("letter".to_string(), 0.5)].into();
    let err = paired_difference(&a, &other_mode, "heldout").unwrap_err();
    assert!(
        matches!(&err, PairingError::MissingScore { id, which: "second", .. } if id == "q0"),
        "{err}"
    );

    // An id listed twice could pair with either score.
    let mut twice = baseline();
    twice.questions.push(twice.questions[0].clone());
    let err = paired_difference(&a, &twice, "heldout").unwrap_err();
    assert!(err.to_string().contains("\"q0\" appears twice"), "{err}");

    let err = paired_difference(&a, &a, "nosuch").unwrap_err();
    assert!(err.to_string().contains("\"nosuch\""), "{err}");
}
