//! KV tier cases. Together they prove that a backend's [`KvStore`]:
//!
//! - agrees with the reference model on every result of random sequences
//!   of get / put / delete / get_many / write_batch / scan (prefixes,
//!   inclusive and exclusive bounds, reverse, small limits, every cursor
//!   followed; a cursor comes exactly with a full page that has more
//!   behind it) / delimiter listing / list and drop namespace, with
//!   occasional expiries and clock moves;
//! - never returns a key twice, out of order, or skips a key that was
//!   there and unchanged for the whole scan, while other tasks write;
//! - rejects every broken input limit with `InvalidInput`, writes nothing
//!   (not even the good part of a batch) and never panics;
//! - feeds the provided S3-style `list_with_delimiter` correctly: each
//!   entry and common prefix exactly once across many small pages;
//! - works through `Box<dyn KvStore>` and a forwarding wrapper;
//! - reports the capabilities its harness declares, and answers
//!   `Unsupported` when it declares no KV tier.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use storage_core::{BatchOp, Direction, Error, KvStore, KvStoreExt, PutOptions, ScanRequest};

use crate::case::{req, Case, CaseResult, Tier};
use crate::harness::Harness;
use crate::model::kv::delimited;
use crate::runner::with_fixture;
use crate::suites::common::{
    b, bad_keys, bad_namespaces, buffer, contents, expect_invalid, expect_unsupported, state,
    Forward,
};
use crate::suites::kv_property::{self, Flavor};
use crate::{ensure, ensure_eq};

/// The KV cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "random_operation_sequences_match_the_reference_model",
            tier: Tier::Kv,
            requires: req::kv,
            run: |h| Box::pin(kv_property::run(h, Flavor::Kv)),
        },
        Case {
            name: "scans_during_concurrent_writes_never_repeat_or_skip_stable_keys",
            tier: Tier::Kv,
            requires: req::kv,
            run: |h| Box::pin(scans_during_writes(h)),
        },
        Case {
            name: "scan_orders_keys_by_unsigned_bytes_in_both_directions",
            tier: Tier::Kv,
            requires: req::kv,
            run: |h| Box::pin(byte_order(h)),
        },
        Case {
            name: "bad_input_is_invalid_input_and_writes_nothing",
            tier: Tier::Kv,
            requires: req::kv,
            run: |h| Box::pin(bad_input(h)),
        },
        Case {
            name: "list_with_delimiter_yields_each_entry_and_common_prefix_exactly_once",
            tier: Tier::Kv,
            requires: req::kv,
            run: |h| Box::pin(delimiter_listing(h)),
        },
        Case {
            name: "namespaces_are_isolated_listed_sorted_and_dropped_whole",
            tier: Tier::Kv,
            requires: req::kv,
            run: |h| Box::pin(namespaces(h)),
        },
        Case {
            name: "kv_operations_work_through_box_dyn_kv_store",
            tier: Tier::Kv,
            requires: req::kv,
            run: |h| Box::pin(through_box(h)),
        },
        Case {
            name: "stores_report_the_capabilities_their_harness_declares",
            tier: Tier::Kv,
            requires: req::always,
            run: |h| Box::pin(declared_capabilities(h)),
        },
        Case {
            name: "undeclared_kv_returns_unsupported",
            tier: Tier::Kv,
            requires: req::lacks_kv,
            run: |h| Box::pin(undeclared_kv(h)),
        },
    ]
}

fn put() -> PutOptions {
    PutOptions::default()
}

