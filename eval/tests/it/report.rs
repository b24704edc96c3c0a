//! The experiment report. Gathering its data reads every condition's
//! metrics.jsonl: a missing log, or a line that is neither a step nor an
//! evaluation line, fails the report with the file (and line) named,
//! instead of drawing a partial curve. The report itself is written from
//! data: its charts have one chart per measure, a legend entry per split or
//! condition, and text that stays text.

use std::collections::BTreeMap;
use std::path::Path;

use prior_eval::experiment::{write_report, ConditionResult, ExperimentConfig, ExperimentResults};
use prior_eval::report::{render, LossCurve, ReportFile, ReportInput};
use prior_eval::score::{Rate, SplitRate};

use crate::common::{svg_curves, svg_texts as texts, CONFIG};

const STEP: &str =
    r#"{"step":1,"loss":5.5,"lr":0.01,"grad_norm":1.0,"tokens_per_s":100.0,"loader_wait_ms":0.0}"#;

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

fn file<'a>(files: &'a [ReportFile], name: &str) -> &'a str {
    &files
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .text
}

#[test]
fn the_charts_show_every_condition_split_and_category() {
    let mut r = results();
    let modes = [("text", 0.41, 0.02)];
    for (c, loss) in r.conditions.iter_mut().zip([5.25, 5.5]) {
        c.splits.insert("heldout".into(), split_rate(&modes));
        c.splits.insert("a<b&c".into(), split_rate(&modes));
        c.heldout_loss.insert("aligned".into(), loss);
        c.heldout_loss.insert("general".into(), loss + 0.5);
    }
    let curves: Vec<LossCurve> = r
        .conditions
        .iter()
        .map(|c| LossCurve {
            condition: c.name.clone(),
            points: (1..=250).map(|s| (s, 6.0 - s as f32 / 100.0)).collect(),
        })
        .collect();
    let files = render(&ReportInput {
        results: &r,
        loss_curves: &curves,
        from_init: false,
    })
    .unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        [
            "misalignment.svg",
            "loss.svg",
            "heldout_loss.svg",
            "report.md"
        ]
    );

    let mis = file(&files, "misalignment.svg");
    assert!(mis.starts_with("<svg"), "{mis}");
    let t = texts(mis);
    // Conditions along x, splits in the legend (held-out first), the
    // split with markup in its name escaped.
    for want in [
        "Misalignment rate by condition (text scoring, ±1 s.e.)",
        "misalignment rate",
        "unfiltered",
        "late_aligned",
        "heldout",
        "a&lt;b&amp;c",
    ] {
        assert!(t.iter().any(|x| x == want), "{want} in {t:?}");
    }
    assert!(!mis.contains("a<b"), "{mis}");

    let loss = file(&files, "loss.svg");
    let t = texts(loss);
    for want in [
        "Training loss by condition",
        "step",
        "unfiltered",
        "late_aligned",
    ] {
        assert!(t.iter().any(|x| x == want), "{want} in {t:?}");
    }
    // A curve per condition; 250 steps drawn as means of windows of 2.
    assert_eq!(svg_curves(loss), [125, 125], "{loss}");

    let heldout = texts(file(&files, "heldout_loss.svg"));
    for want in ["aligned", "general", "unfiltered", "late_aligned"] {
        assert!(heldout.iter().any(|x| x == want), "{want} in {heldout:?}");
    }

    let md = file(&files, "report.md");
    assert!(
        md.contains("![misalignment rate by condition](misalignment.svg)"),
        "{md}"
    );
    assert!(
        md.contains("![held-out loss per category](heldout_loss.svg)"),
        "{md}"
    );
    assert!(
        md.contains("| `late_aligned` | 0.410 ± 0.020 | – |"),
        "{md}"
    );
}

/// Without held-out losses there is no held-out chart, and the report
/// does not link one.
#[test]
fn no_heldout_losses_no_heldout_chart() {
    let r = results();
    let files = render(&ReportInput {
        results: &r,
        loss_curves: &[],
        from_init: true,
    })
    .unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.name).collect();
    assert_eq!(names, ["misalignment.svg", "loss.svg", "report.md"]);
    assert!(!file(&files, "report.md").contains("heldout_loss.svg"));
}
