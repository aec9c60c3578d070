//! CAS tier cases. Together they prove that a backend's [`AtomicKv`]:
//!
//! - agrees with the reference model on random sequences mixing plain KV
//!   operations with versioned reads, conditional puts (Overwrite, Create,
//!   Update with the current token, a stale one, another key's, a bogus
//!   one) and conditional deletes, including the `current` version every
//!   `Conflict` reports, and never reuses a key's token (no ABA);
//! - loses no update under contention: 8 tasks × 100 read → `put_if` →
//!   retry-on-conflict increments end at exactly 800 (and the same through
//!   `AtomicKvExt::update_with_retry`) — the contract's race test;
//! - issues a new token on every write (with `atomic_content_hash_versions`
//!   only identical bytes may keep one), returns it from the write itself,
//!   and reports it in scan entries;
//! - accepts a token back from its string form as a condition;
//! - refuses failed conditions with `Conflict` and the current version,
//!   changing nothing; rejects bad input with `InvalidInput`, writing
//!   nothing;
//! - works through `Box<dyn AtomicKv>`, and answers `Unsupported` when it
//!   declares no CAS tier.

use std::sync::Arc;

use bytes::Bytes;
use storage_core::{
    AtomicKv, AtomicKvExt, Error, KvStoreExt, PutMode, PutOptions, ScanRequest, TransactionScope,
    TxOp, Version,
};

use crate::case::{req, Case, CaseResult, Failure, Tier};
use crate::harness::Harness;
use crate::runner::with_fixture;
use crate::suites::common::{
    b, bad_keys, bad_namespaces, buffer, expect_conflict, expect_invalid, expect_unsupported,
    state, Forward,
};
use crate::suites::kv_property::{self, Flavor};
use crate::{ensure, ensure_eq};

/// Concurrent tasks of the race tests.
pub const RACE_TASKS: usize = 8;
/// Increments per task of the race tests.
pub const RACE_INCREMENTS: usize = 100;

/// The CAS cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "random_conditional_operation_sequences_match_the_reference_model",
            tier: Tier::Atomic,
            requires: req::atomic,
            run: |h| Box::pin(kv_property::run(h, Flavor::Cas)),
        },
        Case {
            name: "concurrent_conditional_increments_end_at_exactly_the_number_of_successes",
            tier: Tier::Atomic,
            requires: req::atomic,
            run: |h| Box::pin(race_put_if(h)),
        },
        Case {
            name: "concurrent_update_with_retry_increments_end_at_exactly_the_number_of_calls",
            tier: Tier::Atomic,
            requires: req::atomic,
            run: |h| Box::pin(race_update_with_retry(h)),
        },
        Case {
            name: "every_write_issues_a_new_version_returned_by_the_write_itself",
            tier: Tier::Atomic,
            requires: req::atomic,
            run: |h| Box::pin(versions_change(h)),
        },
        Case {
            name: "version_parsed_from_its_string_form_works_as_a_condition",
            tier: Tier::Atomic,
            requires: req::atomic,
            run: |h| Box::pin(version_round_trip(h)),
        },
        Case {
            name: "failed_conditions_report_the_current_version_and_change_nothing",
            tier: Tier::Atomic,
            requires: req::atomic,
            run: |h| Box::pin(failed_conditions(h)),
        },
        Case {
            name: "conditional_operations_reject_bad_input_and_write_nothing",
            tier: Tier::Atomic,
            requires: req::atomic,
            run: |h| Box::pin(bad_input(h)),
        },
        Case {
            name: "scan_entries_carry_their_current_version",
            tier: Tier::Atomic,
            requires: req::atomic,
            run: |h| Box::pin(scan_versions(h)),
        },
        Case {
            name: "cas_operations_work_through_box_dyn_atomic_kv",
            tier: Tier::Atomic,
            requires: req::atomic,
            run: |h| Box::pin(through_box(h)),
        },
        Case {
            name: "undeclared_cas_returns_unsupported",
            tier: Tier::Atomic,
            requires: req::lacks_atomic,
            run: |h| Box::pin(undeclared_atomic(h)),
        },
    ]
}

