//! The AWS container-credentials endpoint `keyward exec` gives its child, so a long-running
//! child (terraform, an SDK app) refreshes its session by itself.
//!
//! Anything on the machine can connect to a loopback port, so the endpoint trusts no one for
//! being local: it binds 127.0.0.1 only, answers one path, and only a request that carries this
//! exec's token (≥ 256 random bits, compared in constant time), names the exact `Host` it was
//! given (DNS rebinding: a web page's request names the attacker's host) and carries no `Origin`
//! (browsers add it to cross-site requests). A request head must arrive within
//! [`HEAD_TIME`] and fit in [`MAX_HEAD`]; at most [`MAX_CONNECTIONS`] are open at once. It answers
//! from the credentials it holds and asks the agent only when they near their end, never waiting
//! on a person: the approval was given before the child started.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zeroize::Zeroizing;

/// The only path the endpoint answers.
pub const PATH: &str = "/keyward/aws";
/// A request head must arrive whole within this (a slow client cannot hold a connection).
pub const HEAD_TIME: Duration = Duration::from_secs(2);
/// The largest request head accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Connections open at once; more are closed on arrival.
pub const MAX_CONNECTIONS: usize = 64;
/// An idle kept-alive connection is closed after this.
const IDLE: Duration = Duration::from_secs(30);
/// Headers accepted in one request.
const MAX_HEADERS: usize = 32;

/// Credentials the endpoint serves: the response body, ready to send, and when they end.
pub struct Served {
    body: Zeroizing<Vec<u8>>,
    expires: OffsetDateTime,
}

/// The body of a container-credentials response.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct Body<'a> {
    access_key_id: &'a str,
    secret_access_key: &'a str,
    token: &'a str,
    expiration: &'a str,
}

impl Served {
    /// Credentials good until `expiration` (RFC 3339), as the SDKs read them (`Token`, not
    /// `SessionToken`).
    pub fn new(
        access_key_id: &str,
        secret_access_key: &str,
        token: &str,
        expiration: &str,
    ) -> Result<Served, String> {
        let expires =
            OffsetDateTime::parse(expiration, &time::format_description::well_known::Rfc3339)
                .map_err(|e| format!("the agent sent an expiry that is not RFC 3339: {e}"))?;
        let body = serde_json::to_vec(&Body {
            access_key_id,
            secret_access_key,
            token,
            expiration,
        })
        .map_err(|e| e.to_string())?;
        Ok(Served {
            body: Zeroizing::new(body),
            expires,
        })
    }
}

/// Why the endpoint could not get new credentials, as the child's SDK will show it.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// HTTP status: 403 (not approved), 503 (locked, agent gone), 502 (upstream failed).
    pub status: u16,
    /// One line saying what to do.
    pub message: String,
}

/// Where new credentials come from (the agent, in `keyward exec`). Called off the async threads.
pub trait Source: Send + Sync + 'static {
    /// Fresh credentials, or why not. Must not wait on a person.
    fn fetch(&self) -> Result<Served, Refusal>;
}

/// The credentials held, and the one refresh in flight.
struct Holder<S> {
    source: Arc<S>,
    held: Mutex<Option<Arc<Served>>>,
    flight: tokio::sync::Mutex<()>,
    /// Credentials with less than this left are refreshed before they are served.
    min_remaining: time::Duration,
}

impl<S: Source> Holder<S> {
    fn fresh(&self) -> Option<Arc<Served>> {
        let held = self.held.lock().ok()?;
        let s = held.as_ref()?;
        (s.expires - OffsetDateTime::now_utc() >= self.min_remaining).then(|| Arc::clone(s))
    }

    async fn current(&self) -> Result<Arc<Served>, Refusal> {
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        // One refresh at a time: the rest find its result.
        let _flight = self.flight.lock().await;
        if let Some(s) = self.fresh() {
            return Ok(s);
        }
        let source = Arc::clone(&self.source);
        let fetched = tokio::task::spawn_blocking(move || source.fetch())
            .await
            .map_err(|_| Refusal {
                status: 500,
                message: "keyward exec: the refresh failed (internal error)".to_owned(),
            })??;
        let s = Arc::new(fetched);
        if let Ok(mut held) = self.held.lock() {
            *held = Some(Arc::clone(&s));
        }
        Ok(s)
    }
}

