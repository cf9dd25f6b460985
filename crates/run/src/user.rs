//! The image's `User` (`uid[:gid]`, `name[:group]`) turned into numbers,
//! names looked up in the image's own /etc/passwd and /etc/group as docker
//! does, and the HOME docker would set.

use std::fs;
use std::path::Path;

use crate::unpack::resolve_in_root;
use crate::RunError;

/// A resolved user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// The home directory from /etc/passwd, or `/`.
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn read_db(root: &Path, file: &str) -> Vec<Vec<String>> {
    let Ok(p) = resolve_in_root(root, Path::new(file), true) else {
        return Vec::new();
    };
    let Ok(text) = fs::read_to_string(p) else {
        return Vec::new();
    };
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(':').map(str::to_string).collect())
        .collect()
}

fn passwd(root: &Path) -> Vec<PasswdEntry> {
    read_db(root, "etc/passwd")
        .into_iter()
        .filter(|f| f.len() >= 4)
        .filter_map(|f| {
            Some(PasswdEntry {
                name: f[0].clone(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f
                    .get(5)
                    .cloned()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| "/".into()),
            })
        })
        .collect()
}

/// Resolves `spec` (empty means root) against the image in `root`.
pub fn resolve(spec: &str, root: &Path) -> Result<User, RunError> {
    let spec = spec.trim();
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = passwd(root);
    let (uid, mut gid, home) = if u.is_empty() {
        let e = users.iter().find(|e| e.uid == 0);
        (
            0,
            e.map(|e| e.gid).unwrap_or(0),
            e.map(|e| e.home.clone()).unwrap_or("/".into()),
        )
    } else if let Ok(uid) = u.parse::<u32>() {
        let e = users.iter().find(|e| e.uid == uid);
        (
            uid,
            e.map(|e| e.gid).unwrap_or(0),
            e.map(|e| e.home.clone()).unwrap_or("/".into()),
        )
    } else {
        let e = users
            .iter()
            .find(|e| e.name == u)
            .ok_or_else(|| RunError::User {
                user: spec.to_string(),
                message: if users.is_empty() {
                    format!("the image has no /etc/passwd to look up {u:?}; use a numeric uid:gid")
                } else {
                    format!("no user {u:?} in the image's /etc/passwd")
                },
            })?;
        (e.uid, e.gid, e.home.clone())
    };
    if let Some(g) = g.filter(|g| !g.is_empty()) {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => read_db(root, "etc/group")
                .into_iter()
                .find(|f| f.len() >= 3 && f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| RunError::User {
                    user: spec.to_string(),
                    message: format!("no group {g:?} in the image's /etc/group"),
                })?,
        };
    }
    Ok(User { uid, gid, home })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_and_named_users() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        assert_eq!(
            resolve("65532:65532", r).unwrap(),
            User {
                uid: 65532,
                gid: 65532,
                home: "/".into()
            }
        );
        assert_eq!(resolve("", r).unwrap().uid, 0);
        assert!(resolve("nonroot", r)
            .unwrap_err()
            .to_string()
            .contains("numeric"));
        fs::create_dir(r.join("etc")).unwrap();
        fs::write(
            r.join("etc/passwd"),
            "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
        )
        .unwrap();
        fs::write(r.join("etc/group"), "root:x:0:\nstaff:x:50:\n").unwrap();
        assert_eq!(
            resolve("nonroot", r).unwrap(),
            User {
                uid: 65532,
                gid: 65532,
                home: "/home/nonroot".into()
            }
        );
        assert_eq!(resolve("nonroot:staff", r).unwrap().gid, 50);
        assert_eq!(resolve("65532", r).unwrap().home, "/home/nonroot");
        assert!(resolve("nobody", r).is_err());
        assert!(resolve("0:nogroup", r).is_err());
    }
}
