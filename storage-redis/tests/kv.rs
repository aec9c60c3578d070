//! Redis-specific checks beyond the conformance suite (which runs the
//! shared contract through `conformance/src/harnesses/redis.rs`): key
//! layout, purging, counters that survive a drop, foreign key types.
//!
//! Each test starts a throwaway `redis-server` on a free loopback port
//! (no persistence; `storage_redis::testing::RedisServer`) and kills it at
//! the end, like the harness; when `REDIS_URL` is set that server is used
//! instead, with a unique prefix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use storage_core::{
    AtomicKv, Clock, Error, Expiry, KvStore, ManualClock, PutMode, PutOptions, ScanRequest,
    Timestamp, Version,
};
use storage_redis::testing::RedisServer;
use storage_redis::{RedisConfig, RedisStore};

fn server() -> RedisServer {
    RedisServer::start()
        .expect("redis-server must be installed to run these tests (or set REDIS_URL)")
}

static NEXT: AtomicU64 = AtomicU64::new(0);

struct Fixture {
    store: RedisStore,
    clock: ManualClock,
    raw: redis::aio::MultiplexedConnection,
    prefix: String,
    _server: RedisServer,
}

impl Fixture {
    fn key(&self, ns: &str, suffix: &str) -> String {
        format!("{{{}/{}}}:{}", self.prefix, ns, suffix)
    }
}

