//! `cargo xtask train` over several processes: one MPI rank per process (`mpiexec -n N xtask
//! train ...`, or `train --processes N`, which starts `mpiexec` itself), each process one
//! device. Needs the `mpi` feature (`cargo xtask` is built without it): see
//! `docs/distributed.md`.

use std::ffi::OsString;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use repr_train::{DeviceSpec, Group, LocalGroup};

/// The ranks this process belongs to: the MPI world when an MPI launcher started it (and the
/// binary has the `mpi` feature), one process otherwise.
pub fn group() -> Result<Group> {
    #[cfg(feature = "mpi")]
    {
        use repr_train::distributed::mpi::{MpiWorld, launched_by_mpi};
        if launched_by_mpi() {
            return MpiWorld::init()
                .map(MpiWorld::group)
                .map_err(anyhow::Error::msg);
        }
    }
    Ok(Group::one_process())
}

/// Runs `rank` once per device, each on its own thread as one rank of a group of this process
/// (`LocalGroup`: the collectives go through host memory, so any backend takes part, wgpu
/// included), and returns the first error. Every device is opened and checked before any
/// thread starts; once they run, a panic on one rank ends the process, since the others would
/// wait for it in their next collective forever.
pub fn on_devices(
    devices: &[DeviceSpec],
    rank: impl Fn(DeviceSpec, &Group) -> Result<()> + Sync,
) -> Result<()> {
    if devices.len() < 2 {
        bail!("--devices needs at least two devices (one device: --device)");
    }
    let list = devices
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    if devices.iter().any(|d| d.backend != devices[0].backend) {
        bail!("--devices {list}: every device must be of one backend");
    }
    for device in devices {
        device
            .device()
            .with_context(|| format!("--devices: opening {device}"))?;
    }
    println!(
        "data parallel over {} devices of this process ({list}), one thread each",
        devices.len()
    );
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        eprintln!("error: a rank panicked: stopping every rank");
        std::process::exit(101);
    }));
    let members = LocalGroup::members(devices.len());
    std::thread::scope(|scope| {
        let ranks: Vec<_> = members
            .into_iter()
            .zip(devices)
            .map(|(member, &device)| {
                let rank = &rank;
                scope.spawn(move || rank(device, &member.group()))
            })
            .collect();
        ranks
            .into_iter()
            .map(|r| r.join().expect("a panicking rank ends the process"))
            .collect::<Result<Vec<()>>>()
            .map(|_| ())
    })
}

/// Runs this very command again under `mpiexec -n processes` (`$MPIEXEC` or `mpiexec` on the
/// `PATH`), without `--processes`, each rank with an equal share of this machine's cores
/// (`RAYON_NUM_THREADS`, unless set), and exits with its status.
pub fn launch(processes: usize) -> Result<ExitCode> {
    if !cfg!(feature = "mpi") {
        bail!(
            "--processes needs a binary built with the `mpi` feature: \
             `cargo run --release -p xtask --features mpi -- train --processes {processes} ...` \
             (MPI and libclang installed: docs/distributed.md)"
        );
    }
    if processes == 0 {
        bail!("--processes must be at least 1");
    }
    let exe = std::env::current_exe().context("finding this program's path")?;
    let args = without_processes(std::env::args_os().skip(1));
    let mpiexec = std::env::var_os("MPIEXEC").unwrap_or_else(|| "mpiexec".into());
    let mut command = Command::new(&mpiexec);
    command
        .arg("-n")
        .arg(processes.to_string())
        .arg(exe)
        .args(args);
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        command.env("RAYON_NUM_THREADS", (cores / processes).max(1).to_string());
    }
    let status = command.status().with_context(|| {
        format!(
            "starting {} (install MPI: apt-get install mpich)",
            mpiexec.to_string_lossy()
        )
    })?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(code.clamp(1, 255) as u8),
        None => ExitCode::FAILURE,
    })
}

/// The command line with `--processes N` / `--processes=N` taken out.
fn without_processes(args: impl Iterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut skip_value = false;
    for arg in args {
        if skip_value {
            skip_value = false;
            continue;
        }
        match arg.to_str() {
            Some("--processes") => skip_value = true,
            Some(a) if a.starts_with("--processes=") => {}
            _ => out.push(arg),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relaunched_command_has_no_processes_flag() {
        let args = [
            "train",
            "--processes",
            "2",
            "--epochs",
            "1",
            "--processes=3",
            "--quiet",
        ];
        let out = without_processes(args.iter().map(OsString::from));
        assert_eq!(
            out,
            ["train", "--epochs", "1", "--quiet"].map(OsString::from)
        );
    }
}
