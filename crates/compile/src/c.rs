//! C (and C++) projects built with make or CMake against musl.
//!
//! The toolchain goes in through `CC`/`CXX`/`AR` and `-static` through
//! `LDFLAGS`, so an ordinary Makefile that honours them needs no change:
//! `musl-gcc` on the host, the image's musl compiler in the builder container
//! (`musl-gcc`, or Alpine's own `cc`/`c++`), and `zig cc -target
//! <arch>-linux-musl` for another architecture.

use crate::error::BuildError;
use crate::runner::which;
use crate::shell::{Cmd, Word};
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

/// Whether the project has C++ sources (then the C++ compiler links).
pub fn uses_cxx(dir: &std::path::Path) -> bool {
    fn scan(dir: &std::path::Path, depth: usize) -> bool {
        if depth > 5 {
            return false;
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            return false;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if !matches!(
                    name.as_str(),
                    ".git" | "build" | "target" | "node_modules" | "CMakeFiles" | "vendor"
                ) && scan(&e.path(), depth + 1)
                {
                    return true;
                }
            } else if let Some((_, ext)) = name.rsplit_once('.') {
                if matches!(
                    ext,
                    "cpp" | "cc" | "cxx" | "c++" | "C" | "hpp" | "hh" | "hxx"
                ) {
                    return true;
                }
            }
        }
        false
    }
    scan(dir, 0)
}

/// The marker a script prints before a note for the user (decided at run
/// time in the builder container).
pub const NOTE_MARKER: &str = "distroless-pack: note: ";

/// The musl C toolchain as parts of a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Toolchain {
    /// Variables to export (`CC`, `AR`, ...).
    pub env: Vec<(String, String)>,
    /// Shell lines that pick the compiler at run time and set `LDFLAGS`.
    pub prelude: Vec<String>,
    /// Tools to check before a host build.
    pub tools: Vec<Tool>,
    /// What was chosen, for the user.
    pub notes: Vec<String>,
    /// The compiler, when known when planning (the host runner).
    pub cc: Option<String>,
}

