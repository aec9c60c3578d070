//! Store URLs: parsed with the `url` crate into a [`Location`], checked
//! completely (scheme, form, every query option) before anything is opened.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use crate::error::OpenError;

/// One adapter: the URL schemes it answers and the cargo feature that
/// compiles it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adapter {
    /// The adapter's name (`sqlite`).
    pub name: &'static str,
    /// URL schemes it answers.
    pub schemes: &'static [&'static str],
    /// The cargo feature of this crate that compiles it in.
    pub feature: &'static str,
    /// Whether that feature is on in this build.
    pub enabled: bool,
}

/// Every adapter this crate knows, compiled in or not.
pub const ADAPTERS: &[Adapter] = &[
    Adapter {
        name: "memory",
        schemes: &["memory"],
        feature: "memory",
        enabled: cfg!(feature = "memory"),
    },
    Adapter {
        name: "sqlite",
        schemes: &["sqlite"],
        feature: "sqlite",
        enabled: cfg!(feature = "sqlite"),
    },
    Adapter {
        name: "duckdb",
        schemes: &["duckdb"],
        feature: "duckdb",
        enabled: cfg!(feature = "duckdb"),
    },
    Adapter {
        name: "redis",
        schemes: &["redis", "redis+cluster"],
        feature: "redis",
        enabled: cfg!(feature = "redis"),
    },
    Adapter {
        name: "remote",
        schemes: &["s3", "file"],
        feature: "remote",
        enabled: cfg!(feature = "remote"),
    },
];

/// A SQLite or DuckDB database: a file or a private in-memory database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbPath {
    /// A database file (created if absent).
    File(PathBuf),
    /// `::memory:`, private to the opened store.
    Memory,
}

/// A parsed, validated store URL. `Display` gives the URL back without
/// any password.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// `memory://`, optionally seeded from (and persisted to) a snapshot file.
    Memory {
        /// `?snapshot=PATH`.
        snapshot: Option<PathBuf>,
    },
    /// `sqlite:///path` or `sqlite::memory:`.
    Sqlite {
        /// Where.
        db: DbPath,
        /// `?durability=full|normal`.
        durability_normal: bool,
        /// `?busy_timeout_ms=N`.
        busy_timeout: Option<Duration>,
        /// `?readers=N`.
        readers: Option<usize>,
    },
    /// `duckdb:///path` or `duckdb::memory:`.
    DuckDb {
        /// Where.
        db: DbPath,
        /// `?threads=N`.
        threads: Option<usize>,
    },
    /// `redis://host:port/db` (standalone) or `redis+cluster://…` (seed nodes).
    Redis {
        /// Standalone server URL (`redis://…`, query removed) or cluster seeds.
        nodes: Vec<String>,
        /// Cluster or not.
        cluster: bool,
        /// `?prefix=P`; `storage` when absent.
        prefix: String,
    },
    /// `s3://bucket/prefix`.
    S3 {
        /// Bucket.
        bucket: String,
        /// Object prefix (the URL path without its leading `/`).
        prefix: String,
        /// `?endpoint=URL`, else `AWS_ENDPOINT_URL`, else AWS.
        endpoint: Option<String>,
        /// `?region=R`, else `AWS_REGION` / `AWS_DEFAULT_REGION`, else `us-east-1`.
        region: Option<String>,
    },
    /// `file:///dir`: a local directory with cross-process CAS.
    Dir {
        /// The directory (created if absent).
        path: PathBuf,
    },
}

/// The default Redis key prefix.
pub const DEFAULT_REDIS_PREFIX: &str = "storage";

impl Location {
    /// Parses and validates `text`. Never echoes a password.
    ///
    /// # Errors
    ///
    /// [`OpenError::Malformed`], [`OpenError::UnknownScheme`],
    /// [`OpenError::BadOption`], or [`OpenError::MissingFeature`] when the
    /// scheme's adapter is not compiled in.
    pub fn parse(text: &str) -> Result<Location, OpenError> {
        let url = Url::parse(text).map_err(|e| OpenError::Malformed {
            url: redact_text(text),
            reason: e.to_string(),
        })?;
        let scheme = url.scheme().to_owned();
        let adapter = ADAPTERS
            .iter()
            .find(|a| a.schemes.contains(&scheme.as_str()))
            .ok_or_else(|| OpenError::UnknownScheme {
                scheme: scheme.clone(),
            })?;
        if !adapter.enabled {
            return Err(OpenError::MissingFeature {
                scheme,
                feature: adapter.feature,
            });
        }
        let mut query = Query::new(&url)?;
        let location = match scheme.as_str() {
            "memory" => {
                no_host_or_path(&url, "memory://")?;
                Location::Memory {
                    snapshot: query.take("snapshot").map(PathBuf::from),
                }
            }
            "sqlite" => Location::Sqlite {
                db: db_path(&url, "sqlite")?,
                durability_normal: match query.take("durability").as_deref() {
                    None | Some("full") => false,
                    Some("normal") => true,
                    Some(other) => {
                        return Err(bad_option(
                            &url,
                            "durability",
                            format!("{other:?} is neither \"full\" nor \"normal\""),
                        ))
                    }
                },
                busy_timeout: query
                    .number(&url, "busy_timeout_ms")?
                    .map(|ms| Duration::from_millis(ms as u64)),
                readers: query.number(&url, "readers")?,
            },
            "duckdb" => Location::DuckDb {
                db: db_path(&url, "duckdb")?,
                threads: query.number(&url, "threads")?,
            },
            "redis" | "redis+cluster" => redis(&url, &mut query)?,
            "s3" => s3(&url, &mut query)?,
            "file" => {
                if url.host_str().is_some_and(|h| !h.is_empty()) {
                    return Err(malformed(
                        &url,
                        "file URLs take no host: use file:///absolute/dir",
                    ));
                }
                let path = url
                    .to_file_path()
                    .map_err(|()| malformed(&url, "not a local absolute path"))?;
                Location::Dir { path }
            }
            _ => {
                return Err(OpenError::UnknownScheme { scheme });
            }
        };
        query.finish(&url)?;
        Ok(location)
    }

