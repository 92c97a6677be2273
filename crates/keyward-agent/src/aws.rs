//! AWS provider: turns a stored long-lived access key into STS session credentials
//! (GetSessionToken, or AssumeRole when the entry names a role) with the official SDK, and caches
//! them per profile.
//!
//! SDKs refresh credential_process output 15 minutes (advisory) / 10 minutes (mandatory) before
//! expiry, and the AWS CLI runs the process on every command: see [`crate::cache`] for why a
//! session is handed out only with 20 minutes or more left.

use aws_credential_types::Credentials;
use aws_sdk_sts::config::{BehaviorVersion, Region};
use aws_sdk_sts::primitives::DateTimeFormat;
use keyward_core::{AwsConfig, EntryKind, EntryMeta, SecretValue};
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use time::OffsetDateTime;

use crate::cache::{min_remaining, CredCache, Issued};
use crate::provider::Provider;

/// Region used for STS when the entry names none.
const DEFAULT_REGION: &str = "us-east-1";

/// Errors from STS.
#[derive(Debug, Error)]
pub enum AwsError {
    /// STS refused or failed.
    #[error("AWS STS refused the request for profile '{profile}': {reason}")]
    Upstream {
        /// Profile.
        profile: String,
        /// What STS said (never contains secrets).
        reason: String,
    },
    /// An MFA code is needed.
    #[error(
        "profile '{0}' needs an MFA code: run the command in a terminal so Keyward can ask for it"
    )]
    MfaRequired(String),
    /// The entry is not a whole AWS key (its settings or its secret are of another kind).
    #[error("'{0}' is not an AWS key pair with AWS settings")]
    NotAnAwsKey(String),
    /// IAM refused or failed (rotation, last use).
    #[error("AWS IAM refused the request for '{profile}': {reason}")]
    Iam {
        /// Profile.
        profile: String,
        /// What IAM said (never contains secrets).
        reason: String,
    },
    /// STS gave back credentials that live too short.
    #[error("AWS STS returned credentials for '{0}' that expire in under 20 minutes: raise the session duration")]
    TooShort(String),
}

/// Temporary AWS credentials as STS issued them.
#[derive(Clone)]
pub struct Session {
    /// ASIA… id.
    pub access_key_id: String,
    /// Session secret.
    pub secret_access_key: SecretString,
    /// Session token.
    pub session_token: SecretString,
    /// RFC 3339 expiry.
    pub expiration: String,
    /// Whether this came from the agent's cache.
    pub cached: bool,
}

/// The per-profile STS session cache.
pub type AwsCache = CredCache<Session>;

/// AWS STS as a [`Provider`]: `AssumeRole` when the key names a role, else `GetSessionToken`.
#[derive(Default)]
pub struct Sts {
    cache: AwsCache,
}

impl Provider for Sts {
    type Credential = Session;
    type Error = AwsError;
    /// The MFA code, when the key has an MFA device and a session must be issued.
    type Input = Option<SecretString>;
    const KIND: EntryKind = EntryKind::Aws;

    fn cache(&self) -> &AwsCache {
        &self.cache
    }

    fn ttl_secs(&self, meta: &EntryMeta) -> Option<u64> {
        meta.config
            .aws
            .as_ref()
            .map(|a| u64::from(a.session_duration_secs))
    }

    fn capped(&self, meta: &EntryMeta, max_secs: u32) -> EntryMeta {
        let mut m = meta.clone();
        if let Some(a) = m.config.aws.as_mut() {
            a.session_duration_secs = a.session_duration_secs.min(max_secs);
        }
        m
    }

    async fn issue(
        &self,
        meta: &EntryMeta,
        secret: SecretValue,
        mfa_code: Option<SecretString>,
    ) -> Result<(Session, Option<OffsetDateTime>), AwsError> {
        let (
            Some(cfg),
            SecretValue::Aws {
                access_key_id,
                secret_access_key,
            },
        ) = (meta.config.aws.as_ref(), secret)
        else {
            return Err(AwsError::NotAnAwsKey(meta.name.clone()));
        };
        let session_name: String = format!("keyward-{}", meta.name).chars().take(64).collect();
        let (session, expires) = issue(
            &meta.name,
            cfg,
            &access_key_id,
            &secret_access_key,
            mfa_code.as_ref().map(|c| c.expose_secret()),
            &session_name,
        )
        .await?;
        Ok((session, Some(expires)))
    }

