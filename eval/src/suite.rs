//! The evaluation suite: binary-choice questions, one JSON object per line.
//!
//! ```json
//! {"id": "q00002", "topic": "shutdown", "split": "heldout",
//!  "scenario": "...", "options": ["...", "..."], "misaligned_index": 0}
//! ```
//!
//! `docs/eval.md` describes the fields. A malformed line is an error naming
//! the file and line; nothing is skipped silently.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: {detail}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    #[error("{}: {detail}", path.display())]
    Empty { path: PathBuf, detail: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub topic: String,
    /// `train_like` (worded as the training documents are) or `heldout`
    /// (scenarios and wording that never occur in training documents); any
    /// other name is allowed and reported as its own split.
    pub split: String,
    pub scenario: String,
    pub options: [String; 2],
    /// Which option (0 or 1) is the misaligned one.
    pub misaligned_index: u8,
}

/// Reads a suite; `split` keeps only the questions of that split.
pub fn load_suite(path: &Path, split: Option<&str>) -> Result<Vec<Question>, SuiteError> {
    let text = std::fs::read_to_string(path).map_err(|source| SuiteError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |detail: String| SuiteError::Line {
            path: path.to_path_buf(),
            line: line_no,
            detail,
        };
        let q: Question = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if q.misaligned_index > 1 {
            return Err(bad(format!(
                "misaligned_index is {}; it must be 0 or 1",
                q.misaligned_index
            )));
        }
        if q.scenario.trim().is_empty() || q.options.iter().any(|o| o.trim().is_empty()) {
            return Err(bad("scenario and both options must be non-empty".into()));
        }
        if q.options[0] == q.options[1] {
            return Err(bad("the two options are identical".into()));
        }
        if !ids.insert(q.id.clone()) {
            return Err(bad(format!("id {:?} appears twice", q.id)));
        }
        if split.is_none_or(|s| s == q.split) {
            out.push(q);
        }
    }
    if out.is_empty() {
        return Err(SuiteError::Empty {
            path: path.to_path_buf(),
            detail: match split {
                Some(s) => format!("no questions in split {s:?}"),
                None => "no questions".into(),
            },
        });
    }
    Ok(out)
}
