//! `build --dry-run`: the build script (and generated files) each platform
//! would run, as text or one JSON document.

use std::io::{self, Write};
use std::path::Path;

use distroless_pack_compile::config::BuildConfig;
use distroless_pack_compile::{self as compile};
use distroless_pack_image::Platform;

use crate::exit::{self, WithCode};
use crate::report;

pub fn print(
    dir: &Path,
    cfg: &BuildConfig,
    platforms: &[Platform],
    json: bool,
) -> anyhow::Result<u8> {
    let fail = |e: compile::BuildError| exit::fail(&e, e.kind());
    let runner = compile::Runner::resolve(cfg).map_err(fail)?;
    let mut docs = Vec::new();
    for p in platforms {
        let req = compile::Request {
            dir: dir.to_path_buf(),
            config: cfg.clone(),
            platform: p.clone(),
            stream_output: false,
        };
        let (kind, plan) = compile::plan_for(&req, runner.is_container()).map_err(fail)?;
        docs.push(serde_json::json!({
            "platform": p.to_string(),
            "kind": kind.as_str(),
            "runner": runner.describe(),
            "command": plan.steps.iter().map(|s| s.cmd.words()).collect::<Vec<_>>(),
            "env": plan.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "script": plan.script(cfg.pre_build.as_deref()),
            "files": plan.files.iter().map(|(n, c)| serde_json::json!({"name": n, "contents": c})).collect::<Vec<_>>(),
            "notes": plan.notes,
        }));
    }
    if json {
        report::print_json(
            &serde_json::json!({ "schema_version": 1, "dry_run": true, "builds": docs }),
        )?;
        return Ok(exit::OK);
    }
    let mut out = io::stdout().lock();
    for d in &docs {
        writeln!(
            out,
            "# {} build for {} ({})",
            d["kind"].as_str().unwrap_or(""),
            d["platform"].as_str().unwrap_or(""),
            d["runner"].as_str().unwrap_or("")
        )
        .code(exit::OUTPUT)?;
        for f in d["files"].as_array().into_iter().flatten() {
            writeln!(
                out,
                "# generated file {}:",
                f["name"].as_str().unwrap_or("")
            )
            .code(exit::OUTPUT)?;
            for l in f["contents"].as_str().unwrap_or("").lines() {
                writeln!(out, "#   {l}").code(exit::OUTPUT)?;
            }
        }
        write!(out, "{}", d["script"].as_str().unwrap_or("")).code(exit::OUTPUT)?;
    }
    out.flush().code(exit::OUTPUT)?;
    Ok(exit::OK)
}
