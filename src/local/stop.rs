//! Stopping the local runner. SIGTERM or the first Ctrl-C drains: no new ticks, and what was
//! fetched is written for at most the drain deadline (`--drain-timeout`); the deadline, or a
//! second signal, abandons what is still unwritten (it is counted as not written). A permanent
//! failure stops it without a signal: of TimerFetch, by draining; of EventHubSink, by abandoning.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Running,
    Draining,
    Abandoned,
}

/// While draining, the longest wait between two attempts at what was fetched.
const DRAIN_RETRY: Duration = Duration::from_secs(1);

/// How a wait before another attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// The whole wait passed.
    Elapsed,
    /// A stop ended it early: try at once.
    CutShort,
    /// The run was abandoned: no more attempts.
    Abandoned,
}

#[derive(Clone)]
pub struct Stop(Arc<Inner>);

struct Inner {
    level: watch::Sender<Level>,
    drain: Duration,
}

impl Stop {
    /// A stop that only [`Stop::drain`] and [`Stop::abandon`] move.
    pub fn new(drain: Duration) -> Self {
        Self(Arc::new(Inner {
            level: watch::channel(Level::Running).0,
            drain,
        }))
    }

    /// [`Stop::new`], moved by Ctrl-C and SIGTERM too (listened for in the background).
    pub fn listen(drain: Duration) -> Self {
        let stop = Self::new(drain);
        let listening = stop.clone();
        tokio::spawn(async move {
            let mut signals = match Signals::new() {
                Ok(signals) => signals,
                Err(error) => {
                    tracing::error!(%error, "Cannot listen for Ctrl-C and SIGTERM.");
                    return;
                }
            };
            let first = signals.next().await;
            if listening.drain() {
                println!(
                    "Stopping ({first}): no new ticks; writing what was already fetched for at most {} (--drain-timeout). Ctrl-C or SIGTERM again abandons it.",
                    humantime::format_duration(listening.0.drain)
                );
            } else if listening.abandon() {
                println!(
                    "Abandoning ({first}): events not yet written are counted as not written."
                );
            }
            let second = signals.next().await;
            if listening.abandon() {
                println!(
                    "Abandoning ({second} again): events not yet written are counted as not written."
                );
            }
        });
        stop
    }

    /// No new ticks; writing goes on until the drain deadline, then what is left is abandoned.
    /// False when the run was already stopping.
    pub fn drain(&self) -> bool {
        if !self.raise(Level::Draining) {
            return false;
        }
        let deadline = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(deadline.0.drain).await;
            if deadline.abandon() {
                println!(
                    "Abandoning: the drain deadline of {} (--drain-timeout) passed; events not yet written are counted as not written.",
                    humantime::format_duration(deadline.0.drain)
                );
            }
        });
        true
    }

    /// Stops writing at once: what is unwritten stays so. False when it already was abandoned.
    pub fn abandon(&self) -> bool {
        self.raise(Level::Abandoned)
    }

    fn raise(&self, to: Level) -> bool {
        self.0.level.send_if_modified(|level| {
            let raised = *level < to;
            if raised {
                *level = to;
            }
            raised
        })
    }

    pub fn requested(&self) -> bool {
        *self.0.level.borrow() >= Level::Draining
    }

    pub fn abandoned(&self) -> bool {
        *self.0.level.borrow() >= Level::Abandoned
    }

    /// Resolves once a stop is requested.
    pub async fn requested_now(&self) {
        self.reached(Level::Draining).await;
    }

    /// Resolves once the run is abandoned.
    pub async fn abandoned_now(&self) {
        self.reached(Level::Abandoned).await;
    }

    async fn reached(&self, level: Level) {
        let mut receiver = self.0.level.subscribe();
        // The sender lives in `self`, so the wait cannot end with an error while it runs.
        let _ = receiver.wait_for(|now| *now >= level).await;
    }

    /// Sleeps for `delay`; false if the run was abandoned meanwhile.
    pub async fn sleep_unless_abandoned(&self, delay: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(delay) => !self.abandoned(),
            () = self.abandoned_now() => false,
        }
    }

    /// How long to wait before another attempt when the retry policy says `delay`: `delay` while
    /// running, at most [`DRAIN_RETRY`] once a stop is requested (the drain deadline, not the
    /// retry policy, bounds the attempts then). The wait ([`Stop::backoff`]) and the line that
    /// announces it both take it from here.
    pub fn retry_delay(&self, delay: Duration) -> Duration {
        match self.requested() {
            true => delay.min(DRAIN_RETRY),
            false => delay,
        }
    }

    /// The wait before another attempt: `delay` while running; a stop cuts it short (what was
    /// fetched is tried at once), and while draining the attempts follow each other
    /// [`Stop::retry_delay`] apart.
    pub async fn backoff(&self, delay: Duration) -> Backoff {
        if self.abandoned() {
            return Backoff::Abandoned;
        }
        if self.requested() {
            return match self.sleep_unless_abandoned(self.retry_delay(delay)).await {
                true => Backoff::Elapsed,
                false => Backoff::Abandoned,
            };
        }
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = self.requested_now() => {}
        }
        match (self.abandoned(), self.requested()) {
            (true, _) => Backoff::Abandoned,
            (false, true) => Backoff::CutShort,
            (false, false) => Backoff::Elapsed,
        }
    }
}