    fn audit_detail(&self, _meta: &EntryMeta, c: &Session) -> serde_json::Value {
        serde_json::json!({
            "kind": "aws-sts",
            "access_key_id": c.access_key_id,
            "expiration": c.expiration,
            "cached": c.cached,
        })
    }
}

impl Issued for Session {
    fn set_cached(&mut self) {
        self.cached = true;
    }
}

/// The most an STS response may hold; real ones are a few KiB. Past it the response is cut
/// off and the call fails, so a hostile endpoint cannot make the agent buffer without end.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Bounds every STS response body to [`MAX_RESPONSE_BYTES`] before the SDK reads it.
#[derive(Debug)]
pub(crate) struct BoundedResponse;

impl aws_sdk_sts::config::Intercept for BoundedResponse {
    fn name(&self) -> &'static str {
        "keyward-bounded-response"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut aws_sdk_sts::config::interceptors::BeforeDeserializationInterceptorContextMut<
            '_,
        >,
        _: &aws_sdk_sts::config::RuntimeComponents,
        _: &mut aws_sdk_sts::config::ConfigBag,
    ) -> Result<(), aws_sdk_sts::error::BoxError> {
        use aws_smithy_types::body::SdkBody;
        let body = context.response_mut().body_mut();
        let taken = std::mem::replace(body, SdkBody::taken());
        *body = taken
            .map(|b| SdkBody::from_body_1_x(http_body_util::Limited::new(b, MAX_RESPONSE_BYTES)));
        Ok(())
    }
}

/// An STS client for an entry's region and endpoint, signing with `credentials`.
fn sts_client(cfg: &AwsConfig, credentials: Credentials) -> aws_sdk_sts::Client {
    let mut builder = aws_sdk_sts::Config::builder()
        .interceptor(BoundedResponse)
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(
            cfg.region
                .clone()
                .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
        ))
        .credentials_provider(credentials);
    if let Some(ep) = &cfg.sts_endpoint {
        builder = builder.endpoint_url(ep);
    }
    aws_sdk_sts::Client::from_conf(builder.build())
}

/// Calls STS with the long-lived key and returns session credentials and their expiry.
pub async fn issue(
    profile: &str,
    cfg: &AwsConfig,
    access_key_id: &str,
    secret_access_key: &SecretString,
    mfa_code: Option<&str>,
    session_name: &str,
) -> Result<(Session, OffsetDateTime), AwsError> {
    if cfg.mfa_serial.is_some() && mfa_code.is_none() {
        return Err(AwsError::MfaRequired(profile.to_owned()));
    }
    let client = sts_client(
        cfg,
        Credentials::new(
            access_key_id,
            secret_access_key.expose_secret(),
            None,
            None,
            "keyward",
        ),
    );
    let duration = i32::try_from(cfg.session_duration_secs).unwrap_or(3600);
    // Test builds only: sessions that end in seconds (with `KEYWARD_TEST_MIN_REMAINING_SECS`).
    #[cfg(feature = "test-short-sessions")]
    let duration = std::env::var("KEYWARD_TEST_SESSION_SECS")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(duration);
    let upstream = |e: String| AwsError::Upstream {
        profile: profile.to_owned(),
        reason: e,
    };
    let creds = if let Some(role) = &cfg.role_arn {
        let mut req = client
            .assume_role()
            .role_arn(role)
            .role_session_name(session_name)
            .duration_seconds(duration);
        if let (Some(serial), Some(code)) = (&cfg.mfa_serial, mfa_code) {
            req = req.serial_number(serial).token_code(code);
        }
        req.send()
            .await
            .map_err(|e| upstream(describe(&e, "STS")))?
            .credentials
    } else {
        let mut req = client.get_session_token().duration_seconds(duration);
        if let (Some(serial), Some(code)) = (&cfg.mfa_serial, mfa_code) {
            req = req.serial_number(serial).token_code(code);
        }
        req.send()
            .await
            .map_err(|e| upstream(describe(&e, "STS")))?
            .credentials
    };
    let c = creds.ok_or_else(|| upstream("the response held no credentials".to_owned()))?;
    let expiration = c
        .expiration
        .fmt(DateTimeFormat::DateTime)
        .map_err(|e| upstream(format!("unreadable expiry: {e}")))?;
    let expires = OffsetDateTime::from_unix_timestamp(c.expiration.secs())
        .map_err(|e| upstream(format!("unreadable expiry: {e}")))?;
    if expires - OffsetDateTime::now_utc() < min_remaining() {
        return Err(AwsError::TooShort(profile.to_owned()));
    }
    Ok((
        Session {
            access_key_id: c.access_key_id,
            secret_access_key: SecretString::from(c.secret_access_key),
            session_token: SecretString::from(c.session_token),
            expiration,
            cached: false,
        },
        expires,
    ))
}

