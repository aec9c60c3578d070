//! The type round-trip table of the crate docs, checked: for each DuckDB
//! type, a value written with SQL is read back as the documented
//! `SqlValue` with the documented type name; the text forms equal
//! DuckDB's own `CAST(x AS VARCHAR)`; a value stored in a table of that
//! type reads back the same; and the read value, bound back as a
//! parameter and cast to the type, is the same value again (lossless).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use bytes::Bytes;
use storage_core::{ManualClock, SqlEngine, SqlValue};
use storage_duckdb::{DuckDbConfig, DuckDbStore};

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_owned())
}

/// How the read value relates to DuckDB's own text of it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Canonical {
    /// The value is `Text` equal to `CAST(x AS VARCHAR)`.
    Text,
    /// Not text (or JSON, which DuckDB prints differently).
    No,
}

/// Whether binding the read value back as `CAST(? AS type)` gives the
/// same value (DuckDB cannot cast JSON text to MAP or UNION).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rebind {
    Yes,
    No,
}

struct Row {
    ty: &'static str,
    literal: &'static str,
    value: SqlValue,
    type_name: &'static str,
    canonical: Canonical,
    rebind: Rebind,
}

fn row(
    ty: &'static str,
    literal: &'static str,
    value: SqlValue,
    type_name: &'static str,
    canonical: Canonical,
    rebind: Rebind,
) -> Row {
    Row {
        ty,
        literal,
        value,
        type_name,
        canonical,
        rebind,
    }
}

