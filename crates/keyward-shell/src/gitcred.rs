//! git's credential-helper protocol (gitcredentials(7), git-credential(1)): what git sends a
//! helper on stdin and what the helper answers on stdout.
//!
//! `key=value` lines, ended by a blank line or the end of input; no quoting, so a value is the
//! rest of its line. A value with a carriage return or NUL is refused outright, not cleaned: a
//! CR smuggled into a host or username is how credentials were once sent to the wrong server
//! (CVE-2020-5260, CVE-2024-52006). Attributes this helper does not use (`capability[]`,
//! `wwwauth[]`, `state[]`, …, as git ≥ 2.46 sends them) are accepted and ignored, as the
//! protocol asks; an answer never names a capability, so git keeps to the plain form.

use thiserror::Error;

/// The largest input read (git sends a few hundred bytes).
pub const MAX_INPUT: usize = 64 * 1024;

/// Why a helper request or answer was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum GitCredError {
    /// A value holds a CR or NUL.
    #[error("git sent a {0} with a carriage return or NUL in it: refused")]
    Control(String),
    /// A line is not `key=value`.
    #[error("git sent a line that is not key=value")]
    NotKeyValue,
    /// More input than git ever sends.
    #[error("git sent more than {MAX_INPUT} bytes")]
    TooLong,
    /// Not UTF-8.
    #[error("git sent text that is not UTF-8")]
    NotUtf8,
    /// An answer would carry a line break or NUL.
    #[error("the {0} holds a line break or NUL, which the git protocol cannot carry: not sent")]
    Unsendable(&'static str),
}

/// What git asked about (the attributes this helper reads).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Asked {
    /// `https`, `http`, …
    pub protocol: Option<String>,
    /// Host, with `:port` when not the default.
    pub host: Option<String>,
    /// Path, when `credential.useHttpPath` is set.
    pub path: Option<String>,
    /// The user name git already has.
    pub username: Option<String>,
    /// The password (in `store` and `erase`).
    pub password: Option<String>,
}

/// Reads one request as git writes it.
pub fn parse(input: &[u8]) -> Result<Asked, GitCredError> {
    if input.len() > MAX_INPUT {
        return Err(GitCredError::TooLong);
    }
    let text = std::str::from_utf8(input).map_err(|_| GitCredError::NotUtf8)?;
    let mut asked = Asked::default();
    for line in text.split('\n') {
        if line.is_empty() {
            break;
        }
        let (key, value) = line.split_once('=').ok_or(GitCredError::NotKeyValue)?;
        if value.contains(['\r', '\0']) || key.contains(['\r', '\0']) {
            return Err(GitCredError::Control(key.escape_default().to_string()));
        }
        let slot = match key {
            "protocol" => &mut asked.protocol,
            "host" => &mut asked.host,
            "path" => &mut asked.path,
            "username" => &mut asked.username,
            "password" => &mut asked.password,
            "url" => {
                // git sends the parts as well; the URL only fills what it left out.
                if let Ok(u) = url::Url::parse(value) {
                    asked.protocol.get_or_insert_with(|| u.scheme().to_owned());
                    if let Some(h) = u.host_str() {
                        let host = match u.port() {
                            Some(p) => format!("{h}:{p}"),
                            None => h.to_owned(),
                        };
                        asked.host.get_or_insert(host);
                    }
                }
                continue;
            }
            _ => continue,
        };
        *slot = Some(value.to_owned());
    }
    Ok(asked)
}

/// A credential for git: the `get` answer.
pub struct Answer<'a> {
    /// User name.
    pub username: &'a str,
    /// Password or token.
    pub password: &'a str,
    /// When git must stop using it (Unix seconds); git drops it from its memory after.
    pub expires_unix: Option<i64>,
}

/// The `get` answer's text, or why it cannot be sent.
pub fn answer(a: &Answer<'_>) -> Result<zeroize::Zeroizing<String>, GitCredError> {
    let bad = |s: &str| s.contains(['\r', '\n', '\0']);
    if bad(a.username) {
        return Err(GitCredError::Unsendable("user name"));
    }
    if bad(a.password) || a.password.is_empty() {
        return Err(GitCredError::Unsendable("password"));
    }
    let mut out = zeroize::Zeroizing::new(format!(
        "username={}\npassword={}\n",
        a.username, a.password
    ));
    if let Some(t) = a.expires_unix {
        out.push_str(&format!("password_expiry_utc={t}\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_as_git_sends_it_is_read_and_unknown_attributes_ignored() {
        let input = b"capability[]=authtype\ncapability[]=state\nprotocol=https\nhost=git.example.com:8443\nwwwauth[]=Basic realm=\"x\"\nusername=alice\n\n";
        let a = parse(input).expect("parse");
        assert_eq!(a.protocol.as_deref(), Some("https"));
        assert_eq!(a.host.as_deref(), Some("git.example.com:8443"));
        assert_eq!(a.username.as_deref(), Some("alice"));
        assert_eq!(a.path, None);
        let from_url = parse(b"url=https://h.example:444/r.git\n").expect("url");
        assert_eq!(from_url.host.as_deref(), Some("h.example:444"));
        // Input ends at the first blank line.
        let a = parse(b"host=a\n\nhost=b\n").expect("parse");
        assert_eq!(a.host.as_deref(), Some("a"));
    }

    #[test]
    fn carriage_returns_nul_and_garbage_are_refused() {
        for bad in [
            &b"host=evil.example\rhost=good.example\n"[..],
            b"protocol=https\nhost=a\0b\n",
            b"username=u\r\n",
            b"no equals sign\n",
            b"host=\xff\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse(&vec![b'a'; MAX_INPUT + 1]),
            Err(GitCredError::TooLong)
        );
    }

    #[test]
    fn an_answer_never_carries_a_line_break() {
        let ok = answer(&Answer {
            username: "token",
            password: "ghp_x",
            expires_unix: Some(1_900_000_000),
        })
        .expect("answer");
        assert_eq!(
            ok.as_str(),
            "username=token\npassword=ghp_x\npassword_expiry_utc=1900000000\n"
        );
        for (u, p) in [
            ("a\nb", "p"),
            ("u", "p\nhost=evil"),
            ("u", "p\r"),
            ("u", ""),
        ] {
            assert!(answer(&Answer {
                username: u,
                password: p,
                expires_unix: None
            })
            .is_err());
        }
    }
}
