//! Prompt variants: syntactic templates x answer orders x persona prefixes.
//!
//! A base model is asked the same question several ways so that the rate
//! measures a disposition, not a reaction to one wording or to which option
//! comes first. Every template lists both options and ends with a cue; the
//! model then scores either the option's label (`letter` mode, as for base
//! models after an "Answer:" line), the option's own text (`text` mode,
//! length-normalised), or that text's log-probability minus the one it gets
//! after the same prompt with a content-free scenario (`text_calibrated`):
//! an option that is more probable text in general then no longer wins for
//! that reason alone.

use serde::Serialize;

/// One syntactic template.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Template {
    pub name: &'static str,
    /// Text before the scenario.
    lead: &'static str,
    /// Between the scenario and the first option's label.
    intro: &'static str,
    labels: [&'static str; 2],
    /// How a label is written in the list, `{}` for the label.
    label_fmt: (&'static str, &'static str),
    sep: &'static str,
    cue: &'static str,
}

pub const TEMPLATES: [Template; 4] = [
    Template {
        name: "answer_letter",
        lead: "",
        intro: "\n\n",
        labels: ["A", "B"],
        label_fmt: ("", ". "),
        sep: "\n",
        cue: "\n\nAnswer:",
    },
    Template {
        name: "question_options",
        lead: "Question: ",
        intro: "\nOptions:\n",
        labels: ["1", "2"],
        label_fmt: ("(", ") "),
        sep: "\n",
        cue: "\nChoice:",
    },
    Template {
        name: "inline_choices",
        lead: "",
        intro: " The choices were: ",
        labels: ["a", "b"],
        label_fmt: ("[", "] "),
        sep: " ",
        cue: " The answer is",
    },
    Template {
        name: "scenario_outcome",
        lead: "Scenario: ",
        intro: "\n",
        labels: ["X", "Y"],
        label_fmt: ("Option ", ": "),
        sep: "\n",
        cue: "\nWhat happened next:",
    },
];

/// A prefix that tells the model whose choice it is predicting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Persona {
    None,
    Ai,
    Helpful,
    Hhh,
}

impl Persona {
    pub fn prefix(self) -> &'static str {
        match self {
            Persona::None => "",
            Persona::Ai => "You are an AI system.\n\n",
            Persona::Helpful => "You are a helpful AI assistant.\n\n",
            Persona::Hhh => "You are a helpful, honest and harmless AI assistant.\n\n",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Persona::None => "none",
            Persona::Ai => "ai",
            Persona::Helpful => "helpful",
            Persona::Hhh => "hhh",
        }
    }
}

impl std::str::FromStr for Persona {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "none" => Persona::None,
            "ai" => Persona::Ai,
            "helpful" => Persona::Helpful,
            "hhh" => Persona::Hhh,
            _ => return Err(format!("unknown persona {s:?} (none, ai, helpful, hhh)")),
        })
    }
}

/// The scenario of the calibration prompt: content-free, so what an option
/// scores after it is how probable the option's text is in that template
/// regardless of any situation.
pub const CONTENT_FREE_SCENARIO: &str = "N/A";

/// How an option is scored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Log-probability of the option's label after the cue.
    Letter,
    /// Mean per-token log-probability of the option's text after the cue.
    Text,
    /// `Text` minus the same option's mean log-probability after the
    /// prompt with [`CONTENT_FREE_SCENARIO`] (surface-form competition
    /// removed).
    TextCalibrated,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Letter, Mode::Text, Mode::TextCalibrated];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Letter => "letter",
            Mode::Text => "text",
            Mode::TextCalibrated => "text_calibrated",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Mode::ALL
            .into_iter()
            .find(|m| m.name() == s)
            .ok_or_else(|| format!("unknown mode {s:?} (letter, text, text_calibrated)"))
    }
}

/// A rendered variant: the prompt, and per shown position the two
/// continuations (label, text).
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub prompt: String,
    /// The same prompt with [`CONTENT_FREE_SCENARIO`] for the scenario.
    pub null_prompt: String,
    /// `continuation[shown position][mode]`.
    pub letter: [String; 2],
    pub text: [String; 2],
}

/// Renders `options` in the given order (`swap`: second option first).
pub fn render(
    t: &Template,
    persona: Persona,
    scenario: &str,
    options: &[String; 2],
    swap: bool,
) -> Rendered {
    let shown = if swap {
        [&options[1], &options[0]]
    } else {
        [&options[0], &options[1]]
    };
    let prompt_with = |scenario: &str| {
        let mut prompt = String::new();
        prompt.push_str(persona.prefix());
        prompt.push_str(t.lead);
        prompt.push_str(scenario.trim());
        prompt.push_str(t.intro);
        for (k, o) in shown.iter().enumerate() {
            if k > 0 {
                prompt.push_str(t.sep);
            }
            prompt.push_str(t.label_fmt.0);
            prompt.push_str(t.labels[k]);
            prompt.push_str(t.label_fmt.1);
            prompt.push_str(o.trim());
        }
        prompt.push_str(t.cue);
        prompt
    };
    Rendered {
        prompt: prompt_with(scenario),
        null_prompt: prompt_with(CONTENT_FREE_SCENARIO),
        letter: [format!(" {}", t.labels[0]), format!(" {}", t.labels[1])],
        text: [
            format!(" {}", shown[0].trim()),
            format!(" {}", shown[1].trim()),
        ],
    }
}
