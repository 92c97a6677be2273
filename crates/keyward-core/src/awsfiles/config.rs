//! The config file: the `credential_process` line that points a profile at Keyward, and the
//! keys in a profile that would still win over it.

use super::lines::*;
use super::*;

/// The `credential_process` command line running the `keyward` executable at `exe` for key
/// `name`: an absolute path, in double quotes when it has spaces (the AWS CLI splits on them).
pub fn credential_process_command(exe: &Path, name: &str) -> Result<String, AwsFileError> {
    let exe = exe.to_str().ok_or(AwsFileError::BadValue {
        what: "the keyward executable's path",
        why: "is not UTF-8",
    })?;
    if exe.contains('"') || exe.chars().any(char::is_control) {
        return Err(AwsFileError::BadValue {
            what: "the keyward executable's path",
            why: "has characters credential_process cannot quote",
        });
    }
    Ok(if exe.contains(' ') {
        format!("\"{exe}\" cred aws --profile {name}")
    } else {
        format!("{exe} cred aws --profile {name}")
    })
}

/// Returns `text` with profile `profile`'s `credential_process` set to `command`, every other byte kept.
///
/// An existing `credential_process` option of the section (matched without case, as the AWS CLI
/// does; any `:`/`=` spacing) is replaced in place, keeping its indentation and terminator and
/// dropping its continuation lines and any duplicates. Otherwise the line goes after the
/// section's last option (before trailing blank and comment lines, which usually introduce the
/// next section). A missing section is appended after one blank line. New lines use the file's
/// line ending.
pub fn set_credential_process(
    text: &str,
    profile: &str,
    command: &str,
) -> Result<String, AwsFileError> {
    const PROFILE: &str = "the profile name";
    check_line(PROFILE, profile)?;
    if profile.is_empty() || profile.contains(char::is_whitespace) {
        // botocore shlex-splits `profile NAME` and ignores a section that is not two words.
        return Err(AwsFileError::BadValue {
            what: PROFILE,
            why: "is empty or contains a space",
        });
    }
    check_line("the credential_process command", command)?;
    if command.trim().is_empty() {
        return Err(AwsFileError::BadValue {
            what: "the credential_process command",
            why: "is empty",
        });
    }
    let lines = lines_keep(text);
    let kinds = classify(&lines);
    let eol = line_ending(&lines);
    let Some((start, end)) = config_section(&kinds, profile) else {
        let mut out = text.to_owned();
        if let Some(last) = lines.last() {
            if !last.ends_with('\n') {
                out.push_str(eol);
            }
            if !last.trim().is_empty() {
                out.push_str(eol);
            }
        }
        let header = if profile == "default" {
            "[default]".to_owned()
        } else {
            format!("[profile {profile}]")
        };
        out.push_str(&format!(
            "{header}{eol}{CREDENTIAL_PROCESS} = {command}{eol}"
        ));
        return Ok(out);
    };

    let existing: Vec<usize> = (start + 1..end)
        .filter(|&i| is_option(&kinds[i], CREDENTIAL_PROCESS))
        .collect();
    let mut out = String::with_capacity(text.len() + command.len() + 32);
    if let Some(&first) = existing.first() {
        for (i, line) in lines.iter().enumerate() {
            let owner = match kinds[i] {
                Line::Continuation { owner } => Some(owner),
                _ => None,
            };
            if i == first {
                // The same indentation, so the lines after it keep their meaning.
                out.push_str(leading_space(line));
                out.push_str(&format!("{CREDENTIAL_PROCESS} = {command}"));
                out.push_str(terminator(line));
            } else if !existing.contains(&i) && !owner.is_some_and(|o| existing.contains(&o)) {
                out.push_str(line);
            }
        }
    } else {
        let last = (start..end)
            .rev()
            .find(|&i| !matches!(kinds[i], Line::Blank | Line::Comment))
            .unwrap_or(start);
        // Indented like the next header, so an indented header is not turned into a
        // continuation of the new line (in a file whose headers are not indented this is "").
        let indent = lines.get(end).map_or("", |l| leading_space(l));
        for (i, line) in lines.iter().enumerate() {
            out.push_str(line);
            if i == last {
                if !line.ends_with('\n') {
                    out.push_str(eol);
                }
                out.push_str(&format!("{indent}{CREDENTIAL_PROCESS} = {command}{eol}"));
            }
        }
    }
    Ok(out)
}

/// Keys in a config-file section that would conflict with credential_process — names only.
///
/// Returns each of `aws_access_key_id`, `aws_secret_access_key` and `aws_session_token` found in
/// the profile's section (matched without case), as spelled in the file, once each.
pub fn conflicting_keys(text: &str, profile: &str) -> Vec<String> {
    const CONFLICTS: [&str; 3] = [
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
    ];
    let lines = lines_keep(text);
    let kinds = classify(&lines);
    let Some((start, end)) = config_section(&kinds, profile) else {
        return Vec::new();
    };
    let mut found: Vec<String> = Vec::new();
    for kind in &kinds[start + 1..end] {
        if let Line::Option { key, .. } = kind {
            if CONFLICTS.iter().any(|c| is_option(kind, c)) && !found.iter().any(|f| f == key) {
                found.push((*key).to_owned());
            }
        }
    }
    found
}
