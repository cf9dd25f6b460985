//! Running a plan's script on the host or in the builder container.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use distroless_pack_image::Engine;

use crate::config::BuildConfig;
use crate::error::BuildError;
use crate::RunnerChoice;

/// Where the project is mounted in the builder container.
pub const CONTAINER_SRC: &str = "/src";
/// Where the output directory is mounted in the builder container.
pub const CONTAINER_OUT: &str = "/out";
/// Where the cache volume is mounted in the builder container.
pub const CONTAINER_CACHE: &str = "/cache";
/// The named volume holding NuGet, cargo and Go caches between builds.
pub const CACHE_VOLUME: &str = "distroless-pack-cache";

/// The Dockerfile of the default builder image, built into this program.
pub const BUILDER_DOCKERFILE: &str = include_str!("../../../Dockerfile.alpine-builder");

/// The default builder image's name: its tag changes with the Dockerfile.
pub fn default_builder_image() -> String {
    // FNV-1a: a stable fingerprint, not a security measure.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in BUILDER_DOCKERFILE.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("distroless-pack-builder:{:012x}", h >> 16)
}

/// Whether `engine` answers well enough to build in: docker's daemon
/// (`docker version`), podman's host (`podman info`, which needs a working
/// storage and runtime, unlike `podman version`).
fn answers(engine: Engine) -> bool {
    let program = engine.program();
    if which(program).is_none() {
        return false;
    }
    let args: &[&str] = match engine {
        Engine::Podman => &["info", "--format", "{{.Host.Arch}}"],
        Engine::Docker => &["version", "--format", "{{.Server.Version}}"],
    };
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The first engine that answers: `preferred`, else docker, else podman.
fn find_engine(preferred: Option<Engine>) -> Option<Engine> {
    match preferred {
        Some(p) => answers(p).then_some(p),
        None => Engine::ALL.into_iter().find(|&e| answers(e)),
    }
}

fn engine_cmd(engine: Engine) -> Command {
    let mut c = Command::new(engine.program());
    c.stdin(Stdio::null());
    c
}

fn rootless_podman(engine: Engine) -> bool {
    engine == Engine::Podman && uid() != 0
}

/// The builder container: engine and image.
#[derive(Clone, Debug)]
pub struct Container {
    pub engine: Engine,
    pub image: String,
    /// Whether `image` is our default, built from the embedded Dockerfile.
    pub default_image: bool,
    /// Offline build: the container gets no network (`--network=none`).
    pub offline: bool,
}

/// Where a plan runs.
#[derive(Clone, Debug)]
pub enum Runner {
    Host,
    Container(Container),
}

/// How a script ended.
#[derive(Clone, Debug)]
pub struct Status {
    pub success: bool,
    pub description: String,
}

/// Whether the settings ask for a glibc .NET build (`dotnet.libc`).
fn glibc_dotnet(cfg: &BuildConfig) -> bool {
    cfg.dotnet.as_ref().and_then(|d| d.libc) == Some(crate::config::Libc::Glibc)
        && cfg.kind.is_none_or(|k| k == crate::Kind::Dotnet)
}

impl Runner {
    /// Picks the runner from the configuration (flags already merged).
    pub fn resolve(cfg: &BuildConfig) -> Result<Runner, BuildError> {
        let choice = cfg.runner.unwrap_or_default();
        let preferred = cfg
            .engine
            .as_deref()
            .map(str::parse::<Engine>)
            .transpose()
            .map_err(BuildError::Invalid)?;
        let container = |engine: Engine| {
            let (image, default_image) = match &cfg.builder_image {
                Some(i) => (i.clone(), false),
                None => (default_builder_image(), true),
            };
            Runner::Container(Container {
                engine,
                image,
                default_image,
                offline: cfg.offline(),
            })
        };
        match choice {
            RunnerChoice::Host => Ok(Runner::Host),
            RunnerChoice::Container => match find_engine(preferred) {
                Some(e) => Ok(container(e)),
                None => Err(BuildError::Engine(format!(
                    "--runner container needs a working container engine, but {} did not answer: start the docker daemon (or install podman), or use --runner host",
                    preferred.map_or("neither docker nor podman", Engine::program)
                ))),
            },
            // A glibc .NET build cannot run in the (musl) default builder.
            RunnerChoice::Auto if glibc_dotnet(cfg) && cfg.builder_image.is_none() => {
                Ok(Runner::Host)
            }
            RunnerChoice::Auto => Ok(match find_engine(preferred) {
                Some(e) => container(e),
                None => Runner::Host,
            }),
        }
    }

    pub fn is_container(&self) -> bool {
        matches!(self, Runner::Container(_))
    }

    /// The builder image's ID and registry digests (container runner).
    pub fn image_identity(&self) -> Option<crate::inputs::BuilderImage> {
        let Runner::Container(c) = self else {
            return None;
        };
        let out = engine_cmd(c.engine)
            .args([
                "image",
                "inspect",
                "--format",
                "{{.Id}} {{json .RepoDigests}}",
                &c.image,
            ])
            .stderr(Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let (id, digests) = text.trim().split_once(' ')?;
        let id = if id.starts_with("sha256:") {
            id.to_string()
        } else {
            format!("sha256:{id}")
        };
        let repo_digests: Vec<String> = serde_json::from_str(digests).unwrap_or_default();
        Some(crate::inputs::BuilderImage {
            name: c.image.clone(),
            id,
            repo_digests,
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Runner::Host => "host".to_string(),
            Runner::Container(c) => format!("{}:{}", c.engine, c.image),
        }
    }

    /// Turns a path the script saw into the host's path.
    pub fn host_path(&self, p: &str, src: &Path, out: &Path) -> PathBuf {
        if let Runner::Container(_) = self {
            for (inside, outside) in [(CONTAINER_SRC, src), (CONTAINER_OUT, out)] {
                if p == inside {
                    return outside.to_path_buf();
                }
                if let Some(rest) = p.strip_prefix(inside).and_then(|r| r.strip_prefix('/')) {
                    return outside.join(rest);
                }
            }
        }
        PathBuf::from(p)
    }

    /// Runs `script` with the project as working directory; output goes to
    /// `log` (and to stderr when `stream`).
    pub fn run(
        &self,
        script: &str,
        src: &Path,
        out: &Path,
        log: &Path,
        stream: bool,
    ) -> Result<Status, BuildError> {
        let mut cmd = match self {
            Runner::Host => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(script)
                    .current_dir(src)
                    .stdin(Stdio::null());
                c
            }
            Runner::Container(c) => {
                c.ensure_image(log, stream)?;
                c.prepare_cache()?;
                c.run_command(script, src, out)
            }
        };
        let (ok, desc) = run_logged(&mut cmd, log, stream)?;
        if !ok {
            if let Runner::Container(c) = self {
                // Exit 125 is the engine's own failure (image missing, bad mount).
                if desc.contains("125") {
                    let last = last_log_line(log);
                    return Err(BuildError::Engine(format!(
                        "{} could not start the builder image {}: {last}",
                        c.engine, c.image
                    )));
                }
            }
        }
        Ok(Status {
            success: ok,
            description: desc,
        })
    }
}

impl Container {
    /// Builds the default builder image unless it is there already.
    fn ensure_image(&self, log: &Path, stream: bool) -> Result<(), BuildError> {
        if !self.default_image {
            return Ok(());
        }
        let present = engine_cmd(self.engine)
            .args(["image", "inspect", &self.image])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if present {
            return Ok(());
        }
        let ctx = tempfile::tempdir().map_err(BuildError::io(std::env::temp_dir()))?;
        let df = ctx.path().join("Dockerfile");
        std::fs::write(&df, BUILDER_DOCKERFILE).map_err(BuildError::io(&df))?;
        let mut c = engine_cmd(self.engine);
        c.args(["build", "-t", &self.image, "-f"])
            .arg(&df)
            .arg(ctx.path());
        let (ok, desc) = run_logged(&mut c, log, stream)?;
        if !ok {
            let last = last_log_line(log);
            return Err(BuildError::Engine(format!(
                "building the builder image {} from Dockerfile.alpine-builder failed ({desc}): {last}; pass --builder-image IMAGE to use another image",
                self.image
            )));
        }
        Ok(())
    }

    /// Makes the calling user's folder of the cache volume
    /// ([`user_cache_dir`]) and gives it to them. Each user has their own:
    /// one user's caches are never written by another, so a build as root
    /// (whose files only root can write) does not break a later build as a
    /// CI user, nor the other way round. Root and rootless podman (whose
    /// volume belongs to the user) make it themselves in the build script.
    fn prepare_cache(&self) -> Result<(), BuildError> {
        if uid() == 0 || rootless_podman(self.engine) {
            return Ok(());
        }
        let dir = user_cache_dir();
        let status = engine_cmd(self.engine)
            .args(["run", "--rm", "--network=none", "--user", "0:0", "-v"])
            .arg(format!("{CACHE_VOLUME}:{CONTAINER_CACHE}"))
            .arg(&self.image)
            .args([
                "sh",
                "-c",
                &format!(
                    "mkdir -p {dir} && chown {}:{} {dir} && chmod 0700 {dir}",
                    uid(),
                    gid()
                ),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| BuildError::Engine(format!("cannot run {}: {e}", self.engine)))?;
        if !status.status.success() {
            return Err(BuildError::Engine(format!(
                "preparing the cache volume {CACHE_VOLUME} failed: {}",
                String::from_utf8_lossy(&status.stderr).trim()
            )));
        }
        Ok(())
    }

    /// The `docker run` / `podman run` command line for a script.
    pub fn run_command(&self, script: &str, src: &Path, out: &Path) -> Command {
        let mut c = engine_cmd(self.engine);
        c.args([
            "run",
            "--rm",
            if self.offline {
                "--network=none"
            } else {
                "--network=host"
            },
        ]);
        if rootless_podman(self.engine) {
            c.arg("--userns=keep-id");
        } else {
            c.args(["--user", &format!("{}:{}", uid(), gid())]);
        }
        // On an SELinux host (Fedora, RHEL) a container may not read a bind
        // mount whose files keep their host label. Not labelling the build
        // container is the alternative to `:z`, which would relabel the
        // user's project (and whatever else is in it) for good; elsewhere
        // docker and podman ignore it.
        c.args(["--security-opt", "label=disable"]);
        c.arg("-v")
            .arg(format!("{}:{CONTAINER_SRC}", src.display()));
        c.arg("-v")
            .arg(format!("{}:{CONTAINER_OUT}", out.display()));
        c.arg("-v").arg(format!("{CACHE_VOLUME}:{CONTAINER_CACHE}"));
        c.args(["-w", CONTAINER_SRC]);
        for (k, v) in container_env() {
            c.arg("-e").arg(format!("{k}={v}"));
        }
        c.arg(&self.image)
            .args(["sh", "-c"])
            .arg(format!("mkdir -p \"$HOME\"\n{script}"));
        c
    }
}

/// The calling user's folder in the cache volume: `/cache/uid-UID`.
pub fn user_cache_dir() -> String {
    format!("{CONTAINER_CACHE}/uid-{}", uid())
}

/// Environment of every container build: caches in the user's folder of
/// the volume, a writable HOME.
pub fn container_env() -> Vec<(&'static str, String)> {
    let dir = user_cache_dir();
    [
        ("HOME", "home"),
        ("NUGET_PACKAGES", "nuget"),
        ("DOTNET_CLI_HOME", "dotnet-home"),
        ("CARGO_HOME", "cargo"),
        ("GOCACHE", "go-build"),
        ("GOMODCACHE", "go-mod"),
        ("GOPATH", "go"),
    ]
    .into_iter()
    .map(|(k, sub)| (k, format!("{dir}/{sub}")))
    .collect()
}

/// Runs a command, its stdout and stderr appended to `log` line by line
/// (and copied to stderr when `stream`). Returns success and a description.
fn run_logged(cmd: &mut Command, log: &Path, stream: bool) -> Result<(bool, String), BuildError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(BuildError::io(log))?;
    let sink = Arc::new(Mutex::new(file));
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            BuildError::ToolMissing {
                tool: program.clone(),
                hint: format!("install {program}"),
            }
        } else {
            BuildError::Engine(format!("cannot start {program}: {e}"))
        }
    })?;
    let mut threads = Vec::new();
    let pipes: Vec<Box<dyn Read + Send>> = vec![
        Box::new(child.stdout.take().expect("piped stdout")),
        Box::new(child.stderr.take().expect("piped stderr")),
    ];
    for mut pipe in pipes {
        let sink = Arc::clone(&sink);
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Ok(mut f) = sink.lock() {
                            let _ = f.write_all(&buf[..n]);
                        }
                        if stream {
                            let _ = std::io::stderr().write_all(&buf[..n]);
                        }
                    }
                }
            }
        }));
    }
    let status = child
        .wait()
        .map_err(|e| BuildError::Engine(format!("waiting for {program}: {e}")))?;
    for t in threads {
        let _ = t.join();
    }
    let desc = match status.code() {
        Some(c) => format!("exit status {c}"),
        None => {
            use std::os::unix::process::ExitStatusExt;
            format!("killed by signal {}", status.signal().unwrap_or(0))
        }
    };
    Ok((status.success(), desc))
}

