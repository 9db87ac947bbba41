//! Integration tests: the real server over HTTP (in-process on port 0, and the real `handler`
//! binary), a CoinCap stand-in and temporary SQLite warehouses. One test binary, one build.

mod common;

mod event_hub_sink;
mod key_vault;
mod local_runner;
mod protocol;
mod serve_binary;
mod synapse_live;
mod timer_fetch;
