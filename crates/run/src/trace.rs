//! `run --trace`: every file-system lookup the program made that failed
//! (ENOENT, ENOTDIR, EACCES), seen with ptrace.
//!
//! The sandbox helper (bwrap, or the chroot fallback's monitor) stops
//! itself for us (`PTRACE_TRACEME` + `SIGSTOP`) before anything else; we
//! set `PTRACE_O_TRACEFORK|VFORK|CLONE|EXEC|SECCOMP|EXITKILL` and so follow
//! every process and thread it makes. A seccomp filter installed just
//! before the exec returns `SECCOMP_RET_TRACE` for the path-taking system
//! calls only, so the program stops for those and runs every other call
//! (read, write, mmap, futex, ...) at full speed. A task's lookups count
//! once it has exec'd the program (or was forked by one that has): the
//! sandbox's own setup is left out. Paths are reported as the program sees
//! them, inside the image.
//!
//! Only the tracer thread may make ptrace requests, and it waits with
//! `__WNOTHREAD`, so other threads' children (a test harness running runs
//! in parallel) are never reaped here.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

/// One failed lookup.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Lookup {
    /// The path as the program saw it (absolute, inside the image).
    pub path: String,
    /// The system call (`openat`, `newfstatat`, `execve`, ...).
    pub syscall: &'static str,
    /// `ENOENT`, `ENOTDIR` or `EACCES`.
    pub error: &'static str,
    /// The call would have created something (`O_CREAT`, `mkdir`): a
    /// write into a missing directory.
    pub create: bool,
}

/// What a traced run saw.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// Failed lookups in the order they happened, each distinct one once.
    pub lookups: Vec<Lookup>,
    /// Paths the program looked up successfully (distinct, at most
    /// 65536): a program probing several places finds what it needs in one.
    pub found: Vec<String>,
    /// How many system calls stopped for the tracer.
    pub traced_calls: u64,
}

/// How a system call names its path.
#[derive(Clone, Copy)]
struct Call {
    name: &'static str,
    /// Index of the dirfd argument, if any.
    dirfd: Option<usize>,
    path: usize,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Flags in this argument (open, openat).
    OpenFlags(usize),
    /// `struct open_how *` in this argument (openat2).
    OpenHow(usize),
    Create,
    Lookup,
}

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// One entry of [`calls`]'s table.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const fn c(name: &'static str, dirfd: Option<usize>, path: usize, kind: Kind) -> Call {
    Call {
        name,
        dirfd,
        path,
        kind,
    }
}

/// The system calls stopped for, by number (x86-64 numbering).
#[cfg(target_arch = "x86_64")]
fn calls() -> &'static [(u64, Call)] {
    use Kind::*;
    const CALLS: &[(u64, Call)] = &[
        (2, c("open", None, 0, OpenFlags(1))),
        (4, c("stat", None, 0, Lookup)),
        (6, c("lstat", None, 0, Lookup)),
        (21, c("access", None, 0, Lookup)),
        (59, c("execve", None, 0, Lookup)),
        (80, c("chdir", None, 0, Lookup)),
        (83, c("mkdir", None, 0, Create)),
        (85, c("creat", None, 0, Create)),
        (89, c("readlink", None, 0, Lookup)),
        (257, c("openat", Some(0), 1, OpenFlags(2))),
        (258, c("mkdirat", Some(0), 1, Create)),
        (262, c("newfstatat", Some(0), 1, Lookup)),
        (267, c("readlinkat", Some(0), 1, Lookup)),
        (269, c("faccessat", Some(0), 1, Lookup)),
        (322, c("execveat", Some(0), 1, Lookup)),
        (332, c("statx", Some(0), 1, Lookup)),
        (437, c("openat2", Some(0), 1, OpenHow(2))),
        (439, c("faccessat2", Some(0), 1, Lookup)),
    ];
    CALLS
}

