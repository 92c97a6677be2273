//! What a key's provider says about its last use (for AWS, IAM's `GetAccessKeyLastUsed`), kept
//! beside Keyward's own "last used" so a key used outside Keyward (a CI copy, another laptop) is
//! not reported unused, and a key Keyward never hands out is.
//!
//! The catch: asking IAM is itself a request signed with the key, so IAM's answer is often
//! Keyward's own previous question (AWS updates the record some time after a request) or the
//! question being asked (moto updates it at once). A use at IAM within [`OWN_CHECK_SLACK`] of
//! either is taken for Keyward's check and not counted; every other use is, and the latest
//! counted one is kept across checks, since a later check of Keyward's hides it at IAM.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// How near one of Keyward's own checks a use at IAM must be to be taken for that check.
pub const OWN_CHECK_SLACK: Duration = Duration::minutes(2);

/// How long a successful check stands before the key is asked about again.
pub const CHECK_EVERY: Duration = Duration::hours(24);

/// How long after a failed check it is tried again.
pub const RETRY_AFTER: Duration = Duration::hours(1);

/// The provider's record of a key's last use, as Keyward last read it. Not secret; kept in the
/// catalog unsealed, like Keyward's own "last used".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct ProviderUse {
    /// The latest use the provider reported that was not Keyward's own check (RFC 3339);
    /// `None` when it reported none.
    pub used: Option<String>,
    /// The service that use was of (`sts`, `s3`, …), as the provider names it.
    pub service: Option<String>,
    /// The region that use was in.
    pub region: Option<String>,
    /// When Keyward last asked (RFC 3339), whether or not the answer came.
    pub checked: String,
    /// Why the last question got no answer (one line, never a secret); `None` when it did.
    pub error: Option<String>,
}

/// One answer from the provider: the use it has on record, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportedUse {
    /// When.
    pub at: Option<OffsetDateTime>,
    /// Of which service (`N/A` and empty read as unknown).
    pub service: Option<String>,
    /// In which region.
    pub region: Option<String>,
}

