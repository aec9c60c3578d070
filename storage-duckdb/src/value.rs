//! How DuckDB values become [`SqlValue`]s, and how DuckDB types are named.
//!
//! Results are read through DuckDB's Arrow interface and converted here,
//! column by column, by this crate's own code: every DuckDB type has a
//! documented mapping (the table in the crate docs), nothing is lossy, and
//! nothing panics on an unexpected value (the `duckdb` crate's own row
//! accessors panic on, for example, a DECIMAL wider than 28 digits).
//!
//! The text forms are DuckDB's own canonical text — what `CAST(x AS
//! VARCHAR)` prints — so every one of them casts back to the same value
//! (`CAST(? AS DATE)`, `?::INTERVAL`, ...). Nested values (LIST, ARRAY,
//! STRUCT, MAP, UNION) become JSON text: numbers (integers of any width,
//! decimals with their scale) as exact JSON number tokens, NaN and
//! infinities as the strings `"nan"`, `"inf"` and `"-inf"`, BLOBs, dates,
//! times and intervals as JSON strings of their canonical text, MAPs as
//! objects keyed by the canonical text of each key.

use std::fmt::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use duckdb::arrow::array::{
    Array, ArrayRef, AsArray, BinaryArray, BooleanArray, Date32Array, Date64Array, Decimal128Array,
    FixedSizeBinaryArray, FixedSizeListArray, Float32Array, Float64Array, Int16Array, Int32Array,
    Int64Array, Int8Array, IntervalDayTimeArray, IntervalMonthDayNanoArray, IntervalYearMonthArray,
    LargeBinaryArray, LargeListArray, LargeStringArray, ListArray, MapArray, StringArray,
    StructArray, Time32MillisecondArray, Time32SecondArray, Time64MicrosecondArray,
    Time64NanosecondArray, TimestampMicrosecondArray, TimestampMillisecondArray,
    TimestampNanosecondArray, TimestampSecondArray, UInt16Array, UInt32Array, UInt64Array,
    UInt8Array, UnionArray,
};
use duckdb::arrow::datatypes::{
    DataType, IntervalUnit, TimeUnit, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use duckdb::arrow::util::display::{ArrayFormatter, FormatOptions};
use duckdb::core::{LogicalTypeHandle, LogicalTypeId};
use storage_core::SqlValue;

/// What the DuckDB type of a top-level column adds to its Arrow type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hint {
    /// Nothing: the Arrow type says it all.
    Plain,
    /// HUGEINT / UHUGEINT (Arrow: a 38-digit decimal of scale 0).
    HugeInt,
    /// BIT (Arrow: DuckDB's internal bytes).
    Bit,
    /// UUID (Arrow: text, or 16 bytes).
    Uuid,
}

impl Hint {
    /// The hint for a column of this DuckDB type.
    pub(crate) fn of(logical: &LogicalTypeHandle) -> Hint {
        match logical.id() {
            LogicalTypeId::Hugeint | LogicalTypeId::UHugeint => Hint::HugeInt,
            LogicalTypeId::Bit => Hint::Bit,
            LogicalTypeId::Uuid => Hint::Uuid,
            _ => Hint::Plain,
        }
    }
}

/// Downcasts an Arrow array to its concrete type, or gives up on the
/// value with the generic formatter (never a panic).
macro_rules! downcast {
    ($array:expr, $ty:ty) => {
        match $array.as_any().downcast_ref::<$ty>() {
            Some(a) => a,
            None => return None,
        }
    };
}

/// The value at `row` of a top-level result column.
pub(crate) fn to_sql_value(array: &dyn Array, row: usize, hint: Hint) -> SqlValue {
    if row >= array.len() || array.is_null(row) {
        return SqlValue::Null;
    }
    scalar(array, row, hint).unwrap_or_else(|| fallback(array, row))
}

/// An integer that may not fit `i64`: `Integer` when it does, its decimal
/// digits as `Text` otherwise.
fn wide_integer(v: i128) -> SqlValue {
    match i64::try_from(v) {
        Ok(i) => SqlValue::Integer(i),
        Err(_) => SqlValue::Text(v.to_string()),
    }
}

