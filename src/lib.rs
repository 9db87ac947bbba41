//! coincap-stream: an Azure Functions custom handler that streams CoinCap v3 asset statistics
//! through Event Hubs into a warehouse table.
//!
//! Map of the crate, in the order data flows:
//! - [`config`]: typed settings read from the environment (app settings); secret names, never values.
//! - [`coincap`]: the CoinCap v3 client and its retry rule.
//! - [`domain`]: [`domain::AssetEvent`] (what travels on the hub), [`domain::AssetRow`] (a valid
//!   table row) and [`domain::Reject`] (a poison event and why).
//! - [`host`]: the custom-handler protocol: envelopes, double decoding, timer and Event Hubs
//!   payloads, the response. Both sides: the handler decodes, the local runner encodes.
//! - [`functions`]: one thin file per function (`TimerFetch`, `EventHubSink`).
//! - [`warehouse`]: the [`warehouse::Warehouse`] trait and its SQLite implementation.
//! - [`secrets`]: where secrets come from (Key Vault through the managed identity, cached; or the
//!   environment), and the redacting [`secrets::Secret`] type.
//! - [`server`]: the axum router and the serve loop with graceful shutdown.
//! - [`local`]: `handler local`, which plays the Functions host on one machine.
//! - [`telemetry`]: process-level logging (stdout/stderr, as the host reads them).

pub mod app;
pub mod coincap;
pub mod config;
pub mod domain;
pub mod functions;
pub mod host;
pub mod local;
pub mod secrets;
pub mod server;
pub mod telemetry;
pub mod warehouse;

use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future: what the object-safe I/O traits ([`warehouse::Warehouse`],
/// [`secrets::SecretSource`]) return, so they can live behind `Arc<dyn Trait>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
