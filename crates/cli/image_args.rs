//! Image options shared by `pack` and `build` (`--tag`, `--path`, `--env`,
//! `--user`, the opt-in extras, and the entrypoint arguments after `--`),
//! and [`ImageArgs::to_spec`], which turns them into an assemble spec.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use distroless_pack_assemble::{self as assemble, Extras, ImageSpec};
use distroless_pack_image::Platform;

use crate::exit::{self, WithCode};

/// The host CA bundle `--ca-certs` copies when given no FILE.
pub const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The host zoneinfo tree `--tzdata` copies when given no DIR.
pub const HOST_ZONEINFO: &str = "/usr/share/zoneinfo";

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ImageArgs {
    /// Image name and tag, NAME[:TAG] (e.g. `ghcr.io/acme/hello:1.2`; TAG
    /// defaults to `latest`). Repeatable: the first names the image in every
    /// output; further tags are added to `oci:DIR` outputs that give no TAG.
    /// Default: the binary's file name, `:latest`.
    #[arg(
        long = "tag",
        short = 't',
        value_name = "NAME[:TAG]",
        help_heading = "Image"
    )]
    pub tags: Vec<String>,

    /// Absolute path of the binary in the image (the entrypoint).
    /// Default: /app/NAME, NAME being the binary's file name.
    #[arg(long, value_name = "PATH", help_heading = "Image")]
    pub path: Option<String>,

    /// Environment variable KEY=VALUE in the image config. Repeatable.
    #[arg(
        long = "env",
        short = 'e',
        value_name = "KEY=VALUE",
        help_heading = "Image"
    )]
    pub env: Vec<String>,

    /// Working directory (absolute). Default: the binary's directory (/app).
    #[arg(long, value_name = "DIR", help_heading = "Image")]
    pub workdir: Option<String>,

    /// User the entrypoint runs as: UID[:GID] or a name (a name needs --passwd).
    #[arg(long, value_name = "USER", default_value = assemble::NONROOT_USER, help_heading = "Image")]
    pub user: String,

    /// Port the program listens on, PORT[/tcp|udp|sctp] (ExposedPorts). Repeatable.
    #[arg(
        long = "port",
        short = 'p',
        value_name = "PORT[/PROTO]",
        help_heading = "Image"
    )]
    pub ports: Vec<String>,

    /// Config label KEY=VALUE (added to, and overriding, the standard
    /// org.opencontainers.image.title/version labels). Repeatable.
    #[arg(
        long = "label",
        short = 'l',
        value_name = "KEY=VALUE",
        help_heading = "Image"
    )]
    pub labels: Vec<String>,

    /// Manifest annotation KEY=VALUE. Repeatable.
    #[arg(long = "annotation", value_name = "KEY=VALUE", help_heading = "Image")]
    pub annotations: Vec<String>,

    /// Add an ICU data file (icudtNNl.dat) at /usr/share/icu/ and set ICU_DATA=/usr/share/icu.
    #[arg(
        long,
        value_name = "FILE.dat",
        help_heading = "Extras (off by default)"
    )]
    pub icu_data: Option<PathBuf>,

    /// Add a CA bundle at /etc/ssl/certs/ca-certificates.crt and set
    /// SSL_CERT_FILE to it. `--ca-certs` alone copies the host's bundle
    /// (/etc/ssl/certs/ca-certificates.crt); `--ca-certs=FILE` another one.
    #[arg(
        long,
        value_name = "FILE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = HOST_CA_BUNDLE,
        help_heading = "Extras (off by default)"
    )]
    pub ca_certs: Option<PathBuf>,

    /// Add time-zone data at /usr/share/zoneinfo (where Go, musl, glibc and
    /// .NET look). `--tzdata` alone copies the host's /usr/share/zoneinfo;
    /// `--tzdata=DIR` another tree. Symbolic links are kept.
    #[arg(
        long,
        value_name = "DIR",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = HOST_ZONEINFO,
        help_heading = "Extras (off by default)"
    )]
    pub tzdata: Option<PathBuf>,

    /// Add /etc/passwd and /etc/group (root 0, nobody 65534, nonroot 65532),
    /// /home/nonroot (owned by 65532), /root and /tmp (1777), as
    /// gcr.io/distroless/static has.
    #[arg(long, help_heading = "Extras (off by default)")]
    pub passwd: bool,

    /// Do not add what the kind of program needs to run (for a .NET
    /// NativeAOT binary: the passwd/group entry of the image user and a
    /// writable /tmp, see docs/dotnet.md).
    #[arg(long, help_heading = "Extras (off by default)")]
    pub no_runtime_defaults: bool,

    /// Arguments given to the entrypoint (the config's Cmd), after `--`.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// An image name split into repository and tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageName {
    /// `registry/path/name` (lowercase).
    pub repository: String,
    pub tag: String,
}

impl ImageName {
    /// `repository:tag`.
    pub fn full(&self) -> String {
        format!("{}:{}", self.repository, self.tag)
    }
}

impl std::fmt::Display for ImageName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

