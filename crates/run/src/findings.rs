//! What a traced run's failed lookups mean: one finding per kind of missing
//! file (a program probing five CA bundle paths in turn is one finding),
//! with the same shape and JSON field names as verify's `Finding` (this
//! crate does not depend on verify): `id`, `severity`, `message`,
//! `consequence`, `fix`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::trace::Lookup;

pub use distroless_pack_image::Severity;

/// One thing the program looked for and did not find.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier (see docs/commands/run.md), e.g. `missing-ca-certs`.
    pub id: &'static str,
    pub severity: Severity,
    /// What the program looked for.
    pub message: String,
    /// What that does to the program.
    pub consequence: Option<String>,
    /// How to fix it.
    pub fix: Option<String>,
    /// Every failed lookup behind it (path, system call, error).
    pub lookups: Vec<Lookup>,
}

/// The known kinds, tried in order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    CaCerts,
    Tzdata,
    Localtime,
    Passwd,
    Tmp,
    Icu,
    OpenSsl,
    Library,
    Engine,
    Ignored,
    Other,
}

fn base(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn is_lib(name: &str) -> bool {
    name.ends_with(".so") || name.contains(".so.")
}

fn classify(l: &Lookup) -> Class {
    let p = l.path.as_str();
    let name = base(p);
    let under = |dir: &str| p == dir || p.starts_with(&format!("{dir}/"));
    // What a container runtime gives every program, or what is expected to
    // be absent in any image: not worth a line.
    if under("/proc") || under("/sys") || under("/dev") {
        return Class::Ignored;
    }
    // The dynamic loader's own steps while it searches for a library (its
    // cache, the search directories themselves): the library it was after
    // is the finding.
    if name.starts_with("ld.so.") || name.starts_with("ld-musl-") {
        return Class::Ignored;
    }
    let lib_dir = ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib"]
        .iter()
        .any(|d| under(d));
    if lib_dir && !is_lib(name) && !name.contains('.') {
        return Class::Ignored;
    }
    if under("/etc/ssl")
        || under("/etc/pki")
        || under("/etc/openssl")
        || under("/usr/lib/ssl")
        || under("/usr/local/ssl")
        || under("/usr/share/ca-certificates")
        || under("/usr/local/share/certs")
        || under("/var/ssl")
        || under("/system/etc/security/cacerts")
        || under("/etc/ca-certificates")
    {
        return Class::CaCerts;
    }
    if p.contains("/zoneinfo") || under("/usr/share/lib/zoneinfo") || p.ends_with("/zoneinfo.zip") {
        return Class::Tzdata;
    }
    if p == "/etc/localtime" || p == "/etc/timezone" {
        return Class::Localtime;
    }
    if matches!(
        p,
        "/etc/passwd" | "/etc/group" | "/etc/nsswitch.conf" | "/etc/shadow" | "/etc/gshadow"
    ) {
        return Class::Passwd;
    }
    if under("/tmp") || under("/var/tmp") {
        return Class::Tmp;
    }
    if (name.starts_with("icudt") && name.ends_with(".dat"))
        || (name.starts_with("libicu") && is_lib(name))
    {
        return Class::Icu;
    }
    if (name.starts_with("libssl") || name.starts_with("libcrypto")) && is_lib(name) {
        return Class::OpenSsl;
    }
    if is_lib(name) {
        return Class::Library;
    }
    if matches!(p, "/etc/resolv.conf" | "/etc/hosts" | "/etc/hostname") {
        return Class::Engine;
    }
    Class::Other
}

/// Up to five paths, then "and N more".
fn list(lookups: &[&Lookup]) -> String {
    let mut paths: Vec<&str> = Vec::new();
    for l in lookups {
        if !paths.contains(&l.path.as_str()) {
            paths.push(&l.path);
        }
    }
    let shown: Vec<&str> = paths.iter().take(5).copied().collect();
    let mut s = shown.join(", ");
    if paths.len() > shown.len() {
        let _ = write!(s, " and {} more", paths.len() - shown.len());
    }
    s
}

/// Turns failed lookups into findings: errors first, then warnings, then
/// info; within a level in the order the program met them. `found` are
/// paths the program did find: a kind of file where one of the places it
/// probed had it (a CA bundle, a time zone, ICU, OpenSSL, the user
/// database) is no finding.
pub fn findings(lookups: &[Lookup], found: &[String]) -> Vec<Finding> {
    let satisfied: Vec<Class> = found
        .iter()
        .map(|p| {
            classify(&Lookup {
                path: p.clone(),
                syscall: "",
                error: "",
                create: false,
            })
        })
        .filter(|c| {
            matches!(
                c,
                Class::CaCerts | Class::Tzdata | Class::Icu | Class::OpenSsl | Class::Passwd
            )
        })
        .collect();
    let mut groups: Vec<(Class, Vec<&Lookup>)> = Vec::new();
    for l in lookups {
        let class = classify(l);
        if class == Class::Ignored || satisfied.contains(&class) {
            continue;
        }
        // Anything else is one finding per path; the known kinds group.
        let slot = groups
            .iter_mut()
            .find(|(c, ls)| *c == class && (class != Class::Other || ls[0].path == l.path));
        match slot {
            Some((_, ls)) => ls.push(l),
            None => groups.push((class, vec![l])),
        }
    }
    // zoneinfo lookups already say what /etc/localtime would.
    if groups.iter().any(|(c, _)| *c == Class::Tzdata) {
        if let Some(i) = groups.iter().position(|(c, _)| *c == Class::Localtime) {
            let (_, ls) = groups.remove(i);
            if let Some((_, tz)) = groups.iter_mut().find(|(c, _)| *c == Class::Tzdata) {
                tz.extend(ls);
            }
        }
    }
    let mut out: Vec<Finding> = groups
        .into_iter()
        .map(|(class, ls)| finding(class, &ls))
        .collect();
    out.sort_by_key(|f| f.severity);
    out
}

fn finding(class: Class, ls: &[&Lookup]) -> Finding {
    let paths = list(ls);
    let (id, severity, message, consequence, fix): (_, _, String, Option<&str>, Option<String>) =
        match class {
            Class::CaCerts => (
                "missing-ca-certs",
                Severity::Warning,
                format!("looked for CA certificates and found none: {paths}"),
                Some("TLS connections fail: no server certificate can be verified (x509: certificate signed by unknown authority)"),
                Some("pack with --ca-certs (adds /etc/ssl/certs/ca-certificates.crt)".into()),
            ),
            Class::Tzdata => (
                "missing-tzdata",
                Severity::Warning,
                format!("looked for time-zone data and found none: {paths}"),
                Some("loading a time zone fails (unknown time zone), local time is UTC"),
                Some("pack with --tzdata (adds /usr/share/zoneinfo)".into()),
            ),
            Class::Localtime => (
                "missing-localtime",
                Severity::Info,
                format!("looked for the local time zone: {paths}"),
                Some("local time is UTC"),
                Some("set TZ, or pack with --tzdata and a /etc/localtime of your own, if UTC is not what you want".into()),
            ),
            Class::Passwd => (
                "missing-passwd",
                Severity::Warning,
                format!("looked up users or groups and found no database: {paths}"),
                Some("user and group lookups fail (getpwnam, getpwuid, os/user, the home directory)"),
                Some("pack with --passwd (adds /etc/passwd and /etc/group with root, nobody and nonroot)".into()),
            ),
            Class::Tmp => (
                "missing-tmp",
                Severity::Warning,
                if ls.iter().any(|l| l.create) {
                    format!("tried to create files in a temporary directory the image does not have: {paths}")
                } else {
                    format!("looked for a temporary directory the image does not have: {paths}")
                },
                Some("temporary files cannot be created"),
                Some("pack with --passwd (it also creates /tmp, mode 1777), or mount a writable volume there".into()),
            ),
            Class::Icu => (
                "missing-icu",
                Severity::Warning,
                format!("looked for ICU (globalization data) and found none: {paths}"),
                Some(".NET globalization fails: the program aborts with \"Couldn't find a valid ICU package\""),
                Some("build with --globalization static-icu (ICU linked, data embedded) or --globalization icu-file with pack --icu-data FILE.dat; or InvariantGlobalization if the program needs no cultures".into()),
            ),
            Class::OpenSsl => (
                "missing-openssl",
                Severity::Warning,
                format!("tried to load OpenSSL and found none: {paths}"),
                Some("TLS and cryptography fail"),
                Some("build with --openssl static (OpenSSL linked into the binary)".into()),
            ),
            Class::Library => (
                "missing-library",
                Severity::Warning,
                format!("tried to load a shared library and found none: {paths}"),
                Some("the feature that needs it fails (a scratch image has no shared libraries)"),
                Some("link it statically, or add the library (and its dependencies) to the image".into()),
            ),
            Class::Engine => (
                "engine-provided",
                Severity::Info,
                format!("looked for {paths}, which docker and podman provide at run time"),
                Some("under docker, podman or Kubernetes the engine mounts /etc/resolv.conf, /etc/hosts and /etc/hostname, so this works there"),
                None,
            ),
            Class::Other | Class::Ignored => {
                let l = ls[0];
                let what = if l.error == "EACCES" {
                    "is not accessible to the program's user"
                } else if l.create {
                    "could not be created (its directory is missing)"
                } else {
                    "is not in the image"
                };
                (
                    if l.error == "EACCES" {
                        "permission-denied"
                    } else {
                        "missing-file"
                    },
                    Severity::Info,
                    format!("{} {what} ({} {})", l.path, l.syscall, l.error),
                    None,
                    None,
                )
            }
        };
    Finding {
        id,
        severity,
        message,
        consequence: consequence.map(str::to_string),
        fix,
        lookups: ls.iter().map(|l| (*l).clone()).collect(),
    }
}

/// The human report of a traced run: one block per finding, indented like
/// verify's. Empty when there is nothing.
pub fn render_human(findings: &[Finding]) -> String {
    let mut out = String::new();
    for f in findings {
        let _ = writeln!(out, "  {:<7} [{}] {}", f.severity.as_str(), f.id, f.message);
        if let Some(c) = &f.consequence {
            let _ = writeln!(out, "          in this image: {c}");
        }
        if let Some(fix) = &f.fix {
            let _ = writeln!(out, "          fix: {fix}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(path: &str, create: bool) -> Lookup {
        Lookup {
            path: path.into(),
            syscall: "openat",
            error: "ENOENT",
            create,
        }
    }

    #[test]
    fn a_program_probing_several_ca_paths_is_one_finding() {
        let f = findings(
            &[
                l("/etc/ssl/certs/ca-certificates.crt", false),
                l("/etc/pki/tls/certs/ca-bundle.crt", false),
                l("/etc/ssl/cert.pem", false),
                l("/proc/self/maps", false),
                l("/usr/share/zoneinfo/Europe/Berlin", false),
                l("/etc/localtime", false),
                l("/etc/hosts", false),
                l("/data/config.json", false),
                l("/tmp/x", true),
            ],
            &[],
        );
        let ids: Vec<_> = f.iter().map(|f| f.id).collect();
        assert_eq!(
            ids,
            [
                "missing-ca-certs",
                "missing-tzdata",
                "missing-tmp",
                "engine-provided",
                "missing-file"
            ]
        );
        assert_eq!(f[0].lookups.len(), 3);
        assert!(f[0].fix.as_deref().unwrap().contains("--ca-certs"));
        assert!(f[1].message.contains("/etc/localtime"), "{}", f[1].message);
        assert!(f[2].message.contains("create"));
        let json = serde_json::to_value(&f[0]).unwrap();
        for k in ["id", "severity", "message", "consequence", "fix", "lookups"] {
            assert!(json.get(k).is_some(), "{k}: {json}");
        }
        assert_eq!(json["severity"], "warning");
    }

    #[test]
    fn icu_openssl_and_libraries() {
        let f = findings(
            &[
                l("/lib/x86_64-linux-gnu/libicuuc.so.90", false),
                l("/usr/lib/libicuuc.so.74", false),
                l("/usr/lib/libssl.so.3", false),
                l("/usr/lib/libgssapi_krb5.so.2", false),
                l("/etc/ld.so.cache", false),
                l("/usr/lib/x86_64-linux-gnu", false),
                l("/usr/lib/glibc-hwcaps/x86-64-v3", false),
            ],
            &[],
        );
        let ids: Vec<_> = f.iter().map(|f| f.id).collect();
        assert_eq!(ids, ["missing-icu", "missing-openssl", "missing-library"]);
        assert!(f[0].fix.as_deref().unwrap().contains("--globalization"));
        assert!(f[1].fix.as_deref().unwrap().contains("--openssl static"));
    }

    #[test]
    fn a_ca_bundle_found_in_one_place_is_no_finding() {
        let f = findings(
            &[
                l("/etc/pki/tls/certs", false),
                l("/usr/share/zoneinfo/Mars/Base", false),
            ],
            &["/etc/ssl/certs/ca-certificates.crt".to_string()],
        );
        let ids: Vec<_> = f.iter().map(|f| f.id).collect();
        assert_eq!(ids, ["missing-tzdata"]);
    }
}
