//! Input rules shared by every backend, so each adapter rejects the same
//! inputs with the same message before touching storage.

use std::time::Duration;

use crate::error::{Context, Error, Result};
use crate::Capabilities;

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
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/')
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
    if let Some(bad) = ns.chars().find(|c| !is_name_char(*c)) {
        return Err(Error::invalid(
            ctx,
            format!("namespace contains {bad:?}; allowed are ASCII letters, digits and _ - . : /"),
        ));
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

#[cfg(test)]
mod tests {
    use super::*;

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
