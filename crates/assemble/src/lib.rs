//! distroless-pack-assemble: a static binary and a few opt-in files ->
//! a reproducible FROM-scratch OCI [`Image`].
//!
//! - [`layer::LayerWriter`] streams a sorted, normalised tar through a
//!   deterministic parallel gzip ([`gzip`]) or multithreaded zstd
//!   ([`zstd`], as [`Compression`] says) into a temp file, hashing both
//!   streams in the same pass.
//! - [`ImageSpec`] + [`assemble`] build the image: an optional layer of
//!   extras ([`Extras`]: CA bundle, tzdata, ICU data, passwd/group, /tmp;
//!   [`RuntimeDefaults`] adds those a kind of program needs) and
//!   one layer holding only the binary, the OCI config (exec-form
//!   entrypoint, env, user, ports, labels) and the manifest, serialised
//!   canonically by [`Image::new`].
//!
//! Nothing here reads the clock, the umask, or the input files' metadata
//! other than their size and type: the same inputs give the same digests.

pub mod cache;
pub mod compression;
pub mod gzip;
pub mod layer;
pub mod zstd;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use distroless_pack_image::spec::{
    Arch, ConfigBuilder, HistoryBuilder, ImageConfigurationBuilder, Os, RootFsBuilder,
};
use distroless_pack_image::{Image, ImageError, Platform};

pub use cache::{Cache, CacheUse};
pub use compression::{Compression, CompressionParseError, Summary};
pub use gzip::GzipOptions;
pub use layer::{Layer, LayerWriter, MODE_DIR, MODE_EXEC, MODE_FILE, MODE_TMP};

/// Where `--ca-certs` puts the bundle, and the host bundle it copies by default.
pub const CA_BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";
/// Where `--icu-data` puts the `.dat` file (`ICU_DATA` points here).
pub const ICU_DIR: &str = "/usr/share/icu";
/// Where `--tzdata` puts the zone files (the default of Go, musl, glibc and .NET).
pub const ZONEINFO_DIR: &str = "/usr/share/zoneinfo";
/// The default non-root user, as in gcr.io/distroless/static.
pub const NONROOT_USER: &str = "65532:65532";

/// Errors of this crate; each names the file or value at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AssembleError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error("{}: not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{}: changed while it was being read (expected {expected} bytes)", path.display())]
    Changed { path: PathBuf, expected: u64 },
    #[error("invalid path in image {path:?}: {reason}")]
    InvalidImagePath { path: String, reason: String },
    #[error("{path} is added to the image twice (or is both a file and a directory)")]
    Conflict { path: String },
    #[error("writing layer to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidOption {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error("{}: {reason}", path.display())]
    BadExtra { path: PathBuf, reason: String },
    #[error(transparent)]
    Image(#[from] ImageError),
}

impl AssembleError {
    /// Disk and permission problems writing the layer are output failures;
    /// the rest (missing extras, bad options) are bad input.
    pub fn kind(&self) -> distroless_pack_image::ErrorKind {
        use distroless_pack_image::ErrorKind;
        match self {
            AssembleError::Write { .. } => ErrorKind::Output,
            _ => ErrorKind::Usage,
        }
    }
}

/// Maps an I/O error reading `path` (a host file) to [`AssembleError::Read`].
pub(crate) fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> AssembleError + '_ {
    move |source| AssembleError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// Files and settings that a kind of program needs in an otherwise empty
/// image, decided from what verify found (see [`ImageSpec::runtime`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RuntimeDefaults {
    /// Nothing beyond what [`Extras`] asks for.
    #[default]
    None,
    /// A .NET NativeAOT program: a passwd/group entry for the image user
    /// (`Environment.UserName` throws, and HTTPS fails unless HOME is set,
    /// without one) and a writable /tmp (`Path.GetTempPath()`), as
    /// [`Extras::passwd`] and [`Extras::tmp`] add them.
    NativeAot,
}

impl RuntimeDefaults {
    /// The extras these defaults add.
    pub fn extras(self) -> Extras {
        match self {
            RuntimeDefaults::None => Extras::default(),
            RuntimeDefaults::NativeAot => Extras {
                passwd: true,
                tmp: true,
                ..Extras::default()
            },
        }
    }