/// The system calls stopped for, by number (the generic numbering arm64
/// uses).
#[cfg(target_arch = "aarch64")]
fn calls() -> &'static [(u64, Call)] {
    use Kind::*;
    const CALLS: &[(u64, Call)] = &[
        (34, c("mkdirat", Some(0), 1, Create)),
        (48, c("faccessat", Some(0), 1, Lookup)),
        (49, c("chdir", None, 0, Lookup)),
        (56, c("openat", Some(0), 1, OpenFlags(2))),
        (78, c("readlinkat", Some(0), 1, Lookup)),
        (79, c("newfstatat", Some(0), 1, Lookup)),
        (221, c("execve", None, 0, Lookup)),
        (281, c("execveat", Some(0), 1, Lookup)),
        (291, c("statx", Some(0), 1, Lookup)),
        (437, c("openat2", Some(0), 1, OpenHow(2))),
        (439, c("faccessat2", Some(0), 1, Lookup)),
    ];
    CALLS
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH: u32 = 0;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn calls() -> &'static [(u64, Call)] {
    &[]
}

/// Whether this host's architecture is supported by the tracer.
pub fn supported() -> bool {
    !calls().is_empty()
}

fn call(nr: u64) -> Option<&'static Call> {
    calls().iter().find(|(n, _)| *n == nr).map(|(_, c)| c)
}

/// The classic-BPF program: `SECCOMP_RET_TRACE` for the calls above (of
/// this architecture), `SECCOMP_RET_ALLOW` for everything else.
pub(crate) fn seccomp_filter() -> Vec<libc::sock_filter> {
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let stmt = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: JEQ_K,
        jt,
        jf,
        k,
    };
    // struct seccomp_data { int nr; __u32 arch; ... }
    let mut f = vec![
        stmt(LD_W_ABS, 4),
        jump(AUDIT_ARCH, 1, 0),
        stmt(RET_K, libc::SECCOMP_RET_ALLOW),
        stmt(LD_W_ABS, 0),
    ];
    let nrs: Vec<u32> = calls().iter().map(|(n, _)| *n as u32).collect();
    for (i, nr) in nrs.iter().enumerate() {
        // Match: jump over the remaining tests and the ALLOW to the TRACE.
        let remaining = (nrs.len() - 1 - i) as u8;
        f.push(jump(*nr, remaining + 1, 0));
    }
    f.push(stmt(RET_K, libc::SECCOMP_RET_ALLOW));
    f.push(stmt(RET_K, libc::SECCOMP_RET_TRACE));
    f
}

/// The two pipes between a traced process and its tracer: the process
/// writes its pid to `ready` and waits for a byte on `go`, which the tracer
/// sends once it is attached (`PTRACE_SEIZE`, options set).
#[derive(Clone, Copy)]
pub(crate) struct Handshake {
    pub ready_w: libc::c_int,
    pub go_r: libc::c_int,
}

impl Handshake {
    /// Waits to be traced.
    ///
    /// # Safety
    /// Async-signal-safe: for use between fork and exec.
    pub(crate) unsafe fn wait(self) -> std::io::Result<()> {
        let pid = libc::getpid().to_ne_bytes();
        if libc::write(self.ready_w, pid.as_ptr().cast(), pid.len()) != pid.len() as isize {
            return Err(std::io::Error::last_os_error());
        }
        let mut b = 0u8;
        loop {
            let n = libc::read(self.go_r, (&mut b as *mut u8).cast(), 1);
            if n == 1 {
                return Ok(());
            }
            if n < 0 && *libc::__errno_location() == libc::EINTR {
                continue;
            }
            return Err(std::io::Error::other("the tracer went away"));
        }
    }
}

/// Installs the filter (with `no_new_privs`, which unprivileged filters
/// need).
///
/// # Safety
/// Async-signal-safe: for use between fork and exec.
pub(crate) unsafe fn install_filter(filter: &[libc::sock_filter]) -> std::io::Result<()> {
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0
        || libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const libc::sock_fprog as libc::c_ulong,
            0,
            0,
        ) < 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[derive(Default)]
struct Task {
    /// Exec'd the program, or descends from a task that did.
    program: bool,
    /// The lookup whose result the next syscall-exit stop brings.
    pending: Option<Lookup>,
}

