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

/// Errors talking to the agent.
#[derive(Debug, Error)]
pub enum ClientError {
    /// No agent listening.
    #[error("no Keyward agent is running")]
    NotRunning,
    /// Transport failure.
    #[error("lost the connection to the Keyward agent: {0}")]
    Io(#[from] std::io::Error),
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
    /// Connects to the agent at `socket`.
    pub fn connect(socket: &Path) -> Result<Self, ClientError> {
        let stream = UnixStream::connect(socket).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                ClientError::NotRunning
            }
            _ => ClientError::Io(e),
        })?;
        Ok(Client {
            stream: BufReader::new(stream),
        })
    }

    /// Bounds how long a call may wait for the answer.
    pub fn set_timeout(&self, t: Option<Duration>) -> Result<(), ClientError> {
        self.stream.get_ref().set_read_timeout(t)?;
        Ok(())
    }

    /// Sends one request and waits for its answer.
    pub fn call(&mut self, req: Request) -> Result<Reply, ClientError> {
        let frame = RequestFrame { v: VERSION, req };
        let mut line =
            zeroize::Zeroizing::new(serde_json::to_vec(&frame).map_err(|_| ClientError::Protocol)?);
        line.push(b'\n');
        self.stream.get_mut().write_all(&line)?;
        let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(512));
        let n = (&mut self.stream)
            .take(MAX_RESPONSE_BYTES)
            .read_until(b'\n', &mut buf)?;
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
