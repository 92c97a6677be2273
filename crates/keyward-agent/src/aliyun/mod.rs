//! Alibaba Cloud provider: turns a RAM user's long-lived AccessKey into an STS token
//! (`AssumeRole`, signed V3) when the key names a role, and caches it per profile. A key without
//! a role has no short-lived form: it goes out as itself, never cached, where the policy lets
//! long-lived values out (the pipeline's policy stage decides).
//!
//! The Alibaba Cloud CLI runs its `External` process on every command and the credentials SDK
//! refreshes 180 s before expiry, so a token is handed out from the cache only with
//! [`MIN_REMAINING`] left.

pub mod sign;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use keyward_core::{AliyunConfig, EntryKind, EntryMeta, SecretValue};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use thiserror::Error;
use time::OffsetDateTime;

use crate::cache::{CredCache, Issued};
use crate::provider::Provider;
use crate::text::terminal_safe;

/// A cached token is handed out only with this much left (the SDK asks again 3 minutes before
/// the end).
pub const MIN_REMAINING: time::Duration = time::Duration::minutes(5);

/// The STS API version the request names.
const STS_VERSION: &str = "2015-04-01";

/// The most an STS answer may hold; real ones are about 2 KiB.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Errors from Alibaba Cloud STS.
#[derive(Debug, Error)]
pub enum AliyunError {
    /// STS refused or failed.
    #[error("Alibaba Cloud STS refused the request for '{profile}': {reason}")]
    Upstream {
        /// Profile.
        profile: String,
        /// What STS said (never a secret), made safe for a terminal.
        reason: String,
    },
    /// The entry is not a whole Alibaba Cloud key.
    #[error("'{0}' is not an Alibaba Cloud AccessKey with Alibaba Cloud settings")]
    NotAnAliyunKey(String),
    /// The HTTPS client could not be made.
    #[error("cannot make the HTTPS client for Alibaba Cloud STS: {0}")]
    Client(String),
    /// STS gave back a token that lives too short to hand out.
    #[error("Alibaba Cloud STS returned a token for '{0}' that expires in under 5 minutes: raise the session duration")]
    TooShort(String),
}

/// How the credential is meant to be used, as the Alibaba Cloud CLI's `External` mode names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// An STS token: AccessKey ID and secret with a security token, until `expiration`.
    StsToken,
    /// The long-lived AccessKey itself (a key without a role).
    AccessKey,
}

/// What the provider hands out.
#[derive(Clone)]
pub struct Credential {
    /// StsToken or the AccessKey itself.
    pub mode: Mode,
    /// `STS.…` for a token, `LTAI…` for the AccessKey.
    pub access_key_id: String,
    /// The matching secret.
    pub access_key_secret: SecretString,
    /// The STS security token (StsToken mode).
    pub security_token: Option<SecretString>,
    /// When the token ends (RFC 3339, whole seconds, UTC), StsToken mode.
    pub expiration: Option<String>,
    /// The key's region, for the tools.
    pub region: Option<String>,
    /// The assumed role's ARN as STS named it (StsToken mode).
    pub role: Option<String>,
    /// Whether this came from the agent's cache.
    pub cached: bool,
}

impl Issued for Credential {
    fn set_cached(&mut self) {
        self.cached = true;
    }
}

/// Alibaba Cloud STS as a [`Provider`].
pub struct Sts {
    cache: CredCache<Credential>,
    http: OnceLock<reqwest::Client>,
}

impl Default for Sts {
    fn default() -> Self {
        Sts {
            cache: CredCache::keeping(MIN_REMAINING),
            http: OnceLock::new(),
        }
    }
}

impl Sts {
    /// The HTTPS client its calls use (made once).
    pub fn http(&self) -> Result<&reqwest::Client, AliyunError> {
        if let Some(c) = self.http.get() {
            return Ok(c);
        }
        let c = crate::oauth::http_client().map_err(AliyunError::Client)?;
        Ok(self.http.get_or_init(|| c))
    }
}

impl Provider for Sts {
    type Credential = Credential;
    type Error = AliyunError;
    type Input = ();
    const KIND: EntryKind = EntryKind::Aliyun;

    fn cache(&self) -> &CredCache<Credential> {
        &self.cache
    }

    fn ttl_secs(&self, meta: &EntryMeta) -> Option<u64> {
        let a = meta.config.aliyun.as_ref()?;
        a.role_arn.as_ref()?;
        Some(u64::from(a.session_duration_secs))
    }

    fn capped(&self, meta: &EntryMeta, max_secs: u32) -> EntryMeta {
        let mut m = meta.clone();
        if let Some(a) = m.config.aliyun.as_mut() {
            // STS refuses less than 900 s; a policy shorter than that gets the shortest.
            a.session_duration_secs = a.session_duration_secs.min(max_secs.max(900));
        }
        m
    }

