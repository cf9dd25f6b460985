//! Where a file output's bytes go: one primitive for `oci-archive:`,
//! `docker-archive:`, `--digest-file` and the files of an `oci:` layout.
//!
//! [`Destination::open`] looks at what is at the path first and never
//! replaces something that is not a regular file:
//!
//! | at the path                    | what happens                                        |
//! |--------------------------------|-----------------------------------------------------|
//! | nothing, or a regular file     | a temp file beside it, renamed over it when complete |
//! | a symlink                      | followed (to its end): the target is replaced atomically |
//! | a FIFO or a character device   | written as a stream (`/dev/null`, a named pipe) |
//! | `/dev/stdout`, `/dev/fd/N`     | written as a stream to that descriptor, whatever it is open on |
//! | a directory, socket, block device | refused with an error naming it                  |
//!
//! [`Destination::stdout`] streams to standard output (for `-`).
//!
//! Temp files are named `.distroless-pack-tmp-<pid>-<random>` and are
//! created `0666 & ~umask`, the mode the finished file keeps (as skopeo and
//! umoci do), so a layout or archive is readable by whoever the umask lets
//! read it. While one exists its path is in a process-wide registry: on
//! SIGINT or SIGTERM a handler thread removes every registered temp file and
//! exits with 130 or 143. After a SIGKILL nothing can clean up, so the next
//! write into the same directory removes temp files of ours whose process
//! is gone ([`clean_stale`]).

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};

use crate::ShipError;

/// The start of every temp file this crate creates.
pub const TMP_PREFIX: &str = ".distroless-pack-tmp-";

/// Symlinks followed at most, as the kernel's limit.
const MAX_LINKS: usize = 40;

/// Where an output goes.
pub enum Destination {
    /// A temp file renamed over `dest` by [`Destination::commit`].
    File(AtomicFile),
    /// A FIFO, character device or standard output, written in place.
    Stream {
        /// What it was opened as, for errors.
        path: PathBuf,
        out: Box<dyn Write + Send>,
    },
}

/// How messages name standard output (`-`).
pub const STDOUT_NAME: &str = "standard output";

/// `path` as messages name it: `-` is standard output.
pub fn shown(path: &Path) -> &Path {
    if crate::sink::is_stdout(path) {
        Path::new(STDOUT_NAME)
    } else {
        path
    }
}

impl Destination {
    /// Opens `path` as a destination (see the module docs for what each
    /// kind of file at `path` gets).
    pub fn open(path: &Path) -> Result<Destination, ShipError> {
        match classify(path)? {
            Place::Stdout => Ok(Destination::stdout()),
            Place::Descriptor(fd) => {
                // Written through a duplicate of the descriptor, so it
                // shares the file offset: reopening `/proc/self/fd/1` on a
                // regular file would start at byte 0 and be overwritten by
                // later output.
                // SAFETY: the descriptor is only borrowed to be duplicated;
                // a closed one makes dup fail with EBADF.
                let owned = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
                    .try_clone_to_owned()
                    .map_err(ShipError::io("opening", path))?;
                Ok(Destination::Stream {
                    path: path.to_path_buf(),
                    out: Box::new(File::from(owned)),
                })
            }
            Place::File(target) => AtomicFile::create(&target).map(Destination::File),
            Place::Stream(target) => {
                let f = OpenOptions::new()
                    .write(true)
                    .open(&target)
                    .map_err(ShipError::io("opening", &target))?;
                Ok(Destination::Stream {
                    path: target,
                    out: Box::new(f),
                })
            }
        }
    }

    /// Standard output, as a stream (also what [`Destination::open`] gives
    /// for `-`).
    pub fn stdout() -> Destination {
        Destination::Stream {
            path: PathBuf::from(STDOUT_NAME),
            out: Box::new(io::stdout()),
        }
    }

    /// Whether the output is written in place (nothing is renamed).
    pub fn is_stream(&self) -> bool {
        matches!(self, Destination::Stream { .. })
    }

    /// The file written to, for errors (the final path, not a temp name).
    pub fn path(&self) -> &Path {
        match self {
            Destination::File(f) => &f.dest,
            Destination::Stream { path, .. } => path,
        }
    }