    /// The adapter behind this location.
    pub fn adapter(&self) -> &'static str {
        match self {
            Location::Memory { .. } => "memory",
            Location::Sqlite { .. } => "sqlite",
            Location::DuckDb { .. } => "duckdb",
            Location::Redis { .. } => "redis",
            Location::S3 { .. } | Location::Dir { .. } => "remote",
        }
    }

    /// A short label naming the backend and its mode, the same names the
    /// conformance runner's harnesses use (`sqlite-file`, `redis-cluster`,
    /// `remote-s3` ...).
    pub fn label(&self) -> &'static str {
        match self {
            Location::Memory { .. } => "memory",
            Location::Sqlite {
                db: DbPath::File(_),
                ..
            } => "sqlite-file",
            Location::Sqlite { .. } => "sqlite-memory",
            Location::DuckDb {
                db: DbPath::File(_),
                ..
            } => "duckdb-file",
            Location::DuckDb { .. } => "duckdb-memory",
            Location::Redis { cluster: false, .. } => "redis",
            Location::Redis { .. } => "redis-cluster",
            Location::S3 { .. } => "remote-s3",
            Location::Dir { .. } => "remote-local",
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Memory { snapshot: None } => write!(f, "memory://"),
            Location::Memory {
                snapshot: Some(path),
            } => write!(f, "memory://?snapshot={}", path.display()),
            Location::Sqlite { db, .. } => write!(f, "sqlite:{}", DbDisplay(db)),
            Location::DuckDb { db, .. } => write!(f, "duckdb:{}", DbDisplay(db)),
            Location::Redis {
                nodes,
                cluster,
                prefix,
            } => {
                let first = nodes.first().map(|n| redact_text(n)).unwrap_or_default();
                if *cluster {
                    write!(f, "redis+cluster (seeds {first}, ...) prefix {prefix}")
                } else {
                    write!(f, "{first} prefix {prefix}")
                }
            }
            Location::S3 { bucket, prefix, .. } => write!(f, "s3://{bucket}/{prefix}"),
            Location::Dir { path } => write!(f, "file://{}", path.display()),
        }
    }
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Location({self})")
    }
}

struct DbDisplay<'a>(&'a DbPath);

impl fmt::Display for DbDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            DbPath::Memory => write!(f, ":memory:"),
            DbPath::File(p) => write!(f, "//{}", p.display()),
        }
    }
}

/// The query options of a URL, consumed one by one; what is left over is
/// an unknown option.
struct Query {
    options: BTreeMap<String, Vec<String>>,
}

impl Query {
    fn new(url: &Url) -> Result<Query, OpenError> {
        let mut options: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in url.query_pairs() {
            options
                .entry(k.into_owned())
                .or_default()
                .push(v.into_owned());
        }
        Ok(Query { options })
    }

    /// The one value of `name` (the last one if repeated).
    fn take(&mut self, name: &str) -> Option<String> {
        self.options.remove(name).and_then(|mut v| v.pop())
    }

    /// Every value of a repeatable option.
    fn take_all(&mut self, name: &str) -> Vec<String> {
        self.options.remove(name).unwrap_or_default()
    }

    fn number(&mut self, url: &Url, name: &str) -> Result<Option<usize>, OpenError> {
        self.take(name)
            .map(|v| {
                v.parse::<usize>().map_err(|_| {
                    bad_option(url, name, format!("{v:?} is not a non-negative integer"))
                })
            })
            .transpose()
    }

    fn finish(self, url: &Url) -> Result<(), OpenError> {
        match self.options.keys().next() {
            None => Ok(()),
            Some(k) => Err(bad_option(
                url,
                k,
                format!("unknown option for {} URLs", url.scheme()),
            )),
        }
    }
}

