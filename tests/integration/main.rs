//! Integration tests: the real server over HTTP (in-process on port 0, the real `handler` binary
//! and the packaged one in dist/app), a CoinCap stand-in and temporary SQLite warehouses; the
//! deployment template and the monitoring queries. One test binary, one build.

mod common;
mod elf;

mod architecture;
mod check;
mod deploy_docs;
mod doc_links;
mod event_hub_sink;
mod key_vault;
mod limits;
mod local_runner;
mod local_stops;
mod monitoring;
mod package;
mod protocol;
mod serve_binary;
mod sql_live;
mod template;
mod timer_fetch;