    /// Makes the output final: a file is synced and renamed into place, a
    /// stream is flushed.
    pub fn commit(self) -> Result<(), ShipError> {
        match self {
            Destination::File(f) => f.commit(),
            Destination::Stream { path, mut out } => {
                out.flush().map_err(ShipError::io("writing", &path))
            }
        }
    }
}

impl Write for Destination {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Destination::File(f) => f.file().write(buf),
            Destination::Stream { out, .. } => out.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Destination::File(f) => f.file().flush(),
            Destination::Stream { out, .. } => out.flush(),
        }
    }
}

/// What is at a destination path, as [`Destination::open`] treats it.
enum Place {
    /// `-`.
    Stdout,
    /// An already open descriptor (`/dev/stdout`, `/dev/fd/N`,
    /// `/proc/self/fd/N`), written through whatever it is open on: its link
    /// does not name a path to rename onto (`pipe:[1234]`), and a shell's
    /// `> file` or `>> file` should get the bytes in place.
    Descriptor(i32),
    /// Nothing or a regular file (links followed), in a directory that
    /// exists: replaced through a temp file.
    File(PathBuf),
    /// A FIFO or character device: written in place.
    Stream(PathBuf),
}

/// Looks at `path` without creating anything: refuses a directory, a
/// socket, a block device, or a new file in a directory that does not
/// exist.
fn classify(path: &Path) -> Result<Place, ShipError> {
    if crate::sink::is_stdout(path) {
        return Ok(Place::Stdout);
    }
    if let Some(fd) = descriptor_of(path) {
        return Ok(Place::Descriptor(fd));
    }
    let target = resolve_links(path)?;
    match fs::metadata(&target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            existing_parent(&target)?;
            Ok(Place::File(target))
        }
        Err(e) => Err(ShipError::io("reading", &target)(e)),
        Ok(m) if m.is_file() => Ok(Place::File(target)),
        Ok(m) if m.file_type().is_fifo() || m.file_type().is_char_device() => {
            Ok(Place::Stream(target))
        }
        Ok(m) if m.is_dir() => Err(ShipError::invalid(
            path,
            "is a directory; a file output needs a file path",
        )),
        Ok(m) => {
            let ft = m.file_type();
            let kind = if ft.is_socket() {
                "a socket"
            } else if ft.is_block_device() {
                "a block device"
            } else {
                "not a regular file"
            };
            Err(ShipError::invalid(
                path,
                format!("is {kind}; refusing to replace it (write to a regular file, a FIFO or a character device)"),
            ))
        }
    }
}

/// The directory a new file at `dest` goes in (`.` for a bare name), which
/// must exist: outputs never create it, as skopeo's do not.
fn existing_parent(dest: &Path) -> Result<PathBuf, ShipError> {
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(ShipError::invalid(
            &dir,
            "no such directory (create it first)",
        ));
    }
    Ok(dir)
}

/// Whether [`Destination::open`] would take `path`, checked before any
/// work, so a build is not run (nor an image pushed) only to fail on its
/// last file. Creates nothing.
pub fn check_destination(path: &Path) -> Result<(), ShipError> {
    classify(path).map(|_| ())
}

/// Writes `bytes` to `path` through a [`Destination`].
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), ShipError> {
    let mut d = Destination::open(path)?;
    d.write_all(bytes).map_err(ShipError::io("writing", path))?;
    d.commit()
}

/// The descriptor number when `path` names an open file descriptor of this
/// process (`/dev/stdout`, `/dev/stderr`, `/dev/fd/N`, `/proc/self/fd/N`).
fn descriptor_of(path: &Path) -> Option<i32> {
    let p = path.to_str()?;
    match p {
        "/dev/stdout" => Some(1),
        "/dev/stderr" => Some(2),
        _ => p
            .strip_prefix("/dev/fd/")
            .or_else(|| p.strip_prefix("/proc/self/fd/"))
            .and_then(|n| n.parse().ok()),
    }
}

