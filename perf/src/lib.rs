//! prior-perf: throughput profiling (not built yet).
//!
//! Will own tokens/s, MFU, stall shares, latency histograms and the bench
//! harnesses. Nothing here is usable yet; today's measurements are the
//! scripts under `perf/` and the figures in `perf/NOTES.md`.
