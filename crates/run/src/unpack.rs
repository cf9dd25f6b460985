//! Unpacks an image's layers into a directory, safely.
//!
//! Every path is confined to the root: entries with `..`, absolute paths
//! (made relative) and symlinks met on the way are resolved *inside* the root
//! (an absolute link target means the root, `..` stops at the root), so a
//! hostile layer cannot write outside it. OCI whiteouts (`.wh.NAME`,
//! `.wh..wh..opq`) remove what lower layers put there. Directory modes are
//! applied last so a read-only directory can still be filled.

use std::collections::{HashSet, VecDeque};
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use distroless_pack_image::{Blob, BlobMismatch};

use crate::RunError;

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
const MAX_SYMLINKS: usize = 40;

/// Unpacks `layers`, bottom first, into `root` (an existing directory).
/// With `preserve_owner`, files get the uid/gid the layer gives them (only
/// meaningful when running as root).
pub fn unpack_layers(
    layers: &[Blob],
    root: &Path,
    preserve_owner: bool,
    interrupted: &dyn Fn() -> bool,
) -> Result<(), RunError> {
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    for layer in layers {
        unpack_one(layer, root, preserve_owner, &mut dir_modes, interrupted)?;
    }
    // Deepest first, so a read-only parent does not block its children.
    dir_modes.sort_by_key(|d| std::cmp::Reverse(d.0.components().count()));
    for (dir, mode) in dir_modes {
        if let Ok(m) = fs::symlink_metadata(&dir) {
            if m.is_dir() {
                fs::set_permissions(&dir, fs::Permissions::from_mode(mode))
                    .map_err(|e| RunError::io(&dir, e))?;
            }
        }
    }
    Ok(())
}

fn layer_err(layer: &Blob, message: impl Into<String>) -> RunError {
    RunError::Layer {
        digest: layer.digest.to_string(),
        message: message.into(),
    }
}

fn unpack_one(
    layer: &Blob,
    root: &Path,
    preserve_owner: bool,
    dir_modes: &mut Vec<(PathBuf, u32)>,
    interrupted: &dyn Fn() -> bool,
) -> Result<(), RunError> {
    let raw = layer
        .open_verified()
        .map_err(|e| layer_err(layer, format!("cannot open: {e}")))?;
    let mut hashing = BufReader::with_capacity(1 << 16, raw);
    let result = unpack_entries(
        layer,
        &mut hashing,
        root,
        preserve_owner,
        dir_modes,
        interrupted,
    );
    if matches!(result, Err(RunError::Interrupted)) {
        return result;
    }
    // Whatever happened, read to the end and check the digest first: a
    // corrupt blob is reported as that, not as the tar or gzip error its
    // damage causes. Draining also covers what tar did not read (padding).
    let mut raw = hashing.into_inner();
    match raw.finish() {
        Ok(()) => result,
        Err(e) => match BlobMismatch::in_io(&e) {
            Some(m) => Err(RunError::Mismatch(m.clone())),
            None => result.and(Err(layer_err(layer, format!("cannot read: {e}")))),
        },
    }
}

fn unpack_entries(
    layer: &Blob,
    hashing: &mut BufReader<distroless_pack_image::VerifyingReader<Box<dyn Read + Send>>>,
    root: &Path,
    preserve_owner: bool,
    dir_modes: &mut Vec<(PathBuf, u32)>,
    interrupted: &dyn Fn() -> bool,
) -> Result<(), RunError> {
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let reader = distroless_pack_image::uncompressed(hashing)
        .map_err(|e| layer_err(layer, format!("cannot read: {e}")))?;
    let mut archive = tar::Archive::new(reader);
    let entries = archive
        .entries()
        .map_err(|e| layer_err(layer, format!("not a tar: {e}")))?;
    for entry in entries {
        if interrupted() {
            return Err(RunError::Interrupted);
        }
        let mut entry = entry.map_err(|e| layer_err(layer, format!("bad tar entry: {e}")))?;
        let raw_path = entry
            .path()
            .map_err(|e| layer_err(layer, format!("bad entry path: {e}")))?
            .into_owned();
        let rel = confine(&raw_path).ok_or_else(|| {
            layer_err(
                layer,
                format!("entry {:?} leaves the image root (`..`)", raw_path),
            )
        })?;
        apply_entry(
            layer,
            root,
            &rel,
            &mut entry,
            preserve_owner,
            dir_modes,
            &mut seen,
        )?;
    }
    Ok(())
}

