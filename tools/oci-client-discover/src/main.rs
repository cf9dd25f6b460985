//! `oci-client-discover [--plain-http] REGISTRY/REPO@DIGEST`: the referrers
//! of a manifest, as `oras discover --format json` lists them, found by
//! oci-client (github.com/oras-project/rust-oci-client): the referrers API,
//! or the referrers tag schema where the registry answers 404.
//!
//! Prints one JSON object: `manifests`, the referrers index's descriptors as
//! the registry gave them, and `subjects`, the `subject.digest` of each
//! referrer's own manifest, fetched by digest. Exit 1 with one line on
//! stderr when the registry or the reference is wrong.

use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use serde_json::{json, Value};

fn usage() -> ! {
    eprintln!(
        "usage: oci-client-discover [--plain-http] [--artifact-type TYPE] REGISTRY/REPO@DIGEST"
    );
    std::process::exit(2)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut plain_http = false;
    let mut artifact_type: Option<String> = None;
    let mut reference: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--plain-http" => plain_http = true,
            "--artifact-type" => artifact_type = Some(args.next().unwrap_or_else(|| usage())),
            _ if arg.starts_with('-') || reference.is_some() => usage(),
            _ => reference = Some(arg),
        }
    }
    let reference = reference.unwrap_or_else(|| usage());
    if let Err(message) = discover(&reference, plain_http, artifact_type.as_deref()).await {
        eprintln!("oci-client-discover: {reference}: {message}");
        std::process::exit(1);
    }
}

async fn discover(
    reference: &str,
    plain_http: bool,
    artifact_type: Option<&str>,
) -> Result<(), String> {
    // reqwest is built without a TLS provider (rustls-tls-no-provider); ring
    // is deprecated in rustls only for lacking post-quantum key exchange,
    // which a test tool on loopback does not need.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let image: Reference = reference.parse().map_err(|e| format!("{e}"))?;
    if image.digest().is_none() {
        return Err("a digest is needed (REPO@sha256:...), as for `oras discover`".into());
    }
    let client = Client::new(ClientConfig {
        protocol: if plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        ..Default::default()
    });
    let auth = RegistryAuth::Anonymous;
    client
        .store_auth_if_needed(image.resolve_registry(), &auth)
        .await;
    let index = client
        .pull_referrers(&image, artifact_type)
        .await
        .map_err(|e| format!("referrers: {e}"))?;
    let mut subjects = Vec::new();
    for entry in &index.manifests {
        let referrer = Reference::with_digest(
            image.resolve_registry().to_string(),
            image.repository().to_string(),
            entry.digest.clone(),
        );
        let (raw, _) = client
            .pull_manifest_raw(&referrer, &auth, &[entry.media_type.as_str()])
            .await
            .map_err(|e| format!("manifest {}: {e}", entry.digest))?;
        let manifest: Value =
            serde_json::from_slice(&raw).map_err(|e| format!("manifest {}: {e}", entry.digest))?;
        subjects.push(manifest["subject"]["digest"].clone());
    }
    let manifests = serde_json::to_value(&index.manifests).map_err(|e| e.to_string())?;
    println!(
        "{}",
        json!({ "manifests": manifests, "subjects": subjects })
    );
    Ok(())
}
