//! Output options shared by `pack` and `build` (--output, --load, --push)
//! and the function that ships one artifact to all of them.
//! (to be written by the ship owner)

#[derive(clap::Args, Debug, Clone)]
pub struct OutputArgs {}
