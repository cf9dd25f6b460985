//! The result of verifying one file, its human rendering and its JSON form.

use std::fmt::Write as _;

use distroless_pack_image::Platform;
use serde::{Serialize, Serializer};

use crate::dotnet::DotnetInfo;
use crate::fingerprint::{GoInfo, Libc, Toolchain};

/// The version of the `--json` document; bumped on incompatible changes.
pub const SCHEMA_VERSION: u32 = 1;

pub use distroless_pack_image::Severity;

/// One thing found about a binary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier (see docs/commands/verify.md), e.g. `interpreter`.
    pub id: &'static str,
    pub severity: Severity,
    /// What is in the file.
    pub message: String,
    /// What the user sees in a scratch container because of it.
    pub consequence: Option<String>,
    /// How to fix it.
    pub fix: Option<String>,
}

/// How the binary is linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Linkage {
    /// ET_EXEC without PT_INTERP and DT_NEEDED.
    Static,
    /// ET_DYN without PT_INTERP and DT_NEEDED (self-relocating).
    StaticPie,
    /// Needs a program interpreter or shared libraries.
    Dynamic,
}

impl Linkage {
    pub fn as_str(self) -> &'static str {
        match self {
            Linkage::Static => "static",
            Linkage::StaticPie => "static-pie",
            Linkage::Dynamic => "dynamic",
        }
    }
}

/// RELRO protection of the GOT and other relocated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Relro {
    /// PT_GNU_RELRO and BIND_NOW.
    Full,
    /// PT_GNU_RELRO without BIND_NOW.
    Partial,
    None,
}

/// Facts read from the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BinaryFacts {
    /// File size in bytes.
    pub size: u64,
    /// `elf64` or `elf32`.
    pub class: &'static str,
    /// `little` or `big`.
    pub endianness: &'static str,
    /// e_machine as a name (`x86-64`, `aarch64`, ...).
    pub machine: String,
    /// e_machine as a number (62 x86-64, 183 aarch64).
    pub e_machine: u16,
    /// EI_OSABI as a name (`sysv`, `gnu`, ...).
    pub os_abi: String,
    /// `exec`, `dyn`, `rel`, `core` or `unknown(N)`.
    pub file_type: String,
    pub linkage: Linkage,
    /// The entry point address.
    pub entry: u64,
    /// PT_INTERP.
    pub interpreter: Option<String>,
    /// DT_NEEDED entries.
    pub needed: Vec<String>,
    /// DT_SONAME (set for shared libraries).
    pub soname: Option<String>,
    /// DT_RPATH and DT_RUNPATH entries.
    pub rpath: Vec<String>,
    pub libc: Libc,
    pub toolchain: Toolchain,
    /// Go build info, for Go programs.
    pub go: Option<GoInfo>,
    /// The .NET runtime and what its code does, for NativeAOT programs.
    pub dotnet: Option<DotnetInfo>,
    /// `.comment` lines (compiler and linker versions).
    pub compiler: Vec<String>,
    /// NT_GNU_BUILD_ID as hex.
    pub build_id: Option<String>,
    /// No `.symtab`.
    pub stripped: bool,
    /// Has `.debug_*` sections.
    pub debug_info: bool,
    /// The file named by `.gnu_debuglink` (the separate debug file).
    pub debuglink: Option<String>,
    /// PT_GNU_STACK p_memsz when set: the stack size musl gives threads.
    pub stack_size: Option<u64>,
    /// PT_GNU_STACK missing or executable.
    pub executable_stack: bool,
    pub relro: Relro,
    pub bind_now: bool,
    /// x86-64 micro-architecture level required (`x86-64-v2`..`v4`).
    pub isa_level: Option<String>,
}

/// The verdict on one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The file as named on the command line.
    pub path: String,
    /// The platform it was checked against.
    pub platform: Platform,
    pub summary: BinaryFacts,
    /// Errors first, then warnings, then info.
    pub findings: Vec<Finding>,
}

fn platform_str<S: Serializer>(p: &Platform, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string())
}

/// The JSON form of a report (one element of `files`).
#[derive(Serialize)]
struct ReportJson<'a> {
    path: &'a str,
    #[serde(serialize_with = "platform_str")]
    platform: &'a Platform,
    verdict: &'static str,
    errors: usize,
    warnings: usize,
    summary: &'a BinaryFacts,
    findings: &'a [Finding],
}

impl Report {
    /// Any error-level finding: the binary will not run in a scratch image.
    pub fn has_errors(&self) -> bool {
        self.count(Severity::Error) > 0
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// `fail` (errors), `warn` (warnings only) or `pass`.
    pub fn verdict(&self) -> &'static str {
        if self.has_errors() {
            "fail"
        } else if self.count(Severity::Warning) > 0 {
            "warn"
        } else {
            "pass"
        }
    }

