//! Wire ↔ domain: what the dispatch hands the rooms, and what the providers' credentials look
//! like on the wire. Kept beside the protocol types, out of the dispatch.

use super::*;

impl From<&WireSecret> for secrecy::SecretString {
    fn from(w: &WireSecret) -> Self {
        secrecy::SecretString::from(w.expose().to_owned())
    }
}

impl TryFrom<MetaInput> for keyward_core::vault::EntryEdit {
    type Error = keyward_core::entry::EntryError;

    fn try_from(m: MetaInput) -> Result<Self, Self::Error> {
        keyward_core::vault::EntryEdit::new(
            m.owner,
            m.purpose,
            m.tags,
            m.rotation_interval_days,
            m.expires,
        )
    }
}

impl From<NewSecret> for keyward_core::SecretValue {
    fn from(n: NewSecret) -> Self {
        match n {
            NewSecret::Aws {
                access_key_id,
                secret_access_key,
            } => keyward_core::SecretValue::Aws {
                access_key_id,
                secret_access_key: (&secret_access_key).into(),
            },
            NewSecret::Static { value } => keyward_core::SecretValue::Static {
                value: (&value).into(),
            },
            NewSecret::Oauth2 { client_secret } => keyward_core::SecretValue::OAuth2 {
                client_secret: (&client_secret).into(),
            },
            NewSecret::Aliyun {
                access_key_id,
                access_key_secret,
            } => keyward_core::SecretValue::Aliyun {
                access_key_id,
                access_key_secret: (&access_key_secret).into(),
            },
        }
    }
}

impl From<AwsKeyInput> for (keyward_core::EntryConfig, keyward_core::SecretValue) {
    /// The AWS settings and the key pair of a new AWS entry.
    fn from(aws: AwsKeyInput) -> Self {
        let config = keyward_core::EntryConfig {
            aws: Some(keyward_core::AwsConfig {
                access_key_hint: String::new(),
                role_arn: aws.role_arn,
                mfa_serial: aws.mfa_serial,
                region: aws.region,
                session_duration_secs: aws.session_duration_secs.unwrap_or(DEFAULT_SESSION_SECS),
                sts_endpoint: aws.sts_endpoint,
                iam_endpoint: aws.iam_endpoint,
            }),
            ..Default::default()
        };
        let secret = keyward_core::SecretValue::Aws {
            access_key_id: aws.access_key_id,
            secret_access_key: (&aws.secret_access_key).into(),
        };
        (config, secret)
    }
}

impl From<OAuth2KeyInput> for (keyward_core::EntryConfig, keyward_core::SecretValue) {
    /// The OAuth2 settings and the client secret of a new OAuth2 entry.
    fn from(o: OAuth2KeyInput) -> Self {
        let config = keyward_core::EntryConfig {
            oauth2: Some(keyward_core::OAuth2Config {
                client_id: o.client_id,
                token_url: o.token_url,
                scopes: o.scopes,
                auth: o.auth.unwrap_or_default(),
                introspection_url: o.introspection_url,
            }),
            ..Default::default()
        };
        let secret = keyward_core::SecretValue::OAuth2 {
            client_secret: (&o.client_secret).into(),
        };
        (config, secret)
    }
}

impl From<AliyunKeyInput> for (keyward_core::EntryConfig, keyward_core::SecretValue) {
    /// The Alibaba Cloud settings and the key pair of a new Alibaba Cloud entry.
    fn from(a: AliyunKeyInput) -> Self {
        let config = keyward_core::EntryConfig {
            aliyun: Some(keyward_core::AliyunConfig {
                access_key_hint: String::new(),
                role_arn: a.role_arn,
                region: a.region,
                session_duration_secs: a
                    .session_duration_secs
                    .unwrap_or(keyward_core::entry::ALIYUN_DEFAULT_SESSION_SECS),
                sts_endpoint: a.sts_endpoint,
            }),
            ..Default::default()
        };
        let secret = keyward_core::SecretValue::Aliyun {
            access_key_id: a.access_key_id,
            access_key_secret: (&a.access_key_secret).into(),
        };
        (config, secret)
    }
}

