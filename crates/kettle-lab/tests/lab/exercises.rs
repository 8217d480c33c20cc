//! The chapter's exercises, adapted to Rust (`notebooks/06-exercises.ipynb`): each reference
//! solution is a cell between `// [cell ID]` and `// [end]`, run and checked here.

// [cell setup]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use kettle_lab::{Bitmap, images};
use rayon::prelude::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
// [end]

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn e4_a_race_on_purpose_overdraws_the_account() {
    // [cell E4]
    /// A bank account whose `withdraw` checks the balance and takes the money in two steps,
    /// each one safe (a lock), the pair not: a check-then-act race.
    struct Account {
        balance: Mutex<i64>,
    }

    impl Account {
        fn withdraw_racy(&self, amount: i64) -> bool {
            let enough = *self.balance.lock().unwrap() >= amount; // check...
            thread::yield_now(); // ...another thread may run here...
            if enough {
                *self.balance.lock().unwrap() -= amount; // ...then act on a stale answer
            }
            enough
        }

        fn withdraw(&self, amount: i64) -> bool {
            let mut balance = self.balance.lock().unwrap(); // one lock across check and act
            let enough = *balance >= amount;
            if enough {
                *balance -= amount;
            }
            enough
        }
    }

    fn run(racy: bool) -> (i64, u64) {
        let mut overdrawn = 0;
        let mut lowest = 0;
        for _ in 0..200 {
            let account = Account {
                balance: Mutex::new(100),
            };
            let granted = AtomicU64::new(0);
            thread::scope(|s| {
                for _ in 0..4 {
                    s.spawn(|| {
                        let ok = if racy {
                            account.withdraw_racy(100)
                        } else {
                            account.withdraw(100)
                        };
                        granted.fetch_add(ok as u64, Ordering::Relaxed);
                    });
                }
            });
            let balance = *account.balance.lock().unwrap();
            if balance < 0 {
                overdrawn += 1;
                lowest = lowest.min(balance);
            }
            assert_eq!(balance, 100 - 100 * granted.load(Ordering::Relaxed) as i64);
        }
        (lowest, overdrawn)
    }

    let (lowest, overdrawn) = run(true);
    println!("racy:   {overdrawn} of 200 accounts overdrawn, the worst to {lowest}");
    let (lowest, overdrawn) = run(false);
    println!("locked: {overdrawn} of 200 accounts overdrawn, the worst to {lowest}");
    // [end]
    assert_eq!((lowest, overdrawn), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e3_async_http_server_serves_a_page() -> TestResult {
    // [cell E3]
    /// Answers one HTTP/1.1 request: a page for `/`, 404 for anything else.
    async fn handle(stream: tokio::net::TcpStream, hits: Arc<AtomicU64>) -> std::io::Result<()> {
        let (reader, mut writer) = stream.into_split();
        let mut lines = BufReader::new(reader).lines();
        let request = lines.next_line().await?.unwrap_or_default(); // "GET / HTTP/1.1"
        while let Some(header) = lines.next_line().await? {
            if header.is_empty() {
                break; // the blank line ends the headers
            }
        }
        let path = request.split_whitespace().nth(1).unwrap_or("/");
        let n = hits.fetch_add(1, Ordering::Relaxed) + 1;
        let (status, body) = match path {
            "/" => (
                "200 OK",
                format!(
                    "<!doctype html><title>kettle</title><h1>Hello from tokio</h1><p>request {n}</p>"
                ),
            ),
            _ => ("404 Not Found", format!("<h1>no {path} here</h1>")),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        writer.write_all(response.as_bytes()).await?;
        writer.shutdown().await
    }

    /// Serves until `open_for` has passed. Open the printed URL in a browser meanwhile.
    async fn serve(listener: TcpListener, open_for: Duration) -> u64 {
        let hits = Arc::new(AtomicU64::new(0));
        let deadline = tokio::time::sleep(open_for);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                Ok((stream, _)) = listener.accept() => {
                    tokio::spawn(handle(stream, hits.clone()));
                }
                _ = &mut deadline => return hits.load(Ordering::Relaxed),
            }
        }
    }

    /// What a browser sends, more or less; returns the whole response.
    async fn get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
        use tokio::io::AsyncReadExt;
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/html\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await?;
        Ok(response)
    }

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("serving http://{addr}/ for 2 seconds (make it 60 to try a browser)");
    let server = tokio::spawn(serve(listener, Duration::from_secs(2)));
    let page = get(addr, "/").await?;
    let missing = get(addr, "/favicon.ico").await?;
    println!("{page}\n");
    println!("{}", missing.lines().next().unwrap_or_default());
    println!("served {} requests", server.await?);
    // [end]
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n") && page.ends_with("<p>request 1</p>"));
    assert!(missing.starts_with("HTTP/1.1 404"));
    Ok(())
}

#[test]
fn e6_parallel_decompression_finds_row_boundaries_first() {
    // [cell E6]
    /// Sequential decompression (as C23), straight into a pixel vector.
    fn decompress(width: usize, height: usize, runs: &[u8]) -> Vec<bool> {
        let mut pixels = Vec::with_capacity(width * height);
        for &byte in runs {
            pixels.extend(std::iter::repeat_n(byte >> 7 == 1, (byte & 0x7F) as usize));
        }
        pixels
    }

    /// Where each row's runs start: a cheap sequential scan adding up run lengths. Runs never
    /// cross a row boundary, so the rows can then be decoded independently.
    fn row_starts(width: usize, runs: &[u8]) -> Vec<usize> {
        let mut starts = vec![0];
        let mut filled = 0;
        for (i, &byte) in runs.iter().enumerate() {
            filled += (byte & 0x7F) as usize;
            if filled == width {
                starts.push(i + 1);
                filled = 0;
            }
        }
        starts
    }

    fn decompress_parallel(width: usize, height: usize, runs: &[u8]) -> Vec<bool> {
        let starts = row_starts(width, runs);
        let mut pixels = vec![false; width * height];
        pixels
            .par_chunks_mut(width)
            .zip(starts.par_windows(2))
            .for_each(|(row, w)| {
                let mut x = 0;
                for &byte in &runs[w[0]..w[1]] {
                    let n = (byte & 0x7F) as usize;
                    row[x..x + n].fill(byte >> 7 == 1);
                    x += n;
                }
            });
        pixels
    }

    let page = images::page(2);
    let rle = kettle_lab::rle::compress_image(&page);
    let (w, h, runs) = (page.width(), page.height(), rle[4..].to_vec());
    let start = Instant::now();
    let one = decompress(w, h, &runs);
    let sequential = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let many = decompress_parallel(w, h, &runs);
    let parallel = start.elapsed().as_secs_f64();
    println!(
        "sequential {sequential:.3} s, parallel {parallel:.3} s, equal: {}",
        one == many
    );
    println!(
        "round trip equal: {}",
        Bitmap::from_pixels(w, h, many) == page
    );
    // [end]
    assert_eq!(one, page.pixels());
}
