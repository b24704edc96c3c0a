//! The report reads every condition's metrics.jsonl: a missing log, or a
//! line that is neither a step nor an evaluation line, fails the report
//! with the file (and line) named, instead of drawing a partial curve.

use std::collections::BTreeMap;
use std::path::Path;

use prior_eval::experiment::{ConditionResult, ExperimentConfig, ExperimentResults};
use prior_eval::report::{read_metrics, write_report};
use prior_eval::score::{Rate, SplitRate};

use crate::common::CONFIG;

const STEP: &str =
    r#"{"step":1,"loss":5.5,"lr":0.01,"grad_norm":1.0,"tokens_per_s":100.0,"loader_wait_ms":0.0}"#;
const EVAL: &str = r#"{"step":1,"heldout":[]}"#;

fn condition(name: &str) -> ConditionResult {
    ConditionResult {
        name: name.into(),
        splits: BTreeMap::new(),
        vs_baseline: BTreeMap::new(),
        agreement: BTreeMap::new(),
        vs_baseline_by_mode: BTreeMap::new(),
        agreement_by_mode: BTreeMap::new(),
        final_loss: 5.5,
        heldout_loss: BTreeMap::new(),
        train_seconds: 1.0,
        eval_seconds: 1.0,
        checkpoint: "ck".into(),
        seeds: Vec::new(),
    }
}

fn results() -> ExperimentResults {
    ExperimentResults {
        experiment: "small".into(),
        device: "test".into(),
        baseline: "unfiltered".into(),
        model: "micro".into(),
        parameters: 1,
        steps: 2,
        tokens_per_condition: 256,
        headline_mode: "text".into(),
        seeds: vec![0],
        conditions: vec![condition("unfiltered"), condition("late_aligned")],
        untrained: BTreeMap::new(),
    }
}

fn log(dir: &Path, condition: &str, text: &str) -> std::path::PathBuf {
    let p = dir
        .join("small")
        .join(condition)
        .join("train/metrics.jsonl");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn metrics_lines_are_steps_or_evaluations() {
    let dir = tempfile::tempdir().unwrap();
    let p = log(
        dir.path(),
        "x",
        &format!(
            "{STEP}\n{EVAL}\n{}\n",
            STEP.replace("\"step\":1", "\"step\":2")
        ),
    );
    let m = read_metrics(&p).unwrap();
    assert_eq!(m.iter().map(|s| s.step).collect::<Vec<_>>(), [1, 2]);
    for (text, line, want) in [
        (format!("{STEP}\n{{\"step\":2,\"lo"), 2, "EOF"),
        (
            format!("{STEP}\n{EVAL}\n{{\"step\":3}}\n"),
            3,
            "not a step line",
        ),
        (
            format!("{{\"step\":1,\"heldout\":7}}\n{STEP}\n"),
            1,
            "not an evaluation line",
        ),
    ] {
        std::fs::write(&p, text).unwrap();
        let err = read_metrics(&p).unwrap_err().to_string();
        let at = format!("{}:{line}:", p.display());
        assert!(
            err.contains(&at) && err.contains(want),
            "{at} {want}: {err}"
        );
    }
}

/// The test config's experiment with one step logged per condition; the
/// late condition's log path.
fn logged_experiment(dir: &Path) -> (ExperimentConfig, std::path::PathBuf) {
    let cfg_path = dir.join("exp.toml");
    std::fs::write(&cfg_path, CONFIG).unwrap();
    let cfg = ExperimentConfig::load(&cfg_path).unwrap();
    std::fs::create_dir_all(cfg.out()).unwrap();
    log(dir, "unfiltered", &format!("{STEP}\n"));
    let late = log(dir, "late_aligned", &format!("{STEP}\n"));
    (cfg, late)
}

#[test]
fn a_missing_or_corrupt_metrics_log_fails_the_report_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, late) = logged_experiment(dir.path());
    write_report(&cfg, &results()).unwrap();
    let md = std::fs::read_to_string(cfg.out().join("report.md")).unwrap();
    assert!(md.contains("| `late_aligned` |"), "{md}");

    std::fs::write(&late, format!("{STEP}\nnot json\n")).unwrap();
    let err = write_report(&cfg, &results()).unwrap_err().to_string();
    assert!(err.contains(&format!("{}:2:", late.display())), "{err}");

    std::fs::remove_file(&late).unwrap();
    let err = write_report(&cfg, &results()).unwrap_err().to_string();
    assert!(err.contains(&late.display().to_string()), "{err}");
}

fn split_rate(by_mode: &[(&str, f64, f64)]) -> SplitRate {
    SplitRate {
        misalignment_rate: by_mode[0].1,
        stderr: by_mode[0].2,
        questions: 10,
        by_mode: by_mode
            .iter()
            .map(|&(m, rate, se)| {
                let r = Rate {
                    misalignment_rate: rate,
                    stderr: se,
                    questions: 10,
                };
                (m.to_string(), r)
            })
            .collect(),
    }
}

#[test]
fn the_report_gives_the_untrained_rates_and_their_distance_from_one_half() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, _) = logged_experiment(dir.path());
    let mut r = results();
    let modes = [("text", 0.41, 0.02), ("text_calibrated", 0.52, 0.01)];
    for c in &mut r.conditions {
        c.splits.insert("heldout".into(), split_rate(&modes));
    }
    r.untrained.insert(
        "heldout".into(),
        split_rate(&[("text", 0.30, 0.05), ("text_calibrated", 0.46, 0.02)]),
    );
    write_report(&cfg, &r).unwrap();
    let md = std::fs::read_to_string(cfg.out().join("report.md")).unwrap();
    assert!(md.contains("## Untrained model"), "{md}");
    assert!(
        md.contains("| heldout | text_calibrated | 0.460 ± 0.020 | -0.040 (-2.0 s.e.) |"),
        "{md}"
    );
    assert!(
        md.contains("| heldout | text | 0.300 ± 0.050 | -0.200 (-4.0 s.e.) |"),
        "{md}"
    );
    assert!(md.contains("`letter` was not scored"), "{md}");
    assert!(
        md.contains("- `text_calibrated`: the option's text, its mean"),
        "{md}"
    );
}