fn opts() -> PutOptions {
    PutOptions::default()
}

fn parse_counter(v: &Bytes) -> Result<u64, Failure> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Failure(format!("counter holds {v:?}, not a decimal number")))
}

/// One task of the race: `n` read → conditional write → retry increments.
async fn increment(a: Arc<dyn AtomicKv>, task: usize, n: usize) -> Result<usize, Failure> {
    let (mut done, mut conflicts) = (0, 0usize);
    while done < n {
        let cur = a.get_versioned("race", b"counter").await?;
        let (next, mode) = match cur {
            None => (1, PutMode::Create),
            Some(v) => (parse_counter(&v.value)? + 1, PutMode::Update(v.version)),
        };
        if (done + task) % 3 == 0 {
            // Widen the read → write window so tasks interleave.
            tokio::task::yield_now().await;
        }
        match a
            .put_if("race", b"counter", b(next.to_string()), mode, opts())
            .await
        {
            Ok(_) => done += 1,
            Err(Error::Conflict { .. }) => {
                conflicts += 1;
                ensure!(
                    conflicts < 1_000_000,
                    "task {task}: a million conflicts, no progress"
                );
            }
            Err(e) => return Err(Failure(format!("task {task}: put_if failed: {e}"))),
        }
    }
    Ok(conflicts)
}

async fn race_put_if(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let a = f.atomic()?;
        let tasks: Vec<_> = (0..RACE_TASKS)
            .map(|t| tokio::spawn(increment(a.clone(), t, RACE_INCREMENTS)))
            .collect();
        for t in tasks {
            t.await
                .map_err(|e| Failure(format!("race task failed: {e}")))??;
        }
        let got = a
            .get_versioned("race", b"counter")
            .await?
            .ok_or_else(|| Failure("the counter is missing".into()))?;
        ensure_eq!(
            parse_counter(&got.value)?,
            (RACE_TASKS * RACE_INCREMENTS) as u64,
            "lost or phantom increments"
        );
        Ok(())
    })
    .await
}

