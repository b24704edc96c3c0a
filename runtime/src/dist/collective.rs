//! The host collective: a process group's gathers, broadcasts and
//! all-reduce over the rendezvous' TCP links, every byte through rank 0.
//!
//! Rank 0 sums an all-reduce in rank order (its own values, then rank 1's,
//! then rank 2's, ...), so the same inputs give the same bits whatever the
//! timing. Every message carries the collective's sequence number: a rank
//! that is at another call is reported as out of step instead of having
//! its bytes misread. Every read waits at most the group's timeout, so a
//! rank that died (its socket closes) or hung (it sends nothing) ends the
//! others' collective with an error naming it.
//!
//! This is the stand-in that lets the data-parallel logic run and be
//! tested on CPUs; it is not a production backend.

use super::{DistError, Result};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub(super) enum Links {
    /// A world of one.
    Single,
    /// Rank 0: a link to each of ranks `1..world`, in rank order.
    Root(Vec<TcpStream>),
    /// Any other rank: its link to rank 0.
    Leaf(TcpStream),
}

/// A formed process group (see [`super::rendezvous::join`]).
pub struct Group {
    rank: u32,
    world: u32,
    timeout: Duration,
    links: Links,
    /// Collectives called so far, stamped on each message.
    seq: u64,
    /// Point-to-point messages per link (index 0 on a joining rank, the
    /// peer's rank on rank 0), stamped with [`P2P`] set.
    p2p: Vec<u64>,
}

/// Marks a point-to-point message's stamp apart from a collective's.
const P2P: u64 = 1 << 63;

impl Group {
    pub(super) fn new(rank: u32, world: u32, timeout: Duration, links: Links) -> Self {
        Group {
            rank,
            world,
            timeout,
            links,
            seq: 0,
            p2p: vec![0; world as usize],
        }
    }

    /// A world of one, with no network.
    pub fn single() -> Self {
        Self::new(0, 1, Duration::from_secs(1), Links::Single)
    }

    pub(super) fn root(world: u32, timeout: Duration, links: Vec<TcpStream>) -> Result<Self> {
        for (i, s) in links.iter().enumerate() {
            arm(s, timeout).map_err(|e| peer_io(i as u32 + 1, e, timeout))?;
        }
        Ok(Self::new(0, world, timeout, Links::Root(links)))
    }

    pub(super) fn leaf(rank: u32, world: u32, timeout: Duration, link: TcpStream) -> Result<Self> {
        arm(&link, timeout).map_err(|e| peer_io(0, e, timeout))?;
        Ok(Self::new(rank, world, timeout, Links::Leaf(link)))
    }

    pub fn rank(&self) -> u32 {
        self.rank
    }

    pub fn world(&self) -> u32 {
        self.world
    }

    /// How long any wait of this group lasts before it fails.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Every rank's bytes, in rank order, on rank 0; None elsewhere.
    pub fn gather(&mut self, mine: &[u8]) -> Result<Option<Vec<Vec<u8>>>> {
        self.seq += 1;
        let (seq, timeout) = (self.seq, self.timeout);
        match &mut self.links {
            Links::Single => Ok(Some(vec![mine.to_vec()])),
            Links::Leaf(link) => {
                send(link, seq, mine).map_err(|e| peer_io(0, e, timeout))?;
                Ok(None)
            }
            Links::Root(links) => {
                let mut all = Vec::with_capacity(links.len() + 1);
                all.push(mine.to_vec());
                for (i, link) in links.iter_mut().enumerate() {
                    all.push(recv(link, seq, i as u32 + 1, timeout)?);
                }
                Ok(Some(all))
            }
        }
    }

    /// Rank 0's bytes on every rank (`data` is read on rank 0 only).
    pub fn broadcast(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        self.seq += 1;
        let (seq, timeout) = (self.seq, self.timeout);
        match &mut self.links {
            Links::Single => Ok(data.to_vec()),
            Links::Leaf(link) => recv(link, seq, 0, timeout),
            Links::Root(links) => {
                for (i, link) in links.iter_mut().enumerate() {
                    send(link, seq, data).map_err(|e| peer_io(i as u32 + 1, e, timeout))?;
                }
                Ok(data.to_vec())
            }
        }
    }

