//! TimerFetch: fetch CoinCap assets, stamp each with the response timestamp, publish one event per
//! asset through the `events` output binding.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::counters::TimerFetchCounters;
use super::{EVENTS_BINDING, Failure, FunctionError, Invocation, TIMER_BINDING, TIMER_FETCH};
use crate::coincap::{AssetsPage, CoinCapClient};
use crate::domain::AssetEvent;
use crate::host::InvocationRequest;
use crate::host::InvocationResponse;
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
        Ok((page, events)) => Ok(response(invocation, &page, events)),
        Err(error) => Err(invocation.fail(error)),
    }
}

async fn run(
    with: TimerFetch<'_>,
    invocation: &mut Invocation,
    body: &[u8],
) -> Result<(AssetsPage, Vec<String>), FunctionError> {
    let request = InvocationRequest::parse(body)?;
    let timer = TimerInfo::from_request(&request, TIMER_BINDING);
    if timer.is_past_due {
        invocation.log("Timer is past due: fetching now.");
    }
    let page = fetch(with, invocation).await?;
    let events = page
        .assets
        .iter()
        .map(|asset| to_event_body(asset, page.timestamp, invocation))
        .collect();
    Ok((page, events))
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

/// One asset as an event body. An asset that does not have the v3 shape is published as it came
/// (with the timestamp added): the sink then keeps it in the rejects table, so nothing is lost.
fn to_event_body(asset: &RawValue, timestamp: i64, invocation: &mut Invocation) -> String {
    // Straight from the text: the usual case, no intermediate `Value`.
    if let Ok(mut event) = serde_json::from_str::<AssetEvent>(asset.get()) {
        event.timestamp = timestamp;
        return event.to_body();
    }
    // Anything unusual (a duplicate key, a wrong type) takes the `Value` path, which decides.
    let value: Value = match serde_json::from_str(asset.get()) {
        Ok(value) => value,
        // The page parsed, so each asset is valid JSON; keep the text if not.
        Err(_) => return asset.get().to_owned(),
    };
    match AssetEvent::deserialize(&value) {
        Ok(mut event) => {
            event.timestamp = timestamp;
            event.to_body()
        }
        Err(error) => {
            invocation.log(format!(
                "Asset does not have the v3 shape; published as it came for the rejects table. error=\"{error}\" asset={}",
                super::excerpt(&value.to_string(), 200)
            ));
            let mut raw = value;
            if let Value::Object(fields) = &mut raw {
                fields.insert("timestamp".into(), timestamp.into());
            }
            raw.to_string()
        }
    }
}

/// The answer: `Outputs.events` as an array of compact JSON strings, one per asset.
fn response(invocation: Invocation, page: &AssetsPage, events: Vec<String>) -> InvocationResponse {
    let published = events.len();
    let mut response = invocation.finish(&TimerFetchCounters {
        events_out: published as u64,
        coincap_status: page.status,
        retries: page.retries,
        coincap_timestamp: page.timestamp,
    });
    response.outputs.insert(
        EVENTS_BINDING.into(),
        Value::Array(events.into_iter().map(Value::String).collect()),
    );
    response
}