/// The tracer, on a thread of its own: reads the helper's pid from `ready`,
/// attaches to it, lets it go on, and follows it and everything it starts
/// until all are gone. Returns the helper's wait status (`None` when it
/// never got as far as the handshake) and what was seen. `program`
/// receives the pid of the first task that exec'd the program.
pub(crate) fn trace(
    ready: std::fs::File,
    go: std::fs::File,
    rootfs: &Path,
    program: &AtomicI32,
) -> (Option<i32>, Trace) {
    use std::io::{Read, Write};
    let mut out = Trace::default();
    let mut ready = ready;
    let mut go = go;
    let mut buf = [0u8; 4];
    if ready.read_exact(&mut buf).is_err() {
        return (None, out);
    }
    let helper = libc::pid_t::from_ne_bytes(buf);
    let rootfs = std::fs::canonicalize(rootfs).unwrap_or_else(|_| rootfs.to_path_buf());
    let mut tasks: HashMap<libc::pid_t, Task> = HashMap::new();
    // New tasks whose creator's event has not come yet (stopped, waiting),
    // and the flags of those announced before their first stop.
    let mut unclaimed: HashSet<libc::pid_t> = HashSet::new();
    let mut announced: HashMap<libc::pid_t, bool> = HashMap::new();
    let mut seen: HashSet<Lookup> = HashSet::new();
    let mut found: HashSet<String> = HashSet::new();
    let mut helper_status = None;
    let options = libc::PTRACE_O_TRACESYSGOOD
        | libc::PTRACE_O_TRACEFORK
        | libc::PTRACE_O_TRACEVFORK
        | libc::PTRACE_O_TRACECLONE
        | libc::PTRACE_O_TRACEEXEC
        | libc::PTRACE_O_TRACESECCOMP
        | libc::PTRACE_O_EXITKILL;
    // SAFETY: attaching to the process that asked for it.
    let r = unsafe { libc::ptrace(libc::PTRACE_SEIZE, helper, 0, options as libc::c_ulong) };
    if r < 0 {
        // Not traced: it must not run on (its filter would fail every
        // lookup with ENOSYS). Closing `go` makes its handshake fail.
        return (None, out);
    }
    tasks.insert(helper, Task::default());
    if go.write_all(b"g").is_err() {
        return (None, out);
    }
    drop(go);

    loop {
        let mut status = 0;
        // SAFETY: waiting for our tracees (and our child, the helper).
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::__WNOTHREAD) };
        if pid < 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::EINTR) => continue,
                _ => break, // ECHILD: every tracee is gone
            }
        }
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            tasks.remove(&pid);
            unclaimed.remove(&pid);
            if pid == helper {
                helper_status = Some(status);
            }
            continue;
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        if let std::collections::hash_map::Entry::Vacant(slot) = tasks.entry(pid) {
            // A new task's first stop (its SIGSTOP), possibly before its
            // creator's event: keep it stopped until we know its flags.
            match announced.remove(&pid) {
                Some(flag) => {
                    slot.insert(Task {
                        program: flag,
                        pending: None,
                    });
                    resume(pid, libc::PTRACE_CONT, 0);
                }
                None => {
                    unclaimed.insert(pid);
                }
            }
            continue;
        }
        if event == libc::PTRACE_EVENT_STOP {
            // A group-stop (SIGSTOP, SIGTSTP): let it go on.
            resume(pid, libc::PTRACE_CONT, 0);
            continue;
        }
        if sig == libc::SIGTRAP && event != 0 {
            match event {
                libc::PTRACE_EVENT_SECCOMP => {
                    out.traced_calls += 1;
                    let is_program = tasks.get(&pid).is_some_and(|t| t.program);
                    let lookup = if is_program {
                        decode_entry(pid, &rootfs)
                    } else {
                        None
                    };
                    match lookup {
                        Some(l) => {
                            if let Some(t) = tasks.get_mut(&pid) {
                                t.pending = Some(l);
                            }
                            resume(pid, libc::PTRACE_SYSCALL, 0);
                        }
                        None => resume(pid, libc::PTRACE_CONT, 0),
                    }
                }
                libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                    let child = event_msg(pid) as libc::pid_t;
                    let flag = tasks.get(&pid).is_some_and(|t| t.program);
                    if unclaimed.remove(&child) {
                        tasks.insert(
                            child,
                            Task {
                                program: flag,
                                pending: None,
                            },
                        );
                        resume(child, libc::PTRACE_CONT, 0);
                    } else if child > 0 {
                        announced.insert(child, flag);
                    }
                    resume(pid, libc::PTRACE_CONT, 0);
                }
                libc::PTRACE_EVENT_STOP => resume(pid, libc::PTRACE_CONT, 0),
                libc::PTRACE_EVENT_EXEC => {
                    let former = event_msg(pid) as libc::pid_t;
                    if former != pid {
                        tasks.remove(&former);
                    }
                    let t = tasks.entry(pid).or_default();
                    t.pending = None; // the exec worked
                    if pid != helper && !t.program {
                        t.program = true;
                        let _ =
                            program.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst);
                    }
                    resume(pid, libc::PTRACE_CONT, 0);
                }
                _ => resume(pid, libc::PTRACE_CONT, 0),
            }
            continue;
        }
        if sig == (libc::SIGTRAP | 0x80) {
            // The syscall-exit stop asked for at a seccomp stop.
            let pending = tasks.get_mut(&pid).and_then(|t| t.pending.take());
            let errno = exit_errno(pid);
            if let (Some(l), Some(None)) = (&pending, errno) {
                if found.len() < 65536 && found.insert(l.path.clone()) {
                    out.found.push(l.path.clone());
                }
            }
            if let (Some(mut l), Some(Some(errno))) = (pending, errno) {
                let name = match errno {
                    libc::ENOENT => Some("ENOENT"),
                    libc::ENOTDIR => Some("ENOTDIR"),
                    libc::EACCES => Some("EACCES"),
                    _ => None,
                };
                if let Some(name) = name {
                    l.error = name;
                    if seen.insert(l.clone()) {
                        out.lookups.push(l);
                    }
                }
            }
            resume(pid, libc::PTRACE_CONT, 0);
            continue;
        }
        // A fault the kernel raised (SIGSEGV from a bad access, ...) with
        // no handler: untraced, it kills the task even as PID 1, but the
        // kernel keeps a traced PID 1 unkillable, so the fault would repeat
        // for ever. Let go of the task: it faults again, untraced, and
        // dies as it would have.
        if is_default_fault(pid, sig) {
            // SAFETY: detaching from our stopped tracee.
            unsafe {
                libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0);
            }
            tasks.remove(&pid);
            continue;
        }
        // A signal for the tracee: deliver it (a SIGSTOP sent to a task we
        // already know is delivered too).
        resume(pid, libc::PTRACE_CONT, sig);
    }
    // Anything left (cannot normally happen: the PID namespace is gone).
    for pid in unclaimed.into_iter().chain(tasks.into_keys()) {
        // SAFETY: killing a tracee.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
    (helper_status, out)
}