/// Finds an executable on PATH.
pub fn which(tool: &str) -> Option<PathBuf> {
    distroless_pack_image::which(tool)
}

/// The effective uid/gid of this process (the owner of `/proc/self`).
fn uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

fn gid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.gid())
        .unwrap_or(0)
}

/// The last non-blank line of a build log (the engine's own complaint).
fn last_log_line(log: &Path) -> String {
    engine_reason(&std::fs::read_to_string(log).unwrap_or_default())
}

/// The engine's own reason in its output: the last line that is not the
/// usage hint docker ends its errors with ("Run 'docker run --help' for
/// more information").
fn engine_reason(output: &str) -> String {
    output
        .lines()
        .rev()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .find(|l| !(l.starts_with("Run '") && l.ends_with("for more information")))
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_image_failure_shows_the_engines_reason_not_its_usage_hint() {
        let docker = "Unable to find image 'x:1' locally\ndocker: Error response from daemon: pull access denied for x\n\nRun 'docker run --help' for more information\n";
        assert_eq!(
            engine_reason(docker),
            "docker: Error response from daemon: pull access denied for x"
        );
        let podman = "Error: x:1: image not known\n";
        assert_eq!(engine_reason(podman), "Error: x:1: image not known");
    }

    #[test]
    fn maps_container_paths() {
        let r = Runner::Container(Container {
            engine: Engine::Docker,
            image: "x".into(),
            default_image: false,
            offline: false,
        });
        let (src, out) = (Path::new("/home/u/app"), Path::new("/tmp/o"));
        assert_eq!(
            r.host_path("/src/target/x", src, out),
            PathBuf::from("/home/u/app/target/x")
        );
        assert_eq!(
            r.host_path("/out/app", src, out),
            PathBuf::from("/tmp/o/app")
        );
        assert_eq!(r.host_path("/srcx", src, out), PathBuf::from("/srcx"));
        assert_eq!(
            Runner::Host.host_path("/src/a", src, out),
            PathBuf::from("/src/a")
        );
    }

    #[test]
    fn container_command_line() {
        let c = Container {
            engine: Engine::Docker,
            image: "builder:1".into(),
            default_image: false,
            offline: false,
        };
        let offline = Container {
            offline: true,
            ..c.clone()
        };
        let cmd = offline.run_command("make -B", Path::new("/a"), Path::new("/o"));
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args[..3], ["run", "--rm", "--network=none"]);
        let cmd = c.run_command("make -B", Path::new("/home/u/app"), Path::new("/tmp/o"));
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let joined = args.join(" ");
        assert_eq!(cmd.get_program(), "docker");
        assert!(
            joined.starts_with("run --rm --network=host --user "),
            "{joined}"
        );
        for want in [
            "-v /home/u/app:/src",
            "-v /tmp/o:/out",
            "-v distroless-pack-cache:/cache",
            "--security-opt label=disable",
            "-w /src",
            &format!("-e HOME=/cache/uid-{}/home", uid()),
            &format!("-e NUGET_PACKAGES=/cache/uid-{}/nuget", uid()),
            &format!("-e GOCACHE=/cache/uid-{}/go-build", uid()),
            "builder:1 sh -c",
        ] {
            assert!(joined.contains(want), "{want} in {joined}");
        }
        assert!(args.last().unwrap().ends_with("make -B"));
    }

    #[test]
    fn default_image_name_is_stable() {
        let a = default_builder_image();
        assert!(a.starts_with("distroless-pack-builder:"));
        assert_eq!(a, default_builder_image());
    }
}