    /// Finding ids, in order.
    pub fn ids(&self) -> Vec<&'static str> {
        self.findings.iter().map(|f| f.id).collect()
    }

    /// The object stored in `files` of the `--json` document.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(ReportJson {
            path: &self.path,
            platform: &self.platform,
            verdict: self.verdict(),
            errors: self.count(Severity::Error),
            warnings: self.count(Severity::Warning),
            summary: &self.summary,
            findings: &self.findings,
        })
        .expect("report serialises")
    }

    /// The one-line verdict, e.g. `app: PASS: will run in a scratch image (linux/amd64)`.
    pub fn verdict_line(&self) -> String {
        let (e, w) = (self.count(Severity::Error), self.count(Severity::Warning));
        match (e, w) {
            (0, 0) => format!(
                "{}: PASS: will run in a scratch image ({})",
                self.path, self.platform
            ),
            (0, w) => format!(
                "{}: PASS with {w} warning{}: will start in a scratch image ({})",
                self.path,
                plural(w),
                self.platform
            ),
            (e, w) => format!(
                "{}: FAIL: {e} error{}{}: will not run in a scratch image ({})",
                self.path,
                plural(e),
                if w > 0 {
                    format!(", {w} warning{}", plural(w))
                } else {
                    String::new()
                },
                self.platform
            ),
        }
    }

    /// One line of the most useful facts.
    pub fn facts_line(&self) -> String {
        let s = &self.summary;
        let mut parts = vec![
            s.linkage.as_str().to_string(),
            format!("{} {} {}", s.machine, s.class, s.file_type),
        ];
        if let Some(i) = &s.interpreter {
            parts.push(format!("interpreter {i}"));
        }
        if !s.needed.is_empty() {
            parts.push(format!("needs {}", s.needed.join(" ")));
        }
        parts.push(format!("libc {}", s.libc.as_str()));
        let mut tc = format!("toolchain {}", s.toolchain.as_str());
        if let Some(v) = s.go.as_ref().and_then(|g| g.version.as_ref()) {
            tc.push_str(&format!(" ({v})"));
        }
        if let Some(v) = s.dotnet.as_ref().and_then(|d| d.runtime_version.as_ref()) {
            tc.push_str(&format!(" (.NET {v})"));
        }
        parts.push(tc);
        parts.push(if s.stripped {
            "stripped".into()
        } else {
            "not stripped".into()
        });
        if let Some(id) = &s.build_id {
            parts.push(format!("build-id {}", &id[..id.len().min(16)]));
        }
        if let Some(n) = s.stack_size {
            parts.push(format!("stack {}", human_size(n)));
        }
        parts.push(format_size(s.size));
        parts.join(", ")
    }

    /// The human report: verdict line, facts line, then each finding with
    /// its consequence and fix, indented. Ends with a newline.
    /// Strings read from the file (interpreter, library names, `.comment`)
    /// are shown with control characters escaped (`\u{1b}`), so a crafted
    /// binary cannot write terminal escapes through the report.
    pub fn render_human(&self) -> String {
        printable(&self.render_raw())
    }

    fn render_raw(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "{}", self.verdict_line());
        let _ = writeln!(out, "  {}", self.facts_line());
        for f in &self.findings {
            let _ = writeln!(out, "  {:<7} [{}] {}", f.severity.as_str(), f.id, f.message);
            if let Some(c) = &f.consequence {
                let _ = writeln!(out, "          in a scratch container: {c}");
            }
            if let Some(fix) = &f.fix {
                let _ = writeln!(out, "          fix: {fix}");
            }
        }
        out
    }
}

/// `text` with every control character but the newline escaped.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The `--json` document for several files: `{"schema_version":1,"files":[..]}`.
/// Unreadable files appear as `{"path":..,"verdict":"unreadable","error":..}`.
pub fn json_document<'a>(
    results: impl IntoIterator<Item = &'a Result<Report, crate::VerifyError>>,
) -> serde_json::Value {
    let files: Vec<serde_json::Value> = results
        .into_iter()
        .map(|r| match r {
            Ok(report) => report.to_json(),
            Err(e) => serde_json::json!({
                "path": e.path(),
                "verdict": "unreadable",
                "error": e.problem(),
            }),
        })
        .collect();
    serde_json::json!({ "schema_version": SCHEMA_VERSION, "files": files })
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn format_size(n: u64) -> String {
    if n >= 1024 * 1024 {
        format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KiB", n.div_ceil(1024))
    }
}

pub(crate) fn human_size(n: u64) -> String {
    if n >= 1024 * 1024 && n & (1024 * 1024 - 1) == 0 {
        format!("{} MiB", n / (1024 * 1024))
    } else if n >= 1024 && n & 1023 == 0 {
        format!("{} KiB", n / 1024)
    } else {
        format!("{n} bytes")
    }
}
