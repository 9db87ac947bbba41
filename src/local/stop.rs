//! Ctrl-C for the local runner: the first press stops the timer and drains what was fetched; a
//! second press abandons what is still unwritten.

use std::time::Duration;

use tokio::sync::watch;

#[derive(Clone)]
pub struct Stop(watch::Receiver<u8>);

const DRAIN: u8 = 1;
const ABANDON: u8 = 2;

impl Stop {
    /// Listens for Ctrl-C and SIGTERM in the background.
    pub fn listen() -> Self {
        let (sender, receiver) = watch::channel(0);
        tokio::spawn(async move {
            crate::server::shutdown_signal().await;
            eprintln!(
                "Stopping: no more ticks; writing everything already fetched (Ctrl-C again to abandon it)."
            );
            let _ = sender.send(DRAIN);
            crate::server::shutdown_signal().await;
            eprintln!("Abandoning: events not yet written are counted as not written.");
            let _ = sender.send(ABANDON);
        });
        Self(receiver)
    }

    pub fn requested(&self) -> bool {
        *self.0.borrow() >= DRAIN
    }

    pub fn abandoned(&self) -> bool {
        *self.0.borrow() >= ABANDON
    }

    /// Resolves once a stop is requested.
    pub async fn requested_now(&self) {
        let mut receiver = self.0.clone();
        // The sender lives as long as the listening task; if it is gone, never resolve.
        if receiver.wait_for(|level| *level >= DRAIN).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Sleeps for `delay`; false if the run was abandoned meanwhile.
    pub async fn sleep_unless_abandoned(&self, delay: Duration) -> bool {
        let mut receiver = self.0.clone();
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            result = receiver.wait_for(|level| *level >= ABANDON) => result.is_err(),
        }
    }
}
