//! `distroless-pack verify` on real binaries from every toolchain the project
//! targets, on binaries that are wrong in one way each, and on input that is
//! not a readable ELF file. The verdicts are also checked against reality:
//! what verify passes runs in an empty root, what it fails does not.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::corpus;
use crate::util::{self, both, dp};

/// Runs `verify --json [--platform P] FILE` and returns the exit code, the
/// document and the raw output.
fn verify_json(file: &Path, platform: Option<&str>) -> (i32, Value, Output) {
    let mut cmd = dp();
    cmd.arg("verify").arg("--json");
    if let Some(p) = platform {
        cmd.args(["--platform", p]);
    }
    let out = util::run(cmd.arg(file));
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--json output is not JSON ({e}):\n{}", both(&out)));
    (out.status.code().unwrap_or(-1), doc, out)
}

fn ids(file: &Value, severity: &str) -> Vec<String> {
    let mut v: Vec<String> = file["findings"]
        .as_array()
        .expect("findings array")
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// Verifies `file` and checks the exit code and the exact sets of error and
/// warning ids; returns the file's JSON object for further checks.
#[track_caller]
fn expect(file: &Path, platform: Option<&str>, errors: &[&str], warnings: &[&str]) -> Value {
    let (code, doc, out) = verify_json(file, platform);
    assert_eq!(doc["schema_version"], 1, "{}", both(&out));
    let files = doc["files"].as_array().expect("files array");
    assert_eq!(files.len(), 1);
    let f = files[0].clone();
    assert_eq!(f["path"], file.display().to_string());
    let mut want_e: Vec<String> = errors.iter().map(|s| s.to_string()).collect();
    let mut want_w: Vec<String> = warnings.iter().map(|s| s.to_string()).collect();
    want_e.sort();
    want_w.sort();
    assert_eq!(
        ids(&f, "error"),
        want_e,
        "error ids of {}:\n{}",
        file.display(),
        both(&out)
    );
    assert_eq!(
        ids(&f, "warning"),
        want_w,
        "warning ids of {}:\n{}",
        file.display(),
        both(&out)
    );
    let want_code = if errors.is_empty() { 0 } else { 1 };
    assert_eq!(
        code,
        want_code,
        "exit code for {}:\n{}",
        file.display(),
        both(&out)
    );
    let verdict = match (errors.is_empty(), warnings.is_empty()) {
        (false, _) => "fail",
        (true, false) => "warn",
        (true, true) => "pass",
    };
    assert_eq!(f["verdict"], verdict);
    assert!(
        out.stderr.is_empty(),
        "stderr should be empty:\n{}",
        both(&out)
    );
    for finding in f["findings"].as_array().unwrap() {
        assert!(finding["message"].as_str().is_some_and(|m| !m.is_empty()));
        if finding["severity"] != "info" {
            assert!(
                finding["consequence"].is_string(),
                "no consequence: {finding}"
            );
            assert!(finding["fix"].is_string(), "no fix: {finding}");
        }
    }
    f
}

// ------------------------------------------------------------ good binaries

#[test]
fn verify_musl_static_passes() {
    let f = expect(&corpus::musl_static_hello(), None, &[], &[]);
    let s = &f["summary"];
    assert_eq!(s["linkage"], "static");
    assert_eq!(s["file_type"], "exec");
    assert_eq!(s["libc"], "musl");
    assert_eq!(s["toolchain"], "c");
    assert_eq!(s["machine"], "x86-64");
    assert_eq!(s["e_machine"], 62);
    assert!(s["interpreter"].is_null());
    assert_eq!(s["needed"], serde_json::json!([]));
    assert_eq!(s["executable_stack"], false);
}

#[test]
fn verify_musl_static_pie_passes() {
    let f = expect(&corpus::musl_static_pie_hello(), None, &[], &[]);
    assert_eq!(f["summary"]["linkage"], "static-pie");
    assert_eq!(f["summary"]["file_type"], "dyn");
    assert_eq!(f["summary"]["libc"], "musl");
    assert!(f["summary"]["build_id"]
        .as_str()
        .is_some_and(|b| b.len() == 40));
}

#[test]
fn verify_go_static_passes() {
    let f = expect(&corpus::go_static_hello(), None, &[], &[]);
    let s = &f["summary"];
    assert_eq!(s["toolchain"], "go");
    assert_eq!(s["libc"], "none");
    assert_eq!(s["linkage"], "static");
    assert_eq!(s["go"]["cgo_enabled"], false);
    assert!(
        s["go"]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("go1.")),
        "{s}"
    );
}