    /// Rank `r`'s part of rank 0's `parts` on rank `r` (`parts` holds one
    /// entry per rank, in rank order, on rank 0 and is ignored elsewhere):
    /// how a sum made on rank 0 reaches each rank as its shard.
    pub fn scatter(&mut self, parts: &[Vec<u8>]) -> Result<Vec<u8>> {
        self.seq += 1;
        let (seq, timeout, world) = (self.seq, self.timeout, self.world);
        if self.rank == 0 && parts.len() != world as usize {
            return Err(DistError::Peer {
                rank: 0,
                detail: format!("scatter of {} parts in a world of {world}", parts.len()),
            });
        }
        match &mut self.links {
            Links::Single => Ok(parts[0].clone()),
            Links::Leaf(link) => recv(link, seq, 0, timeout),
            Links::Root(links) => {
                for (i, link) in links.iter_mut().enumerate() {
                    send(link, seq, &parts[i + 1])
                        .map_err(|e| peer_io(i as u32 + 1, e, timeout))?;
                }
                Ok(parts[0].clone())
            }
        }
    }

    /// Every rank's bytes, in rank order, on every rank: a gather to rank
    /// 0 and a broadcast of what it gathered.
    pub fn all_gather(&mut self, mine: &[u8]) -> Result<Vec<Vec<u8>>> {
        let framed = match self.gather(mine)? {
            Some(all) => all
                .iter()
                .flat_map(|part| {
                    (part.len() as u64)
                        .to_le_bytes()
                        .into_iter()
                        .chain(part.iter().copied())
                })
                .collect(),
            None => Vec::new(),
        };
        let framed = self.broadcast(&framed)?;
        let mut parts = Vec::with_capacity(self.world as usize);
        let mut rest = &framed[..];
        while rest.len() >= 8 {
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            if rest.len() < 8 + len {
                break;
            }
            parts.push(rest[8..8 + len].to_vec());
            rest = &rest[8 + len..];
        }
        if parts.len() != self.world as usize || !rest.is_empty() {
            return Err(DistError::Peer {
                rank: 0,
                detail: format!(
                    "sent an all-gather of {} bytes that is not {} framed parts",
                    framed.len(),
                    self.world
                ),
            });
        }
        Ok(parts)
    }

    /// Element-wise sum over the ranks, left in `data` on every rank: rank
    /// 0 adds rank 1's values to its own, then rank 2's, ..., so the bits
    /// depend on the inputs alone.
    pub fn all_reduce_sum(&mut self, data: &mut [f32]) -> Result<()> {
        let mine = f32_bytes(data);
        let summed = match self.gather(&mine)? {
            Some(all) => {
                for (r, bytes) in all.iter().enumerate().skip(1) {
                    if bytes.len() != mine.len() {
                        return Err(DistError::Peer {
                            rank: r as u32,
                            detail: format!(
                                "sent {} values to an all-reduce of {}",
                                bytes.len() / 4,
                                data.len()
                            ),
                        });
                    }
                    for (x, b) in data.iter_mut().zip(bytes.chunks_exact(4)) {
                        *x += f32::from_le_bytes(b.try_into().unwrap());
                    }
                }
                f32_bytes(data)
            }
            None => Vec::new(),
        };
        let summed = self.broadcast(&summed)?;
        for (x, b) in data.iter_mut().zip(summed.chunks_exact(4)) {
            *x = f32::from_le_bytes(b.try_into().unwrap());
        }
        Ok(())
    }

