//! The HTTP server over loopback: searches, images by id, limits, errors, paths that must
//! never open a file, reloading while serving, concurrency and graceful shutdown.

mod serving;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use burn::tensor::{Device, Tensor};
use repr_search::server::{QueryEncoder, ServerConfig};
use serving::{
    BROKEN, COLOURS, Photos, SECRET, SIDE, TestServer, WIDE, encoder, mean_colour, png,
    read_response, request,
};

fn start(photos: &Photos) -> TestServer {
    TestServer::start(photos.config(), encoder())
}

#[test]
fn the_page_and_info() {
    let photos = Photos::new();
    let server = start(&photos);
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains(r#"<input id="file" type="file""#));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "the page must not fetch anything from elsewhere"
    );
    let info = server.get("/api/info").json();
    assert_eq!(info["count"], COLOURS.len() + 1);
    assert_eq!(info["failures"], 1, "{BROKEN} is recorded as unreadable");
    assert_eq!(info["identity"]["model"], "mean colour");
    assert_eq!(info["identity"]["dim"], 3);
}

#[test]
fn searches_by_upload_and_by_id_find_the_nearest_colours() {
    let photos = Photos::new();
    let server = start(&photos);
    let green = png([20, 230, 20], 40, 30);

    let answer = server.post("/api/search?k=3", &green);
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let json = answer.json();
    assert!(json.get("query").is_none());
    let results = json["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for result in results {
        assert_eq!(result["label"], "green");
        assert!(result["path"].as_str().unwrap().starts_with("green/"));
        assert!(result["id"].as_u64().is_some());
        assert!(result["similarity"].as_f64().unwrap() > 0.99);
    }
    let scores: Vec<f64> = results
        .iter()
        .map(|r| r["similarity"].as_f64().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    // The threshold leaves out the other colours; the filters restrict the results.
    let paths = server
        .post("/api/search?k=20&threshold=0.9", &green)
        .result_paths();
    assert_eq!(paths.len(), 3, "{paths:?}");
    let paths = server
        .post("/api/search?k=2&label=blue&label=red", &green)
        .result_paths();
    assert!(
        paths
            .iter()
            .all(|p| p.starts_with("blue/") || p.starts_with("red/"))
    );
    let g1 = photos.id("green/g1.png");
    let paths = server
        .post(
            &format!("/api/search?k=3&folder=green&exclude={g1}"),
            &green,
        )
        .result_paths();
    assert_eq!(paths.len(), 2);
    assert!(!paths.contains(&"green/g1.png".to_string()));

    // By id: the query is described, never among its own results.
    let b1 = photos.id("blue/b1.png");
    let answer = server.get(&format!("/api/images/{b1}/similar?k=3"));
    assert_eq!(answer.status, 200);
    let json = answer.json();
    assert_eq!(json["query"]["path"], "blue/b1.png");
    assert_eq!(json["query"]["id"], b1);
    let paths = answer.result_paths();
    assert_eq!(paths[..2], ["blue/b2.png", "blue/b3.png"]);
    assert!(!paths.contains(&"blue/b1.png".to_string()));

    // The copy of r1 is its nearest neighbour, at similarity 1.
    let r1 = photos.id("red/r1.png");
    let json = server.get(&format!("/api/images/{r1}/similar?k=1")).json();
    assert_eq!(json["results"][0]["path"], "red/r1-copy.png");
    assert!((json["results"][0]["similarity"].as_f64().unwrap() - 1.0).abs() < 1e-5);
}

#[test]
fn near_duplicates_are_listed_in_groups() {
    let photos = Photos::new();
    let server = start(&photos);
    let json = server.get("/api/duplicates?threshold=0.9999").json();
    let groups = json["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{json}");
    let paths: Vec<&str> = groups[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|image| image["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["red/r1.png", "red/r1-copy.png"]);
    // Lower, each colour is a group; the grey image stays alone.
    let json = server.get("/api/duplicates?threshold=0.9").json();
    assert_eq!(json["groups"].as_array().unwrap().len(), 3, "{json}");
    assert_eq!(server.get("/api/duplicates?threshold=2").status, 400);
}

#[test]
fn images_and_thumbnails_by_id() {
    let photos = Photos::new();
    let server = start(&photos);
    let id = photos.id(WIDE);
    let image = server.get(&format!("/api/images/{id}"));
    assert_eq!(image.status, 200);
    assert_eq!(image.header("content-type"), Some("image/png"));
    assert_eq!(image.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(
        image.body,
        std::fs::read(photos.photos().join(WIDE)).unwrap()
    );

    for _ in 0..2 {
        // Made, then from the cache.
        let thumbnail = server.get(&format!("/api/images/{id}/thumbnail"));
        assert_eq!(thumbnail.status, 200);
        assert_eq!(thumbnail.header("content-type"), Some("image/jpeg"));
        let decoded = image::load_from_memory(&thumbnail.body).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (256, 128));
    }
    let small = photos.id("red/r2.png");
    let thumbnail = server.get(&format!("/api/images/{small}/thumbnail"));
    let decoded = image::load_from_memory(&thumbnail.body).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (SIDE, SIDE));
}

#[test]
fn unknown_ids_and_bad_parameters_are_errors_with_a_message() {
    let photos = Photos::new();
    let server = start(&photos);
    for target in [
        "/api/images/999999",
        "/api/images/999999/thumbnail",
        "/api/images/999999/similar",
        "/nothing/here",
    ] {
        let response = server.get(target);
        assert_eq!(response.status, 404, "{target}");
        assert!(!response.error().is_empty(), "{target}");
    }
    assert!(server.get("/api/images/999999").error().contains("999999"));
    let id = photos.id("red/r1.png");
    for (target, mentions) in [
        ("/api/images/abc".to_string(), "not an image id"),
        (format!("/api/images/{id}/similar?k=0"), "`k`"),
        (format!("/api/images/{id}/similar?k=100000"), "`k`"),
        (
            format!("/api/images/{id}/similar?threshold=x"),
            "`threshold`",
        ),
        (
            format!("/api/images/{id}/similar?colour=red"),
            "unknown parameter",
        ),
        (format!("/api/images/{id}/similar?exclude=1,x"), "`exclude`"),
        (format!("/api/images/{id}?size=10"), "unknown parameter"),
    ] {
        let response = server.get(&target);
        assert_eq!(response.status, 400, "{target}");
        assert!(
            response.error().contains(mentions),
            "{target}: {}",
            response.error()
        );
    }
    let wrong_method = request(server.addr, "DELETE", "/api/info", &[], &[]).unwrap();
    assert_eq!(wrong_method.status, 405);
    assert!(!wrong_method.error().is_empty());
}

#[test]
fn paths_in_requests_never_open_a_file() {
    let photos = Photos::new();
    // An indexed link that leads out of the folder: indexed, but never served.
    let outside = photos.dir.path().join("outside.png");
    std::fs::write(&outside, png([240, 240, 0], SIDE, SIDE)).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, photos.photos().join("red/link.png")).unwrap();
    photos.update();
    let server = start(&photos);
    let secret_png = std::fs::read(&outside).unwrap();
    let mut targets: Vec<String> = [
        "/../secret.txt",
        "/..%2Fsecret.txt",
        "/%2e%2e/secret.txt",
        "/etc/passwd",
        "//etc/passwd",
        "/api/images/..%2F..%2Fsecret.txt",
        "/api/images/../../secret.txt",
        "/api/images/%2Fetc%2Fpasswd",
        "/api/images//etc/passwd",
        "/api/images/..",
        "/api/images/%2e%2e",
        "/api/images/1%2F..%2F..%2Fsecret.txt",
        "/api/images/1/..%2F..%2Fsecret.txt",
        "/api/images/1/thumbnail/..%2F..%2Fsecret.txt",
        "/api/images/1/similar/../../../secret.txt",
        "/api/images/1?path=../secret.txt",
        "/api/images/1?file=%2Fetc%2Fpasswd",
        "/api/images/red%2Fr1.png",
        "/api/images/photos/red/r1.png",
        "/api/search/../../secret.txt",
        "/api/duplicates?folder=../",
        "/?file=../secret.txt",
        "/secret.txt",
        "/photos/red/r1.png",
        "/red/r1.png",
        "/index.sqlite",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    #[cfg(unix)]
    {
        let link = photos.id("red/link.png");
        targets.push(format!("/api/images/{link}"));
        targets.push(format!("/api/images/{link}/thumbnail"));
    }
    for target in &targets {
        let response = request(server.addr, "GET", target, &[], &[]).unwrap();
        let body = String::from_utf8_lossy(&response.body);
        assert!(
            [400, 404, 405].contains(&response.status),
            "{target}: status {}",
            response.status
        );
        assert!(!body.contains(SECRET), "{target} served the secret");
        assert!(!body.contains("root:"), "{target} served /etc/passwd");
        assert!(
            response.body != secret_png,
            "{target} served a file outside"
        );
        assert!(!response.error().is_empty(), "{target}");
    }
    // A search for the link's colour may return it (it is indexed), by id only.
    let answer = server.post("/api/search?k=1&label=red", &png([240, 240, 0], 4, 4));
    assert_eq!(answer.status, 200);
}

#[test]
fn an_oversized_upload_is_413_while_other_requests_are_served() {
    let photos = Photos::new();
    let config = ServerConfig {
        max_upload_bytes: 100_000,
        ..photos.config()
    };
    let server = TestServer::start(config, encoder());
    let green = png([20, 230, 20], 8, 8);

    // Declared too large, asking to continue: refused before any of the body is sent.
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /api/search HTTP/1.1\r\nHost: x\r\nContent-Length: 30000000\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let response = read_response(&mut stream).unwrap();
    assert_eq!(response.status, 413);
    assert!(
        response.error().contains("limit of 100000 bytes"),
        "{}",
        response.error()
    );

    // Just over the limit, sent whole.
    let over = vec![0u8; 100_001];
    let response = server.post("/api/search", &over);
    assert_eq!(response.status, 413);
    assert!(response.error().contains("100000"));

    // A large body streamed without a declared length, while searches go on.
    let (addr, done) = (server.addr, Arc::new(Barrier::new(2)));
    let streaming = {
        let done = done.clone();
        thread::spawn(move || {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            write!(
                stream,
                "POST /api/search HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
                 Connection: close\r\n\r\n"
            )
            .unwrap();
            let chunk = vec![7u8; 1 << 16];
            let mut sent = 0;
            // The server stops reading at the limit; writing may then fail.
            while sent < 4 << 20 {
                let head = format!("{:x}\r\n", chunk.len());
                let ok = stream.write_all(head.as_bytes()).is_ok()
                    && stream.write_all(&chunk).is_ok()
                    && stream.write_all(b"\r\n").is_ok();
                if !ok {
                    break;
                }
                sent += chunk.len();
            }
            done.wait();
            let mut raw = Vec::new();
            let _ = stream.read_to_end(&mut raw);
            raw
        })
    };
    for _ in 0..5 {
        assert_eq!(server.post("/api/search?k=1", &green).status, 200);
        assert_eq!(server.get("/api/info").status, 200);
    }
    done.wait();
    let raw = streaming.join().unwrap();
    // The answer, when the connection let it through before closing, is 413.
    if !raw.is_empty() {
        let text = String::from_utf8_lossy(&raw);
        assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    }
    assert_eq!(server.post("/api/search?k=1", &green).status, 200);
}

#[test]
fn an_upload_that_is_not_an_image_is_refused_with_a_message() {
    let photos = Photos::new();
    let server = start(&photos);
    let response = server.post("/api/search", b"hello, this is text");
    assert_eq!(response.status, 415);
    assert!(
        response.error().contains("not a PNG or JPEG image"),
        "{}",
        response.error()
    );
    let png = png([20, 230, 20], 40, 30);
    let response = server.post("/api/search", &png[..60]);
    assert_eq!(response.status, 415, "a truncated PNG");
    let response = server.post("/api/search", b"");
    assert_eq!(response.status, 400);
    assert!(response.error().contains("empty"));

    // A PNG header that declares 100,000 × 100,000 pixels: refused before decoding.
    let mut huge = png.clone();
    huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
    huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
    let response = server.post("/api/search", &huge);
    assert_eq!(response.status, 413);
    assert!(response.error().contains("pixels"), "{}", response.error());
    // A black image has no direction under the mean-colour encoder.
    let response = server.post("/api/search", &serving::png([0, 0, 0], 4, 4));
    assert_eq!(response.status, 400);
    assert!(response.error().contains("zero"), "{}", response.error());
}

#[test]
fn the_index_is_reloaded_while_it_is_served() {
    let photos = Photos::new();
    let server = start(&photos);
    let count = |server: &TestServer| server.get("/api/info").json()["count"].as_u64().unwrap();
    let before = count(&server);
    let yellow = png([240, 240, 0], SIDE, SIDE);
    std::fs::write(photos.photos().join("yellow.png"), &yellow).unwrap();
    std::fs::remove_file(photos.photos().join("blue/b3.png")).unwrap();
    let b3 = photos.id("blue/b3.png");
    // The server reads the index while it is opened for writing and updated.
    photos.update();
    let deadline = Instant::now() + Duration::from_secs(20);
    // The file is gone at once; the id stays searchable until the reload.
    while server.get(&format!("/api/images/{b3}/similar")).status != 404 {
        assert!(Instant::now() < deadline, "the server did not reload");
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(count(&server), before);
    let paths = server.post("/api/search?k=1", &yellow).result_paths();
    assert_eq!(paths, ["yellow.png"]);
    let yellow_id = photos.id("yellow.png");
    let thumbnail = server.get(&format!("/api/images/{yellow_id}/thumbnail"));
    assert_eq!(thumbnail.status, 200);
}

#[test]
fn two_hundred_concurrent_searches() {
    let photos = Photos::new();
    let server = start(&photos);
    let ids: Vec<u64> = COLOURS.iter().map(|(path, _)| photos.id(path)).collect();
    let queries: Vec<Vec<u8>> = COLOURS.iter().map(|(_, c)| png(*c, 16, 16)).collect();
    let n = 200;
    let start = Arc::new(Barrier::new(n));
    let began = Instant::now();
    let workers: Vec<_> = (0..n)
        .map(|i| {
            let (addr, start) = (server.addr, start.clone());
            let (id, query) = (ids[i % ids.len()], queries[i % queries.len()].clone());
            thread::spawn(move || {
                start.wait();
                let t = Instant::now();
                let response = if i % 2 == 0 {
                    request(addr, "POST", "/api/search?k=5", &[], &query)
                } else {
                    request(
                        addr,
                        "GET",
                        &format!("/api/images/{id}/similar?k=5"),
                        &[],
                        &[],
                    )
                };
                (response, t.elapsed())
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for worker in workers {
        let (response, latency) = worker.join().unwrap();
        let response = response.expect("the request completes");
        assert_eq!(
            response.status,
            200,
            "{}",
            String::from_utf8_lossy(&response.body)
        );
        assert_eq!(response.result_paths().len(), 5);
        latencies.push(latency);
    }
    let total = began.elapsed();
    latencies.sort();
    let p50 = latencies[n / 2];
    let p99 = latencies[n * 99 / 100];
    println!("{n} concurrent searches: total {total:.2?}, p50 {p50:.2?}, p99 {p99:.2?}");
    assert!(total < Duration::from_secs(120), "{total:?}");
}

#[test]
fn shutdown_lets_the_requests_in_progress_finish() {
    let photos = Photos::new();
    let slow = QueryEncoder::new(Device::flex(), |x: Tensor<4>| {
        thread::sleep(Duration::from_millis(600));
        mean_colour(x)
    });
    let server = TestServer::start(photos.config(), slow);
    let addr = server.addr;
    let in_progress = thread::spawn(move || {
        request(
            addr,
            "POST",
            "/api/search?k=1",
            &[],
            &png([20, 230, 20], 8, 8),
        )
        .unwrap()
    });
    thread::sleep(Duration::from_millis(200));
    server.stop().expect("the server stops cleanly");
    let response = in_progress.join().unwrap();
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.result_paths()[0].split('/').next(), Some("green"));
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "still listening after shutdown"
    );
}
