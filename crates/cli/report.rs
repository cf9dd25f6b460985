//! What `pack` and `build` print on stdout: the digest, or with `--json`
//! one document; and their failures as JSON documents too.

use std::io::{self, Write};

use distroless_pack_pipeline::build;
use distroless_pack_pipeline::pack::{self, image_size};
use distroless_pack_pipeline::PipelineError;
use serde_json::{json, Value};

use crate::exit::{self, WithCode};

/// A pipeline error, tagged with the code of its kind.
pub fn pipeline(e: PipelineError) -> anyhow::Error {
    let kind = e.kind();
    exit::fail(e, kind)
}

/// One JSON document on stdout, pretty-printed.
pub fn print_json(doc: &Value) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, doc)
        .map_err(io::Error::from)
        .code(exit::OUTPUT)?;
    writeln!(out).code(exit::OUTPUT)?;
    out.flush().code(exit::OUTPUT)
}

/// Lines on stdout.
pub fn print_lines<S: AsRef<str>>(lines: impl IntoIterator<Item = S>) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    for l in lines {
        writeln!(out, "{}", l.as_ref()).code(exit::OUTPUT)?;
    }
    out.flush().code(exit::OUTPUT)
}

/// Without `--json`: the digest, and each pushed `NAME@sha256:...` as
/// `push` prints them.
pub fn print_digest(r: &pack::Result, outputs: &pack::Outputs) -> anyhow::Result<()> {
    // `docker-archive:-` / `oci-archive:-`: stdout is the archive.
    if outputs.writes_stdout() {
        return Ok(());
    }
    let mut lines = vec![r.artifact.digest().to_string()];
    for s in &r.shipped {
        if let Some(pushed) = s.reference.as_ref().filter(|_| s.kind == "push") {
            if !lines.contains(pushed) {
                lines.push(pushed.clone());
            }
        }
    }
    print_lines(lines)
}

/// With `--json`, a refusal or a failed build still gets a document.
pub fn failure_json(e: &PipelineError, built: bool) -> Option<Value> {
    match e {
        PipelineError::Refused(r) => Some(match &r.built {
            None => json!({
                "schema_version": 1,
                "packed": false,
                "file": r.binary.display().to_string(),
                "platform": r.platform.to_string(),
                "findings": r.report.to_json(),
            }),
            Some(distroless_pack_pipeline::BuiltFrom { name, .. }) => json!({
                "schema_version": 1,
                "built": true,
                "packed": false,
                "binary": name,
                "platform": r.platform.to_string(),
                "findings": r.report.to_json(),
            }),
        }),
        PipelineError::Compile { platform, .. } if built => Some(json!({
            "schema_version": 1,
            "built": false,
            "packed": false,
            "platform": platform.to_string(),
            "error": e.to_string().replace('\n', " "),
        })),
        _ => None,
    }
}

/// `pack --json`.
pub fn pack_json(r: &pack::Result) -> Value {
    let images: Vec<Value> = r
        .packed
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let img = &p.image;
            json!({
                "digest": img.digest().to_string(),
                "platform": img.platform.to_string(),
                "size": image_size(img),
                "config": img.config.digest.to_string(),
                "layers": img.layers.iter().map(|l| json!({
                    "digest": l.digest.to_string(),
                    "size": l.size,
                    "media_type": l.media_type,
                })).collect::<Vec<_>>(),
                "findings": p.report.as_ref().map(|r| r.to_json()),
                "verified": p.report.is_some(),
                "documents": documents_json(r.attested.get(i)),
            })
        })
        .collect();
    json!({
        "schema_version": 1,
        "packed": true,
        "digest": r.artifact.digest().to_string(),
        "name": r.names[0].full(),
        "tags": r.names.iter().map(|n| n.full()).collect::<Vec<_>>(),
        "media_type": r.artifact.top().media_type,
        "size": r.artifact.images().iter().map(image_size).sum::<u64>(),
        "platform": r.packed.first().map(|p| p.image.platform.to_string()),
        "images": images,
        "outputs": r.shipped,
        "sbom_files": r.sbom_files,
    })
}

/// The SBOM and provenance documents made for one image.
fn documents_json(a: Option<&distroless_pack_pipeline::attest::Attested>) -> Value {
    a.map(|a| {
        a.documents
            .iter()
            .map(|d| {
                json!({
                    "format": d.format,
                    "media_type": d.media_type,
                    "artifact_type": d.artifact_type,
                    "digest": distroless_pack_image::Digest::sha256_of(&d.bytes).to_string(),
                    "size": d.bytes.len(),
                })
            })
            .collect::<Vec<_>>()
    })
    .into()
}