impl From<crate::aliyun::Credential> for Reply {
    fn from(c: crate::aliyun::Credential) -> Self {
        use secrecy::ExposeSecret;
        Reply::AliyunCredentials(AliyunCredentials {
            mode: match c.mode {
                crate::aliyun::Mode::StsToken => AliyunMode::StsToken,
                crate::aliyun::Mode::AccessKey => AliyunMode::AccessKey,
            },
            access_key_id: c.access_key_id,
            access_key_secret: WireSecret::new(c.access_key_secret.expose_secret().to_owned()),
            security_token: c
                .security_token
                .map(|t| WireSecret::new(t.expose_secret().to_owned())),
            expiration: c.expiration,
            region: c.region,
            cached: c.cached,
        })
    }
}

impl From<crate::aws::Session> for AwsCredentials {
    fn from(s: crate::aws::Session) -> Self {
        use secrecy::ExposeSecret;
        AwsCredentials {
            access_key_id: s.access_key_id,
            secret_access_key: WireSecret::new(s.secret_access_key.expose_secret().to_owned()),
            session_token: WireSecret::new(s.session_token.expose_secret().to_owned()),
            expiration: s.expiration,
            cached: s.cached,
        }
    }
}

impl From<crate::aws::Session> for Reply {
    fn from(s: crate::aws::Session) -> Self {
        Reply::AwsCredentials(s.into())
    }
}

impl From<crate::oauth::Token> for OAuth2Token {
    fn from(t: crate::oauth::Token) -> Self {
        use secrecy::ExposeSecret;
        OAuth2Token {
            access_token: WireSecret::new(t.access_token.expose_secret().to_owned()),
            token_type: t.token_type,
            expires_at: t.expires_at,
            scope: t.scope,
            cached: t.cached,
        }
    }
}

impl From<crate::oauth::Token> for Reply {
    fn from(t: crate::oauth::Token) -> Self {
        Reply::Oauth2Token(t.into())
    }
}

/// The most rows one `audit_query` answers with (well within a client's 16 MiB answer).
pub const AUDIT_QUERY_MAX: u32 = 10_000;

impl TryFrom<AuditQuery> for keyward_core::catalog::AuditFilter {
    type Error = String;

    /// Times become the trail's own form (UTC, whole seconds), so comparing them as text orders
    /// them as times.
    fn try_from(q: AuditQuery) -> Result<Self, String> {
        let time = |name: &str, t: Option<String>| -> Result<Option<String>, String> {
            let Some(t) = t else { return Ok(None) };
            let rfc = time::format_description::well_known::Rfc3339;
            let parsed = time::OffsetDateTime::parse(&t, &rfc)
                .map_err(|_| format!("{name} must be an RFC 3339 time (2026-12-01T00:00:00Z)"))?;
            let utc = parsed.to_offset(time::UtcOffset::UTC);
            let utc = utc.replace_nanosecond(0).unwrap_or(utc);
            utc.format(&rfc).map(Some).map_err(|e| e.to_string())
        };
        Ok(keyward_core::catalog::AuditFilter {
            target: q.key,
            action: q.action,
            client: q.client,
            since: time("since", q.since)?,
            until: time("until", q.until)?,
            after_seq: q.after_seq,
            limit: q.limit.min(AUDIT_QUERY_MAX),
        })
    }
}

impl From<crate::lease::Lease> for Reply {
    fn from(l: crate::lease::Lease) -> Self {
        use secrecy::ExposeSecret;
        Reply::Lease(StaticLease {
            value: WireSecret::new(l.value.expose_secret().to_owned()),
            expires_at: l.expires_at,
        })
    }
}
