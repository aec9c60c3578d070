//! TTL cases. Together they prove that a backend declaring `kv_ttl`
//! judges expiry by the injected clock only (time moves with
//! `ManualClock::advance`, never by sleeping), and that:
//!
//! - an entry is present until just before its expiry instant and gone
//!   *exactly at* it (`expires_at <= now` means gone) from get, get_many,
//!   scans, `list_namespaces`, delete's answer and drop's answer;
//! - scans report each entry's absolute expiry instant;
//! - a put without TTL clears an earlier TTL, a put with a new TTL moves it;
//! - an expired key counts as absent for conditional writes (Create
//!   succeeds, version conditions fail with `current: None`);
//! - random sequences with short expiries and clock moves landing before,
//!   on and after expiry instants agree with the reference model;
//! - a backend *without* `kv_ttl` answers `Unsupported` to every write
//!   with an expiry and writes nothing.

use std::sync::Arc;
use std::time::Duration;

use storage_core::{
    BatchOp, Clock, Condition, Expiry, KvStoreExt, PutMode, PutOptions, ScanRequest,
    TransactionScope, TxOp,
};

use crate::case::{req, Case, CaseResult, Tier};
use crate::harness::Harness;
use crate::runner::with_fixture;
use crate::suites::common::{b, both, contents, expect_conflict, expect_unsupported, state};
use crate::suites::kv_property::{self, Flavor};
use crate::{ensure, ensure_eq};

/// The TTL cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "random_sequences_with_expiries_and_clock_moves_match_the_reference_model",
            tier: Tier::Ttl,
            requires: req::ttl,
            run: |h| Box::pin(kv_property::run(h, Flavor::Ttl)),
        },
        Case {
            name: "entry_is_gone_exactly_at_its_expiry_instant_from_every_read",
            tier: Tier::Ttl,
            requires: req::ttl,
            run: |h| Box::pin(gone_at_expiry(h)),
        },
        Case {
            name: "put_without_ttl_clears_an_earlier_ttl_and_a_new_ttl_moves_it",
            tier: Tier::Ttl,
            requires: req::ttl,
            run: |h| Box::pin(ttl_replaced(h)),
        },
        Case {
            name: "expired_key_counts_as_absent_for_conditional_writes",
            tier: Tier::Ttl,
            requires: |c| both(req::ttl(c), req::atomic(c)),
            run: |h| Box::pin(expired_is_absent_for_cas(h)),
        },
        Case {
            name: "undeclared_ttl_returns_unsupported_and_writes_nothing",
            tier: Tier::Ttl,
            requires: req::lacks_ttl,
            run: |h| Box::pin(undeclared_ttl(h)),
        },
    ]
}

fn ttl(secs: u64) -> PutOptions {
    PutOptions::ttl(Duration::from_secs(secs))
}