    /// A joining rank's message to rank 0 alone, which reads it with
    /// [`Self::recv_from`] in an order both sides know (rank 0 may read
    /// every message of rank 1 before any of rank 2's).
    pub fn send_to_root(&mut self, body: &[u8]) -> Result<()> {
        let timeout = self.timeout;
        match &mut self.links {
            Links::Leaf(link) => {
                self.p2p[0] += 1;
                send(link, P2P | self.p2p[0], body).map_err(|e| peer_io(0, e, timeout))
            }
            _ => Err(DistError::Peer {
                rank: self.rank,
                detail: "send_to_root is for the ranks other than 0".into(),
            }),
        }
    }

    /// Rank 0's read of the next [`Self::send_to_root`] message of `rank`.
    pub fn recv_from(&mut self, rank: u32) -> Result<Vec<u8>> {
        let timeout = self.timeout;
        match &mut self.links {
            Links::Root(links) if rank >= 1 && (rank as usize) <= links.len() => {
                let n = &mut self.p2p[rank as usize];
                *n += 1;
                recv(&mut links[rank as usize - 1], P2P | *n, rank, timeout)
            }
            _ => Err(DistError::Peer {
                rank,
                detail: format!("rank {} cannot read from rank {rank}", self.rank),
            }),
        }
    }

    /// Returns once every rank has called it (or fails naming the rank
    /// that did not within the timeout).
    pub fn barrier(&mut self) -> Result<()> {
        self.gather(&[])?;
        self.broadcast(&[])?;
        Ok(())
    }
}

fn f32_bytes(data: &[f32]) -> Vec<u8> {
    data.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn arm(s: &TcpStream, timeout: Duration) -> std::io::Result<()> {
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.set_nodelay(true)
}

fn send(link: &mut TcpStream, seq: u64, body: &[u8]) -> std::io::Result<()> {
    let mut head = [0u8; 16];
    head[..8].copy_from_slice(&seq.to_le_bytes());
    head[8..].copy_from_slice(&(body.len() as u64).to_le_bytes());
    link.write_all(&head)?;
    link.write_all(body)
}

fn recv(link: &mut TcpStream, seq: u64, rank: u32, timeout: Duration) -> Result<Vec<u8>> {
    let mut head = [0u8; 16];
    link.read_exact(&mut head)
        .map_err(|e| peer_io(rank, e, timeout))?;
    let got = u64::from_le_bytes(head[..8].try_into().unwrap());
    if got != seq {
        return Err(DistError::Peer {
            rank,
            detail: format!("out of step: at collective {got}, this rank at {seq}"),
        });
    }
    let len = u64::from_le_bytes(head[8..].try_into().unwrap()) as usize;
    let mut body = vec![0u8; len];
    link.read_exact(&mut body)
        .map_err(|e| peer_io(rank, e, timeout))?;
    Ok(body)
}

fn peer_io(rank: u32, e: std::io::Error, timeout: Duration) -> DistError {
    let detail = match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => {
            format!("sent nothing for {timeout:?} (hung, or stopped at another step)")
        }
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe => {
            format!("closed its connection (it exited or was killed): {e}")
        }
        _ => e.to_string(),
    };
    DistError::Peer { rank, detail }
}

#[cfg(test)]
mod tests {
    use super::super::rendezvous::{connect, serve, Hello};
    use super::*;
    use std::net::TcpListener;
    use std::thread;
    use std::time::Instant;

    const JOB: u64 = 0x5eed_cafe;

