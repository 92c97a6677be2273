//! OAuth2 provider: turns a stored client id and secret into an access token with the
//! client-credentials grant (RFC 6749 §4.4), through the `oauth2` crate, and checks a token with
//! the server's introspection endpoint (RFC 7662) for "test this key".
//!
//! Tokens are cached per profile like STS sessions ([`crate::cache`]). A token the server issues
//! with under 20 minutes of life is still handed out once (the server chose that lifetime and the
//! tool is told the expiry) but never cached; one without a stated expiry is not cached either.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use keyward_core::{ClientAuth, EntryKind, EntryMeta, OAuth2Config, SecretValue};
use oauth2::basic::{BasicClient, BasicErrorResponse, BasicTokenType};
use oauth2::{
    AccessToken, AsyncHttpClient, AuthType, ClientId, ClientSecret, HttpClientError, HttpRequest,
    HttpResponse, IntrospectionUrl, RequestTokenError, Scope, TokenIntrospectionResponse,
    TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use time::OffsetDateTime;

use crate::cache::{CredCache, Issued};
use crate::provider::Provider;

/// An access token as the authorization server issued it.
#[derive(Clone)]
pub struct Token {
    /// The access token.
    pub access_token: SecretString,
    /// Its type as the server named it (`Bearer`).
    pub token_type: String,
    /// RFC 3339 expiry, when the server said.
    pub expires_at: Option<String>,
    /// Granted scope (space-separated), when the server said.
    pub scope: Option<String>,
    /// Whether this came from the agent's cache.
    pub cached: bool,
}

/// The per-profile access-token cache.
pub type OAuthCache = CredCache<Token>;

/// The OAuth2 client-credentials grant as a [`Provider`].
#[derive(Default)]
pub struct ClientCredentials {
    cache: OAuthCache,
    /// Made at the first request and kept for the agent's life: it pools connections and reads
    /// the CA store once.
    http: std::sync::OnceLock<reqwest::Client>,
}

impl ClientCredentials {
    /// The HTTPS client for authorization servers.
    pub fn http(&self) -> Result<&reqwest::Client, OAuthError> {
        if let Some(c) = self.http.get() {
            return Ok(c);
        }
        let c = http_client().map_err(OAuthError::Client)?;
        Ok(self.http.get_or_init(|| c))
    }
}

impl Provider for ClientCredentials {
    type Credential = Token;
    type Error = OAuthError;
    type Input = ();
    const KIND: EntryKind = EntryKind::OAuth2;

    fn cache(&self) -> &OAuthCache {
        &self.cache
    }

    /// A token's lifetime is the server's to choose, so the question names none.
    fn ttl_secs(&self, _meta: &EntryMeta) -> Option<u64> {
        None
    }

    async fn issue(
        &self,
        meta: &EntryMeta,
        secret: SecretValue,
        (): (),
    ) -> Result<(Token, Option<OffsetDateTime>), OAuthError> {
        let (Some(cfg), SecretValue::OAuth2 { client_secret }) =
            (meta.config.oauth2.as_ref(), secret)
        else {
            return Err(OAuthError::NotAClient(meta.name.clone()));
        };
        issue(self.http()?, &meta.name, cfg, &client_secret).await
    }

    fn audit_detail(&self, meta: &EntryMeta, t: &Token) -> serde_json::Value {
        serde_json::json!({
            "kind": "oauth2",
            "client_id": meta.config.oauth2.as_ref().map(|c| c.client_id.clone()),
            "expires_at": t.expires_at,
            "scope": t.scope,
            "cached": t.cached,
        })
    }
}

impl Issued for Token {
    fn set_cached(&mut self) {
        self.cached = true;
    }
}

/// A token that lives shorter than this is refused as unusable.
const MIN_LIFETIME: time::Duration = time::Duration::minutes(1);
/// Longest access token handed out (a JWT with many claims is a few KiB).
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Errors from the authorization server.
#[derive(Debug, Error)]
pub enum OAuthError {
    /// The HTTPS client could not be made (the system's CA store).
    #[error("cannot make the HTTPS client for authorization servers: {0}")]
    Client(String),
    /// The entry is not a whole OAuth2 client (its settings or its secret are of another kind).
    #[error("'{0}' is not an OAuth2 client with OAuth2 settings")]
    NotAClient(String),
    /// The server answered with an OAuth2 error.
    #[error("the token endpoint refused client '{client_id}' (key '{profile}'): {reason}")]
    Refused {
        /// Profile.
        profile: String,
        /// Client id.
        client_id: String,
        /// The server's error code and description.
        reason: String,
    },
    /// The server could not be reached or answered something that is not OAuth2.
    #[error("cannot get an access token for '{profile}': {reason}")]
    Transport {
        /// Profile.
        profile: String,
        /// What went wrong (never contains secrets or response bodies).
        reason: String,
    },
    /// The server issued a token Keyward will not hand out.
    #[error("the token endpoint for '{profile}' returned an unusable token: {reason}")]
    Unusable {
        /// Profile.
        profile: String,
        /// Why.
        reason: &'static str,
    },
    /// Introspection says the token is not what it should be.
    #[error("introspection for '{profile}': {reason}")]
    Introspection {
        /// Profile.
        profile: String,
        /// Why.
        reason: String,
    },
}

/// What introspection confirms about a token.
#[derive(Debug, Clone)]
pub struct Introspected {
    /// The client the server says the token belongs to.
    pub client_id: Option<String>,
    /// Granted scope, space-separated.
    pub scope: Option<String>,
    /// Expiry (RFC 3339).
    pub expires_at: Option<String>,
    /// Subject, when the server names one.
    pub sub: Option<String>,
}

/// The HTTP client for authorization servers: no redirects (a token endpoint that redirects
/// would carry the client secret to wherever it points), bounded time, the system's CA store.
pub fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .user_agent(concat!("keyward/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|_| "cannot set up the HTTPS client (TLS roots unreadable?)".to_owned())
}

/// The HTTP client as the `oauth2` crate calls it: a redirect is an error that says where it
/// points. reqwest follows none (see [`http_client`]); this turns the bare 3xx into a message the
/// user can act on.
struct NoRedirects<'a>(&'a reqwest::Client);

impl<'c> AsyncHttpClient<'c> for NoRedirects<'_> {
    type Error = HttpClientError<reqwest::Error>;
    type Future =
        Pin<Box<dyn Future<Output = Result<HttpResponse, Self::Error>> + Send + Sync + 'c>>;

    fn call(&'c self, req: HttpRequest) -> Self::Future {
        Box::pin(send(self.0, req))
    }
}