async fn race_update_with_retry(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let a = f.atomic()?;
        let tasks: Vec<_> = (0..RACE_TASKS)
            .map(|t| {
                let a = a.clone();
                tokio::spawn(async move {
                    for _ in 0..RACE_INCREMENTS {
                        let r = a
                            .update_with_retry("race", b"counter", 100_000, |cur| {
                                let n = cur
                                    .and_then(|v| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
                                    .unwrap_or(0);
                                Some(b((n + 1).to_string()))
                            })
                            .await;
                        match r {
                            Ok(Some(_)) => {}
                            other => {
                                return Err(Failure(format!(
                                    "task {t}: update_with_retry gave {other:?}"
                                )))
                            }
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for t in tasks {
            t.await
                .map_err(|e| Failure(format!("race task failed: {e}")))??;
        }
        let got = a
            .get("race", b"counter")
            .await?
            .ok_or_else(|| Failure("the counter is missing".into()))?;
        ensure_eq!(
            parse_counter(&got)?,
            (RACE_TASKS * RACE_INCREMENTS) as u64,
            "lost or phantom increments"
        );
        Ok(())
    })
    .await
}

async fn versions_change(h: Arc<dyn Harness>) -> CaseResult {
    let caps = h.capabilities();
    with_fixture(&h, |f| async move {
        let a = f.atomic()?;
        let mut issued: Vec<(Version, Bytes, &str)> = Vec::new();
        // Every token a write returns is the one a read sees right after.
        async fn read(a: &dyn AtomicKv, key: &[u8]) -> Result<Version, Failure> {
            Ok(a.get_versioned("v", key)
                .await?
                .ok_or_else(|| Failure("key vanished after a write".into()))?
                .version)
        }
        let v = a.put_if("v", b"k", b("a"), PutMode::Create, opts()).await?;
        ensure_eq!(read(&*a, b"k").await?, v, "Create's token");
        issued.push((v, b("a"), "put_if Create"));
        let v = a
            .put_if("v", b"k", b("b"), PutMode::Overwrite, opts())
            .await?;
        ensure_eq!(read(&*a, b"k").await?, v, "Overwrite's token");
        issued.push((v.clone(), b("b"), "put_if Overwrite"));
        let v = a
            .put_if("v", b"k", b("b"), PutMode::Update(v), opts())
            .await?;
        ensure_eq!(read(&*a, b"k").await?, v, "Update's token");
        issued.push((v, b("b"), "put_if Update with identical bytes"));
        a.put("v", b"k", b("c"), opts()).await?;
        issued.push((read(&*a, b"k").await?, b("c"), "plain put"));
        a.put("v", b"k", b("c"), opts()).await?;
        issued.push((
            read(&*a, b"k").await?,
            b("c"),
            "plain put of identical bytes",
        ));
        a.write_batch(
            "v",
            vec![storage_core::BatchOp::Put {
                key: b("k"),
                value: b("d"),
                options: opts(),
            }],
        )
        .await?;
        issued.push((read(&*a, b"k").await?, b("d"), "write_batch put"));
        a.delete("v", b"k").await?;
        let v = a.put_if("v", b"k", b("a"), PutMode::Create, opts()).await?;
        ensure_eq!(read(&*a, b"k").await?, v, "re-Create's token");
        issued.push((
            v,
            b("a"),
            "put_if Create after delete (same bytes as the first)",
        ));
        if caps.transaction_scope != TransactionScope::None {
            let vs = a.transact(vec![TxOp::put("v", b("k"), b("e"))]).await?;
            let v = vs
                .first()
                .cloned()
                .flatten()
                .ok_or_else(|| Failure(format!("transaction put returned {vs:?}")))?;
            ensure_eq!(read(&*a, b"k").await?, v, "transaction's token");
            issued.push((v, b("e"), "transaction put"));
        }
        for (i, (vi, bi, wi)) in issued.iter().enumerate() {
            for (vj, bj, wj) in &issued[..i] {
                let may_repeat = caps.atomic_content_hash_versions && bi == bj;
                ensure!(
                    vi != vj || may_repeat,
                    "{wi} issued version {vi}, already issued by the earlier {wj} \
                     (bytes {bj:?} then {bi:?}); atomic_content_hash_versions = {}",
                    caps.atomic_content_hash_versions
                );
            }
        }
        Ok(())
    })
    .await
}

async fn version_round_trip(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let a = f.atomic()?;
        let v1 = a.put_if("r", b"k", b("1"), PutMode::Create, opts()).await?;
        let text = v1.to_string();
        ensure!(!text.is_empty(), "a version's string form is empty");
        let parsed: Version = text
            .parse()
            .map_err(|e| Failure(format!("version {text:?} does not parse back: {e}")))?;
        ensure_eq!(parsed, v1);
        let v2 = a
            .put_if("r", b"k", b("2"), PutMode::Update(parsed), opts())
            .await?;
        // An ETag handed out and presented back later.
        let etag = format!("{v2}");
        let (cur, _) = expect_conflict(
            "Update with the first token's string form after a write",
            a.put_if(
                "r",
                b"k",
                b("x"),
                PutMode::Update(Version::new(text.as_str())),
                opts(),
            )
            .await,
        )?;
        ensure_eq!(cur.map(|v| v.to_string()), Some(etag.clone()));
        let parsed: Version = etag
            .parse()
            .map_err(|e| Failure(format!("version {etag:?} does not parse back: {e}")))?;
        a.delete_if("r", b"k", &parsed).await?;
        ensure_eq!(a.get("r", b"k").await?, None);
        Ok(())
    })
    .await
}

async fn failed_conditions(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let a = f.atomic()?;
        let v1 = a.put_if("c", b"k", b("a"), PutMode::Create, opts()).await?;
        let (cur, _) = expect_conflict(
            "Create on an existing key",
            a.put_if("c", b"k", b("x"), PutMode::Create, opts()).await,
        )?;
        ensure_eq!(cur, Some(v1.clone()));
        ensure_eq!(a.get("c", b"k").await?, Some(b("a")));

        let v2 = a
            .put_if("c", b"k", b("b"), PutMode::Update(v1.clone()), opts())
            .await?;
        let (cur, _) = expect_conflict(
            "Update with a stale token",
            a.put_if("c", b"k", b("x"), PutMode::Update(v1.clone()), opts())
                .await,
        )?;
        ensure_eq!(cur, Some(v2.clone()));
        let (cur, _) = expect_conflict(
            "delete_if with a stale token",
            a.delete_if("c", b"k", &v1).await,
        )?;
        ensure_eq!(cur, Some(v2.clone()));
        let bogus = Version::new("conformance-never-issued");
        let (cur, _) = expect_conflict(
            "Update with a token the store never issued",
            a.put_if("c", b"k", b("x"), PutMode::Update(bogus.clone()), opts())
                .await,
        )?;
        ensure_eq!(cur, Some(v2.clone()));
        let vo = a
            .put_if("c", b"other", b("o"), PutMode::Create, opts())
            .await?;
        if vo != v2 {
            let (cur, _) = expect_conflict(
                "Update with another key's token",
                a.put_if("c", b"k", b("x"), PutMode::Update(vo.clone()), opts())
                    .await,
            )?;
            ensure_eq!(cur, Some(v2.clone()));
            expect_conflict(
                "delete_if with another key's token",
                a.delete_if("c", b"k", &vo).await,
            )?;
        }
        ensure_eq!(
            a.get("c", b"k").await?,
            Some(b("b")),
            "failed writes changed it"
        );

        a.delete_if("c", b"k", &v2).await?;
        let (cur, _) = expect_conflict(
            "delete_if of a deleted key",
            a.delete_if("c", b"k", &v2).await,
        )?;
        ensure_eq!(cur, None, "an absent key's current version");
        let (cur, _) = expect_conflict(
            "Update of a deleted key",
            a.put_if("c", b"k", b("x"), PutMode::Update(v2), opts())
                .await,
        )?;
        ensure_eq!(cur, None);
        let (cur, _) = expect_conflict(
            "Update of a key that never existed",
            a.put_if("c", b"never", b("x"), PutMode::Update(bogus), opts())
                .await,
        )?;
        ensure_eq!(cur, None);
        ensure_eq!(
            a.get_many("c", &[b("k"), b("never"), b("other")]).await?,
            vec![None, None, Some(b("o"))]
        );
        ensure_eq!(a.list_namespaces().await?, vec!["c".to_owned()]);
        Ok(())
    })
    .await
}

async fn bad_input(h: Arc<dyn Harness>) -> CaseResult {
    let caps = h.capabilities();
    with_fixture(&h, |f| async move {
        let a = f.atomic()?;
        let v = a
            .put_if("good", b"k", b("v"), PutMode::Create, opts())
            .await?;
        let before = state(&*a).await?;
        let modes = [
            PutMode::Overwrite,
            PutMode::Create,
            PutMode::Update(v.clone()),
        ];
        for ns in bad_namespaces(&caps) {
            let w = format!("namespace {:?}", ns.chars().take(40).collect::<String>());
            expect_invalid(
                &format!("get_versioned in {w}"),
                a.get_versioned(&ns, b"k").await,
            )?;
            for m in &modes {
                expect_invalid(
                    &format!("put_if {m:?} in {w}"),
                    a.put_if(&ns, b"k", b("x"), m.clone(), opts()).await,
                )?;
            }
            expect_invalid(
                &format!("delete_if in {w}"),
                a.delete_if(&ns, b"k", &v).await,
            )?;
        }
        for key in bad_keys(&caps) {
            let w = format!("key of {} bytes", key.len());
            expect_invalid(
                &format!("get_versioned of {w}"),
                a.get_versioned("good", &key).await,
            )?;
            for m in &modes {
                expect_invalid(
                    &format!("put_if {m:?} of {w}"),
                    a.put_if("good", &key, b("x"), m.clone(), opts()).await,
                )?;
            }
            expect_invalid(
                &format!("delete_if of {w}"),
                a.delete_if("good", &key, &v).await,
            )?;
        }
        if let Some(big) = buffer(caps.max_value_size.checked_add(1)) {
            for m in &modes {
                expect_invalid(
                    &format!("put_if {m:?} of a value over max_value_size"),
                    a.put_if("good", b"k", big.clone(), m.clone(), opts()).await,
                )?;
            }
        }
        ensure_eq!(
            state(&*a).await?,
            before,
            "rejected input changed the store"
        );
        ensure_eq!(
            a.get_versioned("good", b"k").await?.map(|x| x.version),
            Some(v),
            "rejected input changed the version"
        );
        Ok(())
    })
    .await
}

async fn scan_versions(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let a = f.atomic()?;
        a.put_if("s", b"a", b("1"), PutMode::Create, opts()).await?;
        a.put("s", b"b", b("2"), opts()).await?;
        a.put_if("s", b"c", b("3"), PutMode::Overwrite, opts())
            .await?;
        let entries = a.scan_all("s", ScanRequest::all().with_limit(2)).await?;
        ensure_eq!(entries.len(), 3);
        for e in entries {
            let cur = a.get_versioned("s", &e.key).await?.map(|v| v.version);
            ensure!(
                e.version.is_some(),
                "scan entry {:?} of a CAS store carries no version",
                e.key
            );
            ensure_eq!(e.version, cur, "scan entry version of {:?}", e.key);
        }
        Ok(())
    })
    .await
}