/// The table of the crate docs (and a few more edge values).
fn table() -> Vec<Row> {
    use Canonical as C;
    use Rebind as R;
    vec![
        row(
            "BOOLEAN",
            "true",
            SqlValue::Bool(true),
            "BOOLEAN",
            C::No,
            R::Yes,
        ),
        row(
            "TINYINT",
            "-128",
            SqlValue::Integer(-128),
            "TINYINT",
            C::No,
            R::Yes,
        ),
        row(
            "SMALLINT",
            "-42",
            SqlValue::Integer(-42),
            "SMALLINT",
            C::No,
            R::Yes,
        ),
        row(
            "INTEGER",
            "2147483647",
            SqlValue::Integer(2_147_483_647),
            "INTEGER",
            C::No,
            R::Yes,
        ),
        row(
            "BIGINT",
            "-9223372036854775808",
            SqlValue::Integer(i64::MIN),
            "BIGINT",
            C::No,
            R::Yes,
        ),
        row(
            "UTINYINT",
            "255",
            SqlValue::Integer(255),
            "UTINYINT",
            C::No,
            R::Yes,
        ),
        row(
            "UINTEGER",
            "4294967295",
            SqlValue::Integer(4_294_967_295),
            "UINTEGER",
            C::No,
            R::Yes,
        ),
        row(
            "UBIGINT",
            "18446744073709551615",
            text("18446744073709551615"),
            "UBIGINT",
            C::Text,
            R::Yes,
        ),
        row(
            "UBIGINT",
            "7",
            SqlValue::Integer(7),
            "UBIGINT",
            C::No,
            R::Yes,
        ),
        row(
            "HUGEINT",
            "170141183460469231731687303715884105727",
            text("170141183460469231731687303715884105727"),
            "HUGEINT",
            C::Text,
            R::Yes,
        ),
        row(
            "HUGEINT",
            "-170141183460469231731687303715884105727",
            text("-170141183460469231731687303715884105727"),
            "HUGEINT",
            C::Text,
            R::Yes,
        ),
        row(
            "HUGEINT",
            "24",
            SqlValue::Integer(24),
            "HUGEINT",
            C::No,
            R::Yes,
        ),
        row(
            "UHUGEINT",
            "340282366920938463463374607431768211455",
            text("340282366920938463463374607431768211455"),
            "UHUGEINT",
            C::Text,
            R::Yes,
        ),
        row(
            "UHUGEINT",
            "18446744073709551616",
            text("18446744073709551616"),
            "UHUGEINT",
            C::Text,
            R::Yes,
        ),
        row(
            "UHUGEINT",
            "5",
            SqlValue::Integer(5),
            "UHUGEINT",
            C::No,
            R::Yes,
        ),
        row(
            "UHUGEINT[]",
            "['340282366920938463463374607431768211455', '1']",
            text("[340282366920938463463374607431768211455,1]"),
            "UHUGEINT[]",
            C::No,
            R::Yes,
        ),
        row(
            "DOUBLE",
            "0.5",
            SqlValue::Float(0.5),
            "DOUBLE",
            C::No,
            R::Yes,
        ),
        row(
            "DOUBLE",
            "'-inf'",
            SqlValue::Float(f64::NEG_INFINITY),
            "DOUBLE",
            C::No,
            R::Yes,
        ),
        row(
            "FLOAT",
            "0.1",
            SqlValue::Float(f64::from(0.1f32)),
            "FLOAT",
            C::No,
            R::Yes,
        ),
        row(
            "DECIMAL(10,2)",
            "12.5",
            text("12.50"),
            "DECIMAL(10,2)",
            C::Text,
            R::Yes,
        ),
        row(
            "DECIMAL(4,3)",
            "-0.005",
            text("-0.005"),
            "DECIMAL(4,3)",
            C::Text,
            R::Yes,
        ),
        row(
            "DECIMAL(38,10)",
            "1234567890123456789012345678.0123456789",
            text("1234567890123456789012345678.0123456789"),
            "DECIMAL(38,10)",
            C::Text,
            R::Yes,
        ),
        row(
            "VARCHAR",
            "'h\u{e9}llo, ''world'''",
            text("h\u{e9}llo, 'world'"),
            "VARCHAR",
            C::Text,
            R::Yes,
        ),
        row("VARCHAR", "''", text(""), "VARCHAR", C::Text, R::Yes),
        row(
            "BLOB",
            "'\\x00\\xFFab'",
            SqlValue::Blob(Bytes::from_static(b"\x00\xffab")),
            "BLOB",
            C::No,
            R::Yes,
        ),
        row(
            "BLOB",
            "''",
            SqlValue::Blob(Bytes::new()),
            "BLOB",
            C::No,
            R::Yes,
        ),
        row(
            "DATE",
            "'2024-02-29'",
            text("2024-02-29"),
            "DATE",
            C::Text,
            R::Yes,
        ),
        row(
            "DATE",
            "'0045-03-15 (BC)'",
            text("0045-03-15 (BC)"),
            "DATE",
            C::Text,
            R::Yes,
        ),
        row(
            "DATE",
            "'infinity'",
            text("infinity"),
            "DATE",
            C::Text,
            R::Yes,
        ),
        row(
            "TIME",
            "'23:59:59.25'",
            text("23:59:59.25"),
            "TIME",
            C::Text,
            R::Yes,
        ),
        row(
            "TIMESTAMP",
            "'2024-01-02 03:04:05.123456'",
            text("2024-01-02 03:04:05.123456"),
            "TIMESTAMP",
            C::Text,
            R::Yes,
        ),
        row(
            "TIMESTAMP",
            "'1969-12-31 23:59:59.5'",
            text("1969-12-31 23:59:59.5"),
            "TIMESTAMP",
            C::Text,
            R::Yes,
        ),
        row(
            "TIMESTAMP",
            "'-infinity'",
            text("-infinity"),
            "TIMESTAMP",
            C::Text,
            R::Yes,
        ),
        row(
            "TIMESTAMP_NS",
            "'2024-01-02 03:04:05.123456789'",
            text("2024-01-02 03:04:05.123456789"),
            "TIMESTAMP_NS",
            C::Text,
            R::Yes,
        ),
        row(
            "TIMESTAMP_MS",
            "'2024-01-02 03:04:05.123'",
            text("2024-01-02 03:04:05.123"),
            "TIMESTAMP_MS",
            C::Text,
            R::Yes,
        ),
        row(
            "TIMESTAMP_S",
            "'2024-01-02 03:04:05'",
            text("2024-01-02 03:04:05"),
            "TIMESTAMP_S",
            C::Text,
            R::Yes,
        ),
        row(
            "TIMESTAMPTZ",
            "'2024-01-02 03:04:05.5+02'",
            text("2024-01-02 01:04:05.5+00"),
            "TIMESTAMP WITH TIME ZONE",
            C::Text,
            R::Yes,
        ),
        row(
            "INTERVAL",
            "'1 year 2 months 3 days 04:05:06.789'",
            text("1 year 2 months 3 days 04:05:06.789"),
            "INTERVAL",
            C::Text,
            R::Yes,
        ),
        row(
            "INTERVAL",
            "'-1 day -00:00:01'",
            text("-1 day -00:00:01"),
            "INTERVAL",
            C::Text,
            R::Yes,
        ),
        row(
            "UUID",
            "'123e4567-e89b-12d3-a456-426614174000'",
            text("123e4567-e89b-12d3-a456-426614174000"),
            "UUID",
            C::Text,
            R::Yes,
        ),
        row("mood", "'sad'", text("sad"), "ENUM", C::Text, R::Yes),
        row(
            "INTEGER[]",
            "[1, NULL, 3]",
            text("[1,null,3]"),
            "INTEGER[]",
            C::No,
            R::Yes,
        ),
        row(
            "VARCHAR[]",
            "['a,b', '', 'x\"y', NULL]",
            text("[\"a,b\",\"\",\"x\\\"y\",null]"),
            "VARCHAR[]",
            C::No,
            R::Yes,
        ),
        row(
            "DECIMAL(10,2)[]",
            "[1.5, NULL]",
            text("[1.50,null]"),
            "DECIMAL(10,2)[]",
            C::No,
            R::Yes,
        ),
        row(
            "INTEGER[3]",
            "[1, 2, 3]",
            text("[1,2,3]"),
            "INTEGER[3]",
            C::No,
            R::Yes,
        ),
        row(
            "STRUCT(a INTEGER, b VARCHAR)",
            "{'a': 1, 'b': 'x'}",
            text("{\"a\":1,\"b\":\"x\"}"),
            "STRUCT(a INTEGER, b VARCHAR)",
            C::No,
            R::Yes,
        ),
        row(
            "STRUCT(d DATE, t TIMESTAMP[])",
            "{'d': DATE '2024-01-01', 't': [TIMESTAMP '2024-01-01 00:00:01']}",
            text("{\"d\":\"2024-01-01\",\"t\":[\"2024-01-01 00:00:01\"]}"),
            "STRUCT(d DATE, t TIMESTAMP[])",
            C::No,
            R::Yes,
        ),
        row(
            "MAP(VARCHAR, DECIMAL(3,1))",
            "MAP {'k': 1.5, 'z': NULL}",
            text("{\"k\":1.5,\"z\":null}"),
            "MAP(VARCHAR, DECIMAL(3,1))",
            C::No,
            R::No,
        ),
        row(
            "MAP(INTEGER, VARCHAR)",
            "MAP {1: 'one'}",
            text("{\"1\":\"one\"}"),
            "MAP(INTEGER, VARCHAR)",
            C::No,
            R::No,
        ),
        row(
            "UNION(n INTEGER, s VARCHAR)",
            "union_value(n := 3)",
            text("3"),
            "UNION(n INTEGER, s VARCHAR)",
            C::No,
            R::No,
        ),
        row("BIT", "'10101'", text("10101"), "BIT", C::Text, R::Yes),
        row("INTEGER", "NULL", SqlValue::Null, "INTEGER", C::No, R::Yes),
    ]
}

