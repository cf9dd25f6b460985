//! Runs an image's entrypoint without a container engine.
//!
//! The image's layers are unpacked into a fresh temporary directory (safely:
//! nothing can land outside it, whiteouts are applied), and the entrypoint +
//! cmd run inside it as the only thing there, with the image's env, user and
//! workdir, under bubblewrap when it works here or else user/mount/UTS
//! namespaces and `chroot`. Before starting, the program is checked the way
//! the kernel will: it must exist, be executable, and have its interpreter
//! (`PT_INTERP`, `#!`) in the image, and a foreign architecture needs
//! qemu-user registered with binfmt_misc. These become plain errors instead
//! of the `exec /app: no such file or directory` containers print.
//!
//! The program is PID 1 of its own PID namespace (as under docker without
//! `--init`), SIGINT/SIGTERM/SIGHUP/SIGQUIT sent to the runner are passed on
//! to it, its exit code comes back, and it dies with the runner. A foreign
//! architecture runs through qemu-user: via binfmt_misc when registered,
//! else by starting `qemu-ARCH-static` directly.
//!
//! The temporary root is removed when the run ends, on errors, and on the
//! caught signals.
//!
//! [`run`] is the general entry (with [`RunOptions::trace`], every failed
//! file lookup of the program is recorded and turned into [`Finding`]s);
//! [`smoke`] is the `--smoke` check of `pack` and `build`: run with output
//! captured, a time limit and tracing, and say whether the program started
//! and what it missed.

pub mod elf;
mod findings;
mod sandbox;
mod signals;
mod trace;
mod unpack;
mod user;

use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use distroless_pack_image::{Image, Platform};

pub use findings::{findings, render_human as render_findings, Finding, Severity};
pub use signals::{interrupted, Guard as InterruptGuard};
pub use trace::{Lookup, Trace};
pub use unpack::{resolve_in_root, unpack_layers};
pub use user::User;

/// Docker's PATH when the image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How the program is isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// bubblewrap when it works here, else namespaces + chroot.
    #[default]
    Auto,
    /// `bwrap --bind ROOT / --proc /proc --dev /dev ...`.
    Bwrap,
    /// unshare(2) + chroot(2) in the child; no /proc or /dev inside.
    Chroot,
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Isolation::Auto => "auto",
            Isolation::Bwrap => "bubblewrap",
            Isolation::Chroot => "chroot",
        })
    }
}

/// The program's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// A new network namespace with only loopback (`docker run --network=none`).
    #[default]
    None,
    /// The host's network (`--network=host`).
    Host,
}

/// What to run and how.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Replaces the image's cmd (like `docker run IMAGE ARGS`); `None` keeps it.
    pub args: Option<Vec<String>>,
    /// Replaces the image's entrypoint; `None` keeps it.
    pub entrypoint: Option<Vec<String>>,
    /// Extra `KEY=VALUE`s, over the image's env.
    pub env: Vec<(String, String)>,
    /// Overrides the image's user (`uid[:gid]` or names from its /etc/passwd).
    pub user: Option<String>,
    /// Overrides the image's working directory.
    pub workdir: Option<String>,
    pub network: Network,
    pub isolation: Isolation,
    /// Capture stdout and stderr (keeping at most this many bytes of each,
    /// the last ones) instead of passing them through; stdin is then empty
    /// and the program runs in its own process group.
    pub capture: Option<usize>,
    /// Kill the program (and report [`Status::TimedOut`]) after this long.
    pub timeout: Option<Duration>,
    /// Parent directory of the temporary root (default: the temp dir).
    pub temp_dir: Option<PathBuf>,
    /// Record every file lookup of the program that failed (host
    /// architecture only; see [`Outcome::trace`]).
    pub trace: bool,
    /// How a foreign architecture is emulated.
    pub emulation: Emulation,
}

/// How a program for another architecture is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Emulation {
    /// binfmt_misc when qemu-user is registered there (with the F flag),
    /// else `qemu-ARCH-static` started directly. `DISTROLESS_PACK_QEMU=direct`
    /// in the environment forces the direct way.
    #[default]
    Auto,
    /// Always start `qemu-ARCH-static` directly: it is copied into the root
    /// and runs the program (`qemu -0 ARGV0 PROGRAM ARGS`).
    Direct,
}

/// How the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// It exited with this code (under bubblewrap a program killed by signal
    /// N shows as 128+N, as in docker).
    Exited(i32),
    /// It was killed by this signal.
    Signaled(i32),
    /// Still running when the timeout came; it was killed.
    TimedOut,
}

impl Status {
    /// The exit code a shell (or `docker run`) would report: the code, or
    /// 128 + the signal.
    pub fn code(&self) -> i32 {
        match *self {
            Status::Exited(c) => c,
            Status::Signaled(s) => 128 + s,
            Status::TimedOut => 128 + libc::SIGKILL,
        }
    }

    /// The signal that ended the program, if one did (also when reported as
    /// 128+N by bubblewrap).
    pub fn signal(&self) -> Option<i32> {
        match *self {
            Status::Signaled(s) => Some(s),
            Status::Exited(c) if (129..=128 + 64).contains(&c) => Some(c - 128),
            _ => None,
        }
    }

