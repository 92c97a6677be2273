//! The files as the AWS CLI reads them: lines that keep their terminators, each classified as
//! botocore's `RawConfigParser` would (section header, option, continuation, comment, blank).

use super::*;

/// How the AWS CLI reads one line (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Line<'a> {
    /// Empty or whitespace only.
    Blank,
    /// A whole-line `#` or `;` comment.
    Comment,
    /// `[name]`, with the name's inner whitespace collapsed (`[ profile  dev ]` → `profile dev`).
    Header(String),
    /// `key = value` or `key: value`, both trimmed.
    Option { key: &'a str, value: &'a str },
    /// More of the value of the option on line `owner`.
    Continuation { owner: usize },
    /// Anything else (the AWS CLI rejects such a file; we leave the line alone).
    Other,
}

/// Lines with their terminators kept, so joining them gives back the exact text.
pub(super) fn lines_keep(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// Classifies every line as `RawConfigParser._read` does.
pub(super) fn classify<'a>(lines: &[&'a str]) -> Vec<Line<'a>> {
    let mut out = Vec::with_capacity(lines.len());
    let mut in_section = false;
    let mut option: Option<usize> = None;
    let mut indent_level = 0;
    for (i, line) in lines.iter().enumerate() {
        let s = line.trim();
        if s.is_empty() {
            out.push(Line::Blank);
            continue;
        }
        if s.starts_with('#') || s.starts_with(';') {
            out.push(Line::Comment);
            continue;
        }
        let indent = line.chars().take_while(|c| c.is_whitespace()).count();
        if let Some(owner) = option.filter(|_| indent > indent_level) {
            out.push(Line::Continuation { owner });
            continue;
        }
        indent_level = indent;
        if let Some(name) = header_name(s) {
            in_section = true;
            option = None;
            out.push(Line::Header(name));
        } else if let Some((key, value)) = split_option(s).filter(|_| in_section) {
            option = Some(i);
            out.push(Line::Option { key, value });
        } else {
            out.push(Line::Other);
        }
    }
    out
}

/// The section name of a trimmed header line: configparser's `\[(?P<header>.+)\]`, which ends
/// at the last `]` and ignores anything after it.
pub(super) fn header_name(s: &str) -> Option<String> {
    let rest = s.strip_prefix('[')?;
    let inner = &rest[..rest.rfind(']')?];
    if inner.is_empty() {
        return None;
    }
    Some(inner.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Splits a trimmed option line at its first `=` or `:`.
pub(super) fn split_option(s: &str) -> Option<(&str, &str)> {
    let at = s.find(['=', ':'])?;
    let key = s[..at].trim_end();
    if key.is_empty() {
        return None;
    }
    Some((key, s[at + 1..].trim()))
}

/// Line range (start, end exclusive) of the last section whose name satisfies `wanted`, header
/// included.
pub(super) fn last_section(
    kinds: &[Line],
    wanted: impl Fn(&str) -> bool,
) -> Option<(usize, usize)> {
    let start = kinds
        .iter()
        .rposition(|k| matches!(k, Line::Header(n) if wanted(n)))?;
    let end = kinds[start + 1..]
        .iter()
        .position(|k| matches!(k, Line::Header(_)))
        .map_or(kinds.len(), |i| start + 1 + i);
    Some((start, end))
}

/// The config-file section of `profile`: `[default]` (or the also-accepted `[profile default]`)
/// for "default", `[profile NAME]` otherwise. When several sections name the profile (which
/// configparser allows if they are spelled differently, e.g. `[profile  dev]`), botocore's
/// `build_profile_map` keeps the last one, so that is the one returned.
pub(super) fn config_section(kinds: &[Line], profile: &str) -> Option<(usize, usize)> {
    if profile == "default" {
        last_section(kinds, |n| n == "default" || n == "profile default")
    } else {
        last_section(kinds, |n| n.strip_prefix("profile ") == Some(profile))
    }
}

/// Whether `kind` is an option named `name`; configparser lowercases option names.
pub(super) fn is_option(kind: &Line, name: &str) -> bool {
    matches!(kind, Line::Option { key, .. } if key.eq_ignore_ascii_case(name))
}

/// The file's line ending: that of its first line, `\n` if it has no complete line.
pub(super) fn line_ending(lines: &[&str]) -> &'static str {
    match lines.iter().find(|l| l.ends_with('\n')) {
        Some(l) if l.ends_with("\r\n") => "\r\n",
        _ => "\n",
    }
}

/// The terminator a line ends with (`\r\n`, `\n`, or none for an unterminated last line).
pub(super) fn terminator(line: &str) -> &str {
    if line.ends_with("\r\n") {
        "\r\n"
    } else if line.ends_with('\n') {
        "\n"
    } else {
        ""
    }
}

/// The whitespace a line starts with.
pub(super) fn leading_space(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

pub(super) fn check_line(what: &'static str, v: &str) -> Result<(), AwsFileError> {
    if v.contains(['\n', '\r', '\0']) {
        return Err(AwsFileError::BadValue {
            what,
            why: "contains a line break or NUL",
        });
    }
    Ok(())
}