#[test]
fn verify_rust_glibc_crt_static_passes() {
    let f = expect(&corpus::rust_glibc_static_hello(), None, &[], &[]);
    let s = &f["summary"];
    assert_eq!(s["linkage"], "static-pie");
    assert_eq!(s["libc"], "glibc");
    assert_eq!(s["toolchain"], "rust");
    assert_eq!(s["relro"], "full");
}

#[test]
fn verify_arm64_binary_for_its_own_platform() {
    let bin = corpus::go_arm64_hello();
    let f = expect(&bin, Some("linux/arm64"), &[], &[]);
    assert_eq!(f["platform"], "linux/arm64");
    assert_eq!(f["summary"]["machine"], "aarch64");
    assert_eq!(f["summary"]["e_machine"], 183);
    let f = expect(&bin, Some("linux/amd64"), &["wrong-architecture"], &[]);
    let w = &f["findings"][0];
    assert_eq!(w["consequence"], "exec /app: exec format error");
    assert!(
        w["fix"]
            .as_str()
            .unwrap()
            .contains("--platform linux/arm64"),
        "{w}"
    );
}

#[test]
fn verify_zig_arm64_c_binary_passes_for_arm64() {
    let f = expect(&corpus::zig_arm64_c_hello(), Some("linux/arm64"), &[], &[]);
    let s = &f["summary"];
    assert_eq!(s["machine"], "aarch64");
    assert_eq!(s["libc"], "musl");
    assert_eq!(s["linkage"], "static");
    assert_eq!(s["toolchain"], "c");
}

#[test]
fn verify_defaults_to_the_host_platform() {
    // This machine is amd64 (the corpus is built for it).
    let (_, doc, _) = verify_json(&corpus::musl_static_hello(), None);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(doc["files"][0]["platform"], format!("linux/{arch}"));
}

// ------------------------------------------------------------ warnings

