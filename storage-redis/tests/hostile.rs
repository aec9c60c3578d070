//! Hostile input and hostile neighbours: over-limit keys, values and
//! names are refused with nothing written (checked with a raw `SCAN` of
//! the prefix); names with `:` and `/` are valid and never collide; key
//! bytes that mean something to Redis or Lua round-trip and scan in byte
//! order; keys of the wrong type left under a namespace by someone else
//! make that namespace's calls fail with a typed error while the rest of
//! the store keeps working.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use common::{b, keys_of, server, standalone, unique_prefix};
use storage_core::{
    AtomicKv, BatchOp, Condition, Error, KvStore, ManualClock, PutMode, PutOptions, ScanRequest,
    TxOp, Version,
};
use storage_redis::testing::keys_matching;
use storage_redis::{RedisConfig, RedisStore, CAPABILITIES};

fn assert_invalid<T: std::fmt::Debug>(what: &str, result: Result<T, Error>) {
    assert!(
        matches!(result, Err(Error::InvalidInput { .. })),
        "{what}: expected InvalidInput, got {result:?}"
    );
}

async fn raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn over_limit_keys_and_values_are_refused_and_nothing_is_written() {
    let server = server();
    let prefix = unique_prefix("hl");
    let store = standalone(server.url(), &prefix, &ManualClock::at_fixed_start()).await;
    let long_key = Bytes::from(vec![b'k'; CAPABILITIES.max_key_size + 1]);
    let big = Bytes::from(vec![b'v'; CAPABILITIES.max_value_size + 1]);
    let none = PutOptions::default();

    assert_invalid(
        "put long key",
        store.put("ns", &long_key, b("v"), none).await,
    );
    assert_invalid("put empty key", store.put("ns", b"", b("v"), none).await);
    assert_invalid(
        "put big value",
        store.put("ns", b"k", big.clone(), none).await,
    );
    assert_invalid("get long key", store.get("ns", &long_key).await);
    assert_invalid("delete long key", store.delete("ns", &long_key).await);
    assert_invalid(
        "get_many long key",
        store.get_many("ns", &[b("ok"), long_key.clone()]).await,
    );
    assert_invalid(
        "put_if long key",
        store
            .put_if("ns", &long_key, b("v"), PutMode::Create, none)
            .await,
    );
    assert_invalid(
        "put_if big value",
        store
            .put_if("ns", b"k", big.clone(), PutMode::Overwrite, none)
            .await,
    );
    assert_invalid(
        "delete_if long key",
        store.delete_if("ns", &long_key, &Version::new("1")).await,
    );
    assert_invalid(
        "write_batch with one big value",
        store
            .write_batch(
                "ns",
                vec![
                    BatchOp::Put {
                        key: b("fine"),
                        value: b("v"),
                        options: none,
                    },
                    BatchOp::Put {
                        key: b("big"),
                        value: big.clone(),
                        options: none,
                    },
                ],
            )
            .await,
    );
    assert_invalid(
        "transact with one long key",
        store
            .transact(vec![
                TxOp::put("ns", b("fine"), b("v")),
                TxOp::put("ns", long_key.clone(), b("v")),
            ])
            .await,
    );
    assert_invalid(
        "transact with one big value",
        store
            .transact(vec![
                TxOp::put("ns", b("fine"), b("v")),
                TxOp::put("other", b("big"), big.clone()),
            ])
            .await,
    );
    assert_invalid(
        "transact over the op limit",
        store
            .transact(
                (0..=CAPABILITIES.max_transaction_ops)
                    .map(|i| TxOp::put("ns", Bytes::from(format!("k{i}")), b("v")))
                    .collect(),
            )
            .await,
    );
    assert_invalid(
        "scan over the page limit",
        store
            .scan(
                "ns",
                ScanRequest::all().with_limit(CAPABILITIES.max_scan_limit + 1),
            )
            .await,
    );
    let left = keys_of(server.url(), &prefix);
    assert!(left.is_empty(), "refused writes left keys: {left:?}");
    assert!(store.list_namespaces().await.unwrap().is_empty());

    // Exactly at the limits is fine.
    let max_key = Bytes::from(vec![b'k'; CAPABILITIES.max_key_size]);
    let max_value = Bytes::from(vec![b'v'; CAPABILITIES.max_value_size]);
    store
        .put("ns", &max_key, max_value.clone(), none)
        .await
        .unwrap();
    assert_eq!(store.get("ns", &max_key).await.unwrap(), Some(max_value));
    store.destroy().await.unwrap();
}

