//! Which limit of the CoinCap plan an answer reports (the month's credits, or the rate limit),
//! the sentence it becomes and what to change.

use crate::fault::Limit;

/// What to change when CoinCap's credits are spent.
pub const CREDITS_FIX: &str = "the CoinCap plan's credits are spent: wait for the plan's renewal or upgrade it at https://pro.coincap.io/dashboard, and spend fewer credits a month: fetch less often (FETCH_SCHEDULE) or fewer assets (COINCAP_LIMIT, COINCAP_IDS); `handler check` estimates the month's credits against COINCAP_MONTHLY_CREDITS and names the setting that fits";

/// Which CoinCap limit an answer reports: 402 (Payment Required) is the credits; a 429 is the
/// rate limit unless its body speaks of credits. (CoinCap's status codes for these are not in
/// any stored copy of its documentation: this is the reading of the codes themselves.)
pub(super) fn limit_of(status: u16, body: &str) -> Option<Limit> {
    let speaks_of_credits = || body.to_ascii_lowercase().contains("credit");
    match status {
        402 => Some(Limit::CoinCapCredits),
        429 if speaks_of_credits() => Some(Limit::CoinCapCredits),
        429 => Some(Limit::CoinCapRateLimit),
        _ => None,
    }
}

/// The sentence for a non-2xx answer: which limit it reports, if one, and CoinCap's body.
pub(super) fn status_message(status: u16, body: &str) -> String {
    match limit_of(status, body) {
        Some(Limit::CoinCapCredits) => {
            format!(
                "CoinCap refused the call because the plan's credits are spent (HTTP {status}): {body}"
            )
        }
        Some(_) => format!(
            "CoinCap's rate limit was hit (HTTP {status}; if every fetch meets it, the month's credits may be spent: compare COINCAP_MONTHLY_CREDITS with the CoinCap dashboard): {body}"
        ),
        None => format!("CoinCap answered HTTP {status}: {body}"),
    }
}
