//! Small facts several stages need: finding a program on PATH and printing
//! a size.

use std::path::PathBuf;

/// Finds an executable on PATH (a name with a `/` is taken as a path).
pub fn which(tool: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &std::path::Path| {
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if tool.contains('/') {
        let p = PathBuf::from(tool);
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| executable(p))
}

/// A path inside an image, lexically cleaned and absolute: `a/./b//c/../d`
/// -> `/a/b/d`, and `..` of the root is the root, as the kernel resolves
/// it in a container (symbolic links are not followed).
pub fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// A byte count for people: `512 B`, `3.4 KiB`, `12.0 MiB`, `1.2 GiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_lexically_and_made_absolute() {
        assert_eq!(clean_path("/a/./b//c/../d"), "/a/b/d");
        assert_eq!(clean_path("/../x"), "/x");
        assert_eq!(clean_path("./app/app"), "/app/app");
        assert_eq!(clean_path("/app/../opt/real/app"), "/opt/real/app");
        assert_eq!(clean_path(""), "/");
    }

    #[test]
    fn sizes_read_like_ls_h() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 20), "5.0 MiB");
        assert_eq!(human_size(3 << 30), "3.0 GiB");
    }

    #[test]
    fn which_finds_sh_and_not_nonsense() {
        assert!(which("sh").is_some());
        assert!(which("no-such-tool-distroless-pack").is_none());
        assert!(which("/no/such/file").is_none());
    }
}