fn scalar(array: &dyn Array, row: usize, hint: Hint) -> Option<SqlValue> {
    let v = match array.data_type() {
        DataType::Null => SqlValue::Null,
        DataType::Boolean => SqlValue::Bool(downcast!(array, BooleanArray).value(row)),
        DataType::Int8 => SqlValue::Integer(downcast!(array, Int8Array).value(row).into()),
        DataType::Int16 => SqlValue::Integer(downcast!(array, Int16Array).value(row).into()),
        DataType::Int32 => SqlValue::Integer(downcast!(array, Int32Array).value(row).into()),
        DataType::Int64 => SqlValue::Integer(downcast!(array, Int64Array).value(row)),
        DataType::UInt8 => SqlValue::Integer(downcast!(array, UInt8Array).value(row).into()),
        DataType::UInt16 => SqlValue::Integer(downcast!(array, UInt16Array).value(row).into()),
        DataType::UInt32 => SqlValue::Integer(downcast!(array, UInt32Array).value(row).into()),
        DataType::UInt64 => wide_integer(downcast!(array, UInt64Array).value(row).into()),
        DataType::Float32 => SqlValue::Float(downcast!(array, Float32Array).value(row).into()),
        DataType::Float64 => SqlValue::Float(downcast!(array, Float64Array).value(row)),
        DataType::Decimal128(_, scale) => {
            let v = downcast!(array, Decimal128Array).value(row);
            if hint == Hint::HugeInt && *scale == 0 {
                wide_integer(v)
            } else {
                SqlValue::Text(decimal_text(v, *scale))
            }
        }
        DataType::Binary | DataType::LargeBinary => {
            let bytes = binary(array, row)?;
            if hint == Hint::Bit {
                SqlValue::Text(bit_text(bytes))
            } else {
                SqlValue::Blob(Bytes::copy_from_slice(bytes))
            }
        }
        DataType::FixedSizeBinary(16) if hint == Hint::Uuid => {
            SqlValue::Text(uuid_text(downcast!(array, FixedSizeBinaryArray).value(row)))
        }
        DataType::FixedSizeBinary(16) => {
            // DuckDB exports UHUGEINT as 16 little-endian bytes.
            let v = uhugeint(downcast!(array, FixedSizeBinaryArray).value(row))?;
            match i64::try_from(v) {
                Ok(i) => SqlValue::Integer(i),
                Err(_) => SqlValue::Text(v.to_string()),
            }
        }
        DataType::FixedSizeBinary(_) => SqlValue::Blob(Bytes::copy_from_slice(
            downcast!(array, FixedSizeBinaryArray).value(row),
        )),
        DataType::Dictionary(..) => {
            let (values, index) = dictionary_entry(array, row)?;
            return Some(to_sql_value(values.as_ref(), index, hint));
        }
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::FixedSizeList(..)
        | DataType::Struct(_)
        | DataType::Map(..)
        | DataType::Union(..) => {
            let mut out = String::new();
            json(&mut out, array, row);
            SqlValue::Text(out)
        }
        _ => SqlValue::Text(text(array, row)?),
    };
    Some(v)
}

/// A UHUGEINT from DuckDB's 16 little-endian bytes.
fn uhugeint(bytes: &[u8]) -> Option<u128> {
    Some(u128::from_le_bytes(bytes.try_into().ok()?))
}

/// The generic Arrow rendering, for a type this module does not know.
fn fallback(array: &dyn Array, row: usize) -> SqlValue {
    let options = FormatOptions::default();
    match ArrayFormatter::try_new(array, &options) {
        Ok(f) => SqlValue::Text(f.value(row).to_string()),
        Err(e) => SqlValue::Text(format!("<unrepresentable value: {e}>")),
    }
}

fn binary(array: &dyn Array, row: usize) -> Option<&[u8]> {
    match array.data_type() {
        DataType::Binary => Some(downcast!(array, BinaryArray).value(row)),
        DataType::LargeBinary => Some(downcast!(array, LargeBinaryArray).value(row)),
        _ => None,
    }
}

/// The dictionary's value array and the index of `row`'s entry in it.
fn dictionary_entry(array: &dyn Array, row: usize) -> Option<(ArrayRef, usize)> {
    let dict = array.as_any_dictionary_opt()?;
    let keys = dict.keys();
    let index = if let Some(k) = keys.as_primitive_opt::<UInt8Type>() {
        usize::from(k.value(row))
    } else if let Some(k) = keys.as_primitive_opt::<UInt16Type>() {
        usize::from(k.value(row))
    } else if let Some(k) = keys.as_primitive_opt::<UInt32Type>() {
        usize::try_from(k.value(row)).ok()?
    } else if let Some(k) = keys.as_primitive_opt::<UInt64Type>() {
        usize::try_from(k.value(row)).ok()?
    } else {
        return None;
    };
    let values = Arc::clone(dict.values());
    (index < values.len()).then_some((values, index))
}

