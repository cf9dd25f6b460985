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

/// Loads `artifact` (the image `opts.platform` picks, else the host's from
/// an index) into docker or podman (`None`: whichever answers, see
/// [`resolve`]), returning the name it reported.
pub fn load(
    artifact: &Artifact,
    engine: Option<Engine>,
    opts: &WriteOptions,
) -> Result<Loaded, ShipError> {
    let engine = resolve(engine)?;
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