async fn fixture() -> Fixture {
    let server = server();
    let prefix = format!(
        "t-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let clock = ManualClock::at_fixed_start();
    let store = RedisStore::connect_with_clock(
        RedisConfig::standalone(server.url(), prefix.clone()),
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    let raw = redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    Fixture {
        store,
        clock,
        raw,
        prefix,
        _server: server,
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

#[tokio::test]
async fn writes_purge_expired_entries_from_every_structure() {
    let mut f = fixture().await;
    let ttl = PutOptions::ttl(Duration::from_secs(1));
    for i in 0..10 {
        f.store
            .put("ns", format!("old{i}").as_bytes(), b("v"), ttl)
            .await
            .unwrap();
    }
    f.clock.advance(Duration::from_secs(2));
    f.store
        .put("ns", b"new", b("v"), PutOptions::default())
        .await
        .unwrap();
    let mut sizes = Vec::new();
    for (suffix, cmd) in [("i", "ZCARD"), ("d", "HLEN"), ("x", "ZCARD")] {
        let n: i64 = redis::cmd(cmd)
            .arg(f.key("ns", suffix))
            .query_async(&mut f.raw)
            .await
            .unwrap();
        sizes.push(n);
    }
    assert_eq!(sizes, [1, 1, 0]);
    // No Redis expirations are ever set.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(f.key("ns", "d"))
        .query_async(&mut f.raw)
        .await
        .unwrap();
    assert_eq!(ttl, -1);
    f.store.destroy().await.unwrap();
}

#[tokio::test]
async fn one_record_per_key_holds_version_expiry_and_value() {
    let mut f = fixture().await;
    let now = f.clock.now().as_millis();
    let hget = |f: &Fixture| redis::cmd("HGET").arg(f.key("ns", "d")).arg("k").clone();
    // Values are stored verbatim after the header, separators and all.
    let v1 = f
        .store
        .put_if(
            "ns",
            b"k",
            b("a;b;\0c"),
            PutMode::Create,
            PutOptions::default(),
        )
        .await
        .unwrap();
    let rec: Vec<u8> = hget(&f).query_async(&mut f.raw).await.unwrap();
    assert_eq!(rec, format!("{v1};;a;b;\0c").into_bytes());
    let v2 = f
        .store
        .put_if(
            "ns",
            b"k",
            b(";"),
            PutMode::Update(v1),
            PutOptions::ttl(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    let rec: Vec<u8> = hget(&f).query_async(&mut f.raw).await.unwrap();
    assert_eq!(rec, format!("{v2};{};;", now + 1000).into_bytes());
    let score: u64 = redis::cmd("ZSCORE")
        .arg(f.key("ns", "x"))
        .arg("k")
        .query_async(&mut f.raw)
        .await
        .unwrap();
    assert_eq!(score, now + 1000);
    // The client judges expiry by the store clock: live until the instant,
    // absent from it on, and reads write nothing.
    f.clock.advance(Duration::from_millis(999));
    assert_eq!(f.store.get("ns", b"k").await.unwrap(), Some(b(";")));
    let got = f.store.get_versioned("ns", b"k").await.unwrap().unwrap();
    assert_eq!(got.version, v2);
    f.clock.advance(Duration::from_millis(1));
    assert_eq!(f.store.get("ns", b"k").await.unwrap(), None);
    assert!(f.store.get_versioned("ns", b"k").await.unwrap().is_none());
    assert_eq!(f.store.get_many("ns", &[b("k")]).await.unwrap(), [None]);
    let n: i64 = redis::cmd("HLEN")
        .arg(f.key("ns", "d"))
        .query_async(&mut f.raw)
        .await
        .unwrap();
    assert_eq!(n, 1);
    // Overwriting without a TTL takes the key out of the expiry zset.
    f.store
        .put("ns", b"k", b("z"), PutOptions::default())
        .await
        .unwrap();
    let n: i64 = redis::cmd("ZCARD")
        .arg(f.key("ns", "x"))
        .query_async(&mut f.raw)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // On a standalone server the write scripts keep the registry: the
    // creating write adds the namespace, the drop removes it.
    let registry = format!("{{{}}}:ns", f.prefix);
    let names: Vec<String> = redis::cmd("SMEMBERS")
        .arg(&registry)
        .query_async(&mut f.raw)
        .await
        .unwrap();
    assert_eq!(names, ["ns"]);
    assert!(f.store.drop_namespace("ns").await.unwrap());
    let names: Vec<String> = redis::cmd("SMEMBERS")
        .arg(&registry)
        .query_async(&mut f.raw)
        .await
        .unwrap();
    assert!(names.is_empty());
    f.store.destroy().await.unwrap();
}

#[tokio::test]
async fn tokens_are_never_reused_after_a_drop() {
    let f = fixture().await;
    let v1 = f
        .store
        .put_if("ns", b"k", b("a"), PutMode::Create, PutOptions::default())
        .await
        .unwrap();
    assert!(f.store.drop_namespace("ns").await.unwrap());
    assert!(!f.store.drop_namespace("ns").await.unwrap());
    assert!(f.store.list_namespaces().await.unwrap().is_empty());
    let v2 = f
        .store
        .put_if("ns", b"k", b("b"), PutMode::Create, PutOptions::default())
        .await
        .unwrap();
    assert_ne!(v1, v2);
    let err = f
        .store
        .put_if(
            "ns",
            b"k",
            b("c"),
            PutMode::Update(v1),
            PutOptions::default(),
        )
        .await;
    assert!(
        matches!(err, Err(Error::Conflict { current: Some(ref v), .. }) if *v == v2),
        "{err:?}"
    );
    assert_eq!(f.store.list_namespaces().await.unwrap(), ["ns"]);
    f.store.destroy().await.unwrap();
}

#[tokio::test]
async fn non_canonical_tokens_conflict_instead_of_aliasing() {
    let f = fixture().await;
    let v = f
        .store
        .put_if(
            "ns",
            b"k",
            b("a"),
            PutMode::Overwrite,
            PutOptions::default(),
        )
        .await
        .unwrap();
    for bad in [
        format!("0{v}"),
        format!("+{v}"),
        "etag".to_owned(),
        "-1".to_owned(),
    ] {
        let err = f
            .store
            .put_if(
                "ns",
                b"k",
                b("x"),
                PutMode::Update(Version::new(bad.as_str())),
                PutOptions::default(),
            )
            .await;
        assert!(
            matches!(err, Err(Error::Conflict { current: Some(ref c), .. }) if *c == v),
            "{bad}: {err:?}"
        );
        let err = f
            .store
            .delete_if("ns", b"k", &Version::new(bad.as_str()))
            .await;
        assert!(matches!(err, Err(Error::Conflict { .. })), "{bad}: {err:?}");
    }
    assert_eq!(f.store.get("ns", b"k").await.unwrap(), Some(b("a")));
    f.store.destroy().await.unwrap();
}

#[tokio::test]
async fn a_foreign_key_type_under_the_prefix_is_invalid_input() {
    let mut f = fixture().await;
    let _: () = redis::cmd("SET")
        .arg(f.key("ns", "d"))
        .arg("not a hash")
        .query_async(&mut f.raw)
        .await
        .unwrap();
    let err = f.store.put("ns", b"k", b("v"), PutOptions::default()).await;
    assert!(matches!(err, Err(Error::InvalidInput { .. })), "{err:?}");
    f.store.destroy().await.unwrap();
}

#[tokio::test]
async fn scans_skip_long_runs_of_expired_keys_and_keep_exact_expiries() {
    let f = fixture().await;
    let ttl = PutOptions::ttl(Duration::from_secs(1));
    let ops: Vec<_> = (0..2500)
        .map(|i| storage_core::BatchOp::Put {
            key: Bytes::from(format!("a{i:05}")),
            value: b("dead"),
            options: ttl,
        })
        .collect();
    f.store.write_batch("ns", ops).await.unwrap();
    let far = PutOptions {
        expiry: Expiry::At(Timestamp::from_millis(u64::MAX)),
    };
    for k in ["b1", "b2", "b3"] {
        f.store.put("ns", k.as_bytes(), b(k), far).await.unwrap();
    }
    f.clock.advance(Duration::from_secs(1));
    for request in [
        ScanRequest::all().with_limit(2),
        ScanRequest::all().with_limit(2).reversed(),
    ] {
        let reverse = request.direction == storage_core::Direction::Reverse;
        let page = f.store.scan("ns", request.clone()).await.unwrap();
        assert_eq!(page.entries.len(), 2);
        assert!(
            page.entries
                .iter()
                .all(|e| e.expires_at == Some(Timestamp::from_millis(u64::MAX))
                    && e.version.is_some())
        );
        let next = f
            .store
            .scan("ns", request.with_cursor(page.cursor.clone()))
            .await
            .unwrap();
        let keys: Vec<_> = page
            .entries
            .iter()
            .chain(&next.entries)
            .map(|e| e.key.clone())
            .collect();
        let mut want = vec![b("b1"), b("b2"), b("b3")];
        if reverse {
            want.reverse();
        }
        assert_eq!(keys, want);
        assert!(next.cursor.is_none());
    }
    assert_eq!(f.store.list_namespaces().await.unwrap(), ["ns"]);
    f.store.destroy().await.unwrap();
}

/// `EVALSHA` calls so far on the fixture's server (`INFO commandstats`).
async fn script_calls(raw: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(raw)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// Every page of a scan, entries as (key, value, version, expiry).
async fn scan_all(
    store: &RedisStore,
    ns: &str,
    request: ScanRequest,
) -> Vec<(Bytes, Bytes, Option<Version>, Option<Timestamp>)> {
    let mut out = Vec::new();
    let mut request = request;
    loop {
        let page = store.scan(ns, request.clone()).await.unwrap();
        assert!(page.entries.len() <= request.limit);
        out.extend(
            page.entries
                .into_iter()
                .map(|e| (e.key, e.value, e.version, e.expires_at)),
        );
        match page.cursor {
            Some(c) => request = request.with_cursor(Some(c)),
            None => return out,
        }
    }
}

#[tokio::test]
async fn scan_pages_of_any_size_return_the_live_entries_without_a_script() {
    // 2 KB values, a fifth of them expired, a fifth expiring never: pages
    // of 100 and of 7, both directions, against what get_versioned says;
    // a scan reads with ZRANGEBYLEX and HMGET only (values never pass
    // through Lua).
    let mut f = fixture().await;
    let ttl = PutOptions::ttl(Duration::from_secs(1));
    let far = PutOptions {
        expiry: Expiry::At(Timestamp::from_millis(u64::MAX)),
    };
    for i in 0..250u32 {
        let value = Bytes::from(format!("{i:05}").repeat(400));
        let options = match i % 5 {
            0 => ttl,
            1 => far,
            _ => PutOptions::default(),
        };
        let key = format!("k{i:05}");
        f.store
            .put("ns", key.as_bytes(), value, options)
            .await
            .unwrap();
    }
    f.clock.advance(Duration::from_secs(1));
    let mut want = Vec::new();
    for i in (0..250u32).filter(|i| i % 5 != 0) {
        let key = Bytes::from(format!("k{i:05}"));
        let got = f.store.get_versioned("ns", &key).await.unwrap().unwrap();
        let expiry = (i % 5 == 1).then(|| Timestamp::from_millis(u64::MAX));
        want.push((key, got.value, Some(got.version), expiry));
    }
    let shared_server = std::env::var_os("REDIS_URL").is_some();
    for (limit, reverse) in [(100, false), (7, false), (100, true), (7, true)] {
        let mut request = ScanRequest::all().with_limit(limit);
        if reverse {
            request = request.reversed();
        }
        let scripts_before = script_calls(&mut f.raw).await;
        let got = scan_all(&f.store, "ns", request).await;
        let scripts = script_calls(&mut f.raw).await - scripts_before;
        let mut expected = want.clone();
        if reverse {
            expected.reverse();
        }
        assert_eq!(got, expected, "limit {limit}, reverse {reverse}");
        if !shared_server {
            assert_eq!(scripts, 0, "limit {limit}: a scan ran {scripts} scripts");
        }
    }
    f.store.destroy().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_scan_pages_during_writes_never_repeat_or_skip_a_stable_key() {
    // The two-step read (keys by ZRANGEBYLEX, records by HMGET) under
    // writers that delete, recreate and rewrite keys between the steps.
    let f = fixture().await;
    let store = Arc::new(f.store.clone());
    let value = |tag: &str, i: usize| Bytes::from(format!("{tag}{i:04}").repeat(256));
    let key = |i: usize| Bytes::from(format!("k{i:04}"));
    const KEYS: usize = 150;
    let mut stable = Vec::new();
    for i in 0..KEYS {
        store
            .put("ns", &key(i), value("v", i), PutOptions::default())
            .await
            .unwrap();
        if i % 3 == 0 {
            stable.push((key(i), value("v", i)));
        }
    }
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writes = Arc::new(AtomicU64::new(0));
    let writer = {
        let (store, stop, writes) = (store.clone(), stop.clone(), writes.clone());
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let i = n % KEYS;
                match i % 3 {
                    1 => store
                        .put("ns", &key(i), value("r", n), PutOptions::default())
                        .await
                        .unwrap(),
                    2 if n % 2 == 0 => {
                        store.delete("ns", &key(i)).await.unwrap();
                    }
                    2 => store
                        .put("ns", &key(i), value("c", n), PutOptions::default())
                        .await
                        .unwrap(),
                    _ => continue,
                }
                writes.fetch_add(1, Ordering::Relaxed);
                tokio::task::yield_now().await;
            }
        })
    };
    // Let the writer get going, then scan at least 20 times and until
    // it has written 50 times while a scan ran.
    while writes.load(Ordering::Relaxed) == 0 {
        tokio::task::yield_now().await;
    }
    let mut during = 0;
    let mut round = 0;
    while round < 20 || (during < 50 && round < 2_000) {
        let mut request = ScanRequest::all().with_limit(50);
        if round % 2 == 1 {
            request = request.reversed();
        }
        let before = writes.load(Ordering::Relaxed);
        let got = scan_all(&store, "ns", request).await;
        during += writes.load(Ordering::Relaxed) - before;
        for pair in got.windows(2) {
            let ordered = if round % 2 == 1 {
                pair[1].0 < pair[0].0
            } else {
                pair[1].0 > pair[0].0
            };
            assert!(
                ordered,
                "round {round}: {:?} after {:?}",
                pair[1].0, pair[0].0
            );
        }
        for (k, v) in &stable {
            assert!(
                got.iter().any(|(gk, gv, _, _)| gk == k && gv == v),
                "round {round}: stable key {k:?} missing"
            );
        }
        round += 1;
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(
        during >= 50,
        "only {during} writes landed while {round} scans ran"
    );
    store.destroy().await.unwrap();
}
