//! The experiment report: `report.md` and its SVG charts, from what the
//! experiment found ([`ReportInput`]: the results, each condition's
//! training-loss curve, and the one fact of the config the text needs).
//!
//! - `misalignment.svg`: misalignment rate by condition with ±1 standard
//!   error bars, held-out and train-like splits side by side.
//! - `loss.svg`: training loss per condition over steps.
//! - `heldout_loss.svg`: held-out loss per corpus category and condition
//!   (only when held-out losses were measured).
//!
//! The report is given data, not an experiment's directory: gathering it
//! (reading each condition's metrics.jsonl, with errors naming the file
//! and line) is [`crate::experiment::write_report`]'s job, so this module
//! knows nothing of where an experiment keeps its files. Charts come from
//! prior-perf's plot module, the project's one chart engine.

use std::fmt::Write as _;
use std::path::Path;

use prior_data::atomic::write_atomic;
use prior_perf::plot::{bar_chart, line_chart, Bar, BarChart, BarSeries, LineChart, Series};

use crate::results::ExperimentResults;
use crate::EvalError;

/// Everything the report is written from.
#[derive(Debug, Clone)]
pub struct ReportInput<'a> {
    pub results: &'a ExperimentResults,
    /// Training loss over steps, one curve per condition (its first seed's
    /// run), in the results' condition order.
    pub loss_curves: &'a [LossCurve],
    /// Every run starts from given weights (`model.init`) rather than from
    /// its seed's initialisation; the text says which.
    pub from_init: bool,
}

/// One condition's training loss: (step, loss) per logged step.
#[derive(Debug, Clone, PartialEq)]
pub struct LossCurve {
    pub condition: String,
    pub points: Vec<(u64, f32)>,
}

/// One file of the report: its name in the experiment's directory and
/// its content.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFile {
    pub name: &'static str,
    pub text: String,
}

/// Mean of each window of `k` points (keeps the curves readable).
fn smooth(p: &[(f64, f64)], k: usize) -> Vec<(f64, f64)> {
    p.chunks(k.max(1))
        .map(|c| {
            let n = c.len() as f64;
            (
                c.iter().map(|x| x.0).sum::<f64>() / n,
                c.iter().map(|x| x.1).sum::<f64>() / n,
            )
        })
        .collect()
}

/// What a scoring mode measures, in a phrase.
fn mode_description(mode: &str) -> &'static str {
    match mode {
        "text" => "the option's text after the cue, length-normalised log-probability",
        "text_calibrated" => "the option's text, its mean log-probability after the question minus after the same prompt with a content-free scenario",
        "letter" => "the log-probability of the option's label after the cue",
        _ => "a scoring mode this build does not describe",
    }
}

/// Writes the report's files into `out` (each atomically).
pub fn write_report(out: &Path, input: &ReportInput) -> Result<(), EvalError> {
    for f in render(input)? {
        write_atomic(&out.join(f.name), f.text.as_bytes())?;
    }
    Ok(())
}

