//! This process's place in a job, read from the launcher's environment.
//!
//! The three launchers people already have each name the rank their own
//! way; the first family present wins, in this order:
//!
//! | launcher | rank | world | local rank |
//! |---|---|---|---|
//! | torchrun (`--no-python prior train ...`) | `RANK` | `WORLD_SIZE` | `LOCAL_RANK` |
//! | Slurm (`srun prior train ...`) | `SLURM_PROCID` | `SLURM_NTASKS` | `SLURM_LOCALID` |
//! | Open MPI (`mpirun -n N prior train ...`) | `OMPI_COMM_WORLD_RANK` | `OMPI_COMM_WORLD_SIZE` | `OMPI_COMM_WORLD_LOCAL_RANK` |
//!
//! The master is `MASTER_ADDR:MASTER_PORT` (torchrun always sets both).
//! Under Slurm without `MASTER_ADDR` it is the first host of
//! `SLURM_JOB_NODELIST`; under Open MPI with every rank on one node, the
//! loopback address. The port defaults to 29500, torchrun's default.

use super::{DistError, Result};

/// torchrun's default rendezvous port, used when `MASTER_PORT` is unset.
pub const DEFAULT_PORT: u16 = 29500;

/// Which launcher's variables named the rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launcher {
    /// No launcher variables: a world of one.
    None,
    Torchrun,
    Slurm,
    OpenMpi,
}

impl Launcher {
    pub fn name(self) -> &'static str {
        match self {
            Launcher::None => "none",
            Launcher::Torchrun => "torchrun",
            Launcher::Slurm => "slurm",
            Launcher::OpenMpi => "openmpi",
        }
    }
}

/// Where this process sits: its rank among `world`, its rank on its node
/// (the GPU it drives), and where rank 0 listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub launcher: Launcher,
    pub rank: u32,
    pub world: u32,
    pub local_rank: u32,
    /// `host:port` of rank 0's rendezvous; None for a world of one.
    pub master: Option<String>,
}

impl Placement {
    /// A world of one, as without a launcher.
    pub fn single() -> Self {
        Placement {
            launcher: Launcher::None,
            rank: 0,
            world: 1,
            local_rank: 0,
            master: None,
        }
    }

    /// From this process's environment.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|k| std::env::var(k).ok())
    }

    /// From any variable lookup (the environment, or a table in tests).
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let families = [
            (Launcher::Torchrun, "RANK", "WORLD_SIZE", "LOCAL_RANK"),
            (
                Launcher::Slurm,
                "SLURM_PROCID",
                "SLURM_NTASKS",
                "SLURM_LOCALID",
            ),
            (
                Launcher::OpenMpi,
                "OMPI_COMM_WORLD_RANK",
                "OMPI_COMM_WORLD_SIZE",
                "OMPI_COMM_WORLD_LOCAL_RANK",
            ),
        ];
        let Some(&(launcher, rank_var, world_var, local_var)) =
            families.iter().find(|f| get(f.1).is_some())
        else {
            return Ok(Self::single());
        };
        let number = |var: &str| -> Result<Option<u32>> {
            match get(var) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<u32>()
                    .map(Some)
                    .map_err(|_| DistError::Launch {
                        var: var.into(),
                        value: v.clone(),
                        detail: "not a non-negative integer".into(),
                    }),
            }
        };
        let rank = number(rank_var)?.expect("the family was chosen by this variable");
        let world = number(world_var)?.ok_or_else(|| DistError::Launch {
            var: world_var.into(),
            value: String::new(),
            detail: format!("unset, though {rank_var} is set"),
        })?;
        if world == 0 || rank >= world {
            return Err(DistError::Launch {
                var: rank_var.into(),
                value: rank.to_string(),
                detail: format!("must be below {world_var}={world}"),
            });
        }
        let local_rank = number(local_var)?.unwrap_or(0);
        let master = if world == 1 {
            None
        } else {
            Some(master_address(launcher, &get)?)
        };
        Ok(Placement {
            launcher,
            rank,
            world,
            local_rank,
            master,
        })
    }

    /// One line for the start of a run: `rank 1 of 4 (local rank 1, torchrun, master 10.0.0.1:29500)`.
    pub fn describe(&self) -> String {
        match &self.master {
            None => "rank 0 of 1 (no launcher)".into(),
            Some(m) => format!(
                "rank {} of {} (local rank {}, {}, master {m})",
                self.rank,
                self.world,
                self.local_rank,
                self.launcher.name()
            ),
        }
    }
}

