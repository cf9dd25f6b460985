//! SPDX 2.3 JSON (spdx.github.io/spdx-spec/v2.3).
//!
//! Elements: the image (`SPDXRef-Image`, purpose CONTAINER, purl
//! `pkg:oci/...`), the binary as the application package
//! (`SPDXRef-Application`) with its file, every component as a package
//! (LIBRARY, or FRAMEWORK for a runtime), the image's other files.
//! A bare executable (`sbom FILE`) has no image element: the document
//! DESCRIBES the application.
//! Relationships: DOCUMENT DESCRIBES the image; the image CONTAINS the
//! application and every file (so the image has `filesAnalyzed` and a
//! package verification code); the binary's file is GENERATED_FROM the
//! application; the application DEPENDS_ON each component (as ko writes
//! Go modules).
//!
//! The namespace is `https://spdx.org/spdxdocs/distroless-pack/sha256-HEX/ID`
//! (HEX the image digest, ID a hash of the rest of the document); element
//! ids hash what they name. Packages are sorted by id, files by path.

use serde_json::{json, Value};

use crate::{purl, rfc3339, short_id, ComponentKind, FileRole, Hash, ImageFile, Sbom};

/// Cargo's old `A/B` license syntax as the SPDX expression `A OR B`.
pub fn normalize_license(l: &str) -> String {
    if l.contains('/') && !l.contains(" OR ") && !l.contains(" AND ") {
        l.split('/').map(str::trim).collect::<Vec<_>>().join(" OR ")
    } else {
        l.trim().to_string()
    }
}

fn hash_name(h: Hash) -> &'static str {
    match h {
        Hash::Sha1 => "SHA1",
        Hash::Sha256 => "SHA256",
        Hash::Sha512 => "SHA512",
    }
}

fn file_id(f: &ImageFile) -> String {
    format!("SPDXRef-File-{}", short_id(&f.path))
}

fn file(f: &ImageFile) -> Value {
    let types = match f.role {
        FileRole::Binary => json!(["BINARY", "APPLICATION"]),
        FileRole::CaBundle | FileRole::Passwd => json!(["TEXT"]),
        _ => json!(["OTHER"]),
    };
    json!({
        "SPDXID": file_id(f),
        "fileName": format!(".{}", f.path),
        "checksums": [
            {"algorithm": "SHA1", "checksumValue": f.sha1},
            {"algorithm": "SHA256", "checksumValue": f.sha256},
        ],
        "fileTypes": types,
        "licenseConcluded": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "comment": format!("role: {}; size: {} bytes", f.role.name(), f.size),
    })
}

