//! Forwarding the audit trail off the machine, as the admin policy's `[audit] syslog_tcp` or
//! `syslog_tls` says: each record once and in order, as an RFC 5424 message over TCP with
//! octet-counted framing (RFC 6587), or over TLS (RFC 5425, the receiver's certificate checked
//! for its host name against the system's roots or the policy's `syslog_ca`), carrying its
//! sequence number and chain hashes so the receiver can tell a gap or an edit; and/or into the
//! systemd journal (`[audit] journal`, or `journal_namespace`), one native-protocol entry per
//! record with the same as fields. Each sink has its own thread and its own progress. The catalog stays the source: the forwarder reads it from where the receiver was
//! last known to have got to (kept in the catalog's settings per receiver), so a receiver that
//! is down or restarted gets what it missed, from that point, when it is back.
//!
//! TCP acknowledges nothing to the sender, so before each batch the connection is checked for
//! the receiver having closed it (a stopped rsyslog does); a record written in the very instant
//! a receiver dies can still be lost by TCP (RELP would close that; not built).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use keyward_core::catalog::AuditFilter;
use tracing::{info, warn};

use crate::activity::ActivityRecord;
use crate::Agent;

/// How often new records are looked for.
const POLL: Duration = Duration::from_millis(250);
/// Records read and sent at a time.
const BATCH: u32 = 500;
/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// RFC 5612's enterprise number for documentation: Keyward has none registered.
const SD_ID: &str = "keyward@32473";

/// How far forwarding has got, as `status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct Forwarding {
    /// The receiver: `host:port`, `tls://host:port`, `journal` or `journal:NAMESPACE`.
    pub target: String,
    /// The last record the receiver has been sent.
    pub sent_seq: i64,
    /// Why the last attempt failed, while it keeps failing.
    pub error: Option<String>,
}

/// A receiver the policy names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A syslog receiver.
    Syslog {
        /// `host:port`.
        addr: String,
        /// `None`: plain TCP. `Some(ca)`: TLS, trusting the CA file `ca`, or the system's roots.
        tls: Option<Option<PathBuf>>,
    },
    /// The systemd journal.
    Journal {
        /// A journald namespace, or the system journal.
        namespace: Option<String>,
    },
}

/// The two kinds of receiver, each forwarded to by its own thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sink {
    /// `syslog_tcp` / `syslog_tls`.
    Syslog,
    /// `journal` / `journal_namespace`.
    Journal,
}

impl Target {
    /// How status and the catalog's progress setting name it: `host:port`, `tls://host:port`,
    /// `journal`, `journal:NAMESPACE`.
    pub fn name(&self) -> String {
        match self {
            Target::Syslog { addr, tls: None } => addr.clone(),
            Target::Syslog { addr, tls: Some(_) } => format!("tls://{addr}"),
            Target::Journal { namespace: None } => "journal".into(),
            Target::Journal { namespace: Some(n) } => format!("journal:{n}"),
        }
    }

    /// Which thread forwards to it.
    pub fn sink(&self) -> Sink {
        match self {
            Target::Syslog { .. } => Sink::Syslog,
            Target::Journal { .. } => Sink::Journal,
        }
    }
}

fn setting(target: &str) -> String {
    format!("audit.forwarded.{target}")
}

/// An open connection to the receiver.
enum Conn {
    Tcp(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    Journal(UnixDatagram),
}

impl Conn {
    fn send(&mut self, r: &ActivityRecord, host: &str, pid: u32) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(&frame(r, host, pid)),
            Conn::Tls(s) => {
                s.write_all(&frame(r, host, pid))?;
                s.flush()
            }
            Conn::Journal(s) => {
                // One datagram per entry, whole or not at all (a local socket loses none).
                let entry = journal_entry(r);
                let sent = s.send(&entry)?;
                if sent != entry.len() {
                    return Err(std::io::Error::other("the journal took part of a record"));
                }
                Ok(())
            }
        }
    }

    /// Whether the receiver closed the connection (or it broke) since it was last used. A
    /// syslog receiver sends nothing, so over TLS anything but "nothing to read" (a
    /// close_notify, an end of stream, an error) is the end; session tickets are taken in.
    fn closed(&mut self) -> bool {
        let s = match self {
            Conn::Tcp(s) => return closed(s),
            // Datagrams: a journal that went away shows as the next send failing.
            Conn::Journal(_) => return false,
            Conn::Tls(s) => s,
        };
        if s.sock.set_nonblocking(true).is_err() {
            return true;
        }
        let mut b = [0u8; 256];
        let gone = loop {
            match s.read(&mut b) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) => break e.kind() != std::io::ErrorKind::WouldBlock,
            }
        };
        let _ = s.sock.set_nonblocking(false);
        gone
    }
}

