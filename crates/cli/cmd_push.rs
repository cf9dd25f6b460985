//! `distroless-pack push SOURCE REF...`: pushes an existing image (OCI
//! layout, OCI archive or docker archive) to registries, unchanged (same
//! digests). Also the shared registry options and the push-with-progress
//! used by `pack --push` and `build --push`.

use std::collections::HashMap;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use distroless_pack_image::Artifact;
use distroless_pack_ship::registry::{
    self, BlobAction, CredentialOptions, PushEvent, PushOptions, PushReport, RegistryError,
    RegistryTarget, Secret, UploadMode,
};
use distroless_pack_ship::Source;

use crate::exit::{self, WithCode};

/// Registry connection and credential options (shared by `push`, `login`,
/// and `--push` of `pack`/`build`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Registry user name; the password (or token) is read from stdin
    /// with --password-stdin. Without these, credentials come from
    /// DISTROLESS_PACK_REGISTRY_USERNAME/_PASSWORD, docker's config.json
    /// (and its credential helpers), then podman's auth.json.
    #[arg(
        long,
        short = 'u',
        value_name = "USER",
        requires = "password_stdin",
        help_heading = "Registry"
    )]
    pub username: Option<String>,

    /// Read the registry password or token from standard input.
    #[arg(long, requires = "username", help_heading = "Registry")]
    pub password_stdin: bool,

    /// Also trust the PEM CA certificates in FILE (besides the system roots).
    #[arg(long, value_name = "FILE", help_heading = "Registry")]
    pub ca_file: Option<PathBuf>,

    /// Allow plain HTTP and unverified TLS for every registry (plain HTTP is
    /// always allowed for localhost and 127.0.0.1).
    #[arg(long, help_heading = "Registry")]
    pub insecure: bool,

    /// Upload blobs in chunks (PATCH) instead of one PUT each (the default
    /// falls back to chunks only when a registry refuses a single PUT).
    #[arg(long, help_heading = "Registry")]
    pub chunked: bool,

    /// Give up on a request (and retry it) when no byte has moved for this
    /// long: seconds, or 500ms / 20s / 2m. Default 20s.
    #[arg(
        long,
        value_name = "DURATION",
        env = "DISTROLESS_PACK_STALL_TIMEOUT",
        value_parser = registry::parse_duration,
        help_heading = "Registry"
    )]
    pub stall_timeout: Option<std::time::Duration>,
}

impl RegistryArgs {
    /// The library options; reads the password from stdin when asked.
    pub fn push_options(&self) -> anyhow::Result<PushOptions> {
        let explicit = match (&self.username, self.password_stdin) {
            (Some(u), true) => Some((u.clone(), read_password_stdin()?)),
            _ => None,
        };
        Ok(PushOptions {
            credentials: CredentialOptions {
                explicit,
                only_explicit: false,
            },
            ca_file: self.ca_file.clone(),
            insecure: self.insecure,
            upload_mode: if self.chunked {
                UploadMode::Chunked
            } else {
                UploadMode::Monolithic
            },
            stall_timeout: self
                .stall_timeout
                .unwrap_or(registry::DEFAULT_STALL_TIMEOUT),
            ..PushOptions::default()
        })
    }
}

/// Reads a password from stdin (one line; the trailing newline dropped).
pub fn read_password_stdin() -> anyhow::Result<Secret> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading the password from standard input")
        .code(exit::USAGE)?;
    let s = s.strip_suffix('\n').unwrap_or(&s);
    let s = s.strip_suffix('\r').unwrap_or(s);
    if s.is_empty() {
        return Err(anyhow::anyhow!("--password-stdin: standard input is empty")).code(exit::USAGE);
    }
    Ok(Secret::new(s))
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image to push: `oci:DIR[:TAG]`, `oci-archive:FILE` or
    /// `docker-archive:FILE`. It is pushed unchanged (same digests).
    #[arg(value_name = "SOURCE")]
    pub source: Source,

    /// Where to push: `REGISTRY/REPO[:TAG]` (several: blobs go up once per
    /// registry and are mounted across repositories).
    #[arg(value_name = "REF", required = true)]
    pub refs: Vec<String>,

    /// Print a JSON report (per reference: digest, blobs uploaded, mounted,
    /// skipped) on stdout instead of `NAME@sha256:...` lines.
    #[arg(long)]
    pub json: bool,

    /// Write the pushed digest (`sha256:...`) to FILE.
    #[arg(long, value_name = "FILE")]
    pub digest_file: Option<PathBuf>,

    #[command(flatten)]
    pub registry: RegistryArgs,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let targets = parse_targets(&args.refs)?;
    let opts = args.registry.push_options()?;
    let artifact = distroless_pack_ship::read(&args.source)
        .with_context(|| format!("reading {}", args.source))
        .code(exit::USAGE)?;
    let report = push_with_progress(&artifact, &targets, &opts, args.json)?;
    if let Some(f) = &args.digest_file {
        write_digest_file(f, &report.digest)?;
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer_pretty(&mut out, &report).context("writing JSON")?;
        writeln!(out)?;
    } else {
        print_pushed(&mut out, &report)?;
    }
    Ok(exit::OK)
}