async fn scans_during_writes(h: Arc<dyn Harness>) -> CaseResult {
    const KEYS: usize = 150;
    const ROUNDS: usize = 12;
    const MAX_ROUNDS: usize = 5_000;
    const MIN_WRITES: u64 = 50;
    const LIMIT: usize = 7;
    with_fixture(&h, |f| async move {
        let kv = f.kv()?;
        let ns = "scan-churn";
        let key = |i: usize| b(format!("k{i:04}"));
        // i % 3 == 0: stable (written before, untouched during);
        // i % 3 == 1: rewritten during; i % 3 == 2: inserted and deleted.
        let mut stable = Vec::new();
        for i in 0..KEYS {
            if i % 3 != 2 || i % 2 == 0 {
                let v = b(format!("v{i}"));
                kv.put(ns, &key(i), v.clone(), put()).await?;
                if i % 3 == 0 {
                    stable.push((key(i), v));
                }
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writes = Arc::new(AtomicU64::new(0));
        let mut writers = Vec::new();
        for w in 0..2usize {
            let (kv, stop, writes) = (kv.clone(), stop.clone(), writes.clone());
            writers.push(tokio::spawn(async move {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let i = (n * 7 + w) % KEYS;
                    if w == 0 && i % 3 == 2 {
                        if n % 2 == 0 {
                            kv.delete(ns, &key(i)).await?;
                        } else {
                            kv.put(ns, &key(i), b(format!("c{n}")), put()).await?;
                        }
                    } else if w == 1 && i % 3 == 1 {
                        kv.put(ns, &key(i), b(format!("r{n}")), put()).await?;
                    } else {
                        continue;
                    }
                    writes.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
                Ok::<(), Error>(())
            }));
        }
        // Let the writers get going before the first scan.
        for _ in 0..1_000_000 {
            if writes.load(Ordering::Relaxed) > 0 {
                break;
            }
            tokio::task::yield_now().await;
        }
        let mut result = Ok(());
        let mut during = 0;
        // At least ROUNDS scans, and on until the writers have written
        // MIN_WRITES times while a scan ran (a fast backend can finish
        // a few scans before another thread is scheduled).
        for round in 0..MAX_ROUNDS {
            if round >= ROUNDS && during >= MIN_WRITES {
                break;
            }
            let before = writes.load(Ordering::Relaxed);
            let reverse = round % 2 == 1;
            let mut req = ScanRequest::prefix("k").with_limit(LIMIT);
            if reverse {
                req = req.reversed();
            }
            result = scan_once(&*kv, ns, req, &stable).await;
            during += writes.load(Ordering::Relaxed) - before;
            if result.is_err() {
                break;
            }
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.await
                .map_err(|e| crate::Failure(format!("writer task failed: {e}")))??;
        }
        result?;
        ensure!(
            during >= MIN_WRITES,
            "the writers wrote only {during} times during {MAX_ROUNDS} scans"
        );
        Ok(())
    })
    .await
}

async fn scan_once(
    kv: &dyn KvStore,
    ns: &str,
    mut req: ScanRequest,
    stable: &[(Bytes, Bytes)],
) -> CaseResult {
    let reverse = req.direction == Direction::Reverse;
    let mut seen: Vec<(Bytes, Bytes)> = Vec::new();
    for _ in 0..10_000 {
        // Give the writers a chance between pages.
        tokio::task::yield_now().await;
        let page = kv.scan(ns, req.clone()).await?;
        ensure!(
            page.entries.len() <= req.limit,
            "page of {} entries exceeds the limit {}",
            page.entries.len(),
            req.limit
        );
        for e in &page.entries {
            if let Some((last, _)) = seen.last() {
                let ordered = if reverse {
                    e.key < *last
                } else {
                    e.key > *last
                };
                ensure!(
                    ordered,
                    "scan ({}) returned {:?} after {:?}: a repeat or out of order",
                    if reverse { "reverse" } else { "forward" },
                    e.key,
                    last
                );
            }
            seen.push((e.key.clone(), e.value.clone()));
        }
        match page.cursor {
            Some(c) => {
                ensure!(
                    page.entries.len() == req.limit,
                    "a cursor came with a page that is not full ({} of {})",
                    page.entries.len(),
                    req.limit
                );
                req.cursor = Some(c);
            }
            None => {
                let got: BTreeSet<&(Bytes, Bytes)> = seen.iter().collect();
                for s in stable {
                    ensure!(
                        got.contains(s),
                        "scan skipped the stable entry {s:?} (present and unchanged throughout)"
                    );
                }
                return Ok(());
            }
        }
    }
    Err(crate::Failure("scan did not end after 10000 pages".into()))
}

async fn byte_order(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let kv = f.kv()?;
        let keys: Vec<Bytes> = [
            &b"\x00"[..],
            b"\x00\x00",
            b"\x01",
            b"A",
            b"a",
            b"a\x00",
            b"a\x7f",
            b"a\x80",
            b"a\xff",
            b"ab",
            b"\x7f",
            b"\x80",
            b"\xc3\xa9",
            b"\xff",
            b"\xff\x00",
            b"\xff\xff",
        ]
        .iter()
        .map(b)
        .collect();
        for (i, k) in keys.iter().enumerate().rev() {
            kv.put("order", k, b(format!("{i}")), put()).await?;
        }
        let mut sorted = keys.clone();
        sorted.sort();
        for limit in [1, 3, 1000] {
            let fwd: Vec<Bytes> = kv
                .scan_all("order", ScanRequest::all().with_limit(limit))
                .await?
                .into_iter()
                .map(|e| e.key)
                .collect();
            ensure_eq!(fwd, sorted, "forward scan with limit {limit}");
            let rev: Vec<Bytes> = kv
                .scan_all("order", ScanRequest::all().with_limit(limit).reversed())
                .await?
                .into_iter()
                .map(|e| e.key)
                .collect();
            let mut want = sorted.clone();
            want.reverse();
            ensure_eq!(rev, want, "reverse scan with limit {limit}");
        }
        // A prefix of 0xff bytes has no successor: the scan is unbounded above.
        let ff: Vec<Bytes> = kv
            .scan_all("order", ScanRequest::prefix(b(b"\xff")).with_limit(2))
            .await?
            .into_iter()
            .map(|e| e.key)
            .collect();
        ensure_eq!(ff, vec![b(b"\xff"), b(b"\xff\x00"), b(b"\xff\xff")]);
        let a: Vec<Bytes> = kv
            .scan_all(
                "order",
                ScanRequest::prefix(b("a")).with_limit(2).reversed(),
            )
            .await?
            .into_iter()
            .map(|e| e.key)
            .collect();
        ensure_eq!(
            a,
            vec![
                b(b"a\xff"),
                b(b"a\x80"),
                b("a\x7f"),
                b("ab"),
                b("a\x00"),
                b("a")
            ]
        );
        Ok(())
    })
    .await
}

