//! The pipeline's one note when an image's referrers have nowhere to go
//! (every output a docker archive or `--load`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use distroless_pack_image::{spec::ImageConfiguration, Artifact, Blob, Image, Referrer};
use distroless_pack_pipeline::pack::{ship, Outputs};
use distroless_pack_pipeline::settings::parse_image_name;
use distroless_pack_pipeline::{Event, Observer};
use distroless_pack_ship::Output;

#[derive(Default)]
struct Notes(Mutex<Vec<String>>);

impl Observer for Notes {
    fn event(&self, event: Event<'_>) {
        if let Event::Note(n) = event {
            self.0.lock().unwrap().push(n);
        }
    }
}

fn image_with_sbom() -> Artifact {
    let mut img = Image::new(&ImageConfiguration::default(), vec![], &BTreeMap::new()).unwrap();
    let sbom = Blob::from_bytes("application/spdx+json", b"{}".to_vec());
    let r = Referrer::new(&img, "application/spdx+json", sbom, &BTreeMap::new()).unwrap();
    img.attach(r).unwrap();
    Artifact::Image(img)
}

fn notes_for(outputs: Vec<Output>) -> Vec<String> {
    let names = vec![parse_image_name("hello:1").unwrap()];
    let outputs = Outputs {
        list: outputs,
        digest_file: None,
        push: Default::default(),
    };
    let obs = Notes::default();
    ship(&image_with_sbom(), &names, &outputs, &obs).unwrap();
    obs.0.into_inner().unwrap()
}

#[test]
fn a_docker_archive_alone_gets_one_note_that_the_referrers_are_not_written() {
    let t = tempfile::tempdir().unwrap();
    let docker = Output::File(
        format!("docker-archive:{}", t.path().join("d.tar").display())
            .parse()
            .unwrap(),
    );
    let notes = notes_for(vec![docker.clone()]);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("docker-archive and --load cannot hold"),
        "{notes:?}"
    );
    let oci = Output::File(
        format!("oci:{}", t.path().join("lay").display())
            .parse()
            .unwrap(),
    );
    assert!(notes_for(vec![docker, oci]).is_empty());
}