/// An SD-PARAM value with `"`, `\` and `]` escaped (RFC 5424 §6.3.3).
fn sd(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace(']', "\\]")
}

/// What a receiver gets of a record besides its place in the chain.
fn body(r: &ActivityRecord) -> serde_json::Value {
    serde_json::json!({
        "action": r.action,
        "target": r.target,
        "outcome": r.outcome,
        "actor": r.actor,
        "detail": r.detail,
        "summary": r.summary,
    })
}

/// One field of a journal entry: `NAME=value\n`, or for a value with a newline the binary form
/// (`NAME\n`, the length as 64-bit little-endian, the value, `\n`).
fn journal_field(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    if value.contains('\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value.as_bytes());
    out.push(b'\n');
}

/// One record as a journal entry (systemd's native protocol): the summary as MESSAGE, facility
/// authpriv, identifier `keyward`, and the record's place in the chain as KEYWARD_* fields.
pub fn journal_entry(r: &ActivityRecord) -> Vec<u8> {
    let mut out = Vec::new();
    journal_field(&mut out, "MESSAGE", &r.summary);
    journal_field(&mut out, "PRIORITY", "6");
    journal_field(&mut out, "SYSLOG_FACILITY", "10");
    journal_field(&mut out, "SYSLOG_IDENTIFIER", "keyward");
    journal_field(&mut out, "KEYWARD_SEQ", &r.seq.to_string());
    journal_field(&mut out, "KEYWARD_PREV_HASH", &r.prev_hash);
    journal_field(&mut out, "KEYWARD_HASH", &r.hash);
    journal_field(&mut out, "KEYWARD_TS", &r.ts);
    journal_field(&mut out, "KEYWARD_ACTION", &r.action);
    journal_field(&mut out, "KEYWARD_OUTCOME", &r.outcome);
    journal_field(
        &mut out,
        "KEYWARD_TARGET",
        r.target.as_deref().unwrap_or("-"),
    );
    journal_field(&mut out, "KEYWARD_RECORD", &body(r).to_string());
    out
}

/// One record as an RFC 5424 message, framed by its length.
pub fn frame(r: &ActivityRecord, host: &str, pid: u32) -> Vec<u8> {
    // authpriv (10) × 8 + info (6).
    let msgid: String = r
        .action
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(32)
        .collect();
    let body = body(r);
    let msg = format!(
        "<86>1 {ts} {host} keyward {pid} {msgid} [{SD_ID} seq=\"{seq}\" prev=\"{prev}\" hash=\"{hash}\" outcome=\"{outcome}\" target=\"{target}\"] {body}",
        ts = r.ts,
        seq = r.seq,
        prev = sd(&r.prev_hash),
        hash = sd(&r.hash),
        outcome = sd(&r.outcome),
        target = sd(r.target.as_deref().unwrap_or("-")),
    );
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend_from_slice(msg.as_bytes());
    out
}

/// Whether the receiver closed the connection (or it broke) since it was last used.
fn closed(s: &TcpStream) -> bool {
    if s.set_nonblocking(true).is_err() {
        return true;
    }
    let mut b = [0u8; 1];
    let gone = match s.peek(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
    };
    let _ = s.set_nonblocking(false);
    gone
}

fn tcp(target: &str) -> std::io::Result<TcpStream> {
    let addr = target
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("the name has no address"))?;
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// The CAs a TLS receiver's certificate must chain to: the admin's file (root's, like the
/// policy, or a user could choose whom Keyward trusts) or the system's.
fn roots(ca: Option<&Path>) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    match ca {
        Some(path) => {
            keyward_core::policy::check_trusted(path, crate::service::policy::ADMIN_UID)
                .map_err(|e| e.to_string())?;
            let unreadable = |e: rustls::pki_types::pem::Error| {
                format!("cannot read the CA file {}: {e}", path.display())
            };
            for cert in CertificateDer::pem_file_iter(path).map_err(unreadable)? {
                store
                    .add(cert.map_err(unreadable)?)
                    .map_err(|e| format!("the CA file {}: {e}", path.display()))?;
            }
            if store.is_empty() {
                return Err(format!(
                    "the CA file {} holds no certificate",
                    path.display()
                ));
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = store.add(cert);
            }
            if store.is_empty() {
                return Err("no system CA certificates (install ca-certificates, or name the receiver's CA with syslog_ca)".into());
            }
        }
    }
    Ok(store)
}

