//! The pipeline of distroless-pack, as a library: the one crate that chains
//! several stages (as crane's `pkg/crane` does under `cmd/crane`).
//!
//! - [`settings`]: the flags as given ([`settings::ImageFlags`],
//!   [`settings::BuildFlags`]) laid over `distroless-pack.toml` and the
//!   defaults, once, into typed values.
//! - [`pack`]: one binary per platform -> verify alongside assemble -> an
//!   image, or an index of several -> the smoke run -> every output.
//! - [`build`]: compile each platform's binary, then the same as `pack`.
//! - [`attest`]: each image's SBOM and provenance documents.
//!
//! Nothing here prints: progress goes to an [`Observer`] (the CLI draws
//! it), failures are a [`PipelineError`] with a [`PipelineError::kind`].

pub mod attest;
pub mod build;
mod error;
pub mod pack;
pub mod settings;

use std::time::Duration;

pub use error::{BuiltFrom, PipelineError, Refusal};

/// The layer cache, for the `cache` command (it lives in assemble, whose
/// layer writer uses it).
pub use distroless_pack_assemble::cache;

use distroless_pack_image::Platform;
use distroless_pack_ship::registry::PushEvent;
use distroless_pack_verify::Report;

/// Something the pipeline reports while it works.
#[derive(Debug)]
pub enum Event<'a> {
    /// A stage (`build`, `verify`, `pack`, `smoke`, `ship`) starts.
    Start { stage: &'static str, what: String },
    /// A stage ended; `alongside` when it ran beside verify (its start was
    /// not reported).
    Done {
        stage: &'static str,
        result: String,
        took: Duration,
        alongside: bool,
    },
    /// Verify's findings worth showing (errors or warnings).
    Findings(&'a Report),
    /// Something the user should know (e.g. `--no-verify`), even when quiet.
    Warning(String),
    /// A note of the build.
    Note(String),
    /// The registry push's progress.
    Push(&'a PushEvent<'a>),
    /// What the traced smoke run of one platform's image found missing
    /// (`traced` false: it ran untraced, under qemu-user).
    SmokeTrace {
        platform: &'a Platform,
        findings: &'a [distroless_pack_run::Finding],
        traced: bool,
    },
}

/// Receives the pipeline's [`Event`]s.
pub trait Observer: Sync {
    fn event(&self, event: Event<'_>);
}

/// An observer that ignores everything.
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _: Event<'_>) {}
}

/// Times a stage and reports its start and end.
pub(crate) struct Stage<'o> {
    obs: &'o dyn Observer,
    name: &'static str,
    started: std::time::Instant,
}

impl<'o> Stage<'o> {
    pub(crate) fn start(obs: &'o dyn Observer, name: &'static str, what: String) -> Stage<'o> {
        obs.event(Event::Start { stage: name, what });
        Stage {
            obs,
            name,
            started: std::time::Instant::now(),
        }
    }

    pub(crate) fn done(self, result: String) {
        self.obs.event(Event::Done {
            stage: self.name,
            result,
            took: self.started.elapsed(),
            alongside: false,
        });
    }
}
