//! Loading into a local engine (`--load`): a docker archive streamed into
//! `docker load` or `podman load` on a pipe, no temp file.

use std::path::Path;
use std::process::{Command, Stdio};

use distroless_pack_image::{Artifact, Engine};

use crate::docker_archive::{single_image, write_docker_archive_to};
use crate::{ShipError, WriteOptions};

/// What a load did.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The engine used.
    pub engine: Engine,
    /// The name (or ID) the engine reported, e.g. `hello:latest`.
    pub name: String,
}

fn on_path(tool: &str) -> bool {
    distroless_pack_image::which(tool).is_some()
}

/// Why `engine` cannot be used, or `None` when it answers.
fn unusable(engine: Engine) -> Option<String> {
    let tool = engine.program();
    let install = match engine {
        Engine::Docker => "apt-get install -y docker.io",
        Engine::Podman => "apt-get install -y podman",
    };
    if !on_path(tool) {
        return Some(format!(
            "{tool} is not installed (install it with `{install}`)"
        ));
    }
    let out = Command::new(tool)
        .args([
            "version",
            "--format",
            if tool == "docker" {
                "{{.Server.Version}}"
            } else {
                "{{.Client.Version}}"
            },
        ])
        .stdin(Stdio::null())
        .output();
    match out {
        Err(e) => Some(format!("cannot run {tool}: {e}")),
        Ok(o) if o.status.success() => None,
        Ok(o) => {
            let err = String::from_utf8_lossy(&o.stderr).trim().replace('\n', " ");
            Some(match engine {
                Engine::Docker => format!(
                    "docker is installed but its daemon does not answer ({err}); start dockerd or set DOCKER_HOST"
                ),
                Engine::Podman => format!("podman does not work here ({err})"),
            })
        }
    }
}

/// The engine `--load` will use: `engine`, or with `None` docker if its
/// daemon answers, else podman.
pub fn resolve(engine: Option<Engine>) -> Result<Engine, ShipError> {
    match engine {
        None => {
            let docker = match unusable(Engine::Docker) {
                None => return Ok(Engine::Docker),
                Some(why) => why,
            };
            match unusable(Engine::Podman) {
                None => Ok(Engine::Podman),
                Some(podman) => Err(ShipError::EngineMissing(format!(
                    "no container engine to load the image into: {docker}; {podman}"
                ))),
            }
        }
        Some(e) => match unusable(e) {
            None => Ok(e),
            Some(why) => Err(ShipError::EngineMissing(why)),
        },
    }
}

/// The first docker release that reads zstd layers (moby 23.0, pull and
/// load alike).
pub const DOCKER_ZSTD_SINCE: u32 = 23;

/// The docker daemon's version (`20.10.24+dfsg1`), `None` when it does
/// not answer.
pub fn docker_server_version() -> Option<String> {
    let o = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (o.status.success() && !v.is_empty()).then_some(v)
}

/// Whether docker `version` reads zstd layers: its major number is at least
/// [`DOCKER_ZSTD_SINCE`] (an unparsable version is taken as too old).
pub fn docker_reads_zstd(version: &str) -> bool {
    version
        .split(['.', '-', '+'])
        .next()
        .and_then(|m| m.parse::<u32>().ok())
        .is_some_and(|major| major >= DOCKER_ZSTD_SINCE)
}

/// Refuses `--load` of zstd layers into a docker older than 23.0 (`engine`
/// as for [`load`]: `None` is the one [`resolve`] picks). podman reads them.
pub fn check_reads_zstd(engine: Option<Engine>) -> Result<(), ShipError> {
    if resolve(engine)? != Engine::Docker {
        return Ok(());
    }
    match docker_server_version() {
        Some(v) if !docker_reads_zstd(&v) => Err(ShipError::ZstdNotSupported {
            output: "--load".into(),
            reason: format!(
                "docker {v} cannot read zstd layers (docker {DOCKER_ZSTD_SINCE}.0 or later can); \
                 use --load=podman, or pack with --compression gzip"
            ),
        }),
        _ => Ok(()),
    }
}

/// Loads `artifact` (the image `opts.platform` picks, else the host's from
/// an index) into docker or podman (`None`: whichever answers, see
/// [`resolve`]), returning the name it reported.
pub fn load(
    artifact: &Artifact,
    engine: Option<Engine>,
    opts: &WriteOptions,
) -> Result<Loaded, ShipError> {
    let engine = resolve(engine)?;
    if crate::output::has_zstd_layers(artifact) {
        // Also for `run --engine docker`, which loads without `check`.
        check_reads_zstd(Some(engine))?;
    }
    let tool = engine.program();
    let label = Path::new(tool);
    let mut opts = opts.clone();
    if opts.platform.is_none() && matches!(artifact, Artifact::Index(_)) {
        opts.platform = Some(distroless_pack_image::Platform::host());
    }
    // Fail before starting the engine when no image fits.
    let image = Artifact::Image(single_image(artifact, &opts, label)?.clone());
    let mut child = Command::new(tool)
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ShipError::EngineMissing(format!("cannot run `{tool} load`: {e}")))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || {
        write_docker_archive_to(
            &image,
            std::io::BufWriter::with_capacity(1 << 20, stdin),
            &opts,
            Path::new("the engine's stdin"),
        )
        .and_then(|w| {
            w.into_inner().map(drop).map_err(|e| {
                ShipError::io("writing", Path::new("the engine's stdin"))(e.into_error())
            })
        })
    });
    let out = child
        .wait_with_output()
        .map_err(ShipError::io("waiting for", label))?;
    let written = writer
        .join()
        .unwrap_or_else(|_| Err(ShipError::EngineMissing("writer thread panicked".into())));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr)
        .trim()
        .replace('\n', " ");
    if !out.status.success() {
        return Err(ShipError::EngineFailed {
            engine: tool,
            status: out.status.to_string(),
            stderr,
        });
    }
    written?;
    let name = stdout
        .lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("Loaded image: ")
                .or_else(|| l.strip_prefix("Loaded image(s): "))
                .or_else(|| l.strip_prefix("Loaded image ID: "))
        })
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| stdout.trim().to_string());
    Ok(Loaded { engine, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_reads_zstd_from_23_on() {
        assert!(!docker_reads_zstd("20.10.24+dfsg1"));
        assert!(!docker_reads_zstd("22.06.0-beta.0"));
        assert!(docker_reads_zstd("23.0.0"));
        assert!(docker_reads_zstd("28.2.2"));
        assert!(!docker_reads_zstd("dev"));
        assert!(!docker_reads_zstd(""));
    }
}
