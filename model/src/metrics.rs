//! metrics.jsonl, a training run's log: its line types and its one reader.
//!
//! The trainer ([`crate::train`]) appends one JSON object per line to
//! `<checkpoint_dir>/metrics.jsonl`: a [`StepMetrics`] line for every step,
//! and, every `eval_every` steps, an [`EvalMetrics`] line (the held-out loss
//! per category) after that step's line. Everything that reads the log —
//! the experiment report, `prior perf report`, the tests — reads it through
//! [`read`], so the format has one definition and one set of checks.
//!
//! A line is an evaluation line when it has a `heldout` key and a step line
//! otherwise: those are the only two kinds the trainer writes, so a line of
//! any other shape is an error naming the file, the line and what is
//! missing, never skipped. A report drawn from part of a log would misstate
//! the run. Blank lines are skipped (a file edited by hand may end with
//! one).

use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::heldout::CategoryLoss;

/// The log's file name inside a run's `checkpoint_dir`.
pub const FILE_NAME: &str = "metrics.jsonl";

/// Where the run whose `checkpoint_dir` is `run_dir` logs its metrics.
pub fn path_in(run_dir: &Path) -> PathBuf {
    run_dir.join(FILE_NAME)
}

/// A step line of metrics.jsonl.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepMetrics {
    pub step: u64,
    pub loss: f32,
    pub lr: f32,
    pub grad_norm: f32,
    pub tokens_per_s: f64,
    pub loader_wait_ms: f64,
    /// Wall time of the step (0 in logs written before it was recorded).
    #[serde(default)]
    pub step_ms: f64,
    /// Model FLOP utilisation against the device's dense bf16 peak (absent
    /// when the device's peak is not known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfu: Option<f64>,
    /// The f16 loss scale the step ran at (absent without loss scaling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss_scale: Option<f32>,
    /// The update was skipped: the scaled gradients overflowed (present
    /// only when true).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub skipped: bool,
    /// The number of data-parallel ranks that computed the step.
    #[serde(default = "one")]
    pub world: u32,
}

fn one() -> u32 {
    1
}

/// An evaluation line of metrics.jsonl (after the step line of the same step).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EvalMetrics {
    pub step: u64,
    pub heldout: Vec<CategoryLoss>,
}

/// One line of the log, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsLine {
    Step(StepMetrics),
    Eval(EvalMetrics),
}

impl MetricsLine {
    /// Parses one (non-blank) line.
    pub fn parse(line: &[u8]) -> Result<MetricsLine, LineProblem> {
        let v: serde_json::Value = serde_json::from_slice(line).map_err(LineProblem::Json)?;
        if !v.is_object() {
            return Err(LineProblem::NotAnObject);
        }
        if v.get("heldout").is_some() {
            EvalMetrics::deserialize(&v)
                .map(MetricsLine::Eval)
                .map_err(LineProblem::Eval)
        } else {
            StepMetrics::deserialize(&v)
                .map(MetricsLine::Step)
                .map_err(LineProblem::Step)
        }
    }
}

/// A whole log: its step lines and its evaluation lines, each in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsLog {
    pub steps: Vec<StepMetrics>,
    pub evals: Vec<EvalMetrics>,
}

/// Why a metrics.jsonl could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A line that is not one of the two kinds the trainer writes.
    #[error("{}:{line}: {problem}", path.display())]
    Line {
        path: PathBuf,
        /// 1-based.
        line: usize,
        problem: LineProblem,
    },
}

/// What is wrong with one line.
#[derive(Debug, thiserror::Error)]
pub enum LineProblem {
    #[error("not JSON: {0}")]
    Json(serde_json::Error),
    #[error("not a metrics line: a JSON object is expected")]
    NotAnObject,
    /// A line without `heldout` that does not have a step line's fields.
    #[error("not a step line: {0}")]
    Step(serde_json::Error),
    /// A line with `heldout` that does not have an evaluation line's fields.
    #[error("not an evaluation line: {0}")]
    Eval(serde_json::Error),
}

