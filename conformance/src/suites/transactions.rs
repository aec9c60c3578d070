//! Transaction cases. Together they prove that a backend's
//! [`AtomicKv::transact`]:
//!
//! - agrees with the reference model on random small transactions mixed
//!   with KV and CAS operations: conditions (absent, exists, version:
//!   current, stale, another key's, bogus) are checked on the state before
//!   the transaction, a failed one is a `Conflict` naming the index of the
//!   *first* failed operation and the key's current version, and then
//!   nothing at all changed;
//! - is all-or-nothing, returns a version per put (usable as the next
//!   condition) and `None` per delete or check; a `Check` writes nothing;
//! - loses nothing under contention: concurrent conditional transfers
//!   keep every balance exact;
//! - spans namespaces when it declares `TransactionScope::Any`, and
//!   refuses them with `InvalidInput` when it declares `Namespace`;
//! - rejects bad operations, duplicate keys and more than
//!   `max_transaction_ops` operations with `InvalidInput`, writing nothing;
//! - answers `Unsupported` when it declares no transactions.

use std::sync::Arc;

use storage_core::{
    AtomicKv, Condition, Error, PutMode, PutOptions, TransactionScope, TxAction, TxOp, Version,
};

use crate::case::{req, Case, CaseResult, Failure, Requirement, Tier};
use crate::harness::Harness;
use crate::runner::with_fixture;
use crate::suites::common::{
    b, bad_keys, bad_namespaces, both, buffer, expect_conflict, expect_invalid, expect_unsupported,
    state,
};
use crate::suites::kv_property::{self, Flavor};
use crate::{ensure, ensure_eq};

/// The transaction cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "random_transactions_match_the_reference_model",
            tier: Tier::Transactions,
            requires: req::tx,
            run: |h| Box::pin(kv_property::run(h, Flavor::Tx)),
        },
        Case {
            name: "transaction_is_all_or_nothing_and_names_the_first_failed_operation",
            tier: Tier::Transactions,
            requires: |c| {
                both(
                    req::tx(c),
                    if c.max_transaction_ops >= 5 {
                        Requirement::Run
                    } else {
                        Requirement::Unsupported("case needs max_transaction_ops >= 5".into())
                    },
                )
            },
            run: |h| Box::pin(all_or_nothing(h)),
        },
        Case {
            name: "check_action_guards_a_transaction_without_writing",
            tier: Tier::Transactions,
            requires: req::tx,
            run: |h| Box::pin(check_action(h)),
        },
        Case {
            name: "concurrent_conditional_transfers_keep_every_balance_exact",
            tier: Tier::Transactions,
            requires: req::tx,
            run: |h| Box::pin(transfers(h)),
        },
        Case {
            name: "transaction_spans_namespaces_all_or_nothing",
            tier: Tier::Transactions,
            requires: req::tx_any,
            run: |h| Box::pin(cross_namespace(h)),
        },
        Case {
            name: "namespace_scoped_transaction_rejects_keys_of_two_namespaces",
            tier: Tier::Transactions,
            requires: |c| {
                if c.atomic && c.transaction_scope == TransactionScope::Namespace {
                    Requirement::Run
                } else {
                    Requirement::NotApplicable(
                        "backend's transaction scope is not Namespace".into(),
                    )
                }
            },
            run: |h| Box::pin(namespace_scope(h)),
        },
        Case {
            name: "transaction_bad_input_is_invalid_input_and_writes_nothing",
            tier: Tier::Transactions,
            requires: req::tx,
            run: |h| Box::pin(bad_input(h)),
        },
        Case {
            name: "undeclared_transactions_return_unsupported",
            tier: Tier::Transactions,
            requires: req::lacks_tx,
            run: |h| Box::pin(undeclared(h)),
        },
    ]
}

fn opts() -> PutOptions {
    PutOptions::default()
}

async fn version_of(a: &dyn AtomicKv, ns: &str, key: &[u8]) -> Result<Option<Version>, Failure> {
    Ok(a.get_versioned(ns, key).await?.map(|v| v.version))
}

