//! TimerFetch: fetch CoinCap assets, stamp each with the response timestamp, publish one event per
//! asset through the `events` output binding.

use serde_json::Value;

use super::counters::TimerFetchCounters;
use super::{EVENTS_BINDING, Failure, FunctionError, Invocation, TIMER_BINDING, TIMER_FETCH};
use crate::coincap::{AssetsPage, CoinCapClient, CoinCapError, credits};
use crate::domain::Parsed;
use crate::host::InvocationRequest;
use crate::host::InvocationResponse;
use crate::host::event_hubs::OutputEvents;
use crate::host::timer::TimerInfo;
use crate::secrets::{SecretName, SecretSource};
use crate::spare::Spare;

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

/// The page's assets as escaped event bodies written straight into the answer (an event is never
/// a `String` of its own): the usual page in one pass that keeps no asset, anything else by
/// [`publish_any`].
fn publish(page: &AssetsPage, invocation: &mut Invocation) -> Result<Published, CoinCapError> {
    match publish_usual(page) {
        Some(published) => Ok(published),
        None => publish_any(page, invocation),
    }
}

/// The buffer of the last answer, given back once the server has sent it (see
/// `server::answer_keeping`), for the next one's events.
pub static ANSWERS: Spare = Spare::new();

/// Room for the events of a page (about 1.25 bytes of escaped event per byte of page), in the
/// buffer of the last answer.
fn events_for(page: &AssetsPage) -> OutputEvents {
    let bytes = page.len() + page.len() / 4;
    OutputEvents::with_capacity_in(bytes, ANSWERS.take(0))
}

/// The usual page (see [`AssetsPage::read_each`]) whose assets all have the v3 shape: each
/// asset written as it is read, stamped with the timestamp CoinCap writes after them (read from
/// the end of the page first, and checked against the one the reading finds). `None` for
/// anything else, which [`publish_any`] publishes the same way or explains.
fn publish_usual(page: &AssetsPage) -> Option<Published> {
    let timestamp = page.timestamp_at_the_end()?;
    let mut events = events_for(page);
    let read = page.read_each(|event| {
        event.stamp(timestamp).is_ok_and(|()| {
            events.push_escaped(|out| event.write_escaped_body(out));
            true
        })
    })?;
    (read == timestamp).then_some(Published { events, timestamp })
}

