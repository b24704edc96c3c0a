//! prior-eval: measuring alignment (not built yet).
//!
//! Will own the binary-choice misalignment-propensity evaluation, held-out
//! loss per category and reports. Nothing here is usable yet.
