//! One ordered channel for what a cell writes to stdout, stderr and `kettle-display`.
//!
//! The child runtime's fds 1 and 2 and the display fd are separate sockets, read by separate
//! threads in the kernel: a thread that prints to stdout, then to stderr, then shows a display
//! could appear in any order. The order of writes is only known inside the child, at the moment
//! of each `write`. So the kettle executable exports its own `write` and `writev` (see
//! `main.rs` and `build.rs`): the dynamic linker binds the cell libraries the child loads, whose
//! std calls libc's `write`, to these. In the child, once [`activate`] ran, a write to one of the
//! three sockets becomes packets on one `SOCK_SEQPACKET` connection, each tagged with its stream,
//! and the kernel reads them in the order they were written. Every other write, and every write
//! in the kernel process, goes straight to the system call.
//!
//! Writes that bypass these symbols (C code inside libc, child processes that inherit fd 1)
//! still reach the kernel through the fd sockets, in order among themselves.
//!
//! Packet format: one header byte, then up to [`MAX_PAYLOAD`] bytes. The header is a [`Tag`],
//! with [`MORE`] set when the same `write` continues in the next packet (the kernel's parser
//! treats the end of a write differently, see `link`). A packet is delivered whole, so writers
//! on different threads never interleave inside one.

use libc::{c_int, c_void, iovec, size_t, ssize_t};
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

/// File name of the channel's listening socket, next to the runtime socket.
pub(super) const SOCKET_NAME: &str = "channel.sock";
/// Payload bytes per packet: far below the default socket buffer (~200 KiB; a packet must fit
/// in it), and large enough that a long line is a handful of packets.
pub(super) const MAX_PAYLOAD: usize = 32 * 1024;

/// Header bit: this packet is not the last of its `write`.
const MORE: u8 = 0x80;

/// What a packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Tag {
    Stdout = b'o',
    Stderr = b'e',
    /// `kettle-display` JSON lines.
    Display = b'd',
    /// The end-of-cell sentinel line (written by the runtime after each cell).
    Sentinel = b's',
    /// The first packet: `<token> channel`.
    Hello = b'h',
}

impl Tag {
    pub(super) fn from_byte(byte: u8) -> Option<Tag> {
        [
            Tag::Stdout,
            Tag::Stderr,
            Tag::Display,
            Tag::Sentinel,
            Tag::Hello,
        ]
        .into_iter()
        .find(|tag| *tag as u8 == byte)
    }
}

/// The channel's fd in the child, -1 until [`activate`] (and always in the kernel).
static CHANNEL: AtomicI32 = AtomicI32::new(-1);

/// A descriptor whose writes go through the channel while it still is the same open file:
/// user code may `dup2` something else onto fd 1, and then writes must go there.
struct Route {
    fd: AtomicI32,
    dev: AtomicU64,
    ino: AtomicU64,
}

impl Route {
    const fn unset() -> Route {
        Route {
            fd: AtomicI32::new(-1),
            dev: AtomicU64::new(0),
            ino: AtomicU64::new(0),
        }
    }
}

static ROUTES: [Route; 3] = [Route::unset(), Route::unset(), Route::unset()];
const ROUTE_TAGS: [Tag; 3] = [Tag::Stdout, Tag::Stderr, Tag::Display];

/// (device, inode) of what `fd` refers to.
fn identity(fd: RawFd) -> Option<(u64, u64)> {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten; fstat writes only into it.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable `stat`.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return None;
    }
    Some((st.st_dev, st.st_ino))
}

/// The channel and the tag for a write to `fd`, if it goes through the channel.
fn route_of(fd: c_int) -> Option<(RawFd, Tag)> {
    let channel = CHANNEL.load(Ordering::Acquire);
    if channel < 0 {
        return None;
    }
    let index = ROUTES
        .iter()
        .position(|r| r.fd.load(Ordering::Relaxed) == fd)?;
    let route = &ROUTES[index];
    let still = identity(fd)?
        == (
            route.dev.load(Ordering::Relaxed),
            route.ino.load(Ordering::Relaxed),
        );
    still.then_some((channel, ROUTE_TAGS[index]))
}

