#![doc = include_str!("../README.md")]

use secrecy::{ExposeSecret, SecretString};
use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

mod networks;
mod virus_scan;
pub use networks::{IpNet, WebhookNetworks, is_public};
pub use virus_scan::VirusScan;

#[derive(Debug, thiserror::Error)]
#[error("invalid value for {var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

/// A start rate: `n` events per `period`, or no limit at all (`off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Off,
    PerPeriod { n: u32, period: Duration },
}

impl Rate {
    /// The GCRA emission interval T = period / n, or `None` when off.
    pub fn interval(self) -> Option<Duration> {
        match self {
            Rate::Off => None,
            Rate::PerPeriod { n, period } => Some(period / n),
        }
    }
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if matches!(s.to_ascii_lowercase().as_str(), "off" | "none" | "unlimited") {
            return Ok(Rate::Off);
        }
        // A bare `0` reads as "none allowed" to some and "no limit" to others;
        // guessing either way is wrong for someone, so it is refused.
        if s.parse::<u64>() == Ok(0) {
            return Err("`0` is ambiguous: write `off` to lift the limit, or a rate such as `1/h`".into());
        }
        let (n, unit) = s
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not of the form N/s, N/m, N/h or off"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` is not a whole number"))?;
        if n == 0 {
            return Err("a rate of 0 would stop everything; use `off` to lift the limit".into());
        }
        let period = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            other => return Err(format!("unknown period `{other}` (expected s, m or h)")),
        };
        Ok(Rate::PerPeriod { n, period })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::Off => f.write_str("off"),
            Rate::PerPeriod { n, period } => {
                let unit = match period.as_secs() {
                    1 => "s",
                    60 => "m",
                    _ => "h",
                };
                write!(f, "{n}/{unit}")
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AiProviderKind {
    Template,
    OpenAi,
}

/// What `DATABASE_URL` points at, as far as session state is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabasePooler {
    /// PostgreSQL, or a pooler in session mode: one connection is one server session.
    None,
    /// A pooler in transaction mode: a server connection is the client's for one transaction.
    Transaction,
}