async fn bad_input(h: Arc<dyn Harness>) -> CaseResult {
    let caps = h.capabilities();
    with_fixture(&h, |f| async move {
        let kv = f.kv()?;
        kv.put("good", b"k1", b("v1"), put()).await?;
        kv.put("good", b"k2", b("v2"), put()).await?;
        let before = state(&*kv).await?;
        let good_put = |k: &str| BatchOp::Put {
            key: b(k),
            value: b("new"),
            options: put(),
        };

        for ns in bad_namespaces(&caps) {
            let w = format!("namespace {:?}", ns.chars().take(40).collect::<String>());
            expect_invalid(
                &format!("put in {w}"),
                kv.put(&ns, b"k", b("v"), put()).await,
            )?;
            expect_invalid(&format!("get in {w}"), kv.get(&ns, b"k").await)?;
            expect_invalid(&format!("delete in {w}"), kv.delete(&ns, b"k").await)?;
            expect_invalid(
                &format!("get_many in {w}"),
                kv.get_many(&ns, &[b("k")]).await,
            )?;
            expect_invalid(
                &format!("write_batch in {w}"),
                kv.write_batch(&ns, vec![good_put("k")]).await,
            )?;
            expect_invalid(
                &format!("scan of {w}"),
                kv.scan(&ns, ScanRequest::all()).await,
            )?;
            expect_invalid(
                &format!("drop_namespace of {w}"),
                kv.drop_namespace(&ns).await,
            )?;
        }

        for key in bad_keys(&caps) {
            let w = format!("key of {} bytes", key.len());
            expect_invalid(
                &format!("put of {w}"),
                kv.put("good", &key, b("v"), put()).await,
            )?;
            expect_invalid(&format!("get of {w}"), kv.get("good", &key).await)?;
            expect_invalid(&format!("delete of {w}"), kv.delete("good", &key).await)?;
            expect_invalid(
                &format!("get_many with a {w}"),
                kv.get_many("good", &[b("k1"), key.clone()]).await,
            )?;
            let batch = vec![
                good_put("k3"),
                BatchOp::Delete { key: b("k1") },
                BatchOp::Put {
                    key: key.clone(),
                    value: b("v"),
                    options: put(),
                },
            ];
            expect_invalid(
                &format!("write_batch with one {w}"),
                kv.write_batch("good", batch).await,
            )?;
            expect_invalid(
                &format!("write_batch deleting a {w}"),
                kv.write_batch(
                    "good",
                    vec![good_put("k4"), BatchOp::Delete { key: key.clone() }],
                )
                .await,
            )?;
        }

        if let Some(big) = buffer(caps.max_value_size.checked_add(1)) {
            expect_invalid(
                "put of a value over max_value_size",
                kv.put("good", b"k1", big.clone(), put()).await,
            )?;
            expect_invalid(
                "write_batch with one value over max_value_size",
                kv.write_batch(
                    "good",
                    vec![
                        good_put("k5"),
                        BatchOp::Put {
                            key: b("k6"),
                            value: big.clone(),
                            options: put(),
                        },
                    ],
                )
                .await,
            )?;
            expect_invalid(
                "put of a value over max_value_size in a new namespace",
                kv.put("fresh", b"k", big, put()).await,
            )?;
        }
        // The largest legal key and value are accepted (checked on a
        // separate namespace, removed again below).
        if let Some(max_key) = buffer(Some(caps.max_key_size)) {
            kv.put("limits", &max_key, b("v"), put()).await?;
            ensure_eq!(kv.get("limits", &max_key).await?, Some(b("v")));
            ensure!(
                kv.drop_namespace("limits").await?,
                "drop_namespace of a namespace with an entry returned false"
            );
        }

        expect_invalid(
            "scan with limit 0",
            kv.scan("good", ScanRequest::all().with_limit(0)).await,
        )?;
        if let Some(over) = caps.max_scan_limit.checked_add(1) {
            expect_invalid(
                "scan with limit above max_scan_limit",
                kv.scan("good", ScanRequest::all().with_limit(over)).await,
            )?;
        }
        expect_invalid(
            "scan of an inverted range",
            kv.scan("good", ScanRequest::range(b("k2"), b("k1"))).await,
        )?;
        expect_invalid(
            "reverse scan of an inverted range",
            kv.scan("good", ScanRequest::range(b("z"), b("a")).reversed())
                .await,
        )?;
        expect_invalid(
            "list_with_delimiter with an empty delimiter",
            kv.list_with_delimiter("good", b"", b"", None, 10).await,
        )?;
        expect_invalid(
            "list_with_delimiter with limit 0",
            kv.list_with_delimiter("good", b"", b"/", None, 0).await,
        )?;

        let after = state(&*kv).await?;
        ensure_eq!(after, before, "rejected input changed the store");
        Ok(())
    })
    .await
}

