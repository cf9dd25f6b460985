//! `distroless-pack run SOURCE [--platform P] [--engine docker|podman] [-- ARGS]`.
//!
//! Without `--engine`, the image's layers are unpacked into a temporary
//! root and its entrypoint runs there under bubblewrap (or namespaces +
//! chroot), with the image's env, user and workdir; the program's output
//! passes through and its exit code is ours. Failures before the program
//! starts use docker's codes: 125 (the image or the tool failed), 126 (the
//! program cannot be invoked), 127 (the program or its interpreter is not in
//! the image).

use std::time::Duration;

use distroless_pack_image::{ErrorKind, Platform};
use distroless_pack_run::{Network, RunOptions};
use distroless_pack_ship::EngineRun;

use crate::args::{self, EngineName, IsolationArg, NetworkArg};
use crate::exit::{self, WithCode};
use crate::progress;
use crate::report;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The image to run: `oci:DIR[:TAG]`, `oci-archive:FILE`,
    /// `docker-archive:FILE`, or a bare path to one.
    #[arg(value_name = "SOURCE")]
    pub source: String,

    /// The platform to run from an index (default: the host's, or the only
    /// one). arm64 on an amd64 host runs through qemu-user (binfmt_misc).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<Platform>,

    /// Run in docker or podman instead (`docker run --rm --network=none`).
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<EngineName>,

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
    #[arg(long, value_name = "MODE", default_value = "none")]
    pub network: NetworkArg,

    /// How to isolate the program without an engine: `auto` (bubblewrap
    /// when it works, else unshare + chroot), `bwrap` or `chroot`.
    #[arg(
        long,
        value_name = "HOW",
        default_value = "auto",
        env = "DISTROLESS_PACK_ISOLATION"
    )]
    pub isolation: IsolationArg,

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
    let source =
        distroless_pack_ship::parse_source(&args.source).map_err(|e| exit::fail(&e, e.kind()))?;
    let artifact = distroless_pack_ship::read(&source).map_err(|e| exit::reading(&source, e))?;
    let image = artifact
        .image_for(args.platform.as_ref())
        .map_err(|e| exit::fail(format!("{source}: {e}"), ErrorKind::Usage))?
        .clone();
    let env = args::parse_env(&args.env).code(exit::USAGE)?;
    // As in docker: arguments replace the cmd; a new entrypoint drops it.
    let cmd_args = if !args.args.is_empty() {
        Some(args.args.clone())
    } else {
        args.entrypoint.as_ref().map(|_| Vec::new())
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
    let network = args.network.into();
    if let Some(engine) = args.engine {
        if args.trace {
            return Err(anyhow::anyhow!(
                "--trace runs the image itself; it cannot be combined with --engine"
            ))
            .code(exit::USAGE);
        }
        let how = EngineRun {
            network: if network == Network::Host {
                "host"
            } else {
                "none"
            }
            .into(),
            env,
            user: args.user.clone(),
            workdir: args.workdir.clone(),
            entrypoint: args.entrypoint.clone(),
            args: cmd_args,
            timeout,
        };
        if args.verbose {
            eprintln!(
                "[  load] loading {} into {}",
                image.digest(),
                engine.as_str()
            );
        }
        // Ctrl-C reaches the engine client (which passes it on to the
        // container); we stay to remove the image name afterwards.
        let _guard = distroless_pack_run::InterruptGuard::install();
        let loaded = |l: &distroless_pack_ship::Loaded| {
            if args.verbose {
                eprintln!("[  load] loaded {}", l.name);
            }
        };
        return distroless_pack_ship::run_in_engine(
            &image,
            engine.engine(),
            &how,
            &loaded,
            &distroless_pack_run::interrupted,
        )
        .map_err(|e| {
            // An engine that cannot read the image (zstd into docker 20.10)
            // is bad input; the rest is the engine's failure.
            let kind = match e.kind() {
                ErrorKind::Usage => ErrorKind::Usage,
                _ => ErrorKind::Engine,
            };
            exit::fail(format!("loading the image: {e}"), kind)
        });
    }
    let opts = RunOptions {
        args: cmd_args,
        entrypoint: args.entrypoint.clone().map(|e| vec![e]),
        env,
        user: args.user.clone(),
        workdir: args.workdir.clone(),
        network,
        isolation: args.isolation.into(),
        capture: None,
        timeout,
        temp_dir: None,
        trace: args.trace,
        ..RunOptions::default()
    };
    if args.verbose {
        progress::run_start(&image, &source);
    }
    let outcome = distroless_pack_run::run(&image, &opts)
        .map_err(|e| exit::fail(format!("run {source}: {e}"), e.kind()))?;
    if args.verbose {
        progress::run_end(&outcome);
    }
    if let Some(trace) = &outcome.trace {
        report::print_trace(&image, &outcome, trace, args.json);
    }
    Ok((outcome.status.code() & 0xff) as u8)
}