async fn through_box(h: Arc<dyn Harness>) -> CaseResult {
    let caps = h.capabilities();
    with_fixture(&h, |f| async move {
        let boxed: Box<dyn AtomicKv> = Box::new(Forward(f.atomic()?));
        let v1 = boxed
            .put_if("boxed", b"k", b("1"), PutMode::Create, opts())
            .await?;
        let got = boxed
            .get_versioned("boxed", b"k")
            .await?
            .ok_or_else(|| Failure("written key missing".into()))?;
        ensure_eq!(got.version, v1.clone());
        ensure_eq!(got.value, b("1"));
        let v2 = boxed
            .update_with_retry("boxed", b"k", 3, |cur| {
                cur.map(|c| {
                    let mut v = c.to_vec();
                    v.push(b'+');
                    Bytes::from(v)
                })
            })
            .await?
            .ok_or_else(|| Failure("update_with_retry deleted the key".into()))?;
        ensure!(v2 != v1, "update_with_retry kept the version");
        ensure_eq!(boxed.get("boxed", b"k").await?, Some(b("1+")));
        if caps.transaction_scope != TransactionScope::None {
            let vs = boxed
                .transact(vec![
                    TxOp::put("boxed", b("k"), b("tx")).when(storage_core::Condition::Version(v2)),
                    TxOp::put("boxed", b("n"), b("new")).when(storage_core::Condition::Absent),
                ])
                .await?;
            ensure_eq!(vs.len(), 2);
        }
        let v = boxed
            .get_versioned("boxed", b"k")
            .await?
            .ok_or_else(|| Failure("key missing".into()))?;
        boxed.delete_if("boxed", b"k", &v.version).await?;
        ensure_eq!(boxed.get("boxed", b"k").await?, None);
        Ok(())
    })
    .await
}

async fn undeclared_atomic(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let Some(a) = f.atomic.clone() else {
            return Ok(());
        };
        let v = Version::new("1");
        expect_unsupported("get_versioned", a.get_versioned("ns", b"k").await)?;
        for m in [
            PutMode::Overwrite,
            PutMode::Create,
            PutMode::Update(v.clone()),
        ] {
            expect_unsupported(
                &format!("put_if {m:?}"),
                a.put_if("ns", b"k", b("v"), m.clone(), opts()).await,
            )?;
        }
        expect_unsupported("delete_if", a.delete_if("ns", b"k", &v).await)?;
        expect_unsupported(
            "transact",
            a.transact(vec![TxOp::put("ns", b("k"), b("v"))]).await,
        )?;
        Ok(())
    })
    .await
}
