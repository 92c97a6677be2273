//! What the agent's integration tests share.

use keyward_agent::protocol::WireSecret;

/// The passphrase of every test vault.
pub const PASS: &str = "orbit-maple-quartz-lantern-7";

/// A wire secret from a literal.
pub fn w(s: &str) -> WireSecret {
    WireSecret::new(s.to_owned())
}

/// Unix time now, for TOTP codes.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}
