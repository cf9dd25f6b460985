//! `run --engine docker|podman`: loads one image under a name of our own,
//! runs it with `ENGINE run --rm`, kills it at the timeout or some seconds
//! after an interrupt, and untags it afterwards (the layers stay cached).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use distroless_pack_image::{Artifact, Engine, Image};

use crate::engine::{self, Loaded};
use crate::{ShipError, WriteOptions};

/// How to run the image in the engine.
#[derive(Clone, Debug, Default)]
pub struct EngineRun {
    /// `none` or `host`.
    pub network: String,
    pub env: Vec<(String, String)>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub entrypoint: Option<String>,
    /// Arguments replacing the image's cmd (`None`: the image's).
    pub args: Option<Vec<String>>,
    /// Kill the container after this long (exit code 137).
    pub timeout: Option<Duration>,
}

/// Loads `image` into `engine` (docker or podman) and calls `loaded` with
/// what was loaded, runs it, untags it, and returns the program's exit
/// code. `interrupted` says whether the user pressed Ctrl-C: the engine
/// client passes it on to the container; five seconds later the container
/// is killed.
pub fn run_in_engine(
    image: &Image,
    engine: Engine,
    how: &EngineRun,
    loaded: &dyn Fn(&Loaded),
    interrupted: &dyn Fn() -> bool,
) -> Result<u8, ShipError> {
    let tool = engine.program();
    // A name of our own, removed afterwards (digest and pid keep runs apart).
    let run_id = format!("{}-{}", &image.digest().hex()[..16], std::process::id());
    let name = format!("distroless-pack-run:{run_id}");
    let opts = WriteOptions {
        name: Some(name.clone()),
        ..Default::default()
    };
    let l = engine::load(&Artifact::Image(image.clone()), Some(engine), &opts)?;
    loaded(&l);

    let container = format!("distroless-pack-run-{run_id}");
    let mut c = Command::new(tool);
    c.args(["run", "--rm", "-i", "--name", &container]);
    c.arg(format!("--network={}", how.network));
    c.arg(format!("--platform={}", image.platform));
    if engine == Engine::Podman {
        c.arg("--pull=never");
    }
    for (k, v) in &how.env {
        c.arg("-e").arg(format!("{k}={v}"));
    }
    if let Some(u) = &how.user {
        c.arg("--user").arg(u);
    }
    if let Some(w) = &how.workdir {
        c.arg("--workdir").arg(w);
    }
    if let Some(e) = &how.entrypoint {
        c.arg(format!("--entrypoint={e}"));
    }
    c.arg(&l.name);
    if let Some(a) = &how.args {
        c.args(a);
    }
    c.stdin(Stdio::inherit());
    let status = c
        .spawn()
        .map_err(|e| ShipError::EngineMissing(format!("starting `{tool} run`: {e}")))
        .map(|mut child| wait_engine(&mut child, tool, &container, how.timeout, interrupted));
    // Untag what we loaded (only our own name; the layers stay cached).
    let _ = Command::new(tool)
        .args(["image", "rm", &l.name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    status
}

/// Waits for `ENGINE run`, killing the container at the timeout (exit code
/// 137) or some seconds after an interrupt; returns the exit code.
fn wait_engine(
    child: &mut std::process::Child,
    tool: &str,
    container: &str,
    timeout: Option<Duration>,
    interrupted: &dyn Fn() -> bool,
) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    let started = Instant::now();
    let mut killed = false;
    let mut interrupted_at: Option<Instant> = None;
    let kill = || {
        let _ = Command::new(tool)
            .args(["kill", container])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    };
    loop {
        match child.try_wait() {
            Ok(Some(st)) => {
                return match (killed, st.code()) {
                    (true, _) => 137,
                    (false, Some(c)) => (c & 0xff) as u8,
                    (false, None) => (128 + st.signal().unwrap_or(9)) as u8,
                };
            }
            Ok(None) => {}
            // As docker reports a failure of its own.
            Err(_) => return 125,
        }
        if !killed && timeout.is_some_and(|t| started.elapsed() >= t) {
            killed = true;
            kill();
        }
        if interrupted() {
            let at = *interrupted_at.get_or_insert_with(Instant::now);
            if !killed && at.elapsed() > Duration::from_secs(5) {
                killed = true;
                kill();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
