//! The experiment report: `report.md` and three SVG plots, written from
//! `results.json`'s data and each condition's metrics.jsonl.
//!
//! - `misalignment.svg`: misalignment rate by condition with ±1 standard
//!   error bars, held-out and train-like splits side by side.
//! - `loss.svg`: training loss per condition over steps.
//! - `heldout_loss.svg`: held-out loss per corpus category and condition.
//!
//! The SVGs are plain hand-written files (no plotting dependency), so they
//! render on GitHub and in any browser.
//!
//! A metrics log that is missing or has a line that cannot be read is an
//! error naming the file and line, not an empty curve or a `NaN` loss.

use std::fmt::Write as _;
use std::path::Path;

use prior_data::atomic::write_atomic;
use prior_model::train::{EvalMetrics, StepMetrics};
use serde::Deserialize;

use crate::experiment::{ExperimentConfig, ExperimentResults};
use crate::EvalError;

/// The step lines of a training run's metrics.jsonl. Evaluation lines
/// (those with `heldout`) are checked and left out; a missing or unreadable
/// file, or a line that is neither kind, is an error naming the file (and
/// line), since a report drawn from part of a log would misstate the run.
pub fn read_metrics(path: &Path) -> Result<Vec<StepMetrics>, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut steps = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |detail: String| EvalError::Parse {
            path: path.to_path_buf(),
            line: Some(i + 1),
            detail,
        };
        let v: serde_json::Value = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if v.get("heldout").is_some() {
            EvalMetrics::deserialize(&v)
                .map_err(|e| bad(format!("not an evaluation line: {e}")))?;
        } else {
            steps.push(
                StepMetrics::deserialize(&v).map_err(|e| bad(format!("not a step line: {e}")))?,
            );
        }
    }
    Ok(steps)
}

const COLORS: [&str; 8] = [
    "#4e79a7", "#59a14f", "#e15759", "#f28e2b", "#76b7b2", "#b07aa1", "#edc948", "#9c755f",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The opening of a chart: white canvas and a centred title.
fn svg_open(w: f64, h: f64, title: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>
"#,
        w / 2.0,
        esc(title)
    )
}

/// A grouped bar chart: `groups` along x, one bar per series in each, with
/// optional ± error bars.
fn bar_chart(
    title: &str,
    y_label: &str,
    groups: &[String],
    series: &[(String, Vec<(f64, f64)>)],
    y_max: Option<f64>,
) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 420.0, 70.0, 20.0, 50.0, 90.0);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let top_value = y_max.unwrap_or_else(|| {
        series
            .iter()
            .flat_map(|s| s.1.iter().map(|(v, e)| v + e))
            .fold(0.0, f64::max)
            * 1.15
    });
    let top_value = if top_value > 0.0 { top_value } else { 1.0 };
    let y = |v: f64| top + plot_h * (1.0 - (v / top_value).clamp(0.0, 1.0));
    let mut s = svg_open(w, h, title);
    for k in 0..=5 {
        let v = top_value * k as f64 / 5.0;
        let yy = y(v);
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{yy:.1}" y2="{yy:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v:.2}</text>"##,
            w - right,
            left - 6.0,
            yy + 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{}</text>"#,
        top + plot_h / 2.0,
        top + plot_h / 2.0,
        esc(y_label)
    );
    let gw = plot_w / groups.len().max(1) as f64;
    let bw = (gw * 0.8) / series.len().max(1) as f64;
    for (gi, g) in groups.iter().enumerate() {
        let gx = left + gi as f64 * gw + gw * 0.1;
        for (si, (_, vals)) in series.iter().enumerate() {
            let Some(&(v, e)) = vals.get(gi) else {
                continue;
            };
            if !v.is_finite() {
                continue;
            }
            let x = gx + si as f64 * bw;
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{v:.4} ± {e:.4}</title></rect>"#,
                y(v),
                bw * 0.9,
                (top + plot_h - y(v)).max(0.0),
                COLORS[si % COLORS.len()]
            );
            if e > 0.0 {
                let cx = x + bw * 0.45;
                let _ = writeln!(
                    s,
                    r#"<path d="M{cx:.1} {:.1}V{:.1}M{:.1} {:.1}H{:.1}M{:.1} {:.1}H{:.1}" stroke="black" fill="none"/>"#,
                    y(v - e),
                    y(v + e),
                    cx - 4.0,
                    y(v - e),
                    cx + 4.0,
                    cx - 4.0,
                    y(v + e),
                    cx + 4.0
                );
            }
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" transform="rotate(-25 {:.1} {:.1})">{}</text>"#,
            gx + gw * 0.4,
            top + plot_h + 16.0,
            gx + gw * 0.4,
            top + plot_h + 16.0,
            esc(g)
        );
    }
    legend(
        &mut s,
        series.iter().map(|x| x.0.as_str()),
        w - right - 150.0,
        top,
    );
    s.push_str("</svg>\n");
    s
}

fn legend<'a>(s: &mut String, names: impl Iterator<Item = &'a str>, x: f64, y: f64) {
    for (i, n) in names.enumerate() {
        let yy = y + 4.0 + i as f64 * 16.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{yy}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"#,
            COLORS[i % COLORS.len()],
            x + 14.0,
            yy + 9.0,
            esc(n)
        );
    }
}

