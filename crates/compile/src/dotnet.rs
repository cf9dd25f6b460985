//! .NET NativeAOT, the recipe of the seed article automated.
//!
//! Nothing in the user's project is edited. distroless-pack writes a props
//! file ([`props_file`]) into its own output directory and points MSBuild at
//! it with `-p:CustomBeforeDirectoryBuildProps=...` (Microsoft.Common.props
//! imports it just before `Directory.Build.props`). It holds the items
//! (`DirectPInvoke`, `NativeLibrary`, `LinkerArg`) and, for the record, the
//! properties; the properties are also passed as global `-p:` properties
//! ([`publish_command`]) so they win over values the project sets itself.
//!
//! `dotnet publish -c Release -r linux-musl-x64|linux-musl-arm64
//! -p:PublishAot=true ... -o OUT/publish` then writes `OUT/publish/NAME` and
//! `NAME.dbg`; the binary goes into the image, the `.dbg` never does.
//!
//! The C library ([`Libc`]) picks the RID. musl is the seed's Alpine recipe
//! and the builder image's. glibc (`linux-x64`) is for hosts where NuGet
//! serves no musl NativeAOT packs: the recipe then links `-static` (GNU ld
//! 2.40 asserts on `-static-pie` with the exports script), adds `-lm` after
//! ICU's archives, and embeds no ICU data unless asked (the distributions'
//! `libicudata.a` already holds all of it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::{Globalization, Libc, OpenSsl};
use crate::error::BuildError;
use crate::shell::{Cmd, Word};
use crate::{detect, Ctx, Locate, Plan, Tool};

/// The generated props file's name in the output directory.
pub const PROPS_FILE: &str = "distroless-pack.props";
/// Where the `icu-file` mode copies the ICU `.dat` (under the output dir).
pub const ICU_OUT_DIR: &str = "icu";
/// The shell (and environment) variable holding the ICU data file's path.
pub const ICU_VAR: &str = "DP_ICU_DAT";
/// The shell variable holding the clang a glibc cross link uses.
pub const CLANG_VAR: &str = "DP_CLANG";

/// The resolved knobs of one .NET build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub globalization: Globalization,
    /// Statically link OpenSSL (`StaticOpenSslLinking=true`).
    pub openssl_static: bool,
    /// Extra Direct P/Invoke modules (`libc` is always there).
    pub direct_pinvoke: Vec<String>,
    /// Static libraries to link, relative to the project or absolute.
    pub native_libraries: Vec<String>,
    pub linker_args: Vec<String>,
    /// `false`: `PositionIndependentExecutable=false` (-static, not -static-pie).
    pub pie: bool,
    /// Extra MSBuild properties.
    pub properties: BTreeMap<String, String>,
    /// The C library linked in (it picks the RID).
    pub libc: Libc,
    /// `EmbedIcuDataPath` in the static-ICU mode (always on musl; on glibc
    /// only with `dotnet.icu_data`, as `libicudata.a` holds the data).
    pub embed_icu_data: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            globalization: Globalization::Invariant,
            openssl_static: false,
            direct_pinvoke: Vec::new(),
            native_libraries: Vec::new(),
            linker_args: Vec::new(),
            pie: true,
            properties: BTreeMap::new(),
            libc: Libc::Musl,
            embed_icu_data: true,
        }
    }
}

/// The runtime identifier for a platform architecture and C library.
pub fn rid(arch: &str, libc: Libc) -> Result<&'static str, BuildError> {
    match (arch, libc) {
        ("amd64", Libc::Musl) => Ok("linux-musl-x64"),
        ("arm64", Libc::Musl) => Ok("linux-musl-arm64"),
        ("amd64", Libc::Glibc) => Ok("linux-x64"),
        ("arm64", Libc::Glibc) => Ok("linux-arm64"),
        (other, _) => Err(BuildError::Invalid(format!(
            "no .NET runtime identifier for architecture {other:?}"
        ))),
    }
}

/// The GNU triple of a platform architecture (cross binutils' prefix).
pub fn gnu_triple(arch: &str) -> Option<&'static str> {
    match arch {
        "amd64" => Some("x86_64-linux-gnu"),
        "arm64" => Some("aarch64-linux-gnu"),
        _ => None,
    }
}

/// The C library a program is linked against, from the ELF interpreter
/// it names (`/lib/ld-musl-*` or `ld-linux-*`) in its first 4 KiB, where
/// `PT_INTERP` sits. `None` for a static program or an unreadable file.
pub fn libc_of_program(path: &Path) -> Option<Libc> {
    use std::io::Read;
    let mut head = Vec::with_capacity(4096);
    std::fs::File::open(path)
        .ok()?
        .take(4096)
        .read_to_end(&mut head)
        .ok()?;
    let has = |needle: &[u8]| head.windows(needle.len()).any(|w| w == needle);
    if has(b"/ld-musl-") {
        Some(Libc::Musl)
    } else if has(b"/ld-linux") {
        Some(Libc::Glibc)
    } else {
        None
    }
}

