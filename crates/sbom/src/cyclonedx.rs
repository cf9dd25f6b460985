//! CycloneDX 1.6 JSON (cyclonedx.org/docs/1.6/json).
//!
//! `metadata.component` is the image (type `container`); the binary is an
//! `application` component holding its file's hashes; each component is a
//! `library` (or `framework` for a runtime); the image's other files are
//! `file` components. `dependencies`: the image on the application and the
//! files, the application on every component. The serial number is a UUID
//! made from the image digest and the document's contents; the timestamp
//! is `created`.

use serde_json::{json, Value};

use crate::{purl, rfc3339, short_id, ComponentKind, Hash, ImageFile, Sbom};

fn alg(h: Hash) -> &'static str {
    match h {
        Hash::Sha1 => "SHA-1",
        Hash::Sha256 => "SHA-256",
        Hash::Sha512 => "SHA-512",
    }
}

fn file_ref(f: &ImageFile) -> String {
    format!("file:{}", f.path)
}

fn file(f: &ImageFile) -> Value {
    json!({
        "type": "file",
        "bom-ref": file_ref(f),
        "name": f.path,
        "hashes": [
            {"alg": "SHA-1", "content": f.sha1},
            {"alg": "SHA-256", "content": f.sha256},
        ],
        "properties": [
            {"name": "distroless-pack:role", "value": f.role.name()},
            {"name": "distroless-pack:size", "value": f.size.to_string()},
        ],
    })
}

/// The CycloneDX document.
pub fn document(sbom: &Sbom) -> Vec<u8> {
    let s = &sbom.subject;
    let app = &sbom.application;
    let image_ref = format!("image:{}", s.digest);
    let app_ref = "application".to_string();
    let mut components = Vec::new();

    let mut a = json!({
        "type": "application",
        "bom-ref": app_ref,
        "name": app.name,
        "hashes": [
            {"alg": "SHA-1", "content": app.file.sha1},
            {"alg": "SHA-256", "content": app.file.sha256},
        ],
        "properties": [
            {"name": "distroless-pack:path", "value": app.file.path},
            {"name": "distroless-pack:size", "value": app.file.size.to_string()},
        ],
    });
    if !app.version.is_empty() {
        a["version"] = json!(app.version);
    }
    if let Some(p) = &app.purl {
        a["purl"] = json!(p);
    }
    a["supplier"] = json!({"name": crate::spdx::publisher(&s.name)});
    if let Some(t) = &app.toolchain {
        a["properties"]
            .as_array_mut()
            .expect("an array")
            .push(json!({"name": "distroless-pack:toolchain", "value": t}));
    }
    components.push(a);

    let mut app_deps = Vec::new();
    for c in &sbom.components {
        let r = c
            .purl
            .clone()
            .unwrap_or_else(|| format!("component:{}", short_id(&c.key())));
        let mut v = json!({
            "type": match c.kind {
                ComponentKind::Library => "library",
                ComponentKind::Runtime => "framework",
            },
            "bom-ref": r,
            "name": c.name,
        });
        if !c.version.is_empty() {
            v["version"] = json!(c.version);
        }
        if let Some(p) = &c.purl {
            v["purl"] = json!(p);
        }
        if !c.hashes.is_empty() {
            v["hashes"] = c
                .hashes
                .iter()
                .map(|(h, x)| json!({"alg": alg(*h), "content": x}))
                .collect();
        }
        if let Some(l) = &c.license {
            v["licenses"] = json!([{"expression": l}]);
        }
        if let Some(x) = c.supplier() {
            v["supplier"] = json!({"name": x});
        }
        let mut props: Vec<Value> = c
            .origins
            .iter()
            .map(|o| json!({"name": "distroless-pack:found-in", "value": o.name()}))
            .collect();
        for (k, x) in &c.properties {
            props.push(json!({"name": format!("distroless-pack:{k}"), "value": x}));
        }
        v["properties"] = json!(props);
        app_deps.push(json!(r));
        components.push(v);
    }
    let mut image_deps = vec![json!(app_ref)];
    for f in &sbom.files {
        components.push(file(f));
        image_deps.push(json!(file_ref(f)));
    }
    let app_component = if s.is_image {
        None
    } else {
        // A bare executable: it is the described component.
        let i = components
            .iter()
            .position(|c| c["bom-ref"] == app_ref.as_str())
            .expect("the application is listed");
        Some(components.remove(i))
    };
    components.sort_by(|a, b| a["bom-ref"].as_str().cmp(&b["bom-ref"].as_str()));
    let sort = |v: &mut Vec<Value>| v.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    sort(&mut app_deps);
    sort(&mut image_deps);
    let mut dependencies = vec![json!({"ref": app_ref, "dependsOn": app_deps})];
    if s.is_image {
        dependencies.push(json!({"ref": image_ref, "dependsOn": image_deps}));
    }
    for c in &components {
        let r = c["bom-ref"].as_str().unwrap_or("");
        if r != app_ref {
            dependencies.push(json!({"ref": r, "dependsOn": []}));
        }
    }
    dependencies.sort_by(|a, b| a["ref"].as_str().cmp(&b["ref"].as_str()));

    let mut doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(sbom.created),
            "tools": {"components": [{
                "type": "application",
                "name": crate::TOOL_NAME,
                "version": crate::TOOL_VERSION,
            }]},
            "component": app_component.unwrap_or_else(|| json!({
                "type": "container",
                "bom-ref": image_ref,
                "name": s.name,
                "version": s.digest.as_str(),
                "hashes": [{"alg": "SHA-256", "content": s.digest.hex()}],
                "purl": purl::oci(&s.name, s.digest.as_str(), &s.platform.architecture),
                "properties": [{"name": "distroless-pack:platform", "value": s.platform.to_string()}],
            })),
        },
        "components": components,
        "dependencies": dependencies,
    });
    let body = crate::to_bytes(&doc);
    doc["serialNumber"] = json!(uuid(&format!(
        "{}\n{}",
        s.digest,
        String::from_utf8_lossy(&body)
    )));
    crate::to_bytes(&doc)
}

/// A name-based UUID (version 8, RFC 9562) from the sha256 of `what`.
fn uuid(what: &str) -> String {
    use sha2::Digest as _;
    let mut b: [u8; 16] = sha2::Sha256::digest(what.as_bytes())[..16]
        .try_into()
        .expect("16 bytes");
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}