/// Largest response body read from a token or introspection endpoint: a token response is a
/// few KiB; a hostile server must not make the agent buffer without end.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

async fn send(
    http: &reqwest::Client,
    req: HttpRequest,
) -> Result<HttpResponse, HttpClientError<reqwest::Error>> {
    let (parts, body) = req.into_parts();
    let mut resp = http
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpClientError::Reqwest(Box::new(e)))?;
    let mut out = oauth2::http::Response::builder().status(resp.status());
    if let Some(h) = out.headers_mut() {
        *h = resp.headers().clone();
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| HttpClientError::Reqwest(Box::new(e)))?
    {
        if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(HttpClientError::Other(format!(
                "the server's answer is larger than {} KiB: not an OAuth2 response",
                MAX_RESPONSE_BYTES / 1024
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    let resp = out
        .body(bytes)
        .map_err(|e| HttpClientError::Other(format!("unreadable answer: {e}")))?;
    if resp.status().is_redirection() {
        let to = resp
            .headers()
            .get(oauth2::http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| printable(v, 200))
            .unwrap_or_else(|| "nowhere".to_owned());
        return Err(HttpClientError::Other(format!(
            "the server redirects (HTTP {}) to {to}: not followed, as the client secret would go with it; store the URL it points to if you trust it",
            resp.status().as_u16()
        )));
    }
    Ok(resp)
}

fn printable(s: &str, max: usize) -> String {
    crate::text::terminal_safe(s, max)
}

/// One line from a failed token or introspection request. Response bodies are never echoed:
/// a misbehaving server could put a token in one.
fn describe(e: &RequestTokenError<HttpClientError<reqwest::Error>, BasicErrorResponse>) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => {
            let code = r.error().to_string();
            match r.error_description() {
                Some(d) => format!("{}: {}", printable(&code, 64), printable(d, 300)),
                None => printable(&code, 64),
            }
        }
        RequestTokenError::Request(HttpClientError::Reqwest(re)) => {
            if re.is_timeout() {
                "the server timed out".to_owned()
            } else if re.is_connect() {
                "cannot connect to the server (network error or wrong URL)".to_owned()
            } else {
                "network error talking to the server".to_owned()
            }
        }
        RequestTokenError::Request(HttpClientError::Other(s)) => s.clone(),
        RequestTokenError::Request(_) => "the request could not be sent".to_owned(),
        RequestTokenError::Parse(_, _) => {
            "the server's answer is not an OAuth2 response (wrong URL, or a redirect or login page?)"
                .to_owned()
        }
        RequestTokenError::Other(s) => printable(s, 200),
    }
}

/// A bearer-ish token a tool can carry in a header: visible ASCII only, so no CR, LF or NUL
/// (SECURITY-REQUIREMENTS §13).
fn header_safe(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TOKEN_LEN && s.chars().all(|c| ('!'..='~').contains(&c))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A client with its token endpoint set and its introspection endpoint maybe set.
type Client = oauth2::Client<
    BasicErrorResponse,
    oauth2::basic::BasicTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointMaybeSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn client(cfg: &OAuth2Config, secret: &SecretString, profile: &str) -> Result<Client, OAuthError> {
    let bad_url = |what: &str| OAuthError::Transport {
        profile: profile.to_owned(),
        reason: format!("the stored {what} is not a URL"),
    };
    let token_url = TokenUrl::new(cfg.token_url.clone()).map_err(|_| bad_url("token URL"))?;
    let introspection = match &cfg.introspection_url {
        Some(u) => {
            Some(IntrospectionUrl::new(u.clone()).map_err(|_| bad_url("introspection URL"))?)
        }
        None => None,
    };
    Ok(BasicClient::new(ClientId::new(cfg.client_id.clone()))
        .set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()))
        .set_auth_type(match cfg.auth {
            ClientAuth::Basic => AuthType::BasicAuth,
            ClientAuth::Post => AuthType::RequestBody,
        })
        .set_token_uri(token_url)
        .set_introspection_url_option(introspection))
}