/// This machine's C library: the one `/bin/sh` runs on (a Debian machine
/// may have musl installed beside glibc, so the loader's presence says
/// nothing). Read once.
pub fn host_libc() -> Libc {
    static HOST: std::sync::OnceLock<Libc> = std::sync::OnceLock::new();
    *HOST.get_or_init(|| {
        libc_of_program(Path::new("/bin/sh")).unwrap_or(
            if Path::new("/etc/alpine-release").exists() {
                Libc::Musl
            } else {
                Libc::Glibc
            },
        )
    })
}

/// The C library of this build: `dotnet.libc`, else musl in the builder
/// container and the host's own on the host. The second value says why.
pub fn libc(ctx: &Ctx) -> (Libc, &'static str) {
    match ctx.config.dotnet.as_ref().and_then(|d| d.libc) {
        Some(l) => (l, "dotnet.libc / --libc"),
        None if ctx.container => (Libc::Musl, "the builder image's"),
        None => (host_libc(), "this machine's"),
    }
}

/// A property value: literal, or the ICU data file found at build time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Lit(String),
    IcuDataFile,
}

/// The MSBuild properties of the recipe, in order.
pub fn properties(o: &Options) -> Vec<(String, Value)> {
    let lit = |k: &str, v: &str| (k.to_string(), Value::Lit(v.to_string()));
    let mut p = vec![
        lit("PublishAot", "true"),
        lit("StaticExecutable", "true"),
        lit("StripSymbols", "true"),
    ];
    match o.globalization {
        Globalization::Invariant => p.push(lit("InvariantGlobalization", "true")),
        Globalization::StaticIcu => {
            p.push(lit("InvariantGlobalization", "false"));
            p.push(lit("StaticICULinking", "true"));
            if o.embed_icu_data {
                p.push(("EmbedIcuDataPath".to_string(), Value::IcuDataFile));
            }
        }
        Globalization::IcuFile => {
            p.push(lit("InvariantGlobalization", "false"));
            p.push(lit("StaticICULinking", "true"));
        }
    }
    if o.openssl_static {
        p.push(lit("StaticOpenSslLinking", "true"));
    }
    if !o.pie {
        p.push(lit("PositionIndependentExecutable", "false"));
    }
    for (k, v) in &o.properties {
        p.retain(|(name, _)| name != k);
        p.push(lit(k, v));
    }
    p
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// MSBuild escaping for an item's Include (`;` separates items, `%` escapes).
fn msbuild_escape(s: &str) -> String {
    s.replace('%', "%25")
        .replace(';', "%3B")
        .replace('@', "%40")
        .replace('$', "%24")
}

fn native_library_path(lib: &str) -> String {
    if Path::new(lib).is_absolute() {
        msbuild_escape(lib)
    } else {
        format!("$(MSBuildProjectDirectory)/{}", msbuild_escape(lib))
    }
}

/// The generated props file.
pub fn props_file(o: &Options) -> String {
    let mut s = String::new();
    s.push_str("<Project>\n");
    s.push_str(
        "  <!-- Generated by distroless-pack (the NativeAOT static recipe). Imported through\n",
    );
    s.push_str("       CustomBeforeDirectoryBuildProps; the properties are also passed to dotnet publish\n");
    s.push_str("       as global properties (-p:), which win over the project's own values. -->\n");
    s.push_str("  <PropertyGroup>\n");
    for (k, v) in properties(o) {
        let value = match v {
            Value::Lit(v) => xml_escape(&v),
            Value::IcuDataFile => format!("$({ICU_VAR})"),
        };
        s.push_str(&format!("    <{k}>{value}</{k}>\n"));
    }
    s.push_str("  </PropertyGroup>\n");
    s.push_str("  <ItemGroup>\n");
    let mut pinvoke = vec!["libc".to_string()];
    for d in &o.direct_pinvoke {
        if !pinvoke.contains(d) {
            pinvoke.push(d.clone());
        }
    }
    for d in pinvoke {
        s.push_str(&format!(
            "    <DirectPInvoke Include=\"{}\" />\n",
            xml_escape(&msbuild_escape(&d))
        ));
    }
    for l in &o.native_libraries {
        s.push_str(&format!(
            "    <NativeLibrary Include=\"{}\" />\n",
            xml_escape(&native_library_path(l))
        ));
    }
    for a in &o.linker_args {
        s.push_str(&format!(
            "    <LinkerArg Include=\"{}\" />\n",
            xml_escape(&msbuild_escape(a))
        ));
    }
    if o.libc == Libc::Glibc && o.globalization != Globalization::Invariant {
        // glibc's static link puts -lm before ICU's archives, which need it
        // (fmod, round, ...); ExtraLinkerArg lands at the very end.
        s.push_str("    <ExtraLinkerArg Include=\"-lm\" />\n");
    }
    s.push_str("  </ItemGroup>\n");
    s.push_str("</Project>\n");
    s
}

/// `dotnet publish` with the recipe's global properties.
pub fn publish_command(
    project: &str,
    rid: &str,
    publish_dir: &str,
    props_path: &str,
    o: &Options,
) -> Cmd {
    let mut c = Cmd::new([
        "dotnet", "publish", project, "-c", "Release", "-r", rid, "--nologo",
    ]);
    for (k, v) in properties(o) {
        match v {
            // `;` would start another property on the command line.
            Value::Lit(v) => c.push(format!("-p:{k}={}", v.replace(';', "%3B"))),
            Value::IcuDataFile => c.0.push(Word::Var {
                prefix: format!("-p:{k}="),
                var: ICU_VAR,
            }),
        }
    }
    c.push(format!("-p:CustomBeforeDirectoryBuildProps={props_path}"));
    c.push("-o");
    c.push(publish_dir);
    c
}

/// The glibc C toolchain a `pre_build` command gets in a glibc .NET build
/// (its static libraries are linked by the same gcc the SDK uses): `gcc`,
/// or `<triple>-gcc` for another architecture.
pub fn glibc_c_toolchain(ctx: &Ctx) -> crate::c::Toolchain {
    let prefix = if ctx.native() {
        String::new()
    } else {
        gnu_triple(ctx.arch())
            .map(|t| format!("{t}-"))
            .unwrap_or_default()
    };
    let cc = format!("{prefix}gcc");
    crate::c::Toolchain {
        env: vec![
            ("CC".into(), cc.clone()),
            ("CXX".into(), format!("{prefix}g++")),
            ("AR".into(), format!("{prefix}ar")),
        ],
        prelude: Vec::new(),
        tools: vec![Tool::new(
            &cc,
            &if prefix.is_empty() {
                "apt-get install gcc (the glibc C toolchain)".to_string()
            } else {
                format!("apt-get install {cc}")
            },
        )],
        notes: Vec::new(),
        cc: Some(cc),
    }
}

/// Source words that mean the app uses TLS or crypto (OpenSSL on Linux).
const OPENSSL_HINTS: &[&str] = &[
    "Microsoft.NET.Sdk.Web",
    "HttpClient",
    "SslStream",
    "System.Security.Cryptography",
    "X509Certificate",
    "UseHttps",
    "System.Net.Security",
];

/// Why the project looks like it needs OpenSSL, if it does.
pub fn openssl_reason(dir: &Path) -> Option<String> {
    fn scan(dir: &Path, depth: usize) -> Option<String> {
        if depth > 6 {
            return None;
        }
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if !matches!(name.as_str(), "bin" | "obj" | ".git" | "node_modules") {
                    if let Some(r) = scan(&p, depth + 1) {
                        return Some(r);
                    }
                }
                continue;
            }
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if !matches!(ext, "cs" | "fs" | "vb" | "csproj" | "fsproj" | "vbproj") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            if let Some(h) = OPENSSL_HINTS.iter().find(|h| text.contains(*h)) {
                return Some(format!("{name} mentions {h}"));
            }
        }
        None
    }
    scan(dir, 0)
}