/// `build --json`.
pub fn build_json(r: &build::Result) -> Value {
    let p = &r.packed;
    let images: Vec<Value> = p
        .packed
        .iter()
        .zip(&r.builds)
        .enumerate()
        .map(|(i, (pk, (platform, b)))| {
            json!({
                "platform": platform.to_string(),
                "digest": pk.image.digest().to_string(),
                "size": image_size(&pk.image),
                "binary": {
                    "name": b.name,
                    "size": build::binary_size(b),
                    "debug_symbols": b.debug_symbols.is_some(),
                    "unstripped_size": b.unstripped_size,
                },
                "build": {
                    "kind": b.kind.as_str(),
                    "runner": b.runner,
                    "command": b.command,
                    "notes": b.notes,
                    "inputs": b.inputs,
                },
                "verified": pk.report.is_some(),
                "findings": pk.report.as_ref().map(|r| r.to_json()),
                "documents": documents_json(p.attested.get(i)),
            })
        })
        .collect();
    json!({
        "schema_version": 1,
        "built": true,
        "packed": true,
        "digest": p.artifact.digest().to_string(),
        "name": p.names[0].full(),
        "tags": p.names.iter().map(|n| n.full()).collect::<Vec<_>>(),
        "kind": r.builds[0].1.kind.as_str(),
        "binary_size": r.builds.iter().map(|(_, b)| build::binary_size(b)).sum::<u64>(),
        "images": images,
        "outputs": p.shipped,
        "sbom_files": p.sbom_files,
    })
}

/// The end of `pack` and `build`: the note when nothing was written, then
/// the JSON document `doc` (with `--json`) or the digest lines.
pub fn print_result(
    r: &pack::Result,
    outputs: &pack::Outputs,
    json: bool,
    doc: impl FnOnce() -> Value,
) -> anyhow::Result<u8> {
    if !outputs.any() {
        note_no_output(json);
    }
    if json {
        print_json(&doc())?;
    } else {
        print_digest(r, outputs)?;
    }
    Ok(exit::OK)
}

/// Prints `--json`'s document for a failure, if it has one, and turns the
/// error into the command's.
pub fn failed(e: PipelineError, json: bool, built: bool) -> anyhow::Error {
    if let Some(doc) = failure_json(&e, built).filter(|_| json) {
        if let Err(p) = print_json(&doc) {
            return p;
        }
    }
    pipeline(e)
}

/// The note when no output was asked for (like `docker build` without
/// `--load`).
pub fn note_no_output(quiet: bool) {
    if !quiet {
        let _ = writeln!(io::stderr(), "note: no --output, --load or --push given: the image was built and nothing was written");
    }
}

/// The compiler's output of a failed build, framed, on stderr (unless it
/// was already streamed).
pub fn print_build_output(output: Option<&str>) {
    let Some(output) = output.filter(|o| !o.trim().is_empty()) else {
        return;
    };
    let mut err = io::stderr();
    let _ = writeln!(err, "---- build output ----");
    let _ = err.write_all(output.as_bytes());
    if !output.ends_with('\n') {
        let _ = writeln!(err);
    }
    let _ = writeln!(err, "---- end of build output ----");
}

/// `run --trace`'s report on stderr: one line of JSON, or the findings for
/// a human.
pub fn print_trace(
    image: &distroless_pack_image::Image,
    outcome: &distroless_pack_run::Outcome,
    trace: &distroless_pack_run::Trace,
    as_json: bool,
) {
    let findings = distroless_pack_run::findings(&trace.lookups, &trace.found);
    let mut err = io::stderr();
    if as_json {
        let doc = json!({
            "schema_version": 1,
            "image": image.digest().to_string(),
            "platform": image.platform.to_string(),
            "argv": outcome.argv,
            "exit_code": outcome.status.code(),
            "status": outcome.status.describe(),
            "traced_calls": trace.traced_calls,
            "findings": findings,
        });
        let _ = writeln!(err, "{doc}");
    } else if findings.is_empty() {
        let _ = writeln!(err, "trace: the program found every file it looked for");
    } else {
        let _ = writeln!(
            err,
            "trace: the program looked for {} thing{} the image does not have:",
            findings.len(),
            if findings.len() == 1 { "" } else { "s" }
        );
        let _ = err.write_all(distroless_pack_run::render_findings(&findings).as_bytes());
    }
}
