//! What CoinCap bills, known before it is spent: credits per answer by its size (reportedly 1
//! credit per 2.5 KB; no stored copy of CoinCap's pricing page says so, its dashboard shows the
//! real count), a month of them at a schedule, against the monthly budget
//! (`COINCAP_MONTHLY_CREDITS`), and which setting fits the budget when it would be exceeded.

use std::fmt;

use super::CoinCapConfig;

/// CoinCap reportedly bills 1 credit per 2.5 KB of answer.
pub const BYTES_PER_CREDIT: u64 = 2500;
/// The free plan's credits a month, as reported in 2025 (the default budget).
pub const DEFAULT_MONTHLY_CREDITS: u64 = 2500;
/// Estimates are for the longest month, so a budget that fits holds every month.
pub const MONTH_DAYS: u64 = 31;
/// Bytes an asset takes in CoinCap's answer before any answer was seen (`serve`'s start line):
/// a 100-asset answer reportedly takes about 45 KB. Every answer then logs its real size.
pub const USUAL_ASSET_BYTES: u64 = 450;

/// `COINCAP_MONTHLY_CREDITS`: a whole number, at least 1.
pub fn parse_budget(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of credits, at least 1 (the free plan has 2500)".into()),
    }
}

/// Credits CoinCap bills for an answer of `bytes` (at least 1 a call).
pub fn credits(bytes: u64) -> u64 {
    bytes.div_ceil(BYTES_PER_CREDIT).max(1)
}

/// Where the size of an answer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measured {
    /// A real answer of `bytes` for `assets` assets (scaled to the assets a call asks for).
    Answer { bytes: u64, assets: u64 },
    /// No answer yet: [`USUAL_ASSET_BYTES`] an asset.
    Usual,
}

/// A month of CoinCap calls at a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Calls the schedule makes in a [`MONTH_DAYS`]-day month.
    pub calls: u64,
    /// Assets a call asks for (`COINCAP_LIMIT`, or the number of `COINCAP_IDS` up to it).
    pub assets: u64,
    pub measured: Measured,
    /// `COINCAP_MONTHLY_CREDITS`.
    pub budget: u64,
}

impl Estimate {
    /// The month at `calls` calls of what `config` asks for (`COINCAP_LIMIT`, `COINCAP_IDS`),
    /// against its `COINCAP_MONTHLY_CREDITS`.
    pub fn of(config: &CoinCapConfig, calls: u64, measured: Measured) -> Self {
        Self {
            calls,
            assets: config.assets_a_call(),
            measured,
            budget: config.monthly_credits,
        }
    }

    /// The estimate, and when it is over the budget, what fits (`... Fix: FETCH_SCHEDULE=...`).
    pub fn with_fix(&self, config: &CoinCapConfig) -> String {
        if self.fits() {
            self.to_string()
        } else {
            format!("{self}. Fix: {}", self.what_fits(config.ids.is_some()))
        }
    }

    /// Bytes an asset takes, from the answer measured (rounded up).
    pub fn asset_bytes(&self) -> u64 {
        match self.measured {
            Measured::Answer { bytes, assets } => bytes.div_ceil(assets.max(1)),
            Measured::Usual => USUAL_ASSET_BYTES,
        }
    }

    /// Bytes of one call's answer: the measured answer as it is when it was for as many assets,
    /// else scaled by the assets asked for.
    pub fn bytes_a_call(&self) -> u64 {
        match self.measured {
            Measured::Answer { bytes, assets } if assets == self.assets => bytes,
            _ => self.asset_bytes() * self.assets,
        }
    }

    pub fn credits_a_call(&self) -> u64 {
        credits(self.bytes_a_call())
    }

    pub fn credits_a_month(&self) -> u64 {
        self.calls * self.credits_a_call()
    }

    pub fn fits(&self) -> bool {
        self.credits_a_month() <= self.budget
    }

