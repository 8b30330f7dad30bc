//! [`KafkaBusBuilder`]: where the brokers are, how topics and groups are named, and how long
//! to wait.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use faas_core::{Error, Result};

use super::KafkaBus;

/// The URL query prefix of a raw librdkafka property (`rdkafka.fetch.min.bytes=1`).
const RDKAFKA_PREFIX: &str = "rdkafka.";

/// A setting of [`KafkaBusBuilder`], by name, for [`KafkaBusBuilder::with_config`].
///
/// Each key has a name for URLs (`kafka://host:9092/?prefix=…`) and an environment variable
/// ([`KafkaBusBuilder::from_env`]); both are accepted by `FromStr`, case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KafkaConfigKey {
    /// Bootstrap brokers, comma separated `host:port` (`brokers`, `FAAS_KAFKA_BROKERS`).
    Brokers,
    /// Prefix of every topic and consumer group name, OpenWhisk's `whisk.kafka.topics.prefix`
    /// (`prefix`, `FAAS_KAFKA_PREFIX`; default empty).
    Prefix,
    /// The Kafka `client.id` (`client_id`, `FAAS_KAFKA_CLIENT_ID`; default `faas`).
    ClientId,
    /// Longest a `publish` (and a metadata or admin request) may take before it fails with a
    /// retryable error, ms (`publish_timeout_ms`, `FAAS_KAFKA_PUBLISH_TIMEOUT_MS`; default
    /// 5 000).
    PublishTimeout,
    /// How long the group waits for a silent member before giving its partitions to others,
    /// ms (`session_timeout_ms`, `FAAS_KAFKA_SESSION_TIMEOUT_MS`; default 6 000).
    SessionTimeout,
    /// Longest a member may go without calling `recv` before it is considered stuck and
    /// leaves the group, ms (`max_poll_interval_ms`, `FAAS_KAFKA_MAX_POLL_INTERVAL_MS`;
    /// default 600 000: longer than the longest action run).
    MaxPollInterval,
    /// Longest the broker holds a fetch while it has no new message, ms (`fetch_wait_ms`,
    /// `FAAS_KAFKA_FETCH_WAIT_MS`; default 5). A Kafka broker answers as soon as a message
    /// arrives, so there a larger value (Kafka's default is 500) only saves idle requests;
    /// tansu 0.6 holds every fetch for the whole wait, so there it is latency (see the
    /// [module documentation](super#latency-and-cost)).
    FetchWait,
    /// The fetch wait of background consumers
    /// ([`subscribe_background`](faas_core::MessageBus::subscribe_background): health pings,
    /// cache invalidations), ms (`background_fetch_wait_ms`,
    /// `FAAS_KAFKA_BACKGROUND_FETCH_WAIT_MS`; default 100). Their messages may wait this long,
    /// and on tansu, which holds every fetch for the whole wait, an idle background consumer
    /// costs the broker a twentieth of what one at the 5 ms [`FetchWait`](Self::FetchWait)
    /// does.
    BackgroundFetchWait,
    /// How often acknowledged offsets are committed to the broker, ms; 0 commits on every
    /// acknowledgement (`commit_interval_ms`, `FAAS_KAFKA_COMMIT_INTERVAL_MS`; default 100).
    CommitInterval,
    /// How long the producer waits to batch messages, ms (`linger_ms`, `FAAS_KAFKA_LINGER_MS`;
    /// default 0: latency first).
    Linger,
    /// Broker acknowledgements a publish waits for: `all` or `1` (`acks`, `FAAS_KAFKA_ACKS`;
    /// default `all`).
    Acks,
    /// Replicas of topics this bus creates; `-1` takes the broker's default
    /// (`replication_factor`, `FAAS_KAFKA_REPLICATION_FACTOR`; default `-1`).
    ReplicationFactor,
    /// Largest message accepted on topics this bus did not create itself, bytes
    /// (`default_max_message_bytes`, `FAAS_KAFKA_DEFAULT_MAX_MESSAGE_BYTES`; default the
    /// [`TopicConfig`](faas_core::TopicConfig) default, 1 MiB + 6068).
    DefaultMaxMessageBytes,
}

impl KafkaConfigKey {
    const ALL: [Self; 13] = [
        Self::Brokers,
        Self::Prefix,
        Self::ClientId,
        Self::PublishTimeout,
        Self::SessionTimeout,
        Self::MaxPollInterval,
        Self::FetchWait,
        Self::BackgroundFetchWait,
        Self::CommitInterval,
        Self::Linger,
        Self::Acks,
        Self::ReplicationFactor,
        Self::DefaultMaxMessageBytes,
    ];