fn master_address(launcher: Launcher, get: &impl Fn(&str) -> Option<String>) -> Result<String> {
    let port = match get("MASTER_PORT") {
        None => DEFAULT_PORT,
        Some(v) => v.trim().parse::<u16>().map_err(|_| DistError::Launch {
            var: "MASTER_PORT".into(),
            value: v.clone(),
            detail: "not a TCP port".into(),
        })?,
    };
    let host = match get("MASTER_ADDR").filter(|a| !a.trim().is_empty()) {
        Some(a) => a.trim().to_string(),
        None => match launcher {
            Launcher::Slurm => {
                let list = get("SLURM_JOB_NODELIST").ok_or_else(|| DistError::Launch {
                    var: "MASTER_ADDR".into(),
                    value: String::new(),
                    detail: "unset, and so is SLURM_JOB_NODELIST".into(),
                })?;
                first_host(&list).ok_or_else(|| DistError::Launch {
                    var: "SLURM_JOB_NODELIST".into(),
                    value: list.clone(),
                    detail: "names no host".into(),
                })?
            }
            Launcher::OpenMpi
                if get("OMPI_COMM_WORLD_LOCAL_SIZE") == get("OMPI_COMM_WORLD_SIZE") =>
            {
                "127.0.0.1".into()
            }
            _ => {
                return Err(DistError::Launch {
                    var: "MASTER_ADDR".into(),
                    value: String::new(),
                    detail: "unset: rank 0's host is needed for a world above 1".into(),
                })
            }
        },
    };
    // An IPv6 literal needs brackets before the port.
    Ok(if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// The first host of a Slurm node list: `gpu[03-04,07],cpu1` is `gpu03`
/// (a range keeps its zero padding), `a1,a2` is `a1`.
pub fn first_host(list: &str) -> Option<String> {
    let list = list.trim();
    let end = {
        let mut depth = 0;
        list.char_indices()
            .find(|&(_, c)| {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    ',' if depth == 0 => return true,
                    _ => {}
                }
                false
            })
            .map_or(list.len(), |(i, _)| i)
    };
    let first = &list[..end];
    let host = match first.find('[') {
        None => first.to_string(),
        Some(open) => {
            let inner = first[open + 1..].trim_end_matches(']');
            let start = inner.split([',', '-']).next()?;
            format!("{}{}", &first[..open], start)
        }
    };
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn place(vars: &[(&str, &str)]) -> Result<Placement> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Placement::from_vars(|k| map.get(k).cloned())
    }

    #[test]
    fn no_launcher_is_a_world_of_one() {
        assert_eq!(place(&[]).unwrap(), Placement::single());
    }

    #[test]
    fn each_launcher_names_the_rank_its_own_way() {
        let t = place(&[
            ("RANK", "3"),
            ("WORLD_SIZE", "4"),
            ("LOCAL_RANK", "1"),
            ("MASTER_ADDR", "10.0.0.7"),
            ("MASTER_PORT", "29400"),
        ])
        .unwrap();
        assert_eq!(
            (t.launcher, t.rank, t.world, t.local_rank),
            (Launcher::Torchrun, 3, 4, 1)
        );
        assert_eq!(t.master.as_deref(), Some("10.0.0.7:29400"));
        let s = place(&[
            ("SLURM_PROCID", "5"),
            ("SLURM_NTASKS", "8"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_JOB_NODELIST", "gpu[03-04,07],cpu1"),
        ])
        .unwrap();
        assert_eq!(
            (s.launcher, s.rank, s.world, s.local_rank),
            (Launcher::Slurm, 5, 8, 1)
        );
        assert_eq!(s.master.as_deref(), Some("gpu03:29500"));
        let m = place(&[
            ("OMPI_COMM_WORLD_RANK", "1"),
            ("OMPI_COMM_WORLD_SIZE", "2"),
            ("OMPI_COMM_WORLD_LOCAL_RANK", "1"),
            ("OMPI_COMM_WORLD_LOCAL_SIZE", "2"),
        ])
        .unwrap();
        assert_eq!(m.launcher, Launcher::OpenMpi);
        assert_eq!(m.master.as_deref(), Some("127.0.0.1:29500"));
        // torchrun's variables win over an enclosing Slurm allocation's.
        let both = place(&[
            ("RANK", "0"),
            ("WORLD_SIZE", "1"),
            ("SLURM_PROCID", "7"),
            ("SLURM_NTASKS", "8"),
        ])
        .unwrap();
        assert_eq!(
            (both.launcher, both.rank, both.master),
            (Launcher::Torchrun, 0, None)
        );
    }

    #[test]
    fn bad_variables_are_named() {
        let e = place(&[("RANK", "two"), ("WORLD_SIZE", "4")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("RANK=\"two\""), "{e}");
        let e = place(&[("RANK", "4"), ("WORLD_SIZE", "4")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("must be below WORLD_SIZE=4"), "{e}");
        let e = place(&[("RANK", "0")]).unwrap_err().to_string();
        assert!(e.contains("WORLD_SIZE") && e.contains("unset"), "{e}");
        let e = place(&[("RANK", "0"), ("WORLD_SIZE", "2")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("MASTER_ADDR"), "{e}");
        let e = place(&[
            ("RANK", "0"),
            ("WORLD_SIZE", "2"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "99999"),
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("MASTER_PORT=\"99999\""), "{e}");
    }

    #[test]
    fn slurm_node_lists_give_their_first_host() {
        for (list, host) in [
            ("node7", "node7"),
            ("a1,a2", "a1"),
            ("gpu[03-04,07],cpu1", "gpu03"),
            ("n[5-6]", "n5"),
            ("rack1-n[12,14]", "rack1-n12"),
        ] {
            assert_eq!(first_host(list).as_deref(), Some(host), "{list}");
        }
        assert_eq!(first_host(""), None);
    }
}
