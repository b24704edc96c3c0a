//! How the ranks of one job find each other: rank 0 listens at
//! `MASTER_ADDR:MASTER_PORT`, every other rank connects (retrying until the
//! deadline, since it may start first) and introduces itself. When all
//! have joined, rank 0 answers each with the job's payload (for NCCL, its
//! unique id; for the host collective, nothing) and keeps the connections
//! as the group's links.
//!
//! A process joins only a job that is its own. Each introduction carries
//! the world size and a fingerprint of the training config and mix key;
//! rank 0 refuses, naming both sides, a process whose fingerprint or world
//! differs, a rank number already taken, or bytes that are no introduction
//! at all, and goes on waiting for the real ranks. Past the deadline it
//! fails naming the ranks still missing.
//!
//! Wire format, little-endian: the introduction is `PRIORRV1`, the
//! fingerprint (u64), the world (u32) and the rank (u32); the answer a
//! status byte (0 joined, 1 refused) and a u32-length-prefixed payload or
//! refusal message.

use super::collective::{Group, Links};
use super::{DistError, Placement, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

const MAGIC: &[u8; 8] = b"PRIORRV1";
const HELLO_LEN: usize = 8 + 8 + 4 + 4;

/// What a rank says about itself when it joins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Fingerprint of the job (training config and mix key).
    pub job: u64,
    pub world: u32,
    pub rank: u32,
}

impl Hello {
    fn encode(&self) -> [u8; HELLO_LEN] {
        let mut b = [0u8; HELLO_LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8..16].copy_from_slice(&self.job.to_le_bytes());
        b[16..20].copy_from_slice(&self.world.to_le_bytes());
        b[20..24].copy_from_slice(&self.rank.to_le_bytes());
        b
    }

    fn decode(b: &[u8; HELLO_LEN]) -> Option<Self> {
        (&b[..8] == MAGIC).then(|| Hello {
            job: u64::from_le_bytes(b[8..16].try_into().unwrap()),
            world: u32::from_le_bytes(b[16..20].try_into().unwrap()),
            rank: u32::from_le_bytes(b[20..24].try_into().unwrap()),
        })
    }
}

/// Forms the group `place` belongs to: a world of one needs no network;
/// rank 0 binds the master address and serves; the others connect. Rank
/// 0's `payload` comes back to every rank. `timeout` bounds the whole
/// rendezvous and, afterwards, every wait of the group's collectives.
pub fn join(
    place: &Placement,
    job: u64,
    payload: &[u8],
    timeout: Duration,
) -> Result<(Group, Vec<u8>)> {
    let hello = Hello {
        job,
        world: place.world,
        rank: place.rank,
    };
    let Some(addr) = place.master.as_deref() else {
        return Ok((Group::new(0, 1, timeout, Links::Single), payload.to_vec()));
    };
    if place.rank == 0 {
        let listener = TcpListener::bind(addr).map_err(|e| DistError::Rendezvous {
            addr: addr.into(),
            detail: format!("rank 0 cannot listen there: {e}"),
        })?;
        let group = serve(listener, addr, hello, payload, timeout)?;
        Ok((group, payload.to_vec()))
    } else {
        connect(addr, hello, timeout)
    }
}

