//! Input rules shared by every backend, so each adapter rejects the same
//! inputs with the same message before touching storage.

use std::time::Duration;

use bytes::Bytes;

use crate::atomic::{TxAction, TxOp};
use crate::error::{At, Context, Error, Result};
use crate::kv::BatchOp;
use crate::{Capabilities, TransactionScope};

/// Longest visibility timeout a queue accepts (SQS: 12 hours).
pub const MAX_VISIBILITY_TIMEOUT: Duration = Duration::from_secs(12 * 60 * 60);
/// Longest delivery delay (SQS: 15 minutes).
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// Most messages one receive or send batch may carry (SQS: 10).
pub const MAX_BATCH: usize = 10;
/// Longest long-poll wait of one receive (SQS: 20 s).
pub const MAX_WAIT: Duration = Duration::from_secs(20);
/// FIFO deduplication window.
pub const DEDUP_WINDOW: Duration = Duration::from_secs(5 * 60);
/// Longest group or dedup id (SQS: 128).
pub const MAX_MESSAGE_ID_FIELD: usize = 128;

/// Whether `c` may appear in a namespace or queue name.
pub fn is_name_char(c: char) -> bool {
    u8::try_from(c).is_ok_and(is_name_byte)
}

/// [`is_name_char`] on one byte (every allowed character is ASCII).
fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/')
}

/// Namespace and queue names: non-empty UTF-8 of at most
/// `max_namespace_size` bytes, made of ASCII letters, digits and
/// `_ - . : /` — characters every backend can use as a key component
/// without escaping, and that cannot smuggle control bytes into logs.
pub fn namespace(ctx: impl Into<Context> + Copy, caps: &Capabilities, ns: &str) -> Result<()> {
    if ns.is_empty() {
        return Err(Error::invalid(ctx, "namespace is empty"));
    }
    if ns.len() > caps.max_namespace_size {
        return Err(Error::invalid(
            ctx,
            format!(
                "namespace is {} bytes, the limit is {}",
                ns.len(),
                caps.max_namespace_size
            ),
        ));
    }
    // Bytes first; the character is decoded only to name it in the error.
    if !ns.bytes().all(is_name_byte) {
        if let Some(bad) = ns.chars().find(|c| !is_name_char(*c)) {
            return Err(Error::invalid(
                ctx,
                format!(
                    "namespace contains {bad:?}; allowed are ASCII letters, digits and _ - . : /"
                ),
            ));
        }
    }
    Ok(())
}

/// Keys: non-empty, at most `max_key_size` bytes; any bytes allowed.
pub fn key(ctx: impl Into<Context> + Copy, caps: &Capabilities, key: &[u8]) -> Result<()> {
    if key.is_empty() {
        return Err(Error::invalid(ctx, "key is empty"));
    }
    if key.len() > caps.max_key_size {
        return Err(Error::invalid(
            ctx,
            format!(
                "key is {} bytes, the limit is {}",
                key.len(),
                caps.max_key_size
            ),
        ));
    }
    Ok(())
}

/// Values: at most `max_value_size` bytes (empty values are allowed).
pub fn value(ctx: impl Into<Context> + Copy, caps: &Capabilities, value: &[u8]) -> Result<()> {
    if value.len() > caps.max_value_size {
        return Err(Error::invalid(
            ctx,
            format!(
                "value is {} bytes, the limit is {}",
                value.len(),
                caps.max_value_size
            ),
        ));
    }
    Ok(())
}

/// A namespace and key together.
pub fn ns_key(
    ctx: impl Into<Context> + Copy,
    caps: &Capabilities,
    ns: &str,
    k: &[u8],
) -> Result<()> {
    namespace(ctx, caps, ns)?;
    key(ctx, caps, k)
}

/// A namespace, key and value together.
pub fn ns_key_value(
    ctx: impl Into<Context> + Copy,
    caps: &Capabilities,
    ns: &str,
    k: &[u8],
    v: &[u8],
) -> Result<()> {
    ns_key(ctx, caps, ns, k)?;
    value(ctx, caps, v)
}

/// A scan page limit: between 1 and `max_scan_limit`.
pub fn scan_limit(ctx: impl Into<Context> + Copy, caps: &Capabilities, limit: usize) -> Result<()> {
    if limit == 0 || limit > caps.max_scan_limit {
        return Err(Error::invalid(
            ctx,
            format!("scan limit {limit} is outside 1..={}", caps.max_scan_limit),
        ));
    }
    Ok(())
}