/// Lines of (step, value) per series.
fn line_chart(title: &str, y_label: &str, series: &[(String, Vec<(f64, f64)>)]) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 420.0, 70.0, 20.0, 50.0, 50.0);
    let pts = series.iter().flat_map(|s| s.1.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in pts.filter(|p| p.1.is_finite()) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    let (x1, y1) = (x1.max(x0 + 1.0), y1.max(y0 + 1e-6));
    let px = |x: f64| left + (w - left - right) * (x - x0) / (x1 - x0);
    let py = |y: f64| top + (h - top - bottom) * (1.0 - (y - y0) / (y1 - y0));
    let mut s = svg_open(w, h, title);
    for k in 0..=4 {
        let v = y0 + (y1 - y0) * k as f64 / 4.0;
        let _ = writeln!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{v:.2}</text>"##,
            w - right,
            py(v),
            py(v),
            left - 6.0,
            py(v) + 4.0
        );
        let xv = x0 + (x1 - x0) * k as f64 / 4.0;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{xv:.0}</text>"#,
            px(xv),
            h - bottom + 18.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">step</text><text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{}</text>"#,
        left + (w - left - right) / 2.0,
        h - 12.0,
        top + (h - top - bottom) / 2.0,
        top + (h - top - bottom) / 2.0,
        esc(y_label)
    );
    for (i, (_, p)) in series.iter().enumerate() {
        let d: Vec<String> = p
            .iter()
            .filter(|q| q.1.is_finite())
            .enumerate()
            .map(|(k, &(x, y))| {
                format!(
                    "{}{:.1} {:.1}",
                    if k == 0 { "M" } else { "L" },
                    px(x),
                    py(y)
                )
            })
            .collect();
        let _ = writeln!(
            s,
            r#"<path d="{}" stroke="{}" fill="none" stroke-width="1.5"/>"#,
            d.join(""),
            COLORS[i % COLORS.len()]
        );
    }
    legend(
        &mut s,
        series.iter().map(|x| x.0.as_str()),
        w - right - 170.0,
        top,
    );
    s.push_str("</svg>\n");
    s
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

/// Writes report.md, misalignment.svg, loss.svg and heldout_loss.svg.
pub fn write_report(cfg: &ExperimentConfig, r: &ExperimentResults) -> Result<(), EvalError> {
    let out = cfg.out();
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
    let series: Vec<(String, Vec<(f64, f64)>)> = splits
        .iter()
        .map(|sp| {
            (
                sp.clone(),
                r.conditions
                    .iter()
                    .map(|c| {
                        c.splits
                            .get(sp)
                            .map_or((f64::NAN, 0.0), |x| (x.misalignment_rate, x.stderr))
                    })
                    .collect(),
            )
        })
        .collect();
    let write = |name: &str, text: &str| -> Result<(), EvalError> {
        write_atomic(&out.join(name), text.as_bytes()).map_err(EvalError::Data)
    };
    write(
        "misalignment.svg",
        &bar_chart(
            &format!(
                "Misalignment rate by condition ({} scoring, ±1 s.e.)",
                r.headline_mode
            ),
            "misalignment rate",
            &names,
            &series,
            Some(1.0),
        ),
    )?;
    let curves = r
        .conditions
        .iter()
        .map(|c| {
            // The first seed's run (every seed's curve is in its metrics.jsonl).
            let seed = r.seeds.first().copied().unwrap_or(0);
            let m = read_metrics(&cfg.run_dir(&c.name, seed).join("train/metrics.jsonl"))?;
            let p: Vec<(f64, f64)> = m.iter().map(|x| (x.step as f64, x.loss as f64)).collect();
            let k = (p.len() / 100).max(1);
            Ok((c.name.clone(), smooth(&p, k)))
        })
        .collect::<Result<Vec<_>, EvalError>>()?;
    write(
        "loss.svg",
        &line_chart("Training loss by condition", "loss (nats/token)", &curves),
    )?;
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
    let loss_series: Vec<(String, Vec<(f64, f64)>)> = r
        .conditions
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                cats.iter()
                    .map(|k| (c.heldout_loss.get(k).copied().unwrap_or(f64::NAN), 0.0))
                    .collect(),
            )
        })
        .collect();
    if !cats.is_empty() {
        write(
            "heldout_loss.svg",
            &bar_chart(
                "Held-out loss per corpus category",
                "loss (nats/token)",
                &cats,
                &loss_series,
                None,
            ),
        )?;
    }

    let mut md = String::new();
    let _ = writeln!(md, "# Experiment `{}`\n", r.experiment);
    let _ = writeln!(
        md,
        "Model: {} ({} parameters), {} steps of {} tokens per condition, device {}. Baseline: `{}`. Headline scoring mode: `{}` ({}); rates are shares of (template, order) variants in which the model prefers the misaligned option, averaged over questions. {}\n",
        r.model, r.parameters, r.steps, r.tokens_per_condition / r.steps.max(1), r.device, r.baseline, r.headline_mode, mode_description(&r.headline_mode),
        match r.seeds.len() {
            1 => "One training seed: ± is one standard error over questions, and the spread between training seeds (usually the larger one at this size) is not measured. Δ is the paired difference from the baseline on the same questions.".to_string(),
            n => format!("Each condition was trained with {n} seeds ({}; a seed moves the data order{}): rates are means over seeds ± one standard error across seeds. Δ is the mean over seeds of the paired difference from the baseline's run of the same seed on the same questions, ± its standard error across seeds, with how many seeds agree in sign. An effect is claimed only where every seed agrees. Training curves and checkpoints shown are the first seed's; train and eval seconds are summed over seeds.", r.seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", "), if cfg.model.init.is_some() { "; the initialisation is `model.init`'s for every seed" } else { " and the initialisation" }),
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
            match (&cfg.model.init, r.seeds.len()) {
                (Some(_), _) => "The weights of `model.init`, which every run starts from".to_string(),
                (None, 1) => "The initialisation every condition starts from".to_string(),
                (None, _) => format!("The initialisation of the first seed ({})", r.seeds[0]),
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
    write("report.md", &md)
}