#[test]
fn verify_glibc_static_getaddrinfo_warns_about_nss() {
    let f = expect(
        &corpus::glibc_static_getaddrinfo(),
        None,
        &[],
        &["glibc-nss"],
    );
    assert_eq!(f["summary"]["libc"], "glibc");
    let nss = f["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "glibc-nss")
        .unwrap();
    assert!(
        nss["message"].as_str().unwrap().contains("getaddrinfo"),
        "{nss}"
    );
}

#[test]
fn verify_x86_64_v3_warns_about_isa_level() {
    let f = expect(&corpus::musl_x86_64_v3_hello(), None, &[], &["isa-level"]);
    assert_eq!(f["summary"]["isa_level"], "x86-64-v3");
    let f = expect(&corpus::go_amd64_v3_hello(), None, &[], &["isa-level"]);
    assert_eq!(f["summary"]["go"]["goamd64"], "v3");
}

// ------------------------------------------------------------ errors

#[test]
fn verify_report_never_prints_raw_control_bytes_from_the_file() {
    // A dynamic binary whose interpreter path starts with a terminal escape
    // and an invalid UTF-8 byte.
    let mut bytes = std::fs::read(corpus::glibc_dynamic_hello()).unwrap();
    let interp = b"/lib64/ld-linux-x86-64.so.2";
    let at = bytes
        .windows(interp.len())
        .position(|w| w == interp)
        .expect("interpreter path");
    bytes[at..at + 6].copy_from_slice(b"\x1b[31m\xff");
    let d = util::tmp();
    let bin = d.path().join("evil");
    std::fs::write(&bin, &bytes).unwrap();
    let out = util::run(dp().arg("verify").arg(&bin));
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let text = String::from_utf8(out.stdout).expect("the report is UTF-8");
    assert!(!text.contains('\x1b'), "raw escape in the report: {text:?}");
    assert!(text.contains("\\u{1b}[31m"), "{text}");
}

#[test]
fn verify_glibc_dynamic_fails_with_interpreter_and_libraries() {
    let bin = corpus::glibc_dynamic_hello();
    let f = expect(&bin, None, &["interpreter", "needed-library"], &[]);
    assert_eq!(f["summary"]["linkage"], "dynamic");
    assert_eq!(f["summary"]["interpreter"], "/lib64/ld-linux-x86-64.so.2");
    assert_eq!(f["summary"]["needed"], serde_json::json!(["libc.so.6"]));

    // The human report: verdict, facts, and each finding with consequence and fix.
    let out = util::run(dp().arg("verify").arg(&bin));
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with(&format!("{}: FAIL: 2 errors", bin.display())),
        "{text}"
    );
    assert!(
        lines[1].contains("dynamic") && lines[1].contains("libc glibc"),
        "{text}"
    );
    assert!(
        text.contains(
            "error   [interpreter] needs the program interpreter /lib64/ld-linux-x86-64.so.2"
        ),
        "{text}"
    );
    assert!(
        text.contains("in a scratch container: exec /app: no such file or directory"),
        "{text}"
    );
    assert!(
        text.contains("in a scratch container: error while loading shared libraries: libc.so.6"),
        "{text}"
    );
    assert!(text.contains("fix: link statically"), "{text}");
}

#[test]
fn verify_go_pie_fails_with_interpreter() {
    let f = expect(&corpus::go_pie_hello(), None, &["interpreter"], &[]);
    let msg = f["findings"][0]["message"].as_str().unwrap();
    assert!(msg.contains("-buildmode=pie"), "{msg}");
    assert!(f["findings"][0]["fix"]
        .as_str()
        .unwrap()
        .contains("CGO_ENABLED=0"));
}

#[test]
fn verify_shared_library_is_refused() {
    let f = expect(
        &corpus::shared_library(),
        None,
        &["needed-library", "shared-library"],
        &[],
    );
    assert_eq!(f["summary"]["soname"], "libhello.so.1");
}

#[test]
fn verify_object_file_is_refused() {
    expect(&corpus::object_file(), None, &["object-file"], &[]);
}

#[test]
fn verify_executable_stack_fails() {
    let f = expect(
        &corpus::musl_execstack_hello(),
        None,
        &["executable-stack"],
        &[],
    );
    assert_eq!(f["summary"]["executable_stack"], true);
}

#[test]
fn verify_rwx_segment_fails() {
    expect(
        &corpus::musl_rwx_segment(),
        None,
        &["writable-executable-segment"],
        &[],
    );
}

#[test]
fn verify_text_relocations_fail() {
    expect(
        &corpus::musl_static_pie_textrel(),
        None,
        &["text-relocations"],
        &[],
    );
}

#[test]
fn verify_rpath_in_static_pie_fails() {
    let f = expect(&corpus::musl_static_pie_rpath(), None, &["rpath"], &[]);
    assert_eq!(f["summary"]["rpath"], serde_json::json!(["/opt/lib"]));
}

