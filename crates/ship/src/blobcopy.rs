//! Putting a blob's bytes into a layout without paying for them twice.
//!
//! A layer assemble just wrote is a whole file (an unnamed O_TMPFILE
//! reached through `/proc/PID/fd/N`, or a named temp file) that nothing
//! writes again: [`link_whole_file`] gives it a name in the layout with
//! `linkat(2)` (`AT_SYMLINK_FOLLOW`, which is how an O_TMPFILE gets a name),
//! no byte copied. A cached layer is the first `size` bytes of a cache
//! entry that goes on with the entry's record and trailer, so the entry
//! cannot be linked (the link would be the whole file, not the blob):
//! [`kernel_copy`] copies the blob's region with `copy_file_range(2)`,
//! which stays in the kernel (and shares extents on btrfs/XFS). Where
//! neither works (another filesystem, a kernel or filesystem without it)
//! the caller copies through a 1 MiB buffer. See docs/design.md ("Writing
//! blobs into a layout").

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Size of the buffer of the user-space copy.
pub(crate) const COPY_BUFFER: usize = 1 << 20;

/// How a blob got into a layout (reported by [`crate::layout::write_blob`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placed {
    /// A file of that digest and size was already there.
    Present,
    /// Hard-linked: the layout's file is the blob's file.
    Linked,
    /// Copied inside the kernel (`copy_file_range`).
    KernelCopied,
    /// Read and written through a buffer (checked against its digest
    /// unless it was made in this run).
    Copied,
}

fn cstr(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))
}

/// Makes `to` (which must not exist) a hard link of the file at `from`,
/// following `from` if it is a link (as `/proc/PID/fd/N` is, also for an
/// unnamed O_TMPFILE opened without `O_EXCL`).
pub(crate) fn link_whole_file(from: &Path, to: &Path) -> io::Result<()> {
    let (a, b) = (cstr(from)?, cstr(to)?);
    // SAFETY: both are valid NUL-terminated strings that outlive the call.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Copies `len` bytes at `offset` of `src` to the current position of
/// `dst` with `copy_file_range(2)`. `Ok(false)` when the kernel cannot do
/// it for these two files (nothing was written: copy another way).
pub(crate) fn kernel_copy(src: &File, offset: u64, len: u64, dst: &File) -> io::Result<bool> {
    let mut off_in = offset as libc::loff_t;
    let mut left = len;
    let mut first = true;
    while left > 0 {
        let chunk = left.min(1 << 30) as usize;
        // SAFETY: valid descriptors; `off_in` is a live loff_t; a null
        // output offset means dst's file position.
        let n = unsafe {
            libc::copy_file_range(
                src.as_raw_fd(),
                &mut off_in,
                dst.as_raw_fd(),
                std::ptr::null_mut(),
                chunk,
                0,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            let unsupported = matches!(
                e.raw_os_error(),
                Some(libc::EXDEV | libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL | libc::EPERM)
            );
            if first && unsupported {
                return Ok(false);
            }
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the blob's file is shorter than its size",
            ));
        }
        first = false;
        left -= n as u64;
    }
    Ok(true)
}

/// Copies everything `r` yields to `w` through a [`COPY_BUFFER`] buffer.
pub(crate) fn buffered_copy(r: &mut dyn Read, w: &mut dyn Write) -> io::Result<u64> {
    let mut buf = vec![0u8; COPY_BUFFER];
    let mut total = 0;
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        w.write_all(&buf[..n])?;
        total += n as u64;
    }
}

/// The process's umask (read from /proc; 022 when unknown).
pub(crate) fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:").map(|v| v.trim().to_string()))
        })
        .and_then(|v| u32::from_str_radix(&v, 8).ok())
        .unwrap_or(0o022)
}
