//! What the local runner reads of the Functions app, exactly as the host would: host.json's Event
//! Hubs batching and the two function.json files (bindings, schedule, retry policy).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::LocalError;
use crate::functions::{EVENT_HUB_SINK, TIMER_FETCH};

/// The parts of the app the runner plays the host for.
#[derive(Debug, Clone, PartialEq)]
pub struct AppFiles {
    /// host.json `extensions.eventHubs.maxEventBatchSize` (the host's default is 100).
    pub max_event_batch_size: usize,
    pub timer: TimerFunction,
    pub sink: SinkFunction,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimerFunction {
    /// The trigger binding's name (`timer`).
    pub binding: String,
    /// The schedule as written (`%FETCH_SCHEDULE%`), resolved later.
    pub schedule: String,
    /// The Event Hubs output binding's name (`events`).
    pub output: String,
    pub retry: Option<RetryPolicy>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SinkFunction {
    pub binding: String,
    pub event_hub_name: String,
    pub consumer_group: String,
    pub retry: Option<RetryPolicy>,
}

/// A function-level retry policy as function.json declares it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// -1 retries forever.
    pub max_retry_count: i64,
    pub strategy: RetryStrategy,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryStrategy {
    FixedDelay(Duration),
    ExponentialBackoff {
        minimum: Duration,
        maximum: Duration,
    },
}

impl RetryPolicy {
    /// Whether another retry is allowed after `retries` retries.
    pub fn allows(&self, retries: u32) -> bool {
        self.max_retry_count < 0 || i64::from(retries) < self.max_retry_count
    }

    /// The wait before retry number `retry` (0-based).
    pub fn delay(&self, retry: u32) -> Duration {
        match self.strategy {
            RetryStrategy::FixedDelay(delay) => delay,
            RetryStrategy::ExponentialBackoff { minimum, maximum } => minimum
                .saturating_mul(2u32.saturating_pow(retry))
                .min(maximum),
        }
    }
}

#[derive(Deserialize)]
struct FunctionJson {
    bindings: Vec<Binding>,
    retry: Option<RetryJson>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Binding {
    #[serde(rename = "type")]
    kind: String,
    direction: String,
    name: String,
    schedule: Option<String>,
    event_hub_name: Option<String>,
    consumer_group: Option<String>,
    cardinality: Option<String>,
    data_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RetryJson {
    strategy: String,
    max_retry_count: i64,
    delay_interval: Option<String>,
    minimum_interval: Option<String>,
    maximum_interval: Option<String>,
}

impl AppFiles {
    pub fn read(app_root: &Path) -> Result<Self, LocalError> {
        let host: Value = read_json(&app_root.join("host.json"))?;
        let max_event_batch_size = match host.pointer("/extensions/eventHubs/maxEventBatchSize") {
            None => 100,
            Some(size) => size
                .as_u64()
                .filter(|&n| n > 0)
                .map(|n| n as usize)
                .ok_or_else(|| {
                    invalid(
                        &app_root.join("host.json"),
                        "maxEventBatchSize must be a positive integer",
                    )
                })?,
        };
        let timer_path = app_root.join(TIMER_FETCH).join("function.json");
        let timer: FunctionJson = read_json(&timer_path)?;
        let trigger = find(&timer, &timer_path, "timerTrigger", "in")?;
        let output = find(&timer, &timer_path, "eventHub", "out")?;
        let timer = TimerFunction {
            binding: trigger.name.clone(),
            schedule: trigger
                .schedule
                .clone()
                .ok_or_else(|| invalid(&timer_path, "the timer trigger has no schedule"))?,
            output: output.name.clone(),
            retry: retry_policy(&timer, &timer_path)?,
        };

        let sink_path = app_root.join(EVENT_HUB_SINK).join("function.json");
        let sink: FunctionJson = read_json(&sink_path)?;
        let trigger = find(&sink, &sink_path, "eventHubTrigger", "in")?;
        if trigger.cardinality.as_deref() != Some("many")
            || trigger.data_type.as_deref() != Some("string")
        {
            return Err(invalid(
                &sink_path,
                "the Event Hubs trigger must have \"cardinality\": \"many\" and \"dataType\": \"string\" \
                 (without them the host fails whole batches on one poison event)",
            ));
        }
        let sink = SinkFunction {
            binding: trigger.name.clone(),
            event_hub_name: trigger.event_hub_name.clone().unwrap_or_default(),
            consumer_group: trigger
                .consumer_group
                .clone()
                .unwrap_or_else(|| "$Default".into()),
            retry: retry_policy(&sink, &sink_path)?,
        };
        Ok(Self {
            max_event_batch_size,
            timer,
            sink,
        })
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, LocalError> {
    let text = std::fs::read_to_string(path).map_err(|e| LocalError::AppFile {
        path: path.to_owned(),
        reason: format!("{e} (run it in the Functions app root, where host.json is; `local` and `check` take --app-root)"),
    })?;
    serde_json::from_str(&text).map_err(|e| invalid(path, &e.to_string()))
}

fn invalid(path: &Path, reason: &str) -> LocalError {
    LocalError::AppFile {
        path: PathBuf::from(path),
        reason: reason.to_owned(),
    }
}

fn find<'a>(
    function: &'a FunctionJson,
    path: &Path,
    kind: &str,
    direction: &str,
) -> Result<&'a Binding, LocalError> {
    function
        .bindings
        .iter()
        .find(|b| b.kind.eq_ignore_ascii_case(kind) && b.direction.eq_ignore_ascii_case(direction))
        .ok_or_else(|| {
            invalid(
                path,
                &format!("no {kind} binding with direction {direction}"),
            )
        })
}

fn retry_policy(function: &FunctionJson, path: &Path) -> Result<Option<RetryPolicy>, LocalError> {
    let Some(retry) = &function.retry else {
        return Ok(None);
    };
    let interval = |name: &str, value: &Option<String>| {
        value
            .as_deref()
            .ok_or_else(|| invalid(path, &format!("retry.{name} is missing")))
            .and_then(|text| {
                parse_timespan(text)
                    .ok_or_else(|| invalid(path, &format!("retry.{name} {text:?} is not hh:mm:ss")))
            })
    };
    let strategy = match retry.strategy.as_str() {
        "fixedDelay" => {
            RetryStrategy::FixedDelay(interval("delayInterval", &retry.delay_interval)?)
        }
        "exponentialBackoff" => RetryStrategy::ExponentialBackoff {
            minimum: interval("minimumInterval", &retry.minimum_interval)?,
            maximum: interval("maximumInterval", &retry.maximum_interval)?,
        },
        other => return Err(invalid(path, &format!("unknown retry strategy {other:?}"))),
    };
    Ok(Some(RetryPolicy {
        max_retry_count: retry.max_retry_count,
        strategy,
    }))
}

/// A .NET TimeSpan as function.json writes it: `[d.]hh:mm:ss[.fffffff]`.
pub fn parse_timespan(text: &str) -> Option<Duration> {
    let (days, clock) = match text.split_once('.') {
        Some((days, rest)) if !days.contains(':') => (days.parse::<u64>().ok()?, rest),
        _ => (0, text),
    };
    let mut parts = clock.split(':');
    let (hours, minutes, seconds) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let hours: u64 = hours.parse().ok()?;
    let minutes: u64 = minutes.parse().ok()?;
    let seconds: f64 = seconds.parse().ok()?;
    if minutes >= 60 || !(0.0..60.0).contains(&seconds) {
        return None;
    }
    Some(
        Duration::from_secs((days * 24 + hours) * 3600 + minutes * 60)
            + Duration::from_secs_f64(seconds),
    )
}

/// Resolves `%Setting%` the way the host does, from app settings.
pub fn resolve(value: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    match value.strip_prefix('%').and_then(|v| v.strip_suffix('%')) {
        Some(name) => lookup(name).ok_or_else(|| format!("app setting {name} is not set")),
        None => Ok(value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_s_own_app_files_are_read() {
        let files = AppFiles::read(Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap();
        assert_eq!(files.max_event_batch_size, 1000);
        assert_eq!(files.timer.binding, "timer");
        assert_eq!(files.timer.schedule, "%FETCH_SCHEDULE%");
        assert_eq!(files.timer.output, "events");
        assert_eq!(files.sink.binding, "events");
        assert_eq!(files.sink.event_hub_name, "%EVENT_HUB_NAME%");
        assert_eq!(files.sink.consumer_group, "%EVENT_HUB_CONSUMER_GROUP%");
        let retry = files.sink.retry.unwrap();
        assert_eq!(
            retry.max_retry_count, -1,
            "a failed batch is never checkpointed away"
        );
        assert_eq!(
            retry.strategy,
            RetryStrategy::ExponentialBackoff {
                minimum: Duration::from_secs(5),
                maximum: Duration::from_secs(300)
            }
        );
    }

    #[test]
    fn exponential_backoff_doubles_up_to_the_maximum_and_never_gives_up() {
        let policy = RetryPolicy {
            max_retry_count: -1,
            strategy: RetryStrategy::ExponentialBackoff {
                minimum: Duration::from_secs(5),
                maximum: Duration::from_secs(300),
            },
        };
        assert_eq!(policy.delay(0), Duration::from_secs(5));
        assert_eq!(policy.delay(2), Duration::from_secs(20));
        assert_eq!(policy.delay(40), Duration::from_secs(300));
        assert!(policy.allows(1_000_000));
        let fixed = RetryPolicy {
            max_retry_count: 3,
            strategy: RetryStrategy::FixedDelay(Duration::from_secs(10)),
        };
        assert!(fixed.allows(2) && !fixed.allows(3));
    }

    #[test]
    fn timespans_read_like_dotnet() {
        assert_eq!(parse_timespan("00:00:05"), Some(Duration::from_secs(5)));
        assert_eq!(parse_timespan("00:05:00"), Some(Duration::from_secs(300)));
        assert_eq!(
            parse_timespan("1.02:00:00"),
            Some(Duration::from_secs(26 * 3600))
        );
        assert_eq!(
            parse_timespan("00:00:00.250"),
            Some(Duration::from_millis(250))
        );
        assert_eq!(parse_timespan("5s"), None);
        assert_eq!(parse_timespan("00:61:00"), None);
    }

    #[test]
    fn settings_are_resolved_between_percent_signs() {
        let lookup = |name: &str| (name == "FETCH_SCHEDULE").then(|| "*/10 * * * * *".to_owned());
        assert_eq!(
            resolve("%FETCH_SCHEDULE%", lookup).unwrap(),
            "*/10 * * * * *"
        );
        assert_eq!(resolve("0 * * * * *", lookup).unwrap(), "0 * * * * *");
        assert!(resolve("%MISSING%", lookup).is_err());
    }

    #[test]
    fn a_sink_without_string_data_type_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::copy(root.join("host.json"), dir.path().join("host.json")).unwrap();
        for function in [TIMER_FETCH, EVENT_HUB_SINK] {
            std::fs::create_dir(dir.path().join(function)).unwrap();
            let text = std::fs::read_to_string(root.join(function).join("function.json")).unwrap();
            std::fs::write(
                dir.path().join(function).join("function.json"),
                text.replace("\"string\"", "\"binary\""),
            )
            .unwrap();
        }
        let error = AppFiles::read(dir.path()).unwrap_err();
        assert!(error.to_string().contains("dataType"), "{error}");
    }
}