async fn all_or_nothing(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let a = f.atomic()?;
        let va = a.put_if("t", b"a", b("1"), PutMode::Create, opts()).await?;
        a.put_if("t", b"b", b("2"), PutMode::Create, opts()).await?;

        let vs = a
            .transact(vec![
                TxOp::put("t", b("a"), b("10")).when(Condition::Version(va.clone())),
                TxOp::delete("t", b("b")).when(Condition::Exists),
                TxOp::put("t", b("c"), b("3")).when(Condition::Absent),
                TxOp::delete("t", b("never")),
            ])
            .await?;
        ensure_eq!(vs.len(), 4, "one result per operation");
        ensure!(
            vs[0].is_some() && vs[1].is_none() && vs[2].is_some() && vs[3].is_none(),
            "puts return Some(version), deletes None: {vs:?}"
        );
        ensure_eq!(version_of(&*a, "t", b"a").await?, vs[0].clone());
        ensure_eq!(version_of(&*a, "t", b"c").await?, vs[2].clone());
        ensure!(
            vs[0].as_ref() != Some(&va),
            "transaction put kept the version"
        );
        ensure_eq!(
            a.get_many("t", &[b("a"), b("b"), b("c")]).await?,
            vec![Some(b("10")), None, Some(b("3"))]
        );
        let (va2, vc) = (vs[0].clone(), vs[2].clone());

        let before = state(&*a).await?;
        // Fails at #3: c exists. Everything before and after it is undone.
        let (cur, idx) = expect_conflict(
            "transaction whose fourth condition fails",
            a.transact(vec![
                TxOp::put("t", b("a"), b("20")).when(Condition::Version(
                    va2.clone().unwrap_or_else(|| Version::new("x")),
                )),
                TxOp::put("t", b("d"), b("4")),
                TxOp::check("t", b("b"), Condition::Absent),
                TxOp::put("t", b("c"), b("5")).when(Condition::Absent),
                TxOp::delete("t", b("e")).when(Condition::Absent),
            ])
            .await,
        )?;
        ensure_eq!(idx, Some(3), "index of the first failed operation");
        ensure_eq!(cur, vc.clone(), "current version of the failed key");
        ensure_eq!(
            state(&*a).await?,
            before,
            "a failed transaction changed the store"
        );

        // Fails at #0 with a stale version; #2 would fail too.
        let (cur, idx) = expect_conflict(
            "transaction with a stale version first",
            a.transact(vec![
                TxOp::put("t", b("a"), b("30")).when(Condition::Version(va.clone())),
                TxOp::delete("t", b("c")),
                TxOp::put("t", b("b"), b("x")).when(Condition::Exists),
            ])
            .await,
        )?;
        ensure_eq!(idx, Some(0));
        ensure_eq!(cur, va2.clone());
        // A version condition on an absent key reports None.
        let (cur, idx) = expect_conflict(
            "transaction with a version condition on a deleted key",
            a.transact(vec![
                TxOp::delete("t", b("c")),
                TxOp::put("t", b("b"), b("x")).when(Condition::Version(va)),
            ])
            .await,
        )?;
        ensure_eq!(idx, Some(1));
        ensure_eq!(cur, None);
        ensure_eq!(
            state(&*a).await?,
            before,
            "a failed transaction changed the store"
        );

        // The versions a transaction returned are conditions for the next.
        let vs = a
            .transact(vec![
                TxOp::delete("t", b("a"))
                    .when(Condition::Version(va2.unwrap_or_else(|| Version::new("x")))),
                TxOp::put("t", b("c"), b("6"))
                    .when(Condition::Version(vc.unwrap_or_else(|| Version::new("x")))),
            ])
            .await?;
        ensure_eq!(vs.len(), 2);
        ensure_eq!(
            a.get_many("t", &[b("a"), b("c")]).await?,
            vec![None, Some(b("6"))]
        );
        Ok(())
    })
    .await
}

async fn check_action(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let a = f.atomic()?;
        let vg = a
            .put_if("t", b"guard", b("g"), PutMode::Create, opts())
            .await?;
        let vs = a
            .transact(vec![
                TxOp::check("t", b("guard"), Condition::Version(vg.clone())),
                TxOp::put("t", b("x"), b("1")),
            ])
            .await?;
        ensure_eq!(vs.len(), 2);
        ensure_eq!(vs[0], None, "a check returns no version");
        ensure_eq!(
            version_of(&*a, "t", b"guard").await?,
            Some(vg.clone()),
            "a check changed the guard's version"
        );
        ensure_eq!(a.get("t", b"guard").await?, Some(b("g")));
        // Checks that fail block the write; a check of an absent key with
        // Absent passes and creates nothing.
        a.transact(vec![
            TxOp::check("t", b("missing"), Condition::Absent),
            TxOp::put("t", b("y"), b("1")),
        ])
        .await?;
        ensure_eq!(a.get("t", b"missing").await?, None, "a check created a key");
        a.put("t", b"guard", b("g2"), opts()).await?;
        let (cur, idx) = expect_conflict(
            "check with an outdated version",
            a.transact(vec![
                TxOp::put("t", b("z"), b("1")),
                TxOp::check("t", b("guard"), Condition::Version(vg)),
            ])
            .await,
        )?;
        ensure_eq!(idx, Some(1));
        ensure_eq!(cur, version_of(&*a, "t", b"guard").await?);
        let (_, idx) = expect_conflict(
            "check that an absent key exists",
            a.transact(vec![
                TxOp::check("t", b("missing"), Condition::Exists),
                TxOp::put("t", b("z"), b("1")),
            ])
            .await,
        )?;
        ensure_eq!(idx, Some(0));
        ensure_eq!(a.get("t", b"z").await?, None, "a blocked transaction wrote");
        Ok(())
    })
    .await
}

