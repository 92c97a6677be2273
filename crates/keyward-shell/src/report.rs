//! The key directory, for admins: every key with what it is for, who owns it, its dates, where it
//! stands and the rule that decided, as JSON, CSV or one self-contained HTML page. Metadata only
//! (never a secret), and the page loads nothing: its content security policy allows no network
//! at all, only its own inline style and the few lines that sort its columns.

use std::io::Write;
use std::path::Path;

use keyward_agent::protocol::{Listed, PolicyInfo};
use serde::Serialize;

use crate::ShellError;

/// How `keyward report` writes the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One JSON document: when, the policy, and the keys.
    Json,
    /// One row per key (RFC 4180), for a spreadsheet.
    Csv,
    /// One page to open in a browser or attach to a ticket.
    Html,
}

/// One key in the directory.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Row {
    /// Its name.
    pub name: String,
    /// `aws`, `oauth2`, `static`.
    pub kind: &'static str,
    /// Who is responsible for it.
    pub owner: Option<String>,
    /// What it is for.
    pub purpose: Option<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// When it was added.
    pub created: String,
    /// When its secret was last replaced.
    pub rotated: Option<String>,
    /// Its own rotation interval.
    pub rotate_every_days: Option<u32>,
    /// When it expires.
    pub expires: Option<String>,
    /// When it last issued a credential (Keyward's record).
    pub last_used: Option<String>,
    /// When the provider last saw it used, other than Keyward asking (AWS keys).
    pub provider_last_used: Option<String>,
    /// What the provider said, in words, and when it was asked; `None` until it is.
    pub provider_use: Option<String>,
    /// How many credentials it has issued.
    pub uses: u64,
    /// `ok`, `due_soon`, `overdue`, `expired`, `unused`.
    pub state: &'static str,
    /// Why, in words.
    pub reason: Option<String>,
    /// The part of the admin policy that decided.
    pub rule: Option<String>,
    /// Whether the policy withholds credentials from it now.
    pub blocked: bool,
}

impl From<&Listed> for Row {
    fn from(l: &Listed) -> Self {
        let m = &l.meta;
        Row {
            name: m.name.clone(),
            kind: m.kind.as_str(),
            owner: m.owner.clone(),
            purpose: m.purpose.clone(),
            tags: m.tags.clone(),
            created: m.created.clone(),
            rotated: m.rotated.clone(),
            rotate_every_days: m.rotation_interval_days,
            expires: m.expires.clone(),
            last_used: m.last_used.clone(),
            provider_last_used: m.provider_use.as_ref().and_then(|u| u.used.clone()),
            provider_use: m.provider_use.as_ref().map(|u| u.summary()),
            uses: m.use_count,
            state: l.standing.state.as_str(),
            reason: l.standing.reason.clone(),
            rule: l.standing.rule.clone(),
            blocked: l.standing.blocked,
        }
    }
}

/// The directory of `keys` in `format`, as of `at` (RFC 3339), under `policy`.
pub fn render(
    keys: &[Listed],
    policy: &PolicyInfo,
    at: &str,
    format: Format,
) -> Result<String, ShellError> {
    let rows: Vec<Row> = keys.iter().map(Row::from).collect();
    match format {
        Format::Json => {
            let doc = serde_json::json!({
                "generated": at,
                "policy": { "path": policy.path, "sha256": policy.sha256 },
                "keys": rows,
            });
            serde_json::to_string_pretty(&doc).map_err(|e| ShellError::Report(e.to_string()))
        }
        Format::Csv => csv(&rows),
        Format::Html => Ok(html(&rows, policy, at)),
    }
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, a tab or a return first)
/// gets a leading `'`, as OWASP advises: names and purposes are anyone's text.
fn cell(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_owned(),
    }
}

const COLUMNS: [&str; 17] = [
    "name",
    "kind",
    "owner",
    "purpose",
    "tags",
    "created",
    "rotated",
    "rotate_every_days",
    "expires",
    "last_used",
    "provider_last_used",
    "uses",
    "state",
    "reason",
    "rule",
    "blocked",
    "provider_use",
];

fn fields(r: &Row) -> [String; 17] {
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    [
        r.name.clone(),
        r.kind.to_owned(),
        opt(&r.owner),
        opt(&r.purpose),
        r.tags.join(" "),
        r.created.clone(),
        opt(&r.rotated),
        r.rotate_every_days
            .map(|d| d.to_string())
            .unwrap_or_default(),
        opt(&r.expires),
        opt(&r.last_used),
        opt(&r.provider_last_used),
        r.uses.to_string(),
        r.state.to_owned(),
        opt(&r.reason),
        opt(&r.rule),
        r.blocked.to_string(),
        opt(&r.provider_use),
    ]
}

fn csv(rows: &[Row]) -> Result<String, ShellError> {
    let fail = |e: csv::Error| ShellError::Report(e.to_string());
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS).map_err(fail)?;
    for r in rows {
        w.write_record(fields(r).iter().map(|f| cell(f)))
            .map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| ShellError::Report(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| ShellError::Report(e.to_string()))
}

