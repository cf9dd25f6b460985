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
//! The temporary root is removed when the run ends, on errors, and on
//! SIGINT/SIGTERM (which are caught while a root exists).
//!
//! [`run`] is the general entry; [`smoke`] is the `--smoke` check of `pack`
//! and `build`: run with output captured and a time limit, and say whether
//! the program started.

pub mod elf;
mod sandbox;
mod signals;
mod unpack;
mod user;

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use distroless_pack_image::{Image, Platform};

pub use signals::{interrupted, Guard as InterruptGuard};
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
    /// `Some("qemu-aarch64")` when run through binfmt_misc emulation.
    pub emulator: Option<String>,
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

/// The outcome of a smoke run.
#[derive(Debug, Clone)]
pub struct SmokeOutcome {
    pub outcome: Outcome,
}

impl SmokeOutcome {
    /// The program started: it exited 0, or was still running (a server)
    /// at the time limit.
    pub fn passed(&self) -> bool {
        matches!(self.outcome.status, Status::Exited(0) | Status::TimedOut)
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
/// stdin empty, no network, killed after `timeout`. `args` replace the
/// image's cmd when given. Whether the program started is
/// [`SmokeOutcome::passed`]; errors mean it could not even be started (or
/// the image could not be unpacked), which is also a failed smoke test.
pub fn smoke(
    image: &Image,
    args: Option<&[String]>,
    timeout: Duration,
) -> Result<SmokeOutcome, RunError> {
    let opts = RunOptions {
        args: args.map(|a| a.to_vec()),
        capture: Some(64 * 1024),
        timeout: Some(timeout),
        ..RunOptions::default()
    };
    let outcome = run(image, &opts)?;
    if outcome.interrupted {
        return Err(RunError::Interrupted);
    }
    Ok(SmokeOutcome { outcome })
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
    let emulator = preflight(&root.rootfs, &program, &host_path)?;

    let spec = sandbox::Spec {
        root: &root.rootfs,
        program: &program,
        argv: &argv,
        env: &env,
        uid: user.uid,
        gid: user.gid,
        workdir: &workdir,
        hostname: &hostname,
        network: opts.network,
    };
    let mut command = match isolation {
        Isolation::Bwrap => sandbox::bwrap_command(&spec),
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
        command.process_group(0);
    }
    if signals::interrupted() {
        return Err(RunError::Interrupted);
    }
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| spawn_error(e, &program, isolation))?;
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
    let (status, interrupted) = wait(&mut child, opts.timeout, opts.capture.is_some());
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
        emulator,
        elapsed,
        interrupted,
    })
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

/// Waits for the child, killing it at the timeout or after an interrupt.
/// With `own_group`, the whole process group is killed.
fn wait(child: &mut Child, timeout: Option<Duration>, own_group: bool) -> (Status, bool) {
    let started = Instant::now();
    let pid = child.id() as i32;
    let kill = |sig: i32| {
        // SAFETY: signalling our own child (or its process group).
        unsafe {
            libc::kill(if own_group { -pid } else { pid }, sig);
        }
    };
    let mut interrupted_at: Option<Instant> = None;
    let mut timed_out = false;
    let mut delay = Duration::from_millis(2);
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                let status = if timed_out {
                    Status::TimedOut
                } else if let Some(c) = st.code() {
                    Status::Exited(c)
                } else {
                    Status::Signaled(st.signal().unwrap_or(libc::SIGKILL))
                };
                if own_group {
                    kill(libc::SIGKILL); // anything it left behind
                }
                return (status, interrupted_at.is_some());
            }
            Ok(None) => {}
            Err(_) => {
                kill(libc::SIGKILL);
                let _ = child.wait();
                return (Status::Signaled(libc::SIGKILL), interrupted_at.is_some());
            }
        }
        if !timed_out && timeout.is_some_and(|t| started.elapsed() >= t) {
            timed_out = true;
            kill(libc::SIGKILL);
        }
        if signals::interrupted() {
            match interrupted_at {
                None => {
                    interrupted_at = Some(Instant::now());
                    // In the foreground the terminal already sent SIGINT to
                    // the program; in its own group it needs telling.
                    if own_group {
                        kill(libc::SIGKILL);
                    }
                }
                Some(at) if at.elapsed() > Duration::from_secs(10) => kill(libc::SIGKILL),
                Some(at) if at.elapsed() > Duration::from_secs(2) => kill(libc::SIGTERM),
                _ => {}
            }
        }
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

/// Checks the program as execve(2) would; returns the emulator used, if any.
fn preflight(root: &Path, program: &str, host: &Path) -> Result<Option<String>, RunError> {
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
            emulation(program, machine, Path::new("/proc/sys/fs/binfmt_misc"))
        }
    }
}

/// Whether a program for `machine` can run here through binfmt_misc
/// (qemu-user), and how to make it so when it cannot.
fn emulation(program: &str, machine: u16, binfmt: &Path) -> Result<Option<String>, RunError> {
    let arch = elf::machine_name(machine);
    let host = Platform::host().to_string();
    let qemu = match machine {
        elf::EM_AARCH64 => "qemu-aarch64",
        elf::EM_X86_64 => "qemu-x86_64",
        _ => {
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
    Ok(Some(qemu.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emulation_says_how_to_register_qemu() {
        let d = tempfile::tempdir().unwrap();
        let b = d.path();
        let err = |b: &Path| {
            emulation("/app/x", elf::EM_AARCH64, b)
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
            emulation("/app/x", elf::EM_AARCH64, b).unwrap().as_deref(),
            Some("qemu-aarch64")
        );
        fs::write(b.join("status"), "disabled\n").unwrap();
        assert!(err(b).contains("binfmt_misc is disabled"), "{}", err(b));
        let e = emulation("/app/x", 243, b).unwrap_err().to_string();
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
