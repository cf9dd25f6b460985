//! What a .NET NativeAOT binary is and does, read from the file (issue 16).
//!
//! The facts come from what the real SDK output holds (the samples in
//! tests/fixtures/dotnet, research notes in docs/commands/verify.md):
//!
//! - `.comment` has `.NET: ilc <version>+<commit>`: the exact runtime.
//! - ICU loaded at run time leaves the sonames `libicuuc.so`/`libicui18n.so`
//!   for dlopen; invariant mode leaves neither (the ICU code is trimmed);
//!   static ICU links the data package, named `icudt<NN>l`.
//! - OpenSSL loaded at run time leaves `libssl.so.3`, `libssl.so.1.1`, ...;
//!   linked statically it leaves `OPENSSLDIR: "..."`.
//! - What the program's code does: NativeAOT keeps the names of compiled
//!   methods for stack traces (unless `StackTraceSupport=false`), each
//!   stored as a length byte and the name. A console app that never
//!   resolves a host has no `GetHostEntryForName`; one that reads
//!   `Environment.UserName` has `GetUserNameFromPasswd`; HTTPS with
//!   certificate chain building has `OpenSslX509ChainProcessor` and the user
//!   certificate store's `GetUserFeatureDirectory` (it needs the home
//!   directory); `Path.GetTempPath` keeps its name. `TimeZoneInfo` keeps
//!   its directory as a string literal (UTF-16), whatever the metadata.

use serde::Serialize;

use crate::fingerprint::{needle, Strings};
use crate::parse::Evidence;

/// What the binary tells about the .NET runtime in it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DotnetInfo {
    /// The .NET runtime version, e.g. `10.0.12` (a preview keeps its
    /// label: `10.0.0-preview.7.25380.108`); null when `.comment` does not
    /// say.
    pub runtime_version: Option<String>,
    /// The whole ILCompiler version from `.comment`, e.g.
    /// `10.0.12-servicing.26422.108+95017c711e6afc1085133d440e42b4bd78155701`.
    pub ilc_version: Option<String>,
    /// `invariant` (no ICU), `icu-loaded` (ICU dlopened at run time),
    /// `icu-linked` (static ICU with its data).
    pub globalization: &'static str,
    /// `none` (no OpenSSL), `loaded` (dlopened at run time), `linked`
    /// (static OpenSSL).
    pub openssl: &'static str,
    /// Whether method names (stack-trace metadata) are present, so that
    /// `uses` can be told.
    pub method_names: bool,
    /// What the code does that needs files in the image, from method names
    /// and literals: `host-lookup`, `user-lookup`, `home-directory`,
    /// `tls-chain`, `time-zones`, `temp-files`.
    pub uses: Vec<&'static str>,
}

impl DotnetInfo {
    pub fn uses(&self, what: &str) -> bool {
        self.uses.contains(&what)
    }
}

/// The `.NET: ilc ` line of `.comment`.
const ILC: &[u8] = b".NET: ilc ";

/// Longest ILCompiler version kept (the real ones are about 70 characters).
const MAX_VERSION: usize = 128;

/// The ILCompiler version in `.comment`, if it looks like one.
fn ilc_version(ev: &Evidence<'_>) -> Option<String> {
    let c = ev.section(".comment")?;
    let at = memchr::memmem::find(c, ILC)? + ILC.len();
    let rest = &c[at..];
    let end = rest
        .iter()
        .position(|b| *b == 0 || !b.is_ascii_graphic())
        .unwrap_or(rest.len());
    let v = &rest[..end.min(MAX_VERSION)];
    let s = std::str::from_utf8(v).ok()?;
    // major.minor.patch first, or it is not a version.
    let mut parts = s.split(['.', '-', '+']);
    let numeric =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (numeric(parts.next()) && numeric(parts.next()) && numeric(parts.next())).then(|| s.to_string())
}

/// The runtime version of an ILCompiler version: without the commit, and
/// without a servicing/rtm build label (those are released versions).
fn runtime_version(ilc: &str) -> String {
    let v = ilc.split('+').next().unwrap_or(ilc);
    match v.split_once('-') {
        Some((num, label)) if label.starts_with("servicing.") || label.starts_with("rtm.") => {
            num.to_string()
        }
        _ => v.to_string(),
    }
}

pub(crate) fn info(ev: &Evidence<'_>, strings: &Strings) -> DotnetInfo {
    let has = |n| strings.contains(n);
    let ilc = ilc_version(ev);
    let globalization = if has(needle::LIBICUUC) {
        "icu-loaded"
    } else if has(needle::ICU_PACKAGE) {
        "icu-linked"
    } else {
        "invariant"
    };
    let openssl = if has(needle::OPENSSL_DIR) {
        "linked"
    } else if has(needle::LIBSSL) || has(needle::CLR_OPENSSL) {
        "loaded"
    } else {
        "none"
    };
    let mut uses = Vec::new();
    for (n, what) in [
        (needle::NAME_HOST_LOOKUP, "host-lookup"),
        (needle::NAME_USER_NAME, "user-lookup"),
        (needle::NAME_USER_STORE, "home-directory"),
        (needle::NAME_CHAIN, "tls-chain"),
        (needle::DOTNET_ZONEINFO, "time-zones"),
        (needle::NAME_TEMP_PATH, "temp-files"),
    ] {
        if has(n) {
            uses.push(what);
        }
    }
    DotnetInfo {
        runtime_version: ilc.as_deref().map(runtime_version),
        ilc_version: ilc,
        globalization,
        openssl,
        method_names: has(needle::NAME_CCTOR),
        uses,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_versions() {
        assert_eq!(
            runtime_version("10.0.12-servicing.26422.108+95017c711e6afc1085133d440e42b4bd78155701"),
            "10.0.12"
        );
        assert_eq!(runtime_version("8.0.0-rtm.23531.3+abc"), "8.0.0");
        assert_eq!(
            runtime_version("10.0.0-preview.7.25380.108+def"),
            "10.0.0-preview.7.25380.108"
        );
        assert_eq!(runtime_version("9.0.4"), "9.0.4");
    }
}