/// The canonical text of a non-nested value that has no numeric or byte
/// representation of its own (strings, dates, times, intervals).
fn text(array: &dyn Array, row: usize) -> Option<String> {
    let s = match array.data_type() {
        DataType::Utf8 => downcast!(array, StringArray).value(row).to_owned(),
        DataType::LargeUtf8 => downcast!(array, LargeStringArray).value(row).to_owned(),
        DataType::Utf8View => array.as_string_view_opt()?.value(row).to_owned(),
        DataType::Date32 => date_text(downcast!(array, Date32Array).value(row).into()),
        DataType::Date64 => {
            let ms = downcast!(array, Date64Array).value(row);
            date_text(ms.div_euclid(86_400_000))
        }
        DataType::Time32(TimeUnit::Second) => {
            time_text(i64::from(downcast!(array, Time32SecondArray).value(row)) * NANOS_PER_SEC)
        }
        DataType::Time32(TimeUnit::Millisecond) => {
            time_text(i64::from(downcast!(array, Time32MillisecondArray).value(row)) * 1_000_000)
        }
        DataType::Time64(TimeUnit::Microsecond) => {
            time_text(downcast!(array, Time64MicrosecondArray).value(row) * 1_000)
        }
        DataType::Time64(TimeUnit::Nanosecond) => {
            time_text(downcast!(array, Time64NanosecondArray).value(row))
        }
        DataType::Timestamp(unit, tz) => {
            let (v, per_sec) = match unit {
                TimeUnit::Second => (downcast!(array, TimestampSecondArray).value(row), 1),
                TimeUnit::Millisecond => (
                    downcast!(array, TimestampMillisecondArray).value(row),
                    1_000,
                ),
                TimeUnit::Microsecond => (
                    downcast!(array, TimestampMicrosecondArray).value(row),
                    1_000_000,
                ),
                TimeUnit::Nanosecond => (
                    downcast!(array, TimestampNanosecondArray).value(row),
                    1_000_000_000,
                ),
            };
            timestamp_text(v, per_sec, tz.is_some())
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let v = downcast!(array, IntervalMonthDayNanoArray).value(row);
            interval_text(v.months, v.days, v.nanoseconds / 1_000)
        }
        DataType::Interval(IntervalUnit::DayTime) => {
            let v = downcast!(array, IntervalDayTimeArray).value(row);
            interval_text(0, v.days, i64::from(v.milliseconds) * 1_000)
        }
        DataType::Interval(IntervalUnit::YearMonth) => {
            interval_text(downcast!(array, IntervalYearMonthArray).value(row), 0, 0)
        }
        _ => return None,
    };
    Some(s)
}

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// A decimal's digits with exactly `scale` fractional digits, as DuckDB
/// prints it (`12.50`, `-0.05`, `0.000`).
pub(crate) fn decimal_text(v: i128, scale: i8) -> String {
    let digits = v.unsigned_abs().to_string();
    let sign = if v < 0 { "-" } else { "" };
    let Ok(scale) = usize::try_from(scale) else {
        // A negative scale (never produced by DuckDB): append zeros.
        let zeros = usize::from(scale.unsigned_abs());
        return format!("{sign}{digits}{}", "0".repeat(zeros));
    };
    if scale == 0 {
        return format!("{sign}{digits}");
    }
    if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        format!("{sign}{int}.{frac}")
    } else {
        format!("{sign}0.{}{digits}", "0".repeat(scale - digits.len()))
    }
}

/// Civil date (proleptic Gregorian) of a day number (days since
/// 1970-01-01); Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// `YYYY-MM-DD`, years before 1 as `YYYY-MM-DD (BC)` (year 0 is 1 BC),
/// and DuckDB's infinities.
fn date_parts(days: i64) -> (String, bool) {
    let (year, month, day) = civil_from_days(days);
    if year <= 0 {
        (format!("{:04}-{month:02}-{day:02}", 1 - year), true)
    } else {
        (format!("{year:04}-{month:02}-{day:02}"), false)
    }
}