#[tokio::test]
async fn bad_namespace_names_are_refused_and_nothing_is_written() {
    let server = server();
    let prefix = unique_prefix("hn");
    let store = standalone(server.url(), &prefix, &ManualClock::at_fixed_start()).await;
    let too_long = "n".repeat(CAPABILITIES.max_namespace_size + 1);
    let none = PutOptions::default();
    for ns in [
        "{",
        "}",
        "a{b",
        "a}b",
        "{a}",
        "*",
        "a*",
        "a?",
        "a\nb",
        "a b",
        " ",
        "",
        "ü",
        "a\0b",
        too_long.as_str(),
    ] {
        let what = format!("{ns:?}");
        assert_invalid(&what, store.put(ns, b"k", b("v"), none).await);
        assert_invalid(&what, store.get(ns, b"k").await);
        assert_invalid(&what, store.delete(ns, b"k").await);
        assert_invalid(&what, store.scan(ns, ScanRequest::all()).await);
        assert_invalid(&what, store.drop_namespace(ns).await);
        assert_invalid(
            &what,
            store.put_if(ns, b"k", b("v"), PutMode::Create, none).await,
        );
        assert_invalid(&what, store.get_versioned(ns, b"k").await);
        assert_invalid(
            &what,
            store
                .write_batch(
                    ns,
                    vec![BatchOp::Put {
                        key: b("k"),
                        value: b("v"),
                        options: none,
                    }],
                )
                .await,
        );
        assert_invalid(
            &what,
            store
                .transact(vec![
                    TxOp::put("fine", b("k"), b("v")),
                    TxOp::put(ns, b("k"), b("v")),
                ])
                .await,
        );
    }
    let left = keys_of(server.url(), &prefix);
    assert!(left.is_empty(), "refused writes left keys: {left:?}");

    // The longest allowed name works.
    let longest = "n".repeat(CAPABILITIES.max_namespace_size);
    store.put(&longest, b"k", b("v"), none).await.unwrap();
    assert_eq!(store.get(&longest, b"k").await.unwrap(), Some(b("v")));
    store.destroy().await.unwrap();
}

#[tokio::test]
async fn a_prefix_that_could_break_the_hash_tag_is_refused_at_connect() {
    let server = server();
    // `/` separates the prefix from namespace names: prefix `p/x` with
    // namespace `y` would alias prefix `p` with namespace `x/y`.
    for prefix in ["a{b", "a}b", "{", "}", "a*", "a b", "", "p/x", "/"] {
        let result = RedisStore::connect(RedisConfig::standalone(server.url(), prefix)).await;
        assert_invalid(&format!("prefix {prefix:?}"), result);
    }
    let result =
        RedisStore::connect(RedisConfig::cluster(vec![server.url().to_owned()], "x{y")).await;
    assert_invalid("cluster prefix with a brace", result);
}

#[tokio::test]
async fn names_with_colons_and_slashes_are_valid_and_never_collide() {
    let server = server();
    let prefix = unique_prefix("hc");
    let store = standalone(server.url(), &prefix, &ManualClock::at_fixed_start()).await;
    // "a:d", "a:i" look like the key suffixes of namespace "a"; "a/b"
    // shares its tag's start.
    let nss = ["a", "a:d", "a:i", "a/b", "a/b:c", "a:", "a/", ":", "/"];
    for ns in nss {
        for k in ["d", "i", "k", "a"] {
            store
                .put(
                    ns,
                    k.as_bytes(),
                    b(&format!("{ns}|{k}")),
                    PutOptions::default(),
                )
                .await
                .unwrap();
        }
        store
            .put_if(ns, b"cas", b(ns), PutMode::Create, PutOptions::default())
            .await
            .unwrap();
    }
    for ns in nss {
        let page = store.scan(ns, ScanRequest::all()).await.unwrap();
        let got: Vec<(Bytes, Bytes)> = page.entries.into_iter().map(|e| (e.key, e.value)).collect();
        let want: Vec<(Bytes, Bytes)> = ["a", "cas", "d", "i", "k"]
            .iter()
            .map(|k| {
                let value = if *k == "cas" {
                    b(ns)
                } else {
                    b(&format!("{ns}|{k}"))
                };
                (b(k), value)
            })
            .collect();
        assert_eq!(got, want, "namespace {ns}");
    }
    let mut listed = store.list_namespaces().await.unwrap();
    listed.sort();
    let mut want: Vec<String> = nss.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(listed, want);

    assert!(store.drop_namespace("a").await.unwrap());
    assert_eq!(store.get("a", b"k").await.unwrap(), None);
    for ns in &nss[1..] {
        assert_eq!(
            store.get(ns, b"k").await.unwrap(),
            Some(b(&format!("{ns}|k"))),
            "dropping \"a\" touched {ns}"
        );
    }
    store.destroy().await.unwrap();
}

