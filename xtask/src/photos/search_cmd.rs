//! `cargo xtask search`: the images of an index most like some query images.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Parser;
use repr_eval::{MATCH_COLOR, MISMATCH_COLOR, QUERY_COLOR, STOPLIST_COLOR, UNLABELLED_COLOR};
use repr_search::{ApproxConfig, Entry, FileId, Filter, Hit, Index, SearchKind, Searcher};
use repr_train::DeviceChoice;

use super::model::Encoder;
use super::picture::{Shown, draw_rows};
use crate::outputs::{Format, check_output_file};

/// `cargo xtask search`.
#[derive(Parser, Debug)]
pub struct SearchArgs {
    /// The index folder (`cargo xtask index`).
    #[arg(long)]
    index: PathBuf,
    /// Query images (files anywhere; one inside the indexed folder is searched by its stored
    /// vector and never finds itself).
    #[arg(long, num_args = 1.., required_unless_present = "query_dir")]
    query: Vec<PathBuf>,
    /// Every image below this folder is a query, labelled by its subfolder: prints recall@1
    /// and recall@k against the index's labels (and draws the first `--rows` queries).
    #[arg(long, conflicts_with = "query")]
    query_dir: Option<PathBuf>,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// A stop-list: a text file of indexed paths (relative to the indexed folder, one per
    /// line) never returned; drawn framed in blue where they would have ranked.
    #[arg(long)]
    stop_list: Option<PathBuf>,
    /// Only results with this label (top-level folder); repeatable.
    #[arg(long)]
    label: Vec<String>,
    /// Only results inside this folder (relative to the indexed folder).
    #[arg(long)]
    folder: Option<String>,
    /// The picture: queries on the left, results in rank order, framed green for the query's
    /// label, red for another, blue for a stop-listed image.
    #[arg(long, default_value = "search.png")]
    out: PathBuf,
    /// Replace an existing PNG at `--out` (a file of another kind is never replaced).
    #[arg(long)]
    overwrite: bool,
    /// Rows drawn with `--query-dir`.
    #[arg(long, default_value_t = 8)]
    rows: usize,
    /// Exact search, approximate (an HNSW graph, kept in the index folder), or auto: exact
    /// below repr-search's measured size threshold, approximate above.
    #[arg(long, default_value = "auto")]
    search: SearchKind,
    /// Backend for embedding the queries: flex (default CPU), ndarray, wgpu, cuda.
    #[arg(long, default_value = "flex")]
    device: String,
}

/// A query: its file, its label when known, and its id when it is indexed.
struct Query {
    path: PathBuf,
    label: Option<String>,
    id: Option<FileId>,
}

pub fn run(args: &SearchArgs) -> Result<()> {
    if args.k == 0 {
        bail!("--k must be at least 1");
    }
    check_output_file(&args.out, "--out", Format::Png, args.overwrite)?;
    let index = Index::open(&args.index)?;
    let entries = index.entries()?;
    let searcher = index.searcher_of(args.search, &ApproxConfig::default())?;
    let queries = queries(args, &index, &entries)?;
    let stop_list = stop_list(args, &entries)?;
    let mut filter = Filter::default();
    if !args.label.is_empty() {
        filter = filter.with_labels(args.label.iter().cloned());
    }
    if let Some(folder) = &args.folder {
        filter = filter.in_folder(folder.clone());
    }
    let results = search(args, &index, &searcher, &queries, &filter, &stop_list)?;

    let by_id: HashMap<FileId, &Entry> = entries.iter().map(|e| (e.id, e)).collect();
    let by_id = |id: FileId| by_id.get(&id).copied();
    let root = index.root().to_path_buf();
    let mut rows: Vec<Vec<Shown>> = Vec::new();
    let mut correct = [0usize; 2];
    for (query, hits) in queries.iter().zip(&results) {
        let kept: Vec<&Hit> = hits.iter().filter(|h| !stop_list.contains(&h.id)).collect();
        let same = |hit: &Hit| {
            query.label.is_some()
                && by_id(hit.id).and_then(|e| e.label.as_ref()) == query.label.as_ref()
        };
        correct[0] += kept.first().is_some_and(|h| same(h)) as usize;
        correct[1] += kept.iter().any(|h| same(h)) as usize;
        if args.query_dir.is_some() && rows.len() >= args.rows {
            continue;
        }
        if args.query_dir.is_none() {
            println!("{}", query.path.display());
            for (rank, hit) in kept.iter().enumerate() {
                let entry = by_id(hit.id).expect("a hit is an indexed file");
                println!("  {:>3}. {:.4}  {}", rank + 1, hit.score, entry.path);
            }
        }
        let mut row = vec![(query.path.clone(), QUERY_COLOR)];
        for hit in hits {
            let entry = by_id(hit.id).expect("a hit is an indexed file");
            let frame = if stop_list.contains(&hit.id) {
                STOPLIST_COLOR
            } else {
                match (&query.label, &entry.label) {
                    (Some(q), Some(l)) if q == l => MATCH_COLOR,
                    (Some(_), Some(_)) => MISMATCH_COLOR,
                    _ => UNLABELLED_COLOR,
                }
            };
            row.push((root.join(&entry.path), frame));
        }
        rows.push(row);
    }
    if args.query_dir.is_some() {
        let n = queries.len().max(1) as f64;
        println!(
            "{} queries: recall@1 {:.2}%, recall@{} {:.2}%",
            queries.len(),
            100.0 * correct[0] as f64 / n,
            args.k,
            100.0 * correct[1] as f64 / n
        );
    }
    draw_rows(&rows, &index.identity().preprocess, &args.out)?;
    println!("picture -> {}", args.out.display());
    Ok(())
}

