//! The progress line printed while training.

use std::io::{IsTerminal, Write};
use std::time::Instant;

/// Prints training and evaluation progress to stderr: one updating line on a terminal, one line
/// per update otherwise (logs, CI).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    enabled: bool,
    terminal: bool,
}

impl Progress {
    pub(crate) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Shows the state of the current epoch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn update(
        &self,
        epoch: usize,
        epochs: usize,
        batch: usize,
        batches: usize,
        loss: f64,
        accuracy: Option<f64>,
        lr: f64,
        images_per_second: f64,
        eta_seconds: f64,
    ) {
        if !self.enabled {
            return;
        }
        let width = 20;
        let filled = (batch * width).checked_div(batches).unwrap_or(width);
        let bar: String = (0..width)
            .map(|i| if i < filled { '#' } else { '-' })
            .collect();
        let acc = accuracy
            .map(|a| format!(" acc {:5.2}%", 100.0 * a))
            .unwrap_or_default();
        let line = format!(
            "epoch {}/{epochs} [{bar}] {batch}/{batches} loss {loss:.4}{acc} lr {lr:.4} {images_per_second:.0} img/s, {} left",
            epoch + 1,
            duration(eta_seconds),
        );
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{line}");
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// Shows how far an evaluation stage is: `evaluating <stage> [bar] done/total <unit>, ETA`.
    /// Off a terminal only about ten lines per stage are printed.
    pub(crate) fn stage(
        &self,
        stage: &str,
        done: usize,
        total: usize,
        unit: &str,
        started: Instant,
    ) {
        if !self.enabled || total == 0 {
            return;
        }
        let tenth = total.div_ceil(10);
        if !self.terminal && done != total && !done.is_multiple_of(tenth) {
            return;
        }
        let width = 20;
        let filled = done * width / total;
        let bar: String = (0..width)
            .map(|i| if i < filled { '#' } else { '-' })
            .collect();
        let elapsed = started.elapsed().as_secs_f64();
        let eta = if done == 0 {
            String::new()
        } else {
            let left = elapsed / done as f64 * (total - done) as f64;
            format!(", {} left", duration(left))
        };
        let line = format!("evaluating {stage} [{bar}] {done}/{total} {unit}{eta}");
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{line}");
            if done == total {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    /// Prints a message on its own line.
    pub(crate) fn message(&self, text: &str) {
        if !self.enabled {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K");
        }
        let _ = writeln!(err, "{text}");
    }
}

/// `1h02m`, `12m05s` or `42s`.
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s % 3600 / 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m{sec:02}s"),
        (h, min, _) => format!("{h}h{min:02}m"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_read_naturally() {
        assert_eq!(super::duration(42.4), "42s");
        assert_eq!(super::duration(725.0), "12m05s");
        assert_eq!(super::duration(3720.0), "1h02m");
    }
}
