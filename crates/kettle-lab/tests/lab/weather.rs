//! The weather server (C4–C5): concurrency, status codes, robustness, shutdown.
//!
//! Timing assertions compare runs with each other (parallel vs sequential), never against a
//! fixed number of milliseconds: the CI machine is shared and noisy.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use kettle_lab::{
    BOOK_CITIES, CITIES, LabError, WeatherServer, expected_temperature, fetch_json, get_temperature,
};

use crate::util::{raw_exchange, status_of};

fn quick_server() -> WeatherServer {
    WeatherServer::builder()
        .no_latency()
        .lifetime(Duration::from_secs(120))
        .start()
        .expect("start")
}

#[test]
fn nine_parallel_requests_take_about_one_latency_not_nine() {
    let latency = Duration::from_millis(100)..Duration::from_millis(120);
    let server = WeatherServer::builder()
        .latency(latency)
        .lifetime(Duration::from_secs(120))
        .start()
        .unwrap();
    let url = server.url();

    let start = Instant::now();
    for city in CITIES {
        get_temperature(&url, city).unwrap();
    }
    let sequential = start.elapsed();

    let start = Instant::now();
    thread::scope(|s| {
        let threads: Vec<_> = CITIES
            .iter()
            .map(|city| s.spawn(|| get_temperature(&url, city).unwrap()))
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    });
    let parallel = start.elapsed();

    assert!(
        parallel < sequential / 4,
        "expected parallel < sequential / 4\n  parallel:   {parallel:?}\n  sequential: {sequential:?}"
    );
    assert_eq!(server.requests_served(), 18);
}

#[test]
fn every_city_reports_its_table_temperature() {
    let server = quick_server();
    for city in CITIES.iter().chain(BOOK_CITIES.iter()) {
        let got = get_temperature(&server.url(), city).unwrap();
        assert_eq!(Some(got), expected_temperature(city), "{city}");
    }
    let edmonton = get_temperature(&server.url(), "Edmonton").unwrap();
    assert_eq!(
        format!("it is {edmonton:.0}°C in Edmonton"),
        "it is 3°C in Edmonton"
    );
}

#[test]
fn decodes_percent_encoded_city_names() {
    let server = quick_server();
    let reply = raw_exchange(
        server.addr(),
        b"GET /data/2.5/weather?q=St.%20John%27s,CA&units=metric&appid=x HTTP/1.1\r\nHost: t\r\n\r\n",
        false,
    );
    assert_eq!(status_of(&reply), Some(200), "{reply}");
    assert!(reply.contains("\"name\":\"St. John's\""), "{reply}");
    assert!(reply.contains("Content-Type: application/json"), "{reply}");
}

#[test]
fn missing_appid_gets_401_json() {
    let server = quick_server();
    let url = format!(
        "{}/data/2.5/weather?q=Edmonton,CA&units=metric",
        server.url()
    );
    match fetch_json(&url) {
        Err(LabError::Status { code: 401, body }) => {
            assert!(body.contains("\"cod\":\"401\""), "{body}")
        }
        other => panic!("expected a 401, got {other:?}"),
    }
}

#[test]
fn unknown_city_gets_404() {
    let server = quick_server();
    match get_temperature(&server.url(), "Atlantis") {
        Err(LabError::Status { code: 404, body }) => {
            assert!(body.contains("city not found"), "{body}")
        }
        other => panic!("expected a 404, got {other:?}"),
    }
}

#[test]
fn malformed_requests_get_400_and_the_server_keeps_serving() {
    let server = quick_server();
    let addr = server.addr();
    let cases: [(&str, &[u8], bool); 6] = [
        ("garbage bytes", b"\x00\xff\xfe garbage \x13\r\n\r\n", false),
        ("request line without path", b"GET\r\n\r\n", false),
        (
            "target not starting with /",
            b"GET weather HTTP/1.1\r\n\r\n",
            false,
        ),
        ("half-closed mid request line", b"GET /data/2.5/wea", true),
        ("half-closed garbage", b"\x01\x02\x03", true),
        (
            "broken percent escape",
            b"GET /data/2.5/weather?q=%G1&appid=x HTTP/1.1\r\n\r\n",
            false,
        ),
    ];
    for (what, bytes, half_close) in cases {
        let reply = raw_exchange(addr, bytes, half_close);
        assert_eq!(status_of(&reply), Some(400), "{what}: got {reply:?}");
        assert!(reply.contains("\"cod\":\"400\""), "{what}: {reply}");
    }
    let huge = format!("GET /{} HTTP/1.1\r\n\r\n", "x".repeat(20_000));
    assert_eq!(
        status_of(&raw_exchange(addr, huge.as_bytes(), false)),
        Some(431)
    );
    // Connect and leave without a byte: nothing to answer, nothing to crash.
    assert_eq!(raw_exchange(addr, b"", true), "");
    // Still alive and correct afterwards.
    assert_eq!(
        get_temperature(&server.url(), "Regina").unwrap(),
        expected_temperature("Regina").unwrap()
    );
}

#[test]
fn drop_releases_the_port() {
    let server = quick_server();
    let addr = server.addr();
    get_temperature(&server.url(), "Toronto").unwrap();
    drop(server);
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after drop"
    );
    TcpListener::bind(addr).expect("the port is free again");
}

#[test]
fn drop_is_prompt_with_idle_and_in_flight_connections() {
    // 30 s of latency: if drop waited for requests to finish, this test would take 30 s.
    let slow = Duration::from_secs(30);
    let server = WeatherServer::builder()
        .latency(slow..slow)
        .start()
        .unwrap();
    let _idle = TcpStream::connect(server.addr()).unwrap();
    let mut in_flight = TcpStream::connect(server.addr()).unwrap();
    in_flight
        .write_all(b"GET /data/2.5/weather?q=Halifax&appid=x HTTP/1.1\r\n\r\n")
        .unwrap();
    thread::sleep(Duration::from_millis(50)); // let both reach their connection threads
    let start = Instant::now();
    drop(server);
    let took = start.elapsed();
    assert!(took < slow / 10, "drop took {took:?}");
}

#[test]
fn lifetime_limit_stops_the_server_by_itself() {
    let server = WeatherServer::builder()
        .no_latency()
        .lifetime(Duration::from_millis(200))
        .start()
        .unwrap();
    assert!(server.is_running());
    let addr = server.addr();
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.is_running() {
        assert!(
            Instant::now() < deadline,
            "server still running long after its lifetime"
        );
        thread::sleep(Duration::from_millis(10));
    }
    assert!(
        TcpStream::connect(addr).is_err(),
        "still accepting after its lifetime"
    );
}

#[test]
fn connections_over_the_limit_get_503_at_once() {
    let slow = Duration::from_millis(400);
    let server = WeatherServer::builder()
        .latency(slow..slow)
        .max_connections(1)
        .start()
        .unwrap();
    let url = server.url();
    thread::scope(|s| {
        let first = s.spawn(|| get_temperature(&url, "Victoria"));
        thread::sleep(Duration::from_millis(100));
        let start = Instant::now();
        match get_temperature(&url, "Winnipeg") {
            Err(LabError::Status { code: 503, .. }) => {}
            other => panic!("expected 503, got {other:?}"),
        }
        assert!(start.elapsed() < slow, "the refusal waited for the latency");
        assert_eq!(
            first.join().unwrap().unwrap(),
            expected_temperature("Victoria").unwrap()
        );
    });
}

#[test]
fn a_backwards_latency_range_is_rejected() {
    let err = WeatherServer::builder()
        .latency(Duration::from_millis(2)..Duration::from_millis(1))
        .start()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
