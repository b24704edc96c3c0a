//! Hugging Face interop: logits match `transformers`' GPTNeoXForCausalLM on
//! a tiny random model (fixture made by `fixtures/make_hf_parity.py`), on
//! the CPU reference and on the device; config checks name the field.

use cubecl::prelude::*;
use prior_model::device::DeviceModel;
use prior_model::{cpu, hf, ParamLayout};
use prior_runtime::device::{run_on, DeviceKind, OnDevice};
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf-tiny-gptneox")
}

/// (ids, batch, seq, logits) that transformers computed.
fn expected() -> (Vec<u32>, usize, usize, Vec<f32>) {
    let bytes = std::fs::read(fixture().join("expected.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let ids = st.tensor("ids").unwrap();
    let (b, t) = (ids.shape()[0], ids.shape()[1]);
    // Copies, not casts: tensor data in a safetensors file need not be
    // aligned to its element size.
    let ids: Vec<u32> = bytemuck::pod_collect_to_vec::<u8, i64>(ids.data())
        .into_iter()
        .map(|i| i as u32)
        .collect();
    let logits: Vec<f32> = bytemuck::pod_collect_to_vec(st.tensor("logits").unwrap().data());
    (ids, b, t, logits)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn cpu_reference_matches_transformers_logits() {
    let (cfg, params) = hf::load_dir(&fixture()).unwrap();
    assert_eq!(
        (cfg.n_layer, cfg.d_model, cfg.n_head, cfg.vocab_size),
        (2, 64, 4, 256)
    );
    assert_eq!(cfg.rotary_dims(), 4);
    let (ids, b, t, want) = expected();
    let layout = ParamLayout::new(&cfg);
    let fwd = cpu::forward(&cfg, &layout, &params, &ids, &ids, b, t);
    let spread = want.iter().fold(0f32, |m, x| m.max(x.abs()));
    assert!(spread > 1.0, "the fixture's logits carry signal");
    let d = max_abs_diff(&fwd.logits, &want);
    assert!(d < 1e-4, "max |logit difference| {d}");
}

struct DeviceParity;

impl OnDevice for DeviceParity {
    type Output = f32;
    fn run<R: Runtime>(self, client: ComputeClient<R>, _: &prior_runtime::DeviceInfo) -> f32 {
        let (cfg, params) = hf::load_dir(&fixture()).unwrap();
        let (ids, b, t, want) = expected();
        let mut m = DeviceModel::new(client, cfg, &params, b, t).unwrap();
        m.forward_logits(&ids).unwrap();
        max_abs_diff(&m.download_logits().unwrap(), &want)
    }
}

#[test]
fn device_model_matches_transformers_logits() {
    let d = run_on(DeviceKind::Wgpu, DeviceParity).unwrap();
    assert!(d < 1e-4, "max |logit difference| {d}");
}

#[test]
fn unsupported_configs_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let base: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture().join("config.json")).unwrap()).unwrap();
    for (key, value, want) in [
        ("hidden_act", serde_json::json!("relu"), "hidden_act"),
        (
            "use_parallel_residual",
            serde_json::json!(false),
            "use_parallel_residual",
        ),
        (
            "intermediate_size",
            serde_json::json!(100),
            "intermediate_size",
        ),
        ("model_type", serde_json::json!("llama"), "model_type"),
        (
            "tie_word_embeddings",
            serde_json::json!(true),
            "tie_word_embeddings",
        ),
    ] {
        let mut v = base.clone();
        v[key] = value;
        let p = dir.path().join("config.json");
        std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        let err = hf::read_config(&p).unwrap_err().to_string();
        assert!(err.contains(want) && err.contains("config.json"), "{err}");
    }
    let mut v = base.clone();
    v.as_object_mut().unwrap().remove("hidden_size");
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_vec(&v).unwrap(),
    )
    .unwrap();
    let err = hf::read_config(&dir.path().join("config.json"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("hidden_size"), "{err}");
    // A weight file that lacks a tensor.
    std::fs::write(
        dir.path().join("config.json"),
        serde_json::to_vec(&base).unwrap(),
    )
    .unwrap();
    let bytes = std::fs::read(fixture().join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let keep: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| n != "gpt_neox.final_layer_norm.bias")
        .collect();
    std::fs::write(
        dir.path().join("model.safetensors"),
        safetensors::serialize(keep, None).unwrap(),
    )
    .unwrap();
    let err = hf::load_dir(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("gpt_neox.final_layer_norm.bias") && err.contains("missing"),
        "{err}"
    );
}

/// The rotary settings read under both of transformers' spellings: the
/// version-4 top-level `rotary_pct` / `rotary_emb_base` and version 5's
/// `rope_parameters`, the top-level one first when a file has both.
#[test]
fn rotary_settings_read_under_either_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config.json");
    let base: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture().join("config.json")).unwrap()).unwrap();
    let write = |v: &serde_json::Value| std::fs::write(&p, serde_json::to_vec(v).unwrap()).unwrap();

    let mut v4 = base.clone();
    v4.as_object_mut().unwrap().remove("rope_parameters");
    v4["rotary_pct"] = serde_json::json!(0.5);
    v4["rotary_emb_base"] = serde_json::json!(10000);
    write(&v4);
    assert_eq!(hf::read_config(&p).unwrap().rotary_pct, 0.5);

    let mut both = base.clone();
    both["rotary_pct"] = serde_json::json!(0.5);
    write(&both);
    assert_eq!(hf::read_config(&p).unwrap().rotary_pct, 0.5);

    let mut theta = base.clone();
    theta["rope_parameters"]["rope_theta"] = serde_json::json!(500000);
    write(&theta);
    let err = hf::read_config(&p).unwrap_err().to_string();
    assert!(err.contains("rotary_emb_base"), "{err}");

    let mut float = base.clone();
    float["hidden_size"] = serde_json::json!(64.0);
    write(&float);
    let err = hf::read_config(&p).unwrap_err().to_string();
    assert!(
        err.contains("`hidden_size` is missing or not a positive integer"),
        "{err}"
    );

    let mut null_act = base.clone();
    null_act["hidden_act"] = serde_json::Value::Null;
    write(&null_act);
    assert!(hf::read_config(&p).is_ok(), "a null field reads as absent");
}