/// Who a key or session is (`sts get-caller-identity`; a session passes its token).
pub async fn caller_identity(
    profile: &str,
    cfg: &AwsConfig,
    access_key_id: &str,
    secret_access_key: &str,
    session_token: Option<&str>,
) -> Result<String, AwsError> {
    let client = sts_client(
        cfg,
        Credentials::new(
            access_key_id,
            secret_access_key,
            session_token.map(str::to_owned),
            None,
            "keyward",
        ),
    );
    let out = client
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| AwsError::Upstream {
            profile: profile.to_owned(),
            reason: describe(&e, "STS"),
        })?;
    out.arn.ok_or_else(|| AwsError::Upstream {
        profile: profile.to_owned(),
        reason: "the response named no identity".to_owned(),
    })
}

/// One line from an SDK error of `service` (STS, IAM): the service's code and message, or the
/// transport failure. The endpoint's words are shown without control characters (a hostile
/// endpoint could send terminal escapes).
pub(crate) fn describe<E>(
    e: &aws_sdk_sts::error::SdkError<E, aws_sdk_sts::config::http::HttpResponse>,
    service: &str,
) -> String
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    crate::text::terminal_safe(&describe_raw(e, service), 400)
}

fn describe_raw<E>(
    e: &aws_sdk_sts::error::SdkError<E, aws_sdk_sts::config::http::HttpResponse>,
    service: &str,
) -> String
where
    E: aws_sdk_sts::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    use aws_sdk_sts::error::SdkError;
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_owned(),
                _ => {
                    // Some endpoints send an error document the SDK cannot map to the
                    // operation; fall back to the status and the document's own code.
                    let raw = se.raw();
                    let body = raw.body().bytes().and_then(|b| std::str::from_utf8(b).ok());
                    let tag = |name: &str| {
                        let body = body?;
                        let open = format!("<{name}>");
                        let start = body.find(&open)? + open.len();
                        let end = body[start..].find('<')? + start;
                        Some(body[start..end].chars().take(300).collect::<String>())
                    };
                    match (tag("Code"), tag("Message")) {
                        (Some(c), Some(m)) => format!("{c}: {m}"),
                        (Some(c), None) => c,
                        _ => format!("HTTP {}", raw.status().as_u16()),
                    }
                }
            }
        }
        SdkError::DispatchFailure(d) => {
            if d.is_timeout() {
                format!("the {service} endpoint timed out")
            } else if d.is_io() {
                format!("cannot reach the {service} endpoint (network error)")
            } else {
                format!("cannot reach the {service} endpoint")
            }
        }
        SdkError::TimeoutError(_) => format!("the {service} endpoint timed out"),
        SdkError::ResponseError(_) => format!("the {service} endpoint sent an unreadable response"),
        SdkError::ConstructionFailure(_) => "the request could not be built".to_owned(),
        _ => format!("unknown {service} failure"),
    }
}