async fn gone_at_expiry(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let kv = f.kv()?;
        let t0 = f.clock.now();
        kv.put("t", b"k", b("v"), ttl(10)).await?;
        kv.put("t", b"stay", b("s"), PutOptions::default()).await?;
        kv.put("ephemeral", b"only", b("o"), ttl(10)).await?;
        let at = t0 + Duration::from_secs(10);

        let entries = kv.scan_all("t", ScanRequest::all()).await?;
        ensure_eq!(entries.len(), 2);
        ensure_eq!(entries[0].key, b("k"));
        ensure_eq!(
            entries[0].expires_at,
            Some(at),
            "scan reports the expiry instant"
        );
        ensure_eq!(
            entries[1].expires_at,
            None,
            "entry without TTL has no expiry"
        );

        f.clock.advance(Duration::from_millis(9_999));
        ensure_eq!(kv.get("t", b"k").await?, Some(b("v")), "1 ms before expiry");
        ensure_eq!(
            kv.get_many("t", &[b("k"), b("stay")]).await?,
            vec![Some(b("v")), Some(b("s"))]
        );
        ensure_eq!(
            kv.list_namespaces().await?,
            vec!["ephemeral".to_owned(), "t".into()]
        );

        f.clock.advance(Duration::from_millis(1));
        ensure_eq!(f.clock.now(), at);
        ensure_eq!(kv.get("t", b"k").await?, None, "at the expiry instant");
        ensure_eq!(
            kv.get_many("t", &[b("k"), b("stay")]).await?,
            vec![None, Some(b("s"))]
        );
        ensure_eq!(
            contents(&*kv, "t").await?,
            vec![(b("stay"), b("s"))],
            "scan at the expiry instant"
        );
        let rev = kv
            .scan("t", ScanRequest::all().with_limit(1).reversed())
            .await?;
        ensure_eq!(rev.entries.len(), 1);
        ensure!(
            rev.cursor.is_none(),
            "cursor promises more entries, but the only other one expired"
        );
        ensure_eq!(
            kv.list_namespaces().await?,
            vec!["t".to_owned()],
            "a namespace holding only expired entries is not listed"
        );
        ensure!(
            !kv.delete("t", b"k").await?,
            "delete of an expired key reported a removal"
        );
        ensure!(
            !kv.drop_namespace("ephemeral").await?,
            "drop of a namespace holding only expired entries reported entries"
        );
        // Writing the key again starts afresh.
        kv.put("t", b"k", b("again"), PutOptions::default()).await?;
        f.clock.advance(Duration::from_secs(3600));
        ensure_eq!(kv.get("t", b"k").await?, Some(b("again")));

        // Expiry::At an absolute instant, and write_batch with a TTL.
        let now = f.clock.now();
        kv.put(
            "t",
            b"at",
            b("a"),
            PutOptions {
                expiry: Expiry::At(now + Duration::from_millis(5)),
            },
        )
        .await?;
        kv.write_batch(
            "t",
            vec![BatchOp::Put {
                key: b("batch"),
                value: b("b"),
                options: PutOptions::ttl(Duration::from_millis(5)),
            }],
        )
        .await?;
        f.clock.advance(Duration::from_millis(4));
        ensure_eq!(
            kv.get_many("t", &[b("at"), b("batch")]).await?,
            vec![Some(b("a")), Some(b("b"))]
        );
        f.clock.advance(Duration::from_millis(1));
        ensure_eq!(
            kv.get_many("t", &[b("at"), b("batch")]).await?,
            vec![None, None]
        );
        Ok(())
    })
    .await
}

async fn ttl_replaced(h: Arc<dyn Harness>) -> CaseResult {
    let caps = h.capabilities();
    with_fixture(&h, |f| async move {
        let kv = f.kv()?;
        kv.put("t", b"cleared", b("1"), ttl(5)).await?;
        kv.put("t", b"cleared", b("2"), PutOptions::default())
            .await?;
        kv.put("t", b"batch-cleared", b("1"), ttl(5)).await?;
        kv.write_batch(
            "t",
            vec![BatchOp::Put {
                key: b("batch-cleared"),
                value: b("2"),
                options: PutOptions::default(),
            }],
        )
        .await?;
        kv.put("t", b"moved", b("1"), ttl(5)).await?;
        f.clock.advance(Duration::from_secs(4));
        kv.put("t", b"moved", b("2"), ttl(5)).await?;
        f.clock.advance(Duration::from_secs(4));
        ensure_eq!(
            kv.get_many("t", &[b("cleared"), b("batch-cleared"), b("moved")])
                .await?,
            vec![Some(b("2")), Some(b("2")), Some(b("2"))],
            "8 s later: TTLs cleared, moved one still live"
        );
        let entries = kv.scan_all("t", ScanRequest::all()).await?;
        ensure!(
            entries
                .iter()
                .filter(|e| e.key != b("moved"))
                .all(|e| e.expires_at.is_none()),
            "a put without TTL left an expiry: {entries:?}"
        );
        f.clock.advance(Duration::from_secs(1));
        ensure_eq!(kv.get("t", b"moved").await?, None, "moved TTL ends at 9 s");
        ensure_eq!(kv.get("t", b"cleared").await?, Some(b("2")));
        if let Some(atomic) = &f.atomic {
            if caps.atomic {
                atomic
                    .put_if("t", b"cas", b("1"), PutMode::Create, ttl(5))
                    .await?;
                atomic
                    .put_if(
                        "t",
                        b"cas",
                        b("2"),
                        PutMode::Overwrite,
                        PutOptions::default(),
                    )
                    .await?;
                f.clock.advance(Duration::from_secs(10));
                ensure_eq!(
                    kv.get("t", b"cas").await?,
                    Some(b("2")),
                    "put_if without TTL clears the TTL"
                );
            }
        }
        Ok(())
    })
    .await
}

