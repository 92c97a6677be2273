//! The Unix-socket endpoint: a private 0700 directory, a 0600 socket, `SO_PEERCRED` uid check,
//! one agent per user (an exclusive lock file), and limits so a malformed or slow client cannot
//! hold the agent: request size, per-request time, concurrent connections.
//!
//! The peer is identified once, when it connects; every message then carries the pid of the
//! process that sent it (`SO_PASSCRED`), and a request sent by any other process is refused. A
//! connection handed to a child before its parent `exec`s `keyward` therefore speaks for the
//! child, not for Keyward.

use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use crate::protocol::{
    ErrorCode, ErrorReply, RequestFrame, ResponseFrame, MAX_REQUEST_BYTES, VERSION,
};
use crate::service::Agent;

/// How long a client may take to send one request (or stay idle between requests).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once. When full, the connection idle the longest is closed to make
/// room (a client holding connections open cannot lock others out).
pub const MAX_CONNECTIONS: usize = 256;
/// Connections one process may hold open; past that its idlest one is closed, and if none is
/// idle the new one is refused.
pub const MAX_CONNECTIONS_PER_PROCESS: usize = 8;

/// The open connections: who holds each, whether it is inside a request, and how to close it.
#[derive(Default)]
struct Connections {
    next: u64,
    open: std::collections::HashMap<u64, Conn>,
}

struct Conn {
    pid: Option<i32>,
    busy: bool,
    since: std::time::Instant,
    close: Arc<tokio::sync::Notify>,
}

type Registry = Arc<std::sync::Mutex<Connections>>;

fn registry(r: &Registry) -> std::sync::MutexGuard<'_, Connections> {
    match r.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Connections {
    /// Closes the connection among `pick` that has been idle the longest; whether there was one.
    fn evict_idlest(&mut self, pick: impl Fn(&Conn) -> bool) -> bool {
        let victim = self
            .open
            .iter()
            .filter(|(_, c)| !c.busy && pick(c))
            .min_by_key(|(_, c)| c.since)
            .map(|(id, _)| *id);
        match victim.and_then(|id| self.open.remove(&id)) {
            Some(c) => {
                c.close.notify_one();
                true
            }
            None => false,
        }
    }

    /// Makes room for a connection from `pid`; its id and close signal, or `None` when that
    /// process already holds its share and all of them are busy.
    fn admit(&mut self, pid: Option<i32>) -> Option<(u64, Arc<tokio::sync::Notify>)> {
        let mine = self.open.values().filter(|c| c.pid == pid).count();
        if mine >= MAX_CONNECTIONS_PER_PROCESS && !self.evict_idlest(|c| c.pid == pid) {
            return None;
        }
        if self.open.len() >= MAX_CONNECTIONS {
            self.evict_idlest(|_| true);
        }
        self.next += 1;
        let close = Arc::new(tokio::sync::Notify::new());
        self.open.insert(
            self.next,
            Conn {
                pid,
                busy: false,
                since: std::time::Instant::now(),
                close: Arc::clone(&close),
            },
        );
        Some((self.next, close))
    }

    fn set_busy(&mut self, id: u64, busy: bool) {
        if let Some(c) = self.open.get_mut(&id) {
            c.busy = busy;
            c.since = std::time::Instant::now();
        }
    }
}