/// A visibility timeout: at most [`MAX_VISIBILITY_TIMEOUT`].
pub fn visibility_timeout(ctx: impl Into<Context> + Copy, d: Duration) -> Result<()> {
    if d > MAX_VISIBILITY_TIMEOUT {
        return Err(Error::invalid(
            ctx,
            format!("visibility timeout {d:?} exceeds {MAX_VISIBILITY_TIMEOUT:?}"),
        ));
    }
    Ok(())
}

/// A delivery delay: at most [`MAX_DELAY`].
pub fn delay(ctx: impl Into<Context> + Copy, d: Duration) -> Result<()> {
    if d > MAX_DELAY {
        return Err(Error::invalid(
            ctx,
            format!("delay {d:?} exceeds {MAX_DELAY:?}"),
        ));
    }
    Ok(())
}

/// A long-poll wait: at most [`MAX_WAIT`].
pub fn wait(ctx: impl Into<Context> + Copy, d: Duration) -> Result<()> {
    if d > MAX_WAIT {
        return Err(Error::invalid(
            ctx,
            format!("wait {d:?} exceeds {MAX_WAIT:?}"),
        ));
    }
    Ok(())
}

/// A batch size for send or receive: between 1 and [`MAX_BATCH`].
pub fn batch_size(ctx: impl Into<Context> + Copy, n: usize) -> Result<()> {
    if n == 0 || n > MAX_BATCH {
        return Err(Error::invalid(
            ctx,
            format!("batch of {n} is outside 1..={MAX_BATCH}"),
        ));
    }
    Ok(())
}

/// Prefixes an input error's reason with the index of the batch or
/// transaction operation that caused it.
pub fn at_op(index: usize) -> impl FnOnce(Error) -> Error {
    move |e| match e {
        Error::InvalidInput { ctx, reason } => Error::InvalidInput {
            ctx,
            reason: format!("operation #{index}: {reason}"),
        },
        other => other,
    }
}

/// One backend's validation: the rules above bound to its name and
/// declared limits, so every adapter checks whole inputs — batches and
/// transactions included — the same way, before writing anything.
///
/// ```
/// use storage_core::validate::Validator;
/// use storage_core::{Capabilities, Error};
/// const CHECK: Validator = Validator::new("mine", Capabilities::DEFAULT_LIMITS);
/// assert!(CHECK.ns_key("get", "users", b"alice").is_ok());
/// assert!(matches!(CHECK.ns_key("get", "users", b""), Err(Error::InvalidInput { .. })));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Validator {
    backend: &'static str,
    caps: Capabilities,
}

impl Validator {
    /// Rules for `backend` with these limits.
    pub const fn new(backend: &'static str, caps: Capabilities) -> Self {
        Validator { backend, caps }
    }

    /// A namespace (or queue) name.
    pub fn namespace(&self, op: &'static str, ns: &str) -> Result<()> {
        namespace(At::scoped(op, self.backend, ns), &self.caps, ns)
    }

    /// A namespace and key.
    pub fn ns_key(&self, op: &'static str, ns: &str, key: &[u8]) -> Result<()> {
        ns_key(At::scoped(op, self.backend, ns), &self.caps, ns, key)
    }

    /// A namespace, key and value.
    pub fn ns_key_value(&self, op: &'static str, ns: &str, key: &[u8], value: &[u8]) -> Result<()> {
        ns_key_value(At::scoped(op, self.backend, ns), &self.caps, ns, key, value)
    }

    /// A namespace and several keys (get-many); errors name the key's index.
    pub fn keys(&self, op: &'static str, ns: &str, keys: &[Bytes]) -> Result<()> {
        self.namespace(op, ns)?;
        for (i, k) in keys.iter().enumerate() {
            key(At::scoped(op, self.backend, ns), &self.caps, k).map_err(at_op(i))?;
        }
        Ok(())
    }

    /// A whole write batch on one namespace; errors name the operation.
    pub fn batch(&self, op: &'static str, ns: &str, ops: &[BatchOp]) -> Result<()> {
        self.namespace(op, ns)?;
        let at = At::scoped(op, self.backend, ns);
        for (i, o) in ops.iter().enumerate() {
            match o {
                BatchOp::Put {
                    key: k, value: v, ..
                } => key(at, &self.caps, k).and_then(|()| value(at, &self.caps, v)),
                BatchOp::Delete { key: k } => key(at, &self.caps, k),
            }
            .map_err(at_op(i))?;
        }
        Ok(())
    }

