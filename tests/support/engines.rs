//! Real container engines for the tests: a private dockerd, podman with a
//! private configuration, and qemu-user for arm64 binaries.
//!
//! - [`docker()`] makes sure a dockerd answers on a private socket under
//!   `$DISTROLESS_PACK_TEST_DIR/docker` (default `/tmp/distroless-pack-test`),
//!   started by `scripts/services.sh start docker` with the flags that work on
//!   these machines (`--iptables=false --ip6tables=false
//!   --storage-driver=vfs`, private data-root, exec-root and pidfile). The
//!   first test that asks starts it, later ones (threads of this process and
//!   other test processes, serialised by `flock` in the script) reuse it. It
//!   keeps running after the tests; `scripts/test.sh` stops it at the end, or
//!   run `scripts/services.sh stop docker`.
//! - [`podman()`] needs no daemon: it writes a `containers.conf` (runc, lower
//!   ulimits: crun fails here) and a private `storage.conf` under
//!   `$DISTROLESS_PACK_TEST_DIR/podman`, exported through `CONTAINERS_CONF`
//!   and `CONTAINERS_STORAGE_CONF`.
//! - [`ensure_binfmt_arm64()`] mounts binfmt_misc when needed and enables
//!   qemu-aarch64 (flags `PF`, so it also works inside containers).
//!
//! Every command for an engine must carry its environment: use
//! [`Engine::cmd`] for `docker ...`/`podman ...`, and [`Engine::apply`] on
//! other commands that talk to the engine (`dp().arg("pack")...--load`).
//!
//! Networking, as checked on these machines:
//! - docker: the default `docker0` bridge with `--iptables=false`:
//!   `-p 127.0.0.1:P:8080` works through docker-proxy; `--network=none` and
//!   `--network=host` work too.
//! - podman: `-p 127.0.0.1:P:P` works (and `--network=host`).
//! - both: images loaded from a docker archive are named as tagged; podman
//!   prefixes `docker.io/library/` (or `localhost/` for `import`), so run them
//!   with `--pull=never`.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::util;

/// The folder holding the engines' state (sockets, storage, logs).
pub fn test_dir() -> PathBuf {
    std::env::var_os("DISTROLESS_PACK_TEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/distroless-pack-test"))
}

/// A container engine with the environment that points it at the test
/// suite's private daemon or storage.
#[derive(Clone, Debug)]
pub struct Engine {
    program: &'static str,
    envs: Vec<(String, String)>,
}

/// The private dockerd (see the module docs).
pub type Docker = Engine;
/// Podman with the private configuration (see the module docs).
pub type Podman = Engine;

