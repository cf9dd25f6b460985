//! `distroless-pack run SOURCE [--platform P] [--engine docker|podman] [-- ARGS]`
//! and the `--smoke` check `pack` and `build` share ([`SmokeArgs`]).
//!
//! Without `--engine`, the image's layers are unpacked into a temporary
//! root and its entrypoint runs there under bubblewrap (or namespaces +
//! chroot), with the image's env, user and workdir; the program's output
//! passes through and its exit code is ours. Failures before the program
//! starts use docker's codes: 125 (the image or the tool failed), 126 (the
//! program cannot be invoked), 127 (the program or its interpreter is not in
//! the image).

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use distroless_pack_image::{Artifact, Image, Platform};
use distroless_pack_run::{Isolation, Network, RunError, RunOptions, SmokeOptions};
use distroless_pack_ship::{Engine, Source, WriteOptions};

use crate::exit::{self, WithCode};
use crate::progress::Stage;

/// The tool failed (bad image, unpacking, engine), as `docker run` reports.
pub const RUN_FAILED: u8 = 125;
/// The program cannot be invoked (not executable, foreign architecture).
pub const CANNOT_INVOKE: u8 = 126;
/// The program, or the interpreter it needs, is not in the image.
pub const NOT_FOUND: u8 = 127;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image to run: `oci:DIR[:TAG]`, `oci-archive:FILE` or
    /// `docker-archive:FILE`.
    #[arg(value_name = "SOURCE")]
    pub source: Source,

    /// The platform to run from an index (default: the host's, or the only
    /// one). arm64 on an amd64 host runs through qemu-user (binfmt_misc).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<Platform>,

    /// Run in docker or podman instead (`docker run --rm --network=none`).
    #[arg(long, value_name = "ENGINE", value_parser = ["docker", "podman"])]
    pub engine: Option<String>,

    /// Set an environment variable (over the image's). Repeatable.
    #[arg(long, short = 'e', value_name = "KEY=VALUE")]
    pub env: Vec<String>,

    /// Run as this user instead of the image's (`uid[:gid]`, or names from
    /// the image's /etc/passwd).
    #[arg(long, short = 'u', value_name = "USER")]
    pub user: Option<String>,

    /// Working directory instead of the image's.
    #[arg(long, short = 'w', value_name = "DIR")]
    pub workdir: Option<String>,

    /// Run this program instead of the image's entrypoint (the image's cmd
    /// is then dropped, as in docker).
    #[arg(long, value_name = "PATH")]
    pub entrypoint: Option<String>,

    /// `none` (default): only loopback; `host`: the host's network.
    #[arg(long, value_name = "MODE", default_value = "none", value_parser = ["none", "host"])]
    pub network: String,

    /// How to isolate the program without an engine: `auto` (bubblewrap
    /// when it works, else unshare + chroot), `bwrap` or `chroot`.
    #[arg(long, value_name = "HOW", default_value = "auto", value_parser = ["auto", "bwrap", "chroot"],
          env = "DISTROLESS_PACK_ISOLATION")]
    pub isolation: String,

    /// Kill the program after this many seconds (exit code 137).
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<f64>,

    /// Print what runs, and how, on stderr.
    #[arg(long, short = 'v')]
    pub verbose: bool,

    /// Record every file the program looked for in the image and did not
    /// find, and say what to add (report on stderr after the program ends).
    #[arg(long)]
    pub trace: bool,

    /// With --trace: the report as one line of JSON on stderr.
    #[arg(long, requires = "trace")]
    pub json: bool,

    /// Arguments replacing the image's cmd (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let artifact = distroless_pack_ship::read(&args.source)
        .with_context(|| format!("reading {}", args.source))
        .code(exit::USAGE)?;
    let image = select(&artifact, args.platform.as_ref())
        .with_context(|| format!("{}", args.source))
        .code(exit::USAGE)?
        .clone();
    let env = parse_env(&args.env).code(exit::USAGE)?;
    // As in docker: arguments replace the cmd; a new entrypoint drops it.
    let cmd_args = if !args.args.is_empty() {
        Some(args.args.clone())
    } else if args.entrypoint.is_some() {
        Some(Vec::new())
    } else {
        None
    };
    let timeout = match args.timeout {
        Some(t) if !(t.is_finite() && t > 0.0) => {
            return Err(anyhow::anyhow!(
                "--timeout must be a positive number of seconds"
            ))
            .code(exit::USAGE)
        }
        t => t.map(Duration::from_secs_f64),
    };
    if let Some(engine) = &args.engine {
        if args.trace {
            return Err(anyhow::anyhow!(
                "--trace runs the image itself; it cannot be combined with --engine"
            ))
            .code(exit::USAGE);
        }
        return run_in_engine(&args, engine, &image, &env, cmd_args.as_deref());
    }
    let opts = RunOptions {
        args: cmd_args,
        entrypoint: args.entrypoint.clone().map(|e| vec![e]),
        env,
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        network: if args.network == "host" {
            Network::Host
        } else {
            Network::None
        },
        isolation: match args.isolation.as_str() {
            "bwrap" => Isolation::Bwrap,
            "chroot" => Isolation::Chroot,
            _ => Isolation::Auto,
        },
        capture: None,
        timeout,
        temp_dir: None,
        trace: args.trace,
        ..RunOptions::default()
    };
    if args.verbose {
        eprintln!(
            "[   run] {} ({}) from {}",
            image.digest(),
            image.platform,
            args.source
        );
    }
    let outcome =
        distroless_pack_run::run(&image, &opts).map_err(|e| run_error(e, &args.source))?;
    if args.verbose {
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
    if let Some(trace) = &outcome.trace {
        let findings = distroless_pack_run::findings(&trace.lookups, &trace.found);
        if args.json {
            let doc = serde_json::json!({
                "schema_version": 1,
                "image": image.digest().to_string(),
                "platform": image.platform.to_string(),
                "argv": outcome.argv,
                "exit_code": outcome.status.code(),
                "status": outcome.status.describe(),
                "traced_calls": trace.traced_calls,
                "findings": findings,
            });
            eprintln!("{doc}");
        } else if findings.is_empty() {
            eprintln!("trace: the program found every file it looked for");
        } else {
            eprintln!(
                "trace: the program looked for {} thing{} the image does not have:",
                findings.len(),
                if findings.len() == 1 { "" } else { "s" }
            );
            eprint!("{}", distroless_pack_run::render_findings(&findings));
        }
    }
    Ok((outcome.status.code() & 0xff) as u8)
}

