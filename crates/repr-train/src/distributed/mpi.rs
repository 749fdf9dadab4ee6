//! The collectives over MPI (the `mpi` crate, rsmpi; tested with Debian's MPICH 4.0.2): one
//! process per rank, on one machine (`mpiexec -n 2`) or several (a host file).

use std::sync::{Arc, OnceLock};

use mpi::collective::SystemOperation;
use mpi::environment::Universe;
use mpi::topology::SimpleCommunicator;
use mpi::traits::*;

use super::{Collective, Group};

/// The MPI universe of this process: initialised once, never finalised before exit (an
/// `MPI_Finalize` on one rank while another waits in a collective would hang the job).
static UNIVERSE: OnceLock<Option<Universe>> = OnceLock::new();

/// The world communicator of this process.
pub struct MpiWorld {
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
    library: String,
}

/// Whether this process was started by an MPI launcher (`mpiexec`, `mpirun`, `srun`): the
/// launchers' environment variables (MPICH's hydra sets `PMI_RANK`, Open MPI
/// `OMPI_COMM_WORLD_RANK`, Slurm `PMI_RANK` or `PMIX_RANK`).
pub fn launched_by_mpi() -> bool {
    ["PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
}

impl MpiWorld {
    /// Initialises MPI (threads: serialized; one thread at a time calls MPI) and takes the
    /// world communicator. A panic on any rank then aborts the whole job instead of leaving
    /// the other ranks waiting in a collective.
    ///
    /// # Errors
    /// When MPI cannot be initialised (it was initialised and finalised before).
    pub fn init() -> Result<Self, String> {
        let universe = UNIVERSE.get_or_init(|| {
            mpi::initialize_with_threading(mpi::Threading::Serialized).map(|(u, _)| u)
        });
        let Some(universe) = universe else {
            return Err("MPI was already initialised by someone else in this process".into());
        };
        let world = universe.world();
        let rank = world.rank() as usize;
        let size = world.size() as usize;
        let library = mpi::environment::library_version().unwrap_or_else(|_| "MPI".into());
        let library = library.lines().next().unwrap_or("MPI").trim().to_string();
        if size > 1 {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                previous(info);
                if mpi::is_initialized() && !mpi::is_finalized() {
                    eprintln!("rank {rank}: panicked; aborting the MPI job");
                    SimpleCommunicator::world().abort(101);
                }
            }));
        }
        Ok(Self {
            world,
            rank,
            size,
            library,
        })
    }

    /// A [`Group`] over the world.
    pub fn group(self) -> Group {
        Group::new(Arc::new(self))
    }
}

impl Collective for MpiWorld {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.size
    }

    fn all_reduce_sum_f32(&self, values: &mut [f32]) {
        // rsmpi has no in-place collectives: reduce from a copy.
        let send = values.to_vec();
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    fn all_reduce_sum_f64(&self, values: &mut [f64]) {
        let send = values.to_vec();
        self.world
            .all_reduce_into(&send[..], values, SystemOperation::sum());
    }

    fn all_gather_bytes(&self, local: &[u8]) -> Vec<u8> {
        let mut all = vec![0u8; local.len() * self.size];
        self.world.all_gather_into(local, &mut all[..]);
        all
    }

    fn broadcast_bytes(&self, bytes: &mut Vec<u8>) {
        let root = self.world.process_at_rank(0);
        let mut len = bytes.len() as u64;
        root.broadcast_into(&mut len);
        bytes.resize(len as usize, 0);
        root.broadcast_into(&mut bytes[..]);
    }

    fn barrier(&self) {
        self.world.barrier();
    }

    fn abort(&self, code: i32) -> ! {
        self.world.abort(code)
    }

    fn describe(&self) -> String {
        format!("MPI ({}), {} ranks", self.library, self.size)
    }
}