#[test]
fn verify_nativeaot_that_dlopens_icu_and_openssl_fails() {
    let f = expect(
        &corpus::nativeaot_lookalike(),
        None,
        &["icu-library"],
        &["openssl-library", "stack-size"],
    );
    assert_eq!(f["summary"]["toolchain"], "dotnet-nativeaot");
    assert_eq!(f["summary"]["libc"], "musl");
    let fixes: String = f["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["fix"].to_string())
        .collect();
    assert!(fixes.contains("InvariantGlobalization"), "{fixes}");
    assert!(fixes.contains("StaticICULinking"), "{fixes}");
    assert!(fixes.contains("StaticOpenSslLinking"), "{fixes}");
    assert!(fixes.contains("--openssl static"), "{fixes}");
}

// ------------------------------------------------- .NET NativeAOT, real SDK output

/// The info ids of a file object, sorted.
fn info_ids(f: &Value) -> Vec<String> {
    ids(f, "info")
}

fn finding<'a>(f: &'a Value, id: &str) -> &'a Value {
    f["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .unwrap_or_else(|| panic!("no {id} finding: {f}"))
}

/// What every sample's summary says: NativeAOT, .NET 10.0.12 from `.comment`.
#[track_caller]
fn assert_dotnet_10_0_12(f: &Value) -> &Value {
    let s = &f["summary"];
    assert_eq!(s["toolchain"], "dotnet-nativeaot", "{s}");
    assert_eq!(s["libc"], "glibc", "{s}");
    let d = &s["dotnet"];
    assert_eq!(d["runtime_version"], "10.0.12", "{d}");
    assert_eq!(
        d["ilc_version"],
        "10.0.12-servicing.26422.108+95017c711e6afc1085133d440e42b4bd78155701"
    );
    assert_eq!(d["method_names"], true, "{d}");
    d
}

#[test]
fn verify_dotnet_console_dynamic_fails_with_interpreter() {
    let bin = corpus::dotnet_sample("console-dynamic/console-dynamic");
    let f = expect(&bin, None, &["interpreter", "needed-library"], &[]);
    assert_eq!(info_ids(&f), ["debuglink"]);
    let d = assert_dotnet_10_0_12(&f);
    assert_eq!(d["globalization"], "icu-loaded");
    let fix = finding(&f, "interpreter")["fix"].as_str().unwrap();
    assert!(fix.contains("StaticExecutable"), "{fix}");
    let out = util::run(dp().arg("verify").arg(&bin));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("toolchain dotnet-nativeaot (.NET 10.0.12)"),
        "{text}"
    );
}

/// The blog recipe (static glibc, invariant, static OpenSSL): a hello world
/// that looks up nothing passes with no warning, as plain static, as
/// static-pie and on arm64.
#[test]
fn verify_dotnet_console_static_passes_without_lookup_warnings() {
    for (rel, platform, linkage) in [
        ("console-static/console-static", None, "static"),
        ("console-static-pie/console-static", None, "static-pie"),
        (
            "console-static-arm64/console-static-arm64",
            Some("linux/arm64"),
            "static",
        ),
    ] {
        let bin = corpus::dotnet_sample(rel);
        let f = expect(&bin, platform, &[], &[]);
        assert_eq!(info_ids(&f), ["debuglink"], "{rel}");
        assert_eq!(f["summary"]["linkage"], linkage, "{rel}");
        let d = assert_dotnet_10_0_12(&f);
        assert_eq!(d["globalization"], "invariant", "{rel}");
        assert_eq!(d["openssl"], "none", "{rel}");
        assert_eq!(d["uses"], serde_json::json!([]), "{rel}");
    }
    let arm = corpus::dotnet_sample("console-static-arm64/console-static-arm64");
    expect(&arm, Some("linux/amd64"), &["wrong-architecture"], &[]);
}