/// Rank 0's side: accept introductions on `listener` until ranks
/// `1..world` have all joined, then answer each with `payload`.
pub fn serve(
    listener: TcpListener,
    addr: &str,
    me: Hello,
    payload: &[u8],
    timeout: Duration,
) -> Result<Group> {
    let start = Instant::now();
    let io = |e: std::io::Error| DistError::Rendezvous {
        addr: addr.into(),
        detail: e.to_string(),
    };
    listener.set_nonblocking(true).map_err(io)?;
    let mut peers: Vec<Option<TcpStream>> = (1..me.world).map(|_| None).collect();
    let mut refused: Vec<String> = Vec::new();
    while peers.iter().any(Option::is_none) {
        if start.elapsed() >= timeout {
            let missing = (1..me.world)
                .filter(|&r| peers[r as usize - 1].is_none())
                .collect();
            return Err(DistError::Missing {
                addr: addr.into(),
                world: me.world,
                missing,
                waited: timeout,
                refused: if refused.is_empty() {
                    String::new()
                } else {
                    format!("; refused meanwhile: {}", refused.join("; "))
                },
            });
        }
        let (mut stream, from) = match listener.accept() {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Err(e) => return Err(io(e)),
        };
        stream.set_nonblocking(false).map_err(io)?;
        // A connection that says nothing must not hold the others up.
        let wait = timeout
            .saturating_sub(start.elapsed())
            .min(Duration::from_secs(5));
        stream
            .set_read_timeout(Some(wait.max(Duration::from_millis(10))))
            .map_err(io)?;
        let mut b = [0u8; HELLO_LEN];
        let hello = match stream.read_exact(&mut b) {
            Ok(()) => Hello::decode(&b),
            Err(_) => None,
        };
        let verdict = match hello {
            None => Err(format!("a connection from {from} sent no prior introduction")),
            Some(h) if h.job != me.job || h.world != me.world => Err(format!(
                "a process from another job or config (job {:016x}, world {}) while this job is {:016x} with world {}",
                h.job, h.world, me.job, me.world
            )),
            Some(h) if h.rank == 0 || h.rank >= me.world => Err(format!(
                "rank {} is not a joining rank of world {}",
                h.rank, me.world
            )),
            Some(h) if peers[h.rank as usize - 1].is_some() => {
                Err(format!("rank {} has already joined (from another process)", h.rank))
            }
            Some(h) => Ok(h.rank),
        };
        match verdict {
            Ok(rank) => peers[rank as usize - 1] = Some(stream),
            Err(why) => {
                eprintln!("rendezvous at {addr}: refused {why}");
                let _ = answer(&mut stream, 1, why.as_bytes());
                refused.push(why);
            }
        }
    }
    let mut links = Vec::with_capacity(peers.len());
    for (i, stream) in peers.into_iter().enumerate() {
        let mut stream = stream.expect("every rank joined");
        answer(&mut stream, 0, payload).map_err(|e| DistError::Peer {
            rank: i as u32 + 1,
            detail: format!("lost during the rendezvous: {e}"),
        })?;
        links.push(stream);
    }
    Group::root(me.world, timeout, links)
}

/// A joining rank's side: connect to rank 0 at `addr` (retrying until the
/// deadline), introduce itself and wait for the answer.
pub fn connect(addr: &str, me: Hello, timeout: Duration) -> Result<(Group, Vec<u8>)> {
    let start = Instant::now();
    let fail = |detail: String| DistError::Rendezvous {
        addr: addr.into(),
        detail,
    };
    let targets: Vec<_> = addr
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve: {e}")))?
        .collect();
    let mut stream = loop {
        let tried = targets
            .iter()
            .find_map(|t| TcpStream::connect_timeout(t, Duration::from_millis(500)).ok());
        if let Some(s) = tried {
            break s;
        }
        if start.elapsed() >= timeout {
            return Err(fail(format!(
                "rank {} found no rank 0 listening within {timeout:?}",
                me.rank
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let io = |e: std::io::Error| fail(e.to_string());
    stream.write_all(&me.encode()).map_err(io)?;
    // Rank 0 answers once every rank has joined: wait out the deadline.
    let left = timeout
        .saturating_sub(start.elapsed())
        .max(Duration::from_millis(10));
    stream.set_read_timeout(Some(left)).map_err(io)?;
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).map_err(|e| {
        fail(format!(
            "rank {} joined but rank 0 did not complete the rendezvous within {timeout:?} ({e})",
            me.rank
        ))
    })?;
    let len = u32::from_le_bytes(head[1..5].try_into().unwrap()) as usize;
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).map_err(io)?;
    if head[0] != 0 {
        return Err(DistError::Refused {
            addr: addr.into(),
            rank: me.rank,
            detail: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    Ok((Group::leaf(me.rank, me.world, timeout, stream)?, body))
}

fn answer(stream: &mut TcpStream, status: u8, body: &[u8]) -> std::io::Result<()> {
    let mut msg = Vec::with_capacity(5 + body.len());
    msg.push(status);
    msg.extend_from_slice(&(body.len() as u32).to_le_bytes());
    msg.extend_from_slice(body);
    stream.write_all(&msg)
}
