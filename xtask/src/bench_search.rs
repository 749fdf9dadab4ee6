//! `cargo xtask bench search`: repr-search's exact and approximate search beside faiss-cpu
//! (`IndexFlatIP`, `IndexHNSWFlat`) on the same vectors, in one run.
//!
//! Per gallery (seeded random unit vectors of each `--sizes`, and the vectors of an index
//! with `--index`): build time, load time of a saved index, resident memory added, latency of
//! single queries (p50, p99; one query per call, as a user's search is), the time of one batch
//! of queries, and recall@10 against our exact search. faiss runs in `scripts/faiss_search.py`
//! on the same vectors passed as `.npy` files; where `python3` (or `$REPR_PYTHON`) cannot
//! import faiss, the table says so and has no faiss rows.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use repr_search::{
    ApproxConfig, ApproxSearcher, ExactSearcher, FileId, Filter, Gallery, GalleryItem, Hit, Index,
    Searcher,
};
use serde_json::{Value, json};

use crate::bench::{Contention, commit, date, machine};

/// Results per query.
const K: usize = 10;

/// Options of `cargo xtask bench search`.
#[derive(Parser, Debug, Clone)]
pub struct BenchSearchArgs {
    /// Gallery sizes of seeded random unit vectors, comma separated (none: `--sizes ''`).
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    pub sizes: Vec<usize>,
    /// Dimension of the random vectors.
    #[arg(long, default_value_t = 128)]
    pub dim: usize,
    /// Queries per gallery (single-query latency and recall are over all of them).
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Queries of the batch measurement (one call).
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// The random vectors: `random` (independent Gaussian directions: no structure, the
    /// hardest case for a graph) or `clustered` (a Gaussian mixture of 1,000 centres, closer
    /// to learned embeddings).
    #[arg(long, value_enum, default_value_t = Data::Random)]
    pub data: Data,
    /// Also the vectors of this index (queries: a seeded sample of its own vectors).
    #[arg(long)]
    pub index: Option<PathBuf>,
    /// Graph links per node (HNSW's M), ours and faiss's.
    #[arg(long, default_value_t = ApproxConfig::default().connectivity)]
    pub connectivity: usize,
    /// Candidates while building (efConstruction), ours and faiss's.
    #[arg(long, default_value_t = ApproxConfig::default().expansion_add)]
    pub expansion_add: usize,
    /// Candidates while searching (efSearch), comma separated: one row each.
    #[arg(long, value_delimiter = ',', default_values_t = [ApproxConfig::default().expansion_search])]
    pub expansion_search: Vec<usize>,
    /// Leave faiss out.
    #[arg(long)]
    pub no_faiss: bool,
    /// Seed of the random vectors and of the query sample.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Folder of `search.md` and `search.json`: absent, empty, or one bench wrote before (its
    /// `.repr-bench` marker); any other folder is refused before measuring.
    #[arg(long, default_value = "runs/bench")]
    pub out_dir: PathBuf,
}

/// Which random vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Data {
    /// Independent Gaussian directions.
    Random,
    /// A Gaussian mixture around 1,000 random centres.
    Clustered,
}

/// One measured engine on one gallery.
#[derive(Debug, Clone)]
struct Row {
    gallery: String,
    engine: String,
    params: String,
    build_s: f64,
    load_s: Option<f64>,
    memory_mib: f64,
    p50_ms: f64,
    p99_ms: f64,
    batch_ms: f64,
    recall: f64,
    other_cores: f64,
}

/// A gallery and its queries (unit vectors, row-major).
struct Workload {
    name: String,
    gallery: Gallery,
    queries: Vec<f32>,
}