#[test]
fn verify_dotnet_static_without_icu_or_invariant_mode_fails() {
    let bin = corpus::dotnet_sample("console-static-needs-icu/icuneed");
    let f = expect(&bin, None, &["icu-library"], &[]);
    assert_eq!(info_ids(&f), ["debuglink", "tzdata"]);
    let d = assert_dotnet_10_0_12(&f);
    assert_eq!(d["globalization"], "icu-loaded");
    let icu = finding(&f, "icu-library");
    let seen = icu["consequence"].as_str().unwrap();
    assert!(seen.contains("exit 134"), "{seen}");
    assert!(
        seen.contains("Couldn't find a valid ICU package installed on the system"),
        "{seen}"
    );
    let fix = icu["fix"].as_str().unwrap();
    for flag in ["--globalization invariant", "static-icu", "--icu-data"] {
        assert!(fix.contains(flag), "{flag}: {fix}");
    }
}

/// The capability probe: Dns, Environment.UserName, HTTPS (static
/// OpenSSL), time zones, temp files; each with what it printed in an
/// empty root and the fix.
#[test]
fn verify_dotnet_probe_warns_about_lookups_and_lists_files() {
    let bin = corpus::dotnet_sample("probe-static/Probe");
    let f = expect(&bin, None, &[], &["nativeaot-glibc-static"]);
    assert_eq!(
        info_ids(&f),
        ["ca-certificates", "debuglink", "temp-files", "tzdata"]
    );
    let d = assert_dotnet_10_0_12(&f);
    assert_eq!(d["globalization"], "invariant");
    assert_eq!(d["openssl"], "linked");
    assert_eq!(
        d["uses"],
        serde_json::json!([
            "host-lookup",
            "user-lookup",
            "home-directory",
            "tls-chain",
            "time-zones",
            "temp-files"
        ])
    );
    let w = finding(&f, "nativeaot-glibc-static");
    let seen = w["consequence"].as_str().unwrap();
    for text in [
        "System.Net.Sockets.SocketException: Resource temporarily unavailable",
        "Environment.UserName throws System.IO.IOException: No such file or directory",
        "The SSL connection could not be established, see inner exception. --> System.IO.IOException: No such file or directory",
    ] {
        assert!(seen.contains(text), "{text}: {seen}");
    }
    let fix = w["fix"].as_str().unwrap();
    assert!(
        fix.contains("--passwd") && fix.contains("/etc/hosts"),
        "{fix}"
    );
    let tz = finding(&f, "tzdata");
    assert!(tz["consequence"]
        .as_str()
        .unwrap()
        .contains("TimeZoneNotFoundException: The time zone ID 'Europe/Berlin' was not found"));
    assert!(tz["fix"].as_str().unwrap().contains("--tzdata"));
    let tmp = finding(&f, "temp-files");
    assert!(tmp["consequence"]
        .as_str()
        .unwrap()
        .contains("DirectoryNotFoundException"));
    assert!(finding(&f, "ca-certificates")["fix"]
        .as_str()
        .unwrap()
        .contains("--ca-certs"));
}

/// The webapiaot template, static: serves HTTP, no outbound HTTPS, no host
/// or user lookups; DateTime.Now uses the local time zone.
#[test]
fn verify_dotnet_webapi_passes_with_tzdata_info() {
    let bin = corpus::dotnet_sample("webapiaot-static/webapi-static");
    let f = expect(&bin, None, &[], &[]);
    assert_eq!(info_ids(&f), ["debuglink", "tzdata"]);
    let d = assert_dotnet_10_0_12(&f);
    assert_eq!(d["openssl"], "linked");
    assert_eq!(d["uses"], serde_json::json!(["time-zones"]));
}

#[test]
fn verify_dotnet_truncated_binary_is_refused() {
    expect_unreadable(
        &corpus::dotnet_truncated(),
        "malformed ELF file: section header table",
    );
}

#[test]
fn verify_dotnet_corrupt_comment_keeps_the_verdict_without_a_version() {
    let f = expect(&corpus::dotnet_corrupt_comment(), None, &[], &[]);
    let s = &f["summary"];
    assert_eq!(s["toolchain"], "dotnet-nativeaot");
    assert!(s["dotnet"]["runtime_version"].is_null(), "{s}");
    assert!(s["dotnet"]["ilc_version"].is_null(), "{s}");
    for c in s["compiler"].as_array().unwrap() {
        assert!(c.as_str().unwrap().chars().count() <= 201, "{c}");
    }
}