    /// The name in URL query strings (`prefix`, `publish_timeout_ms`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Brokers => "brokers",
            Self::Prefix => "prefix",
            Self::ClientId => "client_id",
            Self::PublishTimeout => "publish_timeout_ms",
            Self::SessionTimeout => "session_timeout_ms",
            Self::MaxPollInterval => "max_poll_interval_ms",
            Self::FetchWait => "fetch_wait_ms",
            Self::BackgroundFetchWait => "background_fetch_wait_ms",
            Self::CommitInterval => "commit_interval_ms",
            Self::Linger => "linger_ms",
            Self::Acks => "acks",
            Self::ReplicationFactor => "replication_factor",
            Self::DefaultMaxMessageBytes => "default_max_message_bytes",
        }
    }

    /// The environment variable [`KafkaBusBuilder::from_env`] reads.
    pub fn env_var(self) -> &'static str {
        match self {
            Self::Brokers => "FAAS_KAFKA_BROKERS",
            Self::Prefix => "FAAS_KAFKA_PREFIX",
            Self::ClientId => "FAAS_KAFKA_CLIENT_ID",
            Self::PublishTimeout => "FAAS_KAFKA_PUBLISH_TIMEOUT_MS",
            Self::SessionTimeout => "FAAS_KAFKA_SESSION_TIMEOUT_MS",
            Self::MaxPollInterval => "FAAS_KAFKA_MAX_POLL_INTERVAL_MS",
            Self::FetchWait => "FAAS_KAFKA_FETCH_WAIT_MS",
            Self::BackgroundFetchWait => "FAAS_KAFKA_BACKGROUND_FETCH_WAIT_MS",
            Self::CommitInterval => "FAAS_KAFKA_COMMIT_INTERVAL_MS",
            Self::Linger => "FAAS_KAFKA_LINGER_MS",
            Self::Acks => "FAAS_KAFKA_ACKS",
            Self::ReplicationFactor => "FAAS_KAFKA_REPLICATION_FACTOR",
            Self::DefaultMaxMessageBytes => "FAAS_KAFKA_DEFAULT_MAX_MESSAGE_BYTES",
        }
    }
}

impl fmt::Display for KafkaConfigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KafkaConfigKey {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s) || k.env_var().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "unknown Kafka setting '{s}'; known: {}",
                    Self::ALL.map(Self::as_str).join(", ")
                ))
            })
    }
}

/// Builds a [`KafkaBus`]: [`new()`](Self::new), [`from_env()`](Self::from_env) or
/// [`KafkaBus::from_url`], then `with_*`, then [`build()`](Self::build).
///
/// ```no_run
/// use faas_bus::kafka::KafkaBus;
///
/// # fn run() -> faas_core::Result<()> {
/// let bus = KafkaBus::builder()
///     .with_brokers("127.0.0.1:9092")
///     .with_topic_prefix("dev-")
///     .with_client_id("controller0")
///     .build()?;
/// # Ok(()) }
/// ```
///
/// Settings are strings until [`build`](Self::build) checks them, so a builder can be filled
/// from flags, environment variables and URLs alike. [`with_rdkafka`](Self::with_rdkafka) passes
/// any other librdkafka property to every client (producer, admin and consumers); it wins over
/// what the bus sets.
#[derive(Debug, Clone, Default)]
pub struct KafkaBusBuilder {
    settings: Vec<(KafkaConfigKey, String)>,
    rdkafka: Vec<(String, String)>,
}

impl KafkaBusBuilder {
    /// A builder with nothing set (the brokers are required before [`build`](Self::build)).
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder from the `FAAS_KAFKA_*` environment variables (see [`KafkaConfigKey`]);
    /// unset variables leave the defaults.
    pub fn from_env() -> Self {
        let mut b = Self::new();
        for key in KafkaConfigKey::ALL {
            if let Ok(v) = std::env::var(key.env_var()) {
                b = b.with_config(key, v);
            }
        }
        b
    }

    /// Sets one setting by key; values are checked by [`build`](Self::build).
    pub fn with_config(mut self, key: KafkaConfigKey, value: impl Into<String>) -> Self {
        self.settings.retain(|(k, _)| *k != key);
        self.settings.push((key, value.into()));
        self
    }

