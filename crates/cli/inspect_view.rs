//! What `inspect` shows: one JSON document per source (manifest, config
//! summary, layers with their files, attached artifacts) and its human form.

use anyhow::Context as _;
use distroless_pack_image::{Artifact, Blob, Image, Platform, Referrer};
use distroless_pack_ship::registry::referrers::RemoteImage;
use distroless_pack_ship::{list_layer, LayerEntry};
use serde_json::{json, Value};

/// The whole document: the source, its top-level manifest or index, the
/// platforms of an index, and one entry per image.
pub fn document(source: &str, artifact: &Artifact, images: Vec<Value>) -> Value {
    let platforms = match artifact {
        Artifact::Index(x) => Some(
            x.images
                .iter()
                .map(|i| (i.platform.to_string(), i.digest().to_string()))
                .collect(),
        ),
        Artifact::Image(_) => None,
    };
    document_of(source, artifact.top(), platforms, images)
}

/// [`document`] from its parts (a registry source has no `Artifact`).
pub fn document_of(
    source: &str,
    top: &Blob,
    platforms: Option<Vec<(String, String)>>,
    images: Vec<Value>,
) -> Value {
    let mut doc = json!({
        "source": source,
        "digest": top.digest.as_str(),
        "mediaType": top.media_type,
        "size": top.size,
    });
    if let Some(ps) = platforms {
        doc["platforms"] = ps
            .into_iter()
            .map(|(p, d)| json!({"platform": p, "digest": d}))
            .collect();
    }
    doc["images"] = Value::Array(images);
    doc
}

fn strings(v: Option<&Value>) -> Value {
    match v {
        Some(Value::Array(a)) => Value::Array(a.clone()),
        _ => Value::Array(vec![]),
    }
}

fn entry_json(e: &LayerEntry) -> Value {
    let mut v = json!({
        "path": e.path,
        "type": e.kind,
        "mode": format!("{:04o}", e.mode),
        "size": e.size,
        "uid": e.uid,
        "gid": e.gid,
    });
    if let Some(l) = &e.link {
        v["link"] = l.clone().into();
    }
    v
}

/// One referrer as `inspect` lists it.
fn referrer_json(r: &Referrer) -> Value {
    json!({
        "artifactType": r.artifact_type,
        "digest": r.digest().as_str(),
        "mediaType": r.manifest.media_type,
        "size": r.manifest.size,
        "annotations": r.annotations,
        // as the manifest gives them (with their annotations: the title)
        "layers": r
            .manifest
            .read_all()
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|m| m.get("layers").cloned())
            .unwrap_or_else(|| r.layers.iter().map(Blob::descriptor_json).collect()),
    })
}

/// One image as JSON: manifest, config summary, layers with files, and
/// the artifacts attached to it.
pub fn describe(img: &Image) -> anyhow::Result<Value> {
    let config: Value =
        serde_json::from_slice(&img.config.read_all()?).context("image config is not JSON")?;
    let diff_ids = diff_ids(&config);
    let mut layers = Vec::new();
    for (i, l) in img.layers.iter().enumerate() {
        let files = list_layer(l)?;
        layers.push(json!({
            "digest": l.digest.as_str(),
            "mediaType": l.media_type,
            "size": l.size,
            "diffId": diff_ids.get(i).cloned().unwrap_or(Value::Null),
            "files": files.iter().map(entry_json).collect::<Vec<_>>(),
        }));
    }
    let mut v = describe_parts(&img.manifest, &img.config, &img.platform, layers)?;
    v["referrers"] = img.referrers.iter().map(referrer_json).collect();
    Ok(v)
}

/// An image in a registry: as [`describe`], its layers without their files
/// (they are not fetched), its referrers as the registry lists them.
pub fn describe_remote(img: &RemoteImage) -> anyhow::Result<Value> {
    let config: Value =
        serde_json::from_slice(&img.config.read_all()?).context("image config is not JSON")?;
    let manifest: Value =
        serde_json::from_slice(&img.manifest.read_all()?).context("image manifest is not JSON")?;
    let diff_ids = diff_ids(&config);
    let layers = manifest["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, l)| {
            json!({
                "digest": l["digest"],
                "mediaType": l["mediaType"],
                "size": l["size"],
                "diffId": diff_ids.get(i).cloned().unwrap_or(Value::Null),
            })
        })
        .collect();
    let mut v = describe_parts(&img.manifest, &img.config, &img.platform, layers)?;
    v["referrers"] = serde_json::to_value(&img.referrers.referrers)?;
    v["referrersFrom"] = serde_json::to_value(img.referrers.via)?;
    Ok(v)
}

