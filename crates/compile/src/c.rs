//! C (and C++) projects built with make or CMake against musl.
//!
//! The toolchain goes in through `CC`/`CXX`/`AR` and `-static` through
//! `LDFLAGS`, so an ordinary Makefile that honours them needs no change:
//! `musl-gcc` on the host, the image's musl compiler in the builder container
//! (`musl-gcc`, or Alpine's own `cc`/`c++`), and `zig cc -target
//! <arch>-linux-musl` for another architecture.

use crate::error::BuildError;
use crate::runner::which;
use crate::shell::Cmd;
use crate::{detect, Ctx, Locate, Plan, Tool};

/// zig's target triple for a platform architecture.
pub fn zig_target(arch: &str) -> &'static str {
    match arch {
        "arm64" => "aarch64-linux-musl",
        _ => "x86_64-linux-musl",
    }
}

/// How to run zig on the host: `zig`, or the PyPI package through python3.
fn host_zig() -> Option<String> {
    if which("zig").is_some() {
        return Some("zig".to_string());
    }
    let ok = std::process::Command::new("python3")
        .args(["-c", "import ziglang"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    ok.then(|| "python3 -m ziglang".to_string())
}

/// The musl C toolchain as parts of a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Toolchain {
    /// Variables to export (`CC`, `AR`, ...).
    pub env: Vec<(String, String)>,
    /// Shell lines that pick the compiler at run time and set `LDFLAGS`.
    pub prelude: Vec<String>,
    /// Tools to check before a host build.
    pub tools: Vec<Tool>,
}

/// The musl C toolchain for a plan. Used by C projects and by `pre_build`
/// commands of other kinds.
pub fn toolchain(ctx: &Ctx) -> Result<Toolchain, BuildError> {
    let target = zig_target(ctx.arch());
    let static_flags = "export LDFLAGS=\"-static${LDFLAGS:+ $LDFLAGS}\"".to_string();
    if ctx.container {
        // Decided inside the image: its own musl compiler, else zig.
        let native = ctx.native();
        let prelude = vec![
            "if [ -n \"${DP_CC:-}\" ]; then CC=\"$DP_CC\"".to_string(),
            format!(
                "elif {native} && command -v musl-gcc >/dev/null 2>&1; then CC=musl-gcc; CXX=\"${{CXX:-musl-gcc}}\""
            ),
            format!("elif {native} && [ -e /etc/alpine-release ]; then CC=cc; CXX=c++"),
            format!(
                "elif command -v zig >/dev/null 2>&1; then CC=\"zig cc -target {target}\"; CXX=\"zig c++ -target {target}\"; AR=\"zig ar\"; RANLIB=\"zig ranlib\"; export AR RANLIB"
            ),
            format!(
                "else echo \"{}musl-gcc\" >&2; exit 127; fi",
                crate::MISSING_TOOL
            ),
            "export CC; [ -n \"${CXX:-}\" ] && export CXX".to_string(),
            static_flags,
        ];
        return Ok(Toolchain {
            env: Vec::new(),
            prelude,
            tools: Vec::new(),
        });
    }
    let mut env = Vec::new();
    let mut tools = Vec::new();
    if ctx.native() && std::path::Path::new("/etc/alpine-release").exists() && which("cc").is_some()
    {
        // Alpine's own compiler targets musl.
        env.push(("CC".to_string(), "cc".to_string()));
        tools.push(Tool::new("cc", "apk add build-base"));
    } else if ctx.native() && which("musl-gcc").is_some() {
        env.push(("CC".to_string(), "musl-gcc".to_string()));
        tools.push(Tool::new("musl-gcc", "apt-get install -y musl-tools"));
    } else if let Some(zig) = host_zig() {
        env.push(("CC".to_string(), format!("{zig} cc -target {target}")));
        env.push(("CXX".to_string(), format!("{zig} c++ -target {target}")));
        env.push(("AR".to_string(), format!("{zig} ar")));
        env.push(("RANLIB".to_string(), format!("{zig} ranlib")));
    } else if ctx.native() {
        return Err(BuildError::ToolMissing {
            tool: "musl-gcc".into(),
            hint: "apt-get install -y musl-tools (or pip install ziglang for zig cc)".into(),
        });
    } else {
        return Err(BuildError::ToolMissing {
            tool: "zig".into(),
            hint: format!(
                "building C for {} needs zig cc: pip install ziglang",
                ctx.platform
            ),
        });
    }
    Ok(Toolchain {
        env,
        prelude: vec![static_flags],
        tools,
    })
}

/// The plan for a make or CMake project.
pub fn plan(ctx: &Ctx) -> Result<Plan, BuildError> {
    let cfg = ctx.config.c.clone().unwrap_or_default();
    let system = match cfg.build.as_deref() {
        Some("make") => "make",
        Some("cmake") => "cmake",
        Some(other) => {
            return Err(BuildError::Invalid(format!(
                "c.build = {other:?}: expected \"make\" or \"cmake\""
            )))
        }
        None => detect::c_build_system(ctx.dir).ok_or_else(|| {
            BuildError::Invalid(format!(
                "{}: no Makefile or CMakeLists.txt for a C build",
                ctx.dir.display()
            ))
        })?,
    };
    let Toolchain {
        env,
        prelude,
        mut tools,
    } = toolchain(ctx)?;
    let mut plan;
    if system == "make" {
        plan = Plan::new(Locate::Changed(ctx.src.clone()));
        tools.push(Tool::new("make", "apt-get install -y make"));
        // -B: rebuild everything, so no object made by another compiler survives.
        let mut cmd = Cmd::new(["make", "-B"]);
        for a in cfg.make_args.unwrap_or_default() {
            cmd.push(a);
        }
        plan.steps.push(cmd.into());
    } else {
        let build_dir = ctx.out_path("cmake-build");
        plan = Plan::new(Locate::Scan {
            dir: build_dir.clone(),
            prefer: None,
        });
        tools.push(Tool::new("cmake", "apt-get install -y cmake"));
        let mut configure = Cmd::new(["cmake", "-S", &ctx.src, "-B", &build_dir])
            .arg("-DCMAKE_BUILD_TYPE=Release")
            .arg("-DBUILD_SHARED_LIBS=OFF")
            .arg("-DCMAKE_EXE_LINKER_FLAGS=-static");
        for a in cfg.cmake_args.unwrap_or_default() {
            configure.push(a);
        }
        plan.steps.push(configure.into());
        plan.steps
            .push(Cmd::new(["cmake", "--build", &build_dir, "--parallel"]).into());
    }
    plan.env = env;
    plan.prelude = prelude;
    plan.tools = tools;
    plan.notes.push(format!(
        "C build with {system}, -static, for {}",
        ctx.platform
    ));
    Ok(plan)
}