    /// "exited with code 3", "killed by SIGSEGV (exit code 139)", ...
    pub fn describe(&self) -> String {
        match (*self, self.signal()) {
            (Status::TimedOut, _) => "still running at the time limit (killed)".to_string(),
            (Status::Signaled(_), Some(s)) => {
                format!("killed by {} (exit code {})", signal_name(s), self.code())
            }
            (Status::Exited(c), Some(s)) => {
                format!("exited with code {c} (killed by {}?)", signal_name(s))
            }
            (Status::Exited(c), None) => format!("exited with code {c}"),
            (Status::Signaled(s), None) => format!("killed by signal {s}"),
        }
    }
}

fn signal_name(s: i32) -> String {
    let name = match s {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGILL => "SIGILL",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGSYS => "SIGSYS",
        libc::SIGPIPE => "SIGPIPE",
        _ => return format!("signal {s}"),
    };
    name.to_string()
}

/// What happened.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Status,
    /// Captured output (empty when passed through).
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The argv that ran (entrypoint + cmd).
    pub argv: Vec<String>,
    /// How it was isolated.
    pub isolation: Isolation,
    /// `Some("qemu-aarch64")` when run through binfmt_misc emulation,
    /// `Some("qemu-aarch64-static (direct)")` when started directly.
    pub emulator: Option<String>,
    /// With [`RunOptions::trace`]: the failed lookups.
    pub trace: Option<Trace>,
    /// Time from start to exit.
    pub elapsed: Duration,
    /// Set when SIGINT/SIGTERM arrived during the run.
    pub interrupted: bool,
}

/// Errors preparing or starting the run. Each one names the image part or
/// file and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error("image: {0}")]
    Image(#[from] distroless_pack_image::ImageError),
    #[error("layer {digest}: {message}")]
    Layer { digest: String, message: String },
    /// A layer whose bytes do not match its digest or size (bad input).
    #[error(transparent)]
    Mismatch(distroless_pack_image::BlobMismatch),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the image has no entrypoint or cmd: pass the program to run after `--`")]
    NoCommand,
    #[error("{program}: not in the image{hint}")]
    NotFound { program: String, hint: String },
    #[error("{program}: {message}")]
    NotExecutable { program: String, message: String },
    #[error("the program needs {interpreter}, which the image does not have — the binary {program} is dynamically linked; link it statically (e.g. musl, CGO_ENABLED=0, -static) or add its loader and libraries")]
    MissingInterpreter {
        program: String,
        interpreter: String,
    },
    #[error("{program} is a script for {interpreter}, which the image does not have (a FROM-scratch image has no shell); pack a compiled static binary instead")]
    MissingScriptInterpreter {
        program: String,
        interpreter: String,
    },
    #[error("{program} is a linux/{arch} program and this host is {host}: {how}")]
    ForeignArch {
        program: String,
        arch: String,
        host: String,
        how: String,
    },
    #[error("user {user:?}: {message}")]
    User { user: String, message: String },
    #[error("working directory {0:?} must be an absolute path")]
    Workdir(String),
    #[error("cannot isolate the program: {0}")]
    Isolation(String),
    #[error("cannot start {program} ({isolation}): {source}")]
    Spawn {
        program: String,
        isolation: Isolation,
        #[source]
        source: io::Error,
    },
    #[error("interrupted")]
    Interrupted,
    #[error("--trace: {0}")]
    Trace(String),
}

impl RunError {
    /// Docker's classes for a failure before the program ran: not found
    /// (127), cannot invoke (126), interrupted, else the tool failed (125).
    pub fn kind(&self) -> distroless_pack_image::ErrorKind {
        use distroless_pack_image::ErrorKind;
        match self {
            RunError::NotFound { .. }
            | RunError::MissingInterpreter { .. }
            | RunError::MissingScriptInterpreter { .. } => ErrorKind::NotFound,
            RunError::NotExecutable { .. }
            | RunError::ForeignArch { .. }
            | RunError::Spawn { .. } => ErrorKind::CannotInvoke,
            RunError::Interrupted => ErrorKind::Interrupted,
            // A corrupt layer is bad input, not a failure of the tool.
            RunError::Mismatch(_) => ErrorKind::Usage,
            // What cannot be traced (e.g. an arm64 program under qemu).
            RunError::Trace(_) => ErrorKind::Usage,
            _ => ErrorKind::RunFailed,
        }
    }