async fn delimiter_listing(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let kv = f.kv()?;
        let ns = "bucket";
        let mut keys: Vec<Bytes> = [
            "a/1", "a/2", "a/b/c", "a/b/d", "a//x", "b", "c/x/y", "c/z", "d", "d/", "dd/e",
            "e--f--g", "e--h", "e-i", "z",
        ]
        .iter()
        .map(b)
        .collect();
        keys.extend((0..40).map(|i| b(format!("big/{i:03}/obj"))));
        keys.extend((0..12).map(|i| b(format!("big/file{i:02}"))));
        for k in &keys {
            kv.put(ns, k, k.clone(), put()).await?;
        }
        keys.sort();
        let prefixes = ["", "a/", "a/b/", "c/", "d", "e", "big/", "big/007/", "nothing"];
        for delimiter in ["/", "--"] {
            for prefix in prefixes {
                let want = delimited(keys.iter().cloned(), prefix.as_bytes(), delimiter.as_bytes());
                for limit in [1usize, 2, 3, 5, 1000] {
                    let what = format!(
                        "list_with_delimiter(prefix {prefix:?}, delimiter {delimiter:?}, limit {limit})"
                    );
                    let mut got = Vec::new();
                    let mut cursor = None;
                    let mut pages = 0;
                    loop {
                        pages += 1;
                        ensure!(pages <= want.len() + 2, "{what}: more pages than items");
                        let page = kv
                            .list_with_delimiter(
                                ns,
                                prefix.as_bytes(),
                                delimiter.as_bytes(),
                                cursor.clone(),
                                limit,
                            )
                            .await?;
                        let n = page.entries.len() + page.common_prefixes.len();
                        ensure!(n <= limit, "{what}: page of {n} items");
                        let mut items: Vec<(Bytes, bool)> = page
                            .entries
                            .iter()
                            .map(|e| (e.key.clone(), false))
                            .chain(page.common_prefixes.iter().map(|p| (p.clone(), true)))
                            .collect();
                        items.sort();
                        for e in &page.entries {
                            ensure_eq!(e.value, e.key, "{what}: value of listed entry");
                        }
                        got.extend(items);
                        match page.cursor {
                            Some(c) => {
                                ensure!(n == limit, "{what}: cursor on a page of {n} items");
                                cursor = Some(c);
                            }
                            None => break,
                        }
                    }
                    let want: Vec<(Bytes, bool)> =
                        want.iter().map(|i| (i.key.clone(), i.is_prefix)).collect();
                    ensure_eq!(
                        got,
                        want,
                        "{what}: the pages together must hold each item exactly once, in order"
                    );
                }
            }
        }
        Ok(())
    })
    .await
}

