//! The portable SQL subset gives identical results on SQLite and DuckDB.
//!
//! One script — DDL, parameterised INSERT / UPDATE / DELETE, SELECT with
//! WHERE, ORDER BY, GROUP BY / HAVING, aggregates, NULL semantics,
//! LIMIT / OFFSET, and statements that must fail — runs step by step on
//! both engines; every step must give the same column names, rows and
//! affected-row count, or fail on both with the same error kind and leave
//! both databases unchanged.
//!
//! What the subset leaves out, because the engines disagree (documented
//! in `storage-duckdb`'s `sql` module): NULL placement without an explicit
//! `NULLS FIRST` / `NULLS LAST` (SQLite puts NULLs first ascending, DuckDB
//! last), `/` on integers (integer division in SQLite, float in DuckDB),
//! `LIKE` case sensitivity, comparison results in the select list (SQLite
//! answers 0/1, DuckDB booleans), unaliased expression column names, and
//! `REAL` (8 bytes in SQLite, 4 in DuckDB: use `DOUBLE`).

#![allow(clippy::unwrap_used, clippy::panic)]

use storage_core::{Error, SqlEngine, SqlResult, SqlValue};
use storage_duckdb::{DuckDbConfig, DuckDbStore};
use storage_sqlite::{SqliteConfig, SqliteStore};

/// One step: a statement, its parameters, and whether it must fail.
struct Step {
    sql: &'static str,
    params: Vec<SqlValue>,
    fails: bool,
}

fn ok(sql: &'static str, params: Vec<SqlValue>) -> Step {
    Step {
        sql,
        params,
        fails: false,
    }
}

fn fails(sql: &'static str) -> Step {
    Step {
        sql,
        params: Vec::new(),
        fails: true,
    }
}

fn int(i: i64) -> SqlValue {
    SqlValue::Integer(i)
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.into())
}