fn purl_ref(p: &str) -> Value {
    json!([{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": p}])
}

/// The SPDX document.
pub fn document(sbom: &Sbom) -> Vec<u8> {
    let s = &sbom.subject;
    let app = &sbom.application;
    let mut packages = Vec::new();

    let publisher = format!("Organization: {}", publisher(&s.name));
    let mut relationships = Vec::new();
    if s.is_image {
        relationships.push(rel("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image"));
        packages.push(json!({
            "SPDXID": "SPDXRef-Image",
            "name": s.name,
            "versionInfo": s.digest.as_str(),
            "supplier": publisher,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": true,
            "packageVerificationCode": {"packageVerificationCodeValue": verification_code(sbom)},
            "licenseInfoFromFiles": ["NOASSERTION"],
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "checksums": [{"algorithm": "SHA256", "checksumValue": s.digest.hex()}],
            "externalRefs": purl_ref(&purl::oci(&s.name, s.digest.as_str(), &s.platform.architecture)),
            "primaryPackagePurpose": "CONTAINER",
            "comment": format!("FROM scratch image for {}, made by {} {}", s.platform, crate::TOOL_NAME, crate::TOOL_VERSION),
        }));
        relationships.push(rel("SPDXRef-Image", "CONTAINS", "SPDXRef-Application"));
    } else {
        relationships.push(rel("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Application"));
    }

    let mut a = json!({
        "SPDXID": "SPDXRef-Application",
        "name": app.name,
        "supplier": publisher,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "checksums": [
            {"algorithm": "SHA1", "checksumValue": app.file.sha1},
            {"algorithm": "SHA256", "checksumValue": app.file.sha256},
        ],
        "primaryPackagePurpose": "APPLICATION",
        "comment": format!(
            "{} {}, {} bytes{}",
            app.file.path,
            if s.is_image { "in the image" } else { "(a bare executable)" },
            app.file.size,
            app.toolchain.as_ref().map(|t| format!(", built with {t}")).unwrap_or_default()
        ),
    });
    if !app.version.is_empty() {
        a["versionInfo"] = json!(app.version);
    }
    if let Some(p) = &app.purl {
        a["externalRefs"] = purl_ref(p);
    }
    packages.push(a);
    if s.is_image {
        relationships.push(rel("SPDXRef-Image", "CONTAINS", &file_id(&app.file)));
    }
    relationships.push(rel(
        &file_id(&app.file),
        "GENERATED_FROM",
        "SPDXRef-Application",
    ));

    for c in &sbom.components {
        let id = format!("SPDXRef-Package-{}", short_id(&c.key()));
        let mut p = json!({
            "SPDXID": id,
            "name": c.name,
            "supplier": supplier(c, &s.name),
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": c.license.clone().unwrap_or_else(|| "NOASSERTION".into()),
            "copyrightText": "NOASSERTION",
            "primaryPackagePurpose": match c.kind {
                ComponentKind::Library => "LIBRARY",
                ComponentKind::Runtime => "FRAMEWORK",
            },
        });
        if !c.version.is_empty() {
            p["versionInfo"] = json!(c.version);
        }
        if !c.hashes.is_empty() {
            p["checksums"] = c
                .hashes
                .iter()
                .map(|(h, v)| json!({"algorithm": hash_name(*h), "checksumValue": v}))
                .collect();
        }
        if let Some(u) = &c.purl {
            p["externalRefs"] = purl_ref(u);
        }
        let mut comment = format!(
            "found in: {}",
            c.origins
                .iter()
                .map(|o| o.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (k, v) in &c.properties {
            comment.push_str(&format!("; {k}: {v}"));
        }
        p["comment"] = json!(comment);
        relationships.push(rel("SPDXRef-Application", "DEPENDS_ON", &id));
        packages.push(p);
    }

    let mut files = vec![file(&app.file)];
    for f in &sbom.files {
        files.push(file(f));
        relationships.push(rel("SPDXRef-Image", "CONTAINS", &file_id(f)));
    }
    packages.sort_by(|a, b| a["SPDXID"].as_str().cmp(&b["SPDXID"].as_str()));
    files.sort_by(|a, b| a["fileName"].as_str().cmp(&b["fileName"].as_str()));
    relationships.sort_by(|a, b| {
        let k = |v: &Value| {
            (
                v["spdxElementId"].as_str().unwrap_or("").to_string(),
                v["relationshipType"].as_str().unwrap_or("").to_string(),
                v["relatedSpdxElement"].as_str().unwrap_or("").to_string(),
            )
        };
        k(a).cmp(&k(b))
    });
    relationships.dedup();

    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}@{}", s.name, s.digest),
        "creationInfo": {
            "created": rfc3339(sbom.created),
            "creators": [
                format!("Tool: {}-{}", crate::TOOL_NAME, crate::TOOL_VERSION),
                format!("Organization: {}", crate::TOOL_NAME),
            ],
        },
        "packages": packages,
        "files": files,
        "relationships": relationships,
    });
    // The namespace: the image digest and a hash of everything else.
    let body = crate::to_bytes(&doc);
    let id = short_id(&String::from_utf8_lossy(&body));
    doc["documentNamespace"] = json!(format!(
        "https://spdx.org/spdxdocs/{}/sha256-{}/{id}",
        crate::TOOL_NAME,
        s.digest.hex()
    ));
    crate::to_bytes(&doc)
}

/// A component's supplier: what its purl says, the image's publisher for
/// a static library of the project itself, else NOASSERTION.
fn supplier(c: &crate::Component, image: &str) -> String {
    match c.supplier() {
        Some(x) => format!("Organization: {x}"),
        None if c
            .properties
            .get("static-library:origin")
            .map(String::as_str)
            == Some("project") =>
        {
            format!("Organization: {}", publisher(image))
        }
        None => "NOASSERTION".into(),
    }
}

/// Who publishes the image: its repository without the tag
/// (`ghcr.io/acme/web`), the name it is published under.
pub fn publisher(name: &str) -> String {
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo.to_string(),
        _ => name.to_string(),
    }
}

/// SPDX 2.3 section 7.9: the SHA1 of the sorted SHA1s of the package's
/// files (the image's: the binary and every other file).
fn verification_code(sbom: &Sbom) -> String {
    use sha1::{Digest as _, Sha1};
    let mut sums: Vec<&str> = std::iter::once(&sbom.application.file)
        .chain(&sbom.files)
        .map(|f| f.sha1.as_str())
        .collect();
    sums.sort();
    hex::encode(Sha1::digest(sums.concat().as_bytes()))
}

fn rel(a: &str, kind: &str, b: &str) -> Value {
    json!({"spdxElementId": a, "relationshipType": kind, "relatedSpdxElement": b})
}