fn connect(target: &Target) -> Result<Conn, String> {
    let (addr, ca) = match target {
        Target::Journal { namespace } => {
            let path = match namespace {
                None => "/run/systemd/journal/socket".to_owned(),
                Some(n) => format!("/run/systemd/journal.{n}/socket"),
            };
            let s = UnixDatagram::unbound().map_err(|e| e.to_string())?;
            s.connect(&path).map_err(|e| format!("{path}: {e}"))?;
            s.set_write_timeout(Some(Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            return Ok(Conn::Journal(s));
        }
        Target::Syslog { addr, tls: None } => {
            return tcp(addr).map(Conn::Tcp).map_err(|e| e.to_string());
        }
        Target::Syslog {
            addr,
            tls: Some(ca),
        } => (addr, ca),
    };
    let host = addr
        .rsplit_once(':')
        .map_or(addr.as_str(), |(h, _)| h)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host} is not a name TLS can check: {e}"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots(ca.as_deref())?)
        .with_no_client_auth();
    let mut sock = tcp(addr).map_err(|e| e.to_string())?;
    let mut conn = ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    // The handshake here, so a certificate the policy does not trust is the reason shown.
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    while conn.is_handshaking() {
        conn.complete_io(&mut sock)
            .map_err(|e| format!("TLS handshake: {e}"))?;
    }
    sock.set_read_timeout(None).map_err(|e| e.to_string())?;
    Ok(Conn::Tls(Box::new(StreamOwned::new(conn, sock))))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or_else(|| "-".to_owned())
}

/// Starts the forwarders, one per kind of receiver; each follows the policy (none, one
/// receiver, another) as it changes.
pub fn spawn(agent: Arc<Agent>) {
    for (sink, name) in [
        (Sink::Syslog, "keyward-syslog"),
        (Sink::Journal, "keyward-journal"),
    ] {
        let agent = Arc::clone(&agent);
        let started = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(&agent, sink));
        if let Err(e) = started {
            warn!("the audit trail is not forwarded ({name}): cannot start its thread: {e}");
        }
    }
}