/// DuckDB's text of a DATE given as days since the epoch.
pub(crate) fn date_text(days: i64) -> String {
    if days == i64::from(i32::MAX) {
        return "infinity".to_owned();
    }
    if days == -i64::from(i32::MAX) {
        return "-infinity".to_owned();
    }
    let (date, bc) = date_parts(days);
    if bc {
        format!("{date} (BC)")
    } else {
        date
    }
}

/// Appends `.fffffffff` with trailing zeros removed (nothing for zero).
fn push_fraction(out: &mut String, nanos: i64) {
    if nanos == 0 {
        return;
    }
    let digits = format!("{nanos:09}");
    out.push('.');
    out.push_str(digits.trim_end_matches('0'));
}

/// `HH:MM:SS[.fraction]` of nanoseconds since midnight.
fn time_text(nanos: i64) -> String {
    let secs = nanos.div_euclid(NANOS_PER_SEC);
    let frac = nanos.rem_euclid(NANOS_PER_SEC);
    let mut out = format!(
        "{:02}:{:02}:{:02}",
        secs / 3_600,
        (secs / 60) % 60,
        secs % 60
    );
    push_fraction(&mut out, frac);
    out
}

/// DuckDB's text of a TIMESTAMP (or, with `utc`, a TIMESTAMP WITH TIME
/// ZONE rendered in UTC) given in units of `1 / per_sec` seconds.
fn timestamp_text(v: i64, per_sec: i64, utc: bool) -> String {
    if v == i64::MAX {
        return "infinity".to_owned();
    }
    if v == -i64::MAX {
        return "-infinity".to_owned();
    }
    let nanos = i128::from(v) * i128::from(NANOS_PER_SEC / per_sec.max(1));
    let per_day = 86_400 * i128::from(NANOS_PER_SEC);
    let days = i64::try_from(nanos.div_euclid(per_day)).unwrap_or(0);
    let of_day = i64::try_from(nanos.rem_euclid(per_day)).unwrap_or(0);
    let (date, bc) = date_parts(days);
    let mut out = date;
    if bc {
        out.push_str(" (BC)");
    }
    out.push(' ');
    out.push_str(&time_text(of_day));
    if utc {
        out.push_str("+00");
    }
    out
}

/// DuckDB's text of an INTERVAL: `1 year 2 months 3 days 04:05:06.789`,
/// each part with its own sign, `00:00:00` for zero.
pub(crate) fn interval_text(months: i32, days: i32, micros: i64) -> String {
    let mut out = String::new();
    let part = |n: i64, unit: &str, out: &mut String| {
        if n == 0 {
            return;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        let plural = if n == 1 || n == -1 { "" } else { "s" };
        let _ = write!(out, "{n} {unit}{plural}");
    };
    let years = months / 12;
    part(i64::from(years), "year", &mut out);
    part(i64::from(months - years * 12), "month", &mut out);
    part(i64::from(days), "day", &mut out);
    if micros != 0 {
        if !out.is_empty() {
            out.push(' ');
        }
        if micros < 0 {
            out.push('-');
        }
        let abs = micros.unsigned_abs();
        let (hours, rest) = (abs / 3_600_000_000, abs % 3_600_000_000);
        let (minutes, rest) = (rest / 60_000_000, rest % 60_000_000);
        let (seconds, frac) = (rest / 1_000_000, rest % 1_000_000);
        let _ = write!(out, "{hours:02}:{minutes:02}:{seconds:02}");
        if frac != 0 {
            let digits = format!("{frac:06}");
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
    } else if out.is_empty() {
        out.push_str("00:00:00");
    }
    out
}

/// DuckDB's text of a BLOB: printable ASCII as is, every other byte (and
/// `\`, `'`, `"`) as `\xHH`.
pub(crate) fn blob_text(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if (32..=126).contains(&b) && !matches!(b, b'\\' | b'\'' | b'"') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "\\x{b:02X}");
        }
    }
    out
}

/// A UUID's canonical lower-case hyphenated text.
fn uuid_text(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    match (
        hex.get(0..8),
        hex.get(8..12),
        hex.get(12..16),
        hex.get(16..20),
        hex.get(20..32),
    ) {
        (Some(a), Some(b), Some(c), Some(d), Some(e)) => format!("{a}-{b}-{c}-{d}-{e}"),
        _ => hex,
    }
}

