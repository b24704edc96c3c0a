//! Synthetic discourse corpus generator (being written).