/// The project file to publish.
pub fn project_file(dir: &Path, configured: Option<&str>) -> Result<PathBuf, BuildError> {
    if let Some(p) = configured {
        let path = dir.join(p);
        if !path.is_file() {
            return Err(BuildError::Invalid(format!(
                "dotnet.project: {} does not exist",
                path.display()
            )));
        }
        return Ok(path);
    }
    let projects = detect::dotnet_projects(dir);
    match projects.len() {
        0 => Err(BuildError::Invalid(format!(
            "{}: no .csproj/.fsproj/.vbproj file",
            dir.display()
        ))),
        1 => Ok(projects.into_iter().next().unwrap()),
        _ => Err(BuildError::Ambiguous {
            what: "the .NET project".into(),
            candidates: projects
                .iter()
                .map(|p| {
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect(),
            key: "dotnet.project".into(),
            flag: "--project".into(),
        }),
    }
}

/// The assembly name (the binary's name): `<AssemblyName>` or the file stem.
pub fn assembly_name(project: &Path) -> String {
    let text = std::fs::read_to_string(project).unwrap_or_default();
    if let Some(start) = text.find("<AssemblyName>") {
        let rest = &text[start + "<AssemblyName>".len()..];
        if let Some(end) = rest.find("</AssemblyName>") {
            let v = rest[..end].trim();
            if !v.is_empty() && !v.contains("$(") {
                return v.to_string();
            }
        }
    }
    project
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "app".into())
}

/// Resolves the options from the configuration (and the project, for
/// `openssl = "auto"`). Returns the note that says what was decided about
/// OpenSSL, if anything was.
pub fn options(ctx: &Ctx) -> (Options, Option<String>) {
    let d = ctx.config.dotnet.clone().unwrap_or_default();
    let openssl = d.openssl.unwrap_or_default();
    // The SDK does not build its OpenSSL shim for another architecture
    // ("not supported when crosscompiling", dotnet/runtime's NativeAOT
    // compiling.md).
    let cross = !ctx.native();
    let (openssl_static, note) = match openssl {
        OpenSsl::Static if cross => (true, Some(format!(
            "OpenSSL linked statically (dotnet.openssl = \"static\"), although the SDK does not support StaticOpenSslLinking when cross-compiling to {}: it needs that architecture's static OpenSSL",
            ctx.platform
        ))),
        OpenSsl::Static => (
            true,
            Some("OpenSSL linked statically (dotnet.openssl = \"static\")".to_string()),
        ),
        OpenSsl::Off => (false, None),
        OpenSsl::Auto => match openssl_reason(ctx.dir) {
            Some(r) if cross => (false, Some(format!(
                "OpenSSL not linked statically although {r}: the SDK does not support StaticOpenSslLinking when cross-compiling; build on a {} machine for TLS or crypto in a scratch image (verify says what would fail)",
                ctx.platform
            ))),
            Some(r) => (true, Some(format!("OpenSSL linked statically ({r})"))),
            None => (false, None),
        },
    };
    let (libc, _) = libc(ctx);
    let mut properties = d.properties.unwrap_or_default();
    if libc == Libc::Glibc && !ctx.native() {
        // LLVM's objcopy (the SDK's default strip tool) cannot read the
        // cross binutils' output ("Link field value ... is not a symbol
        // table"); the cross objcopy can.
        if let Some(t) = gnu_triple(ctx.arch()) {
            properties
                .entry("ObjCopyName".into())
                .or_insert_with(|| format!("{t}-objcopy"));
        }
    }
    let o = Options {
        globalization: d.globalization.unwrap_or_default(),
        openssl_static,
        direct_pinvoke: d.direct_pinvoke.unwrap_or_default(),
        native_libraries: d.native_libraries.unwrap_or_default(),
        linker_args: d.linker_args.unwrap_or_default(),
        // GNU ld 2.40 asserts on glibc's -static-pie with the exports script.
        pie: d.pie.unwrap_or(libc == Libc::Musl),
        properties,
        libc,
        embed_icu_data: libc == Libc::Musl || d.icu_data.is_some(),
    };
    (o, note)
}

/// Shell lines that set `DP_ICU_DAT` (configured file, or the newest
/// `icudt*l.dat` under /usr/share/icu) and fail clearly when there is none.
pub fn icu_prelude(configured: Option<&str>, libc: Libc) -> Vec<String> {
    let mut v = Vec::new();
    match configured {
        Some(p) => {
            v.push(format!("{ICU_VAR}={}", crate::shell::quote(p)));
            v.push(format!(
                "case \"${ICU_VAR}\" in /*) ;; *) {ICU_VAR}=\"$PWD/${ICU_VAR}\" ;; esac"
            ));
        }
        None => v.push(format!(
            "{ICU_VAR}=$(ls /usr/share/icu/*/icudt*l.dat 2>/dev/null | sort | tail -n 1)"
        )),
    }
    let fix = match libc {
        Libc::Musl => "install icu-data-full (Alpine) or set dotnet.icu_data",
        Libc::Glibc => "Debian and Ubuntu ship no .dat file: set dotnet.icu_data (docs/dotnet.md shows how to cut one out of libicudata.so)",
    };
    v.push(format!(
        "[ -f \"${ICU_VAR}\" ] || {{ echo \"distroless-pack: no ICU data file (icudt*l.dat) found{}: {fix}\" >&2; exit 2; }}",
        configured.map(|p| format!(" at {p}")).unwrap_or_else(|| " under /usr/share/icu".into())
    ));
    v.push(format!("export {ICU_VAR}"));
    v
}

/// The plan for a .NET project.
pub fn plan(ctx: &Ctx) -> Result<Plan, BuildError> {
    let d = ctx.config.dotnet.clone().unwrap_or_default();
    let project = project_file(ctx.dir, d.project.as_deref())?;
    let rel = project
        .strip_prefix(ctx.dir)
        .unwrap_or(&project)
        .display()
        .to_string();
    let (opts, openssl_note) = options(ctx);
    let (_, libc_from) = libc(ctx);
    if opts.libc == Libc::Glibc && ctx.container && ctx.config.builder_image.is_none() {
        return Err(BuildError::Invalid(format!(
            "{}: dotnet.libc = \"glibc\" cannot build in the default builder image (Alpine, musl): use --runner host on a glibc machine with the .NET SDK, or --builder-image IMAGE with the SDK on glibc",
            ctx.dir.display()
        )));
    }
    let rid = rid(ctx.arch(), opts.libc)?;
    let publish_dir = ctx.out_path("publish");
    let props_path = ctx.out_path(PROPS_FILE);
    let name = assembly_name(&project);

    let mut plan = Plan::new(Locate::Scan {
        dir: publish_dir.clone(),
        prefer: Some(name),
    });
    plan.tools.push(Tool::new(
        "dotnet",
        "install the .NET 8+ SDK or use --runner container",
    ));
    // The SDK compiles its OpenSSL and ICU shims with cmake and make
    // (build-local.sh in the ILCompiler package) before the link: checked
    // first, not found out after the managed compile.
    if opts.openssl_static || opts.globalization != Globalization::Invariant {
        let why = match (opts.openssl_static, opts.globalization) {
            (true, Globalization::Invariant) => "StaticOpenSslLinking",
            (false, _) => "StaticICULinking",
            (true, _) => "StaticOpenSslLinking and StaticICULinking",
        };
        let dev = match opts.libc {
            Libc::Glibc => "apt-get install cmake make libssl-dev libicu-dev",
            Libc::Musl => "apk add cmake make openssl-dev openssl-libs-static icu-dev icu-static",
        };
        for t in ["cmake", "make"] {
            plan.tools.push(Tool::new(
                t,
                &format!("{why} builds the SDK's native shims with cmake and make: {dev}"),
            ));
        }
    }
    plan.env = vec![
        ("DOTNET_CLI_TELEMETRY_OPTOUT".into(), "1".into()),
        ("DOTNET_NOLOGO".into(), "1".into()),
        ("DOTNET_SKIP_FIRST_TIME_EXPERIENCE".into(), "1".into()),
    ];
    let mut cross_clang = false;
    if opts.libc == Libc::Glibc && !ctx.native() {
        if let Some(t) = gnu_triple(ctx.arch()) {
            plan.tools.push(Tool::new(
                &format!("{t}-objcopy"),
                &format!(
                    "apt-get install gcc-{t} (the cross C toolchain and binutils for {})",
                    ctx.platform
                ),
            ));
        }
        if !opts.properties.contains_key("CppCompilerAndLinker") {
            // A cross link gets --target=, which gcc refuses, and without a
            // `clang` on PATH the targets fall back to gcc; Debian and
            // Ubuntu name it clang-NN. Found when the build runs.
            plan.prelude.push(format!(
                "{CLANG_VAR}=$(if command -v clang >/dev/null 2>&1; then echo clang; else ls /usr/bin/clang-[0-9]* 2>/dev/null | sed 's|.*/||' | sort -V | tail -n 1; fi)"
            ));
            plan.prelude.push(format!(
                "[ -n \"${CLANG_VAR}\" ] || {{ echo \"distroless-pack: a .NET cross link for {} needs clang (apt-get install clang): the SDK passes --target=, which gcc does not take\" >&2; exit 2; }}",
                ctx.platform
            ));
            cross_clang = true;
        }
    }
    let needs_dat = opts.globalization == Globalization::IcuFile
        || (opts.globalization == Globalization::StaticIcu && opts.embed_icu_data);
    if needs_dat {
        plan.prelude
            .extend(icu_prelude(d.icu_data.as_deref(), opts.libc));
    }
    if opts.globalization == Globalization::IcuFile {
        let icu_dir = ctx.out_path(ICU_OUT_DIR);
        plan.epilogue.push(format!(
            "mkdir -p {0} && cp \"${ICU_VAR}\" {0}/",
            crate::shell::quote(&icu_dir)
        ));
    }
    let mut publish = publish_command(&rel, rid, &publish_dir, &props_path, &opts);
    if cross_clang {
        let at = publish
            .0
            .iter()
            .position(|w| matches!(w, Word::Lit(l) if l.starts_with("-p:CustomBeforeDirectoryBuildProps=")))
            .unwrap_or(publish.0.len());
        publish.0.insert(
            at,
            Word::Var {
                prefix: "-p:CppCompilerAndLinker=".into(),
                var: CLANG_VAR,
            },
        );
        plan.notes
            .push("cross link: CppCompilerAndLinker = the clang on PATH (clang, else the newest clang-NN)".into());
    }
    let mut extra = Vec::new();
    if let Some(feed) = &d.source {
        if !ctx.dir.join(feed).is_dir() {
            return Err(BuildError::Invalid(format!(
                "dotnet.source: {} is not a directory (a local NuGet feed: a folder of .nupkg files)",
                ctx.dir.join(feed).display()
            )));
        }
        let seen = if Path::new(feed).is_absolute() {
            feed.clone()
        } else {
            format!("{}/{}", ctx.src.trim_end_matches('/'), feed)
        };
        extra.push("--source".to_string());
        extra.push(seen);
        plan.notes
            .push(format!("NuGet restore from {feed} only (--source)"));
    } else if ctx.config.offline() {
        return Err(BuildError::Invalid(format!(
            "{}: an offline .NET build needs a local NuGet feed: set `source = \"DIR\"` under [dotnet] in distroless-pack.toml or pass --nuget-source DIR",
            ctx.dir.display()
        )));
    }
    if ctx.config.offline() {
        // The audit asks the sources for vulnerability data; nothing else may.
        extra.push("-p:NuGetAudit=false".to_string());
        plan.env.push((
            "DOTNET_CLI_WORKLOAD_UPDATE_NOTIFY_DISABLE".into(),
            "1".into(),
        ));
    }
    // After `--nologo`, before the properties.
    let at = publish.0.len().min(8);
    for (i, w) in extra.into_iter().enumerate() {
        publish.0.insert(at + i, crate::shell::Word::Lit(w));
    }
    plan.steps.push(publish.into());
    plan.epilogue.push(crate::inputs::nuspec_licenses_line(
        &ctx.out_path(crate::inputs::NUSPEC_LICENSES_FILE),
    ));
    plan.versions.extend(crate::inputs::version_lines(
        &ctx.out_path(crate::inputs::TOOLCHAIN_FILE),
        &[("dotnet", "dotnet --version")],
    ));
    plan.files.push((PROPS_FILE.to_string(), props_file(&opts)));
    plan.notes.push(format!(
        "libc: {} (RID {rid}), {libc_from}",
        opts.libc.as_str()
    ));
    plan.notes.push(format!(
        "globalization: {}",
        match opts.globalization {
            Globalization::Invariant => "invariant (InvariantGlobalization=true)",
            Globalization::StaticIcu if opts.embed_icu_data =>
                "static ICU with embedded data (needs .NET 10+ for EmbedIcuDataPath)",
            Globalization::StaticIcu =>
                "static ICU, its data from the system's libicudata.a (linked in whole)",
            Globalization::IcuFile => "static ICU, data file shipped in the image with ICU_DATA",
        }
    ));
    plan.notes.extend(openssl_note);
    if !opts.pie {
        plan.notes
            .push("PositionIndependentExecutable=false: linked -static, not -static-pie".into());
    }
    Ok(plan)
}

/// The package an offline restore could not find, from NuGet's errors
/// (`NU1101: Unable to find package X`, `NU1102`/`NU1103` for a version).
pub fn missing_dependency(log: &str) -> Option<(String, String)> {
    let line = log
        .lines()
        .find(|l| l.contains("NU1101") || l.contains("NU1102") || l.contains("NU1103"))?;
    let rest = line.split("Unable to find package ").nth(1)?;
    // Package IDs contain dots: the sentence ends at ". ".
    let end = rest.find(". ").unwrap_or(rest.len());
    let pkg = rest[..end].trim();
    Some((
        format!("the NuGet package {pkg}"),
        "add its .nupkg to the feed folder (dotnet.source), e.g. copied from ~/.nuget/packages after one online restore, then build again".to_string(),
    ))
}

/// What a failed `dotnet publish` means, in one line with its fix, from the
/// known failures of the static recipe (seen for real on Debian 12 with
/// SDK 10.0.401, see docs/dotnet.md "When the publish fails"); else the
/// first MSBuild `error` message, without its `[project]` suffix.
pub fn explain_failure(log: &str) -> Option<String> {
    let has = |s: &str| log.contains(s);
    let line_with = |s: &str| log.lines().find(|l| l.contains(s)).map(str::trim);
    if has("assertion fail") && has("elflink.c") {
        return Some("GNU ld cannot link glibc's -static-pie here (BFD assertion in elflink.c): set pie = false under [dotnet] (or --no-pie) to link -static".into());
    }
    if has("attempted static link of dynamic object") {
        let what = line_with("attempted static link of dynamic object").unwrap_or("");
        return Some(format!(
            "a shared library cannot go into a static executable ({}): list a static archive (.a) in dotnet.native_libraries",
            what.rsplit("object").next().unwrap_or("").trim().trim_matches(|c| c == '\'' || c == '`')
        ));
    }
    if has("unrecognized command-line option '--target=") {
        return Some("the cross link fell back to gcc, which takes no --target=: put clang on PATH or set properties = { CppCompilerAndLinker = \"clang-14\" } under [dotnet]".into());
    }
    if has("Link field value") && has("is not a symbol table") {
        return Some("LLVM's objcopy cannot strip this cross-linked binary: set properties = { ObjCopyName = \"aarch64-linux-gnu-objcopy\" } under [dotnet] (apt-get install gcc-aarch64-linux-gnu)".into());
    }
    if has("error adding symbols: file in wrong format") || has("Relocations in generic ELF") {
        // GNU ld on an archive of another architecture: `ld: X(foo.o):
        // Relocations in generic ELF (EM: 62)`, then `X: error adding
        // symbols: file in wrong format`.
        let what = line_with("error adding symbols: file in wrong format")
            .and_then(|l| l.split(": error adding symbols").next())
            .map(|l| l.rsplit(": ").next().unwrap_or(l).trim())
            .unwrap_or("a native library");
        return Some(format!(
            "{what} was built for another architecture: rebuild it for this platform's C compiler before the publish (pre_build runs with CC set; with make, `make -B` rebuilds what a build for another platform left)"
        ));
    }
    if let Some(l) = line_with("cannot find -l") {
        let lib = l
            .split("cannot find -l")
            .nth(1)
            .and_then(|r| r.split(|c: char| c.is_whitespace() || c == ':').next())
            .unwrap_or("");
        return Some(format!(
            "the linker has no static lib{lib}.a: install its -dev package (libssl-dev for ssl/crypto, libicu-dev for icu*, libstdc++-dev for stdc++; on Alpine openssl-libs-static, icu-static)"
        ));
    }
    if let Some(l) = line_with("undefined reference to") {
        let sym = l
            .split("undefined reference to")
            .nth(1)
            .unwrap_or("")
            .trim()
            .trim_matches(|c| c == '\'' || c == '`' || c == '\u{2018}' || c == '\u{2019}');
        let math = [
            "fmod", "round", "sincos", "atan", "acos", "asin", "expf", "atan2", "tanhf", "pow",
            "log", "exp", "floor", "ceil",
        ];
        if math.contains(&sym) {
            return Some(format!(
                "the link misses libm after ICU ({sym}): add linker_args = [\"-lm\"] under [dotnet] (distroless-pack adds it itself for libc = \"glibc\")"
            ));
        }
        return Some(format!(
            "the link cannot find the native function {sym}: give its static library in dotnet.native_libraries (a DirectPInvoke module needs one)"
        ));
    }
    if (has("NU1101") || has("NU1102")) && has("linux-musl-") {
        return Some("NuGet serves no musl NativeAOT packages here (runtime.linux-musl-*.Microsoft.DotNet.ILCompiler): build for glibc with --libc glibc --runner host, or give a feed that has them (dotnet.source)".into());
    }
    // MSBuild's own message: `file(line,col): error CODE: text [project]`.
    let l = log.lines().find(|l| {
        [
            "error NETSDK",
            "error CS",
            "error IL",
            "error NU",
            "error MSB",
        ]
        .iter()
        .any(|m| l.contains(m))
    })?;
    let at = l.find("error ")?;
    let msg = l[at..].trim();
    let msg = match msg.rfind(" [") {
        Some(i) if msg.ends_with(']') => &msg[..i],
        _ => msg,
    };
    Some(msg.chars().take(240).collect())
}

/// The restore's `obj/project.assets.json` beside the project file.
pub fn assets_file(project: &Path) -> std::path::PathBuf {
    project
        .parent()
        .unwrap_or(Path::new("."))
        .join("obj/project.assets.json")
}

/// The packages a restore resolved, from `obj/project.assets.json` beside
/// the project file.
pub fn restored_packages(project: &Path) -> Vec<crate::inputs::Package> {
    std::fs::read_to_string(assets_file(project))
        .map(|t| crate::inputs::nuget_packages(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_missing_package_is_named() {
        let log = "/src/App.csproj : error NU1101: Unable to find package Newtonsoft.Json. No packages exist with this id in source(s): feed\n";
        assert_eq!(
            missing_dependency(log).unwrap().0,
            "the NuGet package Newtonsoft.Json"
        );
        let log = "error NU1102: Unable to find package Microsoft.DotNet.ILCompiler with version (>= 8.0.11)\n";
        assert_eq!(
            missing_dependency(log).unwrap().0,
            "the NuGet package Microsoft.DotNet.ILCompiler with version (>= 8.0.11)"
        );
    }

    #[test]
    fn rids() {
        assert_eq!(rid("amd64", Libc::Musl).unwrap(), "linux-musl-x64");
        assert_eq!(rid("arm64", Libc::Musl).unwrap(), "linux-musl-arm64");
        assert_eq!(rid("amd64", Libc::Glibc).unwrap(), "linux-x64");
        assert_eq!(rid("arm64", Libc::Glibc).unwrap(), "linux-arm64");
        assert!(rid("s390x", Libc::Glibc).is_err());
    }

    #[test]
    fn the_c_library_is_read_from_the_interpreter() {
        let d = tempfile::tempdir().unwrap();
        let write = |name: &str, interp: &[u8]| {
            let mut b = vec![0x7f, b'E', b'L', b'F'];
            b.resize(0x318, 0);
            b.extend_from_slice(interp);
            b.resize(8192, 0);
            let p = d.path().join(name);
            std::fs::write(&p, b).unwrap();
            p
        };
        let musl = write("musl", b"/lib/ld-musl-x86_64.so.1\0");
        let glibc = write("glibc", b"/lib64/ld-linux-x86-64.so.2\0");
        let none = write("static", b"");
        assert_eq!(libc_of_program(&musl), Some(Libc::Musl));
        assert_eq!(libc_of_program(&glibc), Some(Libc::Glibc));
        assert_eq!(libc_of_program(&none), None);
        assert_eq!(libc_of_program(&d.path().join("missing")), None);
    }

    #[test]
    fn glibc_props_add_libm_after_icu_and_embed_no_data() {
        let o = Options {
            globalization: Globalization::StaticIcu,
            libc: Libc::Glibc,
            embed_icu_data: false,
            pie: false,
            ..Options::default()
        };
        let p = props_file(&o);
        assert!(p.contains("<ExtraLinkerArg Include=\"-lm\" />"), "{p}");
        assert!(!p.contains("EmbedIcuDataPath"), "{p}");
        assert!(p.contains("<PositionIndependentExecutable>false"), "{p}");
        let invariant = Options {
            libc: Libc::Glibc,
            ..Options::default()
        };
        assert!(!props_file(&invariant).contains("ExtraLinkerArg"));
        let musl = Options {
            globalization: Globalization::StaticIcu,
            ..Options::default()
        };
        assert!(!props_file(&musl).contains("ExtraLinkerArg"));
    }

    #[test]
    fn publish_failures_are_explained() {
        let cases = [
            ("/usr/bin/ld.bfd: BFD (GNU Binutils for Debian) 2.40 assertion fail ../../bfd/elflink.c:15293\ncollect2 : error : ld returned 1 exit status", "pie = false"),
            ("libicui18n.a(plurrule.ao): in function `x': undefined reference to `fmod'", "-lm"),
            ("Program.cs:12: undefined reference to `bar_mul'", "bar_mul: give its static library"),
            ("/usr/bin/ld.bfd: attempted static link of dynamic object `../libbar.so'", "../libbar.so): list a static archive"),
            ("/usr/bin/ld: cannot find -lssl: No such file or directory", "libssl.a"),
            ("gcc : error : unrecognized command-line option '--target=aarch64-linux-gnu'", "CppCompilerAndLinker"),
            ("llvm-objcopy : error : Link field value 44 in section .rela.plt is not a symbol table", "ObjCopyName"),
            ("error NU1101: Unable to find package runtime.linux-musl-x64.Microsoft.DotNet.ILCompiler. No packages exist", "--libc glibc"),
            ("/src/Program.cs(3,1): error CS1002: ; expected [/src/App.csproj]", "error CS1002: ; expected"),
            ("/usr/lib/gcc-cross/aarch64-linux-gnu/12/../../../../aarch64-linux-gnu/bin/ld: /src/libfoo.a(foo.o): Relocations in generic ELF (EM: 62)\n/usr/lib/gcc-cross/aarch64-linux-gnu/12/../../../../aarch64-linux-gnu/bin/ld: /src/libfoo.a: error adding symbols: file in wrong format\ncollect2: error: ld returned 1 exit status", "/src/libfoo.a was built for another architecture"),
        ];
        for (log, want) in cases {
            let got = explain_failure(log).unwrap_or_else(|| panic!("no explanation for {log}"));
            assert!(got.contains(want), "{log}\n-> {got}");
            assert!(!got.contains('\n') && !got.contains("[/src"), "{got}");
        }
        assert_eq!(explain_failure("  Restored /src/App.csproj\nKilled"), None);
    }

    #[test]
    fn invariant_default_command() {
        let o = Options::default();
        let c = publish_command(
            "App.csproj",
            "linux-musl-x64",
            "/out/publish",
            "/out/distroless-pack.props",
            &o,
        );
        assert_eq!(
            c.words(),
            [
                "dotnet",
                "publish",
                "App.csproj",
                "-c",
                "Release",
                "-r",
                "linux-musl-x64",
                "--nologo",
                "-p:PublishAot=true",
                "-p:StaticExecutable=true",
                "-p:StripSymbols=true",
                "-p:InvariantGlobalization=true",
                "-p:CustomBeforeDirectoryBuildProps=/out/distroless-pack.props",
                "-o",
                "/out/publish",
            ]
        );
    }

    #[test]
    fn static_icu_uses_the_data_variable() {
        let o = Options {
            globalization: Globalization::StaticIcu,
            openssl_static: true,
            ..Options::default()
        };
        let c = publish_command("A.csproj", "linux-musl-arm64", "/o/p", "/o/x.props", &o);
        let w = c.words();
        assert!(w.contains(&"-p:InvariantGlobalization=false".to_string()));
        assert!(w.contains(&"-p:StaticICULinking=true".to_string()));
        assert!(w.contains(&"-p:EmbedIcuDataPath=$DP_ICU_DAT".to_string()));
        assert!(w.contains(&"-p:StaticOpenSslLinking=true".to_string()));
        assert!(c
            .to_shell()
            .contains("-p:EmbedIcuDataPath=\"${DP_ICU_DAT}\""));
        let props = props_file(&o);
        assert!(props.contains("<EmbedIcuDataPath>$(DP_ICU_DAT)</EmbedIcuDataPath>"));
    }

    #[test]
    fn props_items() {
        let o = Options {
            direct_pinvoke: vec!["foo!add".into(), "libc".into()],
            native_libraries: vec!["libfoo.a".into(), "/abs/libbar.a".into()],
            linker_args: vec!["-Wl,--as-needed".into()],
            pie: false,
            ..Options::default()
        };
        let p = props_file(&o);
        assert_eq!(p.matches("<DirectPInvoke Include=\"libc\" />").count(), 1);
        assert!(p.contains("<DirectPInvoke Include=\"foo!add\" />"));
        assert!(p.contains("<NativeLibrary Include=\"$(MSBuildProjectDirectory)/libfoo.a\" />"));
        assert!(p.contains("<NativeLibrary Include=\"/abs/libbar.a\" />"));
        assert!(p.contains("<LinkerArg Include=\"-Wl,--as-needed\" />"));
        assert!(p.contains("<PositionIndependentExecutable>false</PositionIndependentExecutable>"));
    }

    #[test]
    fn user_properties_override() {
        let mut o = Options::default();
        o.properties.insert("StripSymbols".into(), "false".into());
        o.properties.insert("A".into(), "x;y".into());
        let c = publish_command("A.csproj", "linux-musl-x64", "/o/p", "/o/x.props", &o);
        let w = c.words();
        assert!(w.contains(&"-p:StripSymbols=false".to_string()));
        assert!(!w.contains(&"-p:StripSymbols=true".to_string()));
        assert!(w.contains(&"-p:A=x%3By".to_string()));
    }
}
