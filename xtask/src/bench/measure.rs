//! Timing statistics, CPU contention by other processes, peak memory and machine facts.
//!
//! The reference machine has 2 cores shared with other work, so every timed region records how
//! many cores *other* processes used during it (busy time of the whole system from `/proc/stat`
//! minus this process's own CPU time from `/proc/self/stat`), as the PyTorch peer script does.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Kernel clock ticks per second of `/proc/stat` and `/proc/<pid>/stat` (`USER_HZ`, 100 on
/// every mainstream Linux configuration).
const USER_HZ: f64 = 100.0;

/// System-wide busy ticks (user + nice + system + irq + softirq + steal), or `None` where
/// `/proc/stat` is missing (not Linux).
fn system_busy_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 8 {
        return None;
    }
    // user nice system idle iowait irq softirq steal
    Some(v[0] + v[1] + v[2] + v[5] + v[6] + v[7])
}

/// CPU ticks (user + system) used by this process so far.
fn own_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// CPU use of this process and of all others over a timed region.
#[derive(Debug, Clone, Copy)]
pub struct Contention {
    busy0: Option<u64>,
    own0: Option<u64>,
    started: Instant,
}

/// What [`Contention::finish`] measured, in cores (1.0 = one core busy the whole time).
#[derive(Debug, Clone, Copy, Default)]
pub struct CoreUse {
    /// Cores used by this process.
    pub own: f64,
    /// Cores used by every other process (compilers, other benchmarks, ...).
    pub other: f64,
}

impl Contention {
    /// Starts measuring.
    pub fn start() -> Self {
        Self {
            busy0: system_busy_ticks(),
            own0: own_ticks(),
            started: Instant::now(),
        }
    }

    /// Cores used since [`start`](Self::start) (zeros where `/proc` is unavailable).
    pub fn finish(&self) -> CoreUse {
        let wall = self.started.elapsed().as_secs_f64();
        match (self.busy0, system_busy_ticks(), self.own0, own_ticks()) {
            (Some(b0), Some(b1), Some(o0), Some(o1)) if wall > 0.0 => {
                let own = (o1.saturating_sub(o0)) as f64 / USER_HZ / wall;
                let busy = (b1.saturating_sub(b0)) as f64 / USER_HZ / wall;
                CoreUse {
                    own,
                    other: (busy - own).max(0.0),
                }
            }
            _ => CoreUse::default(),
        }
    }
}

/// Waits until other processes use less than `threshold` cores during `quiet_s` consecutive
/// one-second samples, for at most `max_wait`. Returns the seconds waited and whether the
/// machine became quiet.
pub fn wait_idle(max_wait: Duration, threshold: f64, quiet_s: u32) -> (f64, bool) {
    let started = Instant::now();
    let mut quiet = 0;
    let mut announced = false;
    while started.elapsed() < max_wait {
        let c = Contention::start();
        std::thread::sleep(Duration::from_secs(1));
        let use_ = c.finish();
        if use_.other < threshold {
            quiet += 1;
            if quiet >= quiet_s {
                return (started.elapsed().as_secs_f64(), true);
            }
        } else {
            quiet = 0;
            if !announced {
                eprintln!(
                    "  waiting for other processes to go quiet ({:.2} cores busy; at most {} s)",
                    use_.other,
                    max_wait.as_secs()
                );
                announced = true;
            }
        }
    }
    (started.elapsed().as_secs_f64(), max_wait.is_zero())
}

/// Peak resident memory of this process in MiB (`VmHWM` of `/proc/self/status`).
pub fn peak_rss_mib() -> Option<f64> {
    status_kib("VmHWM:").map(|kib| kib / 1024.0)
}

fn status_kib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Median, minimum and maximum of `values` (which must not be empty).
pub fn median_min_max(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

/// Times of `steps` calls of `step` after `warmup` untimed ones, in seconds, with the CPU use
/// of the timed region.
pub fn time_steps(
    warmup: usize,
    steps: usize,
    mut step: impl FnMut() -> f32,
) -> (Vec<f64>, CoreUse, f32) {
    let mut last = f32::NAN;
    for i in 0..warmup {
        let t = Instant::now();
        last = step();
        eprintln!(
            "    warm-up {}/{warmup}: {:.3} s",
            i + 1,
            t.elapsed().as_secs_f64()
        );
    }
    let contention = Contention::start();
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps {
        let t = Instant::now();
        last = step();
        times.push(t.elapsed().as_secs_f64());
    }
    (times, contention.finish(), last)
}

/// The machine: CPU model and cores (from `lscpu`, falling back to `/proc/cpuinfo`), OS.
pub fn machine() -> Value {
    let lscpu = std::process::Command::new("lscpu")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let field = |name: &str| {
        lscpu
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    let model = field("Model name:").or_else(|| {
        std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
    });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let avx512 = lscpu.contains("avx512f");
    let mem_gib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .map(|kib| (kib / 1024.0 / 1024.0 * 10.0).round() / 10.0)
    });
    json!({
        "cpu": model.unwrap_or_else(|| "unknown".into()),
        "cores": cores,
        "avx512": avx512,
        "hypervisor": field("Hypervisor vendor:"),
        "mem_gib": mem_gib,
        "os": std::env::consts::OS,
    })
}

/// The commit checked out, with `-dirty` when the tree has uncommitted changes.
pub fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let head = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{head}-dirty") } else { head }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median_min_max(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert_eq!(median_min_max(&[4.0, 1.0, 2.0, 3.0]), (2.5, 1.0, 4.0));
    }

    #[test]
    fn contention_and_memory_read_proc() {
        let c = Contention::start();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_add(i * i);
        }
        std::hint::black_box(x);
        let use_ = c.finish();
        assert!(use_.own >= 0.0 && use_.other >= 0.0);
        if cfg!(target_os = "linux") {
            assert!(peak_rss_mib().unwrap() > 1.0);
        }
    }
}
