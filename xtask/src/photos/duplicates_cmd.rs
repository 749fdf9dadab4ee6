//! `cargo xtask duplicates`: groups of near-duplicate images in an index.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Parser;
use repr_eval::{QUERY_COLOR, UNLABELLED_COLOR};
use repr_search::{ApproxConfig, Entry, FileId, Index, SearchKind, Searcher, duplicate_groups};

use super::picture::{Shown, draw_rows};
use crate::outputs::{Format, check_output_file};

/// `cargo xtask duplicates`.
#[derive(Parser, Debug)]
pub struct DuplicatesArgs {
    /// The index folder (`cargo xtask index`).
    #[arg(long)]
    index: PathBuf,
    /// Two images are near-duplicates at this cosine similarity or more; a group is a chain
    /// of such pairs.
    #[arg(long, default_value_t = 0.95)]
    threshold: f32,
    /// Neighbours looked at per image: a group larger than this plus one may be found in parts
    /// linked by chains only.
    #[arg(long, default_value_t = 20)]
    neighbours: usize,
    /// The picture: one row per group (the first `--rows` groups, largest first).
    #[arg(long, default_value = "duplicates.png")]
    out: PathBuf,
    /// Replace an existing PNG at `--out` (a file of another kind is never replaced).
    #[arg(long)]
    overwrite: bool,
    /// Rows (groups) drawn.
    #[arg(long, default_value_t = 12)]
    rows: usize,
    /// Images drawn per group.
    #[arg(long, default_value_t = 10)]
    columns: usize,
    /// Exact, approximate or auto (see `cargo xtask search --help`).
    #[arg(long, default_value = "auto")]
    search: SearchKind,
}

pub fn run(args: &DuplicatesArgs) -> Result<()> {
    if args.rows == 0 || args.columns < 2 {
        bail!("--rows must be at least 1 and --columns at least 2");
    }
    check_output_file(&args.out, "--out", Format::Png, args.overwrite)?;
    let index = Index::open(&args.index)?;
    let entries = index.entries()?;
    let by_id: HashMap<FileId, &Entry> = entries.iter().map(|e| (e.id, e)).collect();
    let searcher = index.searcher_of(args.search, &ApproxConfig::default())?;
    let mut groups = duplicate_groups(&searcher, args.threshold, args.neighbours)?;
    // Largest first; equal sizes in the order of their first file.
    groups.sort_by_key(|group| std::cmp::Reverse(group.len()));
    let in_groups: usize = groups.iter().map(Vec::len).sum();
    println!(
        "{} groups of near-duplicates (cosine similarity >= {}) hold {in_groups} of {} images",
        groups.len(),
        args.threshold,
        searcher.gallery().len()
    );
    for (n, group) in groups.iter().enumerate() {
        println!("group {} ({} images):", n + 1, group.len());
        for id in group {
            println!("  {}", by_id[id].path);
        }
    }
    if groups.is_empty() {
        println!("no picture: nothing to draw");
        return Ok(());
    }
    let root = index.root();
    let rows: Vec<Vec<Shown>> = groups
        .iter()
        .take(args.rows)
        .map(|group| {
            group
                .iter()
                .take(args.columns)
                .enumerate()
                .map(|(n, id)| {
                    let frame = if n == 0 {
                        QUERY_COLOR
                    } else {
                        UNLABELLED_COLOR
                    };
                    (root.join(&by_id[id].path), frame)
                })
                .collect()
        })
        .collect();
    draw_rows(&rows, &index.identity().preprocess, &args.out)?;
    println!("picture -> {}", args.out.display());
    Ok(())
}
