//! A small blocking client for the agent socket, used by the CLI (which has no async runtime of
//! its own on the fast path: `keyward cred aws` must start and answer in a few milliseconds).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use thiserror::Error;

use crate::protocol::{ErrorReply, Reply, Request, RequestFrame, ResponseFrame, VERSION};

/// Largest response accepted (audit tails can be long).
const MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;
/// How long connecting may take (the agent's backlog full: it is flooded or hung).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a call waits for its answer by default: longer than any request the agent serves
/// (an approval waits up to 60 s for the user, a token endpoint 15 s).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(90);

/// Errors talking to the agent.
#[derive(Debug, Error)]
pub enum ClientError {
    /// No agent listening.
    #[error("no Keyward agent is running")]
    NotRunning,
    /// Transport failure.
    #[error("lost the connection to the Keyward agent: {0}")]
    Io(#[from] std::io::Error),
    /// The agent did not accept or answer in time.
    #[error("the Keyward agent did not answer within {} s: it may be overloaded or hung (its log: $XDG_STATE_HOME/keyward/agent.log; `keyward agent stop` restarts it on the next command)", .0.as_secs())]
    Timeout(Duration),
    /// The agent's answer was unreadable.
    #[error("the Keyward agent sent an unreadable answer (is it another version? restart it with `keyward agent stop`)")]
    Protocol,
    /// The agent refused the request.
    #[error("{}", .0.message)]
    Agent(ErrorReply),
}

/// A connection to the agent.
pub struct Client {
    stream: BufReader<UnixStream>,
}

impl Client {
    /// Connects to the agent at `socket`, waiting at most [`CONNECT_TIMEOUT`]; calls then wait
    /// at most [`CALL_TIMEOUT`] for their answer.
    pub fn connect(socket: &Path) -> Result<Self, ClientError> {
        use rustix::net::{sockopt, AddressFamily, SocketAddrUnix, SocketType};
        let not_running = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ClientError::NotRunning
            }
            _ => ClientError::Io(e),
        };
        let addr = SocketAddrUnix::new(socket).map_err(|e| ClientError::Io(e.into()))?;
        let fd = rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None)
            .map_err(|e| ClientError::Io(e.into()))?;
        // A blocking connect to a Unix socket waits while the listener's backlog is full; the
        // send timeout bounds that wait (SO_SNDTIMEO applies to connect).
        sockopt::set_socket_timeout(&fd, sockopt::Timeout::Send, Some(CONNECT_TIMEOUT))
            .map_err(|e| ClientError::Io(e.into()))?;
        match rustix::net::connect(&fd, &addr) {
            Ok(()) => {}
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INPROGRESS) => {
                return Err(ClientError::Timeout(CONNECT_TIMEOUT))
            }
            Err(e) => return Err(not_running(e.into())),
        }
        let stream = UnixStream::from(fd);
        stream.set_write_timeout(Some(CALL_TIMEOUT))?;
        stream.set_read_timeout(Some(CALL_TIMEOUT))?;
        Ok(Client {
            stream: BufReader::new(stream),
        })
    }

    /// Bounds how long a call may wait for the answer (`None`: [`CALL_TIMEOUT`]).
    pub fn set_timeout(&self, t: Option<Duration>) -> Result<(), ClientError> {
        self.stream
            .get_ref()
            .set_read_timeout(Some(t.unwrap_or(CALL_TIMEOUT)))?;
        Ok(())
    }

    /// Sends one request and waits for its answer.
    pub fn call(&mut self, req: Request) -> Result<Reply, ClientError> {
        let frame = RequestFrame { v: VERSION, req };
        let mut line =
            zeroize::Zeroizing::new(serde_json::to_vec(&frame).map_err(|_| ClientError::Protocol)?);
        line.push(b'\n');
        let limit = self
            .stream
            .get_ref()
            .read_timeout()
            .ok()
            .flatten()
            .unwrap_or(CALL_TIMEOUT);
        let timed_out = |e: std::io::Error| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                ClientError::Timeout(limit)
            }
            _ => ClientError::Io(e),
        };
        if let Err(e) = self.stream.get_mut().write_all(&line) {
            return Err(timed_out(e));
        }
        let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(512));
        let read = (&mut self.stream)
            .take(MAX_RESPONSE_BYTES)
            .read_until(b'\n', &mut buf);
        let n = match read {
            Ok(n) => n,
            Err(e) => return Err(timed_out(e)),
        };
        if n == 0 {
            return Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the agent closed the connection",
            )));
        }
        let resp: ResponseFrame =
            serde_json::from_slice(&buf).map_err(|_| ClientError::Protocol)?;
        match (resp.ok, resp.err) {
            (Some(r), None) => Ok(r),
            (None, Some(e)) => Err(ClientError::Agent(e)),
            _ => Err(ClientError::Protocol),
        }
    }
}
