//! coincap-stream: an Azure Functions custom handler that streams CoinCap v3 asset statistics
//! through Event Hubs into a warehouse table.
//!
//! Map of the crate; each module uses only modules above it and the leaves at the end, `fault`,
//! `spare` and `text` (a test keeps the graph acyclic):
//! - [`secrets`]: where secrets come from (Key Vault through the managed identity, cached; or the
//!   environment), the redacting [`secrets::Secret`] type and Entra tokens.
//! - [`domain`]: [`domain::AssetEvent`] (what travels on the hub) and [`domain::WireKey`] (its
//!   fields as CoinCap spells them, the one table of them), [`domain::EventBody`] (an event's
//!   text as the sink receives it, read in place), [`domain::AssetRow`] (a valid table row) and
//!   [`domain::Reject`] (a poison event and why).
//! - [`coincap`]: the CoinCap v3 client, its settings and its retry rule.
//! - [`host`]: the custom-handler protocol: envelopes, double decoding, timer and Event Hubs
//!   payloads (a large batch spooled to a file and read a part at a time), the response. Both
//!   sides: the handler decodes, the local runner encodes.
//! - [`warehouse`]: the [`warehouse::Warehouse`] trait; an embedded SQLite file
//!   ([`warehouse::SqliteWarehouse`]) and a SQL Server-family database: Azure SQL Database, a
//!   Synapse dedicated SQL pool or SQL Server ([`warehouse::sql`]: connections, statement
//!   building, literals, `init-warehouse`).
//! - [`functions`]: one thin file per function (`TimerFetch`, `EventHubSink`) and their typed
//!   closing-line counters.
//! - [`config`]: the app settings, assembled from the settings type each module owns.
//! - [`app`]: the one composition root: settings in, the shared handles out; and the secrets
//!   the settings need, with a line each for those that cannot be read (in `check`'s words).
//! - [`server`]: the axum router and the serve loop with graceful shutdown.
//! - [`local`]: `handler local`, which plays the Functions host on one machine.
//! - [`startup`]: what `serve`, `local` and `check` read before they start, through one function
//!   (settings, host.json and both function.json, settings set but ignored), and the secrets
//!   `serve` refuses to start without.
//! - [`check`]: `handler check`, each dependency the settings name checked once, read only.
//! - [`telemetry`]: process-level logging (stdout/stderr, as the host reads them).
//! - [`fault`]: what a failure means to whoever would try again: transient, or permanent with
//!   what to change (each layer classifies its own errors; the local runner stops on permanent).
//! - [`spare`]: buffers kept from one invocation for the next (no page faults on ~1 MB each).
//! - [`text`]: log excerpts and the millisecond timestamp form (used by every layer).

pub mod app;
pub mod check;
pub mod coincap;
pub mod config;
pub mod domain;
pub mod fault;
pub mod functions;
pub mod host;
pub mod local;
pub mod secrets;
pub mod server;
pub mod spare;
pub mod startup;
pub mod telemetry;
pub mod text;
pub mod warehouse;

use std::future::Future;
use std::pin::Pin;

/// A boxed, sendable future: what the object-safe I/O traits ([`warehouse::Warehouse`],
/// [`secrets::SecretSource`]) return, so they can live behind `Arc<dyn Trait>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