/// A bound endpoint, before it serves.
pub struct Endpoint {
    listener: TcpListener,
    port: u16,
    token: Zeroizing<String>,
}

impl Endpoint {
    /// Binds a free port on 127.0.0.1 and draws this exec's token.
    pub async fn bind() -> std::io::Result<Endpoint> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let port = listener.local_addr()?.port();
        Ok(Endpoint {
            listener,
            port,
            token: Zeroizing::new(new_token()),
        })
    }

    /// The URL the child's SDK calls (`AWS_CONTAINER_CREDENTIALS_FULL_URI`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}{PATH}", self.port)
    }

    /// The token the child sends (`AWS_CONTAINER_AUTHORIZATION_TOKEN`).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Serves `first`, then what `source` gives when it nears its end, until the task is
    /// dropped.
    pub async fn serve<S: Source>(
        self,
        first: Served,
        source: Arc<S>,
        min_remaining: time::Duration,
    ) {
        let holder = Arc::new(Holder {
            source,
            held: Mutex::new(Some(Arc::new(first))),
            flight: tokio::sync::Mutex::new(()),
            min_remaining,
        });
        let rules = Arc::new(Rules {
            host: format!("127.0.0.1:{}", self.port),
            token: self.token,
        });
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok((stream, peer)) = self.listener.accept().await else {
                // Out of descriptors and the like: wait rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            if !peer.ip().is_loopback() {
                continue;
            }
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                continue;
            };
            let (holder, rules) = (Arc::clone(&holder), Arc::clone(&rules));
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                connection(stream, &holder, &rules).await;
                drop(slot);
            });
        }
    }
}

/// A fresh token: 32 random bytes from the OS, hex.
fn new_token() -> String {
    use rand::RngCore;
    let mut bytes = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(bytes.as_mut());
    data_encoding::HEXLOWER.encode(bytes.as_ref())
}

/// What a request must carry.
struct Rules {
    host: String,
    token: Zeroizing<String>,
}

/// What the endpoint answers a request head.
enum Verdict {
    Serve,
    Refuse(u16, &'static str),
}

impl Rules {
    fn judge(&self, req: &httparse::Request<'_, '_>) -> Verdict {
        let mut host = None;
        let mut auth = None;
        for h in req.headers.iter() {
            let name = h.name;
            if name.eq_ignore_ascii_case("origin") {
                return Verdict::Refuse(403, "requests from web pages are refused");
            }
            let slot = if name.eq_ignore_ascii_case("host") {
                &mut host
            } else if name.eq_ignore_ascii_case("authorization") {
                &mut auth
            } else if name.eq_ignore_ascii_case("content-length")
                || name.eq_ignore_ascii_case("transfer-encoding")
            {
                // A GET has no body; one announced could be a second request smuggled in.
                return Verdict::Refuse(400, "a request with a body is refused");
            } else {
                continue;
            };
            if slot.replace(h.value).is_some() {
                return Verdict::Refuse(400, "a header is repeated");
            }
        }
        if host != Some(self.host.as_bytes()) {
            return Verdict::Refuse(
                403,
                "wrong Host: this endpoint answers only its own address",
            );
        }
        let Some(auth) = auth else {
            return Verdict::Refuse(401, "no token: send AWS_CONTAINER_AUTHORIZATION_TOKEN");
        };
        if !bool::from(auth.ct_eq(self.token.as_bytes())) {
            return Verdict::Refuse(403, "wrong token");
        }
        if req.method != Some("GET") {
            return Verdict::Refuse(405, "only GET is answered");
        }
        if req.path != Some(PATH) {
            return Verdict::Refuse(404, "no such path");
        }
        Verdict::Serve
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

/// A response head and body; `close` ends the connection after it.
fn response(status: u16, body: &[u8], close: bool) -> Zeroizing<Vec<u8>> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{}\r\n",
        reason(status),
        body.len(),
        if close { "Connection: close\r\n" } else { "" },
    );
    let mut out = Zeroizing::new(Vec::with_capacity(head.len() + body.len()));
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
    out
}

fn error_body(message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "code": "KeywardRefused", "message": message }))
        .unwrap_or_default()
}