/// Asks the token endpoint for an access token; returns it with its expiry (`None` when the
/// server did not say, and then it is not cached).
pub async fn issue(
    http: &reqwest::Client,
    profile: &str,
    cfg: &OAuth2Config,
    secret: &SecretString,
) -> Result<(Token, Option<OffsetDateTime>), OAuthError> {
    let client = client(cfg, secret, profile)?;
    let resp = client
        .exchange_client_credentials()
        .add_scopes(cfg.scopes.iter().cloned().map(Scope::new))
        .request_async(&NoRedirects(http))
        .await
        .map_err(|e| match &e {
            RequestTokenError::ServerResponse(_) => OAuthError::Refused {
                profile: profile.to_owned(),
                client_id: cfg.client_id.clone(),
                reason: describe(&e),
            },
            _ => OAuthError::Transport {
                profile: profile.to_owned(),
                reason: describe(&e),
            },
        })?;
    let unusable = |reason| OAuthError::Unusable {
        profile: profile.to_owned(),
        reason,
    };
    let token = resp.access_token().secret();
    if !header_safe(token) {
        return Err(unusable(
            "the access token is empty, too long, or holds characters a tool cannot send in a header",
        ));
    }
    let token_type = match resp.token_type() {
        BasicTokenType::Bearer => "Bearer".to_owned(),
        BasicTokenType::Mac => "MAC".to_owned(),
        BasicTokenType::Extension(t) if header_safe(t) && t.len() <= 64 => t.clone(),
        BasicTokenType::Extension(_) => return Err(unusable("the token type is not a word")),
    };
    let now = OffsetDateTime::now_utc();
    let expires = match resp.expires_in() {
        Some(d) => {
            let d = time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
            if d < MIN_LIFETIME {
                return Err(unusable("it expires in under a minute"));
            }
            now.checked_add(d)
        }
        None => None,
    };
    let scope = resp.scopes().map(|s| {
        s.iter()
            .map(|x| printable(x.as_str(), 128))
            .collect::<Vec<_>>()
            .join(" ")
    });
    let token = Token {
        access_token: SecretString::from(token.clone()),
        token_type,
        expires_at: expires.map(rfc3339),
        scope,
        cached: false,
    };
    Ok((token, expires))
}

/// Asks the introspection endpoint about `token` (authenticating as the client); refuses an
/// inactive token or one the server says belongs to another client.
pub async fn introspect(
    http: &reqwest::Client,
    profile: &str,
    cfg: &OAuth2Config,
    secret: &SecretString,
    token: &SecretString,
) -> Result<Introspected, OAuthError> {
    let client = client(cfg, secret, profile)?;
    let access = AccessToken::new(token.expose_secret().to_owned());
    let req = client
        .introspect(&access)
        .map_err(|_| OAuthError::Introspection {
            profile: profile.to_owned(),
            reason: "no introspection URL is set for this key".to_owned(),
        })?;
    let resp = req
        .set_token_type_hint("access_token")
        .request_async(&NoRedirects(http))
        .await
        .map_err(|e| OAuthError::Introspection {
            profile: profile.to_owned(),
            reason: describe(&e),
        })?;
    if !resp.active() {
        return Err(OAuthError::Introspection {
            profile: profile.to_owned(),
            reason: "the server says the token it just issued is not active".to_owned(),
        });
    }
    let client_id = resp.client_id().map(|c| printable(c.as_str(), 255));
    if let Some(id) = &client_id {
        if *id != cfg.client_id {
            return Err(OAuthError::Introspection {
                profile: profile.to_owned(),
                reason: format!(
                    "the token belongs to client '{id}', not '{}'",
                    cfg.client_id
                ),
            });
        }
    }
    Ok(Introspected {
        client_id,
        scope: resp.scopes().map(|s| {
            s.iter()
                .map(|x| printable(x.as_str(), 128))
                .collect::<Vec<_>>()
                .join(" ")
        }),
        expires_at: resp
            .exp()
            .and_then(|t| OffsetDateTime::from_unix_timestamp(t.timestamp()).ok())
            .map(rfc3339),
        sub: resp.sub().map(|s| printable(s, 255)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_safe_refuses_injection() {
        assert!(header_safe("eyJhbGciOi.J9-_~+/="));
        for bad in [
            "",
            "a b",
            "a\r\nX-Evil: 1",
            "a\0",
            "é",
            &"a".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(!header_safe(bad), "{bad:?}");
        }
    }
}