#[test]
fn verify_dotnet_huge_managedcode_size_is_refused() {
    expect_unreadable(
        &corpus::dotnet_huge_managedcode(),
        "(__managedcode) at offset",
    );
    expect_unreadable(
        &corpus::dotnet_huge_managedcode(),
        "with 4611686018427387904 bytes extends past the end of the file",
    );
}

// ------------------------------------------------------------ ground truth

/// Runs `bin` as /app in an otherwise empty root directory.
fn run_in_empty_root(bin: &Path) -> Output {
    let chroot = util::require_tool("chroot", "apt-get install -y coreutils");
    let root = util::tmp();
    fs::copy(bin, root.path().join("app")).unwrap();
    util::run(Command::new(chroot).arg(root.path()).arg("/app"))
}

#[test]
fn verify_verdicts_match_running_in_an_empty_root() {
    let passing: Vec<PathBuf> = vec![
        corpus::musl_static_hello(),
        corpus::musl_static_pie_hello(),
        corpus::go_static_hello(),
        corpus::rust_glibc_static_hello(),
        corpus::glibc_static_getaddrinfo(),
        corpus::nativeaot_lookalike(), // its errors are about ICU/OpenSSL use, not start-up
    ];
    for bin in &passing {
        let out = run_in_empty_root(bin);
        assert!(
            out.status.success(),
            "{} should run in an empty root:\n{}",
            bin.display(),
            both(&out)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), corpus::HELLO);
    }
    let failing = [
        corpus::glibc_dynamic_hello(),
        corpus::go_pie_hello(),
        corpus::musl_static_pie_textrel(),
    ];
    for bin in &failing {
        let (code, _, _) = verify_json(bin, None);
        assert_eq!(code, 1, "{} should fail verify", bin.display());
        let out = run_in_empty_root(bin);
        assert!(
            !out.status.success(),
            "{} unexpectedly ran in an empty root:\n{}",
            bin.display(),
            both(&out)
        );
        assert!(!String::from_utf8_lossy(&out.stdout).contains(corpus::HELLO));
    }
}

// ------------------------------------------------------------ several files

#[test]
fn verify_several_files_reports_each_and_exits_with_the_worst() {
    let good = corpus::musl_static_hello();
    let bad = corpus::glibc_dynamic_hello();
    let out = util::run(dp().arg("verify").arg(&good).arg(&bad));
    assert_eq!(out.status.code(), Some(1), "{}", both(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("{}: PASS", good.display())),
        "{text}"
    );
    assert!(text.contains(&format!("{}: FAIL", bad.display())), "{text}");

    let (code, doc, _) = verify_json(&good, None);
    assert_eq!(code, 0);
    assert_eq!(doc["files"][0]["verdict"], "pass");

    // An unreadable file among readable ones: the others are still reported,
    // the unreadable one gets a line on stderr, and the exit code is 2.
    let tmp = util::tmp();
    let missing = tmp.path().join("missing");
    let out = util::run(
        dp().args(["verify", "--json"])
            .arg(&good)
            .arg(&missing)
            .arg(&bad),
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = doc["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    assert_eq!(files[0]["verdict"], "pass");
    assert_eq!(files[1]["verdict"], "unreadable");
    assert_eq!(files[1]["path"], missing.display().to_string());
    assert!(
        files[1]["error"].as_str().unwrap().contains("No such file"),
        "{}",
        files[1]
    );
    assert_eq!(files[2]["verdict"], "fail");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "distroless-pack: error: {}: cannot read",
            missing.display()
        )),
        "{stderr}"
    );
}

// ------------------------------------------------------------ bad input

