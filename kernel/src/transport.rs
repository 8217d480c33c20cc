//! The only code that touches ZeroMQ: binds the five kernel sockets of a connection file and
//! gives each its own thread. It moves frames and knows nothing of what they mean.
//!
//! - shell, control, stdin (ROUTER): incoming multiparts go to a caller-supplied [`Inbox`]
//!   (called on the socket's thread); replies are queued on the socket's [`Outbox`].
//! - iopub (PUB): one owner thread fed by its [`Outbox`], so messages from the shell and control
//!   threads reach clients in the order they were queued.
//! - heartbeat (REP): echoes every message on its own thread, never waiting for anything else.
//!
//! No socket is shared or locked: a ZeroMQ socket is not thread-safe, so each lives and dies on
//! its thread. A thread waits on its socket *and* on a wake-up pipe at once (`zmq_poll` accepts
//! plain file descriptors), so a queued reply goes out immediately instead of at the next
//! polling tick. Spec: "Introduction" (sockets) and "Heartbeat for kernels".

use crate::wire::{ConnectionInfo, Frames, TransportKind};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::thread::JoinHandle;

/// Receives every multipart message that arrives on a ROUTER socket, on that socket's thread.
/// It should hand the frames on (to a channel) and return quickly.
pub type Inbox = Box<dyn FnMut(Frames) + Send>;

/// Where the frames arriving on each ROUTER socket go.
pub struct Inboxes {
    pub shell: Inbox,
    pub control: Inbox,
    pub stdin: Inbox,
}

enum Command {
    Send(Frames),
    Stop,
}

/// The sending side of one socket. Cheap to clone; any thread may send.
#[derive(Clone)]
pub struct Outbox {
    tx: Sender<Command>,
    // Written after every command so the socket thread wakes from `zmq_poll`; `None` for iopub,
    // whose thread only ever waits on the channel.
    wake: Option<Arc<UnixStream>>,
}

impl Outbox {
    /// Queues `frames` for sending. Returns `false` when the socket thread has stopped.
    pub fn send(&self, frames: Frames) -> bool {
        self.command(Command::Send(frames))
    }

    fn command(&self, command: Command) -> bool {
        if self.tx.send(command).is_err() {
            return false;
        }
        if let Some(wake) = &self.wake {
            // Nonblocking: if the pipe is full a wake-up is already pending, which is enough
            // (the thread drains the whole channel on each wake-up).
            let _ = (&**wake).write(&[1]);
        }
        true
    }
}

/// Listening TCP sockets already bound to a connection file's ports. `kettle kernel` binds them
/// first thing (see `cli.rs`), before it knows whether it serves the kernel itself or hands it
/// to a spare (see [`crate::spare`], which passes them on); ZeroMQ then takes them over
/// (`ZMQ_USE_FD`) instead of binding again. Without them, a client that connects before the
/// kernel's sockets exist (a spare's hand-over takes ~15 ms) is refused, and ZeroMQ retries
/// only after its 100 ms reconnect interval. Each socket takes the listener bound to its own
/// port, so neither side depends on an order.
#[derive(Default)]
pub struct Listeners(Vec<std::net::TcpListener>);

impl Listeners {
    /// Binds the ports of `info`, or `None` if it is not TCP on an IP address or a port cannot
    /// be bound (then the kernel binds them itself and reports what went wrong).
    pub fn bind(info: &ConnectionInfo) -> Option<Listeners> {
        if info.transport != TransportKind::Tcp {
            return None;
        }
        let ip: std::net::IpAddr = info.ip.parse().ok()?;
        let ports = [
            info.shell_port,
            info.control_port,
            info.stdin_port,
            info.iopub_port,
            info.hb_port,
        ];
        let mut listeners = Vec::new();
        for port in ports {
            if port == 0 {
                return None;
            }
            listeners.push(std::net::TcpListener::bind((ip, port)).ok()?);
        }
        Some(Listeners(listeners))
    }

    /// Listeners received from a launcher: all five listening TCP sockets, or none.
    pub fn from_fds(fds: Vec<OwnedFd>) -> Result<Listeners, String> {
        if !matches!(fds.len(), 0 | 5) {
            return Err(format!("{} listening sockets instead of 5", fds.len()));
        }
        let listeners: Vec<std::net::TcpListener> = fds.into_iter().map(Into::into).collect();
        if let Some(error) = listeners.iter().find_map(|l| l.local_addr().err()) {
            return Err(format!("not a listening TCP socket: {error}"));
        }
        Ok(Listeners(listeners))
    }

