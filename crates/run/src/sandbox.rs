//! Starting the program inside the unpacked root: bubblewrap when it works,
//! else namespaces + chroot done by hand in the child before exec.
//!
//! Either way the program runs as PID 1 of its own PID namespace, in a
//! session of its own (so the terminal's Ctrl-C reaches only the runner,
//! which forwards it, as `docker run` does), and dies with the runner:
//! `PR_SET_PDEATHSIG` on every process between us and it, and the PID
//! namespace takes the whole tree down with its PID 1.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::{Isolation, Network};

/// Everything the sandbox needs to start the program.
pub struct Spec<'a> {
    pub root: &'a Path,
    /// The program's path inside the root (absolute, or relative to workdir).
    pub program: &'a str,
    /// argv, argv[0] included.
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    pub uid: u32,
    pub gid: u32,
    pub workdir: &'a str,
    pub hostname: &'a str,
    pub network: Network,
    /// Wait for the tracer before anything is started, and run the program
    /// under [`crate::trace`]'s seccomp filter.
    pub trace: Option<crate::trace::Handshake>,
}

/// Finds `bwrap` on PATH.
pub fn bwrap_path() -> Option<PathBuf> {
    distroless_pack_image::which("bwrap")
}

/// Whether bubblewrap is installed and can make the namespaces we need
/// (inside some containers it cannot). Probed once per process.
pub fn bwrap_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        let Some(bwrap) = bwrap_path() else {
            return false;
        };
        Command::new(bwrap)
            .args([
                "--unshare-user",
                "--unshare-pid",
                "--unshare-uts",
                "--unshare-ipc",
            ])
            .args(["--ro-bind", "/", "/", "--proc", "/proc", "--", "true"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
}

/// The isolation `Auto` picks here.
pub fn pick(requested: Isolation) -> Isolation {
    match requested {
        Isolation::Auto if bwrap_works() => Isolation::Bwrap,
        Isolation::Auto => Isolation::Chroot,
        other => other,
    }
}

/// The effective user id of this process.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// A command running the program under bubblewrap, the program as PID 1
/// (`--as-pid-1`) in a new session; bwrap writes the program's pid (as we
/// see it) as JSON to `info_fd`, which becomes its fd 3. bwrap gets a
/// process group of its own, so the terminal's signals reach only us.
pub fn bwrap_command(spec: &Spec<'_>, info_fd: RawFd) -> Command {
    let mut c = Command::new(bwrap_path().unwrap_or_else(|| "bwrap".into()));
    c.args([
        "--die-with-parent",
        "--as-pid-1",
        "--new-session",
        "--unshare-user",
        "--unshare-pid",
        "--unshare-ipc",
    ]);
    c.args(["--unshare-uts", "--hostname", spec.hostname]);
    if spec.network == Network::None {
        c.arg("--unshare-net");
    }
    c.arg("--uid")
        .arg(spec.uid.to_string())
        .arg("--gid")
        .arg(spec.gid.to_string());
    c.arg("--bind").arg(spec.root).arg("/");
    c.args(["--proc", "/proc", "--dev", "/dev"]);
    c.arg("--chdir").arg(spec.workdir);
    c.args(["--info-fd", "3"]);
    c.arg("--").arg(spec.program).args(&spec.argv[1..]);
    // bwrap passes its own environment on: give it exactly the image's.
    c.env_clear().envs(spec.env.iter().map(|(k, v)| (k, v)));
    c.process_group(0);
    let trace = spec.trace;
    let filter = crate::trace::seccomp_filter();
    // SAFETY: only raw system calls on data prepared above.
    let parent = unsafe { libc::getpid() };
    unsafe {
        c.pre_exec(move || {
            die_with_parent(parent)?;
            if libc::dup2(info_fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(h) = trace {
                h.wait()?;
                // bwrap is not setuid here (it needs user namespaces), so
                // no_new_privs costs it nothing; the filter needs it.
                crate::trace::install_filter(&filter)?;
            }
            Ok(())
        });
    }
    c
}

/// `PR_SET_PDEATHSIG(SIGKILL)`, and exit at once if `parent` is already gone.
///
/// # Safety
/// Async-signal-safe: for use between fork and exec.
unsafe fn die_with_parent(parent: libc::pid_t) -> std::io::Result<()> {
    if libc::prctl(
        libc::PR_SET_PDEATHSIG,
        libc::SIGKILL as libc::c_ulong,
        0,
        0,
        0,
    ) < 0
    {
        return Err(std::io::Error::last_os_error());
    }
    if libc::getppid() != parent {
        libc::_exit(137);
    }
    Ok(())
}

/// The pid of the program the intermediate process of the chroot fallback
/// waits for (its own copy of this static, after fork).
static MONITORED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward_to_monitored(sig: libc::c_int) {
    let pid = MONITORED.load(std::sync::atomic::Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill is async-signal-safe.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// The intermediate process of the chroot fallback, outside the new PID
/// namespace: forwards signals to the program (its PID 1), waits for it and
/// exits with its code, or 128 + the signal that killed it (as bubblewrap
/// does). Never returns.
///
/// # Safety
/// Async-signal-safe: runs between fork and exec.
unsafe fn monitor(child: libc::pid_t) -> ! {
    MONITORED.store(child, std::sync::atomic::Ordering::SeqCst);
    let mut act: libc::sigaction = std::mem::zeroed();
    act.sa_sigaction = forward_to_monitored as extern "C" fn(libc::c_int) as usize;
    act.sa_flags = libc::SA_RESTART;
    libc::sigemptyset(&mut act.sa_mask);
    for sig in crate::signals::FORWARDED
        .iter()
        .chain(&[libc::SIGUSR1, libc::SIGUSR2])
    {
        libc::sigaction(*sig, &act, std::ptr::null_mut());
    }
    // Hold nothing of the runner's: not the exec-status pipe of std's
    // spawn (which must close when the program execs), not its pipes.
    if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) < 0 {
        for fd in 3..4096 {
            libc::close(fd);
        }
    }
    let mut status = 0;
    loop {
        let r = libc::waitpid(child, &mut status, 0);
        if r == child {
            break;
        }
        if r < 0 && *libc::__errno_location() != libc::EINTR {
            libc::_exit(125);
        }
    }
    if libc::WIFEXITED(status) {
        libc::_exit(libc::WEXITSTATUS(status));
    }
    libc::_exit(128 + libc::WTERMSIG(status))
}

/// Capabilities a program running as uid 0 keeps in the chroot fallback:
/// docker's defaults (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, SETGID, SETUID,
/// SETPCAP, NET_BIND_SERVICE, AUDIT_WRITE, SETFCAP) without KILL, MKNOD and
/// SYS_CHROOT.
const ROOT_KEEPS: [i32; 10] = [0, 1, 3, 4, 6, 7, 8, 10, 29, 31];

/// A command running the program after `unshare` + `chroot` in the child.
/// As root: new mount/UTS/IPC(/net) namespaces, chroot, a reduced
/// capability bounding set, then the image's uid/gid. Otherwise: a user
/// namespace mapping our own ids to the image's. Either way with
/// `no_new_privs`. The program is PID 1 of a new PID namespace: the
/// spawned process unshares it, forks the program and stays as its
/// [`monitor`]; both are in a new session and die with us.
pub fn chroot_command(spec: &Spec<'_>) -> std::io::Result<Command> {
    let cstr = |b: &[u8]| {
        CString::new(b)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))
    };
    let root = cstr(spec.root.as_os_str().as_bytes())?;
    let workdir = cstr(spec.workdir.as_bytes())?;
    let hostname = spec.hostname.as_bytes().to_vec();
    let (uid, gid) = (spec.uid, spec.gid);
    let privileged = euid() == 0;
    // SAFETY: getuid/getgid cannot fail.
    let (outer_uid, outer_gid) = unsafe { (libc::getuid(), libc::getgid()) };
    let uid_map = format!("{uid} {outer_uid} 1\n").into_bytes();
    let gid_map = format!("{gid} {outer_gid} 1\n").into_bytes();
    let p_setgroups = cstr(b"/proc/self/setgroups")?;
    let p_uid_map = cstr(b"/proc/self/uid_map")?;
    let p_gid_map = cstr(b"/proc/self/gid_map")?;
    let mut flags =
        libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWPID;
    if spec.network == Network::None {
        flags |= libc::CLONE_NEWNET;
    }
    if !privileged {
        flags |= libc::CLONE_NEWUSER;
    }

    let mut c = Command::new(spec.program);
    c.arg0(&spec.argv[0]).args(&spec.argv[1..]);
    c.env_clear().envs(spec.env.iter().map(|(k, v)| (k, v)));
    let trace = spec.trace;
    let filter = crate::trace::seccomp_filter();
    // SAFETY: getpid cannot fail.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure only makes raw system calls on data prepared
    // above (no allocation, no locks), as required between fork and exec.
    unsafe {
        c.pre_exec(move || {
            let check = |r: libc::c_int| {
                if r < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(())
                }
            };
            let write_file = |path: &CString, data: &[u8]| -> std::io::Result<()> {
                let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                let n = libc::write(fd, data.as_ptr().cast(), data.len());
                let err = std::io::Error::last_os_error();
                libc::close(fd);
                if n != data.len() as isize {
                    Err(err)
                } else {
                    Ok(())
                }
            };
            if let Some(h) = trace {
                // Traced from here on; the fork below is followed.
                h.wait()?;
            }
            // A session of its own: the terminal's signals reach only the
            // runner, which forwards them.
            check(libc::setsid())?;
            die_with_parent(parent)?;
            check(libc::unshare(flags))?;
            if !privileged {
                write_file(&p_setgroups, b"deny")?;
                write_file(&p_uid_map, &uid_map)?;
                write_file(&p_gid_map, &gid_map)?;
            }
            let pid = libc::fork();
            if pid < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if pid > 0 {
                monitor(pid);
            }
            check(libc::sethostname(hostname.as_ptr().cast(), hostname.len()))?;
            check(libc::chroot(root.as_ptr()))?;
            check(libc::chdir(workdir.as_ptr()))?;
            if privileged {
                // Root keeps only docker's default capabilities, less those
                // that reach past a chroot without a pid namespace (KILL,
                // MKNOD, SYS_CHROOT): a program running as uid 0 cannot
                // escape the root, mount, load modules or make devices.
                for cap in 0..64 {
                    if !ROOT_KEEPS.contains(&cap) {
                        libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0);
                    }
                }
                check(libc::setgroups(0, std::ptr::null()))?;
                check(libc::setgid(gid))?;
                check(libc::setuid(uid))?;
            }
            // PID 1 of the new namespace dies with the monitor (set after
            // setuid, which clears it).
            check(libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ))?;
            // No setuid/file-capability privilege gains after exec.
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            if trace.is_some() {
                crate::trace::install_filter(&filter)?;
            }
            Ok(())
        });
    }
    Ok(c)
}
