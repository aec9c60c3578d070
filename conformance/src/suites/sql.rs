//! SQL tier cases: the portable subset every SQL backend must agree on,
//! and the `Unsupported` answer of backends without SQL.

use std::sync::Arc;

use storage_core::{Error, SqlEngine, SqlValue};

use crate::case::{req, Case, CaseResult, Tier};
use crate::harness::Harness;
use crate::runner::with_fixture;
use crate::{ensure, ensure_eq};

/// The SQL cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "portable_subset_gives_the_documented_results",
            tier: Tier::Sql,
            requires: req::sql,
            run: |h| Box::pin(portable_subset(h)),
        },
        Case {
            name: "bad_sql_is_invalid_input_and_changes_nothing",
            tier: Tier::Sql,
            requires: req::sql,
            run: |h| Box::pin(bad_sql(h)),
        },
        Case {
            name: "undeclared_sql_returns_unsupported",
            tier: Tier::Sql,
            requires: req::lacks_sql,
            run: |h| Box::pin(undeclared(h)),
        },
    ]
}

async fn run(
    sql: &dyn SqlEngine,
    q: &str,
    params: &[SqlValue],
) -> Result<Vec<Vec<SqlValue>>, crate::Failure> {
    Ok(sql.execute(q, params).await?.rows)
}

async fn portable_subset(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let sql = f.sql()?;
        sql.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, grp TEXT, n INTEGER)")
            .await?;
        for (id, grp, n) in [
            (1, "a", Some(10)),
            (2, "a", Some(5)),
            (3, "b", None),
            (4, "b", Some(7)),
        ] {
            let n = n.map_or(SqlValue::Null, SqlValue::Integer);
            let r = sql
                .execute(
                    "INSERT INTO t (id, grp, n) VALUES (?, ?, ?)",
                    &[SqlValue::Integer(id), SqlValue::Text(grp.into()), n],
                )
                .await?;
            ensure_eq!(r.rows_affected, 1, "insert reports one row");
        }
        let rows = run(
            &*sql,
            "SELECT id FROM t WHERE n > ? ORDER BY id DESC",
            &[SqlValue::Integer(6)],
        )
        .await?;
        ensure_eq!(
            rows,
            vec![vec![SqlValue::Integer(4)], vec![SqlValue::Integer(1)]]
        );
        let rows = run(
            &*sql,
            "SELECT grp, COUNT(*), COUNT(n), SUM(n) FROM t GROUP BY grp ORDER BY grp",
            &[],
        )
        .await?;
        ensure_eq!(
            rows,
            vec![
                vec![
                    SqlValue::Text("a".into()),
                    SqlValue::Integer(2),
                    SqlValue::Integer(2),
                    SqlValue::Integer(15)
                ],
                vec![
                    SqlValue::Text("b".into()),
                    SqlValue::Integer(2),
                    SqlValue::Integer(1),
                    SqlValue::Integer(7)
                ],
            ]
        );
        let rows = run(&*sql, "SELECT id FROM t WHERE n IS NULL", &[]).await?;
        ensure_eq!(rows, vec![vec![SqlValue::Integer(3)]]);
        let rows = run(&*sql, "SELECT id FROM t ORDER BY id LIMIT 2 OFFSET 1", &[]).await?;
        ensure_eq!(
            rows,
            vec![vec![SqlValue::Integer(2)], vec![SqlValue::Integer(3)]]
        );
        let r = sql
            .execute(
                "UPDATE t SET n = n + 1 WHERE grp = ?",
                &[SqlValue::Text("a".into())],
            )
            .await?;
        ensure_eq!(r.rows_affected, 2);
        let r = sql.execute("DELETE FROM t WHERE n IS NULL", &[]).await?;
        ensure_eq!(r.rows_affected, 1);
        // A query right after a write changes nothing, and says so.
        let r = sql.execute("SELECT SUM(n) FROM t", &[]).await?;
        ensure_eq!(r.rows, vec![vec![SqlValue::Integer(24)]]);
        ensure_eq!(r.rows_affected, 0, "a query reports no changed rows");
        Ok(())
    })
    .await
}

async fn bad_sql(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let sql = f.sql()?;
        sql.execute_batch("CREATE TABLE u (id INTEGER PRIMARY KEY)")
            .await?;
        sql.execute("INSERT INTO u (id) VALUES (?)", &[SqlValue::Integer(1)])
            .await?;
        let e = sql.execute("SELEKT nonsense", &[]).await;
        ensure!(
            matches!(e, Err(Error::InvalidInput { .. })),
            "syntax error gave {e:?}"
        );
        // A statement that fails half-way (duplicate key on the second row)
        // leaves the table as it was.
        let e = sql.execute("INSERT INTO u (id) VALUES (2), (1)", &[]).await;
        ensure!(
            matches!(e, Err(Error::InvalidInput { .. })),
            "constraint violation gave {e:?}"
        );
        let rows = run(&*sql, "SELECT COUNT(*) FROM u", &[]).await?;
        ensure_eq!(
            rows,
            vec![vec![SqlValue::Integer(1)]],
            "failed statement left rows behind"
        );
        Ok(())
    })
    .await
}

async fn undeclared(h: Arc<dyn Harness>) -> CaseResult {
    with_fixture(&h, |f| async move {
        let Some(sql) = f.sql.clone() else {
            return Ok(()); // the type has no SQL tier at all
        };
        ensure!(
            sql.dialect().is_none(),
            "dialect() is Some without a declared SQL capability"
        );
        let e = sql.execute("SELECT 1", &[]).await;
        ensure!(
            matches!(e, Err(Error::Unsupported { .. })),
            "execute gave {e:?}"
        );
        let e = sql.execute_batch("SELECT 1").await;
        ensure!(
            matches!(e, Err(Error::Unsupported { .. })),
            "execute_batch gave {e:?}"
        );
        Ok(())
    })
    .await
}
