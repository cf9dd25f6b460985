//! `distroless-pack cache dir|ls|prune`: where the layer cache is, what it
//! holds, and removing entries (least recently used first).
//!
//! The cache is found as `pack` and `build` find it
//! (`pipeline::settings::cache_location`): `$DISTROLESS_PACK_CACHE_DIR`,
//! else `$XDG_CACHE_HOME/distroless-pack`, else `~/.cache/distroless-pack`;
//! its bound from `$DISTROLESS_PACK_CACHE_MAX_SIZE`, else 2 GiB.

use std::io::Write;
use std::time::SystemTime;

use distroless_pack_image::{human_size, ErrorKind};
use distroless_pack_pipeline::cache::Cache;
use distroless_pack_pipeline::settings;

use crate::exit::{self, WithCode};
use crate::report;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Print the cache directory.
    Dir,
    /// List the cached layers, least recently used first: key, size, last
    /// use, digest.
    Ls,
    /// Remove the least recently used layers until the cache fits its bound
    /// (or --max-size), or all of them (--all).
    Prune {
        /// Keep at most SIZE (e.g. 500MB, 1GiB, 0).
        #[arg(long, value_name = "SIZE", conflicts_with = "all", value_parser = parse_size)]
        max_size: Option<u64>,
        /// Remove every entry.
        #[arg(long)]
        all: bool,
    },
}

fn parse_size(s: &str) -> Result<u64, String> {
    settings::parse_size(s)
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    let cache = settings::cache_location(None, &settings::process_env)
        .map_err(report::pipeline)?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no cache directory: set HOME, XDG_CACHE_HOME or {}",
                settings::CACHE_DIR_ENV
            )
        })
        .code(exit::USAGE)?;
    let mut out = std::io::stdout().lock();
    match args.command {
        Sub::Dir => writeln!(out, "{}", cache.dir().display()).code(exit::OUTPUT)?,
        Sub::Ls => ls(&cache, &mut out)?,
        Sub::Prune { max_size, all } => {
            let bound = if all {
                0
            } else {
                max_size.unwrap_or(cache.max_size())
            };
            let p = cache.prune(bound).map_err(|e| exit::fail(&e, e.kind()))?;
            writeln!(
                out,
                "removed {} layer{} ({}); kept {} ({}) in {}",
                p.removed,
                if p.removed == 1 { "" } else { "s" },
                human_size(p.freed),
                p.kept,
                human_size(p.kept_size),
                cache.dir().display()
            )
            .code(exit::OUTPUT)?;
        }
    }
    out.flush().code(exit::OUTPUT)?;
    Ok(exit::OK)
}

fn ls(cache: &Cache, out: &mut impl Write) -> anyhow::Result<()> {
    let list = cache
        .list()
        .map_err(|e| exit::fail(&e, ErrorKind::Output))?;
    let now = SystemTime::now();
    let total: u64 = list.iter().map(|e| e.size).sum();
    for e in &list {
        let age = now
            .duration_since(e.last_used)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        writeln!(
            out,
            "{}  {:>10}  {:>12}  {}",
            &e.key[..e.key.len().min(16)],
            human_size(e.size),
            ago(age),
            e.digest.as_deref().unwrap_or("(unreadable)")
        )
        .code(exit::OUTPUT)?;
    }
    writeln!(
        out,
        "{} layer{}, {} of {} ({})",
        list.len(),
        if list.len() == 1 { "" } else { "s" },
        human_size(total),
        human_size(cache.max_size()),
        cache.dir().display()
    )
    .code(exit::OUTPUT)?;
    Ok(())
}

/// `12s ago`, `5m ago`, `3h ago`, `2d ago`.
fn ago(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}