/// Runs the benchmark and writes `search.md` and `.json` under `--out-dir`.
pub fn run(args: &BenchSearchArgs) -> Result<()> {
    crate::bench::prepare_out_dir(&args.out_dir)?;
    if args.dim == 0 || args.queries == 0 || args.expansion_search.is_empty() {
        bail!("--dim, --queries and --expansion-search must be positive");
    }
    let faiss = if args.no_faiss {
        Err("left out (--no-faiss)".to_string())
    } else {
        faiss_version()
    };
    let mut rows = Vec::new();
    let mut workloads: Vec<Box<dyn Fn() -> Result<Workload>>> = Vec::new();
    for &n in &args.sizes {
        workloads.push(Box::new(move || Ok(random_workload(n, args))));
    }
    if let Some(dir) = &args.index {
        workloads.push(Box::new(move || index_workload(dir, args)));
    }
    let scratch = Scratch::new()?;
    for make in workloads {
        let workload = make()?;
        eprintln!("{}: measuring", workload.name);
        let (ours, truth) = measure_ours(&workload, args, &scratch.0)?;
        rows.extend(ours);
        if faiss.is_ok() {
            rows.extend(measure_faiss(&workload, args, &truth, &scratch.0)?);
        }
    }
    let table = markdown(&rows, args, &faiss);
    println!("{table}");
    write_outputs(&args.out_dir, &table, &rows, args, &faiss)
}

