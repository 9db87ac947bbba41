//! The secret cache in front of Key Vault: one fetch per secret per `SECRET_TTL`, shared by
//! concurrent invocations, refreshed early on a refused value, and a fallback while the vault is down.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{Secret, SecretError, SecretName, SecretSource};
use crate::BoxFuture;

/// What the cache fetches from: Key Vault in production, a fake in the tests below.
pub trait Fetch: Send + Sync {
    fn fetch(&self, name: SecretName) -> BoxFuture<'_, Result<Secret, SecretError>>;

    fn describe(&self) -> String;

    /// See [`SecretSource::origin`].
    fn origin(&self, name: SecretName) -> String {
        format!("secret {name:?}")
    }
}

/// Caches each secret for `ttl`.
///
/// - A cached value is served, without a fetch, until it expires or is invalidated.
/// - One fetch per secret at a time: concurrent gets wait for it and share its outcome, so a burst
///   of invocations (or of 401s, each invalidating) costs the vault one request.
/// - If a fetch fails while an unexpired value is cached (the vault is unreachable just after a
///   refused key), that value is served until it expires: a Key Vault outage does not stop
///   TimerFetch for up to `ttl`. Once it has expired the fetch's error is returned.
pub struct CachedSecrets<F> {
    fetcher: F,
    ttl: Duration,
    slots: HashMap<SecretName, Slot>,
}

#[derive(Default)]
struct Slot {
    state: Mutex<State>,
    /// Held during a fetch: the single flight.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    cached: Option<(Secret, Instant)>,
    /// Set by `invalidate`: the cached value was refused, fetch anew before serving it again.
    refresh: bool,
    /// Fetches finished so far: a get that sees it move while it waited for the single flight
    /// takes that fetch's outcome instead of starting another.
    completed: u64,
    /// The error of the last fetch, when nothing could be served instead.
    last_error: Option<SecretError>,
}

impl State {
    fn fresh(&self, now: Instant) -> Option<Secret> {
        match &self.cached {
            Some((secret, expires)) if !self.refresh && now < *expires => Some(secret.clone()),
            _ => None,
        }
    }

    fn unexpired(&self, now: Instant) -> Option<Secret> {
        match &self.cached {
            Some((secret, expires)) if now < *expires => Some(secret.clone()),
            _ => None,
        }
    }
}

impl<F: Fetch> CachedSecrets<F> {
    pub fn new(fetcher: F, ttl: Duration) -> Self {
        let slots = SecretName::ALL
            .into_iter()
            .map(|name| (name, Slot::default()))
            .collect();
        Self {
            fetcher,
            ttl,
            slots,
        }
    }

    fn slot(&self, name: SecretName) -> &Slot {
        // `new` makes a slot for every name in `SecretName::ALL`, which lists every variant.
        &self.slots[&name]
    }

    async fn get_cached(&self, name: SecretName) -> Result<Secret, SecretError> {
        let slot = self.slot(name);
        let seen = {
            let state = lock(&slot.state);
            if let Some(secret) = state.fresh(Instant::now()) {
                return Ok(secret);
            }
            state.completed
        };
        let _flight = slot.fetching.lock().await;
        {
            let state = lock(&slot.state);
            if let Some(secret) = state.fresh(Instant::now()) {
                return Ok(secret);
            }
            if let Some(error) = state
                .last_error
                .as_ref()
                .filter(|_| state.completed != seen)
            {
                return Err(error.clone());
            }
        }
        let fetched = self.fetcher.fetch(name).await;
        let mut state = lock(&slot.state);
        state.completed += 1;
        let now = Instant::now();
        match fetched {
            Ok(secret) => {
                state.cached = Some((secret.clone(), now + self.ttl));
                state.refresh = false;
                state.last_error = None;
                Ok(secret)
            }
            Err(error) => match state.unexpired(now) {
                Some(secret) => {
                    tracing::warn!(
                        %error,
                        "Cannot refresh a secret: using the cached value until it expires."
                    );
                    // The forced refresh was tried; until expiry, serve the cached value
                    // rather than ask the unreachable vault again at every get.
                    state.refresh = false;
                    state.last_error = None;
                    Ok(secret)
                }
                None => {
                    state.cached = None;
                    state.last_error = Some(error.clone());
                    Err(error)
                }
            },
        }
    }
}

