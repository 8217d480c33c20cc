//! The local weather server: an OpenWeatherMap-shaped HTTP/1.1 endpoint on 127.0.0.1 (C4–C5).
//!
//! Threads: one acceptor thread owns the listener and the list of live connections; each
//! connection gets its own thread (so a slow request never delays another, which is what makes
//! the threaded TempGetter fast). Stopping is one flag + condvar in [`Shared`]: the acceptor polls
//! it between non-blocking `accept`s, connection threads wait on it instead of sleeping for their
//! injected latency, and the acceptor shuts down live sockets so blocked reads return. Hence
//! dropping the server is bounded in time and releases the port before it returns.

use std::fmt;
use std::io::{self, Read};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::cities::{self, City};
use crate::http::{self, HeadError, RequestHead};
use crate::rng;

/// The path OpenWeatherMap serves current weather on (API 2.5, as in the book).
pub const WEATHER_PATH: &str = "/data/2.5/weather";

/// How often the acceptor looks for new connections and for the stop flag. Short enough that
/// it adds nothing visible to a 150 ms request, long enough to cost no measurable CPU.
const ACCEPT_POLL: Duration = Duration::from_millis(2);
/// A client that connects but sends no complete request within this time is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection thread waits for the client to close after the response; reading
/// what is left avoids a TCP reset that could destroy the response before the client reads it.
const LINGER: Duration = Duration::from_millis(500);
/// Upper bound on how long `drop` waits for the server's threads.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// A fixed observation time (2015-12-01T00:00Z, the book's year), so replies are reproducible.
const OBSERVED_AT: u64 = 1_448_928_000;

/// Configures and starts a [`WeatherServer`]; obtained from [`WeatherServer::builder`].
///
/// ```
/// use std::time::Duration;
/// let server = kettle_lab::WeatherServer::builder()
///     .latency(Duration::from_millis(20)..Duration::from_millis(30))
///     .seed(42)
///     .lifetime(Duration::from_secs(60))
///     .start()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct WeatherServerBuilder {
    latency: Range<Duration>,
    seed: u64,
    lifetime: Option<Duration>,
    max_connections: usize,
}

impl Default for WeatherServerBuilder {
    fn default() -> Self {
        WeatherServerBuilder {
            // The Python baseline measured the notebook's "0.19 s / 1.65 s" with ~170 ms.
            latency: Duration::from_millis(150)..Duration::from_millis(200),
            seed: 13, // the chapter's number; any value gives reproducible jitter
            lifetime: None,
            max_connections: 256,
        }
    }
}

impl WeatherServerBuilder {
    /// Each request waits a duration drawn uniformly from `range` before it is answered, like
    /// a round trip to a distant server. Use `d..d` for a fixed delay. Default: 150–200 ms.
    pub fn latency(mut self, range: Range<Duration>) -> Self {
        self.latency = range;
        self
    }

    /// Answers at once (no injected latency), e.g. for functional tests.
    pub fn no_latency(self) -> Self {
        self.latency(Duration::ZERO..Duration::ZERO)
    }

    /// Seeds the latency jitter: request *n* (in arrival order) waits the same time in every
    /// run with the same seed. Default: 13.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Stops the server by itself `lifetime` after it started, so a forgotten server in a
    /// notebook does not keep a thread and a port forever. Default: no limit (until dropped).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = Some(lifetime);
        self
    }

    /// At most this many connections are served at once; more get an immediate 503 instead of
    /// another thread (protects the notebook from a runaway loop). Default: 256.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Binds 127.0.0.1 on an ephemeral port and starts serving.
    ///
    /// Fails if the socket cannot be bound, a thread cannot be spawned, or the latency range
    /// is backwards (`InvalidInput`).
    pub fn start(self) -> io::Result<WeatherServer> {
        if self.latency.start > self.latency.end {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "latency range must have start <= end",
            ));
        }
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        // Non-blocking so the acceptor can notice the stop flag and the lifetime deadline.
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config: self,
            stopping: Mutex::new(false),
            wake: Condvar::new(),
            running: AtomicBool::new(true),
            served: AtomicU64::new(0),
            arrivals: AtomicU64::new(0),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("weather-server-{}", addr.port()))
                .spawn(move || accept_loop(listener, &shared))?
        };
        Ok(WeatherServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }
}