    /// The descriptors, to pass on.
    pub fn raw_fds(&self) -> Vec<RawFd> {
        self.0.iter().map(AsRawFd::as_raw_fd).collect()
    }

    /// Takes the listener bound to `port`, if there is one.
    fn take(&mut self, port: u16) -> Option<std::net::TcpListener> {
        let found = self
            .0
            .iter()
            .position(|l| l.local_addr().is_ok_and(|a| a.port() == port))?;
        Some(self.0.swap_remove(found))
    }
}

/// The five bound sockets and their threads.
pub struct Transport {
    pub shell: Outbox,
    pub control: Outbox,
    pub stdin: Outbox,
    pub iopub: Outbox,
    heartbeat: Outbox,
    threads: Vec<JoinHandle<()>>,
}

/// Makes `socket`'s next bind use `listener`, already bound and listening, instead of a new one.
/// ZeroMQ owns the descriptor from then on and closes it with the socket.
fn use_listener(socket: &mut zmq::Socket, listener: std::net::TcpListener) -> anyhow::Result<()> {
    let fd: libc::c_int = listener.into_raw_fd();
    // SAFETY: the socket pointer is live for the call, and the option value is one c_int read
    // from `fd` (ZMQ_USE_FD's documented type and size).
    let rc = unsafe {
        zmq_sys::zmq_setsockopt(
            socket.as_mut_ptr(),
            zmq_sys::ZMQ_USE_FD as libc::c_int,
            (&fd as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>(),
        )
    };
    if rc != 0 {
        let error = std::io::Error::last_os_error();
        // SAFETY: ZeroMQ did not take the descriptor; it is still ours to close.
        drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) });
        anyhow::bail!("cannot use the listening socket bound earlier: {error}");
    }
    Ok(())
}

/// How long unsent messages may delay closing a socket at shutdown (the `shutdown_reply` must
/// get out; a vanished client must not keep us alive).
const LINGER_MS: i32 = 1000;

impl Transport {
    /// Binds all sockets of `info` and starts their threads. Binding happens before this
    /// returns, so a port in use is reported here. `listeners` bound to these ports earlier
    /// are used instead of binding anew.
    pub fn bind(
        info: &ConnectionInfo,
        inboxes: Inboxes,
        mut listeners: Listeners,
    ) -> anyhow::Result<Transport> {
        let context = zmq::Context::new();
        let mut socket = |kind: zmq::SocketType, port: u16| -> anyhow::Result<zmq::Socket> {
            let mut socket = context.socket(kind)?;
            socket.set_linger(LINGER_MS)?;
            if info.is_ipv6() {
                socket.set_ipv6(true)?;
            }
            if info.transport == TransportKind::Tcp
                && let Some(listener) = listeners.take(port)
            {
                use_listener(&mut socket, listener)?;
            }
            let endpoint = info.endpoint(port);
            socket
                .bind(&endpoint)
                .map_err(|e| anyhow::anyhow!("cannot bind {endpoint}: {e}"))?;
            Ok(socket)
        };
        let shell = socket(zmq::ROUTER, info.shell_port)?;
        let control = socket(zmq::ROUTER, info.control_port)?;
        let stdin = socket(zmq::ROUTER, info.stdin_port)?;
        let iopub = socket(zmq::PUB, info.iopub_port)?;
        let heartbeat = socket(zmq::REP, info.hb_port)?;

        let mut threads = Vec::new();
        let Inboxes {
            shell: shell_in,
            control: control_in,
            stdin: stdin_in,
        } = inboxes;
        let shell = spawn_polled("kettle-shell", shell, Role::Router(shell_in), &mut threads)?;
        let control = spawn_polled(
            "kettle-control",
            control,
            Role::Router(control_in),
            &mut threads,
        )?;
        let stdin = spawn_polled("kettle-stdin", stdin, Role::Router(stdin_in), &mut threads)?;
        let heartbeat = spawn_polled("kettle-heartbeat", heartbeat, Role::Echo, &mut threads)?;

        let (tx, rx) = mpsc::channel();
        threads.push(
            std::thread::Builder::new()
                .name("kettle-iopub".into())
                .spawn(move || iopub_loop(iopub, rx))?,
        );
        let iopub = Outbox { tx, wake: None };

        Ok(Transport {
            shell,
            control,
            stdin,
            iopub,
            heartbeat,
            threads,
        })
    }