/// A BIT string from DuckDB's internal bytes: the first byte counts the
/// padding bits at the start of the second.
fn bit_text(bytes: &[u8]) -> String {
    let Some((&padding, data)) = bytes.split_first() else {
        return String::new();
    };
    let mut out = String::with_capacity(data.len() * 8);
    for (i, byte) in data.iter().enumerate() {
        for bit in (0..8).rev() {
            if i == 0 && 7 - bit < u32::from(padding) {
                continue;
            }
            out.push(if (byte >> bit) & 1 == 1 { '1' } else { '0' });
        }
    }
    out
}

/// Appends a JSON string literal.
fn json_string(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(quoted) => out.push_str(&quoted),
        Err(_) => out.push_str("null"),
    }
}

/// Appends a float as a JSON number (shortest round-trip form), or NaN and
/// the infinities as DuckDB's text in a JSON string.
fn json_float(out: &mut String, v: f64, shortest: String) {
    if v.is_nan() {
        out.push_str("\"nan\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "\"inf\"" } else { "\"-inf\"" });
    } else {
        out.push_str(&shortest);
    }
}

/// Appends the JSON form of the value at `row` (see the module docs).
pub(crate) fn json(out: &mut String, array: &dyn Array, row: usize) {
    if row >= array.len() || array.is_null(row) {
        out.push_str("null");
        return;
    }
    if json_value(out, array, row).is_none() {
        if let SqlValue::Text(t) = fallback(array, row) {
            json_string(out, &t);
        }
    }
}

fn json_value(out: &mut String, array: &dyn Array, row: usize) -> Option<()> {
    match array.data_type() {
        DataType::Float32 => {
            let v = downcast!(array, Float32Array).value(row);
            json_float(out, v.into(), format!("{v:?}"));
        }
        DataType::Float64 => {
            let v = downcast!(array, Float64Array).value(row);
            json_float(out, v, format!("{v:?}"));
        }
        DataType::Decimal128(_, scale) => {
            out.push_str(&decimal_text(
                downcast!(array, Decimal128Array).value(row),
                *scale,
            ));
        }
        DataType::Binary | DataType::LargeBinary => {
            json_string(out, &blob_text(binary(array, row)?))
        }
        DataType::FixedSizeBinary(16) => {
            let v = uhugeint(downcast!(array, FixedSizeBinaryArray).value(row))?;
            let _ = write!(out, "{v}");
        }
        DataType::FixedSizeBinary(_) => json_string(
            out,
            &blob_text(downcast!(array, FixedSizeBinaryArray).value(row)),
        ),
        DataType::Dictionary(..) => {
            let (values, index) = dictionary_entry(array, row)?;
            json(out, values.as_ref(), index);
        }
        DataType::List(_) => {
            let list = downcast!(array, ListArray);
            json_items(
                out,
                list.values().as_ref(),
                offsets(list.value_offsets(), row)?,
            );
        }
        DataType::LargeList(_) => {
            let list = downcast!(array, LargeListArray);
            json_items(
                out,
                list.values().as_ref(),
                offsets(list.value_offsets(), row)?,
            );
        }
        DataType::FixedSizeList(..) => {
            let list = downcast!(array, FixedSizeListArray);
            let len = usize::try_from(list.value_length()).ok()?;
            let start = row.checked_mul(len)?;
            json_items(out, list.values().as_ref(), (start, start + len));
        }
        DataType::Struct(fields) => {
            let st = downcast!(array, StructArray);
            out.push('{');
            for (i, (field, column)) in fields.iter().zip(st.columns()).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, field.name());
                out.push(':');
                json(out, column.as_ref(), row);
            }
            out.push('}');
        }
        DataType::Map(..) => {
            let map = downcast!(array, MapArray);
            let (start, end) = offsets(map.value_offsets(), row)?;
            let (keys, values) = (map.keys(), map.values());
            out.push('{');
            for (n, i) in (start..end).enumerate() {
                if n > 0 {
                    out.push(',');
                }
                json_string(out, &key_text(keys.as_ref(), i));
                out.push(':');
                json(out, values.as_ref(), i);
            }
            out.push('}');
        }
        DataType::Union(..) => {
            let union = downcast!(array, UnionArray);
            let child = union.child(union.type_id(row));
            json(out, child.as_ref(), union.value_offset(row));
        }
        _ => match scalar(array, row, Hint::Plain)? {
            SqlValue::Null => out.push_str("null"),
            SqlValue::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            SqlValue::Integer(i) => {
                let _ = write!(out, "{i}");
            }
            SqlValue::Float(f) => json_float(out, f, format!("{f:?}")),
            // Wide integers come back as their digits: a JSON number.
            SqlValue::Text(t) if matches!(array.data_type(), DataType::UInt64) => out.push_str(&t),
            SqlValue::Text(t) => json_string(out, &t),
            SqlValue::Blob(b) => json_string(out, &blob_text(&b)),
        },
    }
    Some(())
}

