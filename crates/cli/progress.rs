//! Progress on stderr: one line per pipeline stage with its timing, the
//! verify findings, warnings and notes, and the push's bars (on a
//! terminal) or lines. Quiet (for `--json`) keeps only warnings.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

use distroless_pack_image::human_size;
use distroless_pack_pipeline::{Event, Observer};
use distroless_pack_ship::registry::{BlobAction, PushEvent};

/// The CLI's [`Observer`].
pub struct Progress {
    quiet: bool,
    tty: bool,
    multi: indicatif::MultiProgress,
    bars: Mutex<HashMap<String, indicatif::ProgressBar>>,
    times: Mutex<HashMap<String, Instant>>,
    style: indicatif::ProgressStyle,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            quiet,
            tty: !quiet && std::io::stderr().is_terminal(),
            multi: indicatif::MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
            times: Mutex::new(HashMap::new()),
            style: indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}",
            )
            .expect("template")
            .progress_chars("=> "),
        }
    }

    fn line(&self, s: String) {
        if self.quiet {
            return;
        }
        if self.tty {
            let _ = self.multi.println(s);
        } else {
            let _ = writeln!(std::io::stderr(), "{s}");
        }
    }

    fn push(&self, ev: &PushEvent) {
        match ev {
            PushEvent::BlobStarted { name, digest, size } => {
                let key = format!("{name} {digest}");
                self.times
                    .lock()
                    .unwrap()
                    .insert(key.clone(), Instant::now());
                if self.tty {
                    let bar = self.multi.add(indicatif::ProgressBar::new(*size));
                    bar.set_style(self.style.clone());
                    bar.set_prefix(format!("[  push] {}", short(digest.as_str())));
                    self.bars.lock().unwrap().insert(key, bar);
                }
            }
            PushEvent::BlobProgress {
                name, digest, done, ..
            } => {
                if let Some(b) = self.bars.lock().unwrap().get(&format!("{name} {digest}")) {
                    b.set_position(*done);
                }
            }
            PushEvent::BlobFinished {
                name,
                digest,
                size,
                action,
            } => {
                let key = format!("{name} {digest}");
                if let Some(b) = self.bars.lock().unwrap().remove(&key) {
                    b.finish_and_clear();
                    self.multi.remove(&b);
                }
                let took = self
                    .times
                    .lock()
                    .unwrap()
                    .remove(&key)
                    .map(|t| format!(" ({:.2}s)", t.elapsed().as_secs_f64()))
                    .unwrap_or_default();
                let what = match action {
                    BlobAction::Uploaded => format!("uploaded {}", human_size(*size)),
                    BlobAction::Mounted => "mounted".to_string(),
                    BlobAction::Skipped => "already there".to_string(),
                };
                self.line(format!(
                    "[  push] {name}: {} {what}{took}",
                    short(digest.as_str())
                ));
            }
            PushEvent::ManifestPushed { reference, .. } => {
                self.line(format!("[  push] {reference}: manifest stored"));
            }
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        for (_, b) in self.bars.lock().unwrap().drain() {
            b.finish_and_clear();
        }
    }
}

fn short(d: &str) -> &str {
    &d[..d.len().min(19)]
}

impl Observer for Progress {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Start { stage, what } => self.line(format!("[{stage:>6}] {what}")),
            Event::Done {
                stage,
                result,
                took,
                alongside,
            } => self.line(format!(
                "[{stage:>6}] {result} ({:.2}s{})",
                took.as_secs_f64(),
                if alongside { ", alongside verify" } else { "" }
            )),
            Event::Findings(report) => {
                if !self.quiet {
                    let _ = std::io::stderr().write_all(report.render_human().as_bytes());
                }
            }
            Event::Warning(w) => {
                let _ = writeln!(std::io::stderr(), "warning: {w}");
            }
            Event::Note(n) => {
                if !self.quiet {
                    let _ = writeln!(std::io::stderr(), "note: {n}");
                }
            }
            Event::Push(ev) => self.push(ev),
            Event::SmokeTrace {
                platform,
                findings,
                traced,
            } => {
                let mut err = std::io::stderr();
                if !traced {
                    let _ = writeln!(err, "smoke trace ({platform}): not traced (tracing follows programs of the host's architecture; this one runs under qemu-user)");
                }
                if !findings.is_empty() {
                    let _ = writeln!(
                        err,
                        "smoke trace ({platform}): the program looked for what the image does not have:"
                    );
                    let _ =
                        err.write_all(distroless_pack_run::render_findings(findings).as_bytes());
                }
            }
        }
    }
}

/// `run -v`: what runs, before it starts.
pub fn run_start(image: &distroless_pack_image::Image, source: &distroless_pack_ship::Source) {
    eprintln!(
        "[   run] {} ({}) from {source}",
        image.digest(),
        image.platform
    );
}

/// `run -v`: how it ended.
pub fn run_end(outcome: &distroless_pack_run::Outcome) {
    let emu = outcome
        .emulator
        .as_deref()
        .map(|q| format!(", {q}"))
        .unwrap_or_default();
    eprintln!(
        "[   run] {} {} ({}{emu}, {:.2}s)",
        outcome.argv.join(" "),
        outcome.status.describe(),
        outcome.isolation,
        outcome.elapsed.as_secs_f64()
    );
}