/// The musl C toolchain for a plan. Used by C projects and by `pre_build`
/// commands of other kinds. A project with C++ sources gets a C++ compiler
/// that links statically too: zig c++ (musl, libc++), else g++ -static
/// (glibc), which a note says.
pub fn toolchain(ctx: &Ctx) -> Result<Toolchain, BuildError> {
    let target = zig_target(ctx.arch());
    let cfg = ctx.config.c.clone().unwrap_or_default();
    let cxx_project = uses_cxx(ctx.dir);
    let static_flags = "export LDFLAGS=\"-static${LDFLAGS:+ $LDFLAGS}\"".to_string();
    let glibc_cxx_note = "no musl C++ compiler (pip install ziglang for zig c++): C++ linked with g++ -static against glibc and libstdc++; the verifier's glibc warnings apply";
    if ctx.container {
        // Decided inside the image: its own musl compiler, else zig.
        let native = ctx.native();
        let zig = format!(
            "CC=\"zig cc -target {target}\"; CXX=\"zig c++ -target {target}\"; AR=\"zig ar\"; RANLIB=\"zig ranlib\"; export AR RANLIB"
        );
        let mut prelude = vec![
            "if [ -n \"${DP_CC:-}\" ]; then CC=\"$DP_CC\"; CXX=\"${DP_CXX:-${CXX:-}}\"".to_string(),
            format!("elif {native} && [ -e /etc/alpine-release ]; then CC=cc; CXX=c++"),
        ];
        if cxx_project {
            prelude.push(format!("elif command -v zig >/dev/null 2>&1; then {zig}"));
            prelude.push(format!(
                "elif {native} && command -v g++ >/dev/null 2>&1; then CC=gcc; CXX=g++; echo \"{NOTE_MARKER}{glibc_cxx_note}\" >&2"
            ));
        }
        prelude.push(format!(
            "elif {native} && command -v musl-gcc >/dev/null 2>&1; then CC=musl-gcc"
        ));
        prelude.push(format!("elif command -v zig >/dev/null 2>&1; then {zig}"));
        prelude.push(format!(
            "else echo \"{}{}\" >&2; exit 127; fi",
            crate::MISSING_TOOL,
            if cxx_project { "zig" } else { "musl-gcc" }
        ));
        if let Some(cc) = &cfg.cc {
            prelude.push(format!("CC={}", crate::shell::quote(cc)));
        }
        if let Some(cxx) = &cfg.cxx {
            prelude.push(format!("CXX={}", crate::shell::quote(cxx)));
        }
        prelude.push("export CC; [ -n \"${CXX:-}\" ] && export CXX".to_string());
        prelude.push(static_flags);
        return Ok(Toolchain {
            env: Vec::new(),
            prelude,
            tools: Vec::new(),
            notes: Vec::new(),
            cc: None,
        });
    }
    let mut env: Vec<(String, String)> = Vec::new();
    let mut tools = Vec::new();
    let mut notes = Vec::new();
    let set = |env: &mut Vec<(String, String)>, k: &str, v: String| {
        env.retain(|(n, _)| n != k);
        env.push((k.to_string(), v));
    };
    let alpine = ctx.native()
        && std::path::Path::new("/etc/alpine-release").exists()
        && which("cc").is_some();
    let zig = host_zig();
    let use_zig = |env: &mut Vec<(String, String)>, zig: &str| {
        set(env, "CC", format!("{zig} cc -target {target}"));
        set(env, "CXX", format!("{zig} c++ -target {target}"));
        set(env, "AR", format!("{zig} ar"));
        set(env, "RANLIB", format!("{zig} ranlib"));
    };
    if cfg.cc.is_some() && (cfg.cxx.is_some() || !cxx_project) {
        // Both compilers chosen by the user: nothing to detect.
    } else if alpine {
        // Alpine's own compilers target musl.
        set(&mut env, "CC", "cc".into());
        set(&mut env, "CXX", "c++".into());
        tools.push(Tool::new("cc", "apk add build-base"));
    } else if cxx_project {
        if let Some(z) = &zig {
            use_zig(&mut env, z);
            notes.push(format!(
                "C++ sources: zig c++ -target {target} (musl, libc++ linked statically)"
            ));
        } else if ctx.native() && which("g++").is_some() {
            set(&mut env, "CC", "gcc".into());
            set(&mut env, "CXX", "g++".into());
            notes.push(glibc_cxx_note.to_string());
        } else {
            return Err(BuildError::ToolMissing {
                tool: "zig".into(),
                hint: "a static C++ build needs zig c++ (pip install ziglang) or g++ (apt-get install -y g++)".into(),
            });
        }
    } else if ctx.native() && which("musl-gcc").is_some() {
        set(&mut env, "CC", "musl-gcc".into());
        tools.push(Tool::new("musl-gcc", "apt-get install -y musl-tools"));
    } else if let Some(z) = &zig {
        use_zig(&mut env, z);
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
    if let Some(cc) = &cfg.cc {
        set(&mut env, "CC", cc.clone());
    }
    if let Some(cxx) = &cfg.cxx {
        set(&mut env, "CXX", cxx.clone());
    }
    for var in ["CC", "CXX"] {
        if let Some((_, v)) = env.iter().find(|(k, _)| k == var) {
            let prog = v.split_whitespace().next().unwrap_or("").to_string();
            if !tools.iter().any(|t: &Tool| t.name == prog) && prog != "python3" {
                tools.push(Tool::new(
                    &prog,
                    "install it, or set [c] cc / cxx in distroless-pack.toml",
                ));
            }
        }
    }
    let cc = env.iter().find(|(k, _)| k == "CC").map(|(_, v)| v.clone());
    Ok(Toolchain {
        env,
        prelude: vec![static_flags],
        tools,
        notes,
        cc,
    })
}

/// The number of parallel jobs for make and `cmake --build`.
pub fn jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
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
        mut prelude,
        mut tools,
        notes,
        cc,
    } = toolchain(ctx)?;
    let jobs = jobs();
    let mut plan;
    if system == "make" {
        plan = Plan::new(Locate::Changed(ctx.src.clone()));
        tools.push(Tool::new("make", "apt-get install -y make"));
        // -B: rebuild everything, so no object made by another compiler
        // survives. The toolchain goes on make's command line, which wins
        // over a Makefile's own `CC = gcc`; `-static` travels inside CC, so
        // a Makefile that ignores LDFLAGS still links statically.
        let mut cmd = Cmd::new(["make", "-B"]);
        cmd.push(format!("-j{jobs}"));
        if ctx.container {
            prelude.push("set -- \"CC=$CC -static\"".to_string());
            for (var, suffix) in [("CXX", " -static"), ("AR", ""), ("RANLIB", "")] {
                prelude.push(format!(
                    "if [ -n \"${{{var}:-}}\" ]; then set -- \"$@\" \"{var}=${var}{suffix}\"; fi"
                ));
            }
            cmd.0.push(Word::Raw {
                shell: "\"$@\"".to_string(),
                display: "CC=\"$CC -static\" [CXX AR RANLIB]".to_string(),
            });
        } else {
            for (k, v) in &env {
                match k.as_str() {
                    "CC" | "CXX" => cmd.push(format!("{k}={v} -static")),
                    "AR" | "RANLIB" => cmd.push(format!("{k}={v}")),
                    _ => {}
                }
            }
        }
        for a in cfg.make_args.unwrap_or_default() {
            cmd.push(a);
        }
        plan.steps.push(cmd.into());
        plan.static_claim = Some(format!(
            "C build with make: CC={} -static on make's command line, -j{jobs}, for {}",
            cc.as_deref().unwrap_or("$CC"),
            ctx.platform
        ));
        plan.refusal_hint = Some(format!(
            "the Makefile did not link with `{} -static`: if it calls its compiler or linker by another name (LD, CCLD, a hard-coded gcc), pass them in `make_args` under [c] in distroless-pack.toml (e.g. make_args = [\"LD={0} -static\"]), or choose the compiler with `cc` under [c]",
            cc.as_deref().unwrap_or("$CC")
        ));
    } else {
        let build_dir = format!(
            "{}/{}",
            ctx.src.trim_end_matches('/'),
            cmake_build_dir(ctx.platform)
        );
        plan = Plan::new(Locate::Scan {
            dir: build_dir.clone(),
            prefer: None,
        });
        plan.fresh_dirs.push(build_dir.clone());
        tools.push(Tool::new("cmake", "apt-get install -y cmake"));
        let mut configure = Cmd::new(["cmake", "-S", &ctx.src, "-B", &build_dir])
            .arg("-DCMAKE_BUILD_TYPE=Release")
            .arg("-DBUILD_SHARED_LIBS=OFF")
            .arg("-DCMAKE_EXE_LINKER_FLAGS=-static");
        if ctx.config.offline() {
            configure.push("-DFETCHCONTENT_FULLY_DISCONNECTED=ON");
        }
        for a in cfg.cmake_args.unwrap_or_default() {
            configure.push(a);
        }
        plan.steps.push(configure.into());
        plan.steps.push(
            Cmd::new(["cmake", "--build", &build_dir, "--parallel"])
                .arg(jobs.to_string())
                .into(),
        );
        plan.static_claim = Some(format!(
            "C build with CMake (CC={}), -DCMAKE_EXE_LINKER_FLAGS=-static, for {}",
            cc.as_deref().unwrap_or("$CC"),
            ctx.platform
        ));
        plan.refusal_hint = Some("the CMake project did not link statically: it may set its own linker flags or find shared libraries; pass its options in `cmake_args` under [c] in distroless-pack.toml (e.g. cmake_args = [\"-DFOO_SHARED=OFF\"]), or choose the compilers with `cc` and `cxx` under [c]".to_string());
    }
    plan.env = env;
    plan.prelude = prelude;
    plan.tools = tools;
    plan.notes = notes;
    plan.epilogue.extend(crate::inputs::static_library_lines(
        &ctx.out_path(crate::inputs::STATIC_LIBRARIES_FILE),
        &ctx.src,
        uses_cxx(ctx.dir),
    ));
    plan.versions.extend(crate::inputs::version_lines(
        &ctx.out_path(crate::inputs::TOOLCHAIN_FILE),
        &[
            ("cc", "$CC --version"),
            ("c++", "${CXX:-false} --version"),
            (
                system,
                if system == "make" {
                    "make --version"
                } else {
                    "cmake --version"
                },
            ),
        ],
    ));
    Ok(plan)
}

