//! Data-parallel process groups, the ground [dist] training stands on:
//!
//! - [`launch`]: where this process sits in a job, read from the
//!   environment torchrun, Slurm's srun or Open MPI's mpirun give it (no
//!   variables: a world of one).
//! - [`rendezvous`]: how the ranks of one job find each other over TCP at
//!   `MASTER_ADDR:MASTER_PORT`, rank 0 listening, as torchrun and llm.c do
//!   it. A process joins only its own job: rank 0 refuses, naming both
//!   sides, a stray from another job, a rank number taken twice, or a
//!   world size or training-config fingerprint that differs from its own.
//! - [`collective`]: the host collective over the rendezvous' links:
//!   gathers, broadcasts and an all-reduce summed on rank 0 in rank order,
//!   so the same inputs give the same bits. It is the CPU stand-in that
//!   lets tests run the data-parallel logic without a GPU, not a
//!   production backend (every byte goes through rank 0's sockets).
//! - [`nccl`]: finding NCCL at run time and a communicator over it for
//!   cubecl-cuda buffers (checked by `prior runtime nccl-check`; training
//!   still exchanges through the host collective).
//!
//! Every wait has a deadline: a rank that dies or hangs makes the others
//! fail within the group's timeout with an error naming that rank.

pub mod collective;
pub mod launch;
pub mod nccl;
pub mod rendezvous;

pub use collective::Group;
pub use launch::{Launcher, Placement};

use std::time::Duration;

/// What went wrong forming or using a process group.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// A launcher variable is malformed or contradicts another.
    #[error("launcher environment: {var}={value:?}: {detail}")]
    Launch {
        var: String,
        value: String,
        detail: String,
    },
    /// The rendezvous address could not be used.
    #[error("rendezvous at {addr}: {detail}")]
    Rendezvous { addr: String, detail: String },
    /// Rank 0 refused this process (another job, a taken rank number, a
    /// different config); the message names both sides.
    #[error("rendezvous at {addr}: rank 0 refused rank {rank}: {detail}")]
    Refused {
        addr: String,
        rank: u32,
        detail: String,
    },
    /// Not every rank joined before the deadline.
    #[error("rendezvous at {addr}: after {waited:?}, ranks {missing:?} of world {world} never joined{refused}")]
    Missing {
        addr: String,
        world: u32,
        missing: Vec<u32>,
        waited: Duration,
        /// Refusals seen while waiting, for the operator (may be empty).
        refused: String,
    },
    /// A peer died, hung or broke the protocol during a collective.
    #[error("rank {rank}: {detail}")]
    Peer { rank: u32, detail: String },
    /// NCCL is missing, refused a call, or a collective over it failed.
    #[error("NCCL: {detail}")]
    Nccl { detail: String },
}

pub type Result<T> = std::result::Result<T, DistError>;
