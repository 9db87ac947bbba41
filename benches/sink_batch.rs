//! EventHubSink's pure work on one 1000-event batch, as the Functions host delivers it: parse the
//! invocation body, undo the double encoding (`ReceivedBatch::from_request`), map events to rows
//! (`map_events`) and render the T-SQL batch (`build_batches`). No I/O.
//!
//! `cargo bench --bench sink_batch` (scripts/bench.sh runs it and reads criterion's samples).

mod common;

use std::hint::black_box;
use std::time::Duration;

use chrono::Utc;
use coincap_stream::domain::map_events;
use coincap_stream::host::InvocationRequest;
use coincap_stream::host::event_hubs::ReceivedBatch;
use coincap_stream::warehouse::sql::statement::{BATCH_LIMITS, Form, KeyTypes, build_batches};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

const EVENTS: usize = 1000;

fn sink_batch(c: &mut Criterion) {
    let body = common::sink_payload(EVENTS);
    let mut group = c.benchmark_group("sink_batch");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(100);
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("decode_map_render_1000", |b| {
        b.iter(|| common::decode_map_render(black_box(&body)))
    });
    // The three steps alone, to see where the time goes.
    group.bench_function("decode_1000", |b| {
        b.iter(|| {
            let request = InvocationRequest::parse(black_box(&body)).unwrap();
            ReceivedBatch::from_request(&request, "events").unwrap()
        })
    });
    let request = InvocationRequest::parse(&body).unwrap();
    let batch = ReceivedBatch::from_request(&request, "events").unwrap();
    let events: Vec<_> = batch
        .events
        .into_iter()
        .map(|e| (e.body, e.coordinates))
        .collect();
    group.bench_function("map_1000", |b| {
        b.iter_batched(|| events.clone(), map_events, BatchSize::LargeInput)
    });
    let mapped = map_events(events);
    group.bench_function("render_1000", |b| {
        b.iter(|| {
            build_batches(
                black_box(&mapped.rows),
                &mapped.rejects,
                Utc::now(),
                &KeyTypes::default(),
                &BATCH_LIMITS,
                Form::default(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, sink_batch);
criterion_main!(benches);
