//! The pipeline's data types: the event on the hub, the warehouse row, and the reject.

mod event;
mod row;

pub use event::AssetEvent;
pub use row::{
    AssetRow, EventCoordinates, Finite, MappedBatch, Reject, RejectReason, Varchar255,
    WarehouseTime, map_events,
};