    pub(crate) fn io(path: &Path, source: io::Error) -> RunError {
        RunError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How to smoke-test an image.
#[derive(Debug, Clone)]
pub struct SmokeOptions {
    /// Replace the image's cmd for the run.
    pub args: Option<Vec<String>>,
    /// A program still running then has started (and is stopped).
    pub timeout: Duration,
    /// Record what the program looked for and did not find. Ignored (and
    /// [`SmokeOutcome::traced`] false) for an image of another
    /// architecture, which runs under qemu.
    pub trace: bool,
}

impl Default for SmokeOptions {
    fn default() -> Self {
        SmokeOptions {
            args: None,
            timeout: Duration::from_secs(10),
            trace: true,
        }
    }
}

/// The outcome of a smoke run.
#[derive(Debug, Clone)]
pub struct SmokeOutcome {
    /// How the program ended.
    pub status: Status,
    /// What the program looked for and did not find (empty when not traced).
    pub findings: Vec<Finding>,
    /// Whether the run was traced.
    pub traced: bool,
    /// The whole outcome (captured output, argv, timings).
    pub outcome: Outcome,
}

impl SmokeOutcome {
    /// The program started: it exited 0, or was still running (a server)
    /// at the time limit.
    pub fn passed(&self) -> bool {
        matches!(self.outcome.status, Status::Exited(0) | Status::TimedOut)
    }

    /// Whether any finding is a warning or worse (`--smoke-strict` fails
    /// then).
    pub fn has_warnings(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.severity <= Severity::Warning)
    }

    /// One line: what ran and how it ended, with the end of its stderr when
    /// it failed.
    pub fn describe(&self) -> String {
        let o = &self.outcome;
        let argv = format!("`{}`", o.argv.join(" "));
        let mut s = format!("{argv} {}", o.status.describe());
        if o.status == Status::TimedOut {
            s = format!(
                "{argv} was still running after {:.1}s (taken as started)",
                o.elapsed.as_secs_f64()
            );
        }
        if !self.passed() {
            // The last lines of stderr, else of stdout: usually the reason.
            for (name, bytes) in [("stderr", &o.stderr), ("stdout", &o.stdout)] {
                let text = String::from_utf8_lossy(bytes);
                let lines: Vec<&str> = text
                    .lines()
                    .map(str::trim_end)
                    .filter(|l| !l.trim().is_empty())
                    .collect();
                if !lines.is_empty() {
                    let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
                    s.push_str(&format!("; {name}: {tail}"));
                    break;
                }
            }
        }
        s
    }
}

/// Runs the image for a smoke test: output captured (64 KiB of each kept),
/// stdin empty, no network, killed after the timeout, traced (on the host's
/// architecture) unless told not to. Whether the program started is
/// [`SmokeOutcome::passed`]; what it missed is [`SmokeOutcome::findings`].
/// Errors mean it could not even be started (or the image could not be
/// unpacked), which is also a failed smoke test.
pub fn smoke(image: &Image, opts: &SmokeOptions) -> Result<SmokeOutcome, RunError> {
    let foreign = image.platform.architecture != Platform::host().architecture;
    let traced = opts.trace && !foreign && trace::supported();
    let run_opts = RunOptions {
        args: opts.args.clone(),
        capture: Some(64 * 1024),
        timeout: Some(opts.timeout),
        trace: traced,
        ..RunOptions::default()
    };
    let outcome = run(image, &run_opts)?;
    if outcome.interrupted {
        return Err(RunError::Interrupted);
    }
    let findings = outcome
        .trace
        .as_ref()
        .map(|t| findings::findings(&t.lookups, &t.found))
        .unwrap_or_default();
    Ok(SmokeOutcome {
        status: outcome.status,
        findings,
        traced,
        outcome,
    })
}

/// The temporary root; removed (even where the image made directories
/// read-only) when dropped.
struct TempRoot {
    dir: Option<tempfile::TempDir>,
    rootfs: PathBuf,
}

impl TempRoot {
    fn new(parent: Option<&Path>) -> Result<TempRoot, RunError> {
        let parent = parent
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir);
        let dir = tempfile::Builder::new()
            .prefix("distroless-pack-run-")
            .tempdir_in(&parent)
            .map_err(|e| RunError::io(&parent, e))?;
        let rootfs = dir.path().join("rootfs");
        fs::create_dir(&rootfs).map_err(|e| RunError::io(&rootfs, e))?;
        // The program may run as another user: it must be able to enter "/".
        fs::set_permissions(&rootfs, fs::Permissions::from_mode(0o755))
            .map_err(|e| RunError::io(&rootfs, e))?;
        Ok(TempRoot {
            dir: Some(dir),
            rootfs,
        })
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            unpack::make_tree_writable(dir.path());
            let _ = dir.close();
        }
    }
}

/// /etc/hosts and /etc/resolv.conf, as docker provides them over the
/// image's: the host's with the host's network, else loopback names only
/// (`localhost` and the container's hostname).
fn write_network_files(root: &Path, network: Network, hostname: &str) -> Result<(), RunError> {
    let etc = resolve_in_root(root, Path::new("etc"), true)
        .map_err(|e| RunError::io(Path::new("/etc"), e))?;
    fs::create_dir_all(&etc).map_err(|e| RunError::io(Path::new("/etc"), e))?;
    let loopback = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t{hostname}\n"
    );
    let (hosts, resolv) = match network {
        Network::Host => (
            fs::read("/etc/hosts").unwrap_or_else(|_| loopback.into_bytes()),
            fs::read("/etc/resolv.conf").ok(),
        ),
        Network::None => (loopback.into_bytes(), None),
    };
    for (name, bytes) in [("hosts", Some(hosts)), ("resolv.conf", resolv)] {
        let Some(bytes) = bytes else { continue };
        let path = etc.join(name);
        // Replace, never write through, what the image has there.
        let _ = fs::remove_file(&path);
        fs::write(&path, bytes).map_err(|e| RunError::io(&Path::new("/etc").join(name), e))?;
    }
    Ok(())
}

