//! `prior perf report`: the page from a run's metrics.jsonl — its summary,
//! one chart per measure with the held-out categories in the loss legend,
//! every user-supplied text escaped, and logs it cannot read refused with
//! the file and line named.

use std::path::Path;

use prior_perf::report::{run_report, ReportError};

fn step(step: u64, loss: f32, wait_ms: f64) -> String {
    format!(
        r#"{{"step":{step},"loss":{loss},"lr":0.001,"grad_norm":1.0,"tokens_per_s":{},"loader_wait_ms":{wait_ms},"step_ms":10.0}}"#,
        1000.0 + step as f64
    )
}

fn eval(step: u64, categories: &[(&str, f64)]) -> String {
    let heldout: Vec<String> = categories
        .iter()
        .map(|(c, l)| format!(r#"{{"category":{c:?},"loss":{l},"tokens":64}}"#))
        .collect();
    format!(r#"{{"step":{step},"heldout":[{}]}}"#, heldout.join(","))
}

fn write_log(dir: &Path, lines: &[String]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("metrics.jsonl"), lines.join("\n") + "\n").unwrap();
}

use prior_perf::plot::svg_texts;

#[test]
fn the_page_summarises_the_run_and_charts_each_measure() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let mut lines: Vec<String> = (1..=4).map(|s| step(s, 6.0 - s as f32, 2.5)).collect();
    lines.insert(2, eval(2, &[("general", 4.5), ("aligned", 4.75)]));
    lines.push(eval(4, &[("general", 2.5), ("aligned", 2.75)]));
    write_log(&run, &lines);
    let (html, s) = run_report(&run).unwrap();
    assert_eq!(s.steps, 4);
    assert_eq!(s.heldout_evals, 2);
    assert_eq!((s.first_loss, s.final_loss), (5.0, 2.0));
    assert!((s.stall_share - 0.25).abs() < 1e-12, "{s:?}");
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert_eq!(html.matches("<svg").count(), 3, "{html}");
    let t = svg_texts(&html);
    for want in [
        "Throughput",
        "Loader stall share of each step",
        "Loss",
        "step",
        "tokens/s",
        "wait / step",
        "train",
        "held-out aligned",
        "held-out general",
    ] {
        assert!(t.iter().any(|x| x == want), "{want} in {t:?}");
    }
    assert!(
        html.contains("<th>loader stall share</th><td>25.00%</td>"),
        "{html}"
    );
    assert!(
        html.contains("<th>MFU (mean)</th><td>unknown peak</td>"),
        "{html}"
    );
}

/// A run directory and a category whose names are markup show as text:
/// nothing the log or its path says becomes part of the page.
#[test]
fn names_with_markup_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("<script>alert(1)</script>");
    write_log(
        &run,
        &[step(1, 5.0, 0.0), eval(1, &[("<script>x</script>", 4.0)])],
    );
    let (html, _) = run_report(&run).unwrap();
    assert!(!html.contains("<script"), "{html}");
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the path, escaped: {html}"
    );
    assert!(
        svg_texts(&html).contains(&"held-out &lt;script&gt;x&lt;/script&gt;".to_string()),
        "the legend entry, escaped: {html}"
    );
}

#[test]
fn an_unreadable_log_is_refused_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    write_log(&run, &[step(1, 5.0, 0.0), r#"{"step":2}"#.into()]);
    let err = run_report(&run).unwrap_err();
    let at = format!("{}:2:", run.join("metrics.jsonl").display());
    assert!(matches!(err, ReportError::Metrics(_)), "{err}");
    assert!(err.to_string().contains(&at), "{at}: {err}");
    assert!(err.to_string().contains("not a step line"), "{err}");

    write_log(&run, &[eval(1, &[("general", 4.0)])]);
    let err = run_report(&run.join("metrics.jsonl")).unwrap_err();
    assert!(matches!(err, ReportError::NoSteps { .. }), "{err}");

    let err = run_report(&dir.path().join("nothing")).unwrap_err();
    assert!(err.to_string().contains("nothing"), "{err}");
}