    /// A short name for history lines and summaries (`nativeaot`).
    pub fn name(self) -> &'static str {
        match self {
            RuntimeDefaults::None => "none",
            RuntimeDefaults::NativeAot => "nativeaot",
        }
    }
}

/// Opt-in files besides the binary (all off by default).
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// An ICU data file (`icudtNNl.dat`), placed in [`ICU_DIR`] with
    /// `ICU_DATA` set.
    pub icu_data: Option<PathBuf>,
    /// A PEM CA bundle, placed at [`CA_BUNDLE_PATH`] with `SSL_CERT_FILE` set.
    pub ca_certs: Option<PathBuf>,
    /// A zoneinfo tree (usually the host's /usr/share/zoneinfo), placed at
    /// [`ZONEINFO_DIR`].
    pub tzdata: Option<PathBuf>,
    /// /etc/passwd, /etc/group (root, nobody, nonroot 65532), /home/nonroot
    /// (0700, owned by 65532) and /root (0700), as gcr.io/distroless/static
    /// has.
    pub passwd: bool,
    /// An empty /tmp, mode 1777 (a scratch image has none, and engines do
    /// not create it).
    pub tmp: bool,
}

impl Extras {
    pub fn is_empty(&self) -> bool {
        self.icu_data.is_none()
            && self.ca_certs.is_none()
            && self.tzdata.is_none()
            && !self.passwd
            && !self.tmp
    }

    /// These extras plus those `defaults` add (files given here win).
    pub fn with(&self, defaults: RuntimeDefaults) -> Extras {
        let d = defaults.extras();
        Extras {
            icu_data: self.icu_data.clone().or(d.icu_data),
            ca_certs: self.ca_certs.clone().or(d.ca_certs),
            tzdata: self.tzdata.clone().or(d.tzdata),
            passwd: self.passwd || d.passwd,
            tmp: self.tmp || d.tmp,
        }
    }
}

/// Everything an image is made from.
#[derive(Clone, Debug)]
pub struct ImageSpec {
    /// The static executable on the host.
    pub binary: PathBuf,
    /// Its absolute path in the image (the entrypoint).
    pub path: String,
    /// Arguments after the entrypoint (the config's `Cmd`).
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs; they override the extras' variables.
    pub env: Vec<String>,
    /// The working directory; `None` means the binary's own directory
    /// (`/app` for `/app/NAME`), as docker users expect from `WORKDIR /app`.
    /// Never `/` by default: ASP.NET Core's configuration watcher walks the
    /// whole tree from the working directory (`/proc` included).
    pub workdir: Option<String>,
    /// `uid[:gid]` or a name; `None` leaves it unset (root).
    pub user: Option<String>,
    /// `PORT[/tcp|udp|sctp]`.
    pub ports: Vec<String>,
    /// Config labels.
    pub labels: BTreeMap<String, String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    pub extras: Extras,
    /// What the kind of program needs besides [`Self::extras`] (the caller
    /// decides it from verify's report; [`RuntimeDefaults::None`] by default).
    pub runtime: RuntimeDefaults,
    /// os/architecture of the config (from the verified ELF).
    pub platform: Platform,
    /// Seconds since the epoch for `created`, history and tar mtimes.
    pub created: u64,
    pub gzip: GzipOptions,
    /// The layer cache (`None`: every layer is written afresh).
    pub cache: Option<Cache>,
    /// The layers' compressor and level (gzip by default; its level wins
    /// over [`GzipOptions::level`]).
    pub compression: Compression,
    /// Where the layer temp files go (the output's directory, so the final
    /// rename or copy stays on one file system).
    pub temp_dir: PathBuf,
}

