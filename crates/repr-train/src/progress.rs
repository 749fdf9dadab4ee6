//! The progress line printed while training.

use std::io::{IsTerminal, Write};

/// Prints training progress to stderr: one updating line on a terminal, one line per update
/// otherwise (logs, CI).
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
            "epoch {}/{epochs} [{bar}] {batch}/{batches} loss {loss:.4}{acc} lr {lr:.4} {images_per_second:.0} img/s",
            epoch + 1,
        );
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r\x1b[2K{line}");
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
