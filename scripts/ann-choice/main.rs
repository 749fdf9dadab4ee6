//! Measures three approximate nearest-neighbour crates on the same seeded random unit vectors:
//! index build time, memory, single-query latency and recall@10 against exact search over a
//! sweep of ef_search, filtered search, deletes, save and load.
//!
//! `cargo run --release --features <crate> -- <crate> [n] [dim] [queries]`, crate one of
//! `usearch`, `hannoy`, `hnsw_rs`. One crate per process, so that peak memory is its own.

use std::collections::HashSet;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

const K: usize = 10;
/// Graph degree (M; layer 0 gets 2M) and construction beam, the same for every crate.
/// Set from the command line (defaults 16 and 128), the same for every crate.
static mut M_RUNTIME: usize = 16;
const M: usize = 16;
static mut EF_CONSTRUCTION: usize = 128;
const EF_SWEEP: [usize; 8] = [16, 32, 64, 128, 256, 512, 1024, 2048];

fn ef_construction() -> usize {
    // SAFETY: written once in main before any thread starts.
    unsafe { EF_CONSTRUCTION }
}

fn connectivity() -> usize {
    // SAFETY: written once in main before any thread starts.
    unsafe { M_RUNTIME }
}

/// `n` unit vectors around `clusters` seeded random centres (a Gaussian mixture with spread
/// `sigma` per component relative to the centre's unit length): low intrinsic dimension, as
/// learned embeddings have.
fn clustered_vectors(n: usize, dim: usize, clusters: usize, seed: u64, centres_seed: u64) -> Vec<f32> {
    let centres = unit_vectors(clusters, dim, centres_seed);
    let noise = unit_vectors(n, dim, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let sigma = 0.6f32;
    let mut v = Vec::with_capacity(n * dim);
    for i in 0..n {
        let c = rng.random_range(0..clusters);
        let start = v.len();
        for d in 0..dim {
            v.push(centres[c * dim + d] + sigma * noise[i * dim + d]);
        }
        let norm = v[start..].iter().map(|x| x * x).sum::<f32>().sqrt();
        v[start..].iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// `n` unit vectors of `dim` Gaussian components (Box-Muller), seeded.
fn unit_vectors(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let start = v.len();
        for _ in 0..dim {
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-300), rng.random());
            v.push(((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32);
        }
        let norm = v[start..].iter().map(|x| x * x).sum::<f32>().sqrt();
        v[start..].iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Exact top-k ids of each query among the ids `admit` keeps.
fn exact(base: &[f32], queries: &[f32], dim: usize, admit: &(dyn Fn(u64) -> bool + Sync)) -> Vec<Vec<u64>> {
    queries
        .par_chunks(dim)
        .map(|q| {
            let mut best: Vec<(f32, u64)> = Vec::with_capacity(K + 1);
            for (i, v) in base.chunks(dim).enumerate() {
                if !admit(i as u64) {
                    continue;
                }
                let s = dot(q, v);
                if best.len() < K || s > best[K - 1].0 {
                    let at = best.partition_point(|b| b.0 >= s);
                    best.insert(at, (s, i as u64));
                    best.truncate(K);
                }
            }
            best.into_iter().map(|(_, i)| i).collect()
        })
        .collect()
}

fn recall(found: &[Vec<u64>], truth: &[Vec<u64>]) -> f64 {
    let hits: usize = found
        .iter()
        .zip(truth)
        .map(|(f, t)| f.iter().filter(|id| t.contains(id)).count())
        .sum();
    hits as f64 / (truth.len() * K) as f64
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Resident and peak resident memory of this process, in MiB.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// What each crate offers to the measurement.
trait Ann {
    fn set_ef(&mut self, ef: usize);
    fn search(&self, query: &[f32]) -> Vec<u64>;
    fn filtered(&self, query: &[f32], admit: &dyn Fn(u64) -> bool) -> Vec<u64>;
    /// Removes `ids`; `Err` with why when the crate cannot.
    fn remove(&mut self, ids: &[u64]) -> Result<(), String>;
    /// Saves to `dir`, drops the index, loads it back: (save s, load s, bytes on disk).
    fn save_and_reload(&mut self, dir: &std::path::Path) -> (f64, f64, u64);
}

#[cfg(any(feature = "usearch", feature = "usearch-lean"))]
mod with_usearch {
    use super::*;
    #[cfg(feature = "usearch")]
    use usearch::{Index, IndexOptions, MetricKind, ScalarKind};
    #[cfg(feature = "usearch-lean")]
    use usearch_lean::{Index, IndexOptions, MetricKind, ScalarKind};

    pub struct U(pub Index);

    pub fn build(base: &[f32], dim: usize) -> U {
        let options = IndexOptions {
            dimensions: dim,
            metric: MetricKind::IP,
            quantization: ScalarKind::F32,
            connectivity: connectivity(),
            expansion_add: ef_construction(),
            expansion_search: 64,
            multi: false,
        };
        let index = Index::new(&options).unwrap();
        index
            .reserve_capacity_and_threads(base.len() / dim, rayon::current_num_threads())
            .unwrap();
        base.par_chunks(dim)
            .enumerate()
            .for_each(|(i, v)| index.add(i as u64, v).unwrap());
        U(index)
    }

    impl Ann for U {
        fn set_ef(&mut self, ef: usize) {
            self.0.change_expansion_search(ef);
        }
        fn search(&self, query: &[f32]) -> Vec<u64> {
            self.0.search(query, K).unwrap().keys
        }
        fn filtered(&self, query: &[f32], admit: &dyn Fn(u64) -> bool) -> Vec<u64> {
            self.0.filtered_search(query, K, admit).unwrap().keys
        }
        fn remove(&mut self, ids: &[u64]) -> Result<(), String> {
            for &id in ids {
                self.0.remove(id).map_err(|e| e.to_string())?;
            }
            Ok(())
        }
        fn save_and_reload(&mut self, dir: &std::path::Path) -> (f64, f64, u64) {
            let path = dir.join("graph.usearch");
            let path = path.to_str().unwrap();
            let t = Instant::now();
            self.0.save(path).unwrap();
            let save = t.elapsed().as_secs_f64();
            let ef = self.0.expansion_search();
            let t = Instant::now();
            let loaded = Index::restore(path).unwrap();
            let load = t.elapsed().as_secs_f64();
            loaded.change_expansion_search(ef);
            self.0 = loaded;
            (save, load, std::fs::metadata(path).unwrap().len())
        }
    }
}

#[cfg(feature = "hannoy")]
mod with_hannoy {
    use super::*;
    use hannoy::distances::Cosine;
    use hannoy::{Database, Reader, Writer};
    use heed::{CommitOrAbort, Env, EnvOpenOptions};
    use rand10::SeedableRng as _;
    use roaring::RoaringBitmap;


    pub struct H {
        _dir: tempfile::TempDir,
        env: Env,
        db: Database<'static, Cosine>,
        dim: usize,
        ef: usize,
    }

    fn open_env(path: &std::path::Path) -> Env {
        // SAFETY: the environment is opened once per directory in this process.
        unsafe { EnvOpenOptions::new().map_size(8 << 30).open(path) }.unwrap()
    }

    pub fn build(base: &[f32], dim: usize) -> H {
        let dir = tempfile::tempdir().unwrap();
        let env = open_env(dir.path());
        let wtxn = env.write_txn().unwrap();
        let db: Database<Cosine> = env
            .create_databases_and_commit(wtxn, |dbo, wtxn| -> heed::Result<_> {
                dbo.create_database(wtxn, None).map(CommitOrAbort::<_, ()>::Commit)
            })
            .unwrap()
            .unwrap_commit();
        let writer: Writer<Cosine> = Writer::new(db, 0, dim);
        let mut wtxn = env.write_txn().unwrap();
        for (i, v) in base.chunks(dim).enumerate() {
            writer.add_item(&mut wtxn, i as u32, v).unwrap();
        }
        let mut rng = rand10::rngs::StdRng::seed_from_u64(42);
        writer
            .builder(&mut rng)
            .ef_construction(ef_construction())
            .build::<M, { 2 * M }>(&mut wtxn)
            .unwrap();
        wtxn.commit().unwrap();
        H { _dir: dir, env, db, dim, ef: 64 }
    }

    impl H {
        fn query(&self, query: &[f32], candidates: Option<&RoaringBitmap>) -> Vec<u64> {
            let rtxn = self.env.read_txn().unwrap();
            let reader = Reader::<Cosine>::open(&rtxn, 0, self.db).unwrap();
            let mut nns = reader.nns(K);
            nns.ef_search(self.ef);
            if let Some(c) = candidates {
                nns.candidates(c);
            }
            nns.by_vector(&rtxn, query)
                .unwrap()
                .into_nns()
                .into_iter()
                .map(|(id, _)| u64::from(id))
                .collect()
        }
    }

    impl Ann for H {
        fn set_ef(&mut self, ef: usize) {
            self.ef = ef;
        }
        fn search(&self, query: &[f32]) -> Vec<u64> {
            self.query(query, None)
        }
        fn filtered(&self, query: &[f32], admit: &dyn Fn(u64) -> bool) -> Vec<u64> {
            // hannoy filters by a bitmap of candidate ids; building it is part of the query.
            let rtxn = self.env.read_txn().unwrap();
            let reader = Reader::<Cosine>::open(&rtxn, 0, self.db).unwrap();
            let candidates: RoaringBitmap =
                reader.item_ids().iter().filter(|&i| admit(u64::from(i))).collect();
            drop(reader);
            drop(rtxn);
            self.query(query, Some(&candidates))
        }
        fn remove(&mut self, ids: &[u64]) -> Result<(), String> {
            let writer: Writer<Cosine> = Writer::new(self.db, 0, self.dim);
            let mut wtxn = self.env.write_txn().unwrap();
            for &id in ids {
                writer.del_item(&mut wtxn, id as u32).map_err(|e| e.to_string())?;
            }
            let mut rng = rand10::rngs::StdRng::seed_from_u64(43);
            writer
                .builder(&mut rng)
                .ef_construction(ef_construction())
                .build::<M, { 2 * M }>(&mut wtxn)
                .map_err(|e| e.to_string())?;
            wtxn.commit().map_err(|e| e.to_string())
        }
        fn save_and_reload(&mut self, _dir: &std::path::Path) -> (f64, f64, u64) {
            // LMDB is the storage: every commit is already on disk. "Load" is reopening it.
            let path = self._dir.path().to_path_buf();
            let t = Instant::now();
            self.env.force_sync().unwrap();
            let save = t.elapsed().as_secs_f64();
            let bytes = std::fs::metadata(path.join("data.mdb")).unwrap().len();
            let t = Instant::now();
            let rtxn = self.env.read_txn().unwrap();
            let reader = Reader::<Cosine>::open(&rtxn, 0, self.db).unwrap();
            let _ = reader.n_items();
            let load = t.elapsed().as_secs_f64();
            (save, load, bytes)
        }
    }
}

#[cfg(feature = "hnsw_rs")]
mod with_hnsw_rs {
    use super::*;
    use hnsw_rs::prelude::*;

    pub struct W {
        hnsw: Hnsw<'static, f32, DistDot>,
        ef: usize,
    }

    pub fn build(base: &[f32], dim: usize) -> W {
        let n = base.len() / dim;
        let hnsw = Hnsw::<f32, DistDot>::new(connectivity(), n, 16, ef_construction(), DistDot {});
        let data: Vec<(&[f32], usize)> = base.chunks(dim).enumerate().map(|(i, v)| (v, i)).collect();
        hnsw.parallel_insert_slice(&data);
        W { hnsw, ef: 64 }
    }

    impl Ann for W {
        fn set_ef(&mut self, ef: usize) {
            self.ef = ef;
        }
        fn search(&self, query: &[f32]) -> Vec<u64> {
            self.hnsw.search(query, K, self.ef).iter().map(|n| n.d_id as u64).collect()
        }
        fn filtered(&self, query: &[f32], admit: &dyn Fn(u64) -> bool) -> Vec<u64> {
            let filter = |id: &usize| admit(*id as u64);
            self.hnsw
                .search_filter(query, K, self.ef, Some(&filter))
                .iter()
                .map(|n| n.d_id as u64)
                .collect()
        }
        fn remove(&mut self, _ids: &[u64]) -> Result<(), String> {
            Err("no delete API (a rebuild, or a filter, is the only way)".into())
        }
        fn save_and_reload(&mut self, dir: &std::path::Path) -> (f64, f64, u64) {
            let t = Instant::now();
            let name = self.hnsw.file_dump(dir, "graph").unwrap();
            let save = t.elapsed().as_secs_f64();
            let bytes = std::fs::metadata(dir.join(format!("{name}.hnsw.graph"))).unwrap().len()
                + std::fs::metadata(dir.join(format!("{name}.hnsw.data"))).unwrap().len();
            let t = Instant::now();
            // The loader borrows its HnswIo for the index's lifetime: leak it for this test.
            let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, &name)));
            let loaded: Hnsw<'static, f32, DistDot> = io.load_hnsw().unwrap();
            let load = t.elapsed().as_secs_f64();
            self.hnsw = loaded;
            (save, load, bytes)
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let which = args.get(1).map(String::as_str).unwrap_or("usearch");
    let arg = |i: usize, default: usize| args.get(i).and_then(|a| a.parse().ok()).unwrap_or(default);
    let (n, dim, nq) = (arg(2, 100_000), arg(3, 128), arg(4, 1000));
    let data = args.get(5).map(String::as_str).unwrap_or("random");
    // SAFETY: no other thread runs yet.
    unsafe {
        M_RUNTIME = arg(6, 16);
        EF_CONSTRUCTION = arg(7, 128);
    }
    let (base, queries) = match data {
        "random" => (unit_vectors(n, dim, 1), unit_vectors(nq, dim, 2)),
        "clustered" => (
            clustered_vectors(n, dim, 1000, 1, 7),
            clustered_vectors(nq, dim, 1000, 2, 7),
        ),
        other => panic!("data {other}: random or clustered"),
    };
    let truth = exact(&base, &queries, dim, &|_| true);
    // A filter admitting one item in ten.
    let admit = |id: u64| id % 10 == 3;
    let truth_filtered = exact(&base, &queries, dim, &admit);
    let (rss_before, _) = memory_mib();

    let t = Instant::now();
    let mut ann: Box<dyn Ann> = match which {
        #[cfg(any(feature = "usearch", feature = "usearch-lean"))]
        "usearch" | "usearch-lean" => Box::new(with_usearch::build(&base, dim)),
        #[cfg(feature = "hannoy")]
        "hannoy" => Box::new(with_hannoy::build(&base, dim)),
        #[cfg(feature = "hnsw_rs")]
        "hnsw_rs" => Box::new(with_hnsw_rs::build(&base, dim)),
        other => panic!("{other}: not compiled in (--features {other})"),
    };
    let build_s = t.elapsed().as_secs_f64();
    let (rss_after, peak) = memory_mib();
    println!(
        "{which}: {data} n={n} dim={dim} queries={nq} M={} efC={} threads={}",
        connectivity(),
        ef_construction(),
        rayon::current_num_threads()
    );
    println!(
        "build {build_s:.2} s; RSS +{:.0} MiB over the {:.0} MiB of data and truth; peak RSS {peak:.0} MiB",
        rss_after - rss_before,
        rss_before
    );

    println!("ef\trecall@10\tp50 us\tp99 us");
    let mut chosen = None;
    for ef in EF_SWEEP {
        ann.set_ef(ef);
        let mut found = Vec::with_capacity(nq);
        let mut lat = Vec::with_capacity(nq);
        for q in queries.chunks(dim) {
            let t = Instant::now();
            found.push(ann.search(q));
            lat.push(t.elapsed().as_secs_f64() * 1e6);
        }
        lat.sort_by(f64::total_cmp);
        let r = recall(&found, &truth);
        println!("{ef}\t{r:.4}\t{:.0}\t{:.0}", percentile(&lat, 0.5), percentile(&lat, 0.99));
        if r >= 0.95 && chosen.is_none() {
            chosen = Some(ef);
        }
    }
    let ef = chosen.unwrap_or(*EF_SWEEP.last().unwrap());
    ann.set_ef(ef);
    println!("ef for >= 0.95: {chosen:?}");

    // Filtered search: 10% of the items admitted.
    let mut lat = Vec::new();
    let found: Vec<Vec<u64>> = queries
        .chunks(dim)
        .map(|q| {
            let t = Instant::now();
            let r = ann.filtered(q, &admit);
            lat.push(t.elapsed().as_secs_f64() * 1e6);
            r
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    let violations = found.iter().flatten().filter(|&&id| !admit(id)).count();
    let short = found.iter().filter(|f| f.len() < K).count();
    println!(
        "filtered (10% admitted) at ef {ef}: recall@10 {:.4}, {violations} violations, {short} short results, p50 {:.0} us",
        recall(&found, &truth_filtered),
        percentile(&lat, 0.5)
    );

    // Save and load.
    let dir = std::env::temp_dir().join(format!("ann-choice-{which}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (save, load, bytes) = ann.save_and_reload(&dir);
    let found: Vec<Vec<u64>> = queries.chunks(dim).map(|q| ann.search(q)).collect();
    println!(
        "save {save:.2} s, load {load:.3} s, {:.0} MiB on disk; recall after load {:.4}",
        bytes as f64 / (1 << 20) as f64,
        recall(&found, &truth)
    );
    let _ = std::fs::remove_dir_all(&dir);

    // Deletes: the true nearest neighbour of each of the first 100 queries.
    let removed: Vec<u64> = truth.iter().take(100).map(|t| t[0]).collect::<HashSet<_>>().into_iter().collect();
    let t = Instant::now();
    match ann.remove(&removed) {
        Ok(()) => {
            let found: Vec<Vec<u64>> = queries.chunks(dim).take(100).map(|q| ann.search(q)).collect();
            let returned = found.iter().flatten().filter(|id| removed.contains(id)).count();
            println!(
                "remove {} ids: {:.3} s, removed ids returned afterwards: {returned}",
                removed.len(),
                t.elapsed().as_secs_f64()
            );
        }
        Err(why) => println!("remove: unsupported: {why}"),
    }
    let _ = rand::rng().random::<u8>();
}