impl FromStr for DatabasePooler {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(DatabasePooler::None),
            "transaction" => Ok(DatabasePooler::Transaction),
            other => Err(format!("`{other}` is not `none` or `transaction`")),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// Everything a Foxflow process may read from its environment.
#[derive(Clone)]
pub struct Config {
    pub database_url: SecretString,
    pub amqp_url: SecretString,
    /// Prefix of every exchange and queue; tests use a random one.
    pub namespace: String,
    pub api_addr: SocketAddr,
    /// Workers' `/metrics`, `/healthz` and `/readyz`.
    pub metrics_addr: Option<SocketAddr>,
    pub max_import_file_bytes: u64,
    pub max_import_rows: u64,
    pub import_rate_limit: Rate,
    pub ai_rate_limit: Rate,
    pub upload_throttle: Rate,
    /// `UPLOAD_THROTTLE_EXEMPT_ADMINS` (default `true`): admins' uploads are
    /// not counted against `UPLOAD_THROTTLE` (bulk reference loads, scripts).
    pub upload_throttle_exempt_admins: bool,
    pub import_max_retries: u32,
    pub import_retry_delay: Duration,
    pub ai_max_retries: u32,
    pub ai_retry_delay: Duration,
    pub import_soft_time_limit: Duration,
    pub import_time_limit: Duration,
    /// `IMPORT_LEASE` (default 15 s): how long a worker's claim on a job
    /// lasts without a heartbeat (one every third of it). A worker that dies
    /// holding a job is replaced this long after its last beat.
    pub import_lease: Duration,
    /// `IMPORT_PARSE_CPU` (default 60 s): CPU time one file's reader child
    /// may spend (docs/security.md, "Hard budgets per file").
    pub import_parse_cpu: Duration,
    /// `IMPORT_PARSE_MEMORY_MB` (default 512): address space of that child.
    pub import_parse_memory_mb: u64,
    /// `IMPORT_READER_BIN`: the `foxflow-sheet-reader` binary; by default
    /// the one beside the running executable.
    pub import_reader_bin: Option<std::path::PathBuf>,
    pub ai_provider: AiProviderKind,
    pub openai_base_url: Option<String>,
    pub openai_api_key: Option<SecretString>,
    pub openai_model: Option<String>,
    /// Time allowed to open a connection to the provider.
    pub openai_connect_timeout: Duration,
    /// Time allowed for a whole chat-completions call, answer included.
    pub openai_timeout: Duration,
    pub import_log_retention: Duration,
    pub import_file_retention: Duration,
    pub cleanup_schedule: String,
    pub otel_endpoint: Option<String>,
    pub log_format: LogFormat,
    /// Rows per set-based write; each batch commits with the job's checkpoint.
    pub import_batch_rows: usize,
    /// Messages a worker may hold unacknowledged at once.
    pub prefetch: u16,
    /// Database connections per process.
    pub db_pool_size: usize,
    /// `DATABASE_POOLER` (default `none`): `transaction` when `DATABASE_URL` is a pooler in
    /// transaction mode (pgBouncer `pool_mode = transaction`), so that no prepared statement or
    /// session setting is expected to outlive a transaction (docs/configuration.md).
    pub database_pooler: DatabasePooler,
    /// Webhook delivery attempts in all, the first included (`WEBHOOK_MAX_ATTEMPTS`).
    pub webhook_max_attempts: u32,
    /// The wait after a failed delivery, doubled after each failure (`WEBHOOK_RETRY_BASE`).
    pub webhook_retry_base: Duration,
    /// One delivery attempt, the receiver's answer included (`WEBHOOK_TIMEOUT`).
    pub webhook_timeout: Duration,
    /// `WEBHOOK_ALLOW_PRIVATE_NETWORKS` (default: none): networks besides the
    /// public internet that webhooks may be delivered to, e.g. `127.0.0.0/8`
    /// for a receiver on the same host. Everything else non-public is refused.
    pub webhook_allow_private_networks: WebhookNetworks,
    /// `EVENTS_STREAMS_PER_TOKEN` (default 4): open events streams one token
    /// may hold on one API replica; each polls the database.
    pub events_streams_per_token: usize,
    /// `EVENTS_STREAMS_TOTAL` (default 200): open events streams on one API
    /// replica, all tokens together.
    pub events_streams_total: usize,
    /// `AI_MAX_PENDING_TASKS_PER_USER` (default 50000): a user's AI tasks
    /// pending or processing at once; a request that would pass it is refused whole.
    pub ai_max_pending_tasks_per_user: u64,
    /// `CLAMD_ADDR` and its companions: every upload is scanned by clamd before it is stored;
    /// `None` (no address) turns scanning off.
    pub virus_scan: Option<VirusScan>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets are left out on purpose: Debug output ends up in logs.
        f.debug_struct("Config")
            .field("namespace", &self.namespace)
            .field("api_addr", &self.api_addr)
            .field("metrics_addr", &self.metrics_addr)
            .field("max_import_file_bytes", &self.max_import_file_bytes)
            .field("max_import_rows", &self.max_import_rows)
            .field("import_rate_limit", &self.import_rate_limit.to_string())
            .field("ai_rate_limit", &self.ai_rate_limit.to_string())
            .field("upload_throttle", &self.upload_throttle.to_string())
            .field(
                "upload_throttle_exempt_admins",
                &self.upload_throttle_exempt_admins,
            )
            .field("ai_provider", &self.ai_provider)
            .field("virus_scan", &self.virus_scan)
            .finish_non_exhaustive()
    }
}

/// Which process is reading the configuration; only the defaults differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Process {
    ApiGateway,
    ImportWorker,
    AiWorker,
    Cli,
}