fn redis(url: &Url, query: &mut Query) -> Result<Location, OpenError> {
    let cluster = url.scheme() == "redis+cluster";
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| malformed(url, "a Redis URL needs a host: redis://host:port/db"))?;
    let port = url.port().unwrap_or(6379);
    let prefix = query
        .take("prefix")
        .unwrap_or_else(|| DEFAULT_REDIS_PREFIX.to_owned());
    if prefix.is_empty() {
        return Err(bad_option(url, "prefix", "must not be empty".to_owned()));
    }
    // The server URL the redis crate gets: scheme, credentials, host, port
    // and database, without our options.
    let mut server = url.clone();
    server.set_query(None);
    server.set_fragment(None);
    if cluster {
        if !matches!(url.path(), "" | "/") {
            return Err(malformed(
                url,
                "a Redis Cluster has no databases: use redis+cluster://host:port?node=host:port",
            ));
        }
        let mut nodes = vec![node_url(url, host, port)];
        for extra in query.take_all("node") {
            let seed = Url::parse(&format!("redis://{extra}"))
                .ok()
                .filter(|u| u.host_str().is_some_and(|h| !h.is_empty()) && u.path() == "")
                .ok_or_else(|| bad_option(url, "node", format!("{extra:?} is not host:port")))?;
            let seed_host = seed.host_str().unwrap_or_default();
            nodes.push(node_url(url, seed_host, seed.port().unwrap_or(6379)));
        }
        Ok(Location::Redis {
            nodes,
            cluster,
            prefix,
        })
    } else {
        let db = url.path().trim_start_matches('/');
        if !db.is_empty() && db.parse::<u32>().is_err() {
            return Err(malformed(
                url,
                "the path of a Redis URL is the database number (redis://host:port/0)",
            ));
        }
        if !query.take_all("node").is_empty() {
            return Err(bad_option(
                url,
                "node",
                "only redis+cluster:// URLs take seed nodes".to_owned(),
            ));
        }
        server
            .set_scheme("redis")
            .map_err(|()| malformed(url, "cannot form the server URL"))?;
        Ok(Location::Redis {
            nodes: vec![server.to_string()],
            cluster,
            prefix,
        })
    }
}

/// `redis://[user:password@]host:port`, keeping the URL's credentials for
/// every cluster node.
fn node_url(url: &Url, host: &str, port: u16) -> String {
    let auth = match (url.username(), url.password()) {
        ("", None) => String::new(),
        (user, None) => format!("{user}@"),
        (user, Some(pw)) => format!("{user}:{pw}@"),
    };
    format!("redis://{auth}{host}:{port}")
}

fn s3(url: &Url, query: &mut Query) -> Result<Location, OpenError> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err(malformed(
            url,
            "credentials do not belong in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ));
    }
    let bucket = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| malformed(url, "an S3 URL names its bucket: s3://bucket/prefix"))?
        .to_owned();
    let prefix = url.path().trim_matches('/').to_owned();
    let endpoint = query.take("endpoint");
    if let Some(e) = &endpoint {
        let parsed = Url::parse(e).map_err(|err| bad_option(url, "endpoint", err.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad_option(
                url,
                "endpoint",
                "must be an http:// or https:// URL".to_owned(),
            ));
        }
    }
    Ok(Location::S3 {
        bucket,
        prefix,
        endpoint,
        region: query.take("region"),
    })
}

fn db_path(url: &Url, scheme: &str) -> Result<DbPath, OpenError> {
    if url.cannot_be_a_base() {
        return match url.path() {
            ":memory:" => Ok(DbPath::Memory),
            _ => Err(malformed(
                url,
                &format!("use {scheme}:///absolute/path or {scheme}::memory:"),
            )),
        };
    }
    if url.host_str().is_some_and(|h| !h.is_empty()) {
        return Err(malformed(
            url,
            &format!("{scheme} URLs take no host: use {scheme}:///absolute/path (three slashes)"),
        ));
    }
    if url.path().is_empty() || url.path().ends_with('/') {
        return Err(malformed(url, "the URL names no database file"));
    }
    // Percent-decoded exactly as the same path in a file: URL.
    let path = Url::parse(&format!("file://{}", url.path()))
        .ok()
        .and_then(|f| f.to_file_path().ok())
        .ok_or_else(|| malformed(url, "not a local absolute path"))?;
    Ok(DbPath::File(path))
}

fn no_host_or_path(url: &Url, form: &str) -> Result<(), OpenError> {
    if url.host_str().is_some_and(|h| !h.is_empty()) || !matches!(url.path(), "" | "/") {
        return Err(malformed(
            url,
            &format!("use {form} (a private store) or {form}?snapshot=PATH"),
        ));
    }
    Ok(())
}

fn malformed(url: &Url, reason: &str) -> OpenError {
    OpenError::Malformed {
        url: redact(url),
        reason: reason.to_owned(),
    }
}

fn bad_option(url: &Url, option: &str, reason: String) -> OpenError {
    OpenError::BadOption {
        url: redact(url),
        option: option.to_owned(),
        reason,
    }
}

/// The URL with its password (the only secret a URL may carry here;
/// S3 credentials come from the environment) replaced by `***`.
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

/// [`redact`] for text that may not even parse: everything between `:` and
/// `@` of the authority goes.
pub fn redact_text(text: &str) -> String {
    match Url::parse(text) {
        Ok(u) => redact(&u),
        Err(_) => match (text.find("://"), text.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}://***{}", &text[..s], &text[at..]),
            _ => text.to_owned(),
        },
    }
}