/// Any page [`AssetsPage::read`] reads, in one pass over its assets once they are read. An asset
/// that does not have the v3 shape is published as it came (with the timestamp added): the sink
/// then keeps it in the rejects table, so nothing is lost.
fn publish_any(page: &AssetsPage, invocation: &mut Invocation) -> Result<Published, CoinCapError> {
    let read = page.read()?;
    let timestamp = read.timestamp;
    let mut events = events_for(page);
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
        answer_bytes: page.len() as u64,
        credits: credits::credits(page.len() as u64),
    });
    response
        .outputs
        .insert(EVENTS_BINDING.into(), published.events.finish());
    response
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::domain::AssetEvent;
    use crate::host::JsonText;

    type Outcome = (JsonText, i64);

    fn usual_way(text: &str) -> Option<Outcome> {
        publish_usual(&AssetsPage::new(200, text.to_owned()))
            .map(|published| (published.events.finish(), published.timestamp))
    }

    fn any_way(text: &str) -> Result<Outcome, String> {
        let mut invocation = Invocation::new(TIMER_FETCH, "test".into());
        publish_any(&AssetsPage::new(200, text.to_owned()), &mut invocation)
            .map(|published| (published.events.finish(), published.timestamp))
            .map_err(|error| error.to_string())
    }

    const BITCOIN: &str = r#"{"id":"bitcoin","rank":"1","symbol":"BTC","name":"Bit\"coin\u00e9","supply":"19861234.0000000000000000","maxSupply":null,"tokens":{"1":["0xab"]},"explorer":"https://blockchain.info/"}"#;

    #[test]
    fn the_usual_page_is_published_in_one_pass_as_the_general_way_publishes_it() {
        let text = format!(r#"{{"data":[{BITCOIN},{BITCOIN}],"timestamp":1747000000000}}"#);
        let usual = usual_way(&text).expect("the usual page");
        assert_eq!(Ok(usual.clone()), any_way(&text));
        assert_eq!(usual.1, 1_747_000_000_000);
        let events: Vec<String> = serde_json::from_str(usual.0.as_str()).unwrap();
        let bitcoin = AssetEvent::parse(BITCOIN)
            .unwrap()
            .stamped(usual.1)
            .unwrap();
        assert_eq!(events, [bitcoin.to_body(), bitcoin.to_body()]);
    }

    #[test]
    fn an_event_is_stamped_in_place_or_left_as_it_was() {
        let mut event = AssetEvent::parse(r#"{"id":"x","rank":7,"name":"a"}"#).unwrap();
        event.stamp(5).unwrap();
        assert_eq!(
            event.to_body(),
            r#"{"id":"x","rank":"7","symbol":null,"name":"a","supply":null,"maxSupply":null,"marketCapUsd":null,"volumeUsd24Hr":null,"priceUsd":null,"changePercent24Hr":null,"vwap24Hr":null,"explorer":null,"timestamp":5}"#
        );
        let mut odd = AssetEvent::parse(r#"{"id":"x","rank":7,"name":["a"]}"#).unwrap();
        let before = odd.clone();
        assert_eq!(
            odd.stamp(5),
            Err(crate::domain::NotV3(crate::domain::WireKey::Name))
        );
        assert_eq!(odd, before);
    }

    #[test]
    fn any_other_page_is_left_to_the_general_way() {
        for text in [
            // The timestamp twice, or not an integer.
            format!(r#"{{"data":[{BITCOIN}],"timestamp":1,"timestamp":1}}"#),
            format!(r#"{{"data":[{BITCOIN}],"timestamp":1.5}}"#),
            // A nested timestamp after the page's own, which differs.
            format!(r#"{{"data":[{BITCOIN}],"timestamp":1,"x":{{"timestamp":2}}}}"#),
            // An error key, the list twice or empty, an asset without the v3 shape.
            format!(r#"{{"data":[{BITCOIN}],"error":null,"timestamp":1}}"#),
            format!(r#"{{"data":[{BITCOIN}],"data":[{BITCOIN}],"timestamp":1}}"#),
            r#"{"data":[],"timestamp":1}"#.to_owned(),
            format!(r#"{{"data":[{BITCOIN},{{"id":5}}],"timestamp":1}}"#),
            format!(r#"{{"data":[{BITCOIN},7],"timestamp":1}}"#),
            // Not the page's end, or not JSON.
            format!(r#"{{"data":[{BITCOIN}],"timestamp":1}} x"#),
            format!(r#"{{"data":[{BITCOIN}],"timestamp":1"#),
        ] {
            assert_eq!(usual_way(&text), None, "{text}");
        }
    }

    fn object(fields: Vec<(&str, String)>) -> String {
        let fields: Vec<String> = fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", fields.join(","))
    }

    /// An asset's JSON text: most with the v3 shape (keys in any order, some twice, `tokens`, a
    /// numeric rank), some without (values of other kinds, no text `id`, not an object).
    fn asset() -> impl Strategy<Value = String> {
        let key = || {
            prop_oneof![
                proptest::sample::select(AssetEvent::KEYS.to_vec()),
                Just("tokens"),
            ]
        };
        let text = || {
            prop_oneof![
                4 => "\\PC{0,8}|[\"\\\\a\n]{0,3}".prop_map(|text| serde_json::to_string(&text).unwrap()),
                1 => Just("null".to_owned()),
            ]
        };
        let v3 = (
            proptest::collection::vec((key(), text()), 0..16),
            "[a-z-]{1,8}",
        )
            .prop_map(|(mut fields, id)| {
                for (key, value) in &mut fields {
                    match *key {
                        "tokens" => *value = r#"{"1":["0xab"]}"#.to_owned(),
                        "rank" if value == "null" => *value = "17".to_owned(),
                        _ => {}
                    }
                }
                fields.push(("id", format!("\"{id}\"")));
                object(fields)
            });
        let value = prop_oneof![text(), Just("17".to_owned()), Just("[true]".to_owned())];
        let odd = proptest::collection::vec((key(), value), 0..16).prop_map(object);
        prop_oneof![8 => v3, 1 => odd, 1 => Just("[1]".to_owned())]
    }

    proptest! {
        #[test]
        fn one_pass_publishes_what_the_general_way_publishes(
            assets in proptest::collection::vec(asset(), 0..6),
            timestamp in proptest::num::i64::ANY,
            shape in 0..5u8,
        ) {
            let data = assets.join(",");
            let text = match shape {
                4 => format!("{{ \"data\" :\n[ {} ] ,\t\"timestamp\" : {timestamp} }}\n", assets.join(" , ")),
                0 => format!(r#"{{"data":[{data}],"timestamp":{timestamp}}}"#),
                1 => format!(r#"{{"timestamp":{timestamp},"data":[{data}]}}"#),
                2 => format!(r#"{{"data":[{data}],"x":[{{"timestamp":3}}],"timestamp":{timestamp}}}"#),
                _ => format!(r#"{{"data":[{data}],"timestamp":{timestamp},"x":{{"timestamp":3}}}}"#),
            };
            if let Some(usual) = usual_way(&text) {
                prop_assert_eq!(Ok(usual), any_way(&text));
            }
        }
    }
}