impl Config {
    /// Reads the real process environment.
    pub fn from_env(process: Process) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        Config::from_map(process, &vars)
    }

    /// Reads from any map, so tests never touch the process environment.
    pub fn from_map(process: Process, vars: &HashMap<String, String>) -> Result<Config, ConfigError> {
        let env = Env(vars);
        let default_metrics = match process {
            Process::ImportWorker => Some("127.0.0.1:9101"),
            Process::AiWorker => Some("127.0.0.1:9102"),
            Process::ApiGateway | Process::Cli => None,
        };
        let metrics_addr = match env.get("METRICS_ADDR").or(default_metrics) {
            Some(v) => Some(parse_with("METRICS_ADDR", v, SocketAddr::from_str)?),
            None => None,
        };
        let ai_provider = match env.get("AI_PROVIDER").unwrap_or("template") {
            "template" => AiProviderKind::Template,
            "openai" => AiProviderKind::OpenAi,
            other => {
                return Err(ConfigError {
                    var: "AI_PROVIDER",
                    reason: format!("`{other}` is not `template` or `openai`"),
                });
            }
        };
        let log_format = match env.get("LOG_FORMAT").unwrap_or("pretty") {
            "json" => LogFormat::Json,
            "pretty" | "text" => LogFormat::Pretty,
            other => {
                return Err(ConfigError {
                    var: "LOG_FORMAT",
                    reason: format!("`{other}` is not `json` or `pretty`"),
                });
            }
        };
        let config = Config {
            database_url: env
                .get("DATABASE_URL")
                .unwrap_or("postgres://postgres@127.0.0.1:5432/foxflow")
                .to_owned()
                .into(),
            amqp_url: env
                .get("AMQP_URL")
                .unwrap_or("amqp://guest:guest@127.0.0.1:5672/%2f")
                .to_owned()
                .into(),
            namespace: namespace(env.get("FOX_NAMESPACE").unwrap_or("fox"))?,
            api_addr: env.parse("API_ADDR", "127.0.0.1:8080")?,
            metrics_addr,
            max_import_file_bytes: env.parse("MAX_IMPORT_FILE_BYTES", "10485760")?,
            max_import_rows: env.parse("MAX_IMPORT_ROWS", "50000")?,
            import_rate_limit: env.parse("IMPORT_RATE_LIMIT", "10/m")?,
            ai_rate_limit: env.parse("AI_RATE_LIMIT", "5/m")?,
            upload_throttle: env.parse("UPLOAD_THROTTLE", "10/h")?,
            upload_throttle_exempt_admins: env.parse("UPLOAD_THROTTLE_EXEMPT_ADMINS", "true")?,
            import_max_retries: env.parse("IMPORT_MAX_RETRIES", "3")?,
            import_retry_delay: env.duration("IMPORT_RETRY_DELAY", "5s")?,
            ai_max_retries: env.parse("AI_MAX_RETRIES", "2")?,
            ai_retry_delay: env.duration("AI_RETRY_DELAY", "60s")?,
            import_soft_time_limit: env.duration("IMPORT_SOFT_TIME_LIMIT", "30m")?,
            import_time_limit: env.duration("IMPORT_TIME_LIMIT", "2000s")?,
            import_lease: env.duration("IMPORT_LEASE", "15s")?,
            import_parse_cpu: env.duration("IMPORT_PARSE_CPU", "60s")?,
            import_parse_memory_mb: env.parse("IMPORT_PARSE_MEMORY_MB", "512")?,
            import_reader_bin: env.get("IMPORT_READER_BIN").map(std::path::PathBuf::from),
            ai_provider,
            openai_base_url: env.get("OPENAI_BASE_URL").map(str::to_owned),
            openai_api_key: env.get("OPENAI_API_KEY").map(|k| k.to_owned().into()),
            openai_model: env.get("OPENAI_MODEL").map(str::to_owned),
            openai_connect_timeout: env.duration("OPENAI_CONNECT_TIMEOUT", "5s")?,
            openai_timeout: env.duration("OPENAI_TIMEOUT", "60s")?,
            import_log_retention: env.duration("IMPORT_LOG_RETENTION", "90d")?,
            import_file_retention: env.duration("IMPORT_FILE_RETENTION", "30d")?,
            cleanup_schedule: env.get("CLEANUP_SCHEDULE").unwrap_or("0 3 * * SUN").to_owned(),
            otel_endpoint: env.get("OTEL_EXPORTER_OTLP_ENDPOINT").map(str::to_owned),
            log_format,
            import_batch_rows: env.parse("IMPORT_BATCH_ROWS", "5000")?,
            prefetch: env.parse("WORKER_PREFETCH", "1")?,
            db_pool_size: env.parse("DB_POOL_SIZE", "8")?,
            database_pooler: env.parse("DATABASE_POOLER", "none")?,
            webhook_max_attempts: env.parse("WEBHOOK_MAX_ATTEMPTS", "8")?,
            webhook_retry_base: env.duration("WEBHOOK_RETRY_BASE", "1s")?,
            webhook_timeout: env.duration("WEBHOOK_TIMEOUT", "10s")?,
            webhook_allow_private_networks: env.parse("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "")?,
            events_streams_per_token: env.parse("EVENTS_STREAMS_PER_TOKEN", "4")?,
            events_streams_total: env.parse("EVENTS_STREAMS_TOTAL", "200")?,
            ai_max_pending_tasks_per_user: env.parse("AI_MAX_PENDING_TASKS_PER_USER", "50000")?,
            virus_scan: virus_scan::parse(&env)?,
        };
        if config.import_parse_cpu < Duration::from_secs(1) || config.import_parse_memory_mb < 32 {
            return Err(ConfigError {
                var: "IMPORT_PARSE_CPU/IMPORT_PARSE_MEMORY_MB",
                reason: "must be at least 1s of CPU and 32 MiB: a file reader cannot start with less".into(),
            });
        }
        if config.webhook_max_attempts == 0 || config.webhook_timeout.is_zero() {
            return Err(ConfigError {
                var: "WEBHOOK_MAX_ATTEMPTS/WEBHOOK_TIMEOUT",
                reason: "must be at least 1 attempt and more than 0s".into(),
            });
        }
        if config.events_streams_per_token == 0 || config.events_streams_total == 0 {
            return Err(ConfigError {
                var: "EVENTS_STREAMS_PER_TOKEN/EVENTS_STREAMS_TOTAL",
                reason: "must be at least 1".into(),
            });
        }
        if config.ai_provider == AiProviderKind::OpenAi && config.openai_base_url.is_none() {
            return Err(ConfigError {
                var: "OPENAI_BASE_URL",
                reason: "required when AI_PROVIDER=openai".into(),
            });
        }
        if config.ai_provider == AiProviderKind::OpenAi && config.openai_model.is_none() {
            return Err(ConfigError {
                var: "OPENAI_MODEL",
                reason: "required when AI_PROVIDER=openai (e.g. gpt-4o-mini, mistral-small-latest, llama3.1)"
                    .into(),
            });
        }
        if config.openai_timeout.is_zero() || config.openai_connect_timeout.is_zero() {
            return Err(ConfigError {
                var: "OPENAI_TIMEOUT/OPENAI_CONNECT_TIMEOUT",
                reason: "must be more than 0s".into(),
            });
        }
        if config.import_lease < Duration::from_secs(1) {
            return Err(ConfigError {
                var: "IMPORT_LEASE",
                reason: "must be at least 1s: a shorter lease is lost between two heartbeats".into(),
            });
        }
        if config.import_batch_rows == 0 || config.prefetch == 0 {
            return Err(ConfigError {
                var: "IMPORT_BATCH_ROWS/WORKER_PREFETCH",
                reason: "must be at least 1".into(),
            });
        }
        Ok(config)
    }

    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }

    pub fn amqp_url(&self) -> &str {
        self.amqp_url.expose_secret()
    }
}