/// A poisoned lock only means another thread panicked while holding it; the state is still a
/// plain value, valid at every point a panic could have happened.
fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl<F: Fetch> SecretSource for CachedSecrets<F> {
    fn get(&self, name: SecretName) -> BoxFuture<'_, Result<Secret, SecretError>> {
        Box::pin(self.get_cached(name))
    }

    fn invalidate(&self, name: SecretName) {
        lock(&self.slot(name).state).refresh = true;
    }

    fn describe(&self) -> String {
        format!(
            "{} (cached for {})",
            self.fetcher.describe(),
            humantime::format_duration(self.ttl)
        )
    }

    fn origin(&self, name: SecretName) -> String {
        self.fetcher.origin(name)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::secrets::VaultSecretName;

    const TTL: Duration = Duration::from_secs(15 * 60);

    /// A vault whose value can change and which can be made unreachable.
    #[derive(Clone, Default)]
    struct FakeVault {
        value: Arc<Mutex<Option<&'static str>>>,
        fetches: Arc<AtomicUsize>,
    }

    impl FakeVault {
        fn holding(value: &'static str) -> Self {
            let vault = Self::default();
            vault.set(Some(value));
            vault
        }

        /// `None`: the vault cannot be reached.
        fn set(&self, value: Option<&'static str>) {
            *self.value.lock().unwrap() = value;
        }

        fn fetches(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }
    }

    impl Fetch for FakeVault {
        fn fetch(&self, name: SecretName) -> BoxFuture<'_, Result<Secret, SecretError>> {
            Box::pin(async move {
                self.fetches.fetch_add(1, Ordering::SeqCst);
                // A fetch takes time, so concurrent gets really overlap it.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let value = *self.value.lock().unwrap();
                value.map(Secret::new).ok_or_else(|| SecretError::Vault {
                    vault: "https://kv-test.vault.azure.net/".into(),
                    secret: VaultSecretName::parse(name.default_vault_name()).unwrap(),
                    reason: "connection refused".into(),
                })
            })
        }

        fn describe(&self) -> String {
            "fake vault".into()
        }
    }

    fn cache(vault: &FakeVault) -> Arc<CachedSecrets<FakeVault>> {
        Arc::new(CachedSecrets::new(vault.clone(), TTL))
    }

    const KEY: SecretName = SecretName::CoinCapApiKey;

    #[tokio::test(start_paused = true)]
    async fn a_cached_value_is_served_without_a_fetch_until_the_ttl_expires() {
        let vault = FakeVault::holding("key-1");
        let cache = cache(&vault);
        assert_eq!(cache.get(KEY).await.unwrap().expose(), "key-1");
        tokio::time::advance(TTL - Duration::from_secs(1)).await;
        vault.set(Some("key-2"));
        assert_eq!(cache.get(KEY).await.unwrap().expose(), "key-1");
        assert_eq!(vault.fetches(), 1);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(cache.get(KEY).await.unwrap().expose(), "key-2");
        assert_eq!(vault.fetches(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_gets_share_one_fetch() {
        let vault = FakeVault::holding("key-1");
        let cache = cache(&vault);
        for secret in concurrent_gets(&cache, KEY, 10).await {
            assert_eq!(secret.unwrap().expose(), "key-1");
        }
        assert_eq!(vault.fetches(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_gets_share_one_failed_fetch() {
        let vault = FakeVault::default();
        let cache = cache(&vault);
        for result in concurrent_gets(&cache, KEY, 10).await {
            assert!(result.is_err());
        }
        assert_eq!(vault.fetches(), 1);
        assert!(cache.get(KEY).await.is_err(), "a later get tries again");
        assert_eq!(vault.fetches(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_invalidations_share_one_refresh() {
        let vault = FakeVault::holding("key-1");
        let cache = cache(&vault);
        cache.get(KEY).await.unwrap();
        vault.set(Some("key-2"));
        cache.invalidate(KEY);
        for secret in concurrent_gets(&cache, KEY, 5).await {
            assert_eq!(secret.unwrap().expose(), "key-2");
        }
        assert_eq!(vault.fetches(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_invalidated_secret_is_fetched_anew_at_the_next_get() {
        let vault = FakeVault::holding("key-1");
        let cache = cache(&vault);
        cache.get(KEY).await.unwrap();
        vault.set(Some("key-2"));
        assert_eq!(cache.get(KEY).await.unwrap().expose(), "key-1");
        cache.invalidate(KEY);
        assert_eq!(cache.get(KEY).await.unwrap().expose(), "key-2");
        assert_eq!(cache.get(KEY).await.unwrap().expose(), "key-2");
        assert_eq!(vault.fetches(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_vault_falls_back_to_the_unexpired_cached_value() {
        let vault = FakeVault::holding("key-1");
        let cache = cache(&vault);
        cache.get(KEY).await.unwrap();
        vault.set(None);
        cache.invalidate(KEY);
        assert_eq!(cache.get(KEY).await.unwrap().expose(), "key-1");
        assert_eq!(vault.fetches(), 2, "the forced refresh was tried");
        assert_eq!(cache.get(KEY).await.unwrap().expose(), "key-1");
        assert_eq!(vault.fetches(), 2, "and not retried at every get");
    }

    #[tokio::test(start_paused = true)]
    async fn once_expired_an_unreachable_vault_fails_naming_the_vault_and_the_secret() {
        let vault = FakeVault::holding("key-1");
        let cache = cache(&vault);
        cache.get(KEY).await.unwrap();
        vault.set(None);
        tokio::time::advance(TTL).await;
        let error = cache.get(KEY).await.unwrap_err().to_string();
        assert!(
            error.contains("https://kv-test.vault.azure.net/"),
            "{error}"
        );
        assert!(error.contains("coincap-api-key"), "{error}");
        assert!(!error.contains("key-1"), "{error}");
        vault.set(Some("key-2"));
        assert_eq!(cache.get(KEY).await.unwrap().expose(), "key-2");
    }

    #[tokio::test(start_paused = true)]
    async fn each_secret_is_cached_on_its_own() {
        let vault = FakeVault::holding("value");
        let cache = cache(&vault);
        cache.get(SecretName::CoinCapApiKey).await.unwrap();
        cache.get(SecretName::SqlConnectionString).await.unwrap();
        cache.get(SecretName::CoinCapApiKey).await.unwrap();
        assert_eq!(vault.fetches(), 2);
        cache.invalidate(SecretName::SqlConnectionString);
        cache.get(SecretName::CoinCapApiKey).await.unwrap();
        assert_eq!(
            vault.fetches(),
            2,
            "invalidating one leaves the other cached"
        );
    }

    /// Runs `n` gets of `name` as concurrent tasks; their results in any order.
    async fn concurrent_gets(
        cache: &Arc<CachedSecrets<FakeVault>>,
        name: SecretName,
        n: usize,
    ) -> Vec<Result<Secret, SecretError>> {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let cache = Arc::clone(cache);
            tasks.spawn(async move { cache.get(name).await });
        }
        tasks.join_all().await
    }
}
