//! Progress lines on stderr: one line per pipeline stage with its timing.

use std::io::Write;
use std::time::Instant;

/// Reports one stage ("build", "verify", "pack", "ship"): prints when it
/// starts and how long it took when it ends. Quiet when `quiet` is set
/// (for `--json` output on stdout, stderr still gets errors).
pub struct Stage {
    name: &'static str,
    started: Instant,
    quiet: bool,
}

impl Stage {
    pub fn start(name: &'static str, what: &str, quiet: bool) -> Stage {
        if !quiet {
            let _ = writeln!(std::io::stderr(), "[{name:>6}] {what}");
        }
        Stage {
            name,
            started: Instant::now(),
            quiet,
        }
    }

    pub fn done(self, result: &str) {
        if !self.quiet {
            let _ = writeln!(
                std::io::stderr(),
                "[{:>6}] {result} ({:.2}s)",
                self.name,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}
