//! `AssetEvent`: one asset of one CoinCap response, stamped with the response time (the seed's event).

use serde::{Deserialize, Deserializer, Serialize};

/// The event TimerFetch publishes, one per asset, in the seed producer's format: the CoinCap asset
/// fields (numbers kept as the exact decimal strings CoinCap sent) plus the response `timestamp`.
///
/// Deserialising from a CoinCap v3 asset ignores unknown fields (`tokens`) and accepts `rank` as a
/// string or a number; serialising always writes `rank` as a string, as the seed's events do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssetEvent {
    pub id: String,
    #[serde(default, deserialize_with = "rank_as_text")]
    pub rank: Option<String>,
    #[serde(default)]
    pub symbol: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub supply: Option<String>,
    #[serde(default, rename = "maxSupply")]
    pub max_supply: Option<String>,
    #[serde(default, rename = "marketCapUsd")]
    pub market_cap_usd: Option<String>,
    #[serde(default, rename = "volumeUsd24Hr")]
    pub volume_usd_24_hr: Option<String>,
    #[serde(default, rename = "priceUsd")]
    pub price_usd: Option<String>,
    #[serde(default, rename = "changePercent24Hr")]
    pub change_percent_24_hr: Option<String>,
    #[serde(default, rename = "vwap24Hr")]
    pub vwap_24_hr: Option<String>,
    #[serde(default)]
    pub explorer: Option<String>,
    /// The CoinCap response's `timestamp` (epoch milliseconds), shared by every asset of a call.
    #[serde(default)]
    pub timestamp: i64,
}

impl AssetEvent {
    /// The compact JSON text sent as the event body.
    pub fn to_body(&self) -> String {
        // Serialising a struct of strings, options and an integer cannot fail.
        serde_json::to_string(self).expect("an AssetEvent always serialises")
    }
}

fn rank_as_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Rank {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(
        Option::<Rank>::deserialize(deserializer)?.map(|rank| match rank {
            Rank::Text(text) => text,
            Rank::Number(number) => number.to_string(),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const BITCOIN_V3: &str = r#"{"id":"bitcoin","rank":"1","symbol":"BTC","name":"Bitcoin",
        "supply":"19861234.0000000000000000","maxSupply":"21000000.0000000000000000",
        "marketCapUsd":"1873456789012.3456789012345678","volumeUsd24Hr":"11234567890.1234567890123456",
        "priceUsd":"94327.1234567890123456","changePercent24Hr":"-1.2345678901234567",
        "vwap24Hr":"95012.9876543210987654","explorer":"https://blockchain.info/","tokens":{"x":["y"]}}"#;

    #[test]
    fn a_v3_asset_becomes_the_seed_event_with_exact_decimal_strings() {
        let mut event: AssetEvent = serde_json::from_str(BITCOIN_V3).unwrap();
        event.timestamp = 1_747_000_000_000;
        assert_eq!(
            event.to_body(),
            r#"{"id":"bitcoin","rank":"1","symbol":"BTC","name":"Bitcoin","supply":"19861234.0000000000000000","maxSupply":"21000000.0000000000000000","marketCapUsd":"1873456789012.3456789012345678","volumeUsd24Hr":"11234567890.1234567890123456","priceUsd":"94327.1234567890123456","changePercent24Hr":"-1.2345678901234567","vwap24Hr":"95012.9876543210987654","explorer":"https://blockchain.info/","timestamp":1747000000000}"#
        );
    }

    #[test]
    fn a_numeric_rank_is_kept_as_text() {
        let event: AssetEvent = serde_json::from_str(r#"{"id":"x","rank":7}"#).unwrap();
        assert_eq!(event.rank.as_deref(), Some("7"));
    }

    #[test]
    fn null_fields_stay_null_in_the_body() {
        let event: AssetEvent =
            serde_json::from_str(r#"{"id":"tether","maxSupply":null,"vwap24Hr":null}"#).unwrap();
        let body: serde_json::Value = serde_json::from_str(&event.to_body()).unwrap();
        assert_eq!(body["maxSupply"], serde_json::Value::Null);
        assert_eq!(body["vwap24Hr"], serde_json::Value::Null);
    }

    #[test]
    fn an_asset_without_id_does_not_fit_the_event() {
        assert!(serde_json::from_str::<AssetEvent>(r#"{"rank":"1"}"#).is_err());
    }
}