/// Reads one request head into `buf` (which may already hold the start of it): the head's
/// length, or the status to close with.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<usize, Option<u16>> {
    // Waiting for the next request on a kept-alive connection may take long; the head itself
    // may not.
    if buf.is_empty() {
        let mut chunk = [0u8; 2048];
        match tokio::time::timeout(IDLE, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return Err(None),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let deadline = tokio::time::Instant::now() + HEAD_TIME;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => return Ok(n),
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => return Err(Some(431)),
            Err(_) => return Err(Some(400)),
        }
        if buf.len() >= MAX_HEAD {
            return Err(Some(431));
        }
        let mut chunk = [0u8; 2048];
        let room = (MAX_HEAD - buf.len()).min(chunk.len());
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk[..room])).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Err(None),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => return Err(Some(408)),
        }
    }
}

async fn connection<S: Source>(mut stream: TcpStream, holder: &Holder<S>, rules: &Rules) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let len = match read_head(&mut stream, &mut buf).await {
            Ok(n) => n,
            Err(Some(status)) => {
                let body = error_body(reason(status));
                if write(&mut stream, &response(status, &body, true))
                    .await
                    .is_ok()
                {
                    linger(&mut stream).await;
                }
                return;
            }
            Err(None) => return,
        };
        let (verdict, close) = {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut headers);
            if req.parse(&buf[..len]).is_err() {
                return;
            }
            let close = req.version == Some(0)
                || req.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("connection")
                        && h.value.eq_ignore_ascii_case(b"close")
                });
            (rules.judge(&req), close)
        };
        buf.drain(..len);
        let out = match verdict {
            Verdict::Refuse(status, why) => {
                tracing::debug!("container endpoint refused a request: {why}");
                // A refused client is not kept: whatever it sent next is not read.
                let _ = write(&mut stream, &response(status, &error_body(why), true)).await;
                return;
            }
            Verdict::Serve => match holder.current().await {
                Ok(s) => response(200, &s.body, close),
                Err(r) => response(r.status, &error_body(&r.message), close),
            },
        };
        if write(&mut stream, &out).await.is_err() || close {
            return;
        }
    }
}

/// Closes after a refusal sent before the request was read whole: a close with unread bytes
/// resets the connection, and the reset can destroy the refusal before the client reads it. So
/// our side is shut first and what the client still sends is read and dropped, briefly.
async fn linger(stream: &mut TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let mut left: usize = 64 * 1024;
    let until = tokio::time::Instant::now() + Duration::from_millis(500);
    while left > 0 {
        match tokio::time::timeout_at(until, stream.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => left = left.saturating_sub(n),
            _ => return,
        }
    }
}