/// The `[start, end)` item range of list entry `row`.
fn offsets<O: Copy + TryInto<usize>>(offsets: &[O], row: usize) -> Option<(usize, usize)> {
    let start = (*offsets.get(row)?).try_into().ok()?;
    let end = (*offsets.get(row + 1)?).try_into().ok()?;
    (start <= end).then_some((start, end))
}

fn json_items(out: &mut String, values: &dyn Array, (start, end): (usize, usize)) {
    out.push('[');
    for (n, i) in (start..end).enumerate() {
        if n > 0 {
            out.push(',');
        }
        json(out, values, i);
    }
    out.push(']');
}

/// The text a MAP key is listed under in JSON: strings as they are, other
/// scalars as their canonical text, nested keys as their JSON.
fn key_text(keys: &dyn Array, i: usize) -> String {
    match to_sql_value(keys, i, Hint::Plain) {
        SqlValue::Null => "null".to_owned(),
        SqlValue::Bool(b) => b.to_string(),
        SqlValue::Integer(n) => n.to_string(),
        SqlValue::Float(f) => format!("{f:?}"),
        SqlValue::Text(t) => t,
        SqlValue::Blob(b) => blob_text(&b),
    }
}

/// DuckDB's name of a result column's type: from DuckDB's logical type
/// where the C API exposes it (top level, STRUCT fields, ARRAY elements),
/// from the Arrow type inside LIST and MAP (where HUGEINT reads as
/// `DECIMAL(38,0)`, UUID as `VARCHAR`). ENUM columns are named `ENUM`:
/// DuckDB's C API reports neither the enum type's name (`mood`) nor its
/// labels for a result column.
pub(crate) fn type_name(logical: &LogicalTypeHandle, arrow: &DataType) -> String {
    let id = logical.id();
    if id == LogicalTypeId::Invalid {
        // DuckDB could not tell the type at prepare time (an untyped
        // parameter, say) and gave no handle: name the Arrow type. Nothing
        // else may be asked of such a handle.
        return arrow_type_name(arrow);
    }
    if let Some(alias) = logical.get_alias() {
        return alias;
    }
    let fixed = match id {
        LogicalTypeId::Boolean => "BOOLEAN",
        LogicalTypeId::Tinyint => "TINYINT",
        LogicalTypeId::Smallint => "SMALLINT",
        LogicalTypeId::Integer => "INTEGER",
        LogicalTypeId::Bigint => "BIGINT",
        LogicalTypeId::UTinyint => "UTINYINT",
        LogicalTypeId::USmallint => "USMALLINT",
        LogicalTypeId::UInteger => "UINTEGER",
        LogicalTypeId::UBigint => "UBIGINT",
        LogicalTypeId::Float => "FLOAT",
        LogicalTypeId::Double => "DOUBLE",
        LogicalTypeId::Timestamp => "TIMESTAMP",
        LogicalTypeId::Date => "DATE",
        LogicalTypeId::Time => "TIME",
        LogicalTypeId::TimeNs => "TIME_NS",
        LogicalTypeId::Interval => "INTERVAL",
        LogicalTypeId::Hugeint => "HUGEINT",
        LogicalTypeId::UHugeint => "UHUGEINT",
        LogicalTypeId::Varchar => "VARCHAR",
        LogicalTypeId::Blob => "BLOB",
        LogicalTypeId::TimestampS => "TIMESTAMP_S",
        LogicalTypeId::TimestampMs => "TIMESTAMP_MS",
        LogicalTypeId::TimestampNs => "TIMESTAMP_NS",
        LogicalTypeId::Enum => "ENUM",
        LogicalTypeId::Uuid => "UUID",
        LogicalTypeId::Bit => "BIT",
        LogicalTypeId::TimeTZ => "TIME WITH TIME ZONE",
        LogicalTypeId::TimestampTZ => "TIMESTAMP WITH TIME ZONE",
        LogicalTypeId::Bignum => "BIGNUM",
        LogicalTypeId::SqlNull => "\"NULL\"",
        LogicalTypeId::Decimal => {
            return format!(
                "DECIMAL({},{})",
                logical.decimal_width(),
                logical.decimal_scale()
            )
        }
        LogicalTypeId::Struct => {
            let fields = match arrow {
                DataType::Struct(fields) => fields.iter().map(|f| f.data_type()).collect(),
                _ => Vec::new(),
            };
            let parts: Vec<String> = (0..logical.num_children())
                .map(|i| {
                    let child_arrow = fields.get(i).copied().unwrap_or(&DataType::Null);
                    format!(
                        "{} {}",
                        quote_ident(&logical.child_name(i)),
                        type_name(&logical.child(i), child_arrow)
                    )
                })
                .collect();
            return format!("STRUCT({})", parts.join(", "));
        }
        LogicalTypeId::Array => {
            return match arrow {
                DataType::FixedSizeList(field, n) => {
                    format!("{}[{n}]", type_name(&logical.child(0), field.data_type()))
                }
                other => arrow_type_name(other),
            }
        }
        LogicalTypeId::Union => {
            let parts: Vec<String> = (0..logical.num_children())
                .map(|i| {
                    let child_arrow = match arrow {
                        DataType::Union(fields, _) => fields
                            .iter()
                            .nth(i)
                            .map_or(DataType::Null, |(_, f)| f.data_type().clone()),
                        _ => DataType::Null,
                    };
                    format!(
                        "{} {}",
                        quote_ident(&logical.child_name(i)),
                        type_name(&logical.child(i), &child_arrow)
                    )
                })
                .collect();
            return format!("UNION({})", parts.join(", "));
        }
        // LIST and MAP children are not exposed by the C API wrapper.
        _ => return arrow_type_name(arrow),
    };
    fixed.to_owned()
}