/// The hits of every query: the `k` best that the filter admits, with the stop-listed images
/// that rank among them kept in place (to be drawn, not counted).
fn search(
    args: &SearchArgs,
    index: &Index,
    searcher: &impl Searcher,
    queries: &[Query],
    filter: &Filter,
    stop_list: &BTreeSet<FileId>,
) -> Result<Vec<Vec<Hit>>> {
    let k = args.k + stop_list.len();
    let outside: Vec<&Query> = queries.iter().filter(|q| q.id.is_none()).collect();
    let mut found_outside = if outside.is_empty() {
        Vec::new()
    } else {
        let device = args.device.parse::<DeviceChoice>()?.device()?;
        let encoder = Encoder::for_index(index.identity(), &device)?;
        let paths: Vec<&Path> = outside.iter().map(|q| q.path.as_path()).collect();
        let vectors = repr_search::embed_images(
            &paths,
            encoder.preprocess(),
            repr_data::DEFAULT_MAX_IMAGE_PIXELS,
            64,
            encoder.device(),
            |images| encoder.embed(images),
        )?;
        searcher.search(&vectors, k, filter)?
    }
    .into_iter();
    let mut results = Vec::with_capacity(queries.len());
    for query in queries {
        let mut hits = match query.id {
            Some(id) => searcher.search_id(id, k, filter)?,
            None => found_outside.next().expect("one result per query"),
        };
        // Keep `k` admitted hits and the stop-listed ones ranked among them.
        let mut admitted = 0;
        let mut kept = Vec::with_capacity(hits.len());
        for hit in hits.drain(..) {
            if admitted == args.k {
                break;
            }
            admitted += !stop_list.contains(&hit.id) as usize;
            kept.push(hit);
        }
        results.push(kept);
    }
    Ok(results)
}

/// The queries of `--query` or `--query-dir`, with their labels and ids.
fn queries(args: &SearchArgs, index: &Index, entries: &[Entry]) -> Result<Vec<Query>> {
    let by_path: HashMap<&str, &Entry> = entries.iter().map(|e| (e.path.as_str(), e)).collect();
    let files: Vec<(PathBuf, Option<String>)> = match &args.query_dir {
        Some(dir) => images_below(dir)?,
        None => args
            .query
            .iter()
            .map(|path| {
                let label = path
                    .parent()
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned());
                (path.clone(), label)
            })
            .collect(),
    };
    files
        .into_iter()
        .map(|(path, label)| {
            let absolute = std::fs::canonicalize(&path)
                .with_context(|| format!("query {}: cannot read it", path.display()))?;
            let indexed = absolute
                .strip_prefix(index.root())
                .ok()
                .and_then(|relative| {
                    let relative = relative.to_string_lossy().replace('\\', "/");
                    by_path.get(relative.as_str()).copied()
                });
            Ok(match indexed {
                Some(entry) => Query {
                    path,
                    label: entry.label.clone(),
                    id: Some(entry.id),
                },
                None => Query {
                    path,
                    label,
                    id: None,
                },
            })
        })
        .collect()
}

/// Every image file below `dir`, sorted, labelled by its top-level folder.
fn images_below(dir: &Path) -> Result<Vec<(PathBuf, Option<String>)>> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        if entry.file_type().is_file() && repr_data::has_image_extension(entry.path()) {
            let relative = entry.path().strip_prefix(dir).unwrap_or(entry.path());
            let label = (relative.components().count() > 1)
                .then(|| relative.components().next())
                .flatten()
                .map(|c| c.as_os_str().to_string_lossy().into_owned());
            files.push((entry.path().to_path_buf(), label));
        }
    }
    if files.is_empty() {
        bail!("--query-dir {}: no image files below it", dir.display());
    }
    Ok(files)
}

/// The ids of the stop-list file's paths; a path that is not indexed is an error naming it.
fn stop_list(args: &SearchArgs, entries: &[Entry]) -> Result<BTreeSet<FileId>> {
    let by_path: HashMap<&str, FileId> = entries.iter().map(|e| (e.path.as_str(), e.id)).collect();
    let Some(file) = &args.stop_list else {
        return Ok(BTreeSet::new());
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("--stop-list {}", file.display()))?;
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            by_path.get(line).copied().with_context(|| {
                format!(
                    "--stop-list {}: {line:?} is not an indexed path (paths are relative to \
                         the indexed folder)",
                    file.display()
                )
            })
        })
        .collect()
}