async fn write(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    match tokio::time::timeout(HEAD_TIME, stream.write_all(bytes)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting {
        calls: AtomicUsize,
        life: time::Duration,
    }

    impl Source for Counting {
        fn fetch(&self) -> Result<Served, Refusal> {
            let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            std::thread::sleep(Duration::from_millis(50));
            served(&format!("ASIAFETCHED{n:05}"), self.life)
        }
    }

    fn served(id: &str, life: time::Duration) -> Result<Served, Refusal> {
        let exp = (OffsetDateTime::now_utc() + life)
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| Refusal {
                status: 500,
                message: e.to_string(),
            })?;
        Served::new(id, "secret", "token", &exp).map_err(|m| Refusal {
            status: 500,
            message: m,
        })
    }

    async fn start(first_life: time::Duration) -> (String, String, Arc<Counting>) {
        let ep = Endpoint::bind().await.expect("bind");
        let (url, token) = (ep.url(), ep.token().to_owned());
        let source = Arc::new(Counting {
            calls: AtomicUsize::new(0),
            life: time::Duration::hours(1),
        });
        let first = served("ASIAFIRST0000000", first_life).expect("first");
        tokio::spawn(ep.serve(first, Arc::clone(&source), time::Duration::minutes(20)));
        (url, token, source)
    }

    async fn raw(url: &str, request: &str) -> String {
        let addr = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .expect("addr")
            .to_owned();
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(request.as_bytes()).await.expect("send");
        let mut out = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await;
        out
    }

    fn get(url: &str, extra: &str) -> String {
        let host = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .expect("host");
        format!("GET {PATH} HTTP/1.1\r\nHost: {host}\r\n{extra}Connection: close\r\n\r\n")
    }

    #[tokio::test]
    async fn the_token_and_the_exact_host_get_the_credentials_and_nothing_else_does() {
        let (url, token, _) = start(time::Duration::hours(1)).await;
        let ok = raw(&url, &get(&url, &format!("Authorization: {token}\r\n"))).await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains(r#""AccessKeyId":"ASIAFIRST0000000""#), "{ok}");
        assert!(ok.contains(r#""Token":"token""#), "{ok}");

        let none = raw(&url, &get(&url, "")).await;
        assert!(none.starts_with("HTTP/1.1 401"), "{none}");
        let wrong = raw(
            &url,
            &get(&url, &format!("Authorization: {}x\r\n", &token[..63])),
        )
        .await;
        assert!(wrong.starts_with("HTTP/1.1 403"), "{wrong}");
        let origin = format!("Authorization: {token}\r\nOrigin: http://evil.example\r\n");
        let web = raw(&url, &get(&url, &origin)).await;
        assert!(web.starts_with("HTTP/1.1 403"), "{web}");
        let rebound = format!(
            "GET {PATH} HTTP/1.1\r\nHost: evil.example:80\r\nAuthorization: {token}\r\n\r\n"
        );
        let r = raw(&url, &rebound).await;
        assert!(r.starts_with("HTTP/1.1 403"), "{r}");
        let other = get(&url, &format!("Authorization: {token}\r\n")).replace(PATH, "/other");
        let o = raw(&url, &other).await;
        assert!(o.starts_with("HTTP/1.1 404"), "{o}");
        let two_hosts = get(
            &url,
            &format!("Authorization: {token}\r\nHost: 127.0.0.1:1\r\n"),
        );
        assert!(raw(&url, &two_hosts).await.starts_with("HTTP/1.1 400"));
        let body = get(
            &url,
            &format!("Authorization: {token}\r\nContent-Length: 5\r\n"),
        );
        assert!(raw(&url, &body).await.starts_with("HTTP/1.1 400"));
        for refused in [none, wrong, web, r, o] {
            assert!(!refused.contains("secret"), "{refused}");
        }
    }

    #[tokio::test]
    async fn an_oversized_or_slow_head_is_cut_and_the_endpoint_keeps_serving() {
        let (url, token, _) = start(time::Duration::hours(1)).await;
        let big = get(&url, &format!("X-Pad: {}\r\n", "a".repeat(MAX_HEAD)));
        assert!(raw(&url, &big).await.starts_with("HTTP/1.1 431"));
        let addr = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .expect("addr")
            .to_owned();
        let mut slow = TcpStream::connect(&addr).await.expect("connect");
        slow.write_all(b"GET /keyward/aws HTTP/1.1\r\nHo")
            .await
            .expect("send");
        let started = std::time::Instant::now();
        let mut out = String::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), slow.read_to_string(&mut out)).await;
        assert!(out.starts_with("HTTP/1.1 408"), "{out}");
        assert!(started.elapsed() < HEAD_TIME + Duration::from_secs(2));
        let ok = raw(&url, &get(&url, &format!("Authorization: {token}\r\n"))).await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    }

    #[tokio::test]
    async fn credentials_near_their_end_are_refreshed_once_for_many_requests() {
        let (url, token, source) = start(time::Duration::minutes(5)).await;
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (u, t) = (url.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                raw(&u, &get(&u, &format!("Authorization: {t}\r\n"))).await
            }));
        }
        for t in tasks {
            let out = t.await.expect("task");
            assert!(out.contains("ASIAFETCHED00001"), "{out}");
        }
        assert_eq!(source.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_kept_alive_connection_is_served_request_after_request() {
        let (url, token, _) = start(time::Duration::hours(1)).await;
        let host = url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .expect("host")
            .to_owned();
        let one = format!("GET {PATH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {token}\r\n\r\n");
        let mut s = TcpStream::connect(&host).await.expect("connect");
        // Two requests in one write (pipelined), then a third after the answers.
        s.write_all(format!("{one}{one}").as_bytes())
            .await
            .expect("send");
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        while seen.windows(8).filter(|w| w == b"HTTP/1.1").count() < 2 {
            let n = s.read(&mut chunk).await.expect("read");
            assert!(n > 0, "closed early");
            seen.extend_from_slice(&chunk[..n]);
        }
        s.write_all(
            one.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .expect("send");
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).await.expect("read");
        assert!(String::from_utf8_lossy(&rest).contains("ASIAFIRST0000000"));
    }
}