    /// Settings from a URL `kafka://host:port[,host:port…][/][?key=value&…]`: the authority
    /// gives the brokers, query parameters are settings by their [`KafkaConfigKey`] names, and
    /// `rdkafka.<property>=<value>` passes a raw librdkafka property as
    /// [`with_rdkafka`](Self::with_rdkafka) does (checked by [`build`](Self::build)).
    /// Settings made before are kept unless the URL sets them.
    pub fn with_url(mut self, url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("kafka://")
            .ok_or_else(|| Error::bad_request(format!("not a kafka:// URL: '{url}'")))?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let brokers = authority.trim_end_matches('/');
        if brokers.contains('/') {
            return Err(Error::bad_request(format!(
                "a kafka:// URL has no path: '{url}'"
            )));
        }
        if !brokers.is_empty() {
            self = self.with_brokers(brokers);
        }
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k.strip_prefix(RDKAFKA_PREFIX) {
                Some("") => {
                    return Err(Error::bad_request(format!(
                        "'{k}' names no librdkafka property (use {RDKAFKA_PREFIX}<property>=<value>)"
                    )));
                }
                Some(property) => self = self.with_rdkafka(property, v),
                None => self = self.with_config(k.parse()?, v),
            }
        }
        Ok(self)
    }

    /// The bootstrap brokers, comma separated `host:port`.
    pub fn with_brokers(self, brokers: impl Into<String>) -> Self {
        self.with_config(KafkaConfigKey::Brokers, brokers)
    }

    /// Prefix for every topic and consumer group name (OpenWhisk's
    /// `whisk.kafka.topics.prefix`), so several deployments can share a cluster.
    pub fn with_topic_prefix(self, prefix: impl Into<String>) -> Self {
        self.with_config(KafkaConfigKey::Prefix, prefix)
    }

    /// The Kafka `client.id` (shows in broker logs and metrics).
    pub fn with_client_id(self, client_id: impl Into<String>) -> Self {
        self.with_config(KafkaConfigKey::ClientId, client_id)
    }

    /// Longest a publish, a metadata lookup or an admin request may take (rounded to ms).
    pub fn with_publish_timeout(self, timeout: Duration) -> Self {
        self.with_config(KafkaConfigKey::PublishTimeout, millis(timeout))
    }

    /// How long the group waits for a silent member (rounded to ms).
    pub fn with_session_timeout(self, timeout: Duration) -> Self {
        self.with_config(KafkaConfigKey::SessionTimeout, millis(timeout))
    }

    /// How often acknowledged offsets are committed; zero commits on every acknowledgement.
    pub fn with_commit_interval(self, every: Duration) -> Self {
        self.with_config(KafkaConfigKey::CommitInterval, millis(every))
    }

    /// How long the broker may hold an empty fetch (rounded to ms).
    pub fn with_fetch_wait(self, wait: Duration) -> Self {
        self.with_config(KafkaConfigKey::FetchWait, millis(wait))
    }

    /// Any librdkafka property (see its `CONFIGURATION.md`), given to every client.
    pub fn with_rdkafka(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.rdkafka.push((key.into(), value.into()));
        self
    }

    /// Checks the settings and creates the producer and the admin client. Nothing is sent
    /// yet: an unreachable broker shows as retryable errors from the operations (see
    /// [`KafkaBus::ping`] to check up front).
    pub fn build(self) -> Result<KafkaBus> {
        KafkaBus::new(self.settings()?)
    }

    fn get(&self, key: KafkaConfigKey) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.trim())
    }

    fn number<T: FromStr>(&self, key: KafkaConfigKey, default: T) -> Result<T> {
        match self.get(key) {
            None | Some("") => Ok(default),
            Some(v) => v.parse().map_err(|_| {
                Error::bad_request(format!("Kafka setting {key}: '{v}' is not a valid number"))
            }),
        }
    }

    fn settings(&self) -> Result<Settings> {
        let brokers = self
            .get(KafkaConfigKey::Brokers)
            .filter(|b| !b.is_empty())
            .ok_or_else(|| {
                Error::bad_request(format!(
                    "no Kafka brokers: set {} or a kafka://host:port URL",
                    KafkaConfigKey::Brokers.env_var()
                ))
            })?
            .to_string();
        let prefix = self.get(KafkaConfigKey::Prefix).unwrap_or("").to_string();
        if !prefix.is_empty() {
            super::check_name("topic prefix", &prefix)?;
        }
        let ms = |key, default| -> Result<Duration> {
            Ok(Duration::from_millis(self.number::<u64>(key, default)?))
        };
        let acks = match self.get(KafkaConfigKey::Acks).unwrap_or("all") {
            "all" | "-1" | "" => "all",
            "1" => "1",
            other => {
                return Err(Error::bad_request(format!(
                    "Kafka setting acks: '{other}' is neither 'all' nor '1'"
                )));
            }
        };
        let settings = Settings {
            brokers,
            prefix,
            client_id: self
                .get(KafkaConfigKey::ClientId)
                .filter(|c| !c.is_empty())
                .unwrap_or("faas")
                .to_string(),
            publish_timeout: ms(KafkaConfigKey::PublishTimeout, 5_000)?,
            session_timeout: ms(KafkaConfigKey::SessionTimeout, 6_000)?,
            max_poll_interval: ms(KafkaConfigKey::MaxPollInterval, 600_000)?,
            fetch_wait: ms(KafkaConfigKey::FetchWait, 5)?,
            background_fetch_wait: ms(KafkaConfigKey::BackgroundFetchWait, 100)?,
            commit_interval: ms(KafkaConfigKey::CommitInterval, 100)?,
            linger: ms(KafkaConfigKey::Linger, 0)?,
            acks,
            replication_factor: self.number(KafkaConfigKey::ReplicationFactor, -1)?,
            default_max_message_bytes: self.number(
                KafkaConfigKey::DefaultMaxMessageBytes,
                faas_core::TopicConfig::default().max_message_bytes,
            )?,
            rdkafka: self.rdkafka.clone(),
        };
        if settings.publish_timeout < Duration::from_millis(100) {
            return Err(Error::bad_request(
                "Kafka setting publish_timeout_ms: at least 100",
            ));
        }
        if settings.session_timeout < Duration::from_millis(1_000) {
            return Err(Error::bad_request(
                "Kafka setting session_timeout_ms: at least 1000",
            ));
        }
        Ok(settings)
    }
}