impl ImageSpec {
    /// A spec with the defaults: `/app/<file name>`, working directory the
    /// binary's directory, user 65532:65532, no runtime defaults, created at `SOURCE_DATE_EPOCH` (else 0), host platform, system temp dir.
    pub fn new(binary: impl Into<PathBuf>) -> ImageSpec {
        let binary = binary.into();
        let path = default_path(&binary);
        ImageSpec {
            binary,
            path,
            args: Vec::new(),
            env: Vec::new(),
            workdir: None,
            user: Some(NONROOT_USER.to_string()),
            ports: Vec::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            extras: Extras::default(),
            runtime: RuntimeDefaults::None,
            platform: Platform::host(),
            created: 0,
            gzip: GzipOptions::default(),
            cache: None,
            compression: Compression::default(),
            temp_dir: std::env::temp_dir(),
        }
    }

    /// The spec with these runtime defaults (see [`RuntimeDefaults`]).
    pub fn runtime_defaults(mut self, defaults: RuntimeDefaults) -> ImageSpec {
        self.runtime = defaults;
        self
    }
}

/// `/app/<file name of binary>` (`/app/app` when it has none).
pub fn default_path(binary: &Path) -> String {
    let name = binary
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty())
        .unwrap_or("app");
    format!("/app/{name}")
}

/// `SOURCE_DATE_EPOCH` as seconds, 0 when unset or empty.
pub fn source_date_epoch() -> Result<u64, AssembleError> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => {
            v.trim()
                .parse::<u64>()
                .map_err(|_| AssembleError::InvalidOption {
                    what: "SOURCE_DATE_EPOCH",
                    value: v.clone(),
                    reason: "expected a whole number of seconds since 1970-01-01".into(),
                })
        }
        _ => Ok(0),
    }
}

/// RFC 3339 UTC time of `secs` since the epoch (`1970-01-01T00:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// `org.opencontainers.image.title` and `.version` from an image name and
/// tag (`ghcr.io/acme/hello`, `1.2` -> title `hello`, version `1.2`;
/// `latest` gives no version).
pub fn standard_labels(name: &str, tag: Option<&str>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let title = name.rsplit('/').next().unwrap_or(name);
    if !title.is_empty() {
        labels.insert(
            "org.opencontainers.image.title".to_string(),
            title.to_string(),
        );
    }
    if let Some(tag) = tag.filter(|t| !t.is_empty() && *t != "latest") {
        labels.insert(
            "org.opencontainers.image.version".to_string(),
            tag.to_string(),
        );
    }
    labels
}

/// The passwd file `--passwd` writes (as gcr.io/distroless/static).
pub const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
/// The group file `--passwd` writes.
pub const GROUP: &str = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n";

/// An image and what the layer cache did for each of its layers.
#[derive(Clone, Debug)]
pub struct Assembled {
    pub image: Image,
    /// One per layer, in the image's order.
    pub cache: Vec<CacheUse>,
    /// Every regular file of the image (path in the image and where its
    /// bytes came from), sorted by path; a later layer's file replaces an
    /// earlier one's.
    pub files: Vec<(String, layer::Content)>,
}

/// A layer writer with the spec's compression and cache. The compression's
/// format id (part of the cache key) is named here and only here.
fn layer_writer(spec: &ImageSpec) -> LayerWriter {
    LayerWriter::new(spec.created)
        .with_gzip(spec.gzip)
        .with_compression(spec.compression)
        .with_cache(
            spec.cache.clone(),
            spec.compression.layer_format_id(&spec.gzip),
        )
}

/// Builds the image: extras layer (if any), binary layer, config, manifest.
pub fn assemble(spec: &ImageSpec) -> Result<Image, AssembleError> {
    assemble_reporting(spec).map(|a| a.image)
}