/// The path made relative, with `.` removed; `None` when it has `..`.
pub(crate) fn confine(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Resolves `rel` inside `root`, following symlinks as the program inside
/// the root would see them (absolute targets start again at `root`, `..`
/// stops at `root`). The last component is followed only when
/// `follow_last`. The result never leaves `root`.
pub fn resolve_in_root(root: &Path, rel: &Path, follow_last: bool) -> io::Result<PathBuf> {
    let mut done: Vec<OsString> = Vec::new();
    let mut pending: VecDeque<OsString> = VecDeque::new();
    push_front_components(&mut pending, rel);
    let mut links = 0;
    while let Some(c) = pending.pop_front() {
        if c == ".." {
            done.pop();
            continue;
        }
        if c == "." || c.is_empty() {
            continue;
        }
        let mut cand = root.to_path_buf();
        cand.extend(&done);
        cand.push(&c);
        let is_last = pending.is_empty();
        match fs::symlink_metadata(&cand) {
            Ok(m) if m.file_type().is_symlink() && (!is_last || follow_last) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::other(format!(
                        "too many levels of symbolic links at {}",
                        rel.display()
                    )));
                }
                let target = fs::read_link(&cand)?;
                if target.is_absolute() {
                    done.clear();
                }
                push_front_components(&mut pending, &target);
            }
            _ => done.push(c),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&done);
    Ok(out)
}

fn push_front_components(q: &mut VecDeque<OsString>, p: &Path) {
    let parts: Vec<OsString> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            _ => None,
        })
        .collect();
    for part in parts.into_iter().rev() {
        q.push_front(part);
    }
}