/// Reads the metrics log at `path` (a missing file is an error too: a
/// caller that can do without one checks for it first).
pub fn read(path: &Path) -> Result<MetricsLog, MetricsError> {
    let io = |source| MetricsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut reader = std::io::BufReader::new(file);
    let mut log = MetricsLog::default();
    // Bytes rather than `lines()`: a line that is not UTF-8 is then a JSON
    // error with its line number instead of an I/O error without one.
    let mut buf = Vec::new();
    let mut number = 0;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf).map_err(io)? == 0 {
            break;
        }
        number += 1;
        let line = buf.trim_ascii();
        if line.is_empty() {
            continue;
        }
        match MetricsLine::parse(line) {
            Ok(MetricsLine::Step(s)) => log.steps.push(s),
            Ok(MetricsLine::Eval(e)) => log.evals.push(e),
            Err(problem) => {
                return Err(MetricsError::Line {
                    path: path.to_path_buf(),
                    line: number,
                    problem,
                })
            }
        }
    }
    Ok(log)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STEP: &str = r#"{"step":1,"loss":5.5,"lr":0.01,"grad_norm":1.0,"tokens_per_s":100.0,"loader_wait_ms":0.0}"#;

    #[test]
    fn kinds_are_told_by_the_heldout_key() {
        let s = MetricsLine::parse(STEP.as_bytes()).unwrap();
        assert!(matches!(s, MetricsLine::Step(ref m) if m.step == 1 && m.world == 1));
        let e = r#"{"step":1,"heldout":[{"category":"a","loss":2.0,"tokens":64}]}"#;
        let e = MetricsLine::parse(e.as_bytes()).unwrap();
        assert!(matches!(e, MetricsLine::Eval(ref m) if m.heldout[0].category == "a"));
        for (line, want) in [
            ("[1, 2]", "a JSON object is expected"),
            (r#"{"step":1}"#, "not a step line: missing field `loss`"),
            (r#"{"step":1,"heldout":3}"#, "not an evaluation line"),
            (r#"{"step":"#, "not JSON"),
        ] {
            let err = MetricsLine::parse(line.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(want), "{line}: {err}");
        }
    }

    /// A log's lines are steps or evaluations; anything else, or a file
    /// that is not there, is an error naming the file and (for a line) its
    /// number, never a shorter log.
    #[test]
    fn a_log_reads_whole_or_fails_naming_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = path_in(dir.path());
        let eval = r#"{"step":1,"heldout":[]}"#;
        let step2 = STEP.replace("\"step\":1", "\"step\":2");
        std::fs::write(&p, format!("{STEP}\n{eval}\n\n{step2}\n")).unwrap();
        let log = read(&p).unwrap();
        assert_eq!(log.steps.iter().map(|s| s.step).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(log.evals.len(), 1);
        for (text, line, want) in [
            (format!("{STEP}\n{{\"step\":2,\"lo"), 2, "EOF"),
            (
                format!("{STEP}\n{eval}\n{{\"step\":3}}\n"),
                3,
                "not a step line",
            ),
            (
                format!("{{\"step\":1,\"heldout\":7}}\n{STEP}\n"),
                1,
                "not an evaluation line",
            ),
            (format!("{STEP}\n\n\"x\"\n"), 3, "a JSON object is expected"),
        ] {
            std::fs::write(&p, text).unwrap();
            let err = read(&p).unwrap_err().to_string();
            let at = format!("{}:{line}:", p.display());
            assert!(
                err.contains(&at) && err.contains(want),
                "{at} {want}: {err}"
            );
        }
        std::fs::remove_file(&p).unwrap();
        let err = read(&p).unwrap_err();
        assert!(matches!(err, MetricsError::Io { .. }), "{err}");
        assert!(err.to_string().contains(&p.display().to_string()), "{err}");
    }

    #[test]
    fn written_lines_read_back() {
        let m = StepMetrics {
            step: 7,
            loss: 3.25,
            lr: 1e-3,
            grad_norm: 0.5,
            tokens_per_s: 1e4,
            loader_wait_ms: 0.25,
            step_ms: 12.0,
            mfu: Some(0.3),
            loss_scale: None,
            skipped: true,
            world: 2,
        };
        let line = serde_json::to_string(&m).unwrap();
        assert_eq!(
            MetricsLine::parse(line.as_bytes()).unwrap(),
            MetricsLine::Step(m)
        );
    }
}