/// [`assemble`], also saying which layers came from the cache.
pub fn assemble_reporting(spec: &ImageSpec) -> Result<Assembled, AssembleError> {
    let path = check_abs("path in image", &spec.path)?;
    let workdir = match spec.workdir.as_deref() {
        Some(w) => check_abs("working directory", w)?,
        None => binary_dir(&path),
    };
    let extras = spec.extras.with(spec.runtime);
    let ports = spec
        .ports
        .iter()
        .map(|p| normalise_port(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set_env = |k: &str, v: &str| {
        if let Some(slot) = env.iter_mut().find(|(key, _)| key == k) {
            slot.1 = v.to_string();
        } else {
            env.push((k.to_string(), v.to_string()));
        }
    };
    if extras.ca_certs.is_some() {
        set_env("SSL_CERT_FILE", CA_BUNDLE_PATH);
    }
    if extras.icu_data.is_some() {
        set_env("ICU_DATA", ICU_DIR);
    }
    for kv in &spec.env {
        let (k, v) = parse_env(kv)?;
        set_env(k, v);
    }
    if let Some(user) = &spec.user {
        if user.is_empty() || user.contains(char::is_whitespace) {
            return Err(AssembleError::InvalidOption {
                what: "user",
                value: user.clone(),
                reason: "expected UID[:GID] or a name".into(),
            });
        }
    }

    let created = rfc3339(spec.created);
    let mut layers = Vec::new();
    let mut history = Vec::new();
    let mut files = std::collections::BTreeMap::new();

    if !extras.is_empty() {
        let mut w = layer_writer(spec);
        let mut what = add_extras(&mut w, &extras)?;
        if spec.runtime == RuntimeDefaults::NativeAot {
            what.push("(NativeAOT defaults)");
        }
        files.extend(w.files());
        layers.push(w.finish(&spec.temp_dir)?);
        history.push(
            HistoryBuilder::default()
                .created(created.clone())
                .created_by(format!("distroless-pack: {}", what.join(", ")))
                .build()
                .expect("history builder has no required fields"),
        );
    }

    let mut w = layer_writer(spec);
    w.add_file(&path, &spec.binary, MODE_EXEC)?;
    files.extend(w.files());
    layers.push(w.finish(&spec.temp_dir)?);
    history.push(
        HistoryBuilder::default()
            .created(created.clone())
            .created_by(format!("distroless-pack: binary {path}"))
            .build()
            .expect("history builder has no required fields"),
    );

    let mut cfg = ConfigBuilder::default().entrypoint(vec![path.clone()]);
    if !env.is_empty() {
        cfg = cfg.env(
            env.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>(),
        );
    }
    if !spec.args.is_empty() {
        cfg = cfg.cmd(spec.args.clone());
    }
    if let Some(user) = &spec.user {
        cfg = cfg.user(user.clone());
    }
    cfg = cfg.working_dir(workdir);
    if !ports.is_empty() {
        cfg = cfg.exposed_ports(ports);
    }
    if !spec.labels.is_empty() {
        cfg = cfg.labels(
            spec.labels
                .clone()
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
    }
    let cfg = cfg.build().map_err(|e| AssembleError::InvalidOption {
        what: "image config",
        value: String::new(),
        reason: e.to_string(),
    })?;

    let rootfs = RootFsBuilder::default()
        .typ("layers")
        .diff_ids(
            layers
                .iter()
                .map(|l| l.diff_id.to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .expect("rootfs builder has no required fields");
    let mut config = ImageConfigurationBuilder::default()
        .created(created)
        .architecture(Arch::from(spec.platform.architecture.as_str()))
        .os(Os::from(spec.platform.os.as_str()))
        .config(cfg)
        .rootfs(rootfs)
        .history(history)
        .build()
        .map_err(|e| AssembleError::InvalidOption {
            what: "image config",
            value: String::new(),
            reason: e.to_string(),
        })?;
    if let Some(v) = &spec.platform.variant {
        config.set_variant(Some(v.clone()));
    }
    let cache = layers.iter().map(|l| l.cache.clone()).collect();
    let image = Image::new(
        &config,
        layers.into_iter().map(|l| l.blob).collect(),
        &spec.annotations,
    )?;
    Ok(Assembled {
        image,
        cache,
        files: files.into_iter().collect(),
    })
}

fn add_extras(w: &mut LayerWriter, extras: &Extras) -> Result<Vec<&'static str>, AssembleError> {
    let mut what = Vec::new();
    if let Some(ca) = &extras.ca_certs {
        check_pem(ca)?;
        w.add_file(CA_BUNDLE_PATH, ca, MODE_FILE)?;
        what.push("ca-certs");
    }
    if let Some(dat) = &extras.icu_data {
        let name = dat.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.ends_with(".dat") {
            return Err(AssembleError::BadExtra {
                path: dat.clone(),
                reason: "ICU data must be a .dat file such as icudt74l.dat".into(),
            });
        }
        w.add_file(&format!("{ICU_DIR}/{name}"), dat, MODE_FILE)?;
        what.push("icu-data");
    }
    if let Some(tz) = &extras.tzdata {
        w.add_tree(ZONEINFO_DIR, tz)?;
        what.push("tzdata");
    }
    if extras.passwd {
        w.add_bytes("/etc/passwd", PASSWD.as_bytes().to_vec(), MODE_FILE)?;
        w.add_bytes("/etc/group", GROUP.as_bytes().to_vec(), MODE_FILE)?;
        w.add_dir("/home/nonroot", 0o700, 65532, 65532)?;
        w.add_dir("/root", 0o700, 0, 0)?;
        what.push("passwd");
    }
    if extras.tmp {
        w.add_dir("/tmp", MODE_TMP, 0, 0)?;
        what.push("tmp");
    }
    Ok(what)
}

/// The directory holding `path` (`/app` for `/app/hello`, `/` for `/hello`).
fn binary_dir(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, _)) if !dir.is_empty() => dir.to_string(),
        _ => "/".to_string(),
    }
}

fn check_pem(path: &Path) -> Result<(), AssembleError> {
    let mut head = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(1 << 16).read_to_end(&mut head))
        .map_err(crate::read_error(path))?;
    if !head
        .windows(27)
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(AssembleError::BadExtra {
            path: path.to_path_buf(),
            reason: "not a PEM certificate bundle (no BEGIN CERTIFICATE line)".into(),
        });
    }
    Ok(())
}