/// The image to run: the one `platform` names, else the host's from an
/// index, else the only one.
fn select<'a>(artifact: &'a Artifact, platform: Option<&Platform>) -> anyhow::Result<&'a Image> {
    let available = || {
        artifact
            .images()
            .iter()
            .map(|i| i.platform.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match platform {
        Some(p) => artifact
            .select(Some(p))
            .ok_or_else(|| anyhow::anyhow!("the image has no {p} variant; it has {}", available())),
        None => artifact
            .select(None)
            .or_else(|| artifact.select(Some(&Platform::host())))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the index has {} and none is this host's; pick one with --platform",
                    available()
                )
            }),
    }
}

fn parse_env(env: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    env.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok(Some((k.to_string(), v.to_string()))),
            _ if kv.is_empty() || kv.starts_with('=') => {
                Err(anyhow::anyhow!("--env {kv:?}: expected KEY=VALUE"))
            }
            // `-e NAME` passes the host's value, and nothing when NAME is
            // unset, as docker does.
            _ => Ok(std::env::var(kv).ok().map(|v| (kv.clone(), v))),
        })
        .filter_map(Result::transpose)
        .collect()
}

/// The exit code for a failure before the program ran.
fn run_error_code(e: &RunError) -> u8 {
    match e {
        RunError::NotFound { .. }
        | RunError::MissingInterpreter { .. }
        | RunError::MissingScriptInterpreter { .. } => NOT_FOUND,
        RunError::NotExecutable { .. } | RunError::ForeignArch { .. } | RunError::Spawn { .. } => {
            CANNOT_INVOKE
        }
        RunError::Interrupted => 130,
        RunError::Trace(_) => exit::USAGE,
        _ => RUN_FAILED,
    }
}

