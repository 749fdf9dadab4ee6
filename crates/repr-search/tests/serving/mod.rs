//! A served index of coloured squares, a server on its own thread, and a raw HTTP/1.1 client
//! that sends request targets exactly as written (no normalisation of `..` or `%2F`).
#![allow(dead_code)] // each test file uses its own part

use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use burn::tensor::{Device, Tensor};
use image::{Rgb, RgbImage};
use repr_data::Normalize;
use repr_search::server::{QueryEncoder, Server, ServerConfig};
use repr_search::{Index, ModelIdentity, Preprocess, SearchError, Sizing, UpdateOptions};
use serde_json::Value;

/// The indexed images: path and colour. `red/r1-copy.png` is `red/r1.png` again (a
/// duplicate); `wide.png` is larger than a thumbnail.
pub const COLOURS: [(&str, [u8; 3]); 10] = [
    ("red/r1.png", [250, 10, 10]),
    ("red/r2.png", [230, 40, 30]),
    ("red/r3.png", [240, 0, 60]),
    ("green/g1.png", [10, 240, 10]),
    ("green/g2.png", [40, 220, 30]),
    ("green/g3.png", [0, 250, 60]),
    ("blue/b1.png", [10, 10, 250]),
    ("blue/b2.png", [30, 40, 220]),
    ("blue/b3.png", [60, 0, 240]),
    ("red/r1-copy.png", [250, 10, 10]),
];

/// A grey image at the top of the folder (no label), 600 × 300.
pub const WIDE: &str = "wide.png";

/// A file the index cannot read.
pub const BROKEN: &str = "broken.png";

/// Outside the indexed folder; must never be served.
pub const SECRET: &str = "TOP SECRET: never served";

/// The side of the squares, and of the encoder's input.
pub const SIDE: u32 = 8;

/// The identity of the test index: the mean colour of an 8 × 8 image.
pub fn identity() -> ModelIdentity {
    ModelIdentity {
        model: "mean colour".into(),
        preprocess: Preprocess {
            channels: 3,
            size: Sizing::Resize {
                height: SIDE as usize,
                width: SIDE as usize,
            },
            normalize: Normalize::identity(3),
        },
        dim: 3,
    }
}

/// The encoder: each channel's mean.
///
/// # Shapes
/// - `x`: `[n, 3, h, w]`
/// - output: `[n, 3]`
pub fn mean_colour(x: Tensor<4>) -> Tensor<2> {
    x.mean_dim(3).mean_dim(2).flatten::<2>(1, 3)
}

pub fn encoder() -> QueryEncoder {
    QueryEncoder::new(Device::flex(), mean_colour)
}

/// A PNG file of one colour.
pub fn png(colour: [u8; 3], width: u32, height: u32) -> Vec<u8> {
    let mut bytes = io::Cursor::new(Vec::new());
    RgbImage::from_pixel(width, height, Rgb(colour))
        .write_to(&mut bytes, image::ImageFormat::Png)
        .unwrap();
    bytes.into_inner()
}

/// An indexed folder of coloured squares, its index, and a secret next to the folder.
pub struct Photos {
    pub dir: tempfile::TempDir,
}

impl Photos {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("photos");
        for (path, colour) in COLOURS {
            let path = photos.join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, png(colour, SIDE, SIDE)).unwrap();
        }
        fs::write(photos.join(WIDE), png([128, 128, 128], 600, 300)).unwrap();
        fs::write(photos.join(BROKEN), b"not a PNG at all").unwrap();
        fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
        let this = Self { dir };
        this.update();
        this
    }

    pub fn photos(&self) -> PathBuf {
        self.dir.path().join("photos")
    }

    pub fn index(&self) -> PathBuf {
        self.dir.path().join("index")
    }

    /// Brings the index up to date with the folder (while a server may be serving it).
    pub fn update(&self) {
        let mut index = Index::open_or_create(&self.index(), &self.photos(), &identity()).unwrap();
        index
            .update(
                &UpdateOptions::default(),
                &Device::flex(),
                mean_colour,
                |_| {},
            )
            .unwrap();
    }

    /// The id of the indexed file `path`.
    pub fn id(&self, path: &str) -> u64 {
        let reader = Index::open_read_only(&self.index()).unwrap();
        let snapshot = reader.snapshot().unwrap();
        let entry = snapshot.entries.iter().find(|e| e.path == path);
        entry
            .unwrap_or_else(|| panic!("{path} is not indexed"))
            .id
            .0
    }

    pub fn config(&self) -> ServerConfig {
        ServerConfig {
            address: "127.0.0.1:0".parse().unwrap(),
            reload_interval_ms: 100,
            ..ServerConfig::new(self.index())
        }
    }
}

/// A server of `photos` with the default settings.
pub fn start(photos: &Photos) -> TestServer {
    TestServer::start(photos.config(), encoder())
}

/// A server on a thread of its own, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), SearchError>>>,
}

impl TestServer {
    pub fn start(config: ServerConfig, encoder: QueryEncoder) -> Self {
        let (bound, address) = mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let server = match Server::bind(config, encoder).await {
                    Ok(server) => server,
                    Err(e) => {
                        bound.send(Err(e.to_string())).unwrap();
                        return Err(e);
                    }
                };
                bound.send(Ok(server.local_addr())).unwrap();
                server
                    .run(async {
                        let _ = stopped.await;
                    })
                    .await
            })
        });
        let addr = address.recv().unwrap().expect("the server starts");
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Asks the server to stop and waits until it has.
    pub fn stop(mut self) -> Result<(), SearchError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), SearchError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(thread) => thread.join().expect("the server thread panicked"),
            None => Ok(()),
        }
    }

    pub fn get(&self, target: &str) -> Response {
        request(self.addr, "GET", target, &[], &[]).unwrap()
    }

    pub fn post(&self, target: &str, body: &[u8]) -> Response {
        request(self.addr, "POST", target, &[], body).unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// An HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {}: body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The `error` of a JSON error body.
    pub fn error(&self) -> String {
        let json = self.json();
        json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error in {json}"))
            .to_string()
    }

    /// The paths of the results of a search answer, in order.
    pub fn result_paths(&self) -> Vec<String> {
        let json = self.json();
        let results = json["results"].as_array().unwrap_or_else(|| {
            panic!("status {}: no results in {json}", self.status);
        });
        results
            .iter()
            .map(|r| r["path"].as_str().unwrap().to_string())
            .collect()
    }
}

/// Sends one request (`Connection: close`) with the target exactly as given.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    read_response(&mut stream)
}

/// Reads a whole response from a connection the server closes after it.
pub fn read_response(stream: &mut impl Read) -> io::Result<Response> {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}