    /// Sends what is still queued, closes every socket and joins the threads.
    pub fn shutdown(self) {
        for outbox in [
            &self.shell,
            &self.control,
            &self.stdin,
            &self.iopub,
            &self.heartbeat,
        ] {
            outbox.command(Command::Stop);
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

enum Role {
    /// ROUTER: hand incoming messages to the inbox, send queued replies.
    Router(Inbox),
    /// REP: echo every message back (heartbeat).
    Echo,
}

fn spawn_polled(
    name: &str,
    socket: zmq::Socket,
    role: Role,
    threads: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<Outbox> {
    let (wake_tx, wake_rx) = UnixStream::pair()?;
    wake_tx.set_nonblocking(true)?;
    wake_rx.set_nonblocking(true)?;
    let (tx, rx) = mpsc::channel();
    let thread_name = name.to_string();
    threads.push(
        std::thread::Builder::new()
            .name(thread_name.clone())
            .spawn(move || polled_loop(&thread_name, socket, role, rx, wake_rx))?,
    );
    Ok(Outbox {
        tx,
        wake: Some(Arc::new(wake_tx)),
    })
}

fn polled_loop(
    name: &str,
    socket: zmq::Socket,
    mut role: Role,
    commands: Receiver<Command>,
    mut wake: UnixStream,
) {
    loop {
        let mut items = [
            socket.as_poll_item(zmq::POLLIN),
            zmq::PollItem::from_fd(wake.as_raw_fd(), zmq::POLLIN),
        ];
        match zmq::poll(&mut items, -1) {
            Ok(_) => {}
            Err(zmq::Error::EINTR) => continue,
            Err(e) => {
                eprintln!("kettle: {name}: poll failed, socket closed: {e}");
                return;
            }
        }
        let (incoming, woken) = (items[0].is_readable(), items[1].is_readable());

        if woken {
            // Empty the pipe first, then the channel: every command queued before a byte we
            // consumed is in the channel already (senders queue, then write).
            let mut buf = [0u8; 256];
            while matches!(wake.read(&mut buf), Ok(n) if n > 0) {}
            loop {
                match commands.try_recv() {
                    Ok(Command::Send(frames)) => {
                        if let Err(e) = socket.send_multipart(frames, 0) {
                            eprintln!("kettle: {name}: send failed: {e}");
                        }
                    }
                    Ok(Command::Stop) | Err(TryRecvError::Disconnected) => return,
                    Err(TryRecvError::Empty) => break,
                }
            }
        }

        if incoming {
            loop {
                match socket.recv_multipart(zmq::DONTWAIT) {
                    Ok(frames) => match &mut role {
                        Role::Router(inbox) => inbox(frames),
                        Role::Echo => {
                            if let Err(e) = socket.send_multipart(frames, 0) {
                                eprintln!("kettle: {name}: echo failed: {e}");
                            }
                        }
                    },
                    Err(zmq::Error::EAGAIN) => break,
                    Err(zmq::Error::EINTR) => continue,
                    Err(e) => {
                        eprintln!("kettle: {name}: receive failed: {e}");
                        break;
                    }
                }
            }
        }
    }
}

fn iopub_loop(socket: zmq::Socket, commands: Receiver<Command>) {
    // Ends on Stop or when every Outbox clone is gone.
    while let Ok(Command::Send(frames)) = commands.recv() {
        if let Err(e) = socket.send_multipart(frames, 0) {
            eprintln!("kettle: iopub: send failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::TransportKind;
    use std::time::Duration;

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn five_free_ports() -> [u16; 5] {
        [
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        ]
    }

    fn info(transport: TransportKind, ip: String, ports: [u16; 5]) -> ConnectionInfo {
        ConnectionInfo {
            transport,
            ip,
            shell_port: ports[0],
            iopub_port: ports[1],
            stdin_port: ports[2],
            control_port: ports[3],
            hb_port: ports[4],
            signature_scheme: "hmac-sha256".into(),
            key: String::new(),
            kernel_name: None,
        }
    }

    /// Binds (or takes over `listeners`), then checks heartbeat echo, ROUTER in/out and iopub
    /// delivery from a client.
    fn exercise(info: ConnectionInfo, listeners: Listeners) {
        let (shell_tx, shell_rx) = mpsc::channel::<Frames>();
        let inboxes = Inboxes {
            shell: Box::new(move |f| {
                let _ = shell_tx.send(f);
            }),
            control: Box::new(|_| {}),
            stdin: Box::new(|_| {}),
        };
        let transport = Transport::bind(&info, inboxes, listeners).unwrap();
        let ctx = zmq::Context::new();

        let hb = ctx.socket(zmq::REQ).unwrap();
        hb.set_rcvtimeo(5000).unwrap();
        hb.connect(&info.hb_endpoint()).unwrap();
        hb.send("ping", 0).unwrap();
        assert_eq!(hb.recv_bytes(0).unwrap(), b"ping");

        let dealer = ctx.socket(zmq::DEALER).unwrap();
        dealer.set_identity(b"client-1").unwrap();
        dealer.set_rcvtimeo(5000).unwrap();
        dealer.connect(&info.shell_endpoint()).unwrap();
        dealer.send_multipart([&b"hello"[..], b"world"], 0).unwrap();
        let got = shell_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(
            got,
            vec![b"client-1".to_vec(), b"hello".to_vec(), b"world".to_vec()]
        );
        // A reply queued from another thread goes back to that identity promptly.
        let outbox = transport.shell.clone();
        std::thread::spawn(move || outbox.send(vec![b"client-1".to_vec(), b"reply".to_vec()]))
            .join()
            .unwrap();
        assert_eq!(dealer.recv_multipart(0).unwrap(), vec![b"reply".to_vec()]);

        let sub = ctx.socket(zmq::SUB).unwrap();
        sub.set_subscribe(b"").unwrap();
        sub.set_rcvtimeo(200).unwrap();
        sub.connect(&info.iopub_endpoint()).unwrap();
        // PUB drops messages until the subscription has arrived: publish until one lands.
        let mut received = None;
        for _ in 0..50 {
            transport
                .iopub
                .send(vec![b"status".to_vec(), b"x".to_vec()]);
            if let Ok(frames) = sub.recv_multipart(0) {
                received = Some(frames);
                break;
            }
        }
        assert_eq!(received.unwrap(), vec![b"status".to_vec(), b"x".to_vec()]);

        transport.shutdown();
    }

    #[test]
    fn tcp_sockets_work() {
        let ports = five_free_ports();
        exercise(
            info(TransportKind::Tcp, "127.0.0.1".into(), ports),
            Listeners::default(),
        );
    }

    #[test]
    fn tcp_sockets_work_on_listeners_bound_before_the_kernel() {
        let ports = five_free_ports();
        let info = info(TransportKind::Tcp, "127.0.0.1".into(), ports);
        let mut listeners = Listeners::bind(&info).unwrap();
        assert_eq!(listeners.raw_fds().len(), 5);
        // Each socket finds the listener of its own port, in whatever order they came.
        listeners.0.reverse();
        // A client that connects before the kernel's sockets exist is not refused (ZeroMQ
        // would otherwise wait its reconnect interval before trying again).
        let early = std::net::TcpStream::connect(("127.0.0.1", ports[0]));
        assert!(early.is_ok(), "{early:?}");
        drop(early);
        exercise(info, listeners);
    }

    #[test]
    fn listeners_are_only_for_tcp_on_an_address() {
        let ports = five_free_ports();
        assert!(Listeners::bind(&info(TransportKind::Ipc, "/tmp/k".into(), ports)).is_none());
        assert!(Listeners::bind(&info(TransportKind::Tcp, "*".into(), ports)).is_none());
        assert!(Listeners::from_fds(Vec::new()).is_ok());
        let one = OwnedFd::from(std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        assert!(Listeners::from_fds(vec![one]).is_err());
        // Five descriptors that are not listening sockets: refused with the reason.
        let files: Vec<OwnedFd> = (0..5)
            .map(|_| OwnedFd::from(std::fs::File::open("/dev/null").unwrap()))
            .collect();
        let error = Listeners::from_fds(files).err().unwrap();
        assert!(error.contains("not a listening TCP socket"), "{error}");
    }

    #[test]
    fn ipc_sockets_work() {
        let dir = std::env::temp_dir().join(format!("kettle-ipc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ip = dir.join("kernel").to_string_lossy().into_owned();
        exercise(
            info(TransportKind::Ipc, ip, [1, 2, 3, 4, 5]),
            Listeners::default(),
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn port_in_use_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taken = listener.local_addr().unwrap().port();
        let ports = [taken, free_port(), free_port(), free_port(), free_port()];
        let inboxes = Inboxes {
            shell: Box::new(|_| {}),
            control: Box::new(|_| {}),
            stdin: Box::new(|_| {}),
        };
        let err = Transport::bind(
            &info(TransportKind::Tcp, "127.0.0.1".into(), ports),
            inboxes,
            Listeners::default(),
        );
        assert!(err.is_err());
        drop(listener);
    }
}