fn run_error(e: RunError, source: &Source) -> anyhow::Error {
    let code = run_error_code(&e);
    exit::tag(anyhow::Error::new(e).context(format!("run {source}")), code)
}

fn run_in_engine(
    args: &Args,
    engine: &str,
    image: &Image,
    env: &[(String, String)],
    cmd_args: Option<&[String]>,
) -> anyhow::Result<u8> {
    let engine: Engine = engine
        .parse()
        .map_err(anyhow::Error::msg)
        .code(exit::USAGE)?;
    let tool = if engine == Engine::Docker {
        "docker"
    } else {
        "podman"
    };
    // A name of our own, removed afterwards (digest and pid keep runs apart).
    let run_id = format!("{}-{}", &image.digest().hex()[..16], std::process::id());
    let name = format!("distroless-pack-run:{run_id}");
    let opts = WriteOptions {
        name: Some(name.clone()),
        platform: None,
    };
    let stage = Stage::start(
        "load",
        &format!("loading {} into {tool}", image.digest()),
        !args.verbose,
    );
    let loaded = distroless_pack_ship::load(&Artifact::Image(image.clone()), engine, &opts)
        .context("loading the image")
        .code(exit::ENGINE)?;
    stage.done(&format!("loaded {}", loaded.name));

    let container = format!("distroless-pack-run-{run_id}");
    let mut c = Command::new(tool);
    c.args(["run", "--rm", "-i", "--name", &container]);
    c.arg(format!("--network={}", args.network));
    c.arg(format!("--platform={}", image.platform));
    if engine == Engine::Podman {
        c.arg("--pull=never");
    }
    for (k, v) in env {
        c.arg("-e").arg(format!("{k}={v}"));
    }
    if let Some(u) = &args.user {
        c.arg("--user").arg(u);
    }
    if let Some(w) = &args.workdir {
        c.arg("--workdir").arg(w);
    }
    if let Some(e) = &args.entrypoint {
        c.arg(format!("--entrypoint={e}"));
    }
    c.arg(&loaded.name);
    if let Some(a) = cmd_args {
        c.args(a);
    }
    c.stdin(Stdio::inherit());
    // Ctrl-C reaches the engine client (which passes it on to the
    // container); we stay to remove the image name afterwards.
    let _guard = distroless_pack_run::InterruptGuard::install();
    let status = c
        .spawn()
        .with_context(|| format!("starting `{tool} run`"))
        .code(exit::ENGINE)
        .map(|mut child| wait_engine(&mut child, tool, &container, args.timeout));
    // Untag what we loaded (only our own name; the layers stay cached).
    let _ = Command::new(tool)
        .args(["image", "rm", &loaded.name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    status
}

/// Waits for `ENGINE run`, killing the container at the timeout (exit code
/// 137) or some seconds after an interrupt; returns the exit code.
fn wait_engine(
    child: &mut std::process::Child,
    tool: &str,
    container: &str,
    timeout: Option<f64>,
) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    let started = std::time::Instant::now();
    let mut killed = false;
    let mut interrupted_at: Option<std::time::Instant> = None;
    let kill = || {
        let _ = Command::new(tool)
            .args(["kill", container])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                return match (killed, st.code()) {
                    (true, _) => 137,
                    (false, Some(c)) => (c & 0xff) as u8,
                    (false, None) => (128 + st.signal().unwrap_or(9)) as u8,
                };
            }
            Ok(None) => {}
            Err(_) => return RUN_FAILED,
        }
        if !killed && timeout.is_some_and(|t| started.elapsed().as_secs_f64() >= t) {
            killed = true;
            kill();
        }
        if distroless_pack_run::interrupted() {
            let at = *interrupted_at.get_or_insert_with(std::time::Instant::now);
            if !killed && at.elapsed() > Duration::from_secs(5) {
                killed = true;
                kill();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `--smoke[=ARGS]` and `--smoke-timeout`, for `pack` and `build`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SmokeArgs {
    /// Before writing any output, run the image (as `distroless-pack run`
    /// does, every platform) and fail unless the program starts: it must
    /// exit 0, or still be running at --smoke-timeout (a server). ARGS,
    /// split at spaces, replace the image's cmd for this run.
    #[arg(
        long,
        value_name = "ARGS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "",
        allow_hyphen_values = true,
        help_heading = "Smoke test"
    )]
    pub smoke: Option<String>,

    /// Seconds the smoke run may take; a program still running then has
    /// started (and is stopped).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10.0,
        help_heading = "Smoke test"
    )]
    pub smoke_timeout: f64,

    /// Smoke-test (as --smoke) and fail when the trace of the run finds a
    /// warning: a file the program looked for and the image lacks.
    #[arg(long, help_heading = "Smoke test")]
    pub smoke_strict: bool,
}

