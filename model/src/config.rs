//! Model dimensions: the GPT-NeoX/Pythia family and tiny test presets.

use serde::{Deserialize, Serialize};

/// Embedding and unembedding rows are padded to a multiple of this, as
/// GPT-NeoX does (it keeps matmul shapes friendly).
pub const VOCAB_MULTIPLE: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    pub n_layer: usize,
    pub d_model: usize,
    pub n_head: usize,
    /// Padded vocabulary (rows of the embedding and unembedding).
    pub vocab_size: usize,
    /// Fraction of each head's dimensions rotary rotates (Pythia: 0.25).
    pub rotary_pct: f32,
    pub layer_norm_eps: f32,
}

/// (name, layers, d_model, heads) of the Pythia suite.
const PYTHIA: [(&str, usize, usize, usize); 8] = [
    ("pythia-14m", 6, 128, 4),
    ("pythia-70m", 6, 512, 8),
    ("pythia-160m", 12, 768, 12),
    ("pythia-410m", 24, 1024, 16),
    ("pythia-1b", 16, 2048, 8),
    ("pythia-1.4b", 24, 2048, 16),
    ("pythia-2.8b", 32, 2560, 32),
    ("pythia-6.9b", 32, 4096, 32),
];

impl ModelConfig {
    /// A preset by name (`tiny`, `micro`, or a Pythia size), for a
    /// tokenizer of `vocab` ids (padded up to a multiple of 128).
    pub fn preset(name: &str, vocab: usize) -> Option<ModelConfig> {
        let (n_layer, d_model, n_head) = match name {
            "tiny" => (2, 64, 4),
            "micro" => (1, 32, 2),
            _ => {
                let p = PYTHIA.iter().find(|p| p.0 == name)?;
                (p.1, p.2, p.3)
            }
        };
        Some(ModelConfig {
            n_layer,
            d_model,
            n_head,
            vocab_size: vocab.div_ceil(VOCAB_MULTIPLE) * VOCAB_MULTIPLE,
            rotary_pct: 0.25,
            layer_norm_eps: 1e-5,
        })
    }

    pub fn preset_names() -> Vec<&'static str> {
        let mut v = vec!["micro", "tiny"];
        v.extend(PYTHIA.iter().map(|p| p.0));
        v
    }

    pub fn head_dim(&self) -> usize {
        self.d_model / self.n_head
    }

    /// Rotary dimensions per head (even).
    pub fn rotary_dims(&self) -> usize {
        let r = (self.head_dim() as f32 * self.rotary_pct) as usize;
        r - r % 2
    }

    /// Model FLOPs per trained token: (`6 N`, attention term). N is every
    /// parameter but the input embedding (a lookup, not a matmul); the
    /// attention term `12 n_layer d_model seq` counts scores and weighted
    /// sums forward and backward in full, as PaLM's MFU does.
    pub fn flops_per_token(&self, seq: usize) -> (f64, f64) {
        let n = (self.parameters() - self.vocab_size * self.d_model) as f64;
        (6.0 * n, 12.0 * (self.n_layer * self.d_model * seq) as f64)
    }

    /// Parameters, as GPT-NeoX counts them (untied embeddings included).
    pub fn parameters(&self) -> usize {
        let (c, v) = (self.d_model, self.vocab_size);
        let layer =
            4 * c + (3 * c * c + 3 * c) + (c * c + c) + (4 * c * c + 4 * c) + (4 * c * c + c);
        2 * v * c + self.n_layer * layer + 2 * c
    }
}