fn check_abs(what: &'static str, p: &str) -> Result<String, AssembleError> {
    let bad = |reason: &str| AssembleError::InvalidOption {
        what,
        value: p.to_string(),
        reason: reason.into(),
    };
    if !p.starts_with('/') {
        return Err(bad("must be an absolute path"));
    }
    let parts: Vec<&str> = p.split('/').filter(|s| !s.is_empty()).collect();
    if parts.iter().any(|s| *s == "." || *s == "..") || p.contains('\0') {
        return Err(bad("must not contain `.`, `..` or NUL"));
    }
    if parts.is_empty() {
        return if what == "working directory" {
            Ok("/".into())
        } else {
            Err(bad("must name a file"))
        };
    }
    Ok(format!("/{}", parts.join("/")))
}

fn parse_env(kv: &str) -> Result<(&str, &str), AssembleError> {
    match kv.split_once('=') {
        Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => Ok((k, v)),
        _ => Err(AssembleError::InvalidOption {
            what: "environment variable",
            value: kv.to_string(),
            reason: "expected KEY=VALUE".into(),
        }),
    }
}

/// `8080` -> `8080/tcp`; checks the number and protocol.
pub fn normalise_port(p: &str) -> Result<String, AssembleError> {
    let bad = || AssembleError::InvalidOption {
        what: "port",
        value: p.to_string(),
        reason: "expected PORT or PORT/tcp|udp|sctp with PORT in 1-65535".into(),
    };
    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let n: u16 = num.parse().map_err(|_| bad())?;
    if n == 0 || !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(bad());
    }
    Ok(format!("{n}/{proto}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn spec_with(dir: &Path) -> ImageSpec {
        let bin = dir.join("hello");
        std::fs::write(&bin, b"\x7fELF not really").unwrap();
        let mut s = ImageSpec::new(&bin);
        s.temp_dir = dir.to_path_buf();
        s
    }

    #[test]
    fn rfc3339_known_values() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn config_has_exec_entrypoint_user_env_labels() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec_with(dir.path());
        s.args = vec!["--port".into(), "80".into()];
        s.env = vec!["A=1".into(), "SSL_CERT_FILE=/x".into()];
        s.ports = vec!["8080".into(), "53/udp".into()];
        s.labels = standard_labels("ghcr.io/acme/hello", Some("1.2"));
        s.extras.ca_certs = Some(PathBuf::from("/etc/ssl/certs/ca-certificates.crt"));
        s.workdir = Some("/app/".into());
        let img = assemble(&s).unwrap();
        assert_eq!(img.layers.len(), 2);
        let cfg: serde_json::Value =
            serde_json::from_slice(&img.config.read_all().unwrap()).unwrap();
        let c = &cfg["config"];
        assert_eq!(c["Entrypoint"], serde_json::json!(["/app/hello"]));
        assert_eq!(c["Cmd"], serde_json::json!(["--port", "80"]));
        assert_eq!(c["User"], "65532:65532");
        assert_eq!(c["WorkingDir"], "/app");
        assert_eq!(c["Env"], serde_json::json!(["SSL_CERT_FILE=/x", "A=1"]));
        assert_eq!(
            c["ExposedPorts"],
            serde_json::json!({"53/udp": {}, "8080/tcp": {}})
        );
        assert_eq!(c["Labels"]["org.opencontainers.image.title"], "hello");
        assert_eq!(c["Labels"]["org.opencontainers.image.version"], "1.2");
        assert_eq!(cfg["created"], "1970-01-01T00:00:00Z");
        assert_eq!(cfg["architecture"], Platform::host().architecture);
        assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn same_spec_same_digest_and_created_changes_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec_with(dir.path());
        for i in 0..20 {
            s.labels.insert(format!("k{i}"), format!("v{i}"));
        }
        let a = assemble(&s).unwrap();
        let b = assemble(&s).unwrap();
        assert_eq!(a.digest(), b.digest());
        s.created = 1_700_000_000;
        let c = assemble(&s).unwrap();
        assert_ne!(a.digest(), c.digest());
        let cfg: serde_json::Value = serde_json::from_slice(&c.config.read_all().unwrap()).unwrap();
        assert_eq!(cfg["created"], "2023-11-14T22:13:20Z");
    }

    #[test]
    fn bad_options_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec_with(dir.path());
        s.env = vec!["NOEQUALS".into()];
        assert!(matches!(
            assemble(&s),
            Err(AssembleError::InvalidOption {
                what: "environment variable",
                ..
            })
        ));
        let mut s = spec_with(dir.path());
        s.ports = vec!["99999".into()];
        assert!(assemble(&s).is_err());
        let mut s = spec_with(dir.path());
        s.path = "relative".into();
        assert!(assemble(&s).is_err());
        let mut s = spec_with(dir.path());
        s.extras.ca_certs = Some(s.binary.clone());
        let e = assemble(&s).unwrap_err().to_string();
        assert!(e.contains("hello") && e.contains("PEM"), "{e}");
        let mut s = spec_with(dir.path());
        s.binary = dir.path().join("missing");
        let e = assemble(&s).unwrap_err().to_string();
        assert!(e.contains("missing"), "{e}");
    }

    /// (path, mode, uid, gid, content) of every entry of an image layer.
    fn layer_entries(img: &Image, i: usize) -> Vec<(String, u32, u64, u64, Vec<u8>)> {
        let gz = img.layers[i].read_all().unwrap();
        let mut tar_bytes = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut tar_bytes)
            .unwrap();
        tar::Archive::new(&tar_bytes[..])
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let h = e.header().clone();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (
                    String::from_utf8(e.path_bytes().to_vec()).unwrap(),
                    h.mode().unwrap(),
                    h.uid().unwrap(),
                    h.gid().unwrap(),
                    data,
                )
            })
            .collect()
    }

    fn config(img: &Image) -> serde_json::Value {
        serde_json::from_slice(&img.config.read_all().unwrap()).unwrap()
    }

    #[test]
    fn workdir_defaults_to_the_binary_directory_not_root() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec_with(dir.path());
        assert_eq!(
            config(&assemble(&s).unwrap())["config"]["WorkingDir"],
            "/app"
        );
        let mut s = spec_with(dir.path());
        s.path = "/usr/local/bin/hello".into();
        assert_eq!(
            config(&assemble(&s).unwrap())["config"]["WorkingDir"],
            "/usr/local/bin"
        );
        let mut s = spec_with(dir.path());
        s.path = "/hello".into();
        assert_eq!(config(&assemble(&s).unwrap())["config"]["WorkingDir"], "/");
        // Asked for explicitly, `/` is kept (the old behaviour, for benches).
        let mut s = spec_with(dir.path());
        s.workdir = Some("/".into());
        assert_eq!(config(&assemble(&s).unwrap())["config"]["WorkingDir"], "/");
    }

    #[test]
    fn nativeaot_defaults_give_the_user_an_entry_and_a_writable_tmp() {
        let dir = tempfile::tempdir().unwrap();
        let plain = assemble(&spec_with(dir.path())).unwrap();
        assert_eq!(plain.layers.len(), 1, "no defaults: only the binary");

        let s = spec_with(dir.path()).runtime_defaults(RuntimeDefaults::NativeAot);
        let img = assemble(&s).unwrap();
        assert_eq!(img.layers.len(), 2);
        let entries = layer_entries(&img, 0);
        let find = |p: &str| {
            entries
                .iter()
                .find(|e| e.0 == p)
                .unwrap_or_else(|| panic!("{p} missing from {entries:?}"))
        };
        let passwd = String::from_utf8(find("etc/passwd").4.clone()).unwrap();
        assert!(
            passwd
                .lines()
                .any(|l| l == "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin"),
            "{passwd}"
        );
        let group = String::from_utf8(find("etc/group").4.clone()).unwrap();
        assert!(group.lines().any(|l| l == "nonroot:x:65532:"), "{group}");
        let home = find("home/nonroot/");
        assert_eq!((home.1, home.2, home.3), (0o700, 65532, 65532));
        let tmp = find("tmp/");
        assert_eq!((tmp.1, tmp.2, tmp.3), (0o1777, 0, 0));
        let cfg = config(&img);
        assert_eq!(cfg["config"]["User"], "65532:65532");
        assert_eq!(cfg["config"]["WorkingDir"], "/app");
        // Nothing that would change the program's behaviour behind its back.
        assert!(cfg["config"].get("Env").is_none(), "{cfg}");
        let history = cfg["history"][0]["created_by"].as_str().unwrap();
        assert!(history.contains("NativeAOT defaults"), "{history}");
        assert_ne!(plain.digest(), img.digest());
    }

    #[test]
    fn runtime_defaults_merge_with_extras_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            b"-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let mut s = spec_with(dir.path()).runtime_defaults(RuntimeDefaults::NativeAot);
        s.extras.ca_certs = Some(ca.clone());
        s.extras.passwd = true;
        let img = assemble(&s).unwrap();
        let entries = layer_entries(&img, 0);
        let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
        for p in [
            "etc/passwd",
            "etc/group",
            "tmp/",
            "etc/ssl/certs/ca-certificates.crt",
        ] {
            assert!(names.contains(&p), "{p} missing: {names:?}");
        }
        let bundle = entries
            .iter()
            .find(|e| e.0 == "etc/ssl/certs/ca-certificates.crt")
            .unwrap();
        assert_eq!(
            bundle.4,
            std::fs::read(&ca).unwrap(),
            "the given bundle, byte for byte"
        );
        assert_eq!(
            config(&img)["config"]["Env"],
            serde_json::json!(["SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"])
        );
    }

    #[test]
    fn passwd_and_tmp_are_separate_extras() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec_with(dir.path());
        s.extras.passwd = true;
        let names: Vec<String> = layer_entries(&assemble(&s).unwrap(), 0)
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert!(names.contains(&"etc/passwd".to_string()), "{names:?}");
        assert!(!names.contains(&"tmp/".to_string()), "{names:?}");
        let mut s = spec_with(dir.path());
        s.extras.tmp = true;
        let names: Vec<String> = layer_entries(&assemble(&s).unwrap(), 0)
            .into_iter()
            .map(|e| e.0)
            .collect();
        assert_eq!(names, vec!["tmp/".to_string()]);
    }

    #[test]
    fn passwd_extras() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec_with(dir.path());
        s.extras.passwd = true;
        let img = assemble(&s).unwrap();
        assert_eq!(img.layers.len(), 2);
        assert!(PASSWD.contains("nonroot:x:65532:65532:nonroot:/home/nonroot:"));
    }
}