fn same(a: &SqlValue, b: &SqlValue) -> bool {
    match (a, b) {
        (SqlValue::Float(x), SqlValue::Float(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

async fn store() -> DuckDbStore {
    let store =
        DuckDbStore::open_with_clock(DuckDbConfig::memory(), Arc::new(ManualClock::default()))
            .await
            .unwrap();
    store
        .execute_batch("CREATE TYPE mood AS ENUM ('happy', 'sad')")
        .await
        .unwrap();
    store
}

fn one(r: &storage_core::SqlResult) -> &[SqlValue] {
    match r.rows.as_slice() {
        [row] => row,
        other => panic!("expected one row, got {other:?}"),
    }
}

#[tokio::test]
async fn every_documented_type_round_trips_as_documented() {
    let store = store().await;
    let mut failures = Vec::new();
    for (i, row) in table().iter().enumerate() {
        let (ty, lit) = (row.ty, row.literal);
        let what = format!("{ty} {lit}");

        // 1. A literal of the type, and DuckDB's own text of it.
        let r = store
            .execute(
                &format!(
                    "SELECT CAST({lit} AS {ty}) AS v, CAST(CAST({lit} AS {ty}) AS VARCHAR) AS t"
                ),
                &[],
            )
            .await;
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{what}: select failed: {e}"));
                continue;
            }
        };
        let got = one(&r);
        if !same(&got[0], &row.value) {
            failures.push(format!(
                "{what}: read {:?}, documented {:?}",
                got[0], row.value
            ));
        }
        if r.columns[0].type_name != row.type_name {
            failures.push(format!(
                "{what}: type name {:?}, documented {:?}",
                r.columns[0].type_name, row.type_name
            ));
        }
        if row.canonical == Canonical::Text && got[0] != got[1] {
            failures.push(format!(
                "{what}: text {:?} is not DuckDB's own {:?}",
                got[0], got[1]
            ));
        }

        // 2. Stored in a table column of the type and read back.
        let table = format!("t{i}");
        let stored = async {
            store
                .execute_batch(&format!(
                    "CREATE TABLE {table} (id INTEGER, v {ty}); INSERT INTO {table} VALUES (1, {lit})"
                ))
                .await?;
            store
                .execute(&format!("SELECT v FROM {table}"), &[])
                .await
        }
        .await;
        match stored {
            Ok(r) if same(&one(&r)[0], &row.value) => {}
            Ok(r) => failures.push(format!("{what}: stored, read back {:?}", one(&r)[0])),
            Err(e) => failures.push(format!("{what}: table round trip failed: {e}")),
        }

        // 3. The read value bound back as a parameter gives the same value.
        if row.rebind == Rebind::Yes {
            let r = store
                .execute(
                    &format!("INSERT INTO {table} VALUES (2, CAST(? AS {ty})) RETURNING v"),
                    std::slice::from_ref(&row.value),
                )
                .await;
            match r {
                Ok(r) if same(&one(&r)[0], &row.value) => {}
                Ok(r) => failures.push(format!("{what}: rebound, read back {:?}", one(&r)[0])),
                Err(e) => failures.push(format!("{what}: rebinding failed: {e}")),
            }
            let r = store
                .execute(
                    &format!("SELECT COUNT(DISTINCT v) = 1 OR COUNT(v) = 0 FROM {table}"),
                    &[],
                )
                .await;
            match r {
                Ok(r) if one(&r)[0] == SqlValue::Bool(true) => {}
                other => failures.push(format!(
                    "{what}: stored and rebound values differ: {other:?}"
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn parameters_bind_as_the_documented_types() {
    let store = store().await;
    let r = store
        .execute(
            "SELECT typeof(?), typeof(?), typeof(?), typeof(?), typeof(?), typeof(?)",
            &[
                SqlValue::Null,
                SqlValue::Bool(true),
                SqlValue::Integer(1),
                SqlValue::Float(1.5),
                SqlValue::Text("x".into()),
                SqlValue::Blob(Bytes::from_static(b"x")),
            ],
        )
        .await
        .unwrap();
    let names: Vec<SqlValue> = ["\"NULL\"", "BOOLEAN", "BIGINT", "DOUBLE", "VARCHAR", "BLOB"]
        .iter()
        .map(|s| text(s))
        .collect();
    // DuckDB names an untyped NULL parameter's type "NULL" or "INTEGER"
    // depending on the version; the others are fixed.
    assert_eq!(one(&r)[1..], names[1..]);
    let values = vec![
        SqlValue::Null,
        SqlValue::Bool(false),
        SqlValue::Integer(i64::MAX),
        SqlValue::Float(-1.5e300),
        SqlValue::Text("h\u{e9}llo \u{1f30d}".into()),
        SqlValue::Text(String::new()),
        SqlValue::Blob(Bytes::from_static(b"\x00\xff\x80")),
        SqlValue::Blob(Bytes::new()),
    ];
    let placeholders = vec!["?"; values.len()].join(", ");
    let r = store
        .execute(&format!("SELECT {placeholders}"), &values)
        .await
        .unwrap();
    assert_eq!(r.rows, vec![values]);
}

#[tokio::test]
async fn zero_row_results_still_name_and_type_their_columns() {
    let store = store().await;
    store
        .execute_batch("CREATE TABLE z (a DECIMAL(5,1), b TIMESTAMPTZ, c VARCHAR[])")
        .await
        .unwrap();
    let r = store.execute("SELECT a, b, c FROM z", &[]).await.unwrap();
    assert!(r.rows.is_empty());
    let cols: Vec<(&str, &str)> = r
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.type_name.as_str()))
        .collect();
    assert_eq!(
        cols,
        vec![
            ("a", "DECIMAL(5,1)"),
            ("b", "TIMESTAMP WITH TIME ZONE"),
            ("c", "VARCHAR[]")
        ]
    );
}