    /// A whole transaction: at most `max_transaction_ops` operations, every
    /// namespace, key and value, no key twice, and — for a
    /// namespace-scoped backend — one namespace only.
    pub fn transaction(&self, ops: &[TxOp]) -> Result<()> {
        const OP: &str = "transact";
        if ops.len() > self.caps.max_transaction_ops {
            return Err(Error::invalid(
                At::new(OP, self.backend),
                format!(
                    "transaction has {} operations, the limit is {}",
                    ops.len(),
                    self.caps.max_transaction_ops
                ),
            ));
        }
        // A namespace repeated from the operation before is not checked
        // again (transactions usually stay in one).
        let mut checked: Option<&str> = None;
        for (i, o) in ops.iter().enumerate() {
            let at = At::scoped(OP, self.backend, &o.namespace);
            if checked != Some(o.namespace.as_str()) {
                namespace(at, &self.caps, &o.namespace).map_err(at_op(i))?;
                checked = Some(&o.namespace);
            }
            key(at, &self.caps, &o.key).map_err(at_op(i))?;
            if let TxAction::Put { value: v, .. } = &o.action {
                value(at, &self.caps, v).map_err(at_op(i))?;
            }
        }
        if self.caps.transaction_scope == TransactionScope::Namespace {
            if let Some((i, o)) = ops
                .iter()
                .enumerate()
                .find(|(_, o)| ops.first().is_some_and(|f| f.namespace != o.namespace))
            {
                return Err(Error::invalid(
                    At::scoped(OP, self.backend, &o.namespace),
                    format!(
                        "operation #{i} is in another namespace than operation #0; this \
                         backend's transactions stay within one namespace"
                    ),
                ));
            }
        }
        // Sort (namespace, key, index) so a repeated key shows up as
        // neighbours.
        let mut keys: Vec<(&str, &[u8], usize)> = ops
            .iter()
            .enumerate()
            .map(|(i, o)| (o.namespace.as_str(), &o.key[..], i))
            .collect();
        keys.sort_unstable();
        for pair in keys.windows(2) {
            if let [(ns, k, first), (ns2, k2, second)] = pair {
                if ns == ns2 && k == k2 {
                    return Err(Error::invalid(
                        At::scoped(OP, self.backend, ns),
                        format!("operation #{second} repeats the key of operation #{first}"),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Name characters are exactly ASCII letters, digits and `_ - . : /`,
    /// by character and by byte, and a bad one is named in the error.
    #[test]
    fn name_characters_are_the_documented_set() {
        for c in (0..0x3000u32)
            .filter_map(char::from_u32)
            .chain(['\u{10FFFF}'])
        {
            let want = c.is_ascii_alphanumeric() || "_-.:/".contains(c);
            assert_eq!(is_name_char(c), want, "{c:?}");
        }
        let caps = caps();
        assert!(namespace(At::new("t", "b"), &caps, "a-Z_0.9:/x").is_ok());
        for bad in ["a b", "aé", "a\u{0}", "a\u{FF}"] {
            let err = namespace(At::new("t", "b"), &caps, bad).map_err(|e| e.to_string());
            let named = bad.chars().nth(1).map(|c| format!("{c:?}"));
            assert!(
                matches!((&err, named), (Err(e), Some(c)) if e.contains(&c)),
                "{bad:?}: {err:?}"
            );
        }
    }

    fn caps() -> Capabilities {
        Capabilities::DEFAULT_LIMITS
    }

    #[test]
    fn namespace_rules() {
        let ctx = Context::new("put", "test");
        assert!(namespace(&ctx, &caps(), "users/eu-west-1:123").is_ok());
        assert!(namespace(&ctx, &caps(), "").is_err());
        assert!(namespace(&ctx, &caps(), "a b").is_err());
        assert!(namespace(&ctx, &caps(), "a\u{0}").is_err());
        assert!(namespace(&ctx, &caps(), &"x".repeat(256)).is_err());
        assert!(namespace(&ctx, &caps(), &"x".repeat(255)).is_ok());
    }

    #[test]
    fn key_and_value_rules() {
        let ctx = Context::new("put", "test");
        assert!(key(&ctx, &caps(), b"").is_err());
        assert!(key(&ctx, &caps(), &[0u8; 1024]).is_ok());
        assert!(key(&ctx, &caps(), &[0u8; 1025]).is_err());
        assert!(value(&ctx, &caps(), b"").is_ok());
        assert!(value(&ctx, &caps(), &vec![0u8; 4 * 1024 * 1024 + 1]).is_err());
    }
}
