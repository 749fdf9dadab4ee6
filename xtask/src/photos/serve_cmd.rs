//! `cargo xtask serve`: the index's search page and JSON API over HTTP.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Result;
use clap::Parser;
use repr_search::server::{QueryEncoder, ServerConfig};
use repr_search::{Index, SearchKind};
use repr_train::DeviceChoice;

use super::model::Encoder;

/// `cargo xtask serve`.
#[derive(Parser, Debug)]
pub struct ServeArgs {
    /// The index folder (`cargo xtask index`; it may be updated while served).
    #[arg(long)]
    index: PathBuf,
    /// Address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// The largest query image accepted, in megabytes.
    #[arg(long, default_value_t = 20)]
    max_upload_mb: usize,
    /// Exact search, approximate (the HNSW graph `cargo xtask search` kept in the index
    /// folder, or one built when the server loads the index), or auto: exact below
    /// repr-search's measured size threshold, approximate above.
    #[arg(long, default_value = "auto")]
    search: SearchKind,
    /// Backend for embedding query images: flex (default CPU), ndarray, wgpu, cuda.
    #[arg(long, default_value = "flex")]
    device: String,
}

pub fn run(args: &ServeArgs) -> Result<()> {
    let reader = Index::open_read_only(&args.index)?;
    let device = args.device.parse::<DeviceChoice>()?.device()?;
    let encoder = Encoder::for_index(reader.identity(), &device)?;
    let description = encoder.describe();
    println!("query images are embedded with {description}");
    drop(reader);
    let device = encoder.device().clone();
    // One query embedded at a time per model: the model is not shared across threads.
    let encoder = Mutex::new(encoder);
    let query = QueryEncoder::new(device, move |images| {
        encoder
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .embed(images)
    });
    let config = ServerConfig {
        address: args.addr,
        max_upload_bytes: args.max_upload_mb.saturating_mul(1_000_000),
        search: args.search,
        model_description: Some(description),
        ..ServerConfig::new(&args.index)
    };
    repr_search::server::run_blocking(config, query)?;
    Ok(())
}