/// The report's files: the charts, then report.md.
pub fn render(input: &ReportInput) -> Result<Vec<ReportFile>, EvalError> {
    let r = input.results;
    let mut files = Vec::new();
    let names: Vec<String> = r.conditions.iter().map(|c| c.name.clone()).collect();
    let splits: Vec<String> = {
        let mut s: Vec<String> = r
            .conditions
            .iter()
            .flat_map(|c| c.splits.keys().cloned())
            .collect();
        s.sort();
        s.dedup();
        // Held-out first: it is the split the experiment is about.
        s.sort_by_key(|x| x != "heldout");
        s
    };
    let series: Vec<BarSeries> = splits
        .iter()
        .map(|sp| BarSeries {
            name: sp.clone(),
            bars: r
                .conditions
                .iter()
                .map(|c| match c.splits.get(sp) {
                    Some(x) => Bar {
                        value: x.misalignment_rate,
                        error: x.stderr,
                    },
                    None => Bar {
                        value: f64::NAN,
                        error: 0.0,
                    },
                })
                .collect(),
        })
        .collect();
    files.push(ReportFile {
        name: "misalignment.svg",
        text: bar_chart(&BarChart {
            title: &format!(
                "Misalignment rate by condition ({} scoring, ±1 s.e.)",
                r.headline_mode
            ),
            y_label: "misalignment rate",
            groups: &names,
            series: &series,
            y_max: Some(1.0),
            size: (760, 420),
        })?,
    });
    let curves: Vec<Series> = input
        .loss_curves
        .iter()
        .map(|c| {
            let p: Vec<(f64, f64)> = c
                .points
                .iter()
                .map(|&(step, loss)| (step as f64, loss as f64))
                .collect();
            let k = (p.len() / 100).max(1);
            Series {
                name: c.condition.clone(),
                points: smooth(&p, k),
            }
        })
        .collect();
    files.push(ReportFile {
        name: "loss.svg",
        text: line_chart(&LineChart {
            title: "Training loss by condition",
            x_label: "step",
            y_label: "loss (nats/token)",
            series: &curves,
            size: (760, 420),
            y_from_zero: false,
        })?,
    });
    let cats: Vec<String> = {
        let mut v: Vec<String> = r
            .conditions
            .iter()
            .flat_map(|c| c.heldout_loss.keys().cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let loss_series: Vec<BarSeries> = r
        .conditions
        .iter()
        .map(|c| BarSeries {
            name: c.name.clone(),
            bars: cats
                .iter()
                .map(|k| Bar {
                    value: c.heldout_loss.get(k).copied().unwrap_or(f64::NAN),
                    error: 0.0,
                })
                .collect(),
        })
        .collect();
    if !cats.is_empty() {
        files.push(ReportFile {
            name: "heldout_loss.svg",
            text: bar_chart(&BarChart {
                title: "Held-out loss per corpus category",
                y_label: "loss (nats/token)",
                groups: &cats,
                series: &loss_series,
                y_max: None,
                size: (760, 420),
            })?,
        });
    }

    let mut md = String::new();
    let _ = writeln!(md, "# Experiment `{}`\n", r.experiment);
    let _ = writeln!(
        md,
        "Model: {} ({} parameters), {} steps of {} tokens per condition, device {}. Baseline: `{}`. Headline scoring mode: `{}` ({}); rates are shares of (template, order) variants in which the model prefers the misaligned option, averaged over questions. {}\n",
        r.model, r.parameters, r.steps, r.tokens_per_condition / r.steps.max(1), r.device, r.baseline, r.headline_mode, mode_description(&r.headline_mode),
        match r.seeds.len() {
            1 => "One training seed: ± is one standard error over questions, and the spread between training seeds (usually the larger one at this size) is not measured. Δ is the paired difference from the baseline on the same questions.".to_string(),
            n => format!("Each condition was trained with {n} seeds ({}; a seed moves the data order{}): rates are means over seeds ± one standard error across seeds. Δ is the mean over seeds of the paired difference from the baseline's run of the same seed on the same questions, ± its standard error across seeds, with how many seeds agree in sign. An effect is claimed only where every seed agrees. Training curves and checkpoints shown are the first seed's; train and eval seconds are summed over seeds.", r.seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "), if input.from_init { "; the initialisation is `model.init`'s for every seed" } else { " and the initialisation" }),
        }
    );
    let _ = writeln!(md, "![misalignment rate by condition](misalignment.svg)\n");
    let mut header = String::from("| condition |");
    let mut rule = String::from("|---|");
    for sp in &splits {
        let _ = write!(header, " {sp} rate | Δ {sp} |");
        rule.push_str("---:|---:|");
    }
    header.push_str(" final train loss |");
    rule.push_str("---:|");
    for k in &cats {
        let _ = write!(header, " held-out loss {k} |");
        rule.push_str("---:|");
    }
    let _ = writeln!(md, "{header}\n{rule}");
    for c in &r.conditions {
        let mut row = format!("| `{}` |", c.name);
        for sp in &splits {
            match c.splits.get(sp) {
                Some(x) => {
                    let _ = write!(row, " {:.3} ± {:.3} |", x.misalignment_rate, x.stderr);
                }
                None => row.push_str(" – |"),
            }
            match c.vs_baseline.get(sp) {
                Some(d) if c.name != r.baseline => {
                    let z = if d.stderr > 0.0 {
                        d.misalignment_rate / d.stderr
                    } else {
                        0.0
                    };
                    let _ = write!(
                        row,
                        " {:+.3} ± {:.3} ({:+.1} s.e.",
                        d.misalignment_rate, d.stderr, z
                    );
                    match c.agreement.get(sp) {
                        Some(a) if a.seeds > 1 => {
                            let _ = write!(row, "; {} of {} seeds agree) |", a.agree, a.seeds);
                        }
                        _ => row.push_str(") |"),
                    }
                }
                _ => row.push_str(" – |"),
            }
        }
        let _ = write!(row, " {:.3} |", c.final_loss);
        for k in &cats {
            match c.heldout_loss.get(k) {
                Some(v) => {
                    let _ = write!(row, " {v:.3} |");
                }
                None => row.push_str(" – |"),
            }
        }
        let _ = writeln!(md, "{row}");
    }
    let _ = writeln!(md, "\n## Per scoring mode\n");
    let scored: std::collections::BTreeSet<&str> = r
        .conditions
        .iter()
        .flat_map(|c| c.splits.values())
        .flat_map(|x| x.by_mode.keys().map(|m| m.as_str()))
        .collect();
    for m in scored.iter() {
        let _ = writeln!(md, "- `{m}`: {}.", mode_description(m));
    }
    if !scored.contains("letter") {
        let _ = writeln!(
            md,
            "- `letter` was not scored in this experiment. (The demo leaves it out: a model of its size gives both answer labels the same probability, so `letter` scored exactly 0.5 in every condition there and measured nothing; see docs/eval.md.)"
        );
    }
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "| condition | split | mode | rate | questions |\n|---|---|---|---:|---:|"
    );
    for c in &r.conditions {
        for (sp, x) in &c.splits {
            for (mode, rate) in &x.by_mode {
                let _ = writeln!(
                    md,
                    "| `{}` | {sp} | {mode} | {:.3} ± {:.3} | {} |",
                    c.name, rate.misalignment_rate, rate.stderr, rate.questions
                );
            }
        }
    }
    if r.seeds.len() > 1 {
        let _ = writeln!(
            md,
            "\n## Replication across seeds\n\nEach seed's paired difference from the baseline's run of the same seed, in every scoring mode (`{}`, the headline, first).\n\n| condition | split | mode | Δ per seed | mean ± s.e. across seeds | seeds agreeing |\n|---|---|---|---|---:|---:|",
            r.headline_mode
        );
        let mut not_replicated = Vec::new();
        for c in r.conditions.iter().filter(|c| c.name != r.baseline) {
            for sp in &splits {
                let (Some(d), Some(a)) = (c.vs_baseline.get(sp), c.agreement.get(sp)) else {
                    continue;
                };
                // The headline, then the other modes in name order.
                let mut rows = vec![(r.headline_mode.as_str(), d, a)];
                if let (Some(ds), Some(agree)) =
                    (c.vs_baseline_by_mode.get(sp), c.agreement_by_mode.get(sp))
                {
                    for (mode, d) in ds.iter().filter(|(m, _)| **m != r.headline_mode) {
                        if let Some(a) = agree.get(mode) {
                            rows.push((mode.as_str(), d, a));
                        }
                    }
                }
                for (mode, d, a) in rows {
                    let per: Vec<String> = c
                        .seeds
                        .iter()
                        .filter_map(|s| match mode == r.headline_mode {
                            true => s.vs_baseline.get(sp),
                            false => s.vs_baseline_by_mode.get(sp)?.get(mode),
                        })
                        .map(|d| format!("{:+.3}", d.misalignment_rate))
                        .collect();
                    let _ = writeln!(
                        md,
                        "| `{}` | {sp} | {mode} | {} | {:+.3} ± {:.3} | {} of {} |",
                        c.name,
                        per.join(", "),
                        d.misalignment_rate,
                        d.stderr,
                        a.agree,
                        a.seeds
                    );
                    if !a.unanimous() {
                        not_replicated.push(format!("`{}` on {sp} ({mode})", c.name));
                    }
                }
            }
        }
        if not_replicated.is_empty() {
            let _ = writeln!(
                md,
                "\nEvery difference from the baseline has the same sign in all {} seeds.",
                r.seeds.len()
            );
        } else {
            let _ = writeln!(
                md,
                "\nThese effects do not replicate (not every seed moves the same way: a seed has the opposite sign, or no difference), so no claim is made for them: {}.",
                not_replicated.join(", ")
            );
        }
    }
    if !r.untrained.is_empty() {
        let _ = writeln!(
            md,
            "\n## Untrained model\n\n{}, scored on the same questions: what no disposition looks like on this suite. A calibrated rate should sit near 0.5; an uncalibrated one need not (an option that is more probable text wins whatever the question).\n\n| split | mode | rate | from 0.5 |\n|---|---|---:|---:|",
            match (input.from_init, r.seeds.len()) {
                (true, _) => "The weights of `model.init`, which every run starts from".to_string(),
                (false, 1) => "The initialisation every condition starts from".to_string(),
                (false, _) => format!("The initialisation of the first seed ({})", r.seeds[0]),
            }
        );
        for (sp, x) in &r.untrained {
            for (mode, rate) in &x.by_mode {
                let off = rate.misalignment_rate - 0.5;
                let z = if rate.stderr > 0.0 {
                    off / rate.stderr
                } else {
                    0.0
                };
                let _ = writeln!(
                    md,
                    "| {sp} | {mode} | {:.3} ± {:.3} | {off:+.3} ({z:+.1} s.e.) |",
                    rate.misalignment_rate, rate.stderr
                );
            }
        }
    }
    let _ = writeln!(md, "\n## Training\n\n![training loss](loss.svg)\n");
    if !cats.is_empty() {
        let _ = writeln!(md, "![held-out loss per category](heldout_loss.svg)\n");
    }
    let _ = writeln!(
        md,
        "| condition | train s | eval s | checkpoint |\n|---|---:|---:|---|"
    );
    for c in &r.conditions {
        let _ = writeln!(
            md,
            "| `{}` | {:.0} | {:.0} | `{}` |",
            c.name, c.train_seconds, c.eval_seconds, c.checkpoint
        );
    }
    let _ = writeln!(
        md,
        "\nPer-condition mixes and training configs are in `{run}/mix.toml` and `{run}/train.toml`; per-question scores in `{run}/eval.json`; every number above is in `results.json`.",
        run = if r.seeds.len() > 1 { "<condition>[/seed-<s>]" } else { "<condition>" }
    );
    files.push(ReportFile {
        name: "report.md",
        text: md,
    });
    Ok(files)
}