/// A folder for the files handed to faiss and the saved graph, deleted when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("repr-bench-search-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// SplitMix64 (Steele, Lea & Flood 2014): a small seeded generator, enough for test vectors.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// Unit vectors of independent Gaussian components (Box-Muller), seeded.
fn gaussian_directions(n: usize, dim: usize, rng: &mut Rng) -> Vec<f32> {
    let mut v: Vec<f32> = (0..n * dim)
        .map(|_| {
            let (u1, u2) = (rng.unit(), rng.unit());
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect();
    for row in v.chunks_mut(dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// `n` gallery vectors and the queries, as `--data` says.
fn random_vectors(n: usize, args: &BenchSearchArgs, rng: &mut Rng) -> Vec<f32> {
    let dim = args.dim;
    match args.data {
        Data::Random => gaussian_directions(n, dim, rng),
        Data::Clustered => {
            const CENTRES: usize = 1000;
            // Reseeded so that the gallery and the queries share their centres.
            let centres = gaussian_directions(CENTRES, dim, &mut Rng::new(args.seed));
            let noise = gaussian_directions(n, dim, rng);
            let mut v = Vec::with_capacity(n * dim);
            for row in noise.chunks(dim) {
                let c = rng.below(CENTRES);
                v.extend(
                    centres[c * dim..(c + 1) * dim]
                        .iter()
                        .zip(row)
                        .map(|(c, x)| c + 0.6 * x),
                );
            }
            v
        }
    }
}

fn random_workload(n: usize, args: &BenchSearchArgs) -> Workload {
    let mut rng = Rng::new(args.seed.wrapping_add(n as u64));
    let base = random_vectors(n, args, &mut rng);
    let queries = random_vectors(args.queries, args, &mut rng);
    let items = base
        .chunks(args.dim)
        .enumerate()
        .map(|(i, v)| GalleryItem {
            id: FileId(i as u64),
            vector: v.to_vec(),
            path: format!("{i}.png"),
            label: None,
        })
        .collect();
    let gallery = Gallery::new(args.dim, items).expect("finite vectors of --dim values");
    let name = format!("{:?} {n} x {}", args.data, args.dim).to_lowercase();
    Workload {
        name,
        gallery,
        queries: normalized(queries, args.dim),
    }
}

fn index_workload(dir: &Path, args: &BenchSearchArgs) -> Result<Workload> {
    let gallery = Index::open(dir)
        .and_then(|index| index.gallery())
        .with_context(|| format!("--index {}", dir.display()))?;
    if gallery.is_empty() {
        bail!("--index {}: the index holds no vectors", dir.display());
    }
    let mut rng = Rng::new(args.seed);
    let dim = gallery.dim();
    let queries: Vec<f32> = (0..args.queries)
        .flat_map(|_| gallery.vector(rng.below(gallery.len())).to_vec())
        .collect();
    Ok(Workload {
        name: format!("index {} ({} x {dim})", dir.display(), gallery.len()),
        gallery,
        queries,
    })
}

fn normalized(mut v: Vec<f32>, dim: usize) -> Vec<f32> {
    for row in v.chunks_mut(dim) {
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        row.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// Resident memory of this process in MiB (`VmRSS` of `/proc/self/status`: the resident
/// pages of `/proc/self/statm`, in kB), 0 where unavailable.
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// Single-query latencies (p50, p99 in ms), the batch time (ms, median of 5) and the hits
/// of every query.
fn time_queries(
    searcher: &impl Searcher,
    queries: &[f32],
    batch: usize,
) -> Result<(f64, f64, f64, Vec<Vec<Hit>>)> {
    let dim = searcher.gallery().dim();
    let mut latencies = Vec::new();
    let mut hits = Vec::new();
    for query in queries.chunks(dim) {
        let start = Instant::now();
        let mut found = searcher.search(query, K, &Filter::default())?;
        latencies.push(start.elapsed().as_secs_f64() * 1e3);
        hits.push(found.pop().unwrap_or_default());
    }
    latencies.sort_by(f64::total_cmp);
    let batch = &queries[..batch.min(queries.len() / dim) * dim];
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let start = Instant::now();
            searcher.search(batch, K, &Filter::default()).map(|_| ())?;
            Ok(start.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_>>()?;
    runs.sort_by(f64::total_cmp);
    Ok((
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
        runs[2],
        hits,
    ))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The fraction of the exact top-k ids found.
fn recall(found: &[Vec<FileId>], exact: &[Vec<Hit>]) -> f64 {
    let (mut hit, mut total) = (0usize, 0usize);
    for (f, e) in found.iter().zip(exact) {
        hit += e.iter().filter(|h| f.contains(&h.id)).count();
        total += e.len();
    }
    hit as f64 / total.max(1) as f64
}

fn ids(hits: &[Vec<Hit>]) -> Vec<Vec<FileId>> {
    hits.iter()
        .map(|h| h.iter().map(|h| h.id).collect())
        .collect()
}

/// Our exact search, then the graph at each `--expansion-search`; also the exact hits of
/// every query, the ground truth of every recall.
fn measure_ours(
    w: &Workload,
    args: &BenchSearchArgs,
    scratch: &Path,
) -> Result<(Vec<Row>, Vec<Vec<Hit>>)> {
    let mut rows = Vec::new();
    let contention = Contention::start();
    let before = rss_mib();
    let start = Instant::now();
    let exact = ExactSearcher::new(w.gallery.clone());
    let build_s = start.elapsed().as_secs_f64();
    let memory_mib = rss_mib() - before;
    let (p50_ms, p99_ms, batch_ms, truth) = time_queries(&exact, &w.queries, args.batch)?;
    rows.push(Row {
        gallery: w.name.clone(),
        engine: "repr exact".into(),
        params: "gemm, blocked".into(),
        build_s,
        load_s: None,
        memory_mib,
        p50_ms,
        p99_ms,
        batch_ms,
        recall: 1.0,
        other_cores: contention.finish().other,
    });
    drop(exact);

    let config = ApproxConfig {
        connectivity: args.connectivity,
        expansion_add: args.expansion_add,
        expansion_search: args.expansion_search[0],
        ..ApproxConfig::default()
    };
    let contention = Contention::start();
    let before = rss_mib();
    let start = Instant::now();
    let built = ApproxSearcher::build(w.gallery.clone(), &config)?;
    let build_s = start.elapsed().as_secs_f64();
    let memory_mib = rss_mib() - before;
    let path = scratch.join("graph.usearch");
    built.save(&path)?;
    drop(built);
    let start = Instant::now();
    let mut approx = ApproxSearcher::load(w.gallery.clone(), &path, &config)?;
    let load_s = start.elapsed().as_secs_f64();
    let build_other = contention.finish().other;
    for &ef in &args.expansion_search {
        approx.set_expansion_search(ef);
        let contention = Contention::start();
        let (p50_ms, p99_ms, batch_ms, hits) = time_queries(&approx, &w.queries, args.batch)?;
        rows.push(Row {
            gallery: w.name.clone(),
            engine: "repr approx (usearch HNSW)".into(),
            params: format!(
                "M={} efC={} efS={ef}",
                config.connectivity, config.expansion_add
            ),
            build_s,
            load_s: Some(load_s),
            memory_mib,
            p50_ms,
            p99_ms,
            batch_ms,
            recall: recall(&ids(&hits), &truth),
            other_cores: contention.finish().other.max(build_other),
        });
    }
    std::fs::remove_file(&path).with_context(|| format!("deleting {}", path.display()))?;
    Ok((rows, truth))
}

/// faiss's version, or why it cannot be imported.
fn faiss_version() -> std::result::Result<String, String> {
    let python = python();
    let out = Command::new(&python)
        .args(["-c", "import faiss; print(faiss.__version__)"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.to_string_lossy()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("no output");
        Err(format!(
            "{} cannot import faiss ({last})",
            python.to_string_lossy()
        ))
    }
}

/// The interpreter of the peer scripts: `$REPR_PYTHON`, else `python3` on `PATH`.
fn python() -> std::ffi::OsString {
    std::env::var_os("REPR_PYTHON")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// faiss on the workload's vectors through `scripts/faiss_search.py`.
fn measure_faiss(
    w: &Workload,
    args: &BenchSearchArgs,
    truth: &[Vec<Hit>],
    dir: &Path,
) -> Result<Vec<Row>> {
    let dim = w.gallery.dim();
    let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    crate::use_run::write_npy(
        &dir.join("base.npy"),
        "<f4",
        &[w.gallery.len(), dim],
        &bytes(w.gallery.vectors()),
    )?;
    crate::use_run::write_npy(
        &dir.join("queries.npy"),
        "<f4",
        &[w.queries.len() / dim, dim],
        &bytes(&w.queries),
    )?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/faiss_search.py");
    let efs: Vec<String> = args
        .expansion_search
        .iter()
        .map(|e| e.to_string())
        .collect();
    let contention = Contention::start();
    let out = Command::new(python())
        .arg(&script)
        .arg(dir)
        .args(["--k", &K.to_string()])
        .args(["--m", &args.connectivity.to_string()])
        .args(["--ef-construction", &args.expansion_add.to_string()])
        .args(["--ef-search", &efs.join(",")])
        .args(["--batch", &args.batch.to_string()])
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    let other = contention.finish().other;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let report: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("reading the output of {}", script.display()))?;
    let mut rows = Vec::new();
    for r in report["rows"].as_array().into_iter().flatten() {
        let field = |name: &str| r[name].as_f64().unwrap_or(f64::NAN);
        let ids_file = dir.join(r["ids"].as_str().unwrap_or_default());
        let positions = read_npy_i64(&ids_file)?;
        let found: Vec<Vec<FileId>> = positions
            .chunks(K)
            .map(|row| {
                row.iter()
                    .filter_map(|&p| usize::try_from(p).ok())
                    .filter_map(|p| w.gallery.ids().get(p).copied())
                    .collect()
            })
            .collect();
        rows.push(Row {
            gallery: w.name.clone(),
            engine: format!("faiss {}", r["name"].as_str().unwrap_or("?")),
            params: r["params"].as_str().unwrap_or_default().to_string(),
            build_s: field("build_s"),
            load_s: Some(field("load_s")),
            memory_mib: field("rss_mib"),
            p50_ms: field("p50_ms"),
            p99_ms: field("p99_ms"),
            batch_ms: field("batch_ms"),
            recall: recall(&found, truth),
            other_cores: other,
        });
    }
    Ok(rows)
}

/// The values of an int64 `.npy` file that `numpy.save` wrote (version 1 or 2 header).
fn read_npy_i64(path: &Path) -> Result<Vec<i64>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (header_len, start) = match bytes.get(6) {
        Some(1) => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        Some(2 | 3) => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => bail!("{}: not a .npy file", path.display()),
    };
    let header = String::from_utf8_lossy(&bytes[start..start + header_len]);
    if !header.contains("'<i8'") {
        bail!(
            "{}: expected little-endian int64, header {header}",
            path.display()
        );
    }
    Ok(bytes[start + header_len..]
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect())
}

fn markdown(
    rows: &[Row],
    args: &BenchSearchArgs,
    faiss: &std::result::Result<String, String>,
) -> String {
    let m = machine();
    let threads = rayon::current_num_threads();
    let mut s = format!(
        "Search: {} queries, k = {K}, batch of {} ({}, {} threads; {} cores, {}; commit {}, {})\n\n",
        args.queries,
        args.batch,
        if cfg!(debug_assertions) {
            "dev profile"
        } else {
            "release"
        },
        threads,
        m["cores"],
        m["cpu"].as_str().unwrap_or("unknown CPU"),
        commit(),
        date(),
    );
    s += &match faiss {
        Ok(version) => format!("faiss {version} (faiss-cpu, OpenMP threads: its default)\n\n"),
        Err(why) => format!("faiss: not measured: {why}\n\n"),
    };
    s += "| gallery | engine | params | build s | load s | memory MiB | p50 ms | p99 ms | \
          batch ms | recall@10 | other cores |\n\
          | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n";
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {:.2} | {} | {:.0} | {:.3} | {:.3} | {:.1} | {:.4} | {:.2} |\n",
            r.gallery,
            r.engine,
            r.params,
            r.build_s,
            r.load_s.map_or("-".into(), |l| format!("{l:.3}")),
            r.memory_mib,
            r.p50_ms,
            r.p99_ms,
            r.batch_ms,
            r.recall,
            r.other_cores,
        );
    }
    s += "\nbuild: from vectors in memory (exact: copying them); load: reading a saved index; \
          memory: resident memory added by building; p50/p99: one query per call; batch: one \
          call of the batch (median of 5); recall@10 against repr exact; other cores: CPU used \
          by other processes meanwhile.\n";
    s
}

fn write_outputs(
    dir: &Path,
    table: &str,
    rows: &[Row],
    args: &BenchSearchArgs,
    faiss: &std::result::Result<String, String>,
) -> Result<()> {
    crate::bench::prepare_out_dir(dir)?;
    let md = dir.join("search.md");
    std::fs::write(&md, table).with_context(|| format!("writing {}", md.display()))?;
    let json = json!({
        "machine": machine(),
        "commit": commit(),
        "date": date(),
        "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
        "threads": rayon::current_num_threads(),
        "queries": args.queries,
        "batch": args.batch,
        "k": K,
        "data": format!("{:?}", args.data).to_lowercase(),
        "faiss": match faiss { Ok(v) => json!({"version": v}), Err(why) => json!({"unavailable": why}) },
        "rows": rows.iter().map(|r| json!({
            "gallery": r.gallery,
            "engine": r.engine,
            "params": r.params,
            "build_s": r.build_s,
            "load_s": r.load_s,
            "memory_mib": r.memory_mib,
            "p50_ms": r.p50_ms,
            "p99_ms": r.p99_ms,
            "batch_ms": r.batch_ms,
            "recall_at_10": r.recall,
            "other_cores": r.other_cores,
        })).collect::<Vec<_>>(),
    });
    let path = dir.join("search.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {} and {}", md.display(), path.display());
    Ok(())
}