fn run(agent: &Agent, sink: Sink) {
    let host = hostname();
    let pid = std::process::id();
    let mut conn: Option<(Target, Conn)> = None;
    let mut backoff = POLL;
    loop {
        std::thread::sleep(backoff.min(MAX_BACKOFF));
        let Some(receiver) = agent
            .policy()
            .forward_targets()
            .into_iter()
            .find(|t| t.sink() == sink)
        else {
            conn = None;
            agent.set_forwarding(sink, None);
            backoff = POLL;
            continue;
        };
        let target = receiver.name();
        let sent = agent
            .read_setting(&setting(&target))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0i64);
        // A connection to another receiver, or one the receiver closed, is dropped.
        if conn
            .as_mut()
            .is_some_and(|(t, s)| *t != receiver || s.closed())
        {
            conn = None;
        }
        let rows = match agent.audit_rows_after(sent, BATCH) {
            Ok(r) => r,
            Err(e) => {
                warn!("cannot read the audit trail to forward: {e}");
                backoff = MAX_BACKOFF;
                continue;
            }
        };
        if rows.is_empty() {
            agent.set_forwarding(
                sink,
                Some(Forwarding {
                    target: target.clone(),
                    sent_seq: sent,
                    error: None,
                }),
            );
            backoff = POLL;
            continue;
        }
        if conn.is_none() {
            match connect(&receiver) {
                Ok(s) => {
                    info!(%target, from = sent + 1, "forwarding the audit trail");
                    conn = Some((receiver.clone(), s));
                }
                Err(e) => {
                    let error = format!("cannot reach {target}: {e}");
                    warn!("{error} (retried; nothing is lost, the catalog keeps every record)");
                    agent.set_forwarding(
                        sink,
                        Some(Forwarding {
                            target: target.clone(),
                            sent_seq: sent,
                            error: Some(error),
                        }),
                    );
                    backoff = (backoff * 2).max(Duration::from_secs(1));
                    continue;
                }
            }
        }
        let Some((_, stream)) = conn.as_mut() else {
            continue;
        };
        let mut last = sent;
        let mut error = None;
        for r in &rows {
            if let Err(e) = stream.send(r, &host, pid) {
                error = Some(format!("sending to {target} failed: {e}"));
                break;
            }
            last = r.seq;
        }
        if last != sent {
            if let Err(e) = agent.write_setting(&setting(&target), &last.to_string()) {
                warn!("cannot record how far the audit trail was forwarded: {e}");
            }
        }
        if error.is_some() {
            conn = None;
            backoff = Duration::from_secs(1);
        } else {
            // More may be waiting: look again at once.
            backoff = if rows.len() == BATCH as usize {
                Duration::ZERO
            } else {
                POLL
            };
        }
        agent.set_forwarding(
            sink,
            Some(Forwarding {
                target,
                sent_seq: last,
                error,
            }),
        );
    }
}

/// The filter for the records after `seq`, oldest first.
pub(crate) fn after(seq: i64, limit: u32) -> AuditFilter {
    AuditFilter {
        after_seq: Some(seq),
        limit,
        ..AuditFilter::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_one_octet_counted_rfc5424_message_with_its_place_in_the_chain() {
        let r = ActivityRecord::from(keyward_core::catalog::AuditRow {
            seq: 42,
            ts: "2026-12-02T10:00:00Z".into(),
            action: "issue".into(),
            target: Some("pr\"od]".into()),
            outcome: "ok".into(),
            actor: "{}".into(),
            detail: "{}".into(),
            prev_hash: "a".repeat(64),
            hash: "b".repeat(64),
        });
        let framed = String::from_utf8(frame(&r, "laptop", 7)).expect("utf-8");
        let (len, msg) = framed.split_once(' ').expect("length first");
        assert_eq!(len.parse::<usize>().expect("a number"), msg.len());
        assert!(msg.starts_with("<86>1 2026-12-02T10:00:00Z laptop keyward 7 issue [keyward@32473 seq=\"42\" prev=\"aaaa"), "{msg}");
        assert!(msg.contains(r#"target="pr\"od\]"]"#), "escaped: {msg}");
        let json: serde_json::Value =
            serde_json::from_str(msg.split_once("] ").expect("body").1).expect("json body");
        assert_eq!(json["action"], "issue");
    }

    #[test]
    fn a_journal_entry_carries_the_chain_as_fields_and_frames_a_value_with_a_newline() {
        let mut r = ActivityRecord::from(keyward_core::catalog::AuditRow {
            seq: 7,
            ts: "2026-12-02T10:00:00Z".into(),
            action: "issue".into(),
            target: Some("prod".into()),
            outcome: "ok".into(),
            actor: "{}".into(),
            detail: "{}".into(),
            prev_hash: "a".repeat(64),
            hash: "b".repeat(64),
        });
        r.summary = "two\nlines".into();
        let e = journal_entry(&r);
        let text = String::from_utf8_lossy(&e);
        assert!(text.contains("\nKEYWARD_SEQ=7\n"), "{text}");
        assert!(text.contains(&format!("\nKEYWARD_HASH={}\n", "b".repeat(64))));
        assert!(text.contains("\nSYSLOG_IDENTIFIER=keyward\n"));
        let mut want = b"MESSAGE\n".to_vec();
        want.extend_from_slice(&9u64.to_le_bytes());
        want.extend_from_slice(b"two\nlines\n");
        assert!(
            e.starts_with(&want),
            "binary form for a value with a newline"
        );
    }
}