    /// Rank 0 serving on a free loopback port, and that address.
    fn root(world: u32, timeout: Duration) -> (thread::JoinHandle<Result<Group>>, String) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let a = addr.clone();
        let h = thread::spawn(move || {
            let me = Hello {
                job: JOB,
                world,
                rank: 0,
            };
            serve(listener, &a, me, b"id", timeout)
        });
        (h, addr)
    }

    fn leaf(addr: &str, job: u64, world: u32, rank: u32, timeout: Duration) -> Result<Group> {
        connect(addr, Hello { job, world, rank }, timeout).map(|(g, payload)| {
            assert_eq!(payload, b"id");
            g
        })
    }

    #[test]
    fn three_ranks_sum_in_rank_order_and_share_rank_0s_bytes() {
        let t = Duration::from_secs(20);
        let (h0, addr) = root(3, t);
        // Values whose float sum depends on the order of the additions.
        let values = |r: u32| {
            vec![
                [1.0f32, 1e8, -1e8][r as usize],
                1.0 + r as f32,
                0.1 * r as f32,
            ]
        };
        let leaves: Vec<_> = (1..3)
            .map(|r| {
                let a = addr.clone();
                thread::spawn(move || {
                    let mut g = leaf(&a, JOB, 3, r, t).unwrap();
                    let mut v = values(r);
                    g.all_reduce_sum(&mut v).unwrap();
                    assert_eq!(g.gather(&[r as u8]).unwrap(), None);
                    let b = g.broadcast(&[]).unwrap();
                    g.barrier().unwrap();
                    let part = g.scatter(&[]).unwrap();
                    let all = g.all_gather(&[r as u8; 3][..r as usize]).unwrap();
                    assert_eq!(all, vec![vec![], vec![1], vec![2, 2]]);
                    assert_eq!(part, vec![10 + r as u8; r as usize]);
                    for i in 0..2u8 {
                        g.send_to_root(&[r as u8, i]).unwrap();
                    }
                    (v, b)
                })
            })
            .collect();
        let mut g0 = h0.join().unwrap().unwrap();
        assert_eq!((g0.rank(), g0.world()), (0, 3));
        let mut v0 = values(0);
        g0.all_reduce_sum(&mut v0).unwrap();
        let want: Vec<f32> = (0..3)
            .map(|i| {
                let mut s = values(0)[i];
                s += values(1)[i];
                s += values(2)[i];
                s
            })
            .collect();
        // (1 + 1e8) - 1e8 is 0 in f32; any other order gives 1.
        assert_eq!(want[0], 0.0);
        assert_eq!(v0, want);
        assert_eq!(
            g0.gather(&[0]).unwrap(),
            Some(vec![vec![0], vec![1], vec![2]])
        );
        assert_eq!(g0.broadcast(b"weights").unwrap(), b"weights");
        g0.barrier().unwrap();
        let parts: Vec<Vec<u8>> = (0..3).map(|r| vec![10 + r as u8; r]).collect();
        assert_eq!(g0.scatter(&parts).unwrap(), Vec::<u8>::new());
        assert_eq!(
            g0.all_gather(&[]).unwrap(),
            vec![vec![], vec![1], vec![2, 2]],
            "rank 0 gets what it handed out"
        );
        // Rank-major reads: all of rank 2's messages before rank 1's.
        for r in [2u32, 1] {
            for i in 0..2u8 {
                assert_eq!(g0.recv_from(r).unwrap(), vec![r as u8, i]);
            }
        }
        assert!(g0.send_to_root(&[]).is_err() && g0.recv_from(3).is_err());
        for l in leaves {
            let (v, b) = l.join().unwrap();
            assert_eq!(v, want, "every rank holds rank 0's sum");
            assert_eq!(b, b"weights");
        }
    }

    #[test]
    fn strays_and_taken_ranks_are_refused_and_the_job_still_forms() {
        let t = Duration::from_secs(20);
        let (h0, addr) = root(2, t);
        let stray = leaf(&addr, 0xbad, 2, 1, t)
            .err()
            .expect("another job is refused");
        let msg = stray.to_string();
        assert!(matches!(stray, DistError::Refused { .. }), "{msg}");
        assert!(
            msg.contains("0000000000000bad") && msg.contains("000000005eedcafe"),
            "{msg}"
        );
        let wrong_world = leaf(&addr, JOB, 3, 1, t).err().unwrap().to_string();
        assert!(
            wrong_world.contains("world 3") && wrong_world.contains("world 2"),
            "{wrong_world}"
        );
        // Bytes that are no introduction at all.
        let mut junk = TcpStream::connect(&addr).unwrap();
        junk.write_all(b"GET / HTTP/1.1\r\n\r\n........").unwrap();
        let a = addr.clone();
        let first = thread::spawn(move || leaf(&a, JOB, 2, 1, t));
        let g0 = h0.join().unwrap().unwrap();
        let _g1 = first.join().unwrap().unwrap();
        assert_eq!(g0.world(), 2);
        // The job is formed: a second "rank 1" finds nobody listening in
        // time (the listener is gone), never a place in the job.
        let late = leaf(&addr, JOB, 2, 1, Duration::from_millis(300));
        assert!(late.is_err());
    }

    #[test]
    fn a_second_process_with_a_taken_rank_is_refused() {
        let t = Duration::from_secs(20);
        let (h0, addr) = root(3, t);
        let a = addr.clone();
        let one = thread::spawn(move || leaf(&a, JOB, 3, 1, t));
        // Wait until rank 1 is in, then try it again.
        thread::sleep(Duration::from_millis(300));
        let dup = leaf(&addr, JOB, 3, 1, t).err().unwrap().to_string();
        assert!(dup.contains("rank 1 has already joined"), "{dup}");
        let a = addr.clone();
        let two = thread::spawn(move || leaf(&a, JOB, 3, 2, t));
        h0.join().unwrap().unwrap();
        one.join().unwrap().unwrap();
        two.join().unwrap().unwrap();
    }

    #[test]
    fn ranks_that_never_join_are_named_after_the_timeout() {
        let t = Duration::from_millis(800);
        let (h0, addr) = root(4, t);
        let _one = leaf_in_background(&addr, 1, t);
        let err = h0.join().unwrap().err().unwrap();
        let msg = err.to_string();
        match err {
            DistError::Missing { missing, .. } => assert_eq!(missing, vec![2, 3], "{msg}"),
            other => panic!("{other}"),
        }
        assert!(msg.contains(&addr), "{msg}");
    }

    fn leaf_in_background(addr: &str, rank: u32, t: Duration) -> thread::JoinHandle<Result<Group>> {
        let a = addr.to_string();
        thread::spawn(move || leaf(&a, JOB, 4, rank, t))
    }

    #[test]
    fn a_dead_or_hung_rank_is_named_within_the_timeout() {
        let t = Duration::from_millis(1500);
        let (h0, addr) = root(3, t);
        let a = addr.clone();
        // Rank 1 dies (drops its link) before the collective.
        let dead = thread::spawn(move || drop(leaf(&a, JOB, 3, 1, t).unwrap()));
        // Rank 2 stays alive but never calls the collective.
        let a = addr.clone();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let hung = thread::spawn(move || {
            let g = leaf(&a, JOB, 3, 2, t).unwrap();
            let _ = stop_rx.recv_timeout(Duration::from_secs(30));
            drop(g);
        });
        let mut g0 = h0.join().unwrap().unwrap();
        dead.join().unwrap();
        let start = Instant::now();
        let err = g0.gather(&[]).err().unwrap();
        assert!(matches!(err, DistError::Peer { rank: 1, .. }), "{err}");
        assert!(err.to_string().contains("closed its connection"), "{err}");
        assert!(start.elapsed() < t, "death is seen at once");

        // The hung rank: a group of rank 0 and rank 2 alone.
        let (h0, addr) = root(2, t);
        let a = addr.clone();
        let (stop2_tx, stop2_rx) = std::sync::mpsc::channel::<()>();
        let hung2 = thread::spawn(move || {
            let g = leaf(&a, JOB, 2, 1, t).unwrap();
            let _ = stop2_rx.recv_timeout(Duration::from_secs(30));
            drop(g);
        });
        let mut g0 = h0.join().unwrap().unwrap();
        let start = Instant::now();
        let err = g0.gather(&[]).err().unwrap();
        let waited = start.elapsed();
        assert!(matches!(err, DistError::Peer { rank: 1, .. }), "{err}");
        assert!(err.to_string().contains("sent nothing"), "{err}");
        assert!(waited >= t / 2 && waited < t * 4, "{waited:?}");
        stop_tx.send(()).unwrap();
        stop2_tx.send(()).unwrap();
        hung.join().unwrap();
        hung2.join().unwrap();
    }
}