    /// The settings that would fit the budget, most useful first: a less frequent schedule at
    /// these assets; fewer assets at this schedule; a budget as large as the plan's.
    pub fn what_fits(&self, ids_set: bool) -> String {
        let mut ways = Vec::new();
        let per_call = self.credits_a_call();
        if let Some(every) = EVERY
            .iter()
            .find(|every| every.calls() * per_call <= self.budget)
        {
            ways.push(format!(
                "FETCH_SCHEDULE=\"{}\" ({}: {} calls, about {} credits a month)",
                every.ncrontab,
                every.name,
                thousands(every.calls()),
                thousands(every.calls() * per_call)
            ));
        }
        let credits_a_call = self.budget / self.calls.max(1);
        let assets = (credits_a_call * BYTES_PER_CREDIT) / self.asset_bytes().max(1);
        if assets >= 1 && assets < self.assets {
            let setting = if ids_set {
                format!("COINCAP_IDS with at most {assets} ids")
            } else {
                format!("COINCAP_LIMIT={assets}")
            };
            ways.push(format!(
                "{setting} at this schedule (about {} credits a month)",
                thousands(self.calls * credits(assets * self.asset_bytes()))
            ));
        }
        ways.push(format!(
            "COINCAP_MONTHLY_CREDITS={} if your CoinCap plan has that many",
            thousands(self.credits_a_month())
        ));
        ways.join(", or ")
    }
}

impl fmt::Display for Estimate {
    /// `about 1,488 credits a month (744 calls in a 31-day month x 2 credits for a 4,500-byte
    /// answer of 10 assets; ...), within COINCAP_MONTHLY_CREDITS=2,500`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match self.measured {
            Measured::Answer { bytes, assets } if assets == self.assets => {
                format!("a real answer of {} bytes", thousands(bytes))
            }
            Measured::Answer { bytes, assets } => format!(
                "{} bytes an asset, from a real answer of {} bytes for {assets}",
                thousands(self.asset_bytes()),
                thousands(bytes)
            ),
            Measured::Usual => format!(
                "about {USUAL_ASSET_BYTES} bytes an asset, the size CoinCap's answers reportedly have; each fetch logs its real size"
            ),
        };
        write!(
            f,
            "about {} credits a month ({} calls in a {MONTH_DAYS}-day month x {} credit{} for {} assets, {} bytes a call: {source}; CoinCap reportedly bills 1 credit per 2.5 KB), {} COINCAP_MONTHLY_CREDITS={}",
            thousands(self.credits_a_month()),
            thousands(self.calls),
            self.credits_a_call(),
            if self.credits_a_call() == 1 { "" } else { "s" },
            self.assets,
            thousands(self.bytes_a_call()),
            if self.fits() { "within" } else { "over" },
            thousands(self.budget)
        )
    }
}

/// A regular schedule a fix may propose.
struct Every {
    ncrontab: &'static str,
    name: &'static str,
    minutes: u64,
}

impl Every {
    /// Its calls in the month that holds the most: one starting with a fire (five Mondays).
    fn calls(&self) -> u64 {
        (MONTH_DAYS * 24 * 60).div_ceil(self.minutes)
    }
}

/// Regular schedules, most frequent first.
const EVERY: [Every; 12] = [
    Every {
        ncrontab: "0 */5 * * * *",
        name: "every 5 minutes",
        minutes: 5,
    },
    Every {
        ncrontab: "0 */15 * * * *",
        name: "every 15 minutes",
        minutes: 15,
    },
    Every {
        ncrontab: "0 */30 * * * *",
        name: "every 30 minutes",
        minutes: 30,
    },
    Every {
        ncrontab: "0 0 * * * *",
        name: "hourly",
        minutes: 60,
    },
    Every {
        ncrontab: "0 0 */2 * * *",
        name: "every 2 hours",
        minutes: 120,
    },
    Every {
        ncrontab: "0 0 */3 * * *",
        name: "every 3 hours",
        minutes: 180,
    },
    Every {
        ncrontab: "0 0 */4 * * *",
        name: "every 4 hours",
        minutes: 240,
    },
    Every {
        ncrontab: "0 0 */6 * * *",
        name: "every 6 hours",
        minutes: 360,
    },
    Every {
        ncrontab: "0 0 */8 * * *",
        name: "every 8 hours",
        minutes: 480,
    },
    Every {
        ncrontab: "0 0 */12 * * *",
        name: "every 12 hours",
        minutes: 720,
    },
    Every {
        ncrontab: "0 0 6 * * *",
        name: "daily at 06:00",
        minutes: 1440,
    },
    Every {
        ncrontab: "0 0 6 * * 1",
        name: "weekly, Mondays at 06:00",
        minutes: 7 * 1440,
    },
];

