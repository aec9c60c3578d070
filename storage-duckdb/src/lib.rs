//! # storage-duckdb
//!
//! DuckDB as a backend of the storage family: real SQL for emulated query
//! services (Athena, Redshift Data, ...) over **one catalogue shared by
//! every clone** of the store, plus KV, CAS, conditional transactions and
//! TTL on tables of the same database, so an emulator whose engine is
//! DuckDB keeps its metadata next to its tables. No queue tier (every
//! queue method is `Unsupported`).
//!
//! - **Opening**: [`DuckDbStore::open`] with [`DuckDbConfig::file`] (a
//!   database file, created if absent; catalogue and data survive a
//!   reopen; the KV schema is migrated on open — see [`schema`]) or
//!   [`DuckDbConfig::memory`] (`:memory:`).
//! - **Sharing**: clone the store; every clone uses the same database, so
//!   `CREATE TABLE` through one is visible through all. DuckDB's
//!   connection is not `Sync`; the store owns its connections behind
//!   mutexes and runs every call on tokio's blocking pool, never on a
//!   runtime worker (see `backend.rs` for the measured choice between one
//!   guarded connection and a pool).
//! - **SQL** ([`SqlEngine`](storage_core::SqlEngine)): bound parameters,
//!   column names and DuckDB type names, the value mapping below,
//!   statement-level atomicity, all-or-nothing `execute_batch`, and
//!   explicit transactions with [`DuckDbStore::begin`].
//! - **Snapshots**: the portable KV snapshot of `storage_core::snapshot`
//!   works through the KV tier like on every backend;
//!   [`DuckDbStore::export_database`] / [`DuckDbStore::import_database`]
//!   copy the whole database (SQL and KV) losslessly.
//! - **Build features**: `bundled` (default) compiles DuckDB into the
//!   crate — no system library, but a clean debug build of the C++ takes
//!   about 18 minutes on an idle 2-core machine (47 minutes measured here
//!   while other builds shared the cores), so build it once per CI run:
//!   one target directory for every step and the same package selection
//!   for `clippy` and `test`, because `libduckdb-sys`'s build script is
//!   rebuilt — and the C++ recompiled — whenever the selected packages
//!   change the features of its build dependencies. `system`
//!   (`--no-default-features --features system`) links a prebuilt DuckDB
//!   1.4.x instead: `DUCKDB_LIB_DIR` names the directory holding
//!   `libduckdb.so` / `.dylib` / `duckdb.dll` and `DUCKDB_INCLUDE_DIR` the
//!   one holding `duckdb.h` (pkg-config is asked otherwise). That link is
//!   **dynamic**, so the binary needs the shared library **at run time**
//!   too: install it where the loader looks (`/usr/local/lib` +
//!   `ldconfig`), set `LD_LIBRARY_PATH`, or bake an rpath in
//!   (`RUSTFLAGS="-C link-args=-Wl,-rpath,$DUCKDB_LIB_DIR"`);
//!   `DYLD_LIBRARY_PATH` on macOS, `PATH` on Windows. Otherwise the program
//!   builds and then fails at start with "libduckdb.so: cannot open shared
//!   object file". (`DUCKDB_STATIC=1` links `libduckdb_static.a` from
//!   `DUCKDB_LIB_DIR` statically instead.) CI builds this way against
//!   DuckDB's own `libduckdb.so` 1.4.5 (shipped in the npm package
//!   `@duckdb/node-bindings-linux-x64`) and runs every test of this crate.
//!
//! # Type mapping
//!
//! Values read from DuckDB become [`SqlValue`](storage_core::SqlValue)s as
//! follows; every text form is DuckDB's own canonical text (what `CAST(x
//! AS VARCHAR)` prints, checked against DuckDB by `tests/types.rs`), so it
//! binds back losslessly as a parameter (`CAST(? AS DATE)`, an INTERVAL
//! column, ...). Each row is a round trip that `tests/types.rs` performs:
//!
//! | DuckDB type | written (SQL) | read back |
//! |---|---|---|
//! | BOOLEAN | `true` | `Bool(true)` |
//! | TINYINT … BIGINT, UTINYINT … UINTEGER | `-42::SMALLINT` | `Integer(-42)` |
//! | UBIGINT, HUGEINT, UHUGEINT | `170141183460469231731687303715884105727::HUGEINT` | `Text("170141183460469231731687303715884105727")`; `Integer` when it fits in `i64` (`SUM(x)` → `Integer(24)`) |
//! | FLOAT, DOUBLE | `0.5::DOUBLE`, `'nan'::DOUBLE` | `Float(0.5)`, `Float(NaN)` (FLOAT widened exactly) |
//! | DECIMAL(p,s) | `12.5::DECIMAL(10,2)` | `Text("12.50")` — exactly `s` fractional digits |
//! | VARCHAR | `'héllo'` | `Text("héllo")` |
//! | BLOB | `'\x00\xFF'::BLOB` | `Blob([0x00, 0xFF])` |
//! | DATE | `DATE '2024-02-29'` | `Text("2024-02-29")`; BC dates `"0045-03-15 (BC)"`; `"infinity"` |
//! | TIME | `TIME '23:59:59.25'` | `Text("23:59:59.25")` |
//! | TIMESTAMP (and `_S`, `_MS`, `_NS`) | `TIMESTAMP '2024-01-02 03:04:05.123456'` | `Text("2024-01-02 03:04:05.123456")` (nanoseconds kept for `_NS`) |
//! | TIMESTAMP WITH TIME ZONE | `TIMESTAMPTZ '2024-01-02 03:04:05+02'` | `Text("2024-01-02 01:04:05+00")` — the instant, in UTC |
//! | INTERVAL | `INTERVAL '1 year 2 months 3 days 04:05:06.789'` | `Text("1 year 2 months 3 days 04:05:06.789")` |
//! | UUID | `'123e4567-e89b-12d3-a456-426614174000'::UUID` | `Text("123e4567-e89b-12d3-a456-426614174000")` |
//! | ENUM (named `ENUM`) | `'sad'::mood` | `Text("sad")` |
//! | LIST / ARRAY | `[1, NULL, 3]` | `Text("[1,null,3]")` (JSON) |
//! | STRUCT | `{'a': 1, 'b': 'x'}` | `Text("{\"a\":1,\"b\":\"x\"}")` (JSON, fields in order) |
//! | MAP | `MAP {'k': 1.5::DECIMAL(3,1)}` | `Text("{\"k\":1.5}")` (JSON object keyed by each key's text) |
//! | UNION | `union_value(n := 3)` | the active member, mapped as above |
//! | BIT | `'101'::BIT` | `Text("101")` |
//! | NULL of any type | `NULL` | `Null` |
//!
//! Inside JSON, numbers of every width and decimals are exact JSON number
//! tokens, NaN and infinities the strings `"nan"` / `"inf"` / `"-inf"`, and
//! BLOBs, dates, times and intervals strings of their canonical text.
//! Parameters bind `Null` as NULL, `Bool` as BOOLEAN, `Integer` as BIGINT,
//! `Float` as DOUBLE, `Text` as VARCHAR and `Blob` as BLOB; DuckDB casts
//! each to the type its position needs.
//!
//! `SqlColumn::type_name` is DuckDB's name of the result type
//! (`DECIMAL(10,2)`, `TIMESTAMP WITH TIME ZONE`, `INTEGER[]`, `STRUCT(a
//! INTEGER, b VARCHAR)`, `MAP(VARCHAR, INTEGER)`); see `sql.rs` for how the
//! dialect differs from SQLite's.

mod atomic;
mod backend;
mod backup;
mod config;
mod error;
mod kv;
mod queue;
pub mod schema;
mod sql;
mod value;

pub use backend::DuckDbStore;
pub use backup::EXPORT_FILE;
pub use config::{DuckDbConfig, Location, CAPABILITIES};
pub use sql::SqlTransaction;