fn parse(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

fn format(t: OffsetDateTime) -> String {
    t.replace_nanosecond(0)
        .unwrap_or(t)
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn known(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != "N/A")
        .map(str::to_owned)
}

impl ProviderUse {
    /// The record after a check at `now` that got `reported`, given the record before it.
    pub fn after_check(
        prev: Option<&ProviderUse>,
        reported: &ReportedUse,
        now: OffsetDateTime,
    ) -> ProviderUse {
        let near = |a: OffsetDateTime, b: OffsetDateTime| (a - b).abs() <= OWN_CHECK_SLACK;
        let own_check = |at: OffsetDateTime| {
            known(&reported.service).as_deref() == Some("iam")
                && (near(at, now)
                    || prev
                        .and_then(|p| parse(&p.checked))
                        .is_some_and(|c| near(at, c)))
        };
        let counted = reported.at.filter(|at| !own_check(*at));
        let before = prev.and_then(|p| p.used.as_deref().and_then(parse));
        let mut out = ProviderUse {
            used: None,
            service: None,
            region: None,
            checked: format(now),
            error: None,
        };
        match (counted, before) {
            (Some(at), b) if b.is_none_or(|b| at > b) => {
                out.used = Some(format(at));
                out.service = known(&reported.service);
                out.region = known(&reported.region);
            }
            (_, Some(_)) => {
                if let Some(p) = prev {
                    out.used = p.used.clone();
                    out.service = p.service.clone();
                    out.region = p.region.clone();
                }
            }
            _ => {}
        }
        out
    }

    /// The record after a check at `now` that failed with `error`: what was known stays.
    pub fn after_failure(prev: Option<&ProviderUse>, error: &str, now: OffsetDateTime) -> Self {
        ProviderUse {
            used: prev.and_then(|p| p.used.clone()),
            service: prev.and_then(|p| p.service.clone()),
            region: prev.and_then(|p| p.region.clone()),
            checked: format(now),
            error: Some(error.lines().next().unwrap_or_default().to_owned()),
        }
    }

    /// Whether the key is due to be asked about again at `now` (a record whose date does not
    /// read is).
    pub fn due(record: Option<&ProviderUse>, now: OffsetDateTime) -> bool {
        let Some(r) = record else { return true };
        let wait = if r.error.is_some() {
            RETRY_AFTER
        } else {
            CHECK_EVERY
        };
        parse(&r.checked).is_none_or(|c| c + wait <= now || c > now + OWN_CHECK_SLACK)
    }

    /// In words, for `show` and the key directory: "2026-11-30T10:00:00Z (s3, eu-west-1);
    /// asked 2026-12-01T09:00:00Z", "nothing on record but Keyward's own checks; asked …", with
    /// the failure when the last question got no answer.
    pub fn summary(&self) -> String {
        let seen = match &self.used {
            Some(at) => {
                let how: Vec<&str> = [self.service.as_deref(), self.region.as_deref()]
                    .into_iter()
                    .flatten()
                    .collect();
                if how.is_empty() {
                    at.clone()
                } else {
                    format!("{at} ({})", how.join(", "))
                }
            }
            None if self.error.is_some() => "not known".to_owned(),
            None => "nothing on record but Keyward's own checks".to_owned(),
        };
        match &self.error {
            Some(e) => format!("{seen}; asking failed at {}: {e}", self.checked),
            None => format!("{seen}; asked {}", self.checked),
        }
    }

    /// The counted use as a time, if it reads.
    pub fn used_at(&self) -> Option<OffsetDateTime> {
        self.used.as_deref().and_then(parse)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn reported(at: OffsetDateTime, service: &str) -> ReportedUse {
        ReportedUse {
            at: Some(at),
            service: Some(service.into()),
            region: Some("us-east-1".into()),
        }
    }

    #[test]
    fn a_use_elsewhere_is_counted_and_keyward_s_own_checks_are_not() {
        let day1 = datetime!(2026-12-01 09:00 UTC);
        // moto records the question being asked: not a use.
        let first = ProviderUse::after_check(None, &reported(day1, "iam"), day1);
        assert_eq!(first.used, None);
        assert_eq!(first.checked, "2026-12-01T09:00:00Z");
        // AWS answers with a use of S3 since: counted, with its service and region.
        let day2 = day1 + Duration::days(1);
        let s3 = day1 + Duration::hours(5);
        let second = ProviderUse::after_check(Some(&first), &reported(s3, "s3"), day2);
        assert_eq!(second.used.as_deref(), Some("2026-12-01T14:00:00Z"));
        assert_eq!(second.service.as_deref(), Some("s3"));
        assert_eq!(second.region.as_deref(), Some("us-east-1"));
        // The next day IAM shows Keyward's day-2 question (AWS is late): the S3 use stays.
        let day3 = day2 + Duration::days(1);
        let late = day2 + Duration::seconds(40);
        let third = ProviderUse::after_check(Some(&second), &reported(late, "iam"), day3);
        assert_eq!(third.used.as_deref(), Some("2026-12-01T14:00:00Z"));
        assert_eq!(third.service.as_deref(), Some("s3"));
        assert_eq!(third.checked, "2026-12-03T09:00:00Z");
        // A use of IAM between the checks is someone else's: counted.
        let iam_call = day3 + Duration::hours(3);
        let fourth = ProviderUse::after_check(
            Some(&third),
            &reported(iam_call, "iam"),
            day3 + Duration::days(1),
        );
        assert_eq!(fourth.used.as_deref(), Some("2026-12-03T12:00:00Z"));
        assert_eq!(fourth.service.as_deref(), Some("iam"));
    }

    #[test]
    fn nothing_on_record_and_failures_keep_what_was_known() {
        let now = datetime!(2026-12-01 09:00 UTC);
        let none = ProviderUse::after_check(None, &ReportedUse::default(), now);
        assert_eq!(none.used, None);
        assert!(none.error.is_none());
        let known = ProviderUse::after_check(None, &reported(now - Duration::days(3), "sts"), now);
        assert_eq!(known.used.as_deref(), Some("2026-11-28T09:00:00Z"));
        let failed = ProviderUse::after_failure(
            Some(&known),
            "IAM refused: AccessDenied\nmore",
            now + Duration::days(1),
        );
        assert_eq!(failed.used, known.used);
        assert_eq!(failed.error.as_deref(), Some("IAM refused: AccessDenied"));
        // An older answer than what is kept does not go back in time.
        let older = ProviderUse::after_check(
            Some(&known),
            &reported(now - Duration::days(9), "ec2"),
            now + Duration::days(2),
        );
        assert_eq!(older.used, known.used);
        assert_eq!(older.service.as_deref(), Some("sts"));
        // `N/A` is how AWS says "never".
        let na = ReportedUse {
            at: None,
            service: Some("N/A".into()),
            region: Some("N/A".into()),
        };
        assert_eq!(ProviderUse::after_check(None, &na, now).service, None);
        assert_eq!(
            known.summary(),
            "2026-11-28T09:00:00Z (sts, us-east-1); asked 2026-12-01T09:00:00Z"
        );
        assert_eq!(
            none.summary(),
            "nothing on record but Keyward's own checks; asked 2026-12-01T09:00:00Z"
        );
        assert_eq!(
            failed.summary(),
            "2026-11-28T09:00:00Z (sts, us-east-1); asking failed at 2026-12-02T09:00:00Z: IAM refused: AccessDenied"
        );
        assert_eq!(
            ProviderUse::after_failure(None, "no route", now).summary(),
            "not known; asking failed at 2026-12-01T09:00:00Z: no route"
        );
    }

    #[test]
    fn a_key_is_asked_again_after_a_day_or_an_hour_after_a_failure() {
        let now = datetime!(2026-12-01 09:00 UTC);
        assert!(ProviderUse::due(None, now));
        let ok = ProviderUse::after_check(None, &ReportedUse::default(), now);
        assert!(!ProviderUse::due(Some(&ok), now + Duration::hours(23)));
        assert!(ProviderUse::due(Some(&ok), now + Duration::hours(24)));
        let failed = ProviderUse::after_failure(None, "no route", now);
        assert!(!ProviderUse::due(
            Some(&failed),
            now + Duration::minutes(59)
        ));
        assert!(ProviderUse::due(Some(&failed), now + Duration::hours(1)));
        // A check dated in the future (a clock that jumped back, or an edit) does not stop it.
        assert!(ProviderUse::due(Some(&ok), now - Duration::hours(1)));
        let mut garbled = ok.clone();
        garbled.checked = "yesterday".into();
        assert!(ProviderUse::due(Some(&garbled), now));
    }
}