async fn expired_is_absent_for_cas(h: Arc<dyn Harness>) -> CaseResult {
    let caps = h.capabilities();
    with_fixture(&h, |f| async move {
        let a = f.atomic()?;
        let v1 = a.put_if("t", b"k", b("1"), PutMode::Create, ttl(5)).await?;
        let (cur, _) = expect_conflict(
            "Create on a live key",
            a.put_if("t", b"k", b("x"), PutMode::Create, PutOptions::default())
                .await,
        )?;
        ensure_eq!(cur, Some(v1.clone()));
        f.clock.advance(Duration::from_secs(5));
        ensure_eq!(a.get_versioned("t", b"k").await?, None, "expired key");
        let (cur, _) = expect_conflict(
            "delete_if with the version of an expired key",
            a.delete_if("t", b"k", &v1).await,
        )?;
        ensure_eq!(cur, None, "an expired key's current version is None");
        let (cur, _) = expect_conflict(
            "Update with the version of an expired key",
            a.put_if(
                "t",
                b"k",
                b("x"),
                PutMode::Update(v1.clone()),
                PutOptions::default(),
            )
            .await,
        )?;
        ensure_eq!(cur, None);
        let v2 = a
            .put_if("t", b"k", b("2"), PutMode::Create, PutOptions::default())
            .await?;
        ensure!(v2 != v1, "re-created key reuses the expired version {v1}");
        ensure_eq!(a.get("t", b"k").await?, Some(b("2")));
        if caps.transaction_scope != TransactionScope::None {
            a.put_if("t", b"tx", b("1"), PutMode::Create, ttl(1))
                .await?;
            f.clock.advance(Duration::from_secs(1));
            a.transact(vec![
                TxOp::check("t", b("tx"), Condition::Absent),
                TxOp::put("t", b("tx2"), b("y")).when(Condition::Absent),
            ])
            .await?;
            ensure_eq!(a.get("t", b"tx2").await?, Some(b("y")));
        }
        Ok(())
    })
    .await
}

async fn undeclared_ttl(h: Arc<dyn Harness>) -> CaseResult {
    let caps = h.capabilities();
    with_fixture(&h, |f| async move {
        let kv = f.kv()?;
        kv.put("t", b"k", b("v"), PutOptions::default()).await?;
        let before = state(&*kv).await?;
        expect_unsupported("put with a TTL", kv.put("t", b"n", b("v"), ttl(5)).await)?;
        expect_unsupported(
            "put replacing a value with a TTL",
            kv.put("t", b"k", b("w"), ttl(5)).await,
        )?;
        expect_unsupported(
            "put with an absolute expiry",
            kv.put(
                "t",
                b"n",
                b("v"),
                PutOptions {
                    expiry: Expiry::At(f.clock.now() + Duration::from_secs(1)),
                },
            )
            .await,
        )?;
        expect_unsupported(
            "write_batch with one TTL put",
            kv.write_batch(
                "t",
                vec![
                    BatchOp::Put {
                        key: b("n1"),
                        value: b("v"),
                        options: PutOptions::default(),
                    },
                    BatchOp::Put {
                        key: b("n2"),
                        value: b("v"),
                        options: ttl(5),
                    },
                ],
            )
            .await,
        )?;
        if let (Some(a), true) = (&f.atomic, caps.atomic) {
            expect_unsupported(
                "put_if with a TTL",
                a.put_if("t", b"n", b("v"), PutMode::Overwrite, ttl(5))
                    .await,
            )?;
            if caps.transaction_scope != TransactionScope::None {
                let op = TxOp {
                    namespace: "t".into(),
                    key: b("n"),
                    action: storage_core::TxAction::Put {
                        value: b("v"),
                        options: ttl(5),
                    },
                    condition: None,
                };
                expect_unsupported("transact with a TTL put", a.transact(vec![op]).await)?;
            }
        }
        ensure_eq!(
            state(&*kv).await?,
            before,
            "a refused write changed the store"
        );
        Ok(())
    })
    .await
}