const ACCOUNTS: usize = 4;
const TRANSFER_TASKS: usize = 8;
const TRANSFERS: usize = 25;
const START_BALANCE: i64 = 10_000;

fn account(i: usize) -> bytes::Bytes {
    b(format!("acct-{i}"))
}

fn balance(v: &[u8]) -> Result<i64, Failure> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Failure(format!("balance {v:?} is not a number")))
}

async fn transfer_task(a: Arc<dyn AtomicKv>, t: usize) -> Result<(), Failure> {
    let (from, to, amount) = (
        t % ACCOUNTS,
        (t + 1 + t / ACCOUNTS) % ACCOUNTS,
        t as i64 + 1,
    );
    let mut done = 0;
    let mut conflicts = 0usize;
    while done < TRANSFERS {
        let f = a
            .get_versioned("bank", &account(from))
            .await?
            .ok_or_else(|| Failure("account vanished".into()))?;
        let g = a
            .get_versioned("bank", &account(to))
            .await?
            .ok_or_else(|| Failure("account vanished".into()))?;
        tokio::task::yield_now().await;
        let r = a
            .transact(vec![
                TxOp::put(
                    "bank",
                    account(from),
                    b((balance(&f.value)? - amount).to_string()),
                )
                .when(Condition::Version(f.version)),
                TxOp::put(
                    "bank",
                    account(to),
                    b((balance(&g.value)? + amount).to_string()),
                )
                .when(Condition::Version(g.version)),
            ])
            .await;
        match r {
            Ok(_) => done += 1,
            Err(Error::Conflict { .. }) => {
                conflicts += 1;
                ensure!(conflicts < 1_000_000, "task {t}: no progress");
            }
            Err(e) => return Err(Failure(format!("task {t}: transact failed: {e}"))),
        }
    }
    Ok(())
}

async fn transfers(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let a = f.atomic()?;
        let mut want = [START_BALANCE; ACCOUNTS];
        for (i, _) in want.iter().enumerate() {
            a.put("bank", &account(i), b(START_BALANCE.to_string()), opts())
                .await?;
        }
        for t in 0..TRANSFER_TASKS {
            let (from, to, amount) = (
                t % ACCOUNTS,
                (t + 1 + t / ACCOUNTS) % ACCOUNTS,
                t as i64 + 1,
            );
            want[from] -= amount * TRANSFERS as i64;
            want[to] += amount * TRANSFERS as i64;
        }
        let tasks: Vec<_> = (0..TRANSFER_TASKS)
            .map(|t| tokio::spawn(transfer_task(a.clone(), t)))
            .collect();
        for t in tasks {
            t.await
                .map_err(|e| Failure(format!("transfer task failed: {e}")))??;
        }
        let mut got = [0i64; ACCOUNTS];
        for (i, g) in got.iter_mut().enumerate() {
            let v = a
                .get("bank", &account(i))
                .await?
                .ok_or_else(|| Failure("account vanished".into()))?;
            *g = balance(&v)?;
        }
        ensure_eq!(got, want, "balances after concurrent transfers");
        Ok(())
    })
    .await
}

async fn cross_namespace(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let a = f.atomic()?;
        let vs = a
            .transact(vec![
                TxOp::put("x", b("k"), b("1")).when(Condition::Absent),
                TxOp::put("y", b("k"), b("2")).when(Condition::Absent),
            ])
            .await?;
        ensure_eq!(vs.len(), 2, "same key in two namespaces is not a duplicate");
        ensure_eq!(a.list_namespaces().await?, vec!["x".to_owned(), "y".into()]);
        let before = state(&*a).await?;
        let (cur, idx) = expect_conflict(
            "cross-namespace transaction failing in its second namespace",
            a.transact(vec![
                TxOp::put("x", b("k"), b("10")),
                TxOp::put("z", b("k"), b("30")),
                TxOp::delete("y", b("k")).when(Condition::Absent),
            ])
            .await,
        )?;
        ensure_eq!(idx, Some(2));
        ensure_eq!(cur, vs[1].clone());
        ensure_eq!(
            state(&*a).await?,
            before,
            "a failed transaction changed the store"
        );
        a.transact(vec![
            TxOp::delete("x", b("k")).when(Condition::Exists),
            TxOp::put("z", b("k"), b("3")),
        ])
        .await?;
        ensure_eq!(a.list_namespaces().await?, vec!["y".to_owned(), "z".into()]);
        Ok(())
    })
    .await
}