/// Checked settings, shared by the bus and its consumers.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) brokers: String,
    pub(crate) prefix: String,
    pub(crate) client_id: String,
    pub(crate) publish_timeout: Duration,
    pub(crate) session_timeout: Duration,
    pub(crate) max_poll_interval: Duration,
    pub(crate) fetch_wait: Duration,
    pub(crate) background_fetch_wait: Duration,
    pub(crate) commit_interval: Duration,
    pub(crate) linger: Duration,
    pub(crate) acks: &'static str,
    pub(crate) replication_factor: i32,
    pub(crate) default_max_message_bytes: usize,
    pub(crate) rdkafka: Vec<(String, String)>,
}

fn millis(d: Duration) -> String {
    d.as_millis().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_by_url_name_and_env_var() {
        for key in KafkaConfigKey::ALL {
            assert_eq!(key.as_str().parse::<KafkaConfigKey>().ok(), Some(key));
            assert_eq!(key.env_var().parse::<KafkaConfigKey>().ok(), Some(key));
        }
        assert!("nope".parse::<KafkaConfigKey>().is_err());
    }

    #[test]
    fn url_gives_brokers_and_settings() {
        let b = KafkaBusBuilder::new()
            .with_client_id("kept")
            .with_url("kafka://127.0.0.1:9092,127.0.0.1:9093/?prefix=dev-&publish_timeout_ms=2000")
            .unwrap();
        let s = b.settings().unwrap();
        assert_eq!(s.brokers, "127.0.0.1:9092,127.0.0.1:9093");
        assert_eq!(s.prefix, "dev-");
        assert_eq!(s.client_id, "kept");
        assert_eq!(s.publish_timeout, Duration::from_secs(2));
        assert_eq!(s.acks, "all");
        assert_eq!(s.commit_interval, Duration::from_millis(100));
        assert_eq!(s.fetch_wait, Duration::from_millis(5));
        assert_eq!(s.background_fetch_wait, Duration::from_millis(100));
    }

    #[test]
    fn bad_settings_are_bad_requests() {
        for b in [
            KafkaBusBuilder::new(),
            KafkaBusBuilder::new().with_brokers(" "),
            KafkaBusBuilder::new()
                .with_brokers("h:1")
                .with_config(KafkaConfigKey::PublishTimeout, "soon"),
            KafkaBusBuilder::new()
                .with_brokers("h:1")
                .with_config(KafkaConfigKey::Acks, "0"),
            KafkaBusBuilder::new()
                .with_brokers("h:1")
                .with_topic_prefix("bad/prefix"),
            KafkaBusBuilder::new()
                .with_brokers("h:1")
                .with_publish_timeout(Duration::from_millis(1)),
        ] {
            match b.settings() {
                Err(e) => assert_eq!(e.status(), 400, "{e}"),
                Ok(s) => panic!("accepted {s:?}"),
            }
        }
        for url in ["http://h:1", "kafka://h:1/path", "kafka://h:1?unknown=1"] {
            assert!(KafkaBusBuilder::new().with_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn url_passes_raw_librdkafka_properties() {
        let b = KafkaBusBuilder::new()
            .with_url("kafka://h:1?rdkafka.queue.buffering.max.ms=1&fetch_wait_ms=7")
            .unwrap();
        assert_eq!(
            b.rdkafka,
            vec![("queue.buffering.max.ms".to_string(), "1".to_string())]
        );
        assert_eq!(b.settings().unwrap().fetch_wait, Duration::from_millis(7));
        let e = KafkaBusBuilder::new()
            .with_url("kafka://h:1?rdkafka.=1")
            .unwrap_err();
        assert_eq!(e.status(), 400, "{e}");
    }

    #[test]
    fn later_settings_win() {
        let s = KafkaBusBuilder::new()
            .with_brokers("a:1")
            .with_brokers("b:2")
            .settings()
            .unwrap();
        assert_eq!(s.brokers, "b:2");
    }
}
