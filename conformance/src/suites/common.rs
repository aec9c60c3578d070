//! Small helpers shared by the KV, TTL, CAS and transaction suites.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use storage_core::{
    AtomicKv, BatchOp, Capabilities, Error, KvStore, KvStoreExt, PutMode, PutOptions, Result,
    ScanPage, ScanRequest, TxOp, Version, Versioned,
};

use crate::case::{Failure, Requirement};
use crate::ensure;

/// Bytes from a literal.
pub fn b(s: impl AsRef<[u8]>) -> Bytes {
    Bytes::copy_from_slice(s.as_ref())
}

/// Fails unless `r` is [`Error::InvalidInput`].
pub fn expect_invalid<T: std::fmt::Debug>(what: &str, r: Result<T>) -> Result<(), Failure> {
    ensure!(
        matches!(r, Err(Error::InvalidInput { .. })),
        "{what}: expected InvalidInput, got {r:?}"
    );
    Ok(())
}

/// Fails unless `r` is [`Error::Unsupported`].
pub fn expect_unsupported<T: std::fmt::Debug>(what: &str, r: Result<T>) -> Result<(), Failure> {
    ensure!(
        matches!(r, Err(Error::Unsupported { .. })),
        "{what}: expected Unsupported, got {r:?}"
    );
    Ok(())
}

/// Fails unless `r` is a [`Error::Conflict`]; returns its current version
/// and index.
pub fn expect_conflict<T: std::fmt::Debug>(
    what: &str,
    r: Result<T>,
) -> Result<(Option<Version>, Option<usize>), Failure> {
    match r {
        Err(Error::Conflict { current, index, .. }) => Ok((current, index)),
        other => Err(Failure(format!("{what}: expected Conflict, got {other:?}"))),
    }
}

/// Every (key, value) of a namespace, in key order, read page by page.
pub async fn contents<S: KvStore + ?Sized>(
    kv: &S,
    ns: &str,
) -> Result<Vec<(Bytes, Bytes)>, Failure> {
    let limit = kv.capabilities().max_scan_limit.clamp(1, 1000);
    let entries = kv
        .scan_all(ns, ScanRequest::all().with_limit(limit))
        .await?;
    Ok(entries.into_iter().map(|e| (e.key, e.value)).collect())
}

/// The whole observable state: namespaces and their contents.
pub async fn state<S: KvStore + ?Sized>(
    kv: &S,
) -> Result<Vec<(String, Vec<(Bytes, Bytes)>)>, Failure> {
    let mut out = Vec::new();
    for ns in kv.list_namespaces().await? {
        let c = contents(kv, &ns).await?;
        out.push((ns, c));
    }
    Ok(out)
}

/// A buffer of `n` bytes, or `None` when `n` is too large to allocate
/// sensibly in a test (a backend declaring a huge limit).
pub fn buffer(n: Option<usize>) -> Option<Bytes> {
    const CAP: usize = 64 * 1024 * 1024;
    n.filter(|n| *n <= CAP).map(|n| Bytes::from(vec![b'k'; n]))
}

/// Namespaces every backend must reject.
pub fn bad_namespaces(caps: &Capabilities) -> Vec<String> {
    let mut v = vec![
        String::new(),
        "has space".to_owned(),
        "nul\0byte".to_owned(),
        "caf\u{e9}".to_owned(),
        "tab\t".to_owned(),
    ];
    if caps.max_namespace_size <= 64 * 1024 {
        v.push("n".repeat(caps.max_namespace_size + 1));
    }
    v
}

/// Keys every backend must reject.
pub fn bad_keys(caps: &Capabilities) -> Vec<Bytes> {
    let mut v = vec![Bytes::new()];
    v.extend(buffer(caps.max_key_size.checked_add(1)));
    v
}

/// Both requirements must hold.
pub fn both(a: Requirement, b: Requirement) -> Requirement {
    match a {
        Requirement::Run => b,
        unsupported => unsupported,
    }
}

/// A plain forwarding wrapper, so the suite can run through
/// `Box<dyn KvStore>` / `Box<dyn AtomicKv>` and check forwarding works.
#[derive(Debug)]
pub struct Forward<T: ?Sized>(pub Arc<T>);

#[async_trait]
impl<T: KvStore + ?Sized> KvStore for Forward<T> {
    fn backend_name(&self) -> &'static str {
        self.0.backend_name()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn get(&self, namespace: &str, key: &[u8]) -> Result<Option<Bytes>> {
        self.0.get(namespace, key).await
    }
    async fn put(
        &self,
        namespace: &str,
        key: &[u8],
        value: Bytes,
        options: PutOptions,
    ) -> Result<()> {
        self.0.put(namespace, key, value, options).await
    }
    async fn delete(&self, namespace: &str, key: &[u8]) -> Result<bool> {
        self.0.delete(namespace, key).await
    }
    async fn get_many(&self, namespace: &str, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        self.0.get_many(namespace, keys).await
    }
    async fn write_batch(&self, namespace: &str, ops: Vec<BatchOp>) -> Result<()> {
        self.0.write_batch(namespace, ops).await
    }
    async fn scan(&self, namespace: &str, request: ScanRequest) -> Result<ScanPage> {
        self.0.scan(namespace, request).await
    }
    async fn list_namespaces(&self) -> Result<Vec<String>> {
        self.0.list_namespaces().await
    }
    async fn drop_namespace(&self, namespace: &str) -> Result<bool> {
        self.0.drop_namespace(namespace).await
    }
}

#[async_trait]
impl<T: AtomicKv + ?Sized> AtomicKv for Forward<T> {
    async fn get_versioned(&self, namespace: &str, key: &[u8]) -> Result<Option<Versioned>> {
        self.0.get_versioned(namespace, key).await
    }
    async fn put_if(
        &self,
        namespace: &str,
        key: &[u8],
        value: Bytes,
        mode: PutMode,
        options: PutOptions,
    ) -> Result<Version> {
        self.0.put_if(namespace, key, value, mode, options).await
    }
    async fn delete_if(&self, namespace: &str, key: &[u8], version: &Version) -> Result<()> {
        self.0.delete_if(namespace, key, version).await
    }
    async fn transact(&self, ops: Vec<TxOp>) -> Result<Vec<Option<Version>>> {
        self.0.transact(ops).await
    }
}