    async fn issue(
        &self,
        meta: &EntryMeta,
        secret: SecretValue,
        (): (),
    ) -> Result<(Credential, Option<OffsetDateTime>), AliyunError> {
        let (
            Some(cfg),
            SecretValue::Aliyun {
                access_key_id,
                access_key_secret,
            },
        ) = (meta.config.aliyun.as_ref(), secret)
        else {
            return Err(AliyunError::NotAnAliyunKey(meta.name.clone()));
        };
        let Some(role) = &cfg.role_arn else {
            let c = Credential {
                mode: Mode::AccessKey,
                access_key_id,
                access_key_secret,
                security_token: None,
                expiration: None,
                region: cfg.region.clone(),
                role: None,
                cached: false,
            };
            return Ok((c, None));
        };
        let session_name: String = format!("keyward-{}", meta.name).chars().take(64).collect();
        assume_role(
            self.http()?,
            &meta.name,
            cfg,
            role,
            &session_name,
            &access_key_id,
            &access_key_secret,
        )
        .await
    }

    fn audit_detail(&self, _meta: &EntryMeta, c: &Credential) -> serde_json::Value {
        serde_json::json!({
            "kind": match c.mode { Mode::StsToken => "aliyun-sts", Mode::AccessKey => "aliyun-accesskey" },
            "access_key_id": match c.mode {
                Mode::StsToken => c.access_key_id.clone(),
                Mode::AccessKey => keyward_core::entry::access_key_hint(&c.access_key_id),
            },
            "role": c.role,
            "expiration": c.expiration,
            "cached": c.cached,
        })
    }
}