/// Ctrl-C and SIGTERM, each named as it arrives.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> std::io::Result<Self> {
        Ok(Self {})
    }

    #[cfg(unix)]
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "Ctrl-C",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> &'static str {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        "Ctrl-C"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_drain_abandons_at_its_deadline() {
        let stop = Stop::new(Duration::from_secs(20));
        assert!(!stop.requested());
        assert!(stop.drain());
        assert!(!stop.drain(), "draining already");
        assert!(stop.requested() && !stop.abandoned());
        assert!(!stop.sleep_unless_abandoned(Duration::from_secs(60)).await);
        assert!(stop.abandoned());
    }

    #[tokio::test(start_paused = true)]
    async fn an_abandon_ends_a_wait_at_once_and_counts_once() {
        let stop = Stop::new(Duration::from_secs(20));
        let waiting = stop.clone();
        let wait = tokio::spawn(async move {
            waiting
                .sleep_unless_abandoned(Duration::from_secs(300))
                .await
        });
        tokio::task::yield_now().await;
        assert!(stop.abandon());
        assert!(!stop.abandon());
        assert!(!wait.await.unwrap());
        assert!(stop.requested(), "an abandoned run is a stopped one");
        assert!(!stop.drain(), "nothing to drain once abandoned");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_cuts_a_pending_backoff_short_and_drain_attempts_follow_closely() {
        let stop = Stop::new(Duration::from_secs(20));
        let waiting = stop.clone();
        let started = tokio::time::Instant::now();
        let wait = tokio::spawn(async move { waiting.backoff(Duration::from_secs(300)).await });
        tokio::time::sleep(Duration::from_secs(16)).await;
        assert!(stop.drain());
        assert_eq!(wait.await.unwrap(), Backoff::CutShort);
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(16),
            "not a second later"
        );
        let started = tokio::time::Instant::now();
        assert_eq!(
            stop.backoff(Duration::from_secs(300)).await,
            Backoff::Elapsed
        );
        assert_eq!(started.elapsed(), DRAIN_RETRY, "draining: no 5-minute wait");
        assert_eq!(
            stop.backoff(Duration::from_millis(200)).await,
            Backoff::Elapsed
        );
        stop.abandon();
        assert_eq!(
            stop.backoff(Duration::from_secs(1)).await,
            Backoff::Abandoned
        );
    }

    #[test]
    fn the_retry_policy_s_delay_holds_while_running_and_is_capped_while_draining() {
        let stop = Stop::new(Duration::from_secs(20));
        let five_minutes = Duration::from_secs(300);
        assert_eq!(stop.retry_delay(five_minutes), five_minutes);
        stop.raise(Level::Draining);
        assert_eq!(stop.retry_delay(five_minutes), DRAIN_RETRY);
        assert_eq!(
            stop.retry_delay(Duration::from_millis(200)),
            Duration::from_millis(200)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_backoff_runs_its_course_while_running() {
        let stop = Stop::new(Duration::from_secs(20));
        let started = tokio::time::Instant::now();
        assert_eq!(
            stop.backoff(Duration::from_secs(40)).await,
            Backoff::Elapsed
        );
        assert_eq!(started.elapsed(), Duration::from_secs(40));
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_ends_normally_while_running() {
        let stop = Stop::new(Duration::from_secs(20));
        assert!(stop.sleep_unless_abandoned(Duration::from_secs(5)).await);
    }
}