async fn namespaces(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let kv = f.kv()?;
        ensure_eq!(
            kv.list_namespaces().await?,
            Vec::<String>::new(),
            "fresh store"
        );
        for ns in ["zeta", "alpha", "m:1/x.y_z-w"] {
            kv.put(ns, b"same-key", b(ns), put()).await?;
            kv.put(ns, b"other", b("o"), put()).await?;
        }
        ensure_eq!(
            kv.list_namespaces().await?,
            vec!["alpha".to_owned(), "m:1/x.y_z-w".into(), "zeta".into()]
        );
        ensure_eq!(kv.get("zeta", b"same-key").await?, Some(b("zeta")));
        ensure_eq!(kv.get("alpha", b"same-key").await?, Some(b("alpha")));
        ensure!(
            kv.drop_namespace("alpha").await?,
            "drop of a full namespace"
        );
        ensure!(
            !kv.drop_namespace("alpha").await?,
            "second drop of a namespace reported entries"
        );
        ensure!(
            !kv.drop_namespace("never").await?,
            "drop of an unknown namespace reported entries"
        );
        ensure_eq!(kv.get("alpha", b"same-key").await?, None);
        ensure_eq!(
            kv.list_namespaces().await?,
            vec!["m:1/x.y_z-w".to_owned(), "zeta".into()]
        );
        ensure_eq!(
            contents(&*kv, "zeta").await?.len(),
            2,
            "other namespaces untouched"
        );
        // A namespace whose last entry is deleted disappears.
        ensure!(
            kv.delete("zeta", b"same-key").await?,
            "delete of a live key"
        );
        ensure!(!kv.delete("zeta", b"same-key").await?, "second delete");
        kv.write_batch("zeta", vec![BatchOp::Delete { key: b("other") }])
            .await?;
        ensure_eq!(kv.list_namespaces().await?, vec!["m:1/x.y_z-w".to_owned()]);
        Ok(())
    })
    .await
}