/// A synchronous fault signal sent by the kernel, which the task does not
/// handle or ignore.
fn is_default_fault(pid: libc::pid_t, sig: libc::c_int) -> bool {
    if ![libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE].contains(&sig) {
        return false;
    }
    // SAFETY: PTRACE_GETSIGINFO fills one siginfo_t.
    let code = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        if libc::ptrace(libc::PTRACE_GETSIGINFO, pid, 0, &mut info as *mut _) < 0 {
            return false;
        }
        info.si_code
    };
    if code <= 0 {
        return false; // sent by a process (kill, raise)
    }
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let mask = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .unwrap_or(0)
    };
    let bit = 1u64 << (sig - 1);
    (mask("SigCgt:") | mask("SigIgn:")) & bit == 0
}

fn resume(pid: libc::pid_t, request: libc::c_uint, sig: libc::c_int) {
    // SAFETY: restarting a stopped tracee; failure (it died) is harmless.
    unsafe {
        libc::ptrace(request, pid, 0, sig as libc::c_ulong);
    }
}

fn event_msg(pid: libc::pid_t) -> libc::c_ulong {
    let mut msg: libc::c_ulong = 0;
    // SAFETY: PTRACE_GETEVENTMSG writes one c_ulong.
    unsafe {
        libc::ptrace(libc::PTRACE_GETEVENTMSG, pid, 0, &mut msg as *mut _);
    }
    msg
}

