//! AWS entries: the non-secret settings (role, MFA, region, session length, STS endpoint) and
//! the checks on a long-lived key pair.

use super::*;

/// Non-secret settings of an AWS entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// First and last characters of the access key id, for display (`AKIA…WXYZ`).
    pub access_key_hint: String,
    /// Role to assume; GetSessionToken is used when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    /// MFA device serial or ARN, when the account requires MFA for STS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_serial: Option<String>,
    /// Region for the STS call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Lifetime of issued session credentials in seconds.
    pub session_duration_secs: u32,
    /// STS endpoint override (tests, private endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts_endpoint: Option<String>,
    /// IAM endpoint override for rotation (tests, private endpoints); AWS's global one when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam_endpoint: Option<String>,
}

/// Checks a long-lived AWS key pair.
pub fn validate_aws_key(access_key_id: &str, secret: &str) -> Result<(), EntryError> {
    let id_ok = (16..=128).contains(&access_key_id.len())
        && access_key_id.starts_with("AKIA")
        && access_key_id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if !id_ok {
        return Err(EntryError::AccessKeyId);
    }
    let secret_ok = secret.len() == 40
        && secret
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/');
    if !secret_ok {
        return Err(EntryError::SecretAccessKey);
    }
    Ok(())
}

/// Checks the non-secret AWS settings.
pub fn validate_aws_config(cfg: &AwsConfig) -> Result<(), EntryError> {
    if let Some(arn) = &cfg.role_arn {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let ok = parts.len() == 6
            && parts[0] == "arn"
            && parts[1].starts_with("aws")
            && parts[2] == "iam"
            && parts[4].len() == 12
            && parts[4].chars().all(|c| c.is_ascii_digit())
            && parts[5].starts_with("role/")
            && parts[5].len() > 5
            && arn.len() <= 2048
            && !arn.chars().any(|c| c.is_control() || c.is_whitespace());
        if !ok {
            return Err(EntryError::RoleArn(printable(arn)));
        }
    }
    if let Some(serial) = &cfg.mfa_serial {
        let ok = (9..=256).contains(&serial.len())
            && serial
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "=,.@:/-_+".contains(c));
        if !ok {
            return Err(EntryError::MfaSerial(printable(serial)));
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
    if !(1800..=129_600).contains(&cfg.session_duration_secs) {
        return Err(EntryError::Duration(cfg.session_duration_secs));
    }
    for ep in cfg.sts_endpoint.iter().chain(cfg.iam_endpoint.iter()) {
        validate_endpoint(ep)?;
    }
    Ok(())
}

/// Checks a provider endpoint override: `https://…`, or plain HTTP only to this machine (a
/// local test server), at most 512 characters, no spaces or control characters.
pub(super) fn validate_endpoint(ep: &str) -> Result<(), EntryError> {
    let local = ep.starts_with("http://127.0.0.1:")
        || ep.starts_with("http://localhost:")
        || ep.starts_with("http://[::1]:");
    let ok = (ep.starts_with("https://") || local)
        && ep.len() <= 512
        && !ep.chars().any(|c| c.is_control() || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(EntryError::Endpoint(printable(ep)))
    }
}

/// A display hint for an access key id: first four and last four characters.
pub fn access_key_hint(access_key_id: &str) -> String {
    let n = access_key_id.len();
    if n <= 8 {
        return "…".to_owned();
    }
    format!("{}…{}", &access_key_id[..4], &access_key_id[n - 4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws_cfg() -> AwsConfig {
        AwsConfig {
            access_key_hint: "AKIA…ABCD".into(),
            session_duration_secs: 3600,
            ..Default::default()
        }
    }

    #[test]
    fn aws_keys() {
        assert!(validate_aws_key(
            "AKIAKEYWARDTEST001",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        )
        .is_ok());
        assert_eq!(
            validate_aws_key("ASIAIOSFODNN7EXAMPLE", "x"),
            Err(EntryError::AccessKeyId)
        );
        assert_eq!(
            validate_aws_key("AKIAKEYWARDTEST001", "short"),
            Err(EntryError::SecretAccessKey)
        );
    }

    #[test]
    fn aws_config_bounds() {
        assert!(validate_aws_config(&aws_cfg()).is_ok());
        let mut c = aws_cfg();
        c.session_duration_secs = 900;
        assert_eq!(validate_aws_config(&c), Err(EntryError::Duration(900)));
        let mut c = aws_cfg();
        c.role_arn = Some("arn:aws:iam::123456789012:role/deploy".into());
        assert!(validate_aws_config(&c).is_ok());
        c.role_arn = Some("arn:aws:iam::1234:role/deploy".into());
        assert!(validate_aws_config(&c).is_err());
        let mut c = aws_cfg();
        c.sts_endpoint = Some("http://evil.example:80".into());
        assert!(validate_aws_config(&c).is_err());
        c.sts_endpoint = Some("http://127.0.0.1:5000".into());
        assert!(validate_aws_config(&c).is_ok());
    }
}
