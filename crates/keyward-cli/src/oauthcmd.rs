//! OAuth2 adapters: `add oauth2` (store a client) and `cred oauth2` (print an access token for a
//! tool: bare, as an `Authorization:` header line, or as JSON with its expiry).

use std::io::Write;

use anyhow::{bail, Result};
use keyward_agent::protocol::{MetaInput, OAuth2KeyInput, WireSecret};
use keyward_core::ClientAuth;
use secrecy::ExposeSecret;
use serde::Serialize;

use crate::prompt::Prompter;

/// What `cred oauth2` prints.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Format {
    /// The access token alone, e.g. for `curl --oauth2-bearer "$(keyward cred oauth2 …)"`.
    Token,
    /// `Authorization: Bearer …`, e.g. for `curl -H @-`.
    Header,
    /// `{"access_token","token_type","expires_at","scope"}`.
    Json,
}

/// Arguments of `keyward add oauth2`.
pub struct AddOAuth2 {
    /// Name.
    pub name: String,
    /// Client id.
    pub client_id: String,
    /// Token endpoint.
    pub token_url: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Client authentication.
    pub auth: ClientAuth,
    /// Introspection endpoint.
    pub introspection_url: Option<String>,
}

/// `keyward add oauth2`.
pub fn add(input_fd: Option<u32>, a: AddOAuth2, meta: MetaInput) -> Result<()> {
    keyward_core::entry::validate_name(&a.name)?;
    let mut p = Prompter::new(input_fd)?;
    let secret = p.secret("OAuth2 client secret: ", "client secret")?;
    let entry = crate::connect::agent()?
        .add_oauth2(
            &a.name,
            meta,
            OAuth2KeyInput {
                client_id: a.client_id.trim().to_owned(),
                client_secret: WireSecret::new(secret.expose_secret().trim().to_owned()),
                token_url: a.token_url.trim().to_owned(),
                scopes: a.scopes,
                auth: Some(a.auth),
                introspection_url: a.introspection_url.map(|u| u.trim().to_owned()),
            },
        )?
        .meta;
    let client = entry
        .config
        .oauth2
        .as_ref()
        .map(|c| c.client_id.as_str())
        .unwrap_or("");
    println!(
        "Stored OAuth2 client '{}' ({client}). Next: `keyward test {}` checks it; tools get tokens from `keyward cred oauth2 --profile {}`.",
        entry.name, entry.name, entry.name
    );
    Ok(())
}

#[derive(Serialize)]
struct JsonOut<'a> {
    access_token: &'a str,
    token_type: &'a str,
    expires_at: Option<&'a str>,
    scope: Option<&'a str>,
}

/// `keyward cred oauth2 --profile NAME`.
pub fn cred(input_fd: Option<u32>, profile: &str, format: Format) -> Result<()> {
    let t = crate::awscmd::obtain(input_fd, profile, "OAuth2 key", |c, _mfa, approval| {
        c.cred_oauth2(profile, approval)
    })?;
    let token = t.access_token.expose();
    // The agent checks this too; an adapter never emits a line break or NUL (header injection).
    let visible = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic());
    if !visible(token) || !visible(&t.token_type) {
        bail!("the token for '{profile}' holds characters a tool cannot use: not printed");
    }
    let out = zeroize::Zeroizing::new(match format {
        Format::Token => format!("{token}\n"),
        Format::Header => format!("Authorization: {} {token}\n", t.token_type),
        Format::Json => {
            let mut s = serde_json::to_string(&JsonOut {
                access_token: token,
                token_type: &t.token_type,
                expires_at: t.expires_at.as_deref(),
                scope: t.scope.as_deref(),
            })?;
            s.push('\n');
            s
        }
    });
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
