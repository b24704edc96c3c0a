//! prior-loader's integration tests, one binary (each test binary links
//! the crates below it again, so they are modules of one).

mod contract;
mod pipeline;