/// Connects to the kernel's channel socket (next to `runtime_socket`) and presents `token`.
pub(super) fn connect(runtime_socket: &OsStr, token: &OsStr) -> std::io::Result<OwnedFd> {
    let path = Path::new(runtime_socket).with_file_name(SOCKET_NAME);
    let fd = seqpacket_socket()?;
    let (address, len) = socket_address(&path)?;
    // SAFETY: `address` is a valid sockaddr_un of `len` bytes.
    let rc = unsafe {
        libc::connect(
            fd.as_raw_fd(),
            (&address as *const libc::sockaddr_un).cast(),
            len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut hello = token.as_bytes().to_vec();
    hello.extend_from_slice(b" channel");
    send_packet(fd.as_raw_fd(), Tag::Hello, false, &hello)?;
    Ok(fd)
}

/// From now on, writes to `stdout`, `stderr` and `display` (the fds as they are now) go through
/// `channel`. Called once, by the child runtime, before any cell runs.
pub(super) fn activate(channel: OwnedFd, stdout: RawFd, stderr: RawFd, display: RawFd) {
    for (route, fd) in ROUTES.iter().zip([stdout, stderr, display]) {
        if let Some((dev, ino)) = identity(fd) {
            route.dev.store(dev, Ordering::Relaxed);
            route.ino.store(ino, Ordering::Relaxed);
            route.fd.store(fd, Ordering::Relaxed);
        }
    }
    // Leaked on purpose: the channel lives as long as the process.
    let fd = std::mem::ManuallyDrop::new(channel).as_raw_fd();
    CHANNEL.store(fd, Ordering::Release);
}

/// Sends the end-of-cell sentinel through the channel (no-op before [`activate`]).
pub(super) fn send_sentinel(line: &[u8]) -> std::io::Result<()> {
    let fd = CHANNEL.load(Ordering::Acquire);
    if fd < 0 {
        return Ok(());
    }
    send_packet(fd, Tag::Sentinel, false, line)
}

/// Writes all of `bytes` to `fd` with the system call itself, bypassing the channel: for the
/// runtime's own sentinels on the fd sockets.
pub(super) fn write_direct(fd: RawFd, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        // SAFETY: `bytes` is a live buffer of `bytes.len()` bytes.
        let n = unsafe { libc::syscall(libc::SYS_write, fd, bytes.as_ptr(), bytes.len()) };
        if n < 0 {
            let error = std::io::Error::last_os_error();
            if error.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        bytes = &bytes[n as usize..];
    }
    Ok(())
}

/// One packet: the header, then `payload` (at most [`MAX_PAYLOAD`] bytes).
fn send_packet(fd: RawFd, tag: Tag, more: bool, payload: &[u8]) -> std::io::Result<()> {
    let tag = [tag as u8 | if more { MORE } else { 0 }];
    let parts = [
        iovec {
            iov_base: tag.as_ptr() as *mut c_void,
            iov_len: 1,
        },
        iovec {
            iov_base: payload.as_ptr() as *mut c_void,
            iov_len: payload.len(),
        },
    ];
    // SAFETY: an all-zero msghdr is valid (no name, no control data); the iovecs point into
    // live buffers for the duration of the call.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = parts.as_ptr() as *mut iovec;
    message.msg_iovlen = parts.len();
    loop {
        // SAFETY: as above. MSG_NOSIGNAL: a vanished kernel is an error here, not a SIGPIPE.
        let sent = unsafe { libc::sendmsg(fd, &message, libc::MSG_NOSIGNAL) };
        if sent >= 0 {
            return Ok(());
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}

/// `write(2)` as the executable exports it (see the module docs).
///
/// # Safety
/// The contract of `write(2)`: `buf` points to `count` readable bytes.
pub unsafe fn write(fd: c_int, buf: *const c_void, count: size_t) -> ssize_t {
    // A null or oversized buffer is the system call's to reject (EFAULT, EINVAL).
    if let Some((channel, tag)) = route_of(fd)
        && count > 0
        && count <= isize::MAX as usize
        && !buf.is_null()
    {
        // SAFETY: the caller's contract.
        let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), count) };
        match send_all(channel, tag, bytes, true) {
            Ok(()) => return count as ssize_t,
            // Part of it went: a short write, as write(2) may make.
            Err(sent) if sent > 0 => return sent as ssize_t,
            // The kernel is gone: let the system say what happens to a write on the fd itself.
            Err(_) => {}
        }
    }
    // SAFETY: forwarded unchanged to the system call.
    unsafe { libc::syscall(libc::SYS_write, fd, buf, count) as ssize_t }
}

/// `writev(2)` as the executable exports it (see the module docs).
///
/// # Safety
/// The contract of `writev(2)`: `iov` points to `iovcnt` valid iovecs.
pub unsafe fn writev(fd: c_int, iov: *const iovec, iovcnt: c_int) -> ssize_t {
    if let Some((channel, tag)) = route_of(fd)
        && iovcnt > 0
        && iovcnt <= libc::UIO_MAXIOV
        && !iov.is_null()
    {
        // SAFETY: the caller's contract.
        let parts = unsafe { std::slice::from_raw_parts(iov, iovcnt as usize) };
        // Anything the system call would reject, it rejects (EFAULT, EINVAL).
        let valid = parts
            .iter()
            .all(|p| p.iov_len == 0 || (!p.iov_base.is_null() && p.iov_len <= isize::MAX as usize));
        let last = parts.iter().rposition(|p| p.iov_len > 0);
        let mut total = 0usize;
        for (i, part) in parts
            .iter()
            .enumerate()
            .filter(|(_, p)| valid && p.iov_len > 0)
        {
            // SAFETY: the caller's contract: each iovec describes readable memory.
            let bytes =
                unsafe { std::slice::from_raw_parts(part.iov_base.cast::<u8>(), part.iov_len) };
            // One write: only its last piece ends it.
            match send_all(channel, tag, bytes, Some(i) == last) {
                Ok(()) => total += bytes.len(),
                Err(sent) => {
                    total += sent;
                    break;
                }
            }
        }
        if total > 0 {
            return total as ssize_t; // all of it, or a short write as writev may make
        }
    }
    // SAFETY: forwarded unchanged to the system call.
    unsafe { libc::syscall(libc::SYS_writev, fd, iov, iovcnt) as ssize_t }
}

/// `bytes` as packets, all but the last marked [`MORE`] (the last too unless `ends_write`).
/// On failure, how many bytes went.
fn send_all(fd: RawFd, tag: Tag, bytes: &[u8], ends_write: bool) -> Result<(), usize> {
    let chunks = bytes.len().div_ceil(MAX_PAYLOAD);
    for (i, chunk) in bytes.chunks(MAX_PAYLOAD).enumerate() {
        let more = i + 1 < chunks || !ends_write;
        if send_packet(fd, tag, more, chunk).is_err() {
            return Err(i * MAX_PAYLOAD);
        }
    }
    Ok(())
}

fn seqpacket_socket() -> std::io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments; the result is checked before it is owned.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn socket_address(path: &Path) -> std::io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut address: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    address.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= address.sun_path.len() {
        return Err(std::io::Error::other(format!(
            "socket path too long: {}",
            path.display()
        )));
    }
    for (slot, byte) in address.sun_path.iter_mut().zip(bytes) {
        *slot = *byte as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((address, len as libc::socklen_t))
}

/// The kernel's listening end: a `SOCK_SEQPACKET` socket at `path`.
pub(super) struct Listener(OwnedFd);

impl Listener {
    pub(super) fn bind(path: &Path) -> std::io::Result<Listener> {
        let fd = seqpacket_socket()?;
        let (address, len) = socket_address(path)?;
        // SAFETY: `address` is a valid sockaddr_un of `len` bytes.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&address as *const libc::sockaddr_un).cast(),
                len,
            )
        };
        // SAFETY: listen on a bound socket we own.
        if rc != 0 || unsafe { libc::listen(fd.as_raw_fd(), 8) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Listener(fd))
    }

    /// The next connection (blocks).
    pub(super) fn accept(&self) -> std::io::Result<Connection> {
        loop {
            // SAFETY: accept4 on our listening socket, without the peer address.
            let fd = unsafe {
                libc::accept4(
                    self.0.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC,
                )
            };
            if fd >= 0 {
                // SAFETY: a fresh descriptor nothing else owns.
                return Ok(Connection(unsafe { OwnedFd::from_raw_fd(fd) }));
            }
            let error = std::io::Error::last_os_error();
            if error.kind() != std::io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }
}