fn diff_ids(config: &Value) -> Vec<Value> {
    config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn describe_parts(
    manifest_blob: &Blob,
    config_blob: &Blob,
    platform: &Platform,
    layers: Vec<Value>,
) -> anyhow::Result<Value> {
    let config: Value =
        serde_json::from_slice(&config_blob.read_all()?).context("image config is not JSON")?;
    let manifest: Value =
        serde_json::from_slice(&manifest_blob.read_all()?).context("image manifest is not JSON")?;
    let c = config.get("config").cloned().unwrap_or(Value::Null);
    let ports: Vec<String> = match c.get("ExposedPorts") {
        Some(Value::Object(m)) => m.keys().cloned().collect(),
        _ => vec![],
    };
    let labels = match c.get("Labels") {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        _ => json!({}),
    };
    Ok(json!({
        "digest": manifest_blob.digest.as_str(),
        "mediaType": manifest_blob.media_type,
        "size": manifest_blob.size,
        "platform": platform.to_string(),
        "annotations": manifest.get("annotations").cloned().unwrap_or(json!({})),
        "config": {
            "digest": config_blob.digest.as_str(),
            "size": config_blob.size,
            "entrypoint": strings(c.get("Entrypoint")),
            "cmd": strings(c.get("Cmd")),
            "env": strings(c.get("Env")),
            "user": c.get("User").and_then(Value::as_str).unwrap_or(""),
            "workdir": c.get("WorkingDir").and_then(Value::as_str).unwrap_or(""),
            "ports": ports,
            "labels": labels,
            "created": config.get("created").cloned().unwrap_or(Value::Null),
        },
        "layers": layers,
    }))
}

fn type_char(t: &str) -> char {
    match t {
        "dir" => 'd',
        "symlink" => 'l',
        "hardlink" => 'h',
        "char" => 'c',
        "block" => 'b',
        "fifo" => 'p',
        _ => '-',
    }
}

/// `-rwxr-xr-x` from a type and an octal mode string.
fn mode_string(t: &str, mode: &str) -> String {
    let m = u32::from_str_radix(mode, 8).unwrap_or(0);
    let mut s = String::new();
    s.push(type_char(t));
    for shift in [6, 3, 0] {
        let bits = (m >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let special = match shift {
            6 => m & 0o4000 != 0,
            3 => m & 0o2000 != 0,
            _ => m & 0o1000 != 0,
        };
        s.push(match (bits & 1 != 0, special, shift) {
            (true, true, 0) => 't',
            (false, true, 0) => 'T',
            (true, true, _) => 's',
            (false, true, _) => 'S',
            (true, false, _) => 'x',
            (false, false, _) => '-',
        });
    }
    s
}

fn list(v: &Value) -> String {
    match v {
        Value::Array(a) if a.is_empty() => "(none)".into(),
        Value::Array(a) => serde_json::to_string(a).unwrap_or_default(),
        Value::String(s) if s.is_empty() => "(none)".into(),
        Value::String(s) => s.clone(),
        Value::Null => "(none)".into(),
        other => other.to_string(),
    }
}

/// The human form of the JSON document.
pub fn human(doc: &Value) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let _ = writeln!(o, "source:      {}", s(&doc["source"]));
    let _ = writeln!(o, "digest:      {}", s(&doc["digest"]));
    let _ = writeln!(o, "media type:  {}", s(&doc["mediaType"]));
    if let Some(ps) = doc.get("platforms").and_then(Value::as_array) {
        let _ = writeln!(o, "platforms:");
        for p in ps {
            let _ = writeln!(o, "  {:<16} {}", s(&p["platform"]), s(&p["digest"]));
        }
    }
    for img in doc["images"].as_array().into_iter().flatten() {
        let c = &img["config"];
        let _ = writeln!(o);
        if doc.get("platforms").is_some() {
            let _ = writeln!(o, "image {} ({})", s(&img["platform"]), s(&img["digest"]));
        }
        let _ = writeln!(o, "platform:    {}", s(&img["platform"]));
        let _ = writeln!(
            o,
            "manifest:    {} ({} bytes)",
            s(&img["digest"]),
            img["size"]
        );
        let _ = writeln!(o, "config:      {} ({} bytes)", s(&c["digest"]), c["size"]);
        let _ = writeln!(o, "entrypoint:  {}", list(&c["entrypoint"]));
        let _ = writeln!(o, "cmd:         {}", list(&c["cmd"]));
        let _ = writeln!(o, "user:        {}", list(&c["user"]));
        let _ = writeln!(o, "workdir:     {}", list(&c["workdir"]));
        let _ = writeln!(o, "ports:       {}", list(&c["ports"]));
        let _ = writeln!(o, "created:     {}", list(&c["created"]));
        let env = c["env"].as_array().cloned().unwrap_or_default();
        let _ = writeln!(
            o,
            "env:{}",
            if env.is_empty() {
                "         (none)"
            } else {
                ""
            }
        );
        for e in &env {
            let _ = writeln!(o, "  {}", s(e));
        }
        let labels = c["labels"].as_object().cloned().unwrap_or_default();
        let _ = writeln!(
            o,
            "labels:{}",
            if labels.is_empty() {
                "      (none)"
            } else {
                ""
            }
        );
        for (k, v) in &labels {
            let _ = writeln!(o, "  {k}={}", s(v));
        }
        if let Some(ann) = img["annotations"].as_object().filter(|a| !a.is_empty()) {
            let _ = writeln!(o, "annotations:");
            for (k, v) in ann {
                let _ = writeln!(o, "  {k}={}", s(v));
            }
        }
        let layers = img["layers"].as_array().cloned().unwrap_or_default();
        let _ = writeln!(o, "layers:      {}", layers.len());
        for (i, l) in layers.iter().enumerate() {
            let _ = writeln!(
                o,
                "  [{i}] {} ({} bytes, {})",
                s(&l["digest"]),
                l["size"],
                s(&l["mediaType"])
            );
            let _ = writeln!(o, "      diff_id {}", list(&l["diffId"]));
            for f in l["files"].as_array().into_iter().flatten() {
                let t = s(&f["type"]);
                let link = f
                    .get("link")
                    .and_then(Value::as_str)
                    .map(|l| format!(" -> {l}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    o,
                    "      {} {:>5}/{:<5} {:>10}  {}{link}",
                    mode_string(&t, &s(&f["mode"])),
                    f["uid"].as_u64().unwrap_or(0),
                    f["gid"].as_u64().unwrap_or(0),
                    f["size"].as_u64().unwrap_or(0),
                    s(&f["path"])
                );
            }
        }
        let refs = img["referrers"].as_array().cloned().unwrap_or_default();
        let from = match img.get("referrersFrom").and_then(Value::as_str) {
            Some("api") => " (from the registry's referrers API)",
            Some("tag-schema") => " (from the referrers tag schema)",
            _ => "",
        };
        let _ = writeln!(o, "referrers:   {}{from}", refs.len());
        for r in &refs {
            let _ = writeln!(
                o,
                "  {} {} ({} bytes)",
                s(&r["artifactType"]),
                s(&r["digest"]),
                r["size"]
            );
            for l in r["layers"].as_array().into_iter().flatten() {
                let _ = writeln!(
                    o,
                    "      {} ({} bytes, {})",
                    s(&l["digest"]),
                    l["size"],
                    s(&l["mediaType"])
                );
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_render_like_ls() {
        assert_eq!(mode_string("file", "0755"), "-rwxr-xr-x");
        assert_eq!(mode_string("dir", "1777"), "drwxrwxrwt");
        assert_eq!(mode_string("file", "4755"), "-rwsr-xr-x");
        assert_eq!(mode_string("symlink", "0777"), "lrwxrwxrwx");
    }
}
