//! Image options shared by `pack` and `build` (--tag, --path, --env, ...).
//! (to be written by the pack owner)

#[derive(clap::Args, Debug, Clone)]
pub struct ImageArgs {}