/// Parses `NAME[:TAG]` (a registry `host:port/` prefix is not a tag).
pub fn parse_image_name(s: &str) -> anyhow::Result<ImageName> {
    let bad = |why: &str| anyhow::anyhow!("invalid --tag {s:?}: {why}");
    if s.contains('@') {
        return Err(bad("digests cannot be given here; use NAME[:TAG]"));
    }
    let (repo, tag) = match s.rfind(':') {
        Some(i) if !s[i + 1..].contains('/') => (&s[..i], &s[i + 1..]),
        _ => (s, "latest"),
    };
    if repo.is_empty() {
        return Err(bad("the name is empty"));
    }
    // The path part must be lowercase; the registry host may hold a port.
    let path_part = match repo.split_once('/') {
        Some((host, rest)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            rest
        }
        _ => repo,
    };
    let component_ok = |c: &str| {
        !c.is_empty()
            && c.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            })
            && c.as_bytes()[0].is_ascii_alphanumeric()
    };
    if !path_part.split('/').all(component_ok) {
        return Err(bad(
            "the name must be lowercase letters, digits, `.`, `_`, `-` and `/`",
        ));
    }
    if !distroless_pack_ship::sink::valid_tag(tag) {
        return Err(bad(
            "a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
        ));
    }
    Ok(ImageName {
        repository: repo.to_string(),
        tag: tag.to_string(),
    })
}

/// The default image name for a binary: its file name, lowercased, with
/// characters a repository name cannot hold replaced by `-`.
pub fn default_name(binary: &Path) -> ImageName {
    let stem = binary.file_name().and_then(|n| n.to_str()).unwrap_or("app");
    let mut repo: String = stem
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    repo = repo
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string();
    if repo.is_empty() {
        repo = "app".into();
    }
    ImageName {
        repository: repo,
        tag: "latest".into(),
    }
}

fn parse_kv(what: &str, s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(anyhow::anyhow!("invalid {what} {s:?}: expected KEY=VALUE")),
    }
}

impl ImageArgs {
    /// The image names from `--tag` (or the default from the binary).
    pub fn names(&self, binary: &Path) -> anyhow::Result<Vec<ImageName>> {
        if self.tags.is_empty() {
            return Ok(vec![default_name(binary)]);
        }
        self.tags
            .iter()
            .map(|t| parse_image_name(t))
            .collect::<anyhow::Result<Vec<_>>>()
            .code(exit::USAGE)
    }

    /// The assemble spec for `binary` on `platform`. `SOURCE_DATE_EPOCH`
    /// sets the created time and tar mtimes. Errors are usage errors.
    pub fn to_spec(
        &self,
        binary: &Path,
        platform: &Platform,
        temp_dir: &Path,
    ) -> anyhow::Result<ImageSpec> {
        let names = self.names(binary)?;
        let first = &names[0];
        let mut spec = ImageSpec::new(binary);
        if let Some(p) = &self.path {
            spec.path = p.clone();
        }
        spec.args = self.args.clone();
        spec.env = self.env.clone();
        spec.workdir = self.workdir.clone();
        spec.user = (!self.user.is_empty()).then(|| self.user.clone());
        spec.ports = self.ports.clone();
        let mut labels = assemble::standard_labels(&first.repository, Some(&first.tag));
        for l in &self.labels {
            let (k, v) = parse_kv("--label", l).code(exit::USAGE)?;
            labels.insert(k, v);
        }
        spec.labels = labels;
        let mut annotations = BTreeMap::new();
        for a in &self.annotations {
            let (k, v) = parse_kv("--annotation", a).code(exit::USAGE)?;
            annotations.insert(k, v);
        }
        spec.annotations = annotations;
        spec.extras = Extras {
            icu_data: self.icu_data.clone(),
            ca_certs: self.ca_certs.clone(),
            tzdata: self.tzdata.clone(),
            passwd: self.passwd,
            tmp: self.passwd,
        };
        if let Some(ca) = &spec.extras.ca_certs {
            if !ca.is_file() {
                let hint = if ca == Path::new(HOST_CA_BUNDLE) {
                    " (install the host bundle with `apt-get install -y ca-certificates`, or give --ca-certs=FILE)"
                } else {
                    ""
                };
                return Err(anyhow::anyhow!(
                    "{}: CA bundle not found or not a file{hint}",
                    ca.display()
                ))
                .code(exit::USAGE);
            }
        }
        spec.platform = platform.clone();
        spec.created = assemble::source_date_epoch().code(exit::USAGE)?;
        spec.temp_dir = temp_dir.to_path_buf();
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        assert_eq!(parse_image_name("hello").unwrap().full(), "hello:latest");
        assert_eq!(parse_image_name("hello:1.0").unwrap().full(), "hello:1.0");
        let n = parse_image_name("localhost:5000/a/b").unwrap();
        assert_eq!(
            (n.repository.as_str(), n.tag.as_str()),
            ("localhost:5000/a/b", "latest")
        );
        assert_eq!(parse_image_name("localhost:5000/a/b:v2").unwrap().tag, "v2");
        assert!(parse_image_name("Hello").is_err());
        assert!(parse_image_name("a@sha256:00").is_err());
        assert!(parse_image_name("a:").is_err());
        assert_eq!(default_name(Path::new("/x/My App")).full(), "my-app:latest");
    }
}
