//! The largest batch the host sends, through `handler serve` straight into the server.

use std::time::Duration;

use super::super::support::*;
use super::{ENQUEUED, counts, hub, rejects_from};
use crate::common::run::Binary;
use crate::common::{API_KEY, Hub, hub_payload};

/// The largest batch the host sends: `maxEventBatchSize` (1000) events of 1 MB, the Event Hubs
/// maximum on Standard and Premium. The handler takes it (a 1 GB request), writes every body
/// whole, and its own memory stays far below the batch's size (the request is mapped from a
/// temporary file; bodies are held a part at a time).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs COINCAP_TEST_MSSQL (Azure SQL Database, SQL Server or a dedicated pool)"]
async fn a_batch_of_1000_events_of_1_mb_is_written_whole_in_bounded_memory() {
    const EVENTS: usize = 1000;
    const BODY: usize = 1_000_000;
    let connection = connection_string();
    let _turn = serial().await;
    init(&connection).await;
    let mut handler = Binary::serve()
        .sql(&connection)
        .env("SQL_COMMAND_TIMEOUT", "600s")
        .env("COINCAP_API_KEY", API_KEY)
        .start()
        .await;
    let prefix = prefix();
    let hub = hub(&prefix, ENQUEUED);
    let batch = large_batch(&prefix, &hub, EVENTS, BODY);
    assert!(batch.len() > EVENTS * BODY, "{}", batch.len());
    let pid = handler.pid();
    let peak = tokio::spawn(peak_anonymous_memory(pid));

    let answer = tokio::time::timeout(
        Duration::from_secs(30 * 60),
        handler.post("EventHubSink", batch),
    )
    .await
    .expect("the handler answers");
    peak.abort();
    let peak_bytes = peak_anonymous_memory_so_far(pid);
    handler.stop("-TERM").await;

    assert_eq!(counts(&answer), (0, 0, EVENTS as u64));
    assert_eq!(answer.sink_counters().events_in, EVENTS as u64);
    assert!(
        answer
            .logs()
            .iter()
            .any(|l| l.starts_with("Large batch read and written in parts.")),
        "{:?}",
        answer.logs().iter().rev().take(2).collect::<Vec<_>>()
    );
    assert_eq!(rejects_from(&connection, &hub.name).await, EVENTS as i64);
    let whole = scalar_i64(
        &connection,
        &format!(
            "SELECT COUNT_BIG(*) FROM {REJECTS} WHERE event_hub_name = '{}' AND LEN(raw_body) = {BODY} AND reason NOT LIKE N'%raw_body truncated%'",
            hub.name
        ),
    )
    .await;
    assert_eq!(whole, EVENTS as i64, "every body whole");
    let bound = 768 * 1024 * 1024;
    assert!(
        peak_bytes < bound,
        "peak anonymous memory {peak_bytes} bytes for a {} MB batch",
        EVENTS * BODY / 1_000_000
    );
}

/// A batch of `events` poison bodies of `size` bytes each (plain ASCII: escaping changes
/// nothing), from `hub`, written straight into its text (one copy of the batch in memory).
fn large_batch(prefix: &str, hub: &Hub, events: usize, size: usize) -> String {
    let marks: Vec<String> = (0..events).map(|i| format!("MARK{i:06}")).collect();
    let text = hub_payload(&marks, hub, 0).to_string();
    let mut batch = String::with_capacity(events * (size + 8) + text.len());
    let mut rest = text.as_str();
    for (i, mark) in marks.iter().enumerate() {
        let at = rest.find(mark.as_str()).unwrap();
        batch.push_str(&rest[..at]);
        let head = format!("poison {prefix} {i:06} ");
        batch.push_str(&head);
        batch.extend(std::iter::repeat_n('x', size - head.len()));
        rest = &rest[at + mark.len()..];
    }
    batch.push_str(rest);
    batch
}

/// The most anonymous memory (heap, not mapped files) the process `pid` has held while this
/// runs, polled every 50 ms; read the result with [`peak_anonymous_memory_so_far`].
async fn peak_anonymous_memory(pid: u32) {
    loop {
        peak_anonymous_memory_so_far(pid);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Updates and returns the peak seen for `pid` (bytes).
fn peak_anonymous_memory_so_far(pid: u32) -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static PEAK: AtomicUsize = AtomicUsize::new(0);
    let now = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("RssAnon:"))?;
            line.split_whitespace().nth(1)?.parse::<usize>().ok()
        })
        .map_or(0, |kb| kb * 1024);
    PEAK.fetch_max(now, Ordering::SeqCst).max(now)
}