/// Unpacks `image` into a temporary root and runs its entrypoint there.
pub fn run(image: &Image, opts: &RunOptions) -> Result<Outcome, RunError> {
    let _signals = signals::Guard::install();
    let config = image.config_json()?;
    let exec = config.config().clone().unwrap_or_default();

    let isolation = sandbox::pick(opts.isolation);
    if isolation == Isolation::Bwrap && sandbox::bwrap_path().is_none() {
        return Err(RunError::Isolation(
            "bubblewrap (bwrap) is not installed: apt-get install -y bubblewrap".into(),
        ));
    }

    // argv: entrypoint + cmd, either replaced by the options.
    let entrypoint = opts
        .entrypoint
        .clone()
        .or_else(|| exec.entrypoint().clone())
        .unwrap_or_default();
    let cmd = opts
        .args
        .clone()
        .or_else(|| exec.cmd().clone())
        .unwrap_or_default();
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() || argv[0].is_empty() {
        return Err(RunError::NoCommand);
    }

    let root = TempRoot::new(opts.temp_dir.as_deref())?;
    let preserve_owner = isolation == Isolation::Chroot && sandbox::euid() == 0;
    unpack_layers(
        &image.layers,
        &root.rootfs,
        preserve_owner,
        &signals::interrupted,
    )?;

    // Environment: the image's, the options', and what docker adds.
    let mut env: Vec<(String, String)> = Vec::new();
    let set = |k: &str, v: &str, env: &mut Vec<(String, String)>| {
        if let Some(e) = env.iter_mut().find(|e| e.0 == k) {
            e.1 = v.to_string();
        } else {
            env.push((k.to_string(), v.to_string()));
        }
    };
    for kv in exec.env().clone().unwrap_or_default() {
        let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
        set(k, v, &mut env);
    }
    for (k, v) in &opts.env {
        set(k, v, &mut env);
    }
    if !env.iter().any(|e| e.0 == "PATH") {
        set("PATH", DEFAULT_PATH, &mut env);
    }
    let hostname = image.digest().hex()[..12].to_string();
    if !env.iter().any(|e| e.0 == "HOSTNAME") {
        set("HOSTNAME", &hostname, &mut env);
    }
    write_network_files(&root.rootfs, opts.network, &hostname)?;

    let user_spec = opts
        .user
        .clone()
        .or_else(|| exec.user().clone())
        .unwrap_or_default();
    let user = user::resolve(&user_spec, &root.rootfs)?;
    if !env.iter().any(|e| e.0 == "HOME") {
        set("HOME", &user.home, &mut env);
    }

    let workdir = opts
        .workdir
        .clone()
        .or_else(|| exec.working_dir().clone())
        .filter(|w| !w.is_empty());
    let workdir = workdir.unwrap_or_else(|| "/".into());
    if !workdir.starts_with('/') {
        return Err(RunError::Workdir(workdir));
    }
    let wd_host = resolve_in_root(&root.rootfs, Path::new(&workdir), true)
        .map_err(|e| RunError::io(Path::new(&workdir), e))?;
    if !wd_host.is_dir() {
        // docker creates a missing working directory.
        fs::create_dir_all(&wd_host).map_err(|e| RunError::io(Path::new(&workdir), e))?;
        if preserve_owner {
            let _ = std::os::unix::fs::chown(&wd_host, Some(user.uid), Some(user.gid));
        }
    }

    // Find the program and check it can start.
    let path_var = env
        .iter()
        .find(|e| e.0 == "PATH")
        .map(|e| e.1.clone())
        .unwrap_or_default();
    let (program, host_path) = find_program(&root.rootfs, &argv[0], &workdir, &path_var)?;
    let force_direct = opts.emulation == Emulation::Direct
        || std::env::var("DISTROLESS_PACK_QEMU").is_ok_and(|v| v == "direct");
    let emulator = preflight(&root.rootfs, &program, &host_path, force_direct)?;
    if opts.trace {
        if !trace::supported() {
            return Err(RunError::Trace(format!(
                "not implemented on {} hosts (amd64 and arm64 are)",
                Platform::host()
            )));
        }
        if emulator.is_some() {
            return Err(RunError::Trace(format!(
                "{program} is a linux/{} program running under qemu-user; tracing follows programs of the host's architecture only ({})",
                image.platform.architecture,
                Platform::host()
            )));
        }
    }
    // Direct emulation: qemu in the root runs the program.
    let (exec_program, exec_argv, emulator_name) = match &emulator {
        Some(Emulator::Direct { name, host }) => {
            let inside = format!("/.distroless-pack-{name}");
            let dest = root.rootfs.join(&inside[1..]);
            fs::copy(host, &dest).map_err(|e| RunError::io(host, e))?;
            fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))
                .map_err(|e| RunError::io(&dest, e))?;
            let mut a = vec![
                inside.clone(),
                "-0".into(),
                argv[0].clone(),
                program.clone(),
            ];
            a.extend(argv[1..].iter().cloned());
            (inside, a, Some(format!("{name} (direct)")))
        }
        Some(Emulator::Binfmt(name)) => (program.clone(), argv.clone(), Some(name.clone())),
        None => (program.clone(), argv.clone(), None),
    };

    let pipe = || -> Result<(OwnedFd, OwnedFd), RunError> {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two fds, which we own from here.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
            return Err(RunError::Isolation(format!(
                "pipe: {}",
                io::Error::last_os_error()
            )));
        }
        // SAFETY: just created, owned by nobody else.
        Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    };
    // The tracer's handshake pipes: (ready_r, ready_w), (go_r, go_w).
    let handshake = if opts.trace {
        Some((pipe()?, pipe()?))
    } else {
        None
    };
    let info = if isolation == Isolation::Bwrap {
        Some(pipe()?)
    } else {
        None
    };
    let spec = sandbox::Spec {
        root: &root.rootfs,
        program: &exec_program,
        argv: &exec_argv,
        env: &env,
        uid: user.uid,
        gid: user.gid,
        workdir: &workdir,
        hostname: &hostname,
        network: opts.network,
        trace: handshake
            .as_ref()
            .map(|((_, rw), (gr, _))| trace::Handshake {
                ready_w: rw.as_raw_fd(),
                go_r: gr.as_raw_fd(),
            }),
    };
    let mut command = match (isolation, &info) {
        (Isolation::Bwrap, Some((_, w))) => sandbox::bwrap_command(&spec, w.as_raw_fd()),
        _ => sandbox::chroot_command(&spec).map_err(|e| RunError::Spawn {
            program: program.clone(),
            isolation,
            source: e,
        })?,
    };
    if opts.capture.is_some() {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
    }
    if signals::interrupted() {
        return Err(RunError::Interrupted);
    }
    // The program's pid as we see it: from bwrap's --info-fd, or the first
    // task the tracer saw exec it.
    let program_pid = Arc::new(AtomicI32::new(0));
    let tracer = handshake.map(|((ready_r, ready_w), (go_r, go_w))| {
        let rootfs = root.rootfs.clone();
        let pp = Arc::clone(&program_pid);
        let h = std::thread::spawn(move || {
            trace::trace(fs::File::from(ready_r), fs::File::from(go_w), &rootfs, &pp)
        });
        (h, ready_w, go_r)
    });
    let started = Instant::now();
    let spawned = command.spawn();
    // Our copies of the child's ends: the tracer sees EOF if it died early.
    let tracer = tracer.map(|(h, ready_w, go_r)| {
        drop((ready_w, go_r));
        h
    });
    let info_r = info.map(|(r, w)| {
        drop(w);
        r
    });
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            if let Some(h) = tracer {
                let _ = h.join();
            }
            return Err(spawn_error(e, &program, isolation));
        }
    };
    if let Some(r) = info_r {
        let pp = Arc::clone(&program_pid);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = fs::File::from(r).read_to_string(&mut text);
            if let Some(pid) = info_child_pid(&text) {
                let _ = pp.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst);
            }
        });
    }
    let readers = opts.capture.map(|limit| {
        let out = child
            .stdout
            .take()
            .map(|r| std::thread::spawn(move || read_tail(r, limit)));
        let err = child
            .stderr
            .take()
            .map(|r| std::thread::spawn(move || read_tail(r, limit)));
        (out, err)
    });
    let target = Target {
        helper: child.id() as i32,
        program: program_pid,
        via_helper: isolation != Isolation::Bwrap,
    };
    let (status, interrupted, trace) = match tracer {
        None => {
            let (st, int) = wait(&mut child, &target, opts.timeout, opts.capture.is_some());
            (st, int, None)
        }
        Some(h) => {
            let (st, int, tr) = wait_traced(h, &target, opts.timeout, opts.capture.is_some());
            (st, int, Some(tr))
        }
    };
    let elapsed = started.elapsed();
    let (stdout, stderr) = match readers {
        Some((out, err)) => (
            out.and_then(|h| h.join().ok()).unwrap_or_default(),
            err.and_then(|h| h.join().ok()).unwrap_or_default(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    drop(root);
    Ok(Outcome {
        status,
        stdout,
        stderr,
        argv,
        isolation,
        emulator: emulator_name,
        elapsed,
        interrupted,
        trace,
    })
}

/// `"child-pid": N` from bwrap's `--info-fd` JSON.
fn info_child_pid(text: &str) -> Option<i32> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v.get("child-pid")?.as_i64().map(|p| p as i32)
}

/// Who gets the signals of a run.
struct Target {
    /// The process we started (bwrap, or the chroot fallback's monitor).
    helper: i32,
    /// The program (PID 1 of its namespace) as we see it; 0 until known.
    program: Arc<AtomicI32>,
    /// Signals go to the helper, which passes them on (the chroot monitor).
    via_helper: bool,
}

impl Target {
    /// Passes `sig` on; false when the program's pid is not known yet.
    fn forward(&self, sig: i32) -> bool {
        let pid = if self.via_helper {
            self.helper
        } else {
            self.program.load(Ordering::SeqCst)
        };
        if pid <= 0 {
            return false;
        }
        // SAFETY: signalling the program we started.
        unsafe {
            libc::kill(pid, sig);
        }
        true
    }

    /// SIGKILL to the program (its PID namespace goes with it) and the helper.
    fn kill(&self) {
        let p = self.program.load(Ordering::SeqCst);
        // SAFETY: killing what we started.
        unsafe {
            if p > 0 {
                libc::kill(p, libc::SIGKILL);
            }
            libc::kill(self.helper, libc::SIGKILL);
        }
    }
}

/// What to do about signals and the time limit while the program runs;
/// shared by the plain and the traced wait.
struct Watch<'a> {
    target: &'a Target,
    started: Instant,
    timeout: Option<Duration>,
    captured: bool,
    timed_out: bool,
    interrupted: bool,
    sigints: u32,
    /// When SIGTERM was passed on: SIGKILL follows after [`TERM_GRACE`].
    term_at: Option<Instant>,
    held: Vec<i32>,
}