/// DuckDB's name for the type behind an Arrow type (used inside LIST and
/// MAP, where only the Arrow type is known).
fn arrow_type_name(dt: &DataType) -> String {
    let name = match dt {
        DataType::Null => "\"NULL\"",
        DataType::Boolean => "BOOLEAN",
        DataType::Int8 => "TINYINT",
        DataType::Int16 => "SMALLINT",
        DataType::Int32 => "INTEGER",
        DataType::Int64 => "BIGINT",
        DataType::UInt8 => "UTINYINT",
        DataType::UInt16 => "USMALLINT",
        DataType::UInt32 => "UINTEGER",
        DataType::UInt64 => "UBIGINT",
        DataType::Float16 | DataType::Float32 => "FLOAT",
        DataType::Float64 => "DOUBLE",
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            return format!("DECIMAL({p},{s})")
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "VARCHAR",
        DataType::FixedSizeBinary(16) => "UHUGEINT",
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "BLOB",
        DataType::Date32 | DataType::Date64 => "DATE",
        DataType::Time32(_) | DataType::Time64(TimeUnit::Microsecond) => "TIME",
        DataType::Time64(_) => "TIME_NS",
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP WITH TIME ZONE",
        DataType::Timestamp(TimeUnit::Second, None) => "TIMESTAMP_S",
        DataType::Timestamp(TimeUnit::Millisecond, None) => "TIMESTAMP_MS",
        DataType::Timestamp(TimeUnit::Microsecond, None) => "TIMESTAMP",
        DataType::Timestamp(TimeUnit::Nanosecond, None) => "TIMESTAMP_NS",
        DataType::Interval(_) | DataType::Duration(_) => "INTERVAL",
        DataType::Dictionary(..) => "ENUM",
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) => {
            return format!("{}[]", arrow_type_name(f.data_type()))
        }
        DataType::FixedSizeList(f, n) => return format!("{}[{n}]", arrow_type_name(f.data_type())),
        DataType::Struct(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|f| {
                    format!(
                        "{} {}",
                        quote_ident(f.name()),
                        arrow_type_name(f.data_type())
                    )
                })
                .collect();
            return format!("STRUCT({})", parts.join(", "));
        }
        DataType::Map(entries, _) => {
            if let DataType::Struct(kv) = entries.data_type() {
                if let (Some(k), Some(v)) = (kv.first(), kv.get(1)) {
                    return format!(
                        "MAP({}, {})",
                        arrow_type_name(k.data_type()),
                        arrow_type_name(v.data_type())
                    );
                }
            }
            "MAP"
        }
        DataType::Union(fields, _) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|(_, f)| {
                    format!(
                        "{} {}",
                        quote_ident(f.name()),
                        arrow_type_name(f.data_type())
                    )
                })
                .collect();
            return format!("UNION({})", parts.join(", "));
        }
        other => return other.to_string(),
    };
    name.to_owned()
}