fn namespace(v: &str) -> Result<String, ConfigError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(v.to_owned())
    } else {
        Err(ConfigError {
            var: "FOX_NAMESPACE",
            reason: format!("`{v}` must be 1-64 characters among a-z, 0-9, `_`, `-`, `.`"),
        })
    }
}

fn parse_with<T, E: fmt::Display>(
    var: &'static str,
    v: &str,
    f: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, ConfigError> {
    f(v.trim()).map_err(|e| ConfigError {
        var,
        reason: format!("`{v}`: {e}"),
    })
}

struct Env<'a>(&'a HashMap<String, String>);

impl Env<'_> {
    fn get(&self, var: &str) -> Option<&str> {
        self.0
            .get(var)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    fn parse<T: FromStr>(&self, var: &'static str, default: &str) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        parse_with(var, self.get(var).unwrap_or(default), T::from_str)
    }

    fn duration(&self, var: &'static str, default: &str) -> Result<Duration, ConfigError> {
        parse_with(var, self.get(var).unwrap_or(default), humantime::parse_duration)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_map(Process::ImportWorker, &map)
    }

    #[test]
    fn defaults_match_the_spec() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.database_url(), "postgres://postgres@127.0.0.1:5432/foxflow");
        assert_eq!(c.database_pooler, DatabasePooler::None);
        assert_eq!(c.namespace, "fox");
        assert_eq!(c.metrics_addr, Some("127.0.0.1:9101".parse().unwrap()));
        assert_eq!(c.max_import_file_bytes, 10_485_760);
        assert_eq!(c.max_import_rows, 50_000);
        assert_eq!(c.import_rate_limit.to_string(), "10/m");
        assert_eq!(c.ai_rate_limit.to_string(), "5/m");
        assert_eq!(c.upload_throttle.to_string(), "10/h");
        assert!(c.upload_throttle_exempt_admins);
        assert_eq!(c.import_retry_delay, Duration::from_secs(5));
        assert_eq!(c.ai_retry_delay, Duration::from_secs(60));
        assert_eq!(c.import_soft_time_limit, Duration::from_secs(1800));
        assert_eq!(c.import_time_limit, Duration::from_secs(2000));
        assert_eq!(c.import_log_retention, Duration::from_secs(90 * 86400));
        assert_eq!(c.ai_provider, AiProviderKind::Template);
        assert_eq!(c.webhook_max_attempts, 8);
        assert_eq!(c.webhook_retry_base, Duration::from_secs(1));
        assert_eq!(c.webhook_timeout, Duration::from_secs(10));
    }

    #[test]
    fn errors_name_the_variable() {
        let e = cfg(&[("IMPORT_RATE_LIMIT", "ten per minute")]).err().unwrap();
        assert_eq!(e.var, "IMPORT_RATE_LIMIT");
        let e = cfg(&[("FOX_NAMESPACE", "a b")]).err().unwrap();
        assert_eq!(e.var, "FOX_NAMESPACE");
        let e = cfg(&[("UPLOAD_THROTTLE_EXEMPT_ADMINS", "maybe")]).err().unwrap();
        assert_eq!(e.var, "UPLOAD_THROTTLE_EXEMPT_ADMINS");
        let e = cfg(&[("AI_PROVIDER", "openai")]).err().unwrap();
        assert_eq!(e.var, "OPENAI_BASE_URL");
    }

    #[test]
    fn abuse_limits() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.webhook_allow_private_networks, WebhookNetworks::public_only());
        assert_eq!(c.events_streams_per_token, 4);
        assert_eq!(c.events_streams_total, 200);
        assert_eq!(c.ai_max_pending_tasks_per_user, 50_000);
        let c = cfg(&[("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "127.0.0.0/8,::1")]).unwrap();
        assert!(
            c.webhook_allow_private_networks
                .permits("127.0.0.1".parse().unwrap())
        );
        let e = cfg(&[("WEBHOOK_ALLOW_PRIVATE_NETWORKS", "localhost")])
            .err()
            .unwrap();
        assert_eq!(e.var, "WEBHOOK_ALLOW_PRIVATE_NETWORKS");
        let e = cfg(&[("EVENTS_STREAMS_TOTAL", "0")]).err().unwrap();
        assert_eq!(e.var, "EVENTS_STREAMS_PER_TOKEN/EVENTS_STREAMS_TOTAL");
    }

    #[test]
    fn rates() {
        assert_eq!("off".parse::<Rate>(), Ok(Rate::Off));
        assert_eq!(
            "30/m".parse::<Rate>().unwrap().interval(),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            "10/s".parse::<Rate>().unwrap().interval(),
            Some(Duration::from_millis(100))
        );
        assert!("0/m".parse::<Rate>().is_err());
        assert!("5/d".parse::<Rate>().is_err());
    }

    /// Issue 16: `0` once meant "no limit", the opposite of what it says.
    #[test]
    fn a_zero_rate_is_refused_and_names_the_variable() {
        for var in ["IMPORT_RATE_LIMIT", "AI_RATE_LIMIT", "UPLOAD_THROTTLE"] {
            for zero in ["0", " 0 ", "00", "0/m", "0/s", "0/h"] {
                let e = cfg(&[(var, zero)])
                    .err()
                    .unwrap_or_else(|| panic!("{var}={zero:?} accepted"));
                assert_eq!(e.var, var);
                assert!(e.to_string().contains(var), "{e}");
            }
            let e = cfg(&[(var, "0")]).err().unwrap();
            assert!(
                e.reason.contains("`off`"),
                "the message says how to lift the limit: {e}"
            );
            assert_eq!(cfg(&[(var, "off")]).unwrap().rate(var), Rate::Off);
            assert_eq!(cfg(&[(var, "OFF")]).unwrap().rate(var), Rate::Off);
        }
    }

    impl Config {
        fn rate(&self, var: &str) -> Rate {
            match var {
                "IMPORT_RATE_LIMIT" => self.import_rate_limit,
                "AI_RATE_LIMIT" => self.ai_rate_limit,
                _ => self.upload_throttle,
            }
        }
    }

    #[test]
    fn database_pooler_is_none_or_transaction() {
        let c = cfg(&[("DATABASE_POOLER", "transaction")]).unwrap();
        assert_eq!(c.database_pooler, DatabasePooler::Transaction);
        let e = cfg(&[("DATABASE_POOLER", "pgbouncer")]).unwrap_err();
        assert_eq!(e.var, "DATABASE_POOLER");
        assert!(e.reason.contains("`none` or `transaction`"), "{e}");
    }

    #[test]
    fn debug_hides_secrets() {
        let c = cfg(&[
            ("DATABASE_URL", "postgres://u:hunter2@db/x"),
            ("OPENAI_API_KEY", "sk-secret"),
        ])
        .unwrap();
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("hunter2") && !dbg.contains("sk-secret"));
    }
}