/// The CMake build tree, relative to the project: kept after the build so
/// its logs (CMakeFiles/CMakeOutput.log, CMakeConfigureLog.yaml) are where
/// cmake's messages say; emptied before each build.
pub fn cmake_build_dir(platform: &crate::Platform) -> String {
    format!("build/distroless-pack-{}", platform.architecture)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BuildConfig, Platform};

    fn ctx<'a>(dir: &'a std::path::Path, cfg: &'a BuildConfig, p: &'a Platform) -> Ctx<'a> {
        Ctx {
            dir,
            config: cfg,
            platform: p,
            src: "/src".into(),
            out: "/out".into(),
            container: true,
        }
    }

    #[test]
    fn container_make_gets_the_toolchain_on_its_command_line() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("Makefile"), "all:\n").unwrap();
        let cfg = BuildConfig {
            c: Some(crate::config::CConfig {
                make_args: Some(vec!["LD=ld.musl".into()]),
                ..Default::default()
            }),
            ..BuildConfig::default()
        };
        let p = Platform::linux("amd64");
        let plan = plan(&ctx(t.path(), &cfg, &p)).unwrap();
        let script = plan.script(None);
        assert!(script.contains("set -- \"CC=$CC -static\""), "{script}");
        assert!(
            script.contains(&format!("make -B -j{} \"$@\" LD=ld.musl", jobs())),
            "{script}"
        );
        assert!(plan.static_claim.is_some() && plan.refusal_hint.is_some());
    }

    #[test]
    fn cxx_sources_are_found_and_cmake_builds_in_the_project() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("CMakeLists.txt"), "project(x)\n").unwrap();
        assert!(!uses_cxx(t.path()));
        std::fs::create_dir_all(t.path().join("src")).unwrap();
        std::fs::write(t.path().join("src/main.cpp"), "int main(){}\n").unwrap();
        assert!(uses_cxx(t.path()));
        let cfg = BuildConfig {
            offline: Some(true),
            ..BuildConfig::default()
        };
        let p = Platform::linux("arm64");
        let plan = plan(&ctx(t.path(), &cfg, &p)).unwrap();
        assert_eq!(plan.fresh_dirs, ["/src/build/distroless-pack-arm64"]);
        let configure = plan.steps[0].cmd.to_string();
        assert!(
            configure.starts_with("cmake -S /src -B /src/build/distroless-pack-arm64"),
            "{configure}"
        );
        assert!(configure.contains("-DFETCHCONTENT_FULLY_DISCONNECTED=ON"));
        assert!(plan
            .script(None)
            .contains("zig c++ -target aarch64-linux-musl"));
    }
}