/// How long a program may take to exit after SIGTERM before it is killed,
/// as `docker stop` gives it.
const TERM_GRACE: Duration = Duration::from_secs(10);

impl Watch<'_> {
    fn new(target: &Target, timeout: Option<Duration>, captured: bool) -> Watch<'_> {
        Watch {
            target,
            started: Instant::now(),
            timeout,
            captured,
            timed_out: false,
            interrupted: false,
            sigints: 0,
            term_at: None,
            held: Vec::new(),
        }
    }

    /// One look at the clock and the signals.
    fn tick(&mut self) {
        if !self.timed_out && self.timeout.is_some_and(|t| self.started.elapsed() >= t) {
            self.timed_out = true;
            self.target.kill();
        }
        if self.term_at.is_some_and(|t| t.elapsed() >= TERM_GRACE) {
            self.term_at = None;
            self.target.kill();
        }
        let mut sigs = std::mem::take(&mut self.held);
        sigs.extend(signals::take_pending());
        if sigs.is_empty() {
            return;
        }
        self.interrupted = true;
        if self.captured {
            // A smoke run: stop it, the caller reports the interrupt.
            self.target.kill();
            return;
        }
        for sig in sigs {
            if sig == libc::SIGINT {
                self.sigints += 1;
                if self.sigints >= 3 {
                    // The third Ctrl-C: the program did not stop, force it.
                    self.target.kill();
                    continue;
                }
            }
            if !self.target.forward(sig) {
                self.held.push(sig);
            } else if sig == libc::SIGTERM && self.term_at.is_none() {
                self.term_at = Some(Instant::now());
            }
        }
    }
}