fn script() -> Vec<Step> {
    let mut steps = vec![ok(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, grp TEXT NOT NULL, n INTEGER, x DOUBLE, b BLOB)",
        vec![],
    )];
    let rows: [(i64, &str, Option<i64>, Option<f64>); 8] = [
        (1, "a", Some(10), Some(1.5)),
        (2, "a", Some(5), None),
        (3, "b", None, Some(-2.25)),
        (4, "b", Some(7), Some(0.5)),
        (5, "c", Some(-3), Some(4.0)),
        (6, "c", None, None),
        (7, "a", Some(10), Some(1.5)),
        (8, "d", Some(0), Some(0.0)),
    ];
    for (id, grp, n, x) in rows {
        steps.push(ok(
            "INSERT INTO t (id, grp, n, x, b) VALUES (?, ?, ?, ?, ?)",
            vec![
                int(id),
                text(grp),
                n.map_or(SqlValue::Null, SqlValue::Integer),
                x.map_or(SqlValue::Null, SqlValue::Float),
                SqlValue::Blob(vec![id as u8, 0, 255].into()),
            ],
        ));
    }
    steps.extend([
        ok("SELECT id, grp, n, x, b FROM t ORDER BY id", vec![]),
        ok(
            "SELECT id FROM t WHERE n > ? AND grp <> ? ORDER BY id DESC",
            vec![int(4), text("c")],
        ),
        ok("SELECT id FROM t WHERE n IS NULL ORDER BY id", vec![]),
        ok("SELECT id FROM t WHERE n IS NOT NULL AND x IS NULL", vec![]),
        // NULL compares as unknown: neither = nor <> selects it.
        ok("SELECT COUNT(*) AS c FROM t WHERE n = NULL OR n <> NULL", vec![]),
        ok(
            "SELECT id, n FROM t ORDER BY n NULLS FIRST, id LIMIT 4",
            vec![],
        ),
        ok(
            "SELECT id, n FROM t ORDER BY n DESC NULLS LAST, id DESC LIMIT 3 OFFSET 2",
            vec![],
        ),
        ok(
            "SELECT grp, COUNT(*) AS rows_, COUNT(n) AS ns, SUM(n) AS total, MIN(n) AS lo, \
             MAX(n) AS hi FROM t GROUP BY grp ORDER BY grp",
            vec![],
        ),
        ok(
            "SELECT grp, SUM(x) AS sx, AVG(n) AS mean FROM t GROUP BY grp \
             HAVING COUNT(n) >= ? ORDER BY grp",
            vec![int(1)],
        ),
        ok(
            "SELECT COUNT(DISTINCT n) AS d, SUM(n) AS s, MIN(grp) AS g FROM t",
            vec![],
        ),
        // Aggregates over no rows: COUNT is 0, the rest NULL.
        ok(
            "SELECT COUNT(*) AS c, SUM(n) AS s, MAX(x) AS m FROM t WHERE id > ?",
            vec![int(100)],
        ),
        ok(
            "SELECT id, COALESCE(n, -1) AS n, CASE WHEN x IS NULL THEN 'none' ELSE 'some' END AS k \
             FROM t WHERE id BETWEEN ? AND ? ORDER BY id",
            vec![int(2), int(6)],
        ),
        ok(
            "SELECT grp || '-' || CAST(id AS TEXT) AS label FROM t WHERE id IN (?, ?, ?) ORDER BY id",
            vec![int(1), int(3), int(8)],
        ),
        ok("SELECT id, n * 2 + 1 AS m FROM t WHERE n >= 0 ORDER BY id", vec![]),
        ok("SELECT DISTINCT grp FROM t ORDER BY grp DESC", vec![]),
        ok(
            "UPDATE t SET n = n + ?, x = NULL WHERE grp = ?",
            vec![int(1), text("a")],
        ),
        ok("SELECT id, n, x FROM t WHERE grp = 'a' ORDER BY id", vec![]),
        ok("UPDATE t SET grp = 'z' WHERE id > 100", vec![]),
        ok("DELETE FROM t WHERE n IS NULL", vec![]),
        ok("SELECT SUM(n) AS s, COUNT(*) AS c FROM t", vec![]),
        // A join and a subquery.
        ok("CREATE TABLE g (grp TEXT PRIMARY KEY, label TEXT)", vec![]),
        ok(
            "INSERT INTO g (grp, label) VALUES (?, ?), (?, ?)",
            vec![text("a"), text("Alpha"), text("b"), text("Beta")],
        ),
        ok(
            "SELECT t.id, g.label FROM t JOIN g ON g.grp = t.grp ORDER BY t.id",
            vec![],
        ),
        ok(
            "SELECT id FROM t WHERE grp IN (SELECT grp FROM g) ORDER BY id",
            vec![],
        ),
        // Failing statements leave both databases as they were.
        fails("SELEKT nonsense"),
        fails("SELECT * FROM no_such_table"),
        fails("SELECT no_such_column FROM t"),
        fails("INSERT INTO t (id, grp) VALUES (100, 'q'), (1, 'dup')"),
        fails("INSERT INTO t (id, grp) VALUES (101, NULL)"),
        ok("SELECT COUNT(*) AS c, MAX(id) AS m FROM t", vec![]),
        // More DDL: none of it has a result set on either engine.
        ok("ALTER TABLE t ADD COLUMN extra TEXT", vec![]),
        ok("SELECT COUNT(extra) AS c, COUNT(*) AS n FROM t", vec![]),
        ok("CREATE INDEX t_grp ON t (grp)", vec![]),
        ok(
            "CREATE VIEW positive AS SELECT id, grp FROM t WHERE n > 0",
            vec![],
        ),
        ok("SELECT id, grp FROM positive ORDER BY id", vec![]),
        ok("DROP VIEW positive", vec![]),
        ok("DROP INDEX t_grp", vec![]),
        ok("DROP TABLE g", vec![]),
        fails("SELECT * FROM g"),
    ]);
    steps
}

/// Results the two engines must agree on: column names, rows, count.
fn comparable(r: &SqlResult) -> (Vec<String>, &Vec<Vec<SqlValue>>, u64) {
    (
        r.columns.iter().map(|c| c.name.clone()).collect(),
        &r.rows,
        r.rows_affected,
    )
}

fn kind(e: &Error) -> std::mem::Discriminant<Error> {
    std::mem::discriminant(e)
}

#[tokio::test]
async fn the_portable_subset_gives_identical_results_on_sqlite_and_duckdb() {
    let sqlite = SqliteStore::open(SqliteConfig::memory()).await.unwrap();
    let duckdb = DuckDbStore::open(DuckDbConfig::memory()).await.unwrap();
    for (i, step) in script().iter().enumerate() {
        let a = sqlite.execute(step.sql, &step.params).await;
        let b = duckdb.execute(step.sql, &step.params).await;
        match (&a, &b) {
            (Ok(a), Ok(b)) if !step.fails => assert_eq!(
                comparable(a),
                comparable(b),
                "step {i}: {} — SQLite (left) and DuckDB (right) differ",
                step.sql
            ),
            (Err(ea), Err(eb)) if step.fails => assert_eq!(
                kind(ea),
                kind(eb),
                "step {i}: {} — different error kinds: SQLite {ea:?}, DuckDB {eb:?}",
                step.sql
            ),
            _ => panic!(
                "step {i}: {} — expected {} on both, got SQLite {a:?}, DuckDB {b:?}",
                step.sql,
                if step.fails { "an error" } else { "success" }
            ),
        }
    }
}