/// `path` with every symlink on its last component followed; a dangling
/// link gives the path it points at (which is then created).
fn resolve_links(path: &Path) -> Result<PathBuf, ShipError> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&p).map_err(ShipError::io("reading", &p))?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(ShipError::invalid(
        path,
        format!("more than {MAX_LINKS} levels of symlinks"),
    ))
}

/// A temp file in the destination's directory, registered for removal on
/// SIGINT/SIGTERM, renamed over the destination by [`AtomicFile::commit`]
/// and removed if dropped uncommitted.
pub struct AtomicFile {
    dest: PathBuf,
    /// Whether a file was at `dest` when this began (its bytes are what a
    /// crash must not lose: fsync before the rename over it).
    replaces: bool,
    tmp: Option<tempfile::NamedTempFile>,
    _live: TempGuard,
}

impl AtomicFile {
    /// A temp file for `dest` (created `0666 & ~umask`), after removing
    /// stale temp files of dead runs in the same directory.
    pub fn create(dest: &Path) -> Result<AtomicFile, ShipError> {
        let dir = existing_parent(dest)?;
        clean_stale(&dir);
        let (tmp, live) = temp_file_in(&dir, dest)?;
        Ok(AtomicFile {
            dest: dest.to_path_buf(),
            replaces: fs::symlink_metadata(dest).is_ok(),
            tmp: Some(tmp),
            _live: live,
        })
    }

    /// The open temp file.
    pub fn file(&mut self) -> &mut File {
        self.tmp.as_mut().expect("not committed").as_file_mut()
    }

    /// Renames the temp file over the destination; syncs it first when it
    /// replaces a file, so a power loss leaves the old file or the new
    /// one, never an empty one in its place. A new name is not synced (as
    /// umoci and skopeo do not): a crash can then lose it, not anything
    /// the user had. See docs/design.md ("Writing blobs into a layout").
    pub fn commit(mut self) -> Result<(), ShipError> {
        let tmp = self.tmp.take().expect("not committed");
        if self.replaces {
            tmp.as_file()
                .sync_all()
                .map_err(ShipError::io("writing", &self.dest))?;
        }
        tmp.persist(&self.dest)
            .map_err(|e| ShipError::io("renaming into", &self.dest)(e.error))?;
        Ok(())
    }
}

/// Creates a temp file named `.distroless-pack-tmp-<pid>-<random>` in
/// `dir`, mode `0666 & ~umask`, registered as live (the registry is held
/// from before it exists until it is in it, so a signal cannot slip
/// between). `for_dest` names the file it is for, in errors.
pub(crate) fn temp_file_in(
    dir: &Path,
    for_dest: &Path,
) -> Result<(tempfile::NamedTempFile, TempGuard), ShipError> {
    install_handler();
    let mut registry = live();
    let tmp = tempfile::Builder::new()
        .prefix(&format!("{TMP_PREFIX}{}-", std::process::id()))
        .permissions(fs::Permissions::from_mode(0o666))
        .tempfile_in(dir)
        .map_err(|e| {
            let what = if for_dest == dir { dir } else { for_dest };
            ShipError::io("creating a temp file for", what)(e)
        })?;
    registry.insert(tmp.path().to_path_buf());
    let guard = TempGuard(tmp.path().to_path_buf());
    Ok((tmp, guard))
}

/// Writes `digest` (no trailing newline, like docker's `--iidfile`) to
/// `path` through a [`Destination`]: atomically for a regular file, as a
/// stream for a FIFO or character device, refused for anything else.
pub fn write_digest_file(path: &Path, digest: &str) -> Result<(), ShipError> {
    write_bytes(path, digest.as_bytes())
}

// ---------------------------------------------------------------- live temp files

static LIVE: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());
static HANDLER: Once = Once::new();

/// Keeps `path` in the registry of live temp files while alive: SIGINT or
/// SIGTERM removes it (and every other registered one) before the process
/// exits. Dropping the guard only unregisters; removing the file is the
/// owner's business.
pub struct TempGuard(PathBuf);

impl TempGuard {
    pub fn new(path: PathBuf) -> TempGuard {
        install_handler();
        live().insert(path.clone());
        TempGuard(path)
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        live().remove(&self.0);
    }
}