#[tokio::test]
async fn binary_keys_round_trip_and_scan_in_byte_order() {
    let server = server();
    let prefix = unique_prefix("hb");
    let store = standalone(server.url(), &prefix, &ManualClock::at_fixed_start()).await;
    let keys: Vec<&[u8]> = vec![
        b"{",
        b"}",
        b"{x}",
        b"\0",
        b"\0\0",
        b"a\0b",
        b"\xff",
        b"\xff\xfe",
        b"\xfe\xff",
        b"*",
        b"a*",
        b"?",
        b"[",
        b"(",
        b"-",
        b"+",
        b"%s",
        b"\r\n",
        b" ",
        b"\\",
        b"\x80",
    ];
    for (i, k) in keys.iter().enumerate() {
        store
            .put(
                "ns",
                k,
                Bytes::from(vec![i as u8, 0, 255]),
                PutOptions::default(),
            )
            .await
            .unwrap();
    }
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            store.get("ns", k).await.unwrap(),
            Some(Bytes::from(vec![i as u8, 0, 255])),
            "key {k:?}"
        );
    }
    let mut sorted: Vec<Bytes> = keys.iter().map(|k| Bytes::copy_from_slice(k)).collect();
    sorted.sort();
    // Page by page, forward and reverse.
    for reverse in [false, true] {
        let mut got = Vec::new();
        let mut cursor = None;
        loop {
            let mut request = ScanRequest::all().with_limit(3).with_cursor(cursor);
            if reverse {
                request = request.reversed();
            }
            let page = store.scan("ns", request).await.unwrap();
            got.extend(page.entries.into_iter().map(|e| e.key));
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut want = sorted.clone();
        if reverse {
            want.reverse();
        }
        assert_eq!(got, want, "reverse: {reverse}");
    }
    // Ranges and prefixes whose bounds are such bytes.
    let page = store
        .scan("ns", ScanRequest::prefix(Bytes::from_static(b"\xff")))
        .await;
    let page = page.unwrap();
    let got: Vec<Bytes> = page.entries.into_iter().map(|e| e.key).collect();
    assert_eq!(
        got,
        [Bytes::from_static(b"\xff"), Bytes::from_static(b"\xff\xfe")]
    );
    let page = store
        .scan("ns", ScanRequest::range(b("\0"), b("(")))
        .await
        .unwrap();
    let got: Vec<Bytes> = page.entries.into_iter().map(|e| e.key).collect();
    let want: Vec<Bytes> = sorted
        .iter()
        .filter(|k| k.as_ref() >= b"\0".as_slice() && k.as_ref() < b"(".as_slice())
        .cloned()
        .collect();
    assert_eq!(got, want);
    for k in &keys {
        assert!(store.delete("ns", k).await.unwrap(), "key {k:?}");
    }
    assert!(store.list_namespaces().await.unwrap().is_empty());
    store.destroy().await.unwrap();
}

/// A store on its own server and prefix, with key `k1` created in
/// namespace `solo` at version `v1`.
struct Solo {
    server: storage_redis::testing::RedisServer,
    prefix: String,
    clock: ManualClock,
    store: RedisStore,
    v1: Version,
}