/// Waits for the traced run: the tracer thread ends when every traced
/// task is gone, with the helper's wait status.
fn wait_traced(
    tracer: std::thread::JoinHandle<(Option<i32>, Trace)>,
    target: &Target,
    timeout: Option<Duration>,
    captured: bool,
) -> (Status, bool, Trace) {
    let mut watch = Watch::new(target, timeout, captured);
    let mut delay = Duration::from_millis(2);
    while !tracer.is_finished() {
        watch.tick();
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
    let (st, trace) = tracer.join().unwrap_or_default();
    let status = match st {
        _ if watch.timed_out => Status::TimedOut,
        Some(st) if libc::WIFEXITED(st) => Status::Exited(libc::WEXITSTATUS(st)),
        Some(st) if libc::WIFSIGNALED(st) => Status::Signaled(libc::WTERMSIG(st)),
        _ => Status::Signaled(libc::SIGKILL),
    };
    (status, watch.interrupted, trace)
}

fn spawn_error(e: io::Error, program: &str, isolation: Isolation) -> RunError {
    let hint = match (isolation, e.raw_os_error()) {
        (Isolation::Chroot, Some(libc::EPERM)) | (Isolation::Chroot, Some(libc::EINVAL)) => {
            " (user namespaces are not allowed here: run as root, or install bubblewrap)"
        }
        _ => "",
    };
    RunError::Spawn {
        program: program.to_string(),
        isolation,
        source: io::Error::new(e.kind(), format!("{e}{hint}")),
    }
}

/// Reads everything, keeping the last `limit` bytes.
fn read_tail(mut r: impl Read, limit: usize) -> Vec<u8> {
    let mut keep: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                keep.extend_from_slice(&buf[..n]);
                if keep.len() > 2 * limit.max(1) {
                    keep.drain(..keep.len() - limit);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
    if keep.len() > limit {
        keep.drain(..keep.len() - limit);
    }
    keep
}

/// Waits for the child, passing signals on, killing it at the timeout
/// (and, in a captured smoke run, on any signal).
fn wait(
    child: &mut Child,
    target: &Target,
    timeout: Option<Duration>,
    captured: bool,
) -> (Status, bool) {
    let mut watch = Watch::new(target, timeout, captured);
    let mut delay = Duration::from_millis(2);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                let status = if watch.timed_out {
                    Status::TimedOut
                } else if let Some(c) = st.code() {
                    Status::Exited(c)
                } else {
                    Status::Signaled(st.signal().unwrap_or(libc::SIGKILL))
                };
                return (status, watch.interrupted);
            }
            Ok(None) => {}
            Err(_) => {
                target.kill();
                let _ = child.wait();
                return (Status::Signaled(libc::SIGKILL), watch.interrupted);
            }
        }
        watch.tick();
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// Finds argv[0] inside the root as the container runtime would: a name
/// with a `/` is taken as is (relative to the workdir), a bare name is
/// looked up in the image's PATH. Returns the in-root path and the host path.
fn find_program(
    root: &Path,
    arg0: &str,
    workdir: &str,
    path_var: &str,
) -> Result<(String, PathBuf), RunError> {
    let in_root = |p: &str| -> Option<PathBuf> {
        let abs = if p.starts_with('/') {
            PathBuf::from(p)
        } else {
            Path::new(workdir).join(p)
        };
        let host = resolve_in_root(root, &abs, true).ok()?;
        fs::symlink_metadata(&host).ok().map(|_| host)
    };
    if arg0.contains('/') {
        return in_root(arg0)
            .map(|h| (arg0.to_string(), h))
            .ok_or_else(|| RunError::NotFound {
                program: arg0.to_string(),
                hint: String::new(),
            });
    }
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let cand = format!("{}/{}", dir.trim_end_matches('/'), arg0);
        if let Some(h) = in_root(&cand) {
            if h.is_file() {
                return Ok((cand, h));
            }
        }
    }
    Err(RunError::NotFound {
        program: arg0.to_string(),
        hint: format!(" (looked in PATH={path_var})"),
    })
}

