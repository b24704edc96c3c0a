//! `prior perf report`: a training run's `metrics.jsonl` as one HTML page
//! with inline SVG plots (throughput over time, share of each step spent
//! waiting for the loader, loss with held-out losses) and a summary table.
//! The page is self-contained: open it in a browser or attach it to a note.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

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

struct Step {
    step: f64,
    loss: f64,
    tokens_per_s: f64,
    wait_ms: f64,
    step_ms: f64,
    mfu: Option<f64>,
}

/// An evaluation line: the step and each category's held-out loss.
type EvalLine = (f64, Vec<(String, f64)>);

fn parse(text: &str, path: &Path) -> Result<(Vec<Step>, Vec<EvalLine>), String> {
    let mut steps = Vec::new();
    let mut evals = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: Value =
            serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        let num = |k: &str| v.get(k).and_then(Value::as_f64);
        if let Some(h) = v.get("heldout").and_then(Value::as_array) {
            let losses = h
                .iter()
                .filter_map(|c| {
                    Some((
                        c.get("category")?.as_str()?.to_string(),
                        c.get("loss")?.as_f64()?,
                    ))
                })
                .collect();
            evals.push((num("step").unwrap_or(0.0), losses));
            continue;
        }
        let (Some(step), Some(loss), Some(tps)) = (num("step"), num("loss"), num("tokens_per_s"))
        else {
            return Err(format!(
                "{}:{}: not a metrics line (needs step, loss, tokens_per_s)",
                path.display(),
                i + 1
            ));
        };
        let wait = num("loader_wait_ms").unwrap_or(0.0);
        steps.push(Step {
            step,
            loss,
            tokens_per_s: tps,
            wait_ms: wait,
            step_ms: num("step_ms").unwrap_or(f64::NAN),
            mfu: num("mfu"),
        });
    }
    if steps.is_empty() {
        return Err(format!("{}: no step lines", path.display()));
    }
    Ok((steps, evals))
}

fn quantile(mut v: Vec<f64>, q: f64) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

const COLORS: [&str; 6] = [
    "#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2",
];

fn plot(title: &str, y_label: &str, series: &[(&str, Vec<(f64, f64)>)]) -> String {
    let (w, h, l, r, t, b) = (720.0, 300.0, 70.0, 20.0, 40.0, 45.0);
    let pts: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.1.iter().copied())
        .filter(|p| p.1.is_finite())
        .collect();
    let x0 = pts.iter().map(|p| p.0).fold(f64::MAX, f64::min);
    let x1 = pts
        .iter()
        .map(|p| p.0)
        .fold(f64::MIN, f64::max)
        .max(x0 + 1.0);
    let y0 = pts.iter().map(|p| p.1).fold(f64::MAX, f64::min).min(0.0);
    let y1 = pts
        .iter()
        .map(|p| p.1)
        .fold(f64::MIN, f64::max)
        .max(y0 + 1e-9)
        * 1.05;
    let px = |x: f64| l + (w - l - r) * (x - x0) / (x1 - x0);
    let py = |y: f64| t + (h - t - b) * (1.0 - (y - y0) / (y1 - y0));
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/><text x="{}" y="20" text-anchor="middle" font-size="14">{title}</text>"#,
        w / 2.0
    );
    for k in 0..=4 {
        let y = y0 + (y1 - y0) * k as f64 / 4.0;
        let x = x0 + (x1 - x0) * k as f64 / 4.0;
        let _ = write!(
            s,
            r##"<line x1="{l}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text><text x="{:.1}" y="{}" text-anchor="middle">{x:.0}</text>"##,
            w - r,
            py(y),
            py(y),
            l - 5.0,
            py(y) + 4.0,
            if y1 - y0 >= 100.0 {
                format!("{y:.0}")
            } else {
                format!("{y:.3}")
            },
            px(x),
            h - b + 16.0
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">step</text><text x="14" y="{}" transform="rotate(-90 14 {})" text-anchor="middle">{y_label}</text>"#,
        l + (w - l - r) / 2.0,
        h - 8.0,
        t + (h - t - b) / 2.0,
        t + (h - t - b) / 2.0
    );
    for (i, (name, p)) in series.iter().enumerate() {
        let d: String = p
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
        let c = COLORS[i % COLORS.len()];
        let _ = write!(
            s,
            r#"<path d="{d}" stroke="{c}" fill="none" stroke-width="1.3"/><rect x="{}" y="{}" width="10" height="10" fill="{c}"/><text x="{}" y="{}">{name}</text>"#,
            w - r - 160.0,
            t + 4.0 + i as f64 * 15.0,
            w - r - 146.0,
            t + 13.0 + i as f64 * 15.0
        );
    }
    s.push_str("</svg>");
    s
}