impl Engine {
    /// `"docker"` or `"podman"`.
    pub fn name(&self) -> &'static str {
        self.program
    }

    /// The environment variables this engine needs (`DOCKER_HOST`, or
    /// `CONTAINERS_CONF` and `CONTAINERS_STORAGE_CONF`).
    pub fn envs(&self) -> &[(String, String)] {
        &self.envs
    }

    /// A `docker`/`podman` command with the environment set.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(self.program);
        c.stdin(Stdio::null());
        self.apply(&mut c);
        c
    }

    /// Sets this engine's environment on another command, e.g. a
    /// `distroless-pack ... --load` that must reach this daemon.
    pub fn apply<'a>(&self, cmd: &'a mut Command) -> &'a mut Command {
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `ENGINE ARGS...` and asserts success, returning stdout.
    #[track_caller]
    pub fn run_ok(&self, args: &[&str]) -> String {
        util::run_ok(self.cmd().args(args))
    }

    /// Runs `ENGINE ARGS...`, returning its output whatever the status.
    pub fn output(&self, args: &[&str]) -> Output {
        util::run(self.cmd().args(args))
    }

    /// Starts `ENGINE run -d ARGS...` and returns a guard that removes the
    /// container (`rm -f`) when dropped, even when the test panics.
    #[track_caller]
    pub fn run_detached(&self, args: &[&str]) -> Container {
        let mut full = vec!["run", "-d"];
        full.extend_from_slice(args);
        let id = self.run_ok(&full).trim().to_string();
        assert!(
            !id.is_empty(),
            "{} run -d printed no container id",
            self.program
        );
        Container {
            engine: self.clone(),
            id,
        }
    }

    /// Removes an image, ignoring errors (for clean-up).
    pub fn remove_image(&self, name: &str) {
        let _ = self
            .cmd()
            .args(["rmi", "-f", name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A running container, removed on drop.
#[derive(Debug)]
pub struct Container {
    engine: Engine,
    /// The container ID.
    pub id: String,
}

impl Container {
    /// The container's output so far (stdout and stderr).
    pub fn logs(&self) -> String {
        let out = self.engine.output(&["logs", &self.id]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self
            .engine
            .cmd()
            .args(["rm", "-f", &self.id])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `scripts/services.sh ARGS...`, returning its stderr on failure.
fn services(args: &[&str]) -> Result<(), String> {
    services_output(args).map(|_| ())
}

/// [`services`], giving what the script printed.
fn services_output(args: &[&str]) -> Result<String, String> {
    let script = util::repo_root().join("scripts/services.sh");
    let out = Command::new("bash")
        .arg(&script)
        .args(args)
        .env("DISTROLESS_PACK_TEST_DIR", test_dir())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`scripts/services.sh {}` failed ({}):\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}

/// The private dockerd, started on first use (see the module docs).
/// Panics with the reason and the tail of the daemon's log when it does not
/// answer within 60 s.
pub fn docker() -> Docker {
    util::require_tool("docker", "apt-get install -y docker.io");
    util::require_tool("dockerd", "apt-get install -y docker.io");
    static STARTED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = STARTED.get_or_init(|| services(&["start", "docker"])) {
        panic!("cannot start the test dockerd: {e}");
    }
    let sock = test_dir().join("docker/docker.sock");
    Engine {
        program: "docker",
        envs: vec![("DOCKER_HOST".into(), format!("unix://{}", sock.display()))],
    }
}

/// Podman with the private configuration (see the module docs).
pub fn podman() -> Podman {
    util::require_tool("podman", "apt-get install -y podman");
    util::require_tool("runc", "apt-get install -y runc");
    static CONFIGURED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = CONFIGURED.get_or_init(|| services(&["start", "podman"])) {
        panic!("cannot configure podman: {e}");
    }
    let dir = test_dir().join("podman");
    Engine {
        program: "podman",
        envs: vec![
            (
                "CONTAINERS_CONF".into(),
                dir.join("containers.conf").display().to_string(),
            ),
            (
                "CONTAINERS_STORAGE_CONF".into(),
                dir.join("storage.conf").display().to_string(),
            ),
        ],
    }
}

/// Rootless podman, as the user `scripts/services.sh start rootless-podman`
/// makes (`dp-rootless`, with subordinate ids, its own runtime dir and vfs
/// storage under the test dir).
pub struct RootlessPodman {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// HOME, XDG_RUNTIME_DIR, CONTAINERS_CONF, CONTAINERS_STORAGE_CONF.
    pub envs: Vec<(String, String)>,
}

impl RootlessPodman {
    /// `program` run as the user (setpriv, its groups), in its environment.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let setpriv = util::require_tool("setpriv", "apt-get install -y util-linux");
        let mut c = Command::new(setpriv);
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg(program)
            .stdin(Stdio::null());
        for (k, v) in &self.envs {
            c.env(k, v);
        }
        c
    }

    /// `podman ARGS` as the user.
    pub fn podman(&self) -> Command {
        self.command("podman")
    }
}

/// The rootless podman user, set up on first use, or a panic saying why not.
pub fn rootless_podman() -> RootlessPodman {
    util::require_tool("podman", "apt-get install -y podman");
    util::require_tool("newuidmap", "apt-get install -y uidmap");
    static SET_UP: OnceLock<Result<String, String>> = OnceLock::new();
    let printed = match SET_UP.get_or_init(|| services_output(&["start", "rootless-podman"])) {
        Ok(p) => p,
        Err(e) => panic!("cannot set up rootless podman: {e}"),
    };
    let envs: Vec<(String, String)> = printed
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let user = envs
        .iter()
        .find(|(k, _)| k == "DP_ROOTLESS_USER")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("services.sh printed no user: {printed}"));
    let id = |flag: &str| -> u32 {
        let out = util::run_ok(Command::new("id").arg(flag).arg(&user));
        out.trim()
            .parse()
            .unwrap_or_else(|_| panic!("id {flag} {user}: {out}"))
    };
    RootlessPodman {
        uid: id("-u"),
        gid: id("-g"),
        user,
        envs: envs
            .into_iter()
            .filter(|(k, _)| k != "DP_ROOTLESS_USER")
            .collect(),
    }
}

/// Makes arm64 ELF executables runnable on this amd64 host (directly and in
/// containers) through qemu-user-static, or panics saying why not.
pub fn ensure_binfmt_arm64() {
    util::require_tool("qemu-aarch64-static", "apt-get install -y qemu-user-static");
    util::require_tool("update-binfmts", "apt-get install -y binfmt-support");
    static ENABLED: OnceLock<Result<(), String>> = OnceLock::new();
    if let Err(e) = ENABLED.get_or_init(|| services(&["binfmt"])) {
        panic!("cannot run arm64 binaries through qemu-user: {e}");
    }
}

/// A TCP port that is free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// `GET path` on 127.0.0.1:port, retried until it connects and answers or
/// `timeout` passes. Returns the status code and the body.
pub fn http_get(port: u16, path: &str, timeout: Duration) -> Result<(u16, String), String> {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        match try_get(port, path) {
            Ok(r) => return Ok(r),
            Err(e) => last = e,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!(
        "GET http://127.0.0.1:{port}{path} got no answer within {timeout:?}: {last}"
    ))
}

fn try_get(port: u16, path: &str) -> Result<(u16, String), String> {
    get_once(&format!("127.0.0.1:{port}"), path, None)
        .map(|(status, body)| (status, String::from_utf8_lossy(&body).into_owned()))
}

/// `GET path` on `host` (`IP:PORT`), once, over HTTP/1.0 (so the answer is
/// never chunked), with `Accept: accept` when given: the status and the
/// body.
pub fn get_once(host: &str, path: &str, accept: Option<&str>) -> Result<(u16, Vec<u8>), String> {
    let mut s = TcpStream::connect(host).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let accept = accept
        .map(|a| format!("Accept: {a}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\n{accept}Connection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {:?}", String::from_utf8_lossy(&raw)))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:?}"))?;
    Ok((status, raw[split + 4..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A musl-static C hello in a folder of its own, as a rootfs tar.
    fn hello_rootfs_tar(dir: &Path) -> PathBuf {
        util::require_tool("musl-gcc", "apt-get install -y musl-tools");
        util::require_tool("tar", "apt-get install -y tar");
        let src = util::write_file(
            dir,
            "hello.c",
            b"#include <stdio.h>\nint main(void){puts(\"hello from distroless-pack\");return 0;}\n",
        );
        let root = dir.join("rootfs");
        std::fs::create_dir_all(&root).unwrap();
        util::run_ok(
            Command::new("musl-gcc")
                .args(["-static", "-O2", "-o"])
                .arg(root.join("hello"))
                .arg(&src),
        );
        tar_rootfs(dir, &root)
    }

    /// The go-http example built statically, in a rootfs tar with `/app`.
    fn go_http_rootfs_tar(dir: &Path) -> PathBuf {
        util::require_tool("go", "apt-get install -y golang-go");
        let root = dir.join("rootfs");
        std::fs::create_dir_all(&root).unwrap();
        util::run_ok(
            Command::new("bash")
                .arg(util::repo_root().join("images/go-http/build.sh"))
                .arg(root.join("app"))
                .env("ARCH", "amd64"),
        );
        tar_rootfs(dir, &root)
    }

    /// `root` as `dir/rootfs.tar`.
    fn tar_rootfs(dir: &Path, root: &Path) -> PathBuf {
        let tar = dir.join("rootfs.tar");
        util::run_ok(
            Command::new("tar")
                .arg("-C")
                .arg(root)
                .arg("-cf")
                .arg(&tar)
                .arg("."),
        );
        tar
    }

    /// The go-http rootfs imported into `engine` as a fresh image whose
    /// entrypoint is `/app`; returns the name it was imported as.
    fn import_go_http(engine: &Engine, dir: &Path) -> String {
        let tar = go_http_rootfs_tar(dir);
        let image = unique("go-http");
        engine.run_ok(&[
            "import",
            "--change",
            "ENTRYPOINT [\"/app\"]",
            tar.to_str().unwrap(),
            &image,
        ]);
        image
    }

    /// `GET path` on the container `c` serving on `port`; the container and
    /// `image` are removed before the answer is returned (or the failure,
    /// with the container's output, panics).
    fn get_then_remove(
        engine: &Engine,
        c: Container,
        port: u16,
        path: &str,
        image: &str,
    ) -> (u16, String) {
        let got = http_get(port, path, Duration::from_secs(20));
        let logs = c.logs();
        drop(c);
        engine.remove_image(image);
        got.unwrap_or_else(|e| panic!("{e}\ncontainer output:\n{logs}"))
    }

    fn unique(name: &str) -> String {
        format!("dp-engines-{name}:{}", std::process::id())
    }

    /// import -> run -> save -> rmi -> load -> run, FROM scratch.
    fn import_save_load_run(engine: &Engine, image: &str, local_prefix: &str) {
        let dir = util::tmp();
        let tar = hello_rootfs_tar(dir.path());
        let tar = tar.to_str().unwrap();
        engine.run_ok(&["import", "--change", "ENTRYPOINT [\"/hello\"]", tar, image]);
        let run_name = format!("{local_prefix}{image}");
        let out = engine.run_ok(&["run", "--rm", "--network=none", &run_name]);
        assert_eq!(out, "hello from distroless-pack\n");

        let saved = dir.path().join("saved.tar");
        let saved = saved.to_str().unwrap();
        engine.run_ok(&["save", "-o", saved, &run_name]);
        engine.run_ok(&["rmi", &run_name]);
        let loaded = engine.run_ok(&["load", "-i", saved]);
        assert!(
            loaded.contains(image),
            "{} load printed {loaded:?}",
            engine.name()
        );
        let mut args = vec!["run", "--rm", "--network=none"];
        if engine.name() == "podman" {
            args.push("--pull=never");
        }
        args.push(&run_name);
        assert_eq!(engine.run_ok(&args), "hello from distroless-pack\n");
        engine.remove_image(&run_name);
    }

    #[test]
    fn docker_imports_loads_and_runs_a_scratch_image() {
        let docker = docker();
        let version = docker.run_ok(&["version", "--format", "{{.Server.Version}}"]);
        assert!(!version.trim().is_empty());
        import_save_load_run(&docker, &unique("hello"), "");
    }

    #[test]
    fn podman_imports_loads_and_runs_a_scratch_image() {
        let podman = podman();
        import_save_load_run(&podman, &unique("hello"), "localhost/");
    }

    #[test]
    fn docker_serves_http_with_host_network() {
        let docker = docker();
        let dir = util::tmp();
        let image = import_go_http(&docker, dir.path());
        let port = free_port();
        let c = docker.run_detached(&["--network=host", "-e", &format!("PORT={port}"), &image]);
        let (status, body) = get_then_remove(&docker, c, port, "/", &image);
        assert_eq!((status, body.as_str()), (200, "hello from go-http\n"));
    }

    #[test]
    fn podman_publishes_a_port() {
        let podman = podman();
        let dir = util::tmp();
        let image = import_go_http(&podman, dir.path());
        let port = free_port();
        let publish = format!("127.0.0.1:{port}:{port}");
        let env = format!("PORT={port}");
        let local = format!("localhost/{image}");
        let c = podman.run_detached(&["-p", &publish, "-e", &env, &local]);
        let (status, body) = get_then_remove(&podman, c, port, "/healthz", &local);
        assert_eq!((status, body.as_str()), (200, "ok\n"));
    }

    #[test]
    fn arm64_binaries_run_through_binfmt() {
        ensure_binfmt_arm64();
        util::require_tool("go", "apt-get install -y golang-go");
        let dir = util::tmp();
        util::write_file(
            dir.path(),
            "go.mod",
            b"module example.com/armhello\n\ngo 1.19\n",
        );
        util::write_file(
            dir.path(),
            "main.go",
            b"package main\n\nimport (\"fmt\"; \"runtime\")\n\nfunc main() { fmt.Println(\"hello from\", runtime.GOARCH) }\n",
        );
        let bin = dir.path().join("armhello");
        util::run_ok(
            Command::new("go")
                .args(["build", "-trimpath", "-o"])
                .arg(&bin)
                .arg(".")
                .current_dir(dir.path())
                .env("CGO_ENABLED", "0")
                .env("GOOS", "linux")
                .env("GOARCH", "arm64"),
        );
        assert_eq!(util::run_ok(&mut Command::new(&bin)), "hello from arm64\n");
    }
}