/// How a foreign program runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Emulator {
    /// The kernel starts qemu (binfmt_misc, F flag): `qemu-aarch64`.
    Binfmt(String),
    /// We start it: `qemu-aarch64-static` at `host`.
    Direct { name: String, host: PathBuf },
}

/// Checks the program as execve(2) would; returns the emulator needed, if any.
fn preflight(
    root: &Path,
    program: &str,
    host: &Path,
    force_direct: bool,
) -> Result<Option<Emulator>, RunError> {
    let meta = fs::metadata(host).map_err(|e| RunError::io(Path::new(program), e))?;
    if meta.is_dir() {
        return Err(RunError::NotExecutable {
            program: program.into(),
            message: "is a directory".into(),
        });
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(RunError::NotExecutable {
            program: program.into(),
            message: format!(
                "not executable (mode {:o}); pack it with mode 0755",
                meta.permissions().mode() & 0o7777
            ),
        });
    }
    let exists_in_root = |p: &str| {
        resolve_in_root(root, Path::new(p), true)
            .map(|h| h.exists())
            .unwrap_or(false)
    };
    match elf::inspect(host).map_err(|e| RunError::io(Path::new(program), e))? {
        elf::ProgramKind::Script { interpreter } => {
            if !exists_in_root(&interpreter) {
                return Err(RunError::MissingScriptInterpreter {
                    program: program.into(),
                    interpreter,
                });
            }
            Ok(None)
        }
        elf::ProgramKind::Unknown => Err(RunError::NotExecutable {
            program: program.into(),
            message: "not an ELF executable (exec format error)".into(),
        }),
        elf::ProgramKind::Elf {
            machine,
            interpreter,
        } => {
            if let Some(interp) = interpreter {
                if interp.is_empty() || !exists_in_root(&interp) {
                    return Err(RunError::MissingInterpreter {
                        program: program.into(),
                        interpreter: interp,
                    });
                }
            }
            if Some(machine) == elf::host_machine() {
                return Ok(None);
            }
            let search = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
                .unwrap_or_default();
            emulation(
                program,
                machine,
                Path::new("/proc/sys/fs/binfmt_misc"),
                &search,
                force_direct,
            )
            .map(Some)
        }
    }
}

/// How a program for `machine` can run here: through binfmt_misc
/// (qemu-user registered with the F flag), else (or with `force_direct`)
/// by starting `qemu-ARCH-static` from `search` ourselves; and how to make
/// it possible when neither works.
fn emulation(
    program: &str,
    machine: u16,
    binfmt: &Path,
    search: &[PathBuf],
    force_direct: bool,
) -> Result<Emulator, RunError> {
    let registered = binfmt_registered(program, machine, binfmt);
    if let (Ok(name), false) = (&registered, force_direct) {
        return Ok(Emulator::Binfmt(name.clone()));
    }
    let static_name = format!("{}-static", elf::qemu_name(machine).unwrap_or("qemu"));
    let found = search
        .iter()
        .map(|d| d.join(&static_name))
        .find(|p| p.is_file());
    match (found, registered) {
        (Some(host), _) => Ok(Emulator::Direct {
            name: static_name,
            host,
        }),
        (
            None,
            Err(RunError::ForeignArch {
                program,
                arch,
                host,
                how,
            }),
        ) if elf::qemu_name(machine).is_some() => Err(RunError::ForeignArch {
            program,
            arch,
            host,
            how: format!(
                "{how}; or install qemu-user-static (run then starts {static_name} itself)"
            ),
        }),
        (None, Err(e)) => Err(e),
        (None, Ok(_)) => Err(RunError::ForeignArch {
            program: program.into(),
            arch: elf::machine_name(machine),
            host: Platform::host().to_string(),
            how: format!("{static_name} is not installed: apt-get install -y qemu-user-static"),
        }),
    }
}