async fn namespace_scope(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let a = f.atomic()?;
        a.transact(vec![
            TxOp::put("x", b("a"), b("1")),
            TxOp::put("x", b("b"), b("2")),
        ])
        .await?;
        let before = state(&*a).await?;
        expect_invalid(
            "transaction over two namespaces",
            a.transact(vec![
                TxOp::put("x", b("c"), b("3")),
                TxOp::put("y", b("c"), b("3")),
            ])
            .await,
        )?;
        expect_invalid(
            "check in another namespace",
            a.transact(vec![
                TxOp::put("x", b("c"), b("3")),
                TxOp::check("y", b("c"), Condition::Absent),
            ])
            .await,
        )?;
        ensure_eq!(
            state(&*a).await?,
            before,
            "a refused transaction changed the store"
        );
        Ok(())
    })
    .await
}

async fn bad_input(h: Arc<dyn Harness>) -> CaseResult {
    let caps = h.capabilities();
    with_fixture(&h, |f| async move {
        let a = f.atomic()?;
        a.put("t", b"k", b("v"), opts()).await?;
        let before = state(&*a).await?;
        let good = || TxOp::put("t", b("new"), b("n"));
        for ns in bad_namespaces(&caps) {
            let w = format!("namespace {:?}", ns.chars().take(40).collect::<String>());
            let bad = TxOp::put(ns.clone(), b("k"), b("v"));
            expect_invalid(
                &format!("transaction with a put in {w}"),
                a.transact(vec![good(), bad]).await,
            )?;
            expect_invalid(
                &format!("transaction with a check in {w}"),
                a.transact(vec![good(), TxOp::check(ns, b("k"), Condition::Absent)])
                    .await,
            )?;
        }
        for key in bad_keys(&caps) {
            let w = format!("key of {} bytes", key.len());
            expect_invalid(
                &format!("transaction with a put of a {w}"),
                a.transact(vec![good(), TxOp::put("t", key.clone(), b("v"))])
                    .await,
            )?;
            expect_invalid(
                &format!("transaction with a delete of a {w}"),
                a.transact(vec![good(), TxOp::delete("t", key.clone())])
                    .await,
            )?;
        }
        if let Some(big) = buffer(caps.max_value_size.checked_add(1)) {
            expect_invalid(
                "transaction with a value over max_value_size",
                a.transact(vec![good(), TxOp::put("t", b("big"), big)])
                    .await,
            )?;
        }
        expect_invalid(
            "transaction naming one key twice",
            a.transact(vec![
                good(),
                TxOp::put("t", b("k"), b("1")),
                TxOp::delete("t", b("k")),
            ])
            .await,
        )?;
        expect_invalid(
            "transaction checking and writing one key",
            a.transact(vec![TxOp::check("t", b("new"), Condition::Absent), good()])
                .await,
        )?;
        let max = caps.max_transaction_ops;
        if max <= 10_000 {
            let ops = |n: usize| -> Vec<TxOp> {
                (0..n)
                    .map(|i| TxOp::put("many", b(format!("k{i:05}")), b("v")))
                    .collect()
            };
            expect_invalid(
                &format!(
                    "transaction of {} operations (max_transaction_ops {max})",
                    max + 1
                ),
                a.transact(ops(max + 1)).await,
            )?;
            ensure_eq!(
                state(&*a).await?,
                before,
                "rejected input changed the store"
            );
            if max > 0 {
                let vs = a.transact(ops(max)).await?;
                ensure_eq!(
                    vs.len(),
                    max,
                    "a transaction of exactly max_transaction_ops"
                );
                ensure!(
                    a.drop_namespace("many").await?,
                    "the full-size transaction wrote nothing"
                );
            }
        }
        ensure_eq!(
            state(&*a).await?,
            before,
            "rejected input changed the store"
        );
        Ok(())
    })
    .await
}

async fn undeclared(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let a = f.atomic()?;
        expect_unsupported(
            "transact",
            a.transact(vec![TxOp::put("t", b("k"), b("v"))]).await,
        )?;
        expect_unsupported(
            "transact with a check",
            a.transact(vec![TxOp {
                namespace: "t".into(),
                key: b("k"),
                action: TxAction::Check,
                condition: Some(Condition::Absent),
            }])
            .await,
        )?;
        ensure_eq!(
            a.get("t", b"k").await?,
            None,
            "an unsupported transaction wrote"
        );
        Ok(())
    })
    .await
}
