//! `keyward audit list`: the audit trail filtered by key, event, client and time, shown or
//! exported as JSON lines or CSV. The agent filters (with indexes); this only asks and prints,
//! page by page for `--all`, so a trail of a million rows streams out in constant memory.

use std::io::Write;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use keyward_agent::activity::ActivityRecord;
use keyward_agent::protocol::AuditQuery;

/// How `audit list` writes the rows.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    /// One line per record, for people.
    Text,
    /// One JSON object per line (the whole record: actor chain, detail, chain hash).
    Jsonl,
    /// One row per record, for a spreadsheet.
    Csv,
}

/// `keyward audit list` options.
#[derive(Args)]
pub struct ListArgs {
    /// Only records about this key or profile.
    #[arg(long)]
    key: Option<String>,
    /// Only this event, or family of events (`issue`, `grant`, `policy`, `unlock`, …).
    #[arg(long)]
    action: Option<String>,
    /// Only records whose client mentions this (part of a program's path: `terraform`).
    #[arg(long)]
    client: Option<String>,
    /// From this time: RFC 3339, a date (2026-12-01, UTC), or a time ago (24h, 7d).
    #[arg(long)]
    since: Option<String>,
    /// Before this time (same forms as --since).
    #[arg(long)]
    until: Option<String>,
    /// The newest this many (at most 10,000; --all for every record).
    #[arg(short = 'n', long, default_value_t = 100, conflicts_with = "all")]
    lines: u32,
    /// Every matching record, oldest first.
    #[arg(long)]
    all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
    format: AuditFormat,
}

/// A time as the agent takes it (RFC 3339) from what a person types.
fn when(name: &str, s: &str) -> Result<String> {
    let rfc = time::format_description::well_known::Rfc3339;
    if time::OffsetDateTime::parse(s, &rfc).is_ok() {
        return Ok(s.to_owned());
    }
    let day = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, &day) {
        return Ok(d.midnight().assume_utc().format(&rfc)?);
    }
    if let Ok(ago) = humantime::parse_duration(s) {
        let secs = i64::try_from(ago.as_secs()).unwrap_or(i64::MAX);
        let t = time::OffsetDateTime::now_utc()
            .checked_sub(time::Duration::seconds(secs))
            .context("that is too long ago")?;
        return Ok(t.format(&rfc)?);
    }
    bail!("--{name} {s:?}: give an RFC 3339 time (2026-12-01T09:00:00Z), a date (2026-12-01) or a time ago (24h, 7d)")
}

/// Runs `keyward audit list`.
pub fn list(a: ListArgs) -> Result<()> {
    const PAGE: u32 = 5_000;
    let mut query = AuditQuery {
        key: a.key,
        action: a.action,
        client: a.client,
        since: a.since.as_deref().map(|s| when("since", s)).transpose()?,
        until: a.until.as_deref().map(|s| when("until", s)).transpose()?,
        after_seq: a.all.then_some(0),
        limit: if a.all { PAGE } else { a.lines },
    };
    let mut client = crate::connect::agent()?;
    // Only one of the two writes, by the format; each buffers, and is flushed at the end.
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut csv =
        (a.format == AuditFormat::Csv).then(|| csv::Writer::from_writer(std::io::stdout()));
    if let Some(w) = csv.as_mut() {
        w.write_record(COLUMNS)?;
    }
    loop {
        let rows = client.audit_query(query.clone())?;
        let last = rows.last().map(|r| r.seq);
        for r in &rows {
            match (a.format, csv.as_mut()) {
                (AuditFormat::Text, _) => writeln!(out, "{}", text(r))?,
                (AuditFormat::Jsonl, _) => writeln!(out, "{}", serde_json::to_string(r)?)?,
                (AuditFormat::Csv, Some(w)) => w.write_record(fields(r).iter().map(|f| cell(f)))?,
                (AuditFormat::Csv, None) => {}
            }
        }
        match (a.all, last) {
            (true, Some(seq)) if rows.len() == PAGE as usize => query.after_seq = Some(seq),
            _ => break,
        }
    }
    if let Some(w) = csv.as_mut() {
        w.flush()?;
    }
    out.flush()?;
    Ok(())
}

const COLUMNS: [&str; 9] = [
    "seq", "ts", "action", "target", "outcome", "client", "summary", "detail", "hash",
];

fn fields(r: &ActivityRecord) -> [String; 9] {
    [
        r.seq.to_string(),
        r.ts.clone(),
        r.action.clone(),
        r.target.clone().unwrap_or_default(),
        r.outcome.clone(),
        r.client.clone().unwrap_or_default(),
        r.summary.clone(),
        r.detail.to_string(),
        r.hash.clone(),
    ]
}

/// A cell a spreadsheet would run as a formula gets a leading `'` (names are anyone's text).
fn cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

fn text(r: &ActivityRecord) -> String {
    let client = r.client.as_deref().unwrap_or("-");
    let line = format!(
        "{:>6} {} {:<14} {:<10} {} ({client})",
        r.seq, r.ts, r.action, r.outcome, r.summary
    );
    keyward_agent::text::terminal_safe(&line, 2000)
}
