//! Fixtures shared by the benchmarks: a realistic CoinCap v3 page and the Event Hubs batch the
//! host would deliver for it, built with the crate's own encoders.

#![allow(dead_code)]

pub mod callgrind;

use chrono::{DateTime, Utc};
use coincap_stream::domain::{AssetEvent, map_events};
use coincap_stream::host::InvocationRequest;
use coincap_stream::host::event_hubs::{self, HubEvent, PartitionSource, ReceivedBatch};
use coincap_stream::warehouse::sql::statement::{BATCH_LIMITS, Form, KeyTypes, build_batches};
use serde_json::{Value, json};

/// A small deterministic generator (no `rand` in the tree): the same page on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 11
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A decimal string as CoinCap v3 writes it: up to `int_digits` integer digits and exactly 16
    /// fractional digits.
    fn decimal(&mut self, int_digits: u32, negative: bool) -> String {
        let digits = self.below(u64::from(int_digits)) as u32 + 1;
        let int = self.below(10u64.pow(digits));
        let frac = self.below(10_000_000_000_000_000);
        let sign = if negative && self.below(2) == 0 {
            "-"
        } else {
            ""
        };
        format!("{sign}{int}.{frac:016}")
    }
}

/// `n` assets shaped like CoinCap v3's: every number a decimal string with 16 fractional digits,
/// `rank` a string, nulls where CoinCap has them (`maxSupply`, `vwap24Hr`, `explorer`), a `tokens`
/// object (often with contract addresses), some non-ASCII names.
pub fn realistic_assets(n: usize) -> Vec<Value> {
    let mut rng = Lcg(0x5eed_c01c_ab00_0001);
    (0..n)
        .map(|i| {
            let tokens = match rng.below(3) {
                0 => json!({}),
                1 => json!({"1": [format!("0x{:040x}", u128::from(rng.next()) << 64 | u128::from(rng.next()))]}),
                _ => json!({
                    "1": [format!("0x{:040x}", u128::from(rng.next()) << 64 | u128::from(rng.next()))],
                    "56": [format!("0x{:040x}", u128::from(rng.next()))],
                }),
            };
            let name = match i % 50 {
                7 => format!("München Coin {i}"),
                13 => format!("币安 {i}"),
                21 => format!("O'Neil \"Moon\" {i}"),
                _ => format!("Asset Number {i}"),
            };
            json!({
                "id": format!("asset-number-{i}"),
                "rank": (i + 1).to_string(),
                "symbol": format!("A{i}"),
                "name": name,
                "supply": rng.decimal(12, false),
                "maxSupply": if rng.below(2) == 0 { Value::Null } else { json!(rng.decimal(12, false)) },
                "marketCapUsd": rng.decimal(13, false),
                "volumeUsd24Hr": rng.decimal(11, false),
                "priceUsd": rng.decimal(5, false),
                "changePercent24Hr": rng.decimal(2, true),
                "vwap24Hr": if rng.below(5) == 0 { Value::Null } else { json!(rng.decimal(5, false)) },
                "explorer": if rng.below(6) == 0 { Value::Null } else { json!(format!("https://explorer.example.org/asset/{i}")) },
                "tokens": tokens,
            })
        })
        .collect()
}

/// The page CoinCap answers: `{"data": [...], "timestamp": ...}`.
pub fn page(assets: &[Value], timestamp: i64) -> String {
    json!({"data": assets, "timestamp": timestamp}).to_string()
}

/// The event bodies TimerFetch publishes for these assets (the crate's own `AssetEvent`).
pub fn event_bodies(assets: &[Value], timestamp: i64) -> Vec<String> {
    assets
        .iter()
        .map(|asset| {
            let text = asset.to_string();
            AssetEvent::parse(&text)
                .expect("a v3 asset is an AssetEvent")
                .stamped(timestamp)
                .expect("a v3 asset")
                .to_body()
        })
        .collect()
}

/// `n` distinct event bodies whose `(id, timestamp)` keys are fresh for `round` (so no batch is a
/// duplicate of another): the realistic assets repeated under round- and position-specific ids.
pub fn fresh_bodies(n: usize, round: u64, timestamp: i64) -> Vec<String> {
    let realistic = realistic_assets(n.min(2000));
    let assets: Vec<Value> = (0..n)
        .map(|i| {
            let mut asset = realistic[i % realistic.len()].clone();
            asset["id"] = json!(format!("r{round}-asset-{i}"));
            asset
        })
        .collect();
    event_bodies(&assets, timestamp + round as i64)
}

/// The body the Functions host posts to EventHubSink for these events, double encoded exactly as
/// [`event_hubs::request_body`] produces it.
pub fn sink_request(bodies: &[String], first_sequence: i64, now: DateTime<Utc>) -> Value {
    let source = PartitionSource {
        namespace: "coincap.servicebus.windows.net",
        event_hub: "coincaphub",
        consumer_group: "$Default",
        partition_id: "0",
    };
    let events: Vec<HubEvent> = bodies
        .iter()
        .enumerate()
        .map(|(i, body)| HubEvent {
            body: body.clone(),
            offset: 4_294_967_296 + (first_sequence + i as i64) * 512,
            sequence_number: first_sequence + i as i64,
            enqueued_time: now,
        })
        .collect();
    event_hubs::request_body("EventHubSink", "events", &source, &events, now, None)
}

/// The 1000-event body the Functions host posts to EventHubSink (what benches/sink_batch.rs and
/// the callgrind count use).
pub fn sink_payload(events: usize) -> Vec<u8> {
    let assets = realistic_assets(events);
    let bodies = event_bodies(&assets, 1_764_288_000_123);
    sink_request(&bodies, 1_000, Utc::now())
        .to_string()
        .into_bytes()
}

/// EventHubSink's pure work on one batch: parse the invocation body, undo the double encoding, map
/// the events to rows, render the T-SQL batch. Returns the SQL's length.
#[inline(never)] // one frame to count under callgrind (`--toggle-collect`)
pub fn decode_map_render(body: &[u8]) -> usize {
    let request = InvocationRequest::parse(body).expect("a valid envelope");
    let batch = ReceivedBatch::from_request(&request, "events").expect("a valid batch");
    let events = batch.events.len();
    let mapped = map_events(batch.events.into_iter().map(|e| (e.body, e.coordinates)));
    assert_eq!(mapped.rows.len(), events, "every event is a row");
    build_batches(
        &mapped.rows,
        &mapped.rejects,
        Utc::now(),
        &KeyTypes::default(),
        &BATCH_LIMITS,
        Form::default(),
    )
    .iter()
    .map(|batch| batch.sql.len())
    .sum()
}
