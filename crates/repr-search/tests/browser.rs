//! The page in a real browser: headless Chromium driven through chromedriver (WebDriver).
//! Upload a query image, see its results, click one, see the results of that image; a file
//! that is not an image shows the server's message; a search by an indexed image has its own
//! address (`/?id=`), which the back button and a fresh load search again. With `REPR_SCREENSHOT_DIR` set, a
//! screenshot of the page is saved there as `search-page.png`.
//!
//! Needs `chromedriver` and Chromium on the `PATH` (Debian: `apt-get install chromium
//! chromium-driver`). Without them the test fails when `CI` is set, and otherwise says
//! `SKIPPED` and passes.

mod serving;

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use serving::{Photos, TestServer, encoder, png};

/// How long the page may take to show an answer.
const WAIT: Duration = Duration::from_secs(30);

#[test]
fn the_page_searches_by_upload_then_by_a_clicked_result() {
    let (Some(driver), Some(browser)) = (
        find_program(&["chromedriver"]),
        find_program(&["chromium", "chromium-browser", "google-chrome"]),
    ) else {
        let message = "chromedriver or Chromium is not installed (Debian: \
                       apt-get install -y chromium chromium-driver)";
        if std::env::var_os("CI").is_some() {
            panic!("{message}");
        }
        // Straight to stderr, past the test harness's capture: a skip is never silent.
        let skipped = format!("SKIPPED: the page was not tested in a browser: {message}\n");
        let _ = std::io::stderr().write_all(skipped.as_bytes());
        return;
    };
    let photos = Photos::new();
    let server = TestServer::start(photos.config(), encoder());
    let query = photos.dir.path().join("query-green.png");
    std::fs::write(&query, png([20, 230, 20], 64, 48)).unwrap();
    let not_an_image = photos.dir.path().join("notes.png");
    std::fs::write(&not_an_image, "these are notes, not pixels").unwrap();
    let profile = tempfile::tempdir().unwrap();

    let port = free_port();
    let _driver = Running(
        Command::new(&driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts"),
    );
    wait_until_listening(SocketAddr::from(([127, 0, 0, 1], port)));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": browser,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--no-first-run",
                    "--window-size=1200,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a Chromium session");
        let outcome = steps(&client, &server, &photos, &query, &not_an_image).await;
        let _ = client.close().await;
        outcome
    });
}

async fn steps(
    client: &Client,
    server: &TestServer,
    photos: &Photos,
    query: &Path,
    not_an_image: &Path,
) {
    client
        .goto(&format!("http://{}/", server.addr))
        .await
        .unwrap();
    wait_for(client, "document.getElementById('info').textContent").await;

    // Upload the green query through the file input.
    let input = client.find(Locator::Id("file")).await.unwrap();
    input.send_keys(&query.display().to_string()).await.unwrap();
    wait_for_search(client, 1).await;
    let shown = results(client).await;
    assert!(shown.len() >= 3, "{shown:?}");
    for (_, path) in &shown[..3] {
        assert!(path.starts_with("green/"), "{shown:?}");
    }
    assert_eq!(status(client).await.1, "", "no error");

    // Click the blue square: its results replace the green ones.
    let b1 = photos.id("blue/b1.png");
    client
        .find(Locator::Css(r#".result[data-path="blue/b1.png"] img"#))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_search(client, 2).await;
    let shown = results(client).await;
    let paths: Vec<&str> = shown.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(paths[..2], ["blue/b2.png", "blue/b3.png"], "{shown:?}");
    assert!(
        shown.iter().all(|(id, _)| *id != b1),
        "the query is not its own result"
    );
    let query_id = script(client, "return document.getElementById('query').dataset.id").await;
    assert_eq!(query_id, json!(b1.to_string()));
    let address = client.current_url().await.unwrap();
    assert_eq!(
        address.query(),
        Some(format!("id={b1}").as_str()),
        "{address}"
    );

    wait_for(
        client,
        "[...document.images].every(i => i.complete && i.naturalWidth > 0) || ''",
    )
    .await;
    if let Some(dir) = std::env::var_os("REPR_SCREENSHOT_DIR") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("search-page.png");
        std::fs::write(&path, client.screenshot().await.unwrap()).unwrap();
        println!("screenshot: {}", path.display());
    }

    // A file that is not an image: the server's message is shown.
    let input = client.find(Locator::Id("file")).await.unwrap();
    input
        .send_keys(&not_an_image.display().to_string())
        .await
        .unwrap();
    wait_for_search(client, 3).await;
    let (class, text) = status(client).await;
    assert_eq!(class, "error");
    assert!(text.contains("not a PNG or JPEG image"), "{text}");
    assert!(results(client).await.is_empty());
    assert_eq!(client.current_url().await.unwrap().query(), None);

    // Back: the search by the blue square again, from its address.
    client.back().await.unwrap();
    wait_for_search(client, 4).await;
    let paths: Vec<String> = results(client).await.into_iter().map(|(_, p)| p).collect();
    assert_eq!(paths[..2], ["blue/b2.png", "blue/b3.png"], "{paths:?}");

    // An address opened afresh searches by its image.
    let r1 = photos.id("red/r1.png");
    client
        .goto(&format!("http://{}/?id={r1}", server.addr))
        .await
        .unwrap();
    wait_for_search(client, 1).await;
    let shown = results(client).await;
    assert_eq!(shown[0].1, "red/r1-copy.png", "{shown:?}");
}

/// Runs `body` (a JavaScript function body) in the page.
async fn script(client: &Client, body: &str) -> Value {
    client.execute(body, vec![]).await.unwrap()
}

/// Waits until the JavaScript `expression` is truthy.
async fn wait_for(client: &Client, expression: &str) {
    let deadline = Instant::now() + WAIT;
    let body = format!("return Boolean({expression})");
    while script(client, &body).await != json!(true) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {expression}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the page has answered its `n`-th search.
async fn wait_for_search(client: &Client, n: usize) {
    wait_for(client, &format!("document.body.dataset.searches === '{n}'")).await;
}

/// The results shown: id and path.
async fn results(client: &Client) -> Vec<(u64, String)> {
    let shown = script(
        client,
        "return [...document.querySelectorAll('.result')].map(r => [r.dataset.id, r.dataset.path])",
    )
    .await;
    shown
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            let id = pair[0].as_str().unwrap().parse().unwrap();
            (id, pair[1].as_str().unwrap().to_string())
        })
        .collect()
}

/// The status line's class and text.
async fn status(client: &Client) -> (String, String) {
    let status = script(
        client,
        "const s = document.getElementById('status'); \
         return [s.className, s.className === 'error' ? s.textContent : '']",
    )
    .await;
    let text = |i: usize| status[i].as_str().unwrap_or_default().to_string();
    (text(0), text(1))
}

/// The first of `names` found on the `PATH`.
fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// A port free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until_listening(addr: SocketAddr) {
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver is not listening on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