/// The binfmt_misc entry that runs `machine` programs, or why there is none.
fn binfmt_registered(program: &str, machine: u16, binfmt: &Path) -> Result<String, RunError> {
    let arch = elf::machine_name(machine);
    let host = Platform::host().to_string();
    let qemu = match elf::qemu_name(machine) {
        Some(q) => q,
        None => {
            return Err(RunError::ForeignArch {
                program: program.into(),
                arch,
                host,
                how: "no emulator is known for it".into(),
            })
        }
    };
    let register = format!(
        "register qemu-user with binfmt_misc: `apt-get install -y qemu-user-static binfmt-support && update-binfmts --enable {qemu}` (as root)"
    );
    let fail = |how: String| RunError::ForeignArch {
        program: program.into(),
        arch: arch.clone(),
        host: host.clone(),
        how,
    };
    if !binfmt.join("status").exists() {
        return Err(fail(format!(
            "binfmt_misc is not mounted: `mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc`, then {register}"
        )));
    }
    if fs::read_to_string(binfmt.join("status"))
        .map(|s| s.trim() != "enabled")
        .unwrap_or(false)
    {
        return Err(fail(format!(
            "binfmt_misc is disabled: `echo 1 > /proc/sys/fs/binfmt_misc/status`, then {register}"
        )));
    }
    let entry = match fs::read_to_string(binfmt.join(qemu)) {
        Ok(e) => e,
        Err(_) => return Err(fail(format!("{qemu} is not registered: {register}"))),
    };
    if entry.lines().next().map(str::trim) != Some("enabled") {
        return Err(fail(format!(
            "{qemu} is registered but disabled: `update-binfmts --enable {qemu}`"
        )));
    }
    let flags = entry
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .unwrap_or("")
        .trim()
        .to_string();
    if !flags.contains('F') {
        return Err(fail(format!(
            "{qemu} is registered without the F (fix-binary) flag, so its interpreter cannot be found inside an empty root: re-register it as Debian's qemu-user-static does (`update-binfmts --disable {qemu}; update-binfmts --enable {qemu}` with qemu-user-static installed)"
        )));
    }
    Ok(qemu.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulation_says_how_to_register_qemu() {
        let d = tempfile::tempdir().unwrap();
        let b = d.path();
        let err = |b: &Path| {
            emulation("/app/x", elf::EM_AARCH64, b, &[], false)
                .unwrap_err()
                .to_string()
        };
        let e = err(b);
        assert!(e.contains("binfmt_misc is not mounted: `mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc`"), "{e}");
        assert!(e.contains("update-binfmts --enable qemu-aarch64"), "{e}");
        assert!(
            e.starts_with("/app/x is a linux/arm64 program and this host is linux/"),
            "{e}"
        );
        fs::write(b.join("status"), "enabled\n").unwrap();
        let e = err(b);
        assert!(e.contains("qemu-aarch64 is not registered: register qemu-user with binfmt_misc: `apt-get install -y qemu-user-static binfmt-support && update-binfmts --enable qemu-aarch64`"), "{e}");
        fs::write(
            b.join("qemu-aarch64"),
            "disabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: F\n",
        )
        .unwrap();
        assert!(err(b).contains("registered but disabled"), "{}", err(b));
        fs::write(
            b.join("qemu-aarch64"),
            "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: OC\n",
        )
        .unwrap();
        assert!(
            err(b).contains("without the F (fix-binary) flag"),
            "{}",
            err(b)
        );
        fs::write(
            b.join("qemu-aarch64"),
            "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: PF\n",
        )
        .unwrap();
        assert_eq!(
            emulation("/app/x", elf::EM_AARCH64, b, &[], false).unwrap(),
            Emulator::Binfmt("qemu-aarch64".into())
        );
        // Forced direct, and no qemu-aarch64-static to be found.
        let e = emulation("/app/x", elf::EM_AARCH64, b, &[], true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("apt-get install -y qemu-user-static"), "{e}");
        fs::write(b.join("status"), "disabled\n").unwrap();
        assert!(err(b).contains("binfmt_misc is disabled"), "{}", err(b));
        assert!(
            err(b).contains(
                "or install qemu-user-static (run then starts qemu-aarch64-static itself)"
            ),
            "{}",
            err(b)
        );
        // Not registered, but installed: started directly.
        let bin = d.path().join("bin");
        fs::create_dir(&bin).unwrap();
        fs::write(bin.join("qemu-aarch64-static"), "").unwrap();
        assert_eq!(
            emulation(
                "/app/x",
                elf::EM_AARCH64,
                b,
                std::slice::from_ref(&bin),
                false
            )
            .unwrap(),
            Emulator::Direct {
                name: "qemu-aarch64-static".into(),
                host: bin.join("qemu-aarch64-static")
            }
        );
        let e = emulation("/app/x", 243, b, &[], false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("riscv64") && e.contains("no emulator"), "{e}");
    }

    #[test]
    fn status_codes_and_descriptions() {
        assert_eq!(Status::Exited(3).code(), 3);
        assert_eq!(Status::Signaled(11).code(), 139);
        assert_eq!(Status::Exited(139).signal(), Some(11));
        assert!(Status::Signaled(11).describe().contains("SIGSEGV"));
        assert_eq!(Status::TimedOut.code(), 137);
        assert_eq!(Status::Exited(0).signal(), None);
    }
}