/// `160704` -> `160,704`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estimate(calls: u64, assets: u64, measured: Measured) -> Estimate {
        Estimate {
            calls,
            assets,
            measured,
            budget: DEFAULT_MONTHLY_CREDITS,
        }
    }

    #[test]
    fn an_answer_costs_a_credit_per_started_2_5_kb_and_at_least_one() {
        assert_eq!(credits(0), 1);
        assert_eq!(credits(431), 1);
        assert_eq!(credits(2500), 1);
        assert_eq!(credits(2501), 2);
        assert_eq!(credits(45_000), 18);
    }

    #[test]
    fn the_old_defaults_spend_far_more_than_the_free_plan() {
        // 100 assets every 5 minutes, from a 45 KB answer: the figures.
        let old = estimate(
            8928,
            100,
            Measured::Answer {
                bytes: 45_000,
                assets: 100,
            },
        );
        assert_eq!(old.credits_a_call(), 18);
        assert_eq!(old.credits_a_month(), 160_704);
        assert!(!old.fits());
        assert!(
            old.to_string().starts_with(
                "about 160,704 credits a month (8,928 calls in a 31-day month x 18 credits for 100 assets, 45,000 bytes a call: a real answer of 45,000 bytes;"
            ),
            "{old}"
        );
        assert!(
            old.to_string()
                .ends_with("over COINCAP_MONTHLY_CREDITS=2,500"),
            "{old}"
        );
        // Every 5 minutes is 8,928 calls: more than 2,500 at 1 credit each, so fewer assets
        // alone cannot fit; every 6 hours (124 calls x 18 = 2,232) does.
        assert_eq!(
            old.what_fits(false),
            "FETCH_SCHEDULE=\"0 0 */6 * * *\" (every 6 hours: 124 calls, about 2,232 credits a month), or COINCAP_MONTHLY_CREDITS=160,704 if your CoinCap plan has that many"
        );
    }

    #[test]
    fn the_new_defaults_fit_the_free_plan() {
        // 10 assets hourly at the usual size: 744 calls x 2 credits.
        let new = estimate(744, 10, Measured::Usual);
        assert_eq!(new.bytes_a_call(), 4500);
        assert_eq!(new.credits_a_month(), 1488);
        assert!(new.fits());
        assert!(
            new.to_string()
                .contains("within COINCAP_MONTHLY_CREDITS=2,500")
        );
        assert!(new.to_string().contains("reportedly"));
    }

    #[test]
    fn a_one_asset_answer_is_scaled_to_the_assets_a_call_asks_for() {
        let scaled = estimate(
            744,
            100,
            Measured::Answer {
                bytes: 431,
                assets: 1,
            },
        );
        assert_eq!(scaled.bytes_a_call(), 43_100);
        assert_eq!(scaled.credits_a_call(), 18);
        assert!(
            scaled
                .to_string()
                .contains("431 bytes an asset, from a real answer of 431 bytes for 1"),
            "{scaled}"
        );
        // Hourly, 3 credits a call fit: 7,500 bytes, 17 assets of 431 bytes.
        let fits = scaled.what_fits(false);
        assert!(
            fits.starts_with("FETCH_SCHEDULE=\"0 0 */6 * * *\""),
            "{fits}"
        );
        assert!(
            fits.contains("COINCAP_LIMIT=17 at this schedule (about 2,232 credits a month)"),
            "{fits}"
        );
        assert!(
            scaled
                .what_fits(true)
                .contains("COINCAP_IDS with at most 17 ids")
        );
    }

    #[test]
    fn a_schedule_too_frequent_for_even_one_credit_a_call_proposes_only_the_schedule_or_budget() {
        let every_second = estimate(2_678_400, 2, Measured::Usual);
        let fits = every_second.what_fits(true);
        assert!(!fits.contains("COINCAP_IDS"), "{fits}");
        assert!(
            fits.starts_with("FETCH_SCHEDULE=\"0 */30 * * * *\" (every 30 minutes"),
            "{fits}"
        );
    }

    #[test]
    fn each_proposed_schedule_is_counted_as_the_schedule_itself_is() {
        for every in &EVERY {
            let schedule = crate::local::Schedule::ncrontab(every.ncrontab).unwrap();
            assert_eq!(
                every.calls(),
                schedule.month(MONTH_DAYS).calls,
                "{}",
                every.name
            );
        }
        // 18 credits a call: daily (31 calls) is over 100 credits, weekly (5 Mondays) is not.
        let mut weekly = estimate(744, 100, Measured::Usual);
        weekly.budget = 100;
        assert!(
            weekly.what_fits(false).starts_with(
                "FETCH_SCHEDULE=\"0 0 6 * * 1\" (weekly, Mondays at 06:00: 5 calls, about 90 credits a month)"
            ),
            "{}",
            weekly.what_fits(false)
        );
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(2500), "2,500");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
