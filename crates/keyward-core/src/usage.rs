//! "Unusual use": the simple per-key baseline the agent compares each issuance with. A key has
//! served some programs, from some process chains, at some daily rate; a program or chain it
//! never served before, or a day at many times its usual rate, is reported (an audit row and a
//! notification), never refused: the approval gate decides who gets credentials.

/// Days of history the usual rate is taken from.
pub const HISTORY_DAYS: u32 = 14;

/// Days with use needed before a rate is compared at all.
pub const MIN_HISTORY_DAYS: usize = 3;

/// How many times the usual daily rate counts as unusual.
pub const RATE_FACTOR: u64 = 10;

/// Fewer issuances than this in a day are never unusual, whatever the history.
pub const RATE_FLOOR: u64 = 50;

/// The usual daily rate (the median of the days with use in `history`) when `today` is many
/// times it; `None` when today is usual or there is too little history to tell.
pub fn unusual_rate(today: u64, history: &[u64]) -> Option<u64> {
    let mut days: Vec<u64> = history.iter().copied().filter(|n| *n > 0).collect();
    if days.len() < MIN_HISTORY_DAYS {
        return None;
    }
    days.sort_unstable();
    let usual = days[days.len() / 2].max(1);
    (today >= RATE_FLOOR && today >= usual.saturating_mul(RATE_FACTOR)).then_some(usual)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_at_ten_times_the_usual_rate_is_unusual_once_there_is_history() {
        assert_eq!(unusual_rate(500, &[]), None, "no history yet");
        assert_eq!(unusual_rate(500, &[20, 30]), None, "two days are too few");
        assert_eq!(unusual_rate(500, &[20, 30, 25, 0, 0]), Some(25));
        assert_eq!(unusual_rate(249, &[20, 30, 25]), None, "under ten times");
        assert_eq!(
            unusual_rate(40, &[1, 2, 1]),
            None,
            "a small day is never unusual"
        );
        assert_eq!(unusual_rate(50, &[1, 2, 1]), Some(1));
    }
}