async fn solo(label: &str) -> Solo {
    let server = server();
    let prefix = unique_prefix(label);
    let clock = ManualClock::at_fixed_start();
    let store = standalone(server.url(), &prefix, &clock).await;
    let v1 = store
        .put_if(
            "solo",
            b"k1",
            b("one"),
            PutMode::Create,
            PutOptions::default(),
        )
        .await
        .unwrap();
    Solo {
        server,
        prefix,
        clock,
        store,
        v1,
    }
}

/// `DUMP` of each of `keys` (`None`: absent), to compare a namespace
/// byte for byte before and after a failed write.
async fn dump_all(
    raw: &mut redis::aio::MultiplexedConnection,
    keys: &[Vec<u8>],
) -> Vec<Option<Vec<u8>>> {
    let mut out = Vec::new();
    for k in keys {
        out.push(redis::cmd("DUMP").arg(k).query_async(raw).await.unwrap());
    }
    out
}

/// Replaces `key` with something this store never writes there: a
/// string that is not a number (`kind` "string") or a list ("list").
async fn make_foreign(raw: &mut redis::aio::MultiplexedConnection, key: &[u8], kind: &str) {
    let _: i64 = redis::cmd("DEL").arg(key).query_async(raw).await.unwrap();
    if kind == "string" {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg("someone else's")
            .query_async(raw)
            .await
            .unwrap();
    } else {
        let _: i64 = redis::cmd("LPUSH")
            .arg(key)
            .arg("someone else's")
            .query_async(raw)
            .await
            .unwrap();
    }
}

