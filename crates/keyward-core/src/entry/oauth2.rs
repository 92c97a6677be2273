//! OAuth2 client entries: the client's settings (id, token and introspection endpoints,
//! scopes, authentication method) and their checks.

use super::*;

/// How an OAuth2 client proves itself to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`), the method every server must support.
    #[default]
    Basic,
    /// Id and secret in the form body (`client_secret_post`).
    Post,
}

impl ClientAuth {
    /// The registered method name (`client_secret_basic` / `client_secret_post`).
    pub fn method_name(self) -> &'static str {
        match self {
            ClientAuth::Basic => "client_secret_basic",
            ClientAuth::Post => "client_secret_post",
        }
    }
}

/// Non-secret settings of an OAuth2 client entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// The client identifier (public, shown).
    pub client_id: String,
    /// The authorization server's token endpoint.
    pub token_url: String,
    /// Scopes asked for; the server's default for the client when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Client authentication method.
    #[serde(default, skip_serializing_if = "is_default_auth")]
    pub auth: ClientAuth,
    /// Token introspection endpoint (RFC 7662), used by "test this key" to confirm whose the
    /// token is and what it may do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_url: Option<String>,
}

fn is_default_auth(a: &ClientAuth) -> bool {
    *a == ClientAuth::Basic
}

/// Checks an OAuth2 client secret.
pub fn validate_client_secret(secret: &str) -> Result<(), EntryError> {
    // RFC 6749 Appendix A: client_secret is VSCHAR (printable ASCII and space); servers refuse
    // anything else in the Basic header, so say so here rather than at the first token.
    if secret.is_empty() || secret.len() > 4096 || !secret.chars().all(|c| (' '..='~').contains(&c))
    {
        return Err(EntryError::ClientSecret);
    }
    Ok(())
}

/// Checks an endpoint URL: https, or plain http only to loopback; nothing that would put
/// credentials or a fragment in it.
fn validate_oauth_url(field: &'static str, raw: &str) -> Result<(), EntryError> {
    let bad = || EntryError::OAuthUrl {
        field,
        url: printable(raw),
    };
    if raw.len() > 2048 || raw.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad());
    }
    let url = url::Url::parse(raw).map_err(|_| bad())?;
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
    if !scheme_ok
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return Err(bad());
    }
    Ok(())
}

/// Checks the non-secret OAuth2 settings.
pub fn validate_oauth2_config(cfg: &OAuth2Config) -> Result<(), EntryError> {
    let id = &cfg.client_id;
    // RFC 6749 Appendix A: client_id is VSCHAR (printable ASCII and space).
    if id.is_empty()
        || id.len() > 255
        || id.trim() != id
        || !id.chars().all(|c| (' '..='~').contains(&c))
    {
        return Err(EntryError::ClientId);
    }
    validate_oauth_url("token URL", &cfg.token_url)?;
    if let Some(u) = &cfg.introspection_url {
        validate_oauth_url("introspection URL", u)?;
    }
    if cfg.scopes.len() > 32 {
        return Err(EntryError::TooManyScopes);
    }
    for scope in &cfg.scopes {
        // RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ).
        let ok = (1..=128).contains(&scope.len())
            && scope
                .chars()
                .all(|c| ('!'..='~').contains(&c) && c != '"' && c != '\\');
        if !ok {
            return Err(EntryError::Scope(printable(scope)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod oauth2_tests {
    use super::*;

    fn cfg() -> OAuth2Config {
        OAuth2Config {
            client_id: "ci-bot".into(),
            token_url: "https://auth.example.com/oauth/token".into(),
            scopes: vec!["deploy:read".into()],
            ..Default::default()
        }
    }

    #[test]
    fn endpoints_must_be_https_or_loopback() {
        assert!(validate_oauth2_config(&cfg()).is_ok());
        for (url, ok) in [
            ("http://127.0.0.1:8080/token", true),
            ("http://localhost:9000/token", true),
            ("http://[::1]:9000/token", true),
            ("http://auth.example.com/token", false),
            ("http://127.0.0.1.evil.example/token", false),
            ("https://user:pw@auth.example.com/token", false),
            ("https://auth.example.com/token#frag", false),
            ("ftp://auth.example.com/token", false),
            ("https://auth.example.com/to ken", false),
            ("https://auth.example.com/token\r\nX: y", false),
            ("not a url", false),
        ] {
            let mut c = cfg();
            c.token_url = url.into();
            assert_eq!(validate_oauth2_config(&c).is_ok(), ok, "{url}");
            let mut c = cfg();
            c.introspection_url = Some(url.into());
            assert_eq!(
                validate_oauth2_config(&c).is_ok(),
                ok,
                "introspection {url}"
            );
        }
    }

    #[test]
    fn client_id_and_scopes_carry_no_control_characters() {
        for id in ["", " ci", "ci\n", "ci\0x", &"a".repeat(256)] {
            let mut c = cfg();
            c.client_id = id.into();
            assert_eq!(
                validate_oauth2_config(&c),
                Err(EntryError::ClientId),
                "{id:?}"
            );
        }
        let mut c = cfg();
        c.client_id = "0oa1b2c3d4 e5f6".into();
        assert!(
            validate_oauth2_config(&c).is_ok(),
            "VSCHAR allows inner spaces"
        );
        for scope in ["", "a b", "a\"b", "a\\b", "a\nb"] {
            let mut c = cfg();
            c.scopes = vec![scope.into()];
            assert!(
                matches!(validate_oauth2_config(&c), Err(EntryError::Scope(_))),
                "{scope:?}"
            );
        }
        let mut c = cfg();
        c.scopes = vec!["api://x/.default".into(), "openid".into()];
        assert!(validate_oauth2_config(&c).is_ok());
        c.scopes = (0..33).map(|i| format!("s{i}")).collect();
        assert_eq!(validate_oauth2_config(&c), Err(EntryError::TooManyScopes));
        assert!(validate_client_secret("s3cr3t").is_ok());
        assert!(validate_client_secret("").is_err());
        assert!(validate_client_secret("line\nbreak").is_err());
        assert!(validate_client_secret("caf\u{e9}").is_err(), "not VSCHAR");
        assert!(validate_client_secret("a b+/:%&=~").is_ok());
    }

    #[test]
    fn oauth2_secret_round_trip_and_kind_name() {
        let s = SecretValue::OAuth2 {
            client_secret: SecretString::from("kw-client-secret-canary"),
        };
        assert!(!format!("{s:?}").contains("canary"));
        assert_eq!(s.kind(), EntryKind::OAuth2);
        let sealed = s.to_sealed_plaintext("id", &EntryConfig::default());
        match SecretValue::from_plaintext(&sealed).map(|(v, _)| v) {
            Some(SecretValue::OAuth2 { client_secret }) => {
                assert_eq!(client_secret.expose_secret(), "kw-client-secret-canary")
            }
            other => panic!("wrong kind {other:?}"),
        }
        assert_eq!(EntryKind::parse("oauth2"), Some(EntryKind::OAuth2));
        assert_eq!(
            serde_json::to_string(&EntryKind::OAuth2).expect("json"),
            "\"oauth2\""
        );
        // The default method is not written out, so older catalogs read the same.
        let json = serde_json::to_string(&cfg()).expect("json");
        assert!(!json.contains("auth\""), "{json}");
        let back: OAuth2Config = serde_json::from_str(&json).expect("parse");
        assert_eq!(back.auth, ClientAuth::Basic);
    }
}