/// Removes whatever is at `p` (file, symlink or directory tree), if anything.
fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            make_tree_writable(p);
            fs::remove_dir_all(p)
        }
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Gives the owner rwx on every directory under `p` (so it can be removed
/// even when the image made some read-only). Never follows symlinks.
pub fn make_tree_writable(p: &Path) {
    let Ok(m) = fs::symlink_metadata(p) else {
        return;
    };
    if !m.is_dir() {
        return;
    }
    let mode = m.permissions().mode();
    if mode & 0o700 != 0o700 {
        let _ = fs::set_permissions(p, fs::Permissions::from_mode(mode | 0o700));
    }
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                make_tree_writable(&e.path());
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn apply_entry<R: Read>(
    layer: &Blob,
    root: &Path,
    rel: &Path,
    entry: &mut tar::Entry<'_, R>,
    preserve_owner: bool,
    dir_modes: &mut Vec<(PathBuf, u32)>,
    seen: &mut HashSet<PathBuf>,
) -> Result<(), RunError> {
    let Some(name) = rel.file_name().map(|n| n.to_os_string()) else {
        return Ok(()); // the root itself ("./"): keep our own root
    };
    let parent_rel = rel.parent().unwrap_or(Path::new(""));
    let parent =
        resolve_in_root(root, parent_rel, true).map_err(|e| RunError::io(&root.join(rel), e))?;
    let name_str = name.to_string_lossy();

    // Whiteouts.
    if name_str == OPAQUE_WHITEOUT {
        if let Ok(rd) = fs::read_dir(&parent) {
            for e in rd.flatten() {
                let child_rel = parent_rel.join(e.file_name());
                if !seen.contains(&child_rel) {
                    remove_any(&e.path()).map_err(|err| RunError::io(&e.path(), err))?;
                }
            }
        }
        return Ok(());
    }
    if let Some(hidden) = name_str.strip_prefix(WHITEOUT_PREFIX) {
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err(layer_err(
                layer,
                format!("invalid whiteout {}", rel.display()),
            ));
        }
        let victim = parent.join(hidden);
        remove_any(&victim).map_err(|e| RunError::io(&victim, e))?;
        return Ok(());
    }

    fs::create_dir_all(&parent).map_err(|e| RunError::io(&parent, e))?;
    let target = parent.join(&name);
    let header = entry.header();
    let mode = header.mode().unwrap_or(0o644) & 0o7777;
    let uid = header.uid().unwrap_or(0) as u32;
    let gid = header.gid().unwrap_or(0) as u32;
    let kind = header.entry_type();
    seen.insert(rel.to_path_buf());

    let io_err = |e: io::Error| RunError::io(&target, e);
    match kind {
        tar::EntryType::Directory => {
            match fs::symlink_metadata(&target) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    remove_any(&target).map_err(io_err)?;
                    fs::create_dir(&target).map_err(io_err)?;
                }
                Err(_) => fs::create_dir(&target).map_err(io_err)?,
            }
            // Owner rwx until the end, so later entries can go inside.
            fs::set_permissions(&target, fs::Permissions::from_mode(0o700 | mode))
                .map_err(io_err)?;
            dir_modes.push((target.clone(), mode));
        }
        tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
            remove_any(&target).map_err(io_err)?;
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&target)
                .map_err(io_err)?;
            io::copy(entry, &mut f)
                .map_err(|e| layer_err(layer, format!("reading {}: {e}", rel.display())))?;
            drop(f);
            fs::set_permissions(&target, fs::Permissions::from_mode(mode)).map_err(io_err)?;
        }
        tar::EntryType::Symlink => {
            let link = entry
                .link_name()
                .map_err(|e| layer_err(layer, format!("bad link of {}: {e}", rel.display())))?
                .ok_or_else(|| {
                    layer_err(layer, format!("symlink {} has no target", rel.display()))
                })?
                .into_owned();
            remove_any(&target).map_err(io_err)?;
            std::os::unix::fs::symlink(&link, &target).map_err(io_err)?;
        }
        tar::EntryType::Link => {
            let link = entry
                .link_name()
                .map_err(|e| layer_err(layer, format!("bad link of {}: {e}", rel.display())))?
                .ok_or_else(|| {
                    layer_err(layer, format!("hard link {} has no target", rel.display()))
                })?
                .into_owned();
            let link_rel = confine(&link).ok_or_else(|| {
                layer_err(
                    layer,
                    format!(
                        "hard link {} points outside the image root ({})",
                        rel.display(),
                        link.display()
                    ),
                )
            })?;
            let src = resolve_in_root(root, &link_rel, false).map_err(io_err)?;
            let m = fs::symlink_metadata(&src).map_err(|_| {
                layer_err(
                    layer,
                    format!(
                        "hard link {} names {}, which is not in the image",
                        rel.display(),
                        link.display()
                    ),
                )
            })?;
            if m.is_dir() {
                return Err(layer_err(
                    layer,
                    format!("hard link {} names a directory", rel.display()),
                ));
            }
            if src != target {
                remove_any(&target).map_err(io_err)?;
                fs::hard_link(&src, &target).map_err(io_err)?;
            }
            return Ok(()); // shares the inode: no owner/mode of its own
        }
        // Devices and FIFOs: not needed to run a static program, and
        // unprivileged users cannot create devices.
        _ => return Ok(()),
    }
    if preserve_owner {
        std::os::unix::fs::lchown(&target, Some(uid), Some(gid)).map_err(io_err)?;
    }
    Ok(())
}