/// The STS endpoint a key's requests go to: its override, else its region's, else the
/// central one.
pub fn endpoint(cfg: &AliyunConfig) -> String {
    match (&cfg.sts_endpoint, &cfg.region) {
        (Some(ep), _) => ep.trim_end_matches('/').to_owned(),
        (None, Some(region)) => format!("https://sts.{region}.aliyuncs.com"),
        (None, None) => "https://sts.aliyuncs.com".to_owned(),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumeRoleAnswer {
    credentials: StsCredentials,
    #[serde(default)]
    assumed_role_user: Option<AssumedRoleUser>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsCredentials {
    access_key_id: String,
    access_key_secret: String,
    security_token: String,
    expiration: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AssumedRoleUser {
    arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct StsRefusal {
    code: Option<String>,
    message: Option<String>,
}

/// The key a request is signed with: an AccessKey, or an STS token's id, secret and security
/// token.
pub struct Signer<'a> {
    /// LTAI… or STS.…
    pub access_key_id: &'a str,
    /// The matching secret.
    pub secret: &'a str,
    /// An STS token's security token (sent and signed as `x-acs-security-token`).
    pub security_token: Option<&'a str>,
}

/// Calls STS action `action` with `query`, signed by `signer`, and returns the answer's body
/// (bounded); a refusal is STS's `Code: Message`.
async fn call(
    http: &reqwest::Client,
    profile: &str,
    cfg: &AliyunConfig,
    action: &str,
    query: &BTreeMap<String, String>,
    signer: &Signer<'_>,
) -> Result<Vec<u8>, AliyunError> {
    let upstream = |reason: String| AliyunError::Upstream {
        profile: profile.to_owned(),
        reason,
    };
    let base = endpoint(cfg);
    let url = reqwest::Url::parse(&format!("{base}/"))
        .map_err(|_| upstream(format!("the endpoint {base} is not a URL")))?;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        (None, _) => return Err(upstream(format!("the endpoint {base} names no host"))),
    };
    let payload = sign::sha256_hex(b"");
    let nonce = data_encoding::HEXLOWER.encode(&rand::random::<[u8; 16]>());
    let mut headers: BTreeMap<String, String> = [
        ("host", host),
        ("x-acs-action", action.to_owned()),
        ("x-acs-content-sha256", payload.clone()),
        ("x-acs-date", rfc3339_seconds(OffsetDateTime::now_utc())),
        ("x-acs-signature-nonce", nonce),
        ("x-acs-version", STS_VERSION.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(token) = signer.security_token {
        headers.insert("x-acs-accesskey-id".into(), signer.access_key_id.to_owned());
        headers.insert("x-acs-security-token".into(), token.to_owned());
    }
    let authorization = sign::authorization(
        "POST",
        "/",
        query,
        &headers,
        &payload,
        signer.access_key_id,
        signer.secret,
    );
    let mut req = http
        .post(format!("{base}/?{}", sign::canonical_query(query)))
        .header("authorization", authorization)
        .header("accept", "application/json");
    for (k, v) in headers.iter().filter(|(k, _)| *k != "host") {
        req = req.header(k.as_str(), v.as_str());
    }
    let mut resp = req
        .send()
        .await
        .map_err(|e| upstream(format!("cannot reach {base}: {}", reason_of(e))))?;
    let status = resp.status();
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| upstream(format!("the answer broke off: {}", reason_of(e))))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(upstream(format!(
                "the answer is larger than {} KiB: not an STS response",
                MAX_RESPONSE_BYTES / 1024
            )));
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let said = serde_json::from_slice::<StsRefusal>(&body).ok();
        let code = said.as_ref().and_then(|s| s.code.clone());
        let message = said.and_then(|s| s.message);
        let reason = match (code, message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c,
            (None, Some(m)) => m,
            (None, None) => format!("HTTP {status}"),
        };
        return Err(upstream(terminal_safe(&reason, 300)));
    }
    Ok(body)
}

/// Calls `AssumeRole` with the long-lived key and returns the token and its end.
async fn assume_role(
    http: &reqwest::Client,
    profile: &str,
    cfg: &AliyunConfig,
    role: &str,
    session_name: &str,
    access_key_id: &str,
    secret: &SecretString,
) -> Result<(Credential, Option<OffsetDateTime>), AliyunError> {
    let upstream = |reason: String| AliyunError::Upstream {
        profile: profile.to_owned(),
        reason,
    };
    let duration = cfg.session_duration_secs;
    // Test builds only: tokens that end in seconds.
    #[cfg(feature = "test-short-sessions")]
    let duration = std::env::var("KEYWARD_TEST_SESSION_SECS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(duration);
    let query: BTreeMap<String, String> = [
        ("DurationSeconds", duration.to_string()),
        ("RoleArn", role.to_owned()),
        ("RoleSessionName", session_name.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let signer = Signer {
        access_key_id,
        secret: secret.expose_secret(),
        security_token: None,
    };
    let body = call(http, profile, cfg, "AssumeRole", &query, &signer).await?;
    let answer: AssumeRoleAnswer = serde_json::from_slice(&body)
        .map_err(|_| upstream("the answer is not an AssumeRole response".to_owned()))?;
    let c = answer.credentials;
    let expires = OffsetDateTime::parse(
        &c.expiration,
        &time::format_description::well_known::Rfc3339,
    )
    .map_err(|_| upstream("the token's expiration is not a date".to_owned()))?;
    if expires - OffsetDateTime::now_utc() < MIN_REMAINING {
        return Err(AliyunError::TooShort(profile.to_owned()));
    }
    let credential = Credential {
        mode: Mode::StsToken,
        access_key_id: c.access_key_id,
        access_key_secret: SecretString::from(c.access_key_secret),
        security_token: Some(SecretString::from(c.security_token)),
        expiration: Some(rfc3339_seconds(expires)),
        region: cfg.region.clone(),
        role: answer.assumed_role_user.map(|u| terminal_safe(&u.arn, 300)),
        cached: false,
    };
    Ok((credential, Some(expires)))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CallerIdentity {
    arn: String,
}

/// Whose credentials `signer` holds, as STS `GetCallerIdentity` says (`keyward test`): the
/// assumed role's ARN for a token, the RAM user's for an AccessKey.
pub async fn caller_identity(
    http: &reqwest::Client,
    profile: &str,
    cfg: &AliyunConfig,
    signer: &Signer<'_>,
) -> Result<String, AliyunError> {
    let body = call(
        http,
        profile,
        cfg,
        "GetCallerIdentity",
        &BTreeMap::new(),
        signer,
    )
    .await?;
    let who: CallerIdentity = serde_json::from_slice(&body).map_err(|_| AliyunError::Upstream {
        profile: profile.to_owned(),
        reason: "the answer is not a GetCallerIdentity response".to_owned(),
    })?;
    Ok(terminal_safe(&who.arn, 300))
}

/// `2026-12-04T01:02:03Z`: the only form the credentials SDK parses (no fractions, `Z`).
pub fn rfc3339_seconds(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The cause of a failed request in a few words, without the URL's query (which names the
/// role, harmless, but long).
fn reason_of(e: reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection refused or unreachable".to_owned()
    } else {
        terminal_safe(&e.without_url().to_string(), 200)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoint_is_the_override_the_region_or_the_central_one() {
        let mut c = AliyunConfig::default();
        assert_eq!(endpoint(&c), "https://sts.aliyuncs.com");
        c.region = Some("cn-shanghai".into());
        assert_eq!(endpoint(&c), "https://sts.cn-shanghai.aliyuncs.com");
        c.sts_endpoint = Some("http://127.0.0.1:9000/".into());
        assert_eq!(endpoint(&c), "http://127.0.0.1:9000");
    }

    #[test]
    fn expirations_are_written_in_whole_seconds_utc() {
        let t = OffsetDateTime::parse(
            "2026-12-04T09:02:03.75+08:00",
            &time::format_description::well_known::Rfc3339,
        )
        .expect("date");
        assert_eq!(rfc3339_seconds(t), "2026-12-04T01:02:03Z");
    }
}