fn live() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every live temp file now (for a caller that handles signals
/// itself and is about to exit).
pub fn remove_live_temp_files() {
    for p in live().iter() {
        let _ = fs::remove_file(p);
    }
}

fn install_handler() {
    HANDLER.call_once(|| {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
            return;
        };
        let _ = std::thread::Builder::new()
            .name("temp-file-cleanup".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    // Hold the registry while exiting so no new temp file
                    // is registered (and left) after the sweep.
                    let files = live();
                    for p in files.iter() {
                        let _ = fs::remove_file(p);
                    }
                    std::process::exit(128 + sig);
                }
            });
    });
}

/// Removes temp files of ours in `dir` left by processes that are gone
/// (killed with SIGKILL, or a machine that crashed): names
/// `.distroless-pack-tmp-<pid>-*` whose pid is not running. Temp files of
/// live processes, and names without a pid, are left alone.
pub fn clean_stale(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let me = std::process::id();
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TMP_PREFIX)) else {
            continue;
        };
        let Some(pid) = rest
            .split_once('-')
            .and_then(|(p, _)| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me || pid_alive(pid) {
            continue;
        }
        if e.file_type().is_ok_and(|t| t.is_file()) && fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_symlinked_destination_replaces_its_target_and_keeps_the_link() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real.tar");
        fs::write(&real, "old").unwrap();
        let link = d.path().join("link.tar");
        symlink("real.tar", &link).unwrap();
        let mut out = Destination::open(&link).unwrap();
        assert!(!out.is_stream());
        out.write_all(b"new").unwrap();
        out.commit().unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "new");
        // a dangling link: its target is created
        let dangling = d.path().join("dangling");
        symlink("made.tar", &dangling).unwrap();
        write_digest_file(&dangling, "sha256:x").unwrap();
        assert_eq!(
            fs::read_to_string(d.path().join("made.tar")).unwrap(),
            "sha256:x"
        );
        assert!(fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn dev_null_is_written_as_a_stream_not_replaced() {
        let mut out = Destination::open(Path::new("/dev/null")).unwrap();
        assert!(out.is_stream());
        out.write_all(b"bytes").unwrap();
        out.commit().unwrap();
        assert!(fs::metadata("/dev/null")
            .unwrap()
            .file_type()
            .is_char_device());
    }

    #[test]
    fn a_socket_or_directory_is_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("s.sock");
        let _l = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        let e = Destination::open(&sock).err().unwrap().to_string();
        assert!(e.contains("s.sock") && e.contains("socket"), "{e}");
        let e = Destination::open(d.path()).err().unwrap().to_string();
        assert!(e.contains("is a directory"), "{e}");
        assert!(fs::symlink_metadata(&sock).unwrap().file_type().is_socket());
    }

    #[test]
    fn temp_files_carry_the_pid_and_stale_ones_of_dead_processes_go() {
        let d = tempfile::tempdir().unwrap();
        // pid 0 is never a process we can see in /proc; 1 always is
        let dead = d.path().join(format!("{TMP_PREFIX}4194305-abc"));
        let alive = d.path().join(format!("{TMP_PREFIX}1-abc"));
        let no_pid = d.path().join(format!("{TMP_PREFIX}abcdef"));
        for p in [&dead, &alive, &no_pid] {
            fs::write(p, "x").unwrap();
        }
        let f = AtomicFile::create(&d.path().join("out.tar")).unwrap();
        let name = f
            .tmp
            .as_ref()
            .unwrap()
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with(&format!("{TMP_PREFIX}{}-", std::process::id())),
            "{name}"
        );
        assert!(live().contains(f.tmp.as_ref().unwrap().path()));
        assert!(!dead.exists());
        assert!(alive.exists() && no_pid.exists());
        drop(f);
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 2);
    }

    #[test]
    fn files_follow_the_umask() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("digest");
        write_digest_file(&p, "sha256:x").unwrap();
        let umask = crate::blobcopy::umask();
        assert_eq!(mode(&p), 0o666 & !umask);
    }
}
