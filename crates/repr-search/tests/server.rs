//! The HTTP server over loopback: searches, images by id, errors, reloading while serving,
//! concurrency and graceful shutdown (what a request must never do: `server_safety.rs`).

mod serving;

use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use std::collections::BTreeSet;
use std::path::Path;

use burn::tensor::{Device, Tensor};
use repr_search::server::{QueryEncoder, ServerConfig};
use repr_search::{ApproxConfig, Index, SearchKind};
use serving::{BROKEN, COLOURS, Photos, SIDE, TestServer, WIDE, mean_colour, png, request, start};

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
    assert_eq!(
        info["model_description"], "mean colour",
        "the identity's, unless configured"
    );
    assert_eq!(info["identity"]["dim"], 3);
}

#[test]
fn searches_by_upload_and_by_id_find_the_nearest_colours() {
    let photos = Photos::new();
    let server = start(&photos);
    assert_eq!(server.get("/api/info").json()["search"], "exact");
    searches_find_the_nearest_colours(&photos, &server);
}

/// Served approximately, the same answers: from the graph `Index::approx_searcher` saved in
/// the index folder, or from one the server builds in memory, writing nothing either way.
#[test]
fn approximate_search_serves_the_same_answers_and_writes_nothing() {
    let photos = Photos::new();
    let approx = || ServerConfig {
        search: SearchKind::Approx,
        ..photos.config()
    };
    let files = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| !name.ends_with("-wal") && !name.ends_with("-shm"))
            .collect()
    };
    let before = files(&photos.index());
    assert!(!before.iter().any(|name| name.ends_with(".usearch")));
    {
        let server = TestServer::start(approx(), serving::encoder());
        assert_eq!(server.get("/api/info").json()["search"], "approx");
        searches_find_the_nearest_colours(&photos, &server);
    }
    assert_eq!(
        files(&photos.index()),
        before,
        "a graph built by the server is not saved"
    );

    let index = Index::open(&photos.index()).unwrap();
    drop(index.approx_searcher(&ApproxConfig::default()).unwrap());
    drop(index);
    let saved = files(&photos.index());
    assert!(
        saved.iter().any(|name| name.ends_with(".usearch")),
        "{saved:?}"
    );
    let server = TestServer::start(approx(), serving::encoder());
    assert_eq!(server.get("/api/info").json()["search"], "approx");
    searches_find_the_nearest_colours(&photos, &server);
    assert_eq!(files(&photos.index()), saved);
}

fn searches_find_the_nearest_colours(photos: &Photos, server: &TestServer) {
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
        assert!(result["similarity"].as_f64().unwrap() > 0.98);
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
    // By id: the copy sorts before the original in the walk, so it was indexed first.
    assert_eq!(paths, ["red/r1-copy.png", "red/r1.png"]);
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
