//! `distroless-pack verify` (not written yet).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("`verify` is not implemented yet")
}