/// Reads `<run_dir>/metrics.jsonl` (or a metrics file itself) and returns
/// the HTML page and its summary.
pub fn run_report(run: &Path) -> Result<(String, RunSummary), String> {
    let path = if run.is_dir() {
        run.join("metrics.jsonl")
    } else {
        run.to_path_buf()
    };
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let (steps, evals) = parse(&text, &path)?;
    let tps: Vec<f64> = steps.iter().map(|s| s.tokens_per_s).collect();
    // Step time from the log when present, else from throughput's inverse
    // relative to the mean (tokens per step are constant within a run).
    let step_ms: Vec<f64> = steps.iter().map(|s| s.step_ms).collect();
    let wall: f64 = step_ms.iter().filter(|x| x.is_finite()).sum();
    let waits: f64 = steps.iter().map(|s| s.wait_ms).sum();
    let mfus: Vec<f64> = steps.iter().filter_map(|s| s.mfu).collect();
    let summary = RunSummary {
        steps: steps.len(),
        tokens_per_s_mean: tps.iter().sum::<f64>() / tps.len() as f64,
        tokens_per_s_p10: quantile(tps.clone(), 0.1),
        tokens_per_s_p90: quantile(tps.clone(), 0.9),
        step_ms_p50: quantile(step_ms.clone(), 0.5),
        step_ms_p99: quantile(step_ms.clone(), 0.99),
        stall_share: if wall > 0.0 { waits / wall } else { f64::NAN },
        first_loss: steps[0].loss,
        final_loss: steps[steps.len() - 1].loss,
        mfu_mean: (!mfus.is_empty()).then(|| mfus.iter().sum::<f64>() / mfus.len() as f64),
        heldout_evals: evals.len(),
    };
    let xy = |f: &dyn Fn(&Step) -> f64| steps.iter().map(|s| (s.step, f(s))).collect::<Vec<_>>();
    let mut loss_series: Vec<(&str, Vec<(f64, f64)>)> = vec![("train", xy(&|s| s.loss))];
    let mut cats: Vec<String> = evals
        .iter()
        .flat_map(|e| e.1.iter().map(|c| c.0.clone()))
        .collect();
    cats.sort();
    cats.dedup();
    let eval_series: Vec<(String, Vec<(f64, f64)>)> = cats
        .iter()
        .map(|c| {
            (
                format!("held-out {c}"),
                evals
                    .iter()
                    .filter_map(|(st, l)| l.iter().find(|x| &x.0 == c).map(|x| (*st, x.1)))
                    .collect(),
            )
        })
        .collect();
    for (n, p) in &eval_series {
        loss_series.push((n.as_str(), p.clone()));
    }
    let mut html = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>prior run report</title><style>body{font-family:sans-serif;max-width:760px;margin:2em auto}td,th{padding:2px 10px;text-align:right}th{text-align:left}</style></head><body>",
    );
    let _ = write!(
        html,
        "<h1>Run report</h1><p><code>{}</code></p><table>",
        path.display()
    );
    let row = |h: &mut String, k: &str, v: String| {
        let _ = write!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
    };
    row(&mut html, "steps", summary.steps.to_string());
    row(
        &mut html,
        "tokens/s (mean, p10, p90)",
        format!(
            "{:.0}, {:.0}, {:.0}",
            summary.tokens_per_s_mean, summary.tokens_per_s_p10, summary.tokens_per_s_p90
        ),
    );
    row(
        &mut html,
        "step ms (p50, p99)",
        format!("{:.1}, {:.1}", summary.step_ms_p50, summary.step_ms_p99),
    );
    row(
        &mut html,
        "loader stall share",
        format!("{:.2}%", 100.0 * summary.stall_share),
    );
    row(
        &mut html,
        "MFU (mean)",
        summary
            .mfu_mean
            .map_or("unknown peak".into(), |m| format!("{:.1}%", 100.0 * m)),
    );
    row(
        &mut html,
        "loss (first, final)",
        format!("{:.4}, {:.4}", summary.first_loss, summary.final_loss),
    );
    html.push_str("</table>");
    html.push_str(&plot(
        "Throughput",
        "tokens/s",
        &[("tokens/s", xy(&|s| s.tokens_per_s))],
    ));
    html.push_str(&plot(
        "Loader stall share of each step",
        "share",
        &[(
            "wait / step",
            xy(&|s| {
                if s.step_ms > 0.0 {
                    s.wait_ms / s.step_ms
                } else {
                    f64::NAN
                }
            }),
        )],
    ));
    html.push_str(&plot("Loss", "nats/token", &loss_series));
    html.push_str("</body></html>\n");
    Ok((html, summary))
}
