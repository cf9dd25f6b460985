//! Package URLs (github.com/package-url/purl-spec): `pkg:TYPE/NAME@VERSION`,
//! each part percent-encoded but for the unreserved characters; Go module
//! paths keep their `/` as namespace separators.

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `pkg:TYPE/NAME@VERSION` (cargo, nuget).
pub fn simple(kind: &str, name: &str, version: &str) -> String {
    format!("pkg:{kind}/{}@{}", encode(name), encode(version))
}

/// `pkg:golang/MODULE/PATH@VERSION`.
pub fn golang(path: &str, version: Option<&str>) -> String {
    let p: Vec<String> = path.split('/').map(encode).collect();
    match version {
        Some(v) => format!("pkg:golang/{}@{}", p.join("/"), encode(v)),
        None => format!("pkg:golang/{}", p.join("/")),
    }
}

/// `pkg:oci/NAME@sha256%3A...?arch=amd64&repository_url=...`: the image.
pub fn oci(name: &str, digest: &str, arch: &str) -> String {
    // The purl's name is the last path element; the rest is the repository.
    let repo = name
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .map_or(name, |(r, _)| r);
    let last = repo.rsplit('/').next().unwrap_or(repo);
    let mut q = format!("arch={}", encode(arch));
    if repo.contains('/') {
        q.push_str(&format!("&repository_url={}", encode(repo)));
    }
    format!("pkg:oci/{}@{}?{q}", encode(last), encode(digest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls() {
        assert_eq!(simple("cargo", "itoa", "1.0.11"), "pkg:cargo/itoa@1.0.11");
        assert_eq!(
            golang("github.com/a/b", Some("v1.2.3+incompatible")),
            "pkg:golang/github.com/a/b@v1.2.3%2Bincompatible"
        );
        assert_eq!(
            oci("ghcr.io/acme/web:1.0", "sha256:ab", "amd64"),
            "pkg:oci/web@sha256%3Aab?arch=amd64&repository_url=ghcr.io%2Facme%2Fweb"
        );
        assert_eq!(
            oci("hello:latest", "sha256:ab", "arm64"),
            "pkg:oci/hello@sha256%3Aab?arch=arm64"
        );
    }
}
