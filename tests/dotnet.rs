//! Real .NET NativeAOT executables (published with the .NET 10 SDK, see
//! tests/fixtures/dotnet/README.md) through verify, pack and run: under
//! `distroless-pack run`, docker and podman, with the NativeAOT runtime
//! defaults (passwd entry, /tmp, working directory /app) and without them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support::{engines, registry};
use crate::util::{both, dp, repo_root, require_tool, run, run_ok, tmp};

/// A sample binary: `tests/fixtures/dotnet/<folder>/<file>`.
fn sample(rel: &str) -> PathBuf {
    let p = repo_root().join("tests/fixtures/dotnet").join(rel);
    assert!(p.is_file(), "fixture {} is missing", p.display());
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `distroless-pack pack BIN ARGS...` into `oci:DIR`; returns the layout.
fn pack_layout(dir: &Path, bin: &Path, extra: &[&str]) -> String {
    let layout = format!("oci:{}", s(&dir.join("oci")));
    run_ok(
        dp().arg("pack")
            .arg(bin)
            .args(extra)
            .args(["--output", &layout]),
    );
    layout
}

/// `distroless-pack run ARGS...` (stdout, stderr, exit code).
fn dp_run(args: &[&str]) -> (String, String, Option<i32>) {
    let out = run(dp().arg("run").args(args).stdin(Stdio::null()));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

/// The image config of an `oci:DIR` source, through `inspect --json`.
fn inspect_config(source: &str) -> Value {
    let out = run_ok(dp().args(["inspect", "--json", source]));
    let doc: Value = serde_json::from_str(&out).unwrap();
    doc["images"][0]["config"].clone()
}

fn unique(name: &str) -> String {
    format!("dp-dotnet-{name}:{}", std::process::id())
}

/// Packs `bin` into `engine` with `--load` under a fresh name.
fn load_into(engine: &engines::Engine, bin: &Path, name: &str, extra: &[&str]) {
    let mut c = dp();
    engine.apply(&mut c);
    run_ok(c.arg("pack").arg(bin).args(extra).args([
        "--tag",
        name,
        &format!("--load={}", engine.name()),
    ]));
}

/// A child process killed (and reaped) when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ------------------------------------------------------------ console apps

#[test]
fn console_static_prints_add_under_run_docker_and_podman() {
    let t = tmp();
    let bin = sample("console-static/console-static");
    let layout = pack_layout(t.path(), &bin, &[]);
    let (out, err, code) = dp_run(&[&layout]);
    assert_eq!(code, Some(0), "run: {err}");
    assert_eq!(out, "Hello, World!\nAdd(2,3)=5\n");

    let c = inspect_config(&layout);
    assert_eq!(c["workdir"], "/app", "{c}");
    assert_eq!(c["user"], "65532:65532", "{c}");

    for engine in [engines::docker(), engines::podman()] {
        let name = unique("console-static");
        load_into(&engine, &bin, &name, &[]);
        let out = engine.output(&["run", "--rm", "--pull=never", "--network=none", &name]);
        engine.remove_image(&name);
        assert!(out.status.success(), "{}: {}", engine.name(), both(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Hello, World!\nAdd(2,3)=5\n",
            "{}",
            engine.name()
        );
    }
}

#[test]
fn console_static_arm64_runs_under_qemu() {
    engines::ensure_binfmt_arm64();
    let t = tmp();
    let bin = sample("console-static-arm64/console-static-arm64");
    let layout = pack_layout(t.path(), &bin, &["--platform", "linux/arm64"]);
    let (out, err, code) = dp_run(&["--platform", "linux/arm64", &layout]);
    assert_eq!(code, Some(0), "run: {err}");
    assert_eq!(out, "Hello, World!\nAdd(2,3)=5\n");
}

#[test]
fn console_dynamic_is_refused_with_the_interpreter_finding() {
    let t = tmp();
    let dir = t.path().join("oci");
    let out = run(dp()
        .arg("pack")
        .arg(sample("console-dynamic/console-dynamic"))
        .args(["--output", &format!("oci:{}", s(&dir))]));
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[interpreter]") && err.contains("/lib64/ld-linux-x86-64.so.2"),
        "{err}"
    );
    assert!(!dir.exists(), "nothing is written for a refused binary");
}

// ------------------------------------------------------------ ICU

/// ICU 72's data as a `.dat` package, cut out of Debian's libicudata.so.72
/// (which ships no .dat): the bytes of the exported symbol `icudt72_dat`.
fn icu72_dat(dir: &Path) -> PathBuf {
    require_tool("nm", "apt-get install -y binutils");
    require_tool("icupkg", "apt-get install -y icu-devtools");
    let lib = Path::new("/usr/lib/x86_64-linux-gnu/libicudata.so.72");
    assert!(
        lib.is_file(),
        "{} is missing: apt-get install -y libicu72",
        lib.display()
    );
    let syms = run_ok(Command::new("nm").args(["-D", "-S"]).arg(lib));
    let line = syms
        .lines()
        .find(|l| l.ends_with(" icudt72_dat"))
        .unwrap_or_else(|| panic!("no icudt72_dat in {}:\n{syms}", lib.display()));
    let f: Vec<&str> = line.split_whitespace().collect();
    let addr = u64::from_str_radix(f[0], 16).unwrap();
    let size = u64::from_str_radix(f[1], 16).unwrap();
    // The symbol's address is its file offset: the read-only LOAD segment
    // maps offset = address (`readelf -l`); icupkg proves the cut is valid.
    let bytes = std::fs::read(lib).unwrap();
    let dat = dir.join("icudt72l.dat");
    std::fs::write(&dat, &bytes[addr as usize..(addr + size) as usize]).unwrap();
    let listed = run_ok(Command::new("icupkg").arg("-l").arg(&dat));
    assert!(listed.lines().count() > 1000, "{listed}");
    dat
}

#[test]
fn icuneed_is_refused_with_the_icu_finding() {
    let t = tmp();
    let dir = t.path().join("oci");
    let out = run(dp()
        .arg("pack")
        .arg(sample("console-static-needs-icu/icuneed"))
        .args(["--output", &format!("oci:{}", s(&dir))]));
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[icu-library]") && err.contains("Couldn't find a valid ICU package"),
        "{err}"
    );
    assert!(!dir.exists(), "nothing is written for a refused binary");
}

/// Why verify's refusal is final for this binary: it was published with
/// globalization on and no ICU linked, so it dlopens libicuuc.so.NN. A .dat
/// file cannot help (only ICU's code reads it, and none is linked in), and
/// the invariant switch was compiled in as `false`, so the environment
/// variable is not consulted. Both packed anyway, both abort as verify said.
#[test]
fn icuneed_is_not_rescued_by_icu_data_or_the_invariant_environment_variable() {
    let t = tmp();
    let dat = icu72_dat(t.path());
    let bin = sample("console-static-needs-icu/icuneed");
    for (what, extra) in [
        (
            "--icu-data",
            vec!["--icu-data".to_string(), s(&dat).to_string()],
        ),
        (
            "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1",
            vec![
                "--env".to_string(),
                "DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1".to_string(),
            ],
        ),
    ] {
        let d = tmp();
        let mut args: Vec<&str> = vec!["--no-verify"];
        args.extend(extra.iter().map(String::as_str));
        let layout = pack_layout(d.path(), &bin, &args);
        let (out, err, code) = dp_run(&[&layout]);
        // 139, not the 134 of abort() outside a container: the program is
        // PID 1 of its own PID namespace under `run` (as under docker,
        // which gives 139 too), where the kernel does not deliver the
        // SIGABRT, and the runtime's fail-fast ends in SIGSEGV.
        assert_eq!(code, Some(139), "{what}: {out}{err}");
        assert_eq!(
            out, "icu-needing app: formatting a date for fr-FR\n",
            "{what}"
        );
        assert!(
            err.contains("Couldn't find a valid ICU package installed on the system"),
            "{what}: {err}"
        );
    }
}

// ------------------------------------------------------------ the probe

/// `openssl s_server -www` on 127.0.0.1 with a certificate from a private
/// CA made here. Returns the server, its port and the CA certificate.
fn tls_server(dir: &Path) -> (Killed, u16, PathBuf) {
    require_tool("openssl", "apt-get install -y openssl");
    let (ca, cert, key) = registry::make_tls_certs(dir);
    let port = engines::free_port();
    let child = Command::new("openssl")
        .args(["s_server", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start openssl s_server");
    let server = Killed(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "openssl s_server did not listen on 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (server, port, ca)
}

/// The probe's lines that do not depend on the image's files (invariant
/// globalization, no tzdata), each checked exactly.
const PROBE_FIXED: &[(&str, &str)] = &[
    ("add", "Add(2,3)=5"),
    ("invariant-switch", "True"),
    ("current-culture", "''"),
    ("de-DE N2", "EXC System.Globalization.CultureNotFoundException: Only the invariant culture is supported in globalization-invariant mode. See https://aka.ms/GlobalizationInvariantMode for more information. (Parameter 'name') de-DE is an invalid culture identifier."),
    ("tr-TR ToUpper(i)", "EXC System.Globalization.CultureNotFoundException: Only the invariant culture is supported in globalization-invariant mode. See https://aka.ms/GlobalizationInvariantMode for more information. (Parameter 'name') tr-tr is an invalid culture identifier."),
    ("invariant N2", "1,234,567.89"),
    ("invariant compare", "Compare(\"a\",\"B\")=31 Compare(\"\u{e4}\",\"a\\u0308\")=131 ToUpperInvariant(\"\u{df}\u{e9}i\")=\u{df}\u{c9}I IndexOf(\"\u{c5}\",\"A\\u030A\")=-1"),
    ("tz Europe/Berlin", "EXC System.TimeZoneNotFoundException: The time zone ID 'Europe/Berlin' was not found on the local computer. --> System.IO.DirectoryNotFoundException: Could not find a part of the path '/usr/share/zoneinfo/Europe/Berlin'."),
    ("tz local", "UTC 00:00:00"),
];

/// The probe's output as (check, result) in order; every line must be one.
fn probe_lines(out: &str) -> Vec<(String, String)> {
    out.lines()
        .map(|l| {
            let (k, v) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("not a probe line: {l:?}\n{out}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A probe line's name and the test its result must pass.
type Expect<'a> = (&'a str, &'a dyn Fn(&str) -> bool);

/// Checks every line of one probe run. `expect` gives the lines that depend
/// on the image (dns, username, tempfile, https) as a predicate each.
fn check_probe(where_: &str, out: &str, expect: &[Expect<'_>]) {
    let lines = probe_lines(out);
    let names: Vec<&str> = lines.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "runtime",
            "add",
            "invariant-switch",
            "current-culture",
            "de-DE N2",
            "tr-TR ToUpper(i)",
            "invariant N2",
            "invariant compare",
            "tz Europe/Berlin",
            "tz local",
            "dns localhost",
            "username",
            "tempfile",
            "https"
        ],
        "{where_}: {out}"
    );
    let get = |k: &str| &lines.iter().find(|(n, _)| n == k).unwrap().1;
    assert!(
        get("runtime").starts_with(".NET 10.0.12 | linux-x64 | Linux "),
        "{where_}: {}",
        get("runtime")
    );
    for (k, v) in PROBE_FIXED {
        assert_eq!(get(k), v, "{where_}: line {k:?}");
    }
    for (k, ok) in expect {
        assert!(ok(get(k)), "{where_}: line {k:?} is {:?}\n{out}", get(k));
    }
}

fn loopback_only(v: &str) -> bool {
    !v.starts_with("EXC")
        && v.split(',').any(|a| a == "127.0.0.1")
        && v.split(',').all(|a| a == "127.0.0.1" || a == "::1")
}

#[test]
fn probe_with_nativeaot_defaults_and_a_private_ca_passes_every_check() {
    let t = tmp();
    let (_server, port, ca) = tls_server(t.path());
    let url = format!("PROBE_URL=https://127.0.0.1:{port}/");
    let bin = sample("probe-static/Probe");
    let ca_arg = format!("--ca-certs={}", s(&ca));
    let layout = pack_layout(t.path(), &bin, &[&ca_arg]);

    let c = inspect_config(&layout);
    assert_eq!(c["workdir"], "/app", "{c}");
    assert_eq!(
        c["env"],
        serde_json::json!(["SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"])
    );

    let https_ok = |v: &str| {
        v.starts_with("200 OK, ")
            && v.ends_with(" chars, SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt")
    };
    let expect: [Expect<'_>; 4] = [
        ("dns localhost", &loopback_only),
        ("username", &|v: &str| v == "'nonroot'"),
        ("tempfile", &|v: &str| v == "/tmp/ wrote+read 5 bytes"),
        ("https", &https_ok),
    ];

    let (out, err, code) = dp_run(&["--network", "host", "-e", &url, &layout]);
    assert_eq!(code, Some(0), "run: {err}");
    check_probe("distroless-pack run", &out, &expect);

    for engine in [engines::docker(), engines::podman()] {
        let name = unique("probe");
        load_into(&engine, &bin, &name, &[&ca_arg]);
        let out = engine.output(&[
            "run",
            "--rm",
            "--pull=never",
            "--network=host",
            "-e",
            &url,
            &name,
        ]);
        engine.remove_image(&name);
        assert!(out.status.success(), "{}: {}", engine.name(), both(&out));
        check_probe(
            engine.name(),
            &String::from_utf8_lossy(&out.stdout),
            &expect,
        );
    }
}

/// Packed with the old settings, the probe fails exactly where the image
/// lacks what verify warned about: the user lookup (verify: user lookups
/// fail in a static glibc binary) and the temp file (no /tmp); time zones
/// fail in both (verify: no zoneinfo). Name lookup and HTTPS still work,
/// because the engine (and `run`) provide /etc/hosts and HOME=/.
#[test]
fn probe_without_runtime_defaults_fails_where_verify_predicted() {
    let t = tmp();
    let (_server, port, ca) = tls_server(t.path());
    let url = format!("PROBE_URL=https://127.0.0.1:{port}/");
    let bin = sample("probe-static/Probe");
    let ca_arg = format!("--ca-certs={}", s(&ca));
    let layout = pack_layout(t.path(), &bin, &["--no-runtime-defaults", &ca_arg]);

    let user_fails = |v: &str| v == "EXC System.IO.IOException: No such file or directory";
    let tmp_fails = |v: &str| {
        v.starts_with(
            "EXC System.IO.DirectoryNotFoundException: Could not find a part of the path '/tmp/probe-",
        )
    };
    let https_ok = |v: &str| v.starts_with("200 OK, ");
    let expect: [Expect<'_>; 4] = [
        ("dns localhost", &loopback_only),
        ("username", &user_fails),
        ("tempfile", &tmp_fails),
        ("https", &https_ok),
    ];
    let (out, err, code) = dp_run(&["--network", "host", "-e", &url, &layout]);
    assert_eq!(code, Some(0), "run: {err}");
    check_probe("distroless-pack run, no defaults", &out, &expect);

    let engine = engines::docker();
    let name = unique("probe-nodefaults");
    load_into(&engine, &bin, &name, &["--no-runtime-defaults", &ca_arg]);
    let out = engine.output(&[
        "run",
        "--rm",
        "--pull=never",
        "--network=host",
        "-e",
        &url,
        &name,
    ]);
    engine.remove_image(&name);
    assert!(out.status.success(), "docker: {}", both(&out));
    check_probe(
        "docker, no defaults",
        &String::from_utf8_lossy(&out.stdout),
        &expect,
    );

    // What verify predicted for this binary: each failure above has its
    // finding (ids from docs/commands/verify.md), and nothing is an error.
    let v = run(dp().args(["verify", "--json"]).arg(&bin));
    let doc: Value = serde_json::from_slice(&v.stdout).unwrap();
    let findings = doc["files"][0]["findings"].as_array().unwrap().clone();
    let text = |f: &Value| {
        format!(
            "{} {} {}",
            f["message"].as_str().unwrap_or(""),
            f["consequence"].as_str().unwrap_or(""),
            f["fix"].as_str().unwrap_or("")
        )
    };
    assert!(
        findings
            .iter()
            .any(|f| { f["severity"] != "info" && text(f).contains("user") }),
        "verify predicts failing user lookups: {findings:#?}"
    );
    assert!(
        findings.iter().any(|f| text(f).contains("zoneinfo")),
        "verify predicts missing time zones: {findings:#?}"
    );
    assert_eq!(doc["files"][0]["errors"], 0, "{findings:#?}");
    let severity_of = |id: &str| {
        findings
            .iter()
            .find(|f| f["id"] == id)
            .map(|f| f["severity"].as_str().unwrap_or("").to_string())
    };
    // The user lookup (and the host lookups the engines answer).
    assert_eq!(
        severity_of("nativeaot-glibc-static").as_deref(),
        Some("warning"),
        "{findings:#?}"
    );
    // The temp file, and the time zones the probe asks for.
    assert_eq!(
        severity_of("temp-files").as_deref(),
        Some("info"),
        "{findings:#?}"
    );
    assert_eq!(
        severity_of("tzdata").as_deref(),
        Some("info"),
        "{findings:#?}"
    );
}

// ------------------------------------------------------------ the web app

/// `GET /todos` answered with the template's five todos.
fn assert_todos(where_: &str, reply: Result<(u16, String), String>, logs: impl Fn() -> String) {
    let (status, body) = reply.unwrap_or_else(|e| panic!("{where_}: {e}\n{}", logs()));
    assert_eq!(status, 200, "{where_}: {body}");
    let todos: Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{where_}: {e}: {body}"));
    let todos = todos.as_array().unwrap();
    assert_eq!(todos.len(), 5, "{where_}: {body}");
    assert_eq!(todos[0]["title"], "Walk the dog", "{where_}: {body}");
}

#[test]
fn webapiaot_static_answers_todos_from_run_docker_and_podman() {
    let t = tmp();
    let bin = sample("webapiaot-static/webapi-static");
    let pack_args = ["--port", "8080", "--env", "ASPNETCORE_URLS=http://+:8080"];
    let layout = pack_layout(t.path(), &bin, &pack_args);
    assert_eq!(inspect_config(&layout)["workdir"], "/app");

    // distroless-pack run, on the host's network, on a port of its own.
    let port = engines::free_port();
    let urls = format!("ASPNETCORE_URLS=http://127.0.0.1:{port}");
    let child = dp()
        .args(["run", "--network", "host", "-e", &urls, &layout])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start distroless-pack run");
    let server = Killed(child);
    let reply = engines::http_get(port, "/todos", Duration::from_secs(30));
    drop(server);
    assert_todos("distroless-pack run", reply, String::new);

    for engine in [engines::docker(), engines::podman()] {
        let name = unique("webapi");
        load_into(&engine, &bin, &name, &pack_args);
        let port = engines::free_port();
        let c = engine.run_detached(&[
            "--rm",
            "--pull=never",
            "-p",
            &format!("127.0.0.1:{port}:8080"),
            &name,
        ]);
        let reply = engines::http_get(port, "/todos", Duration::from_secs(30));
        let logs = c.logs();
        drop(c);
        engine.remove_image(&name);
        assert_todos(engine.name(), reply, || logs.clone());
    }
}