/// Parses the references, as usage errors.
pub fn parse_targets(refs: &[String]) -> anyhow::Result<Vec<RegistryTarget>> {
    refs.iter()
        .map(|r| {
            RegistryTarget::parse(r)
                .map_err(anyhow::Error::new)
                .code(exit::USAGE)
        })
        .collect()
}

/// One `NAME@sha256:...` line per pushed repository.
pub fn print_pushed(out: &mut dyn Write, report: &PushReport) -> anyhow::Result<()> {
    let mut seen = Vec::new();
    for t in &report.targets {
        if !seen.contains(&t.pushed) {
            writeln!(out, "{}", t.pushed)?;
            seen.push(t.pushed.clone());
        }
    }
    Ok(())
}

/// Writes `digest` to `path` (ship's destination rules: a regular file
/// atomically, a FIFO or character device as a stream, nothing else).
pub fn write_digest_file(path: &Path, digest: &str) -> anyhow::Result<()> {
    distroless_pack_ship::dest::write_digest_file(path, digest)
        .with_context(|| format!("--digest-file {}", path.display()))
        .code(exit::OUTPUT)
}

/// The exit code for a registry error.
pub fn code_for(e: &RegistryError) -> u8 {
    if e.is_auth() {
        exit::AUTH
    } else if e.is_usage() {
        exit::USAGE
    } else {
        exit::REGISTRY
    }
}

fn human(n: u64) -> String {
    const U: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < U.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

fn short(d: &str) -> &str {
    &d[..d.len().min(19)]
}

/// Pushes with progress on stderr: a bar per blob on a terminal, plain lines
/// otherwise, nothing when `quiet`. Errors carry exit::AUTH / REGISTRY /
/// USAGE.
pub fn push_with_progress(
    artifact: &Artifact,
    targets: &[RegistryTarget],
    opts: &PushOptions,
    quiet: bool,
) -> anyhow::Result<PushReport> {
    let started = Instant::now();
    let tty = !quiet && std::io::stderr().is_terminal();
    let multi = indicatif::MultiProgress::new();
    let bars: Mutex<HashMap<String, indicatif::ProgressBar>> = Mutex::new(HashMap::new());
    let times: Mutex<HashMap<String, Instant>> = Mutex::new(HashMap::new());
    let style = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:30}] {decimal_bytes}/{decimal_total_bytes} {decimal_bytes_per_sec}",
    )
    .expect("template")
    .progress_chars("=> ");
    let line = |s: String| {
        if quiet {
            return;
        }
        if tty {
            let _ = multi.println(s);
        } else {
            let _ = writeln!(std::io::stderr(), "{s}");
        }
    };
    let on_event = |ev: &PushEvent| match ev {
        PushEvent::BlobStarted { name, digest, size } => {
            let key = format!("{name} {digest}");
            times.lock().unwrap().insert(key.clone(), Instant::now());
            if tty {
                let bar = multi.add(indicatif::ProgressBar::new(*size));
                bar.set_style(style.clone());
                bar.set_prefix(format!("[  push] {}", short(digest.as_str())));
                bars.lock().unwrap().insert(key, bar);
            }
        }
        PushEvent::BlobProgress {
            name, digest, done, ..
        } => {
            if let Some(b) = bars.lock().unwrap().get(&format!("{name} {digest}")) {
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
            if let Some(b) = bars.lock().unwrap().remove(&key) {
                b.finish_and_clear();
                multi.remove(&b);
            }
            let took = times
                .lock()
                .unwrap()
                .remove(&key)
                .map(|t| t.elapsed().as_secs_f64());
            let what = match action {
                BlobAction::Uploaded => format!("uploaded {}", human(*size)),
                BlobAction::Mounted => "mounted".to_string(),
                BlobAction::Skipped => "already there".to_string(),
            };
            let took = took.map(|t| format!(" ({t:.2}s)")).unwrap_or_default();
            line(format!(
                "[  push] {name}: {} {what}{took}",
                short(digest.as_str())
            ));
        }
        PushEvent::ManifestPushed { reference, .. } => {
            line(format!("[  push] {reference}: manifest stored"));
        }
    };
    let result = registry::push(artifact, targets, opts, &on_event);
    for (_, b) in bars.lock().unwrap().drain() {
        b.finish_and_clear();
    }
    match result {
        Ok(report) => {
            let up: u64 = report.targets.iter().map(|t| t.bytes_uploaded).sum();
            line(format!(
                "[  push] pushed {} to {} reference(s), {} uploaded ({:.2}s)",
                report.digest,
                report.targets.len(),
                human(up),
                started.elapsed().as_secs_f64()
            ));
            Ok(report)
        }
        Err(e) => {
            let code = code_for(&e);
            let names: Vec<String> = targets.iter().map(|t| t.reference.to_string()).collect();
            Err(exit::tag(
                anyhow::Error::new(e).context(format!("pushing to {}", names.join(", "))),
                code,
            ))
        }
    }
}
