//! The flat parameter layout: every tensor of the model at an aligned
//! offset of one buffer, under its Hugging Face GPTNeoX name, so that
//! parameters, gradients and both AdamW moments are four flat buffers with
//! the same layout (llm.c style), and checkpoints map one to one onto
//! safetensors tensors that `transformers` loads.
//!
//! Tensors with weight decay (the matrices) come first and the rest (norms,
//! biases) after, so the optimizer is two launches over two ranges.

use rand::SeedableRng;
use rand_distr_normal::normal;

use crate::config::ModelConfig;

/// Offsets are multiples of this many elements: device views of the flat
/// buffer must start at 256 bytes, and the compute-type copy of the weights
/// (2-byte bf16 or f16) shares this layout with the f32 master buffers.
pub const ALIGN: usize = 128;

#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub decay: bool,
}

impl TensorSpec {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone)]
pub struct ParamLayout {
    pub tensors: Vec<TensorSpec>,
    /// Elements in the flat buffer (padding included).
    pub total: usize,
    /// `[0, decay_end)` holds exactly the decayed tensors (and padding).
    pub decay_end: usize,
}

/// Names of one layer's tensors.
pub fn layer_name(l: usize, what: &str) -> String {
    format!("gpt_neox.layers.{l}.{what}")
}

impl ParamLayout {
    pub fn new(cfg: &ModelConfig) -> ParamLayout {
        let (c, v) = (cfg.d_model, cfg.vocab_size);
        let mut decayed: Vec<(String, Vec<usize>)> =
            vec![("gpt_neox.embed_in.weight".into(), vec![v, c])];
        let mut plain: Vec<(String, Vec<usize>)> = Vec::new();
        for l in 0..cfg.n_layer {
            decayed.push((
                layer_name(l, "attention.query_key_value.weight"),
                vec![3 * c, c],
            ));
            decayed.push((layer_name(l, "attention.dense.weight"), vec![c, c]));
            decayed.push((layer_name(l, "mlp.dense_h_to_4h.weight"), vec![4 * c, c]));
            decayed.push((layer_name(l, "mlp.dense_4h_to_h.weight"), vec![c, 4 * c]));
            plain.push((layer_name(l, "input_layernorm.weight"), vec![c]));
            plain.push((layer_name(l, "input_layernorm.bias"), vec![c]));
            plain.push((layer_name(l, "post_attention_layernorm.weight"), vec![c]));
            plain.push((layer_name(l, "post_attention_layernorm.bias"), vec![c]));
            plain.push((layer_name(l, "attention.query_key_value.bias"), vec![3 * c]));
            plain.push((layer_name(l, "attention.dense.bias"), vec![c]));
            plain.push((layer_name(l, "mlp.dense_h_to_4h.bias"), vec![4 * c]));
            plain.push((layer_name(l, "mlp.dense_4h_to_h.bias"), vec![c]));
        }
        decayed.push(("embed_out.weight".into(), vec![v, c]));
        plain.push(("gpt_neox.final_layer_norm.weight".into(), vec![c]));
        plain.push(("gpt_neox.final_layer_norm.bias".into(), vec![c]));
        let mut tensors = Vec::new();
        let mut offset = 0usize;
        let mut decay_end = 0;
        for (group, decay) in [(decayed, true), (plain, false)] {
            for (name, shape) in group {
                let len: usize = shape.iter().product();
                tensors.push(TensorSpec {
                    name,
                    shape,
                    offset,
                    decay,
                });
                offset = (offset + len).div_ceil(ALIGN) * ALIGN;
            }
            if decay {
                decay_end = offset;
            }
        }
        ParamLayout {
            tensors,
            total: offset,
            decay_end,
        }
    }

    pub fn get(&self, name: &str) -> &TensorSpec {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("no tensor {name} in the layout"))
    }

    /// GPT-NeoX's initialisation: matrices N(0, sqrt(2 / (5 d))) ("small
    /// init"), the two output projections of each layer N(0, 2 / (L sqrt d))
    /// ("wang init"), norms 1, biases 0; from `seed`.
    pub fn init(&self, cfg: &ModelConfig, seed: u64) -> Vec<f32> {
        let mut flat = vec![0f32; self.total];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let small = (2.0 / (5.0 * cfg.d_model as f64)).sqrt();
        let wang = 2.0 / (cfg.n_layer as f64 * (cfg.d_model as f64).sqrt());
        for t in &self.tensors {
            let dst = &mut flat[t.offset..t.offset + t.len()];
            if t.name.ends_with("layernorm.weight") || t.name.ends_with("final_layer_norm.weight") {
                dst.fill(1.0);
            } else if t.decay {
                let std = if t.name.ends_with("attention.dense.weight")
                    || t.name.ends_with("dense_4h_to_h.weight")
                {
                    wang
                } else {
                    small
                };
                for x in dst.iter_mut() {
                    *x = (normal(&mut rng) * std) as f32;
                }
            }
        }
        flat
    }
}

/// A standard normal sample by Box-Muller (keeps the dependency list short).
mod rand_distr_normal {
    use rand::Rng;
    pub fn normal<R: Rng>(rng: &mut R) -> f64 {
        let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
        let u2: f64 = rng.random();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}
