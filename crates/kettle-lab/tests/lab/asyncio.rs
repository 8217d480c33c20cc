//! Notebook 04 ("AsyncIO") without Jupyter: every Rust cell of `notebooks/04-asyncio.ipynb`
//! lives here, between `// [cell ID]` and `// [end]`, and runs as an ordinary test.
//!
//! Cells with a top-level `.await` run, in the kernel, inside evcxr's tokio runtime; here they
//! are the bodies of `#[tokio::test]` functions, which is the same thing. The cells that build
//! their own current-thread runtime (C13, X7) are plain tests: `block_on` must not be called
//! from inside a runtime.

// [cell setup]
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use kettle_lab::dns::IP_MAP;
use kettle_lab::sort_service::{parse_json_list, random_list, to_json};
use kettle_timing::Timeline;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
// [end]

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn c13_five_sleepers_wake_in_order_of_their_delays() -> TestResult {
    // [cell C13]
    /// The first five `random.random()` of Python after `random.seed(1)`: the same delays as
    /// the Python run of this cell, so the two outputs can be compared line by line.
    const PYTHON_SEED_1: [f64; 5] = [
        0.134_364_244_112_401_22,
        0.847_433_736_937_232_7,
        0.763_774_618_976_614,
        0.255_069_025_739_421_7,
        0.495_435_087_091_940_95,
    ];

    async fn random_sleep(counter: usize, timeline: Timeline) {
        let delay = PYTHON_SEED_1[counter] * 5.0;
        println!("{counter} sleeps for {delay:.2} seconds");
        let lane = timeline.lane(&format!("task {counter}"));
        let _sleeping = lane.enter(format!("sleep {delay:.2} s"));
        tokio::time::sleep(Duration::from_secs_f64(delay)).await;
        println!("{counter} awakens");
    }

    async fn five_sleepers(timeline: Timeline) {
        println!("Creating five tasks");
        let tasks: Vec<JoinHandle<()>> = (0..5)
            .map(|i| tokio::spawn(random_sleep(i, timeline.clone())))
            .collect();
        println!("Sleeping after starting five tasks");
        let main_task = timeline.lane("five_sleepers");
        {
            let _sleeping = main_task.enter("sleep 2 s");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        println!("Waking and waiting for five tasks");
        let _waiting = main_task.enter("wait for all");
        for task in tasks {
            task.await.expect("a sleeper panicked");
        }
    }

    // Python's event loop runs on one thread: so does a current-thread runtime.
    let event_loop = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let timeline = Timeline::new();
    let start = Instant::now();
    event_loop.block_on(five_sleepers(timeline.clone())); // run_until_complete
    println!("Done five tasks");
    let took = start.elapsed().as_secs_f64();
    println!("(took {took:.3} s; Python: 4.240 s)");
    timeline.show();
    // [end]
    assert!((4.2..4.5).contains(&took), "{took}");
    assert_eq!(timeline.lanes().len(), 6);
    Ok(())
}

#[test]
fn x7_a_blocking_sleep_stalls_the_loop() -> TestResult {
    // [cell X7]
    /// Three tasks that each wait 0.5 s, on a one-thread loop, waiting in three ways.
    fn three_waits(how: &'static str) -> f64 {
        let event_loop = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let start = Instant::now();
        event_loop.block_on(async {
            let tasks: Vec<_> = (0..3)
                .map(|_| {
                    tokio::spawn(async move {
                        let half = Duration::from_millis(500);
                        match how {
                            // Blocks the only thread: no other task can run meanwhile.
                            "std::thread::sleep" => std::thread::sleep(half),
                            // Yields to the loop until the timer fires.
                            "tokio::time::sleep" => tokio::time::sleep(half).await,
                            // Blocking work moved to tokio's thread pool: the loop stays free.
                            _ => tokio::task::spawn_blocking(move || std::thread::sleep(half))
                                .await
                                .unwrap(),
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        start.elapsed().as_secs_f64()
    }

    let mut times = Vec::new();
    for how in ["std::thread::sleep", "tokio::time::sleep", "spawn_blocking"] {
        let took = three_waits(how);
        println!("3 tasks × 0.5 s with {how:<20} took {took:.2} s");
        times.push(took);
    }
    // [end]
    assert!(times[0] >= 1.5, "{times:?}");
    assert!(times[1] < 0.8 && times[2] < 0.8, "{times:?}");
    Ok(())
}

#[test]
fn c14_dns_server_answers_the_books_names() -> TestResult {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        // [cell C14-server]
        /// The book's `lookup_dns`: the name in the question (length-prefixed labels from byte
        /// 12 on), and its address from the table; unknown names get 127.0.0.1.
        fn lookup_dns(data: &[u8]) -> (String, Ipv4Addr) {
            let mut domain = String::new();
            let mut i = 12;
            while data[i] != 0 {
                let len = data[i] as usize;
                domain += &String::from_utf8_lossy(&data[i + 1..i + 1 + len]);
                domain.push('.');
                i += len + 1;
            }
            let ip = IP_MAP
                .iter()
                .find(|(name, _)| *name == domain)
                .map_or(Ipv4Addr::LOCALHOST, |&(_, ip)| ip);
            (domain, ip)
        }

        /// The book's `create_response`, byte for byte: same id, flags "response, no error",
        /// one answer per question, the question echoed, then the A record.
        fn create_response(data: &[u8], ip: Ipv4Addr) -> Vec<u8> {
            let mut packet = data[..2].to_vec(); // the query's id
            packet.extend([0x81, 0x80]); // QR, RD, RA
            packet.extend(&data[4..6]); // QDCOUNT
            packet.extend(&data[4..6]); // ANCOUNT = QDCOUNT
            packet.extend([0, 0, 0, 0]); // NSCOUNT, ARCOUNT
            packet.extend(&data[12..]); // the question (as in the book: everything after the header)
            packet.extend([0xC0, 0x0C]); // the name: a pointer to byte 12
            packet.extend([0, 1, 0, 1]); // type A, class IN
            packet.extend(60u32.to_be_bytes()); // TTL
            packet.extend(4u16.to_be_bytes()); // RDLENGTH
            packet.extend(ip.octets());
            packet
        }

        /// The book's `DNSProtocol.datagram_received`, as a loop over one UDP socket. It ends
        /// when `shutdown` fires: no Ctrl-C needed to leave `run_forever()`.
        async fn dns_server(
            socket: UdpSocket,
            mut shutdown: oneshot::Receiver<()>,
        ) -> io::Result<usize> {
            let mut buf = [0u8; 512];
            let mut served = 0;
            loop {
                tokio::select! {
                    received = socket.recv_from(&mut buf) => {
                        let (n, addr) = received?;
                        let data = &buf[..n];
                        println!("Received request from {addr}");
                        let (domain, ip) = lookup_dns(data);
                        // The book swaps these two arguments and prints the name as the IP.
                        println!("Sending IP {ip} for {domain} to {addr}");
                        socket.send_to(&create_response(data, ip), addr).await?;
                        served += 1;
                    }
                    _ = &mut shutdown => return Ok(served),
                }
            }
        }
        // [end]

        // [cell C14-client]
        /// `nslookup` by hand: a query for `name`'s A record, and the address in the answer.
        async fn nslookup(server: SocketAddr, id: u16, name: &str) -> io::Result<Ipv4Addr> {
            let mut query = id.to_be_bytes().to_vec();
            query.extend([0x01, 0x00]); // a standard query, recursion desired
            query.extend([0, 1, 0, 0, 0, 0, 0, 0]); // one question
            for label in name.split('.') {
                query.push(label.len() as u8);
                query.extend(label.as_bytes());
            }
            query.extend([0, 0, 1, 0, 1]); // end of name, type A, class IN

            let socket = UdpSocket::bind("127.0.0.1:0").await?;
            socket.send_to(&query, server).await?;
            let mut reply = [0u8; 512];
            // UDP gives no error for a lost packet: without a timeout we might wait forever.
            let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut reply)).await??;
            let reply = &reply[..n];
            if reply[..2] != id.to_be_bytes() || reply[2] & 0x80 == 0 {
                return Err(io::Error::other("not the answer to our query"));
            }
            let ip = &reply[n - 4..]; // the A record's data ends the packet
            Ok(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]))
        }

        let socket = UdpSocket::bind("127.0.0.1:0").await?; // port 0: any free port, not 4343
        let server_addr = socket.local_addr()?;
        let (stop, shutdown) = oneshot::channel();
        let server = tokio::spawn(dns_server(socket, shutdown));
        println!("DNS Server running on {server_addr}");

        let mut answers = Vec::new();
        let names = [
            "facebook.com",
            "yougov.com",
            "wipo.int",
            "dataquest.io",
            "example.org",
        ];
        for (id, name) in (1..).zip(names) {
            let ip = nslookup(server_addr, id, name).await?;
            println!("  nslookup {name:<13} -> {ip}");
            answers.push((name.to_string(), ip));
        }

        let _ = stop.send(()); // the "Ctrl-C"
        let served = server.await??;
        println!("DNS Server stopped after {served} requests");
        // [end]
        assert_eq!(served, 5);
        for (name, ip) in &answers {
            assert_eq!(*ip, kettle_lab::dns::expected_ip(name), "{name}");
        }

        // The same server checked by an independent client (kettle_lab::dns, std sockets).
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let (stop, shutdown) = oneshot::channel();
        let server = tokio::spawn(dns_server(socket, shutdown));
        let resolved = tokio::task::spawn_blocking(move || {
            IP_MAP
                .iter()
                .map(|(name, _)| kettle_lab::dns::resolve(addr, name).unwrap())
                .collect::<Vec<_>>()
        })
        .await?;
        let expected: Vec<Ipv4Addr> = IP_MAP.iter().map(|&(_, ip)| ip).collect();
        assert_eq!(resolved, expected);
        let _ = stop.send(());
        assert_eq!(server.await??, 4);
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c15_c16_x8_sort_service_with_concurrent_clients() -> TestResult {
    // [cell C15]
    /// The book's `sort_in_process`: JSON in, gnome-sorted JSON out. Slow on purpose.
    fn sort_in_process(data: Vec<u8>) -> Vec<u8> {
        let mut list = parse_json_list(&data).expect("a JSON list of integers");
        let mut i = 0; // gnome sort: forward while in order, else swap and step back
        while i < list.len() {
            if i == 0 || list[i - 1] <= list[i] {
                i += 1;
            } else {
                list.swap(i - 1, i);
                i -= 1;
            }
        }
        to_json(&list).into_bytes()
    }

    /// Where the CPU work runs: `run_in_executor` with threads or with processes.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Executor {
        Threads,
        Processes,
    }

    /// The process flavour: the same sort in a `kettle-worker sort` child, data over pipes.
    /// Waiting for a child blocks, so this runs on the blocking pool too.
    fn sort_in_worker(data: Vec<u8>) -> io::Result<Vec<u8>> {
        use std::io::Write;
        let mut child = std::process::Command::new(kettle_lab::worker_path()?)
            .arg("sort")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()?;
        // The worker reads all its input before it writes: no pipe deadlock.
        child.stdin.take().expect("piped").write_all(&data)?;
        Ok(child.wait_with_output()?.stdout)
    }

    /// The book's `sort_request`: length, data, sort off the loop, reply, close.
    async fn sort_request(mut stream: TcpStream, executor: Executor) -> io::Result<()> {
        println!("Received connection");
        let mut length = [0u8; 8];
        // read_exact, not read: a read may return fewer bytes (the book's read(8) quirk).
        stream.read_exact(&mut length).await?;
        let mut data = vec![0u8; u64::from_be_bytes(length) as usize];
        stream.read_exact(&mut data).await?;
        let sorted = match executor {
            // run_in_executor(None, ...): a thread from tokio's blocking pool.
            Executor::Threads => tokio::task::spawn_blocking(move || sort_in_process(data)).await?,
            Executor::Processes => {
                tokio::task::spawn_blocking(move || sort_in_worker(data)).await??
            }
        };
        println!("Sorted list");
        stream.write_all(&sorted).await?;
        stream.shutdown().await?;
        println!("Connection closed");
        Ok(())
    }

    /// A running service: its address, and how to stop it.
    struct SortService {
        addr: SocketAddr,
        stop: oneshot::Sender<()>,
        task: JoinHandle<usize>,
    }

    impl SortService {
        async fn start(executor: Executor) -> io::Result<SortService> {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let (stop, mut shutdown) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                let mut served = 0;
                loop {
                    tokio::select! {
                        Ok((stream, _)) = listener.accept() => {
                            served += 1;
                            // One task per connection: the loop accepts the next one at once.
                            tokio::spawn(async move {
                                if let Err(e) = sort_request(stream, executor).await {
                                    println!("sort_request failed: {e}");
                                }
                            });
                        }
                        _ = &mut shutdown => return served,
                    }
                }
            });
            Ok(SortService { addr, stop, task })
        }

        /// Stops accepting connections; returns how many were served.
        async fn stop(self) -> usize {
            let _ = self.stop.send(());
            self.task.await.unwrap_or(0)
        }
    }

    let service = SortService::start(Executor::Threads).await?;
    println!("Sort Service running on {}", service.addr);
    kettle_lab::worker_path()?; // the worker is built with cargo on first use
    let processes = SortService::start(Executor::Processes).await?;
    println!("Sort Service (processes) running on {}", processes.addr);
    // [end]

    // [cell C16]
    /// The 3rd edition's `remote_sort` client: send a length and a JSON list, read the reply.
    async fn remote_sort(addr: SocketAddr, client: u64, n: usize) -> io::Result<Vec<u64>> {
        println!("client {client}: Generating random list...");
        let list = random_list(client, n, 10_000);
        let data = to_json(&list).into_bytes();
        println!("client {client}: List Generated, Sending data");
        let mut stream = TcpStream::connect(addr).await?;
        stream.write_all(&(data.len() as u64).to_be_bytes()).await?;
        stream.write_all(&data).await?;
        println!("client {client}: Waiting for data...");
        // As in the book: the sorted JSON has exactly as many bytes as the unsorted one.
        let mut sorted = vec![0u8; data.len()];
        stream.read_exact(&mut sorted).await?;
        println!("client {client}: Received data");
        parse_json_list(&sorted).map_err(io::Error::other)
    }

    fn show(sorted: &[u64]) -> String {
        let is_sorted = sorted.is_sorted();
        format!(
            "{:?} … {:?} ({} numbers, sorted: {is_sorted})",
            &sorted[..7],
            &sorted[sorted.len() - 3..],
            sorted.len()
        )
    }

    let start = Instant::now();
    let sorted = remote_sort(service.addr, 1, 10_000).await?;
    let one = start.elapsed().as_secs_f64();
    println!("{}", show(&sorted));
    println!("1 client: round trip {one:.3} s (Python: 9.07 s)\n");

    // Four clients at once: each is a task; the loop serves all four connections meanwhile.
    let start = Instant::now();
    let clients: Vec<_> = (1..=4)
        .map(|k| tokio::spawn(remote_sort(service.addr, k, 10_000)))
        .collect();
    let mut results = Vec::new();
    for client in clients {
        results.push(client.await??);
    }
    let four = start.elapsed().as_secs_f64();
    for (k, sorted) in (1..).zip(&results) {
        println!("client {k}: {}", show(sorted));
    }
    println!(
        "4 clients at once: {four:.3} s = {:.2}× one client, on {} cores (Python: 18.65 s, 2.06×)",
        four / one,
        std::thread::available_parallelism()?
    );
    // [end]
    assert!(sorted.is_sorted() && sorted.len() == 10_000);
    assert!(results.iter().all(|r| r.is_sorted() && r.len() == 10_000));
    let mut expected = random_list(3, 10_000, 10_000);
    expected.sort();
    assert_eq!(results[2], expected);

    // [cell C16-processes]
    let start = Instant::now();
    let sorted = remote_sort(processes.addr, 1, 10_000).await?;
    let in_process = start.elapsed().as_secs_f64();
    println!("{}", show(&sorted));
    println!("1 client, sorted in a worker process: {in_process:.3} s (threads: {one:.3} s)");
    // [end]
    assert!(sorted.is_sorted());

    // [cell X8]
    // A deadline: 30,000 numbers take gnome sort about 9× as long as 10,000.
    let start = Instant::now();
    match tokio::time::timeout(
        Duration::from_millis(100),
        remote_sort(service.addr, 5, 30_000),
    )
    .await
    {
        Ok(sorted) => println!("sorted {} numbers in time", sorted?.len()),
        Err(elapsed) => println!(
            "gave up after {:.3} s: {elapsed}",
            start.elapsed().as_secs_f64()
        ),
    }

    // select!: ask both services, take the first answer, drop (cancel) the other request.
    let start = Instant::now();
    tokio::select! {
        sorted = remote_sort(service.addr, 6, 10_000) => {
            println!("threads answered first: {}", show(&sorted?));
        }
        sorted = remote_sort(processes.addr, 6, 10_000) => {
            println!("processes answered first: {}", show(&sorted?));
        }
    }
    println!("first answer after {:.3} s", start.elapsed().as_secs_f64());
    // [end]

    // [cell stop]
    tokio::time::sleep(Duration::from_millis(800)).await; // let the abandoned sorts finish
    let served = service.stop().await;
    let served_by_processes = processes.stop().await;
    println!("Sort Services stopped after {served} and {served_by_processes} connections");
    // [end]
    assert_eq!(served, 1 + 4 + 1 + 1);
    assert_eq!(served_by_processes, 1 + 1);
    Ok(())
}