fn syscall_info(pid: libc::pid_t) -> Option<libc::ptrace_syscall_info> {
    // SAFETY: the kernel fills at most size_of bytes.
    unsafe {
        let mut info: libc::ptrace_syscall_info = std::mem::zeroed();
        let n = libc::ptrace(
            libc::PTRACE_GET_SYSCALL_INFO,
            pid,
            std::mem::size_of::<libc::ptrace_syscall_info>(),
            &mut info as *mut _,
        );
        (n > 0).then_some(info)
    }
}

const OP_EXIT: u8 = 2;
const OP_SECCOMP: u8 = 3;

/// At a syscall-exit stop: `Some(None)` when the call worked,
/// `Some(Some(errno))` when it failed.
fn exit_errno(pid: libc::pid_t) -> Option<Option<i32>> {
    let info = syscall_info(pid)?;
    if info.op != OP_EXIT {
        return None;
    }
    // SAFETY: op says which member is valid.
    let exit = unsafe { info.u.exit };
    Some((exit.is_error != 0).then(|| (-exit.sval) as i32))
}

/// The lookup a seccomp stop is about to make.
fn decode_entry(pid: libc::pid_t, rootfs: &Path) -> Option<Lookup> {
    let info = syscall_info(pid)?;
    if info.op != OP_SECCOMP {
        return None;
    }
    // SAFETY: op says which member is valid.
    let sc = unsafe { info.u.seccomp };
    let call = call(sc.nr)?;
    let raw = read_string(pid, sc.args[call.path])?;
    if raw.is_empty() {
        return None; // AT_EMPTY_PATH: about an open fd, not a path
    }
    let create = match call.kind {
        Kind::OpenFlags(i) => sc.args[i] as i32 & libc::O_CREAT != 0,
        Kind::OpenHow(i) => {
            read_bytes(pid, sc.args[i], 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_ne_bytes)
                .unwrap_or(0) as i32
                & libc::O_CREAT
                != 0
        }
        Kind::Create => true,
        Kind::Lookup => false,
    };
    let path = if raw.starts_with('/') {
        raw
    } else {
        let dirfd = call.dirfd.map(|i| sc.args[i] as i32);
        let base = match dirfd {
            None | Some(libc::AT_FDCWD) => format!("/proc/{pid}/cwd"),
            Some(fd) => format!("/proc/{pid}/fd/{fd}"),
        };
        let base = std::fs::read_link(base)
            .map(|b| inside(&b, rootfs))
            .unwrap_or_else(|_| "/".into());
        format!("{}/{}", base.trim_end_matches('/'), raw)
    };
    Some(Lookup {
        path: distroless_pack_image::clean_path(&path),
        syscall: call.name,
        error: "",
        create,
    })
}

/// A host path (as /proc shows it) as the program sees it.
fn inside(host: &Path, rootfs: &Path) -> String {
    match host.strip_prefix(rootfs) {
        Ok(rest) => format!("/{}", rest.display()),
        Err(_) => host.display().to_string(),
    }
}

fn read_bytes(pid: libc::pid_t, addr: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: len,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: len,
    };
    // SAFETY: reading our tracee's memory into our buffer.
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

/// A NUL-terminated string of the tracee, read page by page (a string may
/// end just before an unmapped page).
fn read_string(pid: libc::pid_t, addr: u64) -> Option<String> {
    const PAGE: u64 = 4096;
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < libc::PATH_MAX as usize {
        let chunk = (PAGE - at % PAGE) as usize;
        let bytes = read_bytes(pid, at, chunk)?;
        if bytes.is_empty() {
            return None;
        }
        if let Some(end) = bytes.iter().position(|&b| b == 0) {
            out.extend_from_slice(&bytes[..end]);
            return Some(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&bytes);
        at += bytes.len() as u64;
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_traces_the_listed_calls_only() {
        let f = seccomp_filter();
        // arch check (3), load nr, one test per call, allow, trace.
        assert_eq!(f.len(), 4 + calls().len() + 2);
        assert_eq!(f.last().unwrap().k, libc::SECCOMP_RET_TRACE);
        // The first test jumps past every other test and the ALLOW.
        assert_eq!(f[4].jt as usize, calls().len());
    }
}
