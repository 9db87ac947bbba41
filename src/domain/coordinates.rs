//! `EventCoordinates`: where an event sat in Event Hubs.

use std::sync::Arc;

use chrono::{DateTime, Utc};

/// Where an event sat in Event Hubs: what an operator needs to find it again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventCoordinates {
    /// Shared by every event of a batch (one partition per batch).
    pub partition_id: Option<Arc<str>>,
    pub offset: Option<String>,
    pub sequence_number: Option<i64>,
    pub enqueued_time: Option<DateTime<Utc>>,
}