/// A local stand-in for the OpenWeatherMap current-weather API, serving real HTTP/1.1 on
/// 127.0.0.1 with injected latency. Stops (and frees its port) when dropped.
///
/// Routes: `GET /data/2.5/weather?q=<city>[,CA]&units=<metric|imperial|standard>&appid=<key>`.
/// Any non-empty `appid` is accepted; without one the reply is 401. Units default to Kelvin, as
/// in the real API. Unknown cities or countries give 404, malformed requests 400, other methods
/// 405. Every reply is JSON and closes the connection.
///
/// ```
/// let server = kettle_lab::WeatherServer::start()?;
/// let t = kettle_lab::get_temperature(&server.url(), "Edmonton")?;
/// println!("it is {t:.0}°C in Edmonton");
/// assert_eq!(server.requests_served(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WeatherServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl WeatherServer {
    /// Starts a server with the defaults (150–200 ms latency, seed 13, no lifetime limit).
    pub fn start() -> io::Result<WeatherServer> {
        Self::builder().start()
    }

    /// A builder to set latency, seed, lifetime and connection limit before starting.
    pub fn builder() -> WeatherServerBuilder {
        WeatherServerBuilder::default()
    }

    /// The socket address the server listens on (127.0.0.1 and an ephemeral port).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, e.g. `http://127.0.0.1:40213`, to pass to
    /// [`get_temperature`](crate::get_temperature).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The full URL of the current weather of `city` in °C, as the book's TempGetter builds it.
    pub fn weather_url(&self, city: &str) -> String {
        crate::client::weather_url(&self.url(), city)
    }

    /// How many HTTP responses (of any status) the server has completely sent so far.
    pub fn requests_served(&self) -> u64 {
        self.shared.served.load(Ordering::SeqCst)
    }

    /// `false` once the server stopped accepting, e.g. because its lifetime ran out.
    pub fn is_running(&self) -> bool {
        self.shared.running.load(Ordering::SeqCst)
    }

    /// Stops the server and waits (bounded) for its threads; the same as dropping it, spelled
    /// out for notebooks that want to show the moment the server goes away.
    pub fn shutdown(self) {}
}

impl fmt::Debug for WeatherServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeatherServer")
            .field("url", &self.url())
            .field("running", &self.is_running())
            .field("requests_served", &self.requests_served())
            .finish()
    }
}

impl Drop for WeatherServer {
    fn drop(&mut self) {
        self.shared.request_stop();
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        // `JoinHandle` has no timed join; poll so a wedged connection can never hang the
        // notebook cell that drops the server. Normally this returns within a few ms.
        let deadline = Instant::now() + SHUTDOWN_GRACE;
        while !acceptor.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        if acceptor.is_finished() {
            let _ = acceptor.join();
        }
    }
}

/// State shared by the handle, the acceptor and the connection threads.
struct Shared {
    config: WeatherServerBuilder,
    /// Set once; `wake` is notified so sleepers return at once.
    stopping: Mutex<bool>,
    wake: Condvar,
    running: AtomicBool,
    served: AtomicU64,
    /// Arrival counter: the index that keys each request's latency jitter.
    arrivals: AtomicU64,
}

impl Shared {
    fn request_stop(&self) {
        *self.stopping.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.wake.notify_all();
    }

    /// Waits up to `d`; returns `false` (early) if the server is stopping.
    fn wait_unless_stopping(&self, d: Duration) -> bool {
        let guard = self.stopping.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, d, |stopping| !*stopping)
            .unwrap_or_else(|p| p.into_inner());
        !*guard
    }

    fn is_stopping(&self) -> bool {
        *self.stopping.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This request's injected latency: seeded, uniform in the configured range.
    fn next_latency(&self) -> Duration {
        let index = self.arrivals.fetch_add(1, Ordering::SeqCst);
        let Range { start, end } = self.config.latency;
        start + (end - start).mul_f64(rng::unit(self.config.seed, index))
    }
}

/// A connection being served: its thread, and a clone of its socket to unblock it on stop.
struct Connection {
    thread: JoinHandle<()>,
    socket: TcpStream,
}

fn accept_loop(listener: TcpListener, shared: &Arc<Shared>) {
    let deadline = shared.config.lifetime.map(|d| Instant::now() + d);
    let mut live: Vec<Connection> = Vec::new();
    while !shared.is_stopping() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            shared.request_stop();
            break;
        }
        live.retain(|c| !c.thread.is_finished());
        match listener.accept() {
            Ok((stream, _peer)) => admit(stream, shared, &mut live),
            // Nothing pending (or a transient error such as EMFILE or an aborted handshake):
            // wait a little, but wake at once when asked to stop.
            Err(_) => {
                shared.wait_unless_stopping(ACCEPT_POLL);
            }
        }
    }
    // Release the port first, so that once `drop` returns nobody can connect any more.
    drop(listener);
    shared.running.store(false, Ordering::SeqCst);
    for c in &live {
        let _ = c.socket.shutdown(Shutdown::Both);
    }
    for c in live {
        let _ = c.thread.join();
    }
}