/// The calls of both tiers on one namespace; each must fail with
/// `InvalidInput` when the namespace's keys have a foreign type.
async fn every_call_is_invalid(store: &RedisStore, ns: &str) {
    let none = PutOptions::default();
    assert_invalid("get", store.get(ns, b"k1").await);
    assert_invalid("get_many", store.get_many(ns, &[b("k1"), b("k2")]).await);
    assert_invalid("put", store.put(ns, b"k1", b("x"), none).await);
    assert_invalid("delete", store.delete(ns, b"k1").await);
    assert_invalid(
        "write_batch",
        store
            .write_batch(
                ns,
                vec![
                    BatchOp::Put {
                        key: b("k9"),
                        value: b("x"),
                        options: none,
                    },
                    BatchOp::Delete { key: b("k1") },
                ],
            )
            .await,
    );
    assert_invalid("scan", store.scan(ns, ScanRequest::all()).await);
    assert_invalid(
        "scan reverse",
        store.scan(ns, ScanRequest::all().reversed()).await,
    );
    assert_invalid("drop_namespace", store.drop_namespace(ns).await);
    assert_invalid("get_versioned", store.get_versioned(ns, b"k1").await);
    assert_invalid(
        "put_if create",
        store
            .put_if(ns, b"new", b("x"), PutMode::Create, none)
            .await,
    );
    assert_invalid(
        "put_if overwrite",
        store
            .put_if(ns, b"k1", b("x"), PutMode::Overwrite, none)
            .await,
    );
    assert_invalid(
        "put_if update",
        store
            .put_if(ns, b"k1", b("x"), PutMode::Update(Version::new("1")), none)
            .await,
    );
    assert_invalid(
        "delete_if",
        store.delete_if(ns, b"k1", &Version::new("1")).await,
    );
    assert_invalid(
        "transact",
        store
            .transact(vec![
                TxOp::put(ns, b("t"), b("x")),
                TxOp::check(ns, b("k1"), Condition::Exists),
            ])
            .await,
    );
    assert_invalid(
        "transact unconditional",
        store
            .transact(vec![
                TxOp::put(ns, b("t"), b("x")),
                TxOp::delete(ns, b("k2")),
            ])
            .await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_key_types_fail_one_namespace_with_a_typed_error_and_spare_the_rest() {
    let server = server();
    let prefix = unique_prefix("hw");
    let store = standalone(server.url(), &prefix, &ManualClock::at_fixed_start()).await;
    let none = PutOptions::default();
    for ns in ["victim", "bystander"] {
        for k in ["k1", "k2", "k3"] {
            store
                .put(ns, k.as_bytes(), b(&format!("{ns}-{k}")), none)
                .await
                .unwrap();
        }
    }
    store
        .put(
            "victim",
            b"ttl",
            b("t"),
            PutOptions::ttl(std::time::Duration::from_secs(60)),
        )
        .await
        .unwrap();
    // Every key of the victim's hash tag, whatever the layout is.
    let tag = format!("{{{prefix}/victim}}*");
    let victim_keys = keys_matching(server.url(), &tag).unwrap();
    assert!(victim_keys.len() >= 2, "found {victim_keys:?}");
    let mut raw = raw(server.url()).await;

    // Round 1: each becomes a string; round 2: each becomes a list.
    for round in ["string", "list"] {
        for k in &victim_keys {
            make_foreign(&mut raw, k, round).await;
        }
        every_call_is_invalid(&store, "victim").await;

        // The other namespace still holds its data and takes writes.
        assert_eq!(
            store.get("bystander", b"k1").await.unwrap(),
            Some(b("bystander-k1"))
        );
        let page = store.scan("bystander", ScanRequest::all()).await.unwrap();
        assert_eq!(page.entries.len(), 3, "{round}");
        let v = store
            .put_if("bystander", round.as_bytes(), b("x"), PutMode::Create, none)
            .await
            .unwrap();
        store
            .transact(vec![
                TxOp::put("bystander", b("tx"), b(round)),
                TxOp::check("bystander", Bytes::from(round), Condition::Version(v)),
            ])
            .await
            .unwrap();
        assert_eq!(store.get("bystander", b"tx").await.unwrap(), Some(b(round)));
        store.delete("bystander", b"tx").await.unwrap();
        store.delete("bystander", round.as_bytes()).await.unwrap();

        // Listing walks every registered namespace, the broken one too:
        // it either skips it or reports it as invalid input; it never
        // panics or returns another namespace's data as the victim's.
        // Listing walks every registered namespace: the broken one is
        // skipped (its own calls report it), the rest are listed.
        assert_eq!(
            store.list_namespaces().await.unwrap(),
            vec!["bystander".to_owned()],
            "{round}"
        );

        // The foreign keys were left as they were.
        for k in &victim_keys {
            let kind: String = redis::cmd("TYPE")
                .arg(k)
                .query_async(&mut raw)
                .await
                .unwrap();
            assert_eq!(kind, round, "{}", String::from_utf8_lossy(k));
        }
    }
    store.destroy().await.unwrap();
    assert!(keys_of(server.url(), &prefix).is_empty());
}

/// Redis never rolls a script back, so every namespace a write touches is
/// checked before the first write: one foreign key in the *last*
/// namespace of a transaction must leave the first one untouched.
#[tokio::test]
async fn a_foreign_key_in_one_namespace_fails_a_transaction_before_it_writes_anything() {
    let server = server();
    let prefix = unique_prefix("hx");
    let store = standalone(server.url(), &prefix, &ManualClock::at_fixed_start()).await;
    let none = PutOptions::default();
    let v = store
        .put_if("first", b"k", b("before"), PutMode::Create, none)
        .await
        .unwrap();
    store.put("second", b"k", b("before"), none).await.unwrap();
    let mut raw = raw(server.url()).await;
    // The counter is read only to reserve a block of versions; its own
    // test is `a_foreign_counter_fails_a_reservation_before_anything_is_written`.
    let second_keys: Vec<Vec<u8>> = keys_matching(server.url(), &format!("{{{prefix}/second}}*"))
        .unwrap()
        .into_iter()
        .filter(|k| !k.ends_with(b":c"))
        .collect();
    assert_eq!(second_keys.len(), 2, "index, records");

    // Each key of the second namespace in turn is replaced by something
    // this store never writes there: a string where a set or hash belongs.
    for (victim, foreign) in second_keys.iter().flat_map(|k| {
        [
            (k.clone(), "not a number"),
            (k.clone(), "99999999999999999999"),
        ]
    }) {
        let saved: Vec<u8> = redis::cmd("DUMP")
            .arg(&victim)
            .query_async(&mut raw)
            .await
            .unwrap();
        let _: () = redis::cmd("SET")
            .arg(&victim)
            .arg(foreign)
            .query_async(&mut raw)
            .await
            .unwrap();
        let name = String::from_utf8_lossy(&victim).into_owned();
        let tx = vec![
            TxOp::put("first", b("k"), b("after")),
            TxOp::put("first", b("new"), b("after")),
            TxOp::put("second", b("k"), b("after")),
        ];
        let result = store.transact(tx).await;
        assert_invalid(&format!("transact with {name} = {foreign:?}"), result);
        let e = store
            .put("second", b"other", b("x"), none)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::InvalidInput { .. }), "{name}: {e:?}");
        // The first namespace is exactly as before: same value, same
        // version, no new key.
        let now = store.get_versioned("first", b"k").await.unwrap().unwrap();
        assert_eq!((now.value, &now.version), (b("before"), &v), "{name}");
        assert_eq!(store.get("first", b"new").await.unwrap(), None, "{name}");
        // Put the second namespace's key back as it was.
        let _: () = redis::cmd("RESTORE")
            .arg(&victim)
            .arg(0)
            .arg(saved)
            .arg("REPLACE")
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    // Once repaired, the same transaction goes through.
    store
        .transact(vec![
            TxOp::put("first", b("k"), b("after")),
            TxOp::put("second", b("k"), b("after")),
        ])
        .await
        .unwrap();
    store.destroy().await.unwrap();
    assert!(keys_of(server.url(), &prefix).is_empty());
}

/// The put and delete scripts check the record hash and the expiry zset
/// through the reads they make anyway, and only the index explicitly:
/// every check must still come before the first write. (The counter is
/// read only to reserve versions, see the next test.) One foreign key
/// at a time, with an expired entry waiting to be purged (so
/// a script that got as far as its purge would change something), every
/// single-key write fails with `InvalidInput` and every key of the
/// namespace is byte-for-byte as before.
#[tokio::test]
async fn one_foreign_key_fails_single_key_writes_before_they_write_anything() {
    let Solo {
        server,
        prefix,
        clock,
        store,
        v1,
    } = solo("h1").await;
    let none = PutOptions::default();
    let short = PutOptions::ttl(std::time::Duration::from_secs(1));
    store.put("solo", b"gone", b("soon"), short).await.unwrap();
    store
        .put(
            "solo",
            b"kept",
            b("ttl"),
            PutOptions::ttl(std::time::Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    clock.advance(std::time::Duration::from_secs(2));
    let mut raw = raw(server.url()).await;
    let mut keys = keys_matching(server.url(), &format!("{{{prefix}/solo}}*")).unwrap();
    keys.sort();
    assert_eq!(keys.len(), 4, "index, records, expiries, counter");
    keys.retain(|k| !k.ends_with(b":c"));

    let before = dump_all(&mut raw, &keys).await;

    for victim in &keys {
        for foreign in ["string", "list"] {
            make_foreign(&mut raw, victim, foreign).await;
            let with_foreign = dump_all(&mut raw, &keys).await;
            let name = format!("{} = {foreign}", String::from_utf8_lossy(victim));
            let what = |op: &str| format!("{op} with {name}");
            assert_invalid(&what("put"), store.put("solo", b"k1", b("x"), none).await);
            assert_invalid(
                &what("put new"),
                store.put("solo", b"k9", b("x"), none).await,
            );
            assert_invalid(
                &what("put with ttl"),
                store.put("solo", b"k9", b("x"), short).await,
            );
            assert_invalid(
                &what("put_if create"),
                store
                    .put_if("solo", b"k9", b("x"), PutMode::Create, none)
                    .await,
            );
            assert_invalid(
                &what("put_if update"),
                store
                    .put_if("solo", b"k1", b("x"), PutMode::Update(v1.clone()), none)
                    .await,
            );
            assert_invalid(
                &what("put_if overwrite"),
                store
                    .put_if("solo", b"k1", b("x"), PutMode::Overwrite, none)
                    .await,
            );
            assert_invalid(&what("delete"), store.delete("solo", b"k1").await);
            assert_invalid(&what("delete expired"), store.delete("solo", b"gone").await);
            assert_invalid(
                &what("delete_if"),
                store.delete_if("solo", b"k1", &v1).await,
            );
            assert_eq!(
                dump_all(&mut raw, &keys).await,
                with_foreign,
                "{name}: a failed write changed a key"
            );
            let restore = keys.iter().position(|k| k == victim).unwrap();
            let _: () = redis::cmd("RESTORE")
                .arg(victim)
                .arg(0)
                .arg(before[restore].clone().unwrap())
                .arg("REPLACE")
                .query_async(&mut raw)
                .await
                .unwrap();
        }
    }
    assert_eq!(dump_all(&mut raw, &keys).await, before);
    // Repaired, the same writes go through, and the purge runs.
    store.put("solo", b"k1", b("x"), none).await.unwrap();
    assert_eq!(store.get("solo", b"gone").await.unwrap(), None);
    store
        .delete_if(
            "solo",
            b"k1",
            &store
                .get_versioned("solo", b"k1")
                .await
                .unwrap()
                .unwrap()
                .version,
        )
        .await
        .unwrap();
    store.destroy().await.unwrap();
    assert!(keys_of(server.url(), &prefix).is_empty());
}

/// A namespace's counter is read only when a store reserves a block of
/// versions (`INCRBY`): a counter someone overwrote fails every write
/// that needs a reservation with `InvalidInput`, before anything is
/// written. A store still holding a block writes on without reading it.
/// Once repaired, versions issued afterwards never repeat one issued
/// before.
#[tokio::test]
async fn a_foreign_counter_fails_a_reservation_before_anything_is_written() {
    let Solo {
        server,
        prefix,
        clock,
        store: holder,
        v1,
    } = solo("hc").await;
    let none = PutOptions::default();
    let mut raw = raw(server.url()).await;
    let counter = format!("{{{prefix}/solo}}:c").into_bytes();
    let saved: Vec<u8> = redis::cmd("DUMP")
        .arg(&counter)
        .query_async(&mut raw)
        .await
        .unwrap();
    let mut data = keys_matching(server.url(), &format!("{{{prefix}/solo}}*")).unwrap();
    data.retain(|k| *k != counter);
    data.sort();
    let before = dump_all(&mut raw, &data).await;
    let mut issued = vec![v1.clone()];
    for foreign in ["string", "list"] {
        make_foreign(&mut raw, &counter, foreign).await;
        // A new store holds no block: every write that needs a version fails.
        let fresh = standalone(server.url(), &prefix, &clock).await;
        let what = |op: &str| format!("{op} with the counter a {foreign}");
        assert_invalid(&what("put"), fresh.put("solo", b"k1", b("x"), none).await);
        assert_invalid(
            &what("put_if"),
            fresh
                .put_if("solo", b"k1", b("x"), PutMode::Update(v1.clone()), none)
                .await,
        );
        assert_invalid(
            &what("write_batch"),
            fresh
                .write_batch(
                    "solo",
                    vec![BatchOp::Put {
                        key: b("k2"),
                        value: b("x"),
                        options: none,
                    }],
                )
                .await,
        );
        assert_invalid(
            &what("transact"),
            fresh
                .transact(vec![TxOp::put("solo", b("k1"), b("x"))])
                .await,
        );
        assert_eq!(
            dump_all(&mut raw, &data).await,
            before,
            "{foreign}: a failed write changed a key"
        );
        // Deletes need no version.
        assert!(!fresh.delete("solo", b"absent").await.unwrap());
        // The store that holds a block writes on without reading the counter.
        let v = holder
            .put_if("solo", b"k3", b("held"), PutMode::Overwrite, none)
            .await
            .unwrap();
        issued.push(v);
        holder.delete("solo", b"k3").await.unwrap();
        assert_eq!(dump_all(&mut raw, &data).await, before);
    }
    let _: () = redis::cmd("RESTORE")
        .arg(&counter)
        .arg(0)
        .arg(saved)
        .arg("REPLACE")
        .query_async(&mut raw)
        .await
        .unwrap();
    let fresh = standalone(server.url(), &prefix, &clock).await;
    for store in [&fresh, &holder] {
        for _ in 0..3 {
            issued.push(
                store
                    .put_if("solo", b"k1", b("x"), PutMode::Overwrite, none)
                    .await
                    .unwrap(),
            );
        }
    }
    let distinct: std::collections::HashSet<_> = issued.iter().collect();
    assert_eq!(
        distinct.len(),
        issued.len(),
        "a version was issued twice: {issued:?}"
    );
    holder.destroy().await.unwrap();
    assert!(keys_of(server.url(), &prefix).is_empty());
}