/// Errors setting up the endpoint.
#[derive(Debug, Error)]
pub enum EndpointError {
    /// Another agent holds the lock.
    #[error("another Keyward agent is already running for this user (lock {0})")]
    AlreadyRunning(PathBuf),
    /// The runtime directory is not private.
    #[error(
        "refusing to use {path}: {reason} (it must be a directory owned by you with mode 0700)"
    )]
    NotPrivate {
        /// Directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// No place for the socket.
    #[error("cannot find a runtime directory: set XDG_RUNTIME_DIR")]
    NoRuntimeDir,
    /// OS error.
    #[error("cannot set up the agent socket at {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

/// The agent's runtime directory: `$XDG_RUNTIME_DIR/keyward`, else `/tmp/keyward-<uid>`.
pub fn runtime_dir() -> Result<PathBuf, EndpointError> {
    if let Some(d) = std::env::var_os("KEYWARD_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(d));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(d).join("keyward"));
    }
    let uid = rustix::process::getuid().as_raw();
    Ok(PathBuf::from(format!("/tmp/keyward-{uid}")))
}

/// The socket path.
pub fn socket_path() -> Result<PathBuf, EndpointError> {
    Ok(runtime_dir()?.join("agent.sock"))
}

/// Creates the runtime directory (0700) or checks that an existing one is private and ours.
pub fn prepare_runtime_dir(dir: &Path) -> Result<(), EndpointError> {
    let io_err = |source| EndpointError::Io {
        path: dir.to_path_buf(),
        source,
    };
    if !dir.exists() {
        keyward_core::catalog::create_private_dir(dir).map_err(io_err)?;
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io_err)?;
    let uid = rustix::process::getuid().as_raw();
    let not_private = |reason: String| EndpointError::NotPrivate {
        path: dir.to_path_buf(),
        reason,
    };
    if !meta.is_dir() {
        return Err(not_private("it is not a directory".into()));
    }
    if meta.uid() != uid {
        return Err(not_private(format!("it is owned by uid {}", meta.uid())));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(not_private(format!(
            "its mode is {:o}",
            meta.mode() & 0o777
        )));
    }
    Ok(())
}

/// The held single-instance lock; released when dropped (the process exits).
pub struct InstanceLock {
    _file: std::fs::File,
}

/// Takes the per-user agent lock in `dir`.
pub fn take_instance_lock(dir: &Path) -> Result<InstanceLock, EndpointError> {
    let path = dir.join("agent.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| EndpointError::Io {
            path: path.clone(),
            source,
        })?;
    rustix::fs::flock(
        file.as_fd(),
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    )
    .map_err(|_| EndpointError::AlreadyRunning(path))?;
    Ok(InstanceLock { _file: file })
}

/// Binds the socket (removing a stale one: we hold the instance lock) with mode 0600.
pub fn bind(socket: &Path) -> Result<UnixListener, EndpointError> {
    let io_err = |source| EndpointError::Io {
        path: socket.to_path_buf(),
        source,
    };
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    let listener = UnixListener::bind(socket).map_err(io_err)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600)).map_err(io_err)?;
    // Set on the listener, so messages sent even before a connection is accepted carry their
    // sender.
    rustix::net::sockopt::set_socket_passcred(&listener, true)
        .map_err(|e| io_err(io::Error::from(e)))?;
    Ok(listener)
}

fn frame_err(code: ErrorCode, message: &str) -> ResponseFrame {
    ResponseFrame::Err(ErrorReply {
        code,
        message: message.to_owned(),
    })
}

async fn write_frame(
    stream: &mut (impl AsyncWriteExt + Unpin),
    frame: &ResponseFrame,
) -> io::Result<()> {
    let mut line = serde_json::to_vec(frame).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line).await?;
    stream.flush().await
}

/// Serves connections until the agent is told to shut down.
pub async fn serve(agent: Arc<Agent>, listener: UnixListener) {
    // A hard ceiling beside the registry's own: eviction needs a moment to take effect.
    let permits = Arc::new(Semaphore::new(
        MAX_CONNECTIONS + MAX_CONNECTIONS_PER_PROCESS,
    ));
    let conns: Registry = Arc::default();
    let our_uid = rustix::process::getuid().as_raw();
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            () = agent.shutdown.notified() => return,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let agent = Arc::clone(&agent);
        let conns = Arc::clone(&conns);
        tokio::spawn(async move {
            connection(agent, stream, our_uid, conns).await;
            drop(permit);
        });
    }
}

async fn connection(agent: Arc<Agent>, stream: UnixStream, our_uid: u32, conns: Registry) {
    let cred = match stream.peer_cred() {
        Ok(c) => c,
        Err(e) => {
            warn!("cannot read peer credentials, closing: {e}");
            return;
        }
    };
    if cred.uid() != our_uid {
        warn!(
            peer_uid = cred.uid(),
            "refused a connection from another user"
        );
        return;
    }
    let Some((id, close)) = registry(&conns).admit(cred.pid()) else {
        let (_, mut write) = stream.into_split();
        let _ = write_frame(
            &mut write,
            &frame_err(
                ErrorCode::BadRequest,
                "this program holds too many connections to the agent at once",
            ),
        )
        .await;
        return;
    };
    serve_connection(&agent, stream, cred, id, &close, &conns).await;
    registry(&conns).open.remove(&id);
}