/// Text for HTML: the five characters that could end an element or an attribute, escaped.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page's headings: the CSV's columns but the provider's words, which are the title of its
/// date.
const HEADINGS: [&str; 16] = [
    "Name",
    "Kind",
    "Owner",
    "Purpose",
    "Tags",
    "Created",
    "Rotated",
    "Rotate every (days)",
    "Expires",
    "Last used",
    "Last used at provider",
    "Uses",
    "State",
    "Why",
    "Rule",
    "Blocked",
];

fn html(rows: &[Row], policy: &PolicyInfo, at: &str) -> String {
    let head: String = HEADINGS
        .iter()
        .enumerate()
        .map(|(i, h)| format!("<th data-col=\"{i}\" tabindex=\"0\">{}</th>", esc(h)))
        .collect();
    let body: String = rows
        .iter()
        .map(|r| {
            let cells: String = fields(r)
                .iter()
                .take(HEADINGS.len())
                .enumerate()
                .map(|(i, f)| match i {
                    // The provider's date, its words on hover.
                    10 if r.provider_use.is_some() => format!(
                        "<td class=\"date\" title=\"{}\">{}</td>",
                        esc(r.provider_use.as_deref().unwrap_or_default()),
                        esc(f.get(..10).unwrap_or(if f.is_empty() { "none" } else { f }))
                    ),
                    // Dates as days, the full time on hover (sorting by the day keeps the order).
                    5 | 6 | 8 | 9 if f.len() > 10 => format!(
                        "<td class=\"date\" title=\"{}\">{}</td>",
                        esc(f),
                        esc(f.get(..10).unwrap_or(f))
                    ),
                    12 => format!("<td class=\"state\">{}</td>", esc(&f.replace('_', " "))),
                    13 => format!("<td class=\"why\">{}</td>", esc(f)),
                    _ => format!("<td>{}</td>", esc(f)),
                })
                .collect();
            format!("<tr class=\"{}\">{cells}</tr>\n", esc(r.state))
        })
        .collect();
    let policy = match &policy.sha256 {
        Some(sha) => format!(
            "Policy: {} (sha256 {})",
            esc(&policy.path),
            esc(sha.get(..16).unwrap_or(sha))
        ),
        None => "No administrator policy".to_owned(),
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>Keyward key directory</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 24px; color: #1d2330; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border-bottom: 1px solid #dde1e8; padding: 5px 8px; text-align: left; vertical-align: top; }}
td.date, td.state {{ white-space: nowrap; }} td.why {{ min-width: 22em; }}
th {{ cursor: pointer; background: #f4f6fa; position: sticky; top: 0; }}
th[aria-sort="ascending"]::after {{ content: " ▲"; }} th[aria-sort="descending"]::after {{ content: " ▼"; }}
tr.due_soon td:nth-child(13), tr.unused td:nth-child(13) {{ background: #fdf1d8; color: #8a5a00; }}
tr.overdue td:nth-child(13), tr.expired td:nth-child(13) {{ background: #fde7e5; color: #b42318; font-weight: 600; }}
tr.ok td:nth-child(13) {{ color: #1f7a3f; }}
.muted {{ color: #667085; }}
</style></head><body>
<h1>Keyward key directory</h1>
<p class="muted">{count} keys · generated {at} · {policy} · no secrets in this page</p>
<table><thead><tr>{head}</tr></thead><tbody>
{body}</tbody></table>
<script>
document.querySelectorAll('th').forEach(function (th) {{
  function sort() {{
    var col = +th.dataset.col, asc = th.getAttribute('aria-sort') !== 'ascending';
    document.querySelectorAll('th').forEach(function (o) {{ o.removeAttribute('aria-sort'); }});
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var tbody = document.querySelector('tbody');
    var rows = Array.prototype.slice.call(tbody.rows);
    rows.sort(function (a, b) {{
      var x = a.cells[col].textContent, y = b.cells[col].textContent;
      var n = x !== '' && y !== '' && !isNaN(x) && !isNaN(y);
      var c = n ? x - y : x.localeCompare(y);
      return asc ? c : -c;
    }});
    rows.forEach(function (r) {{ tbody.appendChild(r); }});
  }}
  th.addEventListener('click', sort);
  th.addEventListener('keydown', function (e) {{ if (e.key === 'Enter') sort(); }});
}});
</script>
</body></html>
"#,
        count = rows.len(),
        at = esc(at),
    )
}

/// Writes `text` to `path` whole or not at all (a temporary file beside it, renamed over it).
pub fn write(path: &Path, text: &str) -> Result<(), ShellError> {
    let fail = |why: std::io::Error| ShellError::Write {
        path: path.to_path_buf(),
        why,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    tmp.write_all(text.as_bytes()).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    tmp.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests;
