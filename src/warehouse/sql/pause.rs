//! Whether a serverless database can auto-pause between fetches. It pauses once it has had no
//! session and no CPU for the whole auto-pause delay ("Auto-pause and auto-resume in the
//! serverless compute tier"), then takes 1 to 10 minutes more ("Serverless compute tier for Azure
//! SQL Database", latency); the writer's pooled connection is a session until `SQL_IDLE_TIMEOUT`
//! closes it, checked every reaper round. So between two fetches the database is quiet for the
//! wait between them less the idle timeout and a reaper round, and pauses if that outlasts the
//! delay.

use std::fmt;
use std::time::Duration;

/// How often idle connections are looked at: half the idle timeout, at most 30 s (bb8's own
/// default), so a connection is closed within 1.5 idle timeouts at the latest.
pub fn reaper_round(idle_timeout: Duration) -> Duration {
    (idle_timeout / 2).clamp(Duration::from_secs(1), Duration::from_secs(30))
}

/// The longest a serverless database takes to pause once the delay has passed.
pub const PAUSE_LATENCY: Duration = Duration::from_secs(10 * 60);

/// What the waits between fetches let a serverless database do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// Even the longest wait ends before the database may pause: it stays online, billed every
    /// second, and a free allowance runs out.
    Never { longest: Duration, needed: Duration },
    /// Some waits are long enough, others not.
    Sometimes {
        shortest: Duration,
        needed: Duration,
    },
    /// Every wait is long enough: it pauses between fetches.
    Always {
        shortest: Duration,
        needed: Duration,
    },
}

impl Pause {
    /// Judges the waits between fetches against the quiet time the database needs: the idle
    /// timeout and a reaper round (the last session closes), then the delay.
    pub fn of(
        shortest: Duration,
        longest: Duration,
        idle_timeout: Duration,
        delay: Duration,
    ) -> Self {
        let needed = idle_timeout
            .saturating_add(reaper_round(idle_timeout))
            .saturating_add(delay);
        if longest <= needed {
            Self::Never { longest, needed }
        } else if shortest <= needed {
            Self::Sometimes { shortest, needed }
        } else {
            Self::Always { shortest, needed }
        }
    }

    pub fn can_pause(&self) -> bool {
        !matches!(self, Self::Never { .. })
    }
}

impl fmt::Display for Pause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let minutes = |d: &Duration| humantime::format_duration(Duration::from_secs(d.as_secs()));
        match self {
            Self::Never { longest, needed } => write!(
                f,
                "it never pauses: the longest wait between fetches ({}) is shorter than the {} it must be quiet (SQL_IDLE_TIMEOUT, a reaper round, SQL_AUTO_PAUSE_DELAY), so it stays online and is billed every second",
                minutes(longest),
                minutes(needed)
            ),
            Self::Sometimes { shortest, needed } => write!(
                f,
                "it pauses only in the waits longer than {} (SQL_IDLE_TIMEOUT, a reaper round, SQL_AUTO_PAUSE_DELAY, then up to {} to pause); the shortest wait, {}, keeps it online",
                minutes(needed),
                minutes(&PAUSE_LATENCY),
                minutes(shortest)
            ),
            Self::Always { shortest, needed } => write!(
                f,
                "it can pause between fetches: the shortest wait ({}) outlasts the {} it must be quiet (SQL_IDLE_TIMEOUT, a reaper round, SQL_AUTO_PAUSE_DELAY), and pausing takes up to {} more",
                minutes(shortest),
                minutes(needed),
                minutes(&PAUSE_LATENCY)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_reaper_round_is_half_the_idle_timeout_within_1_to_30_seconds() {
        assert_eq!(reaper_round(MINUTE), Duration::from_secs(30));
        assert_eq!(
            reaper_round(Duration::from_secs(20)),
            Duration::from_secs(10)
        );
        assert_eq!(reaper_round(Duration::from_secs(1)), Duration::from_secs(1));
        assert_eq!(reaper_round(10 * MINUTE), Duration::from_secs(30));
    }

    #[test]
    fn no_delay_is_too_long_to_judge() {
        let pause = Pause::of(60 * MINUTE, 60 * MINUTE, MINUTE, Duration::MAX);
        assert_eq!(
            pause,
            Pause::Never {
                longest: 60 * MINUTE,
                needed: Duration::MAX
            }
        );
    }

    #[test]
    fn five_minute_fetches_never_let_a_15_minute_delay_pass() {
        let pause = Pause::of(5 * MINUTE, 5 * MINUTE, MINUTE, 15 * MINUTE);
        assert!(!pause.can_pause());
        assert_eq!(
            pause.to_string(),
            "it never pauses: the longest wait between fetches (5m) is shorter than the 16m 30s it must be quiet (SQL_IDLE_TIMEOUT, a reaper round, SQL_AUTO_PAUSE_DELAY), so it stays online and is billed every second"
        );
    }

    #[test]
    fn hourly_fetches_let_it_pause_after_each_write() {
        let pause = Pause::of(60 * MINUTE, 60 * MINUTE, MINUTE, 15 * MINUTE);
        assert!(matches!(pause, Pause::Always { .. }));
        assert!(
            pause
                .to_string()
                .starts_with("it can pause between fetches")
        );
    }

    #[test]
    fn the_old_four_minute_idle_timeout_and_60_minute_delay_kept_an_hourly_schedule_online() {
        let pause = Pause::of(60 * MINUTE, 60 * MINUTE, 4 * MINUTE, 60 * MINUTE);
        assert!(!pause.can_pause());
    }

    #[test]
    fn twice_a_day_at_uneven_hours_pauses_in_the_long_wait_only() {
        let pause = Pause::of(8 * 60 * MINUTE, 16 * 60 * MINUTE, MINUTE, 10 * 60 * MINUTE);
        assert!(matches!(pause, Pause::Sometimes { .. }));
        assert!(pause.can_pause());
    }
}