async fn through_box(h: Arc<dyn Harness>) -> CaseResult {
    let caps = h.capabilities();
    with_fixture(&h, |f| async move {
        let boxed: Box<dyn KvStore> = Box::new(Forward(f.kv()?));
        ensure_eq!(boxed.capabilities(), caps);
        boxed.put("boxed", b"a", b("1"), put()).await?;
        boxed
            .write_batch(
                "boxed",
                vec![
                    BatchOp::Put {
                        key: b("b"),
                        value: b("2"),
                        options: put(),
                    },
                    BatchOp::Put {
                        key: b("c/d"),
                        value: b("3"),
                        options: put(),
                    },
                    BatchOp::Delete { key: b("a") },
                ],
            )
            .await?;
        ensure_eq!(boxed.get("boxed", b"b").await?, Some(b("2")));
        ensure_eq!(
            boxed.get_many("boxed", &[b("a"), b("b"), b("c/d")]).await?,
            vec![None, Some(b("2")), Some(b("3"))]
        );
        let page = boxed
            .scan("boxed", ScanRequest::all().with_limit(1).reversed())
            .await?;
        ensure_eq!(page.entries.len(), 1);
        ensure_eq!(page.entries[0].key, b("c/d"));
        ensure!(
            page.cursor.is_some(),
            "full page with more behind has a cursor"
        );
        let listing = boxed
            .list_with_delimiter("boxed", b"", b"/", None, 10)
            .await?;
        ensure_eq!(listing.common_prefixes, vec![b("c/")]);
        ensure_eq!(boxed.list_namespaces().await?, vec!["boxed".to_owned()]);
        ensure!(boxed.delete("boxed", b"b").await?, "delete through Box");
        ensure!(boxed.drop_namespace("boxed").await?, "drop through Box");
        ensure_eq!(boxed.list_namespaces().await?, Vec::<String>::new());
        Ok(())
    })
    .await
}

async fn declared_capabilities(h: Arc<dyn Harness>) -> CaseResult {
    let caps = h.capabilities();
    with_fixture(&h, |f| async move {
        let declared = caps;
        if let Some(kv) = &f.kv {
            ensure_eq!(
                kv.capabilities(),
                declared,
                "KvStore::capabilities differs from the harness's declaration"
            );
        }
        if let Some(a) = &f.atomic {
            ensure_eq!(
                a.capabilities(),
                declared,
                "AtomicKv's capabilities differ from the harness's declaration"
            );
        }
        if declared.kv {
            ensure!(
                f.kv.is_some(),
                "KV declared but the fixture has no KV handle"
            );
        }
        if declared.atomic {
            ensure!(
                f.atomic.is_some(),
                "CAS declared but the fixture has no CAS handle"
            );
        }
        Ok(())
    })
    .await
}

async fn undeclared_kv(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let Some(kv) = f.kv.clone() else {
            return Ok(());
        };
        expect_unsupported("get", kv.get("ns", b"k").await)?;
        expect_unsupported("put", kv.put("ns", b"k", b("v"), put()).await)?;
        expect_unsupported("delete", kv.delete("ns", b"k").await)?;
        expect_unsupported("get_many", kv.get_many("ns", &[b("k")]).await)?;
        expect_unsupported(
            "write_batch",
            kv.write_batch("ns", vec![BatchOp::Delete { key: b("k") }])
                .await,
        )?;
        expect_unsupported("scan", kv.scan("ns", ScanRequest::all()).await)?;
        expect_unsupported("list_namespaces", kv.list_namespaces().await)?;
        expect_unsupported("drop_namespace", kv.drop_namespace("ns").await)?;
        Ok(())
    })
    .await
}