async fn serve_connection(
    agent: &Arc<Agent>,
    stream: UnixStream,
    cred: tokio::net::unix::UCred,
    id: u64,
    close: &tokio::sync::Notify,
    conns: &Registry,
) {
    let actor = crate::peer::actor_for(cred.uid(), cred.pid());
    let (read, mut write) = stream.into_split();
    let mut reader = LineReader::new(Socket(read));
    let mut senders = Vec::new();
    // Sized once, so a request (which may carry a passphrase) is never copied by a regrowth
    // into memory that is freed unwiped.
    let mut line = zeroize::Zeroizing::new(Vec::with_capacity(MAX_REQUEST_BYTES + 1));
    loop {
        line.clear();
        let read = tokio::select! {
            // One byte more than allowed tells an oversized request from a maximal one.
            r = tokio::time::timeout(REQUEST_TIMEOUT, reader.read_line(&mut line, MAX_REQUEST_BYTES + 1, &mut senders)) => r,
            // Evicted to make room for another client: it was idle.
            () = close.notified() => return,
        };
        let n = match read {
            Err(_) => {
                let _ = write_frame(
                    &mut write,
                    &frame_err(ErrorCode::BadRequest, "request timed out"),
                )
                .await;
                return;
            }
            Ok(Err(e)) => {
                debug!("read failed: {e}");
                return;
            }
            Ok(Ok(n)) => n,
        };
        if n == 0 {
            return;
        }
        if line.len() > MAX_REQUEST_BYTES || line.last() != Some(&b'\n') {
            let msg = if line.len() > MAX_REQUEST_BYTES {
                "request too large"
            } else {
                "request not terminated by a newline"
            };
            let _ = write_frame(&mut write, &frame_err(ErrorCode::BadRequest, msg)).await;
            return;
        }
        if let Some(other) = senders.iter().find(|p| Some(**p) != cred.pid()) {
            zeroize::Zeroize::zeroize(&mut *line);
            warn!(
                sender = other,
                peer = cred.pid(),
                "refused a request sent by another process than the connection's"
            );
            let msg = format!(
                "this request was sent by process {other}, not by the process that opened the connection: each program must connect for itself"
            );
            let _ = write_frame(&mut write, &frame_err(ErrorCode::Forbidden, &msg)).await;
            return;
        }
        let parsed = serde_json::from_slice::<RequestFrame>(&line);
        // Wipe the raw line: it may have carried a passphrase.
        zeroize::Zeroize::zeroize(&mut *line);
        let frame = match parsed {
            Ok(f) => f,
            Err(e) => {
                // Serde's message names the field or token at fault, never echoes values at length.
                let msg = format!("malformed request: {}", first_line(&e.to_string()));
                if write_frame(&mut write, &frame_err(ErrorCode::BadRequest, &msg))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
        };
        if frame.v != VERSION {
            let msg = format!("protocol version {} is not spoken by this agent (it speaks {VERSION}): restart the agent after upgrading", frame.v);
            if write_frame(&mut write, &frame_err(ErrorCode::Version, &msg))
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        registry(conns).set_busy(id, true);
        let handled = agent.handle(frame.req, actor.clone()).await;
        registry(conns).set_busy(id, false);
        let response = ResponseFrame::from(handled);
        if write_frame(&mut write, &response).await.is_err() {
            return;
        }
    }
}

/// Where request bytes come from, and which process sent them (`None`: not known).
trait Source {
    async fn recv(&mut self, buf: &mut [u8]) -> io::Result<(usize, Option<i32>)>;
}

/// The socket, read with `recvmsg` for each message's sender.
struct Socket(tokio::net::unix::OwnedReadHalf);

impl Source for Socket {
    async fn recv(&mut self, buf: &mut [u8]) -> io::Result<(usize, Option<i32>)> {
        use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
        let stream: &UnixStream = self.0.as_ref();
        loop {
            stream.readable().await?;
            let got = stream.try_io(tokio::io::Interest::READABLE, || {
                let mut space =
                    [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
                let mut control = RecvAncillaryBuffer::new(&mut space);
                let r = rustix::net::recvmsg(
                    stream,
                    &mut [io::IoSliceMut::new(buf)],
                    &mut control,
                    RecvFlags::CMSG_CLOEXEC,
                )?;
                // Anything else (descriptors someone sent along) is dropped, and so closed.
                let sender = control.drain().find_map(|m| match m {
                    RecvAncillaryMessage::ScmCredentials(c) => Some(c.pid.as_raw_nonzero().get()),
                    _ => None,
                });
                Ok((r.bytes, sender))
            });
            match got {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }
}

/// Bytes without a sender (the unit tests' input).
#[cfg(test)]
impl Source for &[u8] {
    async fn recv(&mut self, buf: &mut [u8]) -> io::Result<(usize, Option<i32>)> {
        Ok((tokio::io::AsyncReadExt::read(self, buf).await?, None))
    }
}

/// Reads request lines like a `BufReader`, but every byte it holds is wiped when consumed or
/// dropped (a request line may carry a passphrase or a secret being stored), and it knows which
/// processes sent the bytes of each line.
struct LineReader<R> {
    inner: R,
    pending: zeroize::Zeroizing<Vec<u8>>,
    /// The pending bytes in order, as (length, sender) runs.
    runs: std::collections::VecDeque<(usize, Option<i32>)>,
}

/// How much one read of the socket takes.
const READ_CHUNK: usize = 4096;

impl<R: Source> LineReader<R> {
    fn new(inner: R) -> Self {
        LineReader {
            inner,
            // Never regrown (at most a whole request plus one read is pending).
            pending: zeroize::Zeroizing::new(Vec::with_capacity(
                MAX_REQUEST_BYTES + 1 + READ_CHUNK,
            )),
            runs: std::collections::VecDeque::new(),
        }
    }

    /// Appends the next line (through its `\n`) to `line`, at most `max` bytes, and sets
    /// `senders` to the processes known to have sent its bytes; returns how many bytes it
    /// appended, 0 at the end of the stream.
    async fn read_line(
        &mut self,
        line: &mut Vec<u8>,
        max: usize,
        senders: &mut Vec<i32>,
    ) -> io::Result<usize> {
        senders.clear();
        loop {
            let end = match self.pending.iter().position(|b| *b == b'\n') {
                Some(pos) => Some((pos + 1).min(max)),
                None if self.pending.len() >= max => Some(max),
                None => None,
            };
            if let Some(take) = end {
                line.extend_from_slice(&self.pending[..take]);
                self.consume(take, senders);
                return Ok(take);
            }
            let mut chunk = zeroize::Zeroizing::new([0u8; READ_CHUNK]);
            let (n, sender) = self.inner.recv(&mut chunk[..]).await?;
            if n == 0 {
                let n = self.pending.len();
                line.extend_from_slice(&self.pending);
                self.consume(n, senders);
                return Ok(n);
            }
            self.pending.extend_from_slice(&chunk[..n]);
            self.runs.push_back((n, sender));
        }
    }

    /// Drops the first `n` pending bytes, leaving no copy of them behind, and adds their
    /// senders to `senders`.
    fn consume(&mut self, n: usize, senders: &mut Vec<i32>) {
        let len = self.pending.len();
        self.pending.copy_within(n.., 0);
        // The tail now holds stale copies: wipe it before shortening.
        zeroize::Zeroize::zeroize(&mut self.pending[len - n..]);
        self.pending.truncate(len - n);
        let mut left = n;
        while left > 0 {
            let Some((run, sender)) = self.runs.front_mut() else {
                break;
            };
            if let Some(p) = *sender {
                if !senders.contains(&p) {
                    senders.push(p);
                }
            }
            let used = left.min(*run);
            *run -= used;
            left -= used;
            if *run == 0 {
                self.runs.pop_front();
            }
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}

#[cfg(test)]
mod tests;