/// Hands a new connection to its own thread, or answers 503 right here when over the limit.
fn admit(stream: TcpStream, shared: &Arc<Shared>, live: &mut Vec<Connection>) {
    // Accepted sockets must block: each has its own thread and its own timeouts.
    let _ = stream.set_nonblocking(false);
    let over_limit = live.len() >= shared.config.max_connections;
    let socket = match stream.try_clone() {
        Ok(s) if !over_limit => s,
        _ => return refuse(stream, shared),
    };
    let worker = {
        let shared = Arc::clone(shared);
        thread::Builder::new()
            .name("weather-connection".into())
            .spawn(move || serve(socket, &shared))
    };
    match worker {
        Ok(thread) => live.push(Connection {
            thread,
            socket: stream,
        }),
        Err(_) => refuse(stream, shared),
    }
}

/// Answers 503 on the acceptor thread (no new thread when over the limit). The request is read
/// first, briefly, because closing with unread input would reset the connection and the client
/// would see "connection reset" instead of the 503. The short timeouts bound the stall of the
/// acceptor, which under overload is a welcome brake anyway.
fn refuse(mut stream: TcpStream, shared: &Shared) {
    let brief = Duration::from_millis(50);
    let _ = stream.set_read_timeout(Some(brief));
    let _ = stream.set_write_timeout(Some(brief * 4));
    let _ = http::read_head(&mut stream);
    let body = error_body(503, "too many connections, try again");
    if http::write_json_response(&mut stream, 503, &body).is_ok() {
        shared.served.fetch_add(1, Ordering::SeqCst);
    }
    linger(stream, brief);
}

/// Serves one request on one connection, then closes it. Never panics on client input.
fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let (status, body) = match http::read_head(&mut stream) {
        Err(HeadError::Closed) | Err(HeadError::Io) => return,
        Err(HeadError::Malformed(why)) => (400, error_body(400, why)),
        Err(HeadError::TooLarge) => (431, error_body(431, "request head too large")),
        Ok(head) => {
            if !shared.wait_unless_stopping(shared.next_latency()) {
                (503, error_body(503, "server is shutting down"))
            } else {
                route(&head)
            }
        }
    };
    if http::write_json_response(&mut stream, status, &body).is_ok() {
        shared.served.fetch_add(1, Ordering::SeqCst);
    }
    linger(stream, LINGER);
}

/// Half-closes and reads whatever the client still sends until it closes; closing a socket
/// with unread input makes the kernel send RST, which can discard our response in flight.
fn linger(mut stream: TcpStream, timeout: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(timeout));
    let mut sink = [0u8; 1024];
    let mut total = 0;
    while let Ok(n) = stream.read(&mut sink) {
        total += n;
        if n == 0 || total > 64 * 1024 {
            break;
        }
    }
}