/// One child's channel, kernel side.
pub(super) struct Connection(OwnedFd);

impl Connection {
    /// The next packet's tag, whether its write continues in the next packet, and its payload
    /// (in `buf`); `None` at end of stream. A packet with an unknown tag is skipped.
    pub(super) fn receive<'b>(
        &self,
        buf: &'b mut Vec<u8>,
    ) -> std::io::Result<Option<(Tag, bool, &'b [u8])>> {
        buf.resize(MAX_PAYLOAD + 1, 0);
        loop {
            // SAFETY: `buf` has `buf.len()` writable bytes.
            let n =
                unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let error = std::io::Error::last_os_error();
                if error.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(error);
            }
            if n == 0 {
                return Ok(None);
            }
            let n = n as usize;
            if let Some(tag) = Tag::from_byte(buf[0] & !MORE) {
                return Ok(Some((tag, buf[0] & MORE != 0, &buf[1..n])));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_arrive_whole_and_in_order_with_their_tags() {
        let dir = std::env::temp_dir().join(format!("kettle-channel-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let runtime = dir.join("runtime.sock");
        let listener = Listener::bind(&dir.join(SOCKET_NAME)).unwrap();
        let client = connect(runtime.as_os_str(), OsStr::new("secret")).unwrap();
        let server = listener.accept().unwrap();
        send_packet(client.as_raw_fd(), Tag::Stdout, false, b"one\n").unwrap();
        send_packet(client.as_raw_fd(), Tag::Stderr, false, b"two\n").unwrap();
        send_all(
            client.as_raw_fd(),
            Tag::Display,
            &vec![b'x'; MAX_PAYLOAD * 2 + 5],
            true,
        )
        .unwrap();
        drop(client);
        let mut buf = Vec::new();
        let mut got = Vec::new();
        while let Some((tag, more, payload)) = server.receive(&mut buf).unwrap() {
            got.push((tag, more, payload.len(), payload.first().copied()));
        }
        assert_eq!(
            got,
            [
                (Tag::Hello, false, "secret channel".len(), Some(b's')),
                (Tag::Stdout, false, 4, Some(b'o')),
                (Tag::Stderr, false, 4, Some(b't')),
                (Tag::Display, true, MAX_PAYLOAD, Some(b'x')),
                (Tag::Display, true, MAX_PAYLOAD, Some(b'x')),
                (Tag::Display, false, 5, Some(b'x')),
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
