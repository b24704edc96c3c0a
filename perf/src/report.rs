//! `prior perf report`: a training run's `metrics.jsonl` as one HTML page
//! with inline SVG plots (throughput over time, share of each step spent
//! waiting for the loader, loss with held-out losses) and a summary table.
//! The page is self-contained: open it in a browser or attach it to a note.
//!
//! The log is read with prior-model's metrics reader (the format's one
//! definition), the charts come from [`crate::plot`], and the page is a
//! `maud` template: every value put into it (the run's path, category
//! names in legends) is escaped, so a name with markup in it shows as text
//! instead of becoming part of the page.

use std::path::{Path, PathBuf};

use maud::{html, Markup, PreEscaped, DOCTYPE};
use prior_model::metrics::{self, MetricsError, MetricsLog, StepMetrics};
use serde::Serialize;

use crate::plot::{line_chart, LineChart, PlotError, Series};

/// Why a run's report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// A log with no step line has nothing to report (every number of the
    /// summary is about steps).
    #[error("{}: no step lines", path.display())]
    NoSteps { path: PathBuf },
    #[error(transparent)]
    Plot(#[from] PlotError),
}

/// What the report says in numbers (also printed by `--json`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunSummary {
    pub steps: usize,
    pub tokens_per_s_mean: f64,
    pub tokens_per_s_p10: f64,
    pub tokens_per_s_p90: f64,
    pub step_ms_p50: f64,
    pub step_ms_p99: f64,
    /// Share of wall time spent waiting for the loader.
    pub stall_share: f64,
    pub first_loss: f64,
    pub final_loss: f64,
    pub mfu_mean: Option<f64>,
    pub heldout_evals: usize,
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// A step's wall time, `NaN` where the log did not record it (older logs
/// read it as 0), so that it counts in no quantile or share.
fn step_ms(s: &StepMetrics) -> f64 {
    if s.step_ms > 0.0 {
        s.step_ms
    } else {
        f64::NAN
    }
}

/// The summary of a log with at least one step line.
fn summarize(log: &MetricsLog) -> RunSummary {
    let steps = &log.steps;
    let tps: Vec<f64> = steps.iter().map(|s| s.tokens_per_s).collect();
    let ms: Vec<f64> = steps.iter().map(step_ms).collect();
    let wall: f64 = ms.iter().filter(|x| x.is_finite()).sum();
    let waits: f64 = steps.iter().map(|s| s.loader_wait_ms).sum();
    let mfus: Vec<f64> = steps.iter().filter_map(|s| s.mfu).collect();
    RunSummary {
        steps: steps.len(),
        tokens_per_s_mean: tps.iter().sum::<f64>() / tps.len() as f64,
        tokens_per_s_p10: quantile(tps.clone(), 0.1),
        tokens_per_s_p90: quantile(tps, 0.9),
        step_ms_p50: quantile(ms.clone(), 0.5),
        step_ms_p99: quantile(ms, 0.99),
        stall_share: if wall > 0.0 { waits / wall } else { f64::NAN },
        first_loss: loss_as_written(steps[0].loss),
        final_loss: loss_as_written(steps[steps.len() - 1].loss),
        mfu_mean: (!mfus.is_empty()).then(|| mfus.iter().sum::<f64>() / mfus.len() as f64),
        heldout_evals: log.evals.len(),
    }
}

/// An f32 loss as the f64 its shortest decimal form reads as (5.4321, not
/// 5.432099819183350): the value metrics.jsonl holds, for the JSON summary.
fn loss_as_written(loss: f32) -> f64 {
    loss.to_string().parse().unwrap_or(f64::NAN)
}

/// The three charts: throughput, stall share, and the training loss with
/// each held-out category's loss.
fn charts(log: &MetricsLog) -> Result<[String; 3], PlotError> {
    let xy = |f: &dyn Fn(&StepMetrics) -> f64| -> Vec<(f64, f64)> {
        log.steps.iter().map(|s| (s.step as f64, f(s))).collect()
    };
    let chart = |title: &str, y_label: &str, series: &[Series]| {
        line_chart(&LineChart {
            title,
            x_label: "step",
            y_label,
            series,
            size: (720, 300),
            y_from_zero: true,
        })
    };
    let throughput = chart(
        "Throughput",
        "tokens/s",
        &[Series {
            name: "tokens/s".into(),
            points: xy(&|s| s.tokens_per_s),
        }],
    )?;
    let stall = chart(
        "Loader stall share of each step",
        "share",
        &[Series {
            name: "wait / step".into(),
            points: xy(&|s| s.loader_wait_ms / step_ms(s)),
        }],
    )?;
    let mut categories: Vec<&str> = log
        .evals
        .iter()
        .flat_map(|e| e.heldout.iter().map(|c| c.category.as_str()))
        .collect();
    categories.sort();
    categories.dedup();
    let mut losses = vec![Series {
        name: "train".into(),
        points: xy(&|s| s.loss as f64),
    }];
    losses.extend(categories.iter().map(|&c| {
        Series {
            name: format!("held-out {c}"),
            points: log
                .evals
                .iter()
                .filter_map(|e| {
                    let l = e.heldout.iter().find(|x| x.category == c)?;
                    Some((e.step as f64, l.loss))
                })
                .collect(),
        }
    }));
    let loss = chart("Loss", "nats/token", &losses)?;
    Ok([throughput, stall, loss])
}

const STYLE: &str = "body{font-family:sans-serif;max-width:760px;margin:2em auto}td,th{padding:2px 10px;text-align:right}th{text-align:left}svg{display:block;margin:1em 0}";

fn page(path: &Path, s: &RunSummary, charts: &[String]) -> Markup {
    let rows = [
        ("steps", s.steps.to_string()),
        (
            "tokens/s (mean, p10, p90)",
            format!(
                "{:.0}, {:.0}, {:.0}",
                s.tokens_per_s_mean, s.tokens_per_s_p10, s.tokens_per_s_p90
            ),
        ),
        (
            "step ms (p50, p99)",
            format!("{:.1}, {:.1}", s.step_ms_p50, s.step_ms_p99),
        ),
        (
            "loader stall share",
            format!("{:.2}%", 100.0 * s.stall_share),
        ),
        (
            "MFU (mean)",
            s.mfu_mean
                .map_or("unknown peak".into(), |m| format!("{:.1}%", 100.0 * m)),
        ),
        (
            "loss (first, final)",
            format!("{:.4}, {:.4}", s.first_loss, s.final_loss),
        ),
    ];
    html! {
        (DOCTYPE)
        html {
            head {
                meta charset="utf-8";
                title { "prior run report" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "Run report" }
                p { code { (path.display().to_string()) } }
                table {
                    @for (k, v) in &rows {
                        tr { th { (k) } td { (v) } }
                    }
                }
                // The charts are SVG documents from the plot module, whose
                // backend has already escaped every text in them.
                @for svg in charts {
                    (PreEscaped(svg.as_str()))
                }
            }
        }
    }
}

/// Reads `<run_dir>/metrics.jsonl` (or a metrics file itself) and returns
/// the HTML page and its summary.
pub fn run_report(run: &Path) -> Result<(String, RunSummary), ReportError> {
    let path = if run.is_dir() {
        metrics::path_in(run)
    } else {
        run.to_path_buf()
    };
    let log = metrics::read(&path)?;
    if log.steps.is_empty() {
        return Err(ReportError::NoSteps { path });
    }
    let summary = summarize(&log);
    let charts = charts(&log)?;
    let mut html = page(&path, &summary, &charts).into_string();
    html.push('\n');
    Ok((html, summary))
}