/// Maps a well-formed request to a status and JSON body.
fn route(head: &RequestHead) -> (u16, String) {
    if head.method != "GET" {
        return (405, error_body(405, "only GET is supported"));
    }
    let (path, query) = match http::split_target(&head.target) {
        Ok(parts) => parts,
        Err(why) => return (400, error_body(400, why)),
    };
    if path != WEATHER_PATH {
        let hint =
            format!("unknown path; try {WEATHER_PATH}?q=Edmonton,CA&units=metric&appid=demo");
        return (404, error_body(404, &hint));
    }
    let param = |name: &str| {
        query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    // Checked before anything else, as the real API does: no key, no weather.
    if param("appid").is_none_or(|k| k.trim().is_empty()) {
        let why = "Invalid API key: add &appid=<any text> (this offline server accepts every key)";
        return (401, error_body(401, why));
    }
    let Some(q) = param("q").filter(|q| !q.trim().is_empty()) else {
        return (400, error_body(400, "Nothing to geocode: add q=<city>,CA"));
    };
    let units = match param("units") {
        None | Some("standard") => Units::Kelvin,
        Some("metric") => Units::Celsius,
        Some("imperial") => Units::Fahrenheit,
        Some(_) => {
            return (
                400,
                error_body(400, "units must be metric, imperial or standard"),
            );
        }
    };
    // `q` is "city", "city,country" or "city,state,country"; only Canada is in the table.
    let mut parts = q.split(',');
    let city = parts.next().unwrap_or("");
    let country_ok = parts
        .next_back()
        .is_none_or(|c| c.trim().eq_ignore_ascii_case("CA"));
    match cities::find(city) {
        Some(c) if country_ok => (200, weather_body(c, units)),
        _ => (404, error_body(404, "city not found")),
    }
}

#[derive(Clone, Copy)]
enum Units {
    Kelvin,
    Celsius,
    Fahrenheit,
}

impl Units {
    fn temp(self, celsius: f64) -> f64 {
        match self {
            Units::Kelvin => celsius + 273.15,
            Units::Celsius => celsius,
            Units::Fahrenheit => celsius * 9.0 / 5.0 + 32.0,
        }
    }

    /// Wind speed: m/s except in imperial units (mph), as documented by OpenWeatherMap.
    fn speed(self, metres_per_second: f64) -> f64 {
        match self {
            Units::Fahrenheit => metres_per_second * 2.236_94,
            _ => metres_per_second,
        }
    }
}

/// Formats a number with at most two decimals, as the real API does.
fn num(x: f64) -> String {
    format!("{}", (x * 100.0).round() / 100.0)
}

/// An OpenWeatherMap-shaped success body. `cod` is a number here and a string in errors, as in
/// the real API's replies.
fn weather_body(c: &City, units: Units) -> String {
    let (sky_id, sky_main, sky_description, icon) = c.sky;
    // A crude wind chill keeps "feels_like" plausible without another table column.
    let feels_like = c.temp_c - 0.7 * c.wind_speed;
    let clouds = match sky_main {
        "Clear" => 0,
        "Clouds" => 75,
        _ => 90,
    };
    format!(
        concat!(
            "{{\"coord\":{{\"lon\":{lon},\"lat\":{lat}}},",
            "\"weather\":[{{\"id\":{sky_id},\"main\":\"{sky_main}\",\"description\":\"{sky_description}\",\"icon\":\"{icon}\"}}],",
            "\"base\":\"stations\",",
            "\"main\":{{\"temp\":{temp},\"feels_like\":{feels},\"temp_min\":{tmin},\"temp_max\":{tmax},",
            "\"pressure\":{pressure},\"humidity\":{humidity}}},",
            "\"visibility\":10000,\"wind\":{{\"speed\":{speed},\"deg\":{deg}}},\"clouds\":{{\"all\":{clouds}}},",
            "\"dt\":{dt},\"sys\":{{\"country\":\"CA\"}},\"timezone\":{tz},\"id\":{id},\"name\":\"{name}\",\"cod\":200}}"
        ),
        lon = num(c.lon),
        lat = num(c.lat),
        sky_id = sky_id,
        sky_main = sky_main,
        sky_description = sky_description,
        icon = icon,
        temp = num(units.temp(c.temp_c)),
        feels = num(units.temp(feels_like)),
        tmin = num(units.temp(c.temp_c - 1.0)),
        tmax = num(units.temp(c.temp_c + 1.0)),
        pressure = c.pressure,
        humidity = c.humidity,
        speed = num(units.speed(c.wind_speed)),
        deg = c.wind_deg,
        clouds = clouds,
        dt = OBSERVED_AT,
        tz = c.timezone,
        id = c.id,
        name = http::json_escape(c.name),
    )
}

fn error_body(status: u16, message: &str) -> String {
    format!(
        "{{\"cod\":\"{status}\",\"message\":\"{}\"}}",
        http::json_escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(target: &str) -> (u16, String) {
        route(&RequestHead {
            method: "GET".into(),
            target: target.into(),
        })
    }

    #[test]
    fn routes_like_the_real_api() {
        let (status, body) = get("/data/2.5/weather?q=Edmonton,CA&units=metric&appid=k");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"main\":{\"temp\":3.2,"), "{body}");
        assert!(body.contains("\"name\":\"Edmonton\""), "{body}");
        assert!(body.ends_with("\"cod\":200}"), "{body}");
        assert_eq!(get("/data/2.5/weather?q=Edmonton,CA&units=metric").0, 401);
        assert_eq!(get("/data/2.5/weather?q=Edmonton,CA&appid=").0, 401);
        assert_eq!(get("/data/2.5/weather?q=Atlantis,CA&appid=k").0, 404);
        assert_eq!(get("/data/2.5/weather?q=Edmonton,US&appid=k").0, 404);
        assert_eq!(get("/data/2.5/weather?appid=k").0, 400);
        assert_eq!(
            get("/data/2.5/weather?q=Edmonton&units=furlongs&appid=k").0,
            400
        );
        assert_eq!(get("/data/2.5/weather?q=%zz&appid=k").0, 400);
        assert_eq!(get("/other").0, 404);
        let post = route(&RequestHead {
            method: "POST".into(),
            target: WEATHER_PATH.into(),
        });
        assert_eq!(post.0, 405);
    }

    #[test]
    fn converts_units() {
        let kelvin = get("/data/2.5/weather?q=edmonton&appid=k").1;
        assert!(kelvin.contains("\"temp\":276.35,"), "{kelvin}");
        let fahrenheit = get("/data/2.5/weather?q=Edmonton,CA&units=imperial&appid=k").1;
        assert!(fahrenheit.contains("\"temp\":37.76,"), "{fahrenheit}");
        let johns = get("/data/2.5/weather?q=St.%20John%27s,CA&units=metric&appid=k").1;
        assert!(johns.contains("\"name\":\"St. John's\""), "{johns}");
    }
}
