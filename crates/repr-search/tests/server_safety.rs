//! What a request must never do to the server: open a file by a path it names, get past the
//! upload limit, or have something that is not an image taken for one.

mod serving;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use repr_search::server::ServerConfig;
use serving::{Photos, SECRET, SIDE, TestServer, encoder, png, read_response, request, start};

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
        assert!(!body.contains(SECRET), "{target} served the secret");
        assert!(!body.contains("root:"), "{target} served /etc/passwd");
        assert!(
            response.body != secret_png,
            "{target} served a file outside"
        );
        if response.status == 200 {
            // Only the page, whatever follows its `?`.
            assert!(target.starts_with("/?"), "{target}: status 200");
            assert!(body.contains("<title>repr-search</title>"), "{target}");
        } else {
            assert!(
                [400, 404, 405].contains(&response.status),
                "{target}: status {}",
                response.status
            );
            assert!(!response.error().is_empty(), "{target}");
        }
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
    let text = String::from_utf8_lossy(&raw);
    let status_line = text.lines().next().unwrap_or("(connection closed)");
    println!("a chunked upload over the limit: {status_line}");
    if !raw.is_empty() {
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