/// Checks that verifying `file` exits 2 with exactly one stderr line
/// `distroless-pack: error: FILE: ...` containing `needle`, and no panic.
#[track_caller]
fn expect_unreadable(file: &Path, needle: &str) {
    for json in [false, true] {
        let mut cmd = dp();
        cmd.arg("verify");
        if json {
            cmd.arg("--json");
        }
        let out = util::run(cmd.arg(file));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}", both(&out));
        assert_eq!(
            stderr.lines().count(),
            1,
            "one error line expected:\n{}",
            both(&out)
        );
        let prefix = format!("distroless-pack: error: {}: ", file.display());
        assert!(stderr.starts_with(&prefix), "{}", both(&out));
        assert!(
            stderr.contains(needle),
            "expected {needle:?}:\n{}",
            both(&out)
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{}",
            both(&out)
        );
        if !json {
            assert!(out.stdout.is_empty(), "{}", both(&out));
        }
    }
}

#[test]
fn verify_refuses_garbage() {
    expect_unreadable(&corpus::garbage(), "not an ELF file (starts with bytes");
}

#[test]
fn verify_refuses_shell_script() {
    expect_unreadable(
        &corpus::shell_script(),
        "not an ELF file (starts with #! \u{2014} a script?)",
    );
}

#[test]
fn verify_refuses_empty_file_and_directory_and_missing_file() {
    let tmp = util::tmp();
    let empty = util::write_file(tmp.path(), "empty", b"");
    expect_unreadable(&empty, "empty file");
    expect_unreadable(tmp.path(), "is a directory");
    expect_unreadable(
        &tmp.path().join("nope"),
        "cannot read: No such file or directory",
    );
}

#[test]
fn verify_refuses_truncated_files() {
    expect_unreadable(
        &corpus::truncated_header(),
        "truncated ELF file: only 40 bytes",
    );
    expect_unreadable(
        &corpus::truncated_elf(),
        "extends past the end of the file (3000 bytes)",
    );
}

