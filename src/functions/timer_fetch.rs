//! TimerFetch: fetch CoinCap assets, stamp each with the response timestamp, publish one event per
//! asset through the `events` output binding.

use serde_json::Value;

use super::counters::TimerFetchCounters;
use super::{EVENTS_BINDING, Failure, FunctionError, Invocation, TIMER_BINDING, TIMER_FETCH};
use crate::coincap::{AssetsPage, CoinCapClient, CoinCapError};
use crate::domain::Parsed;
use crate::host::InvocationRequest;
use crate::host::InvocationResponse;
use crate::host::event_hubs::OutputEvents;
use crate::host::timer::TimerInfo;
use crate::secrets::{SecretName, SecretSource};

/// What TimerFetch needs: the CoinCap client and where its key comes from.
#[derive(Clone, Copy)]
pub struct TimerFetch<'a> {
    pub coincap: &'a CoinCapClient,
    pub secrets: &'a dyn SecretSource,
}

pub async fn timer_fetch(
    with: TimerFetch<'_>,
    invocation_id: String,
    body: &[u8],
) -> Result<InvocationResponse, Failure> {
    let mut invocation = Invocation::new(TIMER_FETCH, invocation_id);
    match run(with, &mut invocation, body).await {
        Ok((page, published)) => Ok(response(invocation, &page, published)),
        Err(error) => Err(invocation.fail(error)),
    }
}

async fn run(
    with: TimerFetch<'_>,
    invocation: &mut Invocation,
    body: &[u8],
) -> Result<(AssetsPage, Published), FunctionError> {
    let request = InvocationRequest::parse(body)?;
    let timer = TimerInfo::from_request(&request, TIMER_BINDING);
    if timer.is_past_due {
        invocation.log("Timer is past due: fetching now.");
    }
    let page = fetch(with, invocation).await?;
    let published = publish(&page, invocation)?;
    Ok((page, published))
}

/// Fetches with the cached key; a refused key is fetched anew once (a rotated secret) and the
/// call retried if it changed.
async fn fetch(
    TimerFetch { coincap, secrets }: TimerFetch<'_>,
    invocation: &mut Invocation,
) -> Result<AssetsPage, FunctionError> {
    let key = secrets.get(SecretName::CoinCapApiKey).await?;
    match coincap.fetch_assets(&key).await {
        Err(error) if error.is_unauthorized() => {
            secrets.invalidate(SecretName::CoinCapApiKey);
            let fresh = secrets.get(SecretName::CoinCapApiKey).await?;
            if fresh == key {
                return Err(error.into());
            }
            invocation.log("CoinCap refused the cached API key; retrying with the refreshed one.");
            Ok(coincap.fetch_assets(&fresh).await?)
        }
        other => Ok(other?),
    }
}

/// The page's assets as the `events` output, and the response timestamp stamped on them.
struct Published {
    events: OutputEvents,
    timestamp: i64,
}

/// One pass over the page, each asset written as an escaped event body straight into the answer
/// (an event is never a `String` of its own). An asset that does not have the v3 shape is
/// published as it came (with the timestamp added): the sink then keeps it in the rejects table,
/// so nothing is lost.
fn publish(page: &AssetsPage, invocation: &mut Invocation) -> Result<Published, CoinCapError> {
    let read = page.read()?;
    let timestamp = read.timestamp;
    // About 1.25 bytes of escaped event per byte of page.
    let mut events = OutputEvents::with_capacity(page.len() + page.len() / 4);
    let mut texts = None;
    for (i, asset) in read.assets.into_iter().enumerate() {
        let why = match asset {
            Parsed::Event(event) => match event.stamped(timestamp) {
                Ok(event) => {
                    events.push_escaped(|out| event.write_escaped_body(out));
                    continue;
                }
                Err(not_v3) => not_v3.to_string(),
            },
            Parsed::NotAnObject(kind) => format!("the asset is a JSON {kind}, not an object"),
        };
        let texts = texts.get_or_insert_with(|| page.asset_texts());
        let text = texts.get(i).copied().unwrap_or("null");
        events.push(&as_it_came(text, timestamp, &why, invocation));
    }
    Ok(Published { events, timestamp })
}

/// The asset's compact JSON text with the timestamp added (when it is an object).
#[cold]
fn as_it_came(asset: &str, timestamp: i64, why: &str, invocation: &mut Invocation) -> String {
    // The page was read, so each asset is valid JSON; keep the text if not.
    let Ok(mut value) = serde_json::from_str::<Value>(asset) else {
        return asset.to_owned();
    };
    invocation.log(format!(
        "Asset does not have the v3 shape; published as it came for the rejects table. error=\"{why}\" asset={}",
        crate::text::excerpt(&value.to_string(), 200)
    ));
    if let Value::Object(fields) = &mut value {
        fields.insert("timestamp".into(), timestamp.into());
    }
    value.to_string()
}

/// The answer: `Outputs.events` as an array of compact JSON strings, one per asset.
fn response(invocation: Invocation, page: &AssetsPage, published: Published) -> InvocationResponse {
    let mut response = invocation.finish(&TimerFetchCounters {
        events_out: published.events.len() as u64,
        coincap_status: page.status,
        retries: page.retries,
        coincap_timestamp: published.timestamp,
    });
    response
        .outputs
        .insert(EVENTS_BINDING.into(), published.events.finish());
    response
}
