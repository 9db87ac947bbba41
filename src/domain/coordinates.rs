//! `EventCoordinates`: where an event sat in Event Hubs.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Where an event sat in Event Hubs: what an operator needs to find it again, and what tells it
/// from every other event (a recreated hub numbers its events from 0 again, a second hub has its
/// own numbers: the hub's names and the enqueued time tell them apart).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventCoordinates {
    /// The Event Hubs namespace (`<name>.servicebus.windows.net`; `local` for `handler local`),
    /// shared by every event of a batch.
    pub namespace: Option<Arc<str>>,
    /// The event hub's name, shared by every event of a batch.
    pub event_hub: Option<Arc<str>>,
    /// Shared by every event of a batch (one partition per batch).
    pub partition_id: Option<Arc<str>>,
    pub offset: Option<String>,
    pub sequence_number: Option<i64>,
    pub enqueued_time: Option<DateTime<Utc>>,
}
