//! Durations on the command line (`--auto-lock 15m`), for `keyward` and `keyward-agent` alike.

use std::time::Duration;

/// A number of seconds, or a duration such as 90s, 15m or 1h.
pub fn parse(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (use e.g. 90s, 15m, 1h)"))
}
