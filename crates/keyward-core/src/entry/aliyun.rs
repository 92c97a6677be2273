//! Alibaba Cloud entries: a RAM user's AccessKey pair and the settings of the STS `AssumeRole`
//! call that turns it into a short-lived token (role, region, session length, endpoint).

use super::*;

/// The session length asked of Alibaba Cloud STS when the user names none.
pub const ALIYUN_DEFAULT_SESSION_SECS: u32 = 3600;

/// Non-secret settings of an Alibaba Cloud entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct AliyunConfig {
    /// First and last characters of the AccessKey ID, for display (`LTAI…WXYZ`).
    pub access_key_hint: String,
    /// RAM role to assume (`acs:ram::<account>:role/<name>`). Without one the key has no
    /// short-lived form: it goes out as itself (the CLI's `AK` mode), only where the policy
    /// allows long-lived values to leave (`static_leases`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// Region (`cn-hangzhou`): the STS endpoint's and the one handed to tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Lifetime of issued STS tokens in seconds.
    pub session_duration_secs: u32,
    /// STS endpoint override (tests, private endpoints); `sts.aliyuncs.com` or the region's when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_endpoint: Option<String>,
}

/// Checks a RAM user's AccessKey pair: the ID is `LTAI` and letters or digits, the secret 30
/// letters or digits (what Alibaba Cloud issues).
pub fn validate_aliyun_key(access_key_id: &str, secret: &str) -> Result<(), EntryError> {
    let id_ok = (16..=32).contains(&access_key_id.len())
        && access_key_id.starts_with("LTAI")
        && access_key_id.chars().all(|c| c.is_ascii_alphanumeric());
    if !id_ok {
        return Err(EntryError::AliyunAccessKeyId);
    }
    if !(secret.len() == 30 && secret.chars().all(|c| c.is_ascii_alphanumeric())) {
        return Err(EntryError::AliyunSecret);
    }
    Ok(())
}

/// Checks the non-secret Alibaba Cloud settings.
pub fn validate_aliyun_config(cfg: &AliyunConfig) -> Result<(), EntryError> {
    if let Some(arn) = &cfg.role_arn {
        let rest = arn.strip_prefix("acs:ram::").unwrap_or_default();
        let (account, role) = rest.split_once(':').unwrap_or_default();
        let name = role.strip_prefix("role/").unwrap_or_default();
        let ok = (1..=32).contains(&account.len())
            && account.chars().all(|c| c.is_ascii_digit())
            && (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
        if !ok {
            return Err(EntryError::AliyunRoleArn(printable(arn)));
        }
    }
    if let Some(region) = &cfg.region {
        let ok = (4..=32).contains(&region.len())
            && region.contains('-')
            && region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            return Err(EntryError::Region(printable(region)));
        }
    }
    if !(900..=43_200).contains(&cfg.session_duration_secs) {
        return Err(EntryError::AliyunDuration(cfg.session_duration_secs));
    }
    if let Some(ep) = &cfg.sts_endpoint {
        super::aws::validate_endpoint(ep)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AliyunConfig {
        AliyunConfig {
            session_duration_secs: ALIYUN_DEFAULT_SESSION_SECS,
            ..Default::default()
        }
    }

    #[test]
    fn access_key_pairs_are_checked_for_their_shape() {
        let secret = "kwTestSecret0123456789abcdefgh";
        assert!(validate_aliyun_key("LTAI5tKeywardTest0001", secret).is_ok());
        assert_eq!(
            validate_aliyun_key("STS.NUgYrLnoC37mZZCNnAbez", secret),
            Err(EntryError::AliyunAccessKeyId)
        );
        assert_eq!(
            validate_aliyun_key("LTAI5tKeyward-Test01", secret),
            Err(EntryError::AliyunAccessKeyId)
        );
        assert_eq!(
            validate_aliyun_key("LTAI5tKeywardTest0001", "short"),
            Err(EntryError::AliyunSecret)
        );
    }

    #[test]
    fn settings_are_checked_as_alibaba_cloud_spells_them() {
        assert!(validate_aliyun_config(&cfg()).is_ok());
        let mut c = cfg();
        c.role_arn = Some("acs:ram::1234567890123456:role/deploy".into());
        assert!(validate_aliyun_config(&c).is_ok());
        c.role_arn = Some("arn:aws:iam::123456789012:role/deploy".into());
        assert!(matches!(
            validate_aliyun_config(&c),
            Err(EntryError::AliyunRoleArn(_))
        ));
        c.role_arn = Some("acs:ram::12x:role/deploy".into());
        assert!(validate_aliyun_config(&c).is_err());
        let mut c = cfg();
        c.session_duration_secs = 600;
        assert_eq!(
            validate_aliyun_config(&c),
            Err(EntryError::AliyunDuration(600))
        );
        let mut c = cfg();
        c.sts_endpoint = Some("http://sts.example:80".into());
        assert!(validate_aliyun_config(&c).is_err());
        c.sts_endpoint = Some("http://127.0.0.1:8000".into());
        assert!(validate_aliyun_config(&c).is_ok());
        c.region = Some("cn-hangzhou".into());
        assert!(validate_aliyun_config(&c).is_ok());
        c.region = Some("Hangzhou".into());
        assert!(validate_aliyun_config(&c).is_err());
    }

    #[test]
    fn an_aliyun_secret_round_trips_through_its_sealed_form() {
        let s = SecretValue::Aliyun {
            access_key_id: "LTAI5tKeywardTest0001".into(),
            access_key_secret: SecretString::from("kwTestSecret0123456789abcdefgh".to_owned()),
        };
        assert_eq!(s.kind(), EntryKind::Aliyun);
        let config = EntryConfig {
            aliyun: Some(cfg()),
            ..Default::default()
        };
        let plain = s.to_sealed_plaintext("id1", &config);
        match SecretValue::from_plaintext(&plain) {
            Some((
                SecretValue::Aliyun {
                    access_key_id,
                    access_key_secret,
                },
                Some(binding),
            )) => {
                assert_eq!(access_key_id, "LTAI5tKeywardTest0001");
                assert_eq!(
                    access_key_secret.expose_secret(),
                    "kwTestSecret0123456789abcdefgh"
                );
                assert_eq!(binding.config, config.bound());
            }
            _ => panic!("did not round-trip"),
        }
        assert_eq!(EntryKind::parse("aliyun"), Some(EntryKind::Aliyun));
    }
}