/// A STRUCT field name as DuckDB prints it: bare when it is a plain
/// lower-case identifier, double-quoted otherwise.
fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_their_scale() {
        assert_eq!(decimal_text(1250, 2), "12.50");
        assert_eq!(decimal_text(-5, 2), "-0.05");
        assert_eq!(decimal_text(0, 3), "0.000");
        assert_eq!(decimal_text(42, 0), "42");
        assert_eq!(
            decimal_text(i128::MAX, 10),
            "17014118346046923173168730371.5884105727"
        );
        assert_eq!(decimal_text(i128::MIN, 0), i128::MIN.to_string());
    }

    #[test]
    fn dates_match_duckdb_text() {
        assert_eq!(date_text(0), "1970-01-01");
        assert_eq!(date_text(19_723), "2024-01-01");
        assert_eq!(date_text(-719_162), "0001-01-01");
        assert_eq!(date_text(-719_163), "0001-12-31 (BC)");
        assert_eq!(date_text(i64::from(i32::MAX)), "infinity");
        assert_eq!(date_text(-i64::from(i32::MAX)), "-infinity");
    }

    #[test]
    fn timestamps_and_times_match_duckdb_text() {
        assert_eq!(
            timestamp_text(1_704_067_200_000_001, 1_000_000, false),
            "2024-01-01 00:00:00.000001"
        );
        assert_eq!(
            timestamp_text(1_704_067_200_500_000, 1_000_000, true),
            "2024-01-01 00:00:00.5+00"
        );
        assert_eq!(
            timestamp_text(-1, 1_000_000, false),
            "1969-12-31 23:59:59.999999"
        );
        assert_eq!(
            timestamp_text(1_704_067_200_123_456_789, 1_000_000_000, false),
            "2024-01-01 00:00:00.123456789"
        );
        assert_eq!(timestamp_text(i64::MAX, 1_000_000, false), "infinity");
        assert_eq!(time_text(86_399_999_999_000), "23:59:59.999999");
        assert_eq!(time_text(0), "00:00:00");
    }

    #[test]
    fn intervals_match_duckdb_text() {
        assert_eq!(
            interval_text(14, 3, 14_706_789_000),
            "1 year 2 months 3 days 04:05:06.789"
        );
        assert_eq!(interval_text(0, -1, -1_000_000), "-1 day -00:00:01");
        assert_eq!(interval_text(0, 0, 0), "00:00:00");
        assert_eq!(interval_text(-1, 0, 0), "-1 month");
        assert_eq!(interval_text(-13, 0, 0), "-1 year -1 month");
        assert_eq!(interval_text(0, 0, 90_000_000_000), "25:00:00");
        assert_eq!(interval_text(0, 0, -1), "-00:00:00.000001");
    }

    #[test]
    fn blobs_bits_and_uuids_match_duckdb_text() {
        assert_eq!(
            blob_text(b"a'b\"c~ \\\x00\xff"),
            "a\\x27b\\x22c~ \\x5C\\x00\\xFF"
        );
        assert_eq!(bit_text(&[3, 0b0001_0101]), "10101");
        assert_eq!(bit_text(&[]), "");
        assert_eq!(
            uuid_text(&[
                0x12, 0x3e, 0x45, 0x67, 0xe8, 0x9b, 0x12, 0xd3, 0xa4, 0x56, 0x42, 0x66, 0x14, 0x17,
                0x40, 0x00
            ]),
            "123e4567-e89b-12d3-a456-426614174000"
        );
        assert_eq!(quote_ident("a"), "a");
        assert_eq!(quote_ident("b c"), "\"b c\"");
    }
}
