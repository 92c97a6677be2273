//! AWS IAM, for rotating a stored access key and reading when AWS last saw it used: the
//! official SDK, signed with the key itself (IAM names the user from the signing key).
//!
//! IAM is a global service signed for `us-east-1`; an entry's `iam_endpoint` overrides where
//! the calls go (tests, private endpoints). Responses are bounded like STS's.

use aws_credential_types::Credentials;
use aws_sdk_iam::config::{BehaviorVersion, Region};
use aws_sdk_iam::types::StatusType;
use keyward_core::{AwsConfig, ReportedUse};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::aws::{describe, AwsError, BoundedResponse};

/// One access key of an IAM user, as IAM lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAtIam {
    /// AKIA… id.
    pub id: String,
    /// Whether it is active (an inactive key signs nothing).
    pub active: bool,
    /// When it was created.
    pub created: Option<OffsetDateTime>,
}

/// IAM, signed with one access key.
pub struct Iam {
    client: aws_sdk_iam::Client,
    profile: String,
}

impl Iam {
    /// An IAM client for `profile`'s endpoint, signing with the given long-lived key.
    pub fn new(profile: &str, cfg: &AwsConfig, access_key_id: &str, secret: &SecretString) -> Iam {
        let mut builder = aws_sdk_iam::Config::builder()
            .interceptor(BoundedResponse)
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                access_key_id,
                secret.expose_secret(),
                None,
                None,
                "keyward",
            ));
        if let Some(ep) = &cfg.iam_endpoint {
            builder = builder.endpoint_url(ep);
        }
        Iam {
            client: aws_sdk_iam::Client::from_conf(builder.build()),
            profile: profile.to_owned(),
        }
    }

    fn refused(&self, reason: String) -> AwsError {
        AwsError::Iam {
            profile: self.profile.clone(),
            reason,
        }
    }

    /// The IAM user the signing key belongs to.
    pub async fn user_name(&self) -> Result<String, AwsError> {
        let out = self
            .client
            .get_user()
            .send()
            .await
            .map_err(|e| self.refused(describe(&e, "IAM")))?;
        out.user
            .map(|u| u.user_name)
            .ok_or_else(|| self.refused("the response named no user".to_owned()))
    }

    /// The user's access keys.
    pub async fn keys(&self, user: &str) -> Result<Vec<KeyAtIam>, AwsError> {
        let out = self
            .client
            .list_access_keys()
            .user_name(user)
            .send()
            .await
            .map_err(|e| self.refused(describe(&e, "IAM")))?;
        Ok(out
            .access_key_metadata
            .into_iter()
            .filter_map(|k| {
                Some(KeyAtIam {
                    id: k.access_key_id?,
                    active: k.status == Some(StatusType::Active),
                    created: k
                        .create_date
                        .and_then(|d| OffsetDateTime::from_unix_timestamp(d.secs()).ok()),
                })
            })
            .collect())
    }

    /// Creates a new access key for `user`; its secret is shown this once.
    pub async fn create(&self, user: &str) -> Result<(String, SecretString), AwsError> {
        let out = self
            .client
            .create_access_key()
            .user_name(user)
            .send()
            .await
            .map_err(|e| self.refused(describe(&e, "IAM")))?;
        let k = out
            .access_key
            .ok_or_else(|| self.refused("the response held no access key".to_owned()))?;
        Ok((k.access_key_id, SecretString::from(k.secret_access_key)))
    }

    /// Makes `id` inactive (it can be made active again until it is deleted).
    pub async fn deactivate(&self, user: &str, id: &str) -> Result<(), AwsError> {
        self.client
            .update_access_key()
            .user_name(user)
            .access_key_id(id)
            .status(StatusType::Inactive)
            .send()
            .await
            .map_err(|e| self.refused(describe(&e, "IAM")))?;
        Ok(())
    }

    /// Deletes `id`; `false` when IAM no longer has it (already deleted).
    pub async fn delete(&self, user: &str, id: &str) -> Result<bool, AwsError> {
        match self
            .client
            .delete_access_key()
            .user_name(user)
            .access_key_id(id)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(self.refused(describe(&e, "IAM"))),
        }
    }

    /// What IAM has on record about `id`'s last use (IAM keeps it for about 400 days). Asking
    /// is itself a use of the signing key: see [`keyward_core::ProviderUse`] for how that is
    /// told apart.
    pub async fn last_used(&self, id: &str) -> Result<ReportedUse, AwsError> {
        let out = self
            .client
            .get_access_key_last_used()
            .access_key_id(id)
            .send()
            .await
            .map_err(|e| self.refused(describe(&e, "IAM")))?;
        Ok(out
            .access_key_last_used
            .map(|u| ReportedUse {
                at: u
                    .last_used_date
                    .and_then(|d| OffsetDateTime::from_unix_timestamp(d.secs()).ok()),
                service: Some(u.service_name),
                region: Some(u.region),
            })
            .unwrap_or_default())
    }
}