impl SmokeArgs {
    /// Runs the smoke test on every image of `artifact` when `--smoke` was
    /// given. Fails with `exit::SMOKE` when a program cannot start or exits
    /// non-zero.
    pub fn check(&self, artifact: &Artifact, quiet: bool) -> anyhow::Result<()> {
        let smoke_args = match (&self.smoke, self.smoke_strict) {
            (Some(a), _) => a.clone(),
            (None, true) => String::new(),
            (None, false) => return Ok(()),
        };
        if !(self.smoke_timeout.is_finite() && self.smoke_timeout > 0.0) {
            return Err(anyhow::anyhow!(
                "--smoke-timeout must be a positive number of seconds"
            ))
            .code(exit::USAGE);
        }
        let words: Vec<String> = smoke_args.split_whitespace().map(str::to_string).collect();
        let args = (!words.is_empty()).then_some(words);
        let opts = SmokeOptions {
            args,
            timeout: Duration::from_secs_f64(self.smoke_timeout),
            trace: true,
        };
        for image in artifact.images() {
            let stage = Stage::start(
                "smoke",
                &format!("running the {} image", image.platform),
                quiet,
            );
            let outcome = distroless_pack_run::smoke(image, &opts).map_err(|e| {
                let code = if matches!(e, RunError::Interrupted) {
                    130
                } else {
                    exit::SMOKE
                };
                exit::tag(
                    anyhow::Error::new(e).context(format!("smoke test ({})", image.platform)),
                    code,
                )
            })?;
            if !outcome.passed() {
                return Err(anyhow::anyhow!(
                    "smoke test ({}) failed: {}",
                    image.platform,
                    outcome.describe()
                ))
                .code(exit::SMOKE);
            }
            stage.done(&outcome.describe());
            if !outcome.traced {
                eprintln!(
                    "smoke trace ({}): not traced (tracing follows programs of the host's architecture; this one runs under qemu-user)",
                    image.platform
                );
            }
            if !outcome.findings.is_empty() {
                eprintln!(
                    "smoke trace ({}): the program looked for what the image does not have:",
                    image.platform
                );
                eprint!(
                    "{}",
                    distroless_pack_run::render_findings(&outcome.findings)
                );
            }
            if self.smoke_strict && outcome.has_warnings() {
                let ids: Vec<&str> = outcome
                    .findings
                    .iter()
                    .filter(|f| f.severity <= distroless_pack_run::Severity::Warning)
                    .map(|f| f.id)
                    .collect();
                return Err(anyhow::anyhow!(
                    "smoke test ({}) found warnings (--smoke-strict): {}",
                    image.platform,
                    ids.join(", ")
                ))
                .code(exit::SMOKE);
            }
        }
        Ok(())
    }
}
