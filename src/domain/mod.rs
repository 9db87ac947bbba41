//! The pipeline's data types: the event on the hub, the warehouse row and its column types, and
//! the reject.

mod batch;
mod body;
mod coordinates;
mod event;
mod finite;
pub(crate) mod json;
mod reject;
mod row;
mod time;
mod varchar;

pub use batch::{MappedBatch, map_events};
pub use body::EventBody;
pub use coordinates::EventCoordinates;
pub use event::{AssetEvent, Field, NotV3, Parsed, WireKey};
pub use finite::Finite;
pub use reject::{Reject, RejectReason};
pub use row::AssetRow;
pub use time::WarehouseTime;
pub use varchar::Varchar255;
