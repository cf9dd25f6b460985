//! `distroless-pack inspect` (not written yet).

#[derive(clap::Args, Debug)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<u8> {
    anyhow::bail!("`inspect` is not implemented yet")
}
