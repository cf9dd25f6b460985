//! Starting the program inside the unpacked root: bubblewrap when it works,
//! else namespaces + chroot done by hand in the child before exec.

use std::ffi::CString;
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

/// A command running the program under bubblewrap.
pub fn bwrap_command(spec: &Spec<'_>) -> Command {
    let mut c = Command::new(bwrap_path().unwrap_or_else(|| "bwrap".into()));
    c.args([
        "--die-with-parent",
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
    c.arg("--").arg(spec.program).args(&spec.argv[1..]);
    // bwrap passes its own environment on: give it exactly the image's.
    c.env_clear().envs(spec.env.iter().map(|(k, v)| (k, v)));
    c
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
/// `no_new_privs`. There is no pid namespace: prefer bubblewrap for
/// untrusted images.
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
    let mut flags = libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if spec.network == Network::None {
        flags |= libc::CLONE_NEWNET;
    }
    if !privileged {
        flags |= libc::CLONE_NEWUSER;
    }

    let mut c = Command::new(spec.program);
    c.arg0(&spec.argv[0]).args(&spec.argv[1..]);
    c.env_clear().envs(spec.env.iter().map(|(k, v)| (k, v)));
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
            check(libc::unshare(flags))?;
            if !privileged {
                write_file(&p_setgroups, b"deny")?;
                write_file(&p_uid_map, &uid_map)?;
                write_file(&p_gid_map, &gid_map)?;
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
            // No setuid/file-capability privilege gains after exec.
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
            Ok(())
        });
    }
    Ok(c)
}