/// A copy of the musl hello program with some header bytes changed.
fn patched(name: &str, patch: impl FnOnce(&mut Vec<u8>)) -> (tempfile::TempDir, PathBuf) {
    let mut bytes = fs::read(corpus::musl_static_hello()).unwrap();
    patch(&mut bytes);
    let tmp = util::tmp();
    let p = util::write_file(tmp.path(), name, &bytes);
    (tmp, p)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn verify_refuses_huge_bogus_header_counts() {
    let (_t, p) = patched("phnum", |b| {
        b[56..58].copy_from_slice(&0xfff0u16.to_le_bytes())
    });
    expect_unreadable(&p, "program header table (65520 entries");
    let (_t, p) = patched("shnum", |b| {
        b[60..62].copy_from_slice(&0xfff0u16.to_le_bytes())
    });
    expect_unreadable(&p, "section header table (65520 entries");
    let (_t, p) = patched("shoff", |b| {
        b[40..48].copy_from_slice(&(u64::MAX - 8).to_le_bytes())
    });
    expect_unreadable(&p, "section header table");
}

#[test]
fn verify_refuses_section_offsets_past_the_end() {
    let (_t, p) = patched("shdr", |b| {
        let shoff = u64_at(b, 40) as usize;
        let len = b.len() as u64;
        // Section 1's sh_offset -> far past the end of the file.
        b[shoff + 64 + 24..shoff + 64 + 32].copy_from_slice(&(len + 4096).to_le_bytes());
    });
    expect_unreadable(&p, "section 1 (");
    expect_unreadable(&p, "extends past the end of the file");
}

#[test]
fn verify_usage_errors_exit_2() {
    let out = util::run(dp().arg("verify"));
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    let out = util::run(
        dp().args(["verify", "--platform", "windows/amd64"])
            .arg(corpus::musl_static_hello()),
    );
    assert_eq!(out.status.code(), Some(2), "{}", both(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("linux/amd64 or linux/arm64"),
        "{}",
        both(&out)
    );
}

// ------------------------------------------------- reading parts of a file

/// The same file without section headers, as `sstrip` leaves it.
fn without_section_headers(b: &mut [u8]) {
    if b.len() < 64 || !b.starts_with(b"\x7fELF") {
        return;
    }
    if b[4] == 2 {
        b[40..48].fill(0); // e_shoff
        b[60..64].fill(0); // e_shnum, e_shstrndx
    } else {
        b[32..36].fill(0);
        b[48..52].fill(0);
    }
}

/// `verify_file` holds only the parts of a file the checks read
/// (crates/verify/src/sparse.rs) and streams the rest once for the string
/// scan; on every corpus file, with and without section headers (so goblin
/// finds its tables through the dynamic section, and Go's build info by its
/// magic), that gives exactly the report of `verify_bytes` on the whole file.
/// The integration tests run the library with debug assertions, which check
/// that no check reads a byte the sparse reader did not load.
#[test]
fn verify_reading_only_what_is_checked_matches_reading_the_whole_file() {
    use distroless_pack_verify::{verify_bytes, verify_file, Platform};
    let files = [
        corpus::musl_static_hello(),
        corpus::musl_static_pie_hello(),
        corpus::musl_static_pie_rpath(),
        corpus::musl_static_pie_textrel(),
        corpus::musl_execstack_hello(),
        corpus::musl_rwx_segment(),
        corpus::musl_x86_64_v3_hello(),
        corpus::nativeaot_lookalike(),
        corpus::zig_arm64_c_hello(),
        corpus::glibc_static_getaddrinfo(),
        corpus::glibc_dynamic_hello(),
        corpus::shared_library(),
        corpus::object_file(),
        corpus::go_static_hello(),
        corpus::go_pie_hello(),
        corpus::go_arm64_hello(),
        corpus::go_amd64_v3_hello(),
        corpus::rust_glibc_static_hello(),
        corpus::truncated_elf(),
        corpus::truncated_header(),
        corpus::garbage(),
        corpus::shell_script(),
        corpus::dotnet_sample("console-dynamic/console-dynamic"),
        corpus::dotnet_sample("console-static/console-static"),
        corpus::dotnet_sample("console-static-pie/console-static"),
        corpus::dotnet_sample("console-static-arm64/console-static-arm64"),
        corpus::dotnet_sample("console-static-needs-icu/icuneed"),
        corpus::dotnet_sample("probe-static/Probe"),
        corpus::dotnet_truncated(),
        corpus::dotnet_corrupt_comment(),
        corpus::dotnet_huge_managedcode(),
    ];
    let tmp = util::tmp();
    let platform = Platform::linux("amd64");
    let mut go_without_sections = 0;
    let mut dotnet_without_sections = 0;
    for file in &files {
        let whole = fs::read(file).unwrap();
        let mut stripped = whole.clone();
        without_section_headers(&mut stripped);
        let name = format!("{}.sstrip", file.file_name().unwrap().to_string_lossy());
        let copy = util::write_file(tmp.path(), &name, &stripped);
        for (path, bytes) in [(file.as_path(), &whole), (copy.as_path(), &stripped)] {
            let shown = path.display().to_string();
            let sparse = verify_file(path, &platform).map_err(|e| e.to_string());
            let full = verify_bytes(&shown, bytes, &platform).map_err(|e| e.to_string());
            assert_eq!(sparse, full, "{shown}");
            if let Ok(r) = &sparse {
                if path == copy && r.summary.go.as_ref().is_some_and(|g| g.version.is_some()) {
                    go_without_sections += 1;
                }
                if path == copy && r.summary.dotnet.is_some() {
                    dotnet_without_sections += 1;
                }
            }
        }
    }
    // The sstripped Go binaries still have their build info read, and the
    // sstripped NativeAOT ones are still recognised (by their core library).
    assert!(go_without_sections >= 3, "{go_without_sections}");
    assert!(dotnet_without_sections >= 5, "{dotnet_without_sections}");
}
