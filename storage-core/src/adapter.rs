//! The trait glue every adapter would otherwise write again.
//!
//! An adapter implements its operations as inherent `async fn`s
//! (`kv_get`, `kv_put`, ..., `cas_put_if`, ...) and lets these macros write
//! the trait impls: each trait method runs the inherent one inside a debug
//! span naming the backend, the operation and the namespace — never keys
//! or values. Tiers a backend does not have get impls whose every method
//! answers [`Error::Unsupported`](crate::Error::Unsupported), so the store
//! still serves as `Arc<dyn QueueStore>` / `Arc<dyn SqlEngine>` and the
//! conformance suite can check the refusal.
//!
//! | macro | writes | the type provides |
//! |---|---|---|
//! | [`forward_kv_store!`](crate::forward_kv_store) | `impl KvStore` | `kv_get`, `kv_put`, `kv_delete`, `kv_get_many`, `kv_write_batch`, `kv_scan`, `kv_list_namespaces`, `kv_drop_namespace` |
//! | [`forward_atomic_kv!`](crate::forward_atomic_kv) | `impl AtomicKv` | `cas_get_versioned`, `cas_put_if`, `cas_delete_if`, `cas_transact` |
//! | [`unsupported_queue_store!`](crate::unsupported_queue_store) | `impl QueueStore`, all `Unsupported` | — |
//! | [`unsupported_sql_engine!`](crate::unsupported_sql_engine) | `impl SqlEngine`, all `Unsupported` | — |
//!
//! ```
//! use storage_core::{Capabilities, Error, Result};
//!
//! #[derive(Debug)]
//! struct Nothing;
//! storage_core::unsupported_queue_store!(Nothing, "nothing", |_s| Capabilities::DEFAULT_LIMITS);
//! storage_core::unsupported_sql_engine!(Nothing, "nothing");
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use storage_core::{QueueStore, SqlEngine};
//! let e = Nothing.execute("SELECT 1", &[]).await.unwrap_err();
//! assert!(matches!(e, Error::Unsupported { .. }));
//! assert!(Nothing.purge("q").await.is_err());
//! # }
//! ```

/// What the macros need from this crate's dependencies, so adapters need
/// not name them.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use bytes::Bytes;
    pub use tracing;
    pub use tracing::Instrument;
}

/// A debug span for one operation of `backend`: operation and namespace,
/// never keys or values.
#[macro_export]
macro_rules! op_span {
    ($backend:expr, $op:literal, $ns:expr) => {
        $crate::adapter::__private::tracing::debug_span!(
            "kv",
            backend = $backend,
            op = $op,
            namespace = $ns
        )
    };
    ($backend:expr, $op:literal) => {
        $crate::adapter::__private::tracing::debug_span!("kv", backend = $backend, op = $op)
    };
}

/// `impl KvStore for $ty`, forwarding every method to the type's inherent
/// `kv_*` method inside an [`op_span!`](crate::op_span). `capabilities` is
/// a closure-like `|store| expr` over `&$ty`.
#[macro_export]
macro_rules! forward_kv_store {
    ($ty:ty, $backend:expr, |$s:ident| $caps:expr) => {
        #[$crate::adapter::__private::async_trait]
        impl $crate::KvStore for $ty {
            fn backend_name(&self) -> &'static str {
                $backend
            }

            fn capabilities(&self) -> $crate::Capabilities {
                let $s = self;
                $caps
            }

            async fn get(
                &self,
                namespace: &str,
                key: &[u8],
            ) -> $crate::Result<Option<$crate::adapter::__private::Bytes>> {
                $crate::adapter::__private::Instrument::instrument(
                    self.kv_get(namespace, key),
                    $crate::op_span!($backend, "get", namespace),
                )
                .await
            }

            async fn put(
                &self,
                namespace: &str,
                key: &[u8],
                value: $crate::adapter::__private::Bytes,
                options: $crate::PutOptions,
            ) -> $crate::Result<()> {
                $crate::adapter::__private::Instrument::instrument(
                    self.kv_put(namespace, key, value, options),
                    $crate::op_span!($backend, "put", namespace),
                )
                .await
            }

            async fn delete(&self, namespace: &str, key: &[u8]) -> $crate::Result<bool> {
                $crate::adapter::__private::Instrument::instrument(
                    self.kv_delete(namespace, key),
                    $crate::op_span!($backend, "delete", namespace),
                )
                .await
            }

            async fn get_many(
                &self,
                namespace: &str,
                keys: &[$crate::adapter::__private::Bytes],
            ) -> $crate::Result<Vec<Option<$crate::adapter::__private::Bytes>>> {
                $crate::adapter::__private::Instrument::instrument(
                    self.kv_get_many(namespace, keys),
                    $crate::op_span!($backend, "get_many", namespace),
                )
                .await
            }

            async fn write_batch(
                &self,
                namespace: &str,
                ops: Vec<$crate::BatchOp>,
            ) -> $crate::Result<()> {
                $crate::adapter::__private::Instrument::instrument(
                    self.kv_write_batch(namespace, ops),
                    $crate::op_span!($backend, "write_batch", namespace),
                )
                .await
            }

            async fn scan(
                &self,
                namespace: &str,
                request: $crate::ScanRequest,
            ) -> $crate::Result<$crate::ScanPage> {
                $crate::adapter::__private::Instrument::instrument(
                    self.kv_scan(namespace, request),
                    $crate::op_span!($backend, "scan", namespace),
                )
                .await
            }

            async fn list_namespaces(&self) -> $crate::Result<Vec<String>> {
                $crate::adapter::__private::Instrument::instrument(
                    self.kv_list_namespaces(),
                    $crate::op_span!($backend, "list_namespaces"),
                )
                .await
            }

            async fn drop_namespace(&self, namespace: &str) -> $crate::Result<bool> {
                $crate::adapter::__private::Instrument::instrument(
                    self.kv_drop_namespace(namespace),
                    $crate::op_span!($backend, "drop_namespace", namespace),
                )
                .await
            }
        }
    };
}

/// `impl AtomicKv for $ty`, forwarding every method to the type's inherent
/// `cas_*` method inside an [`op_span!`](crate::op_span).
#[macro_export]
macro_rules! forward_atomic_kv {
    ($ty:ty, $backend:expr) => {
        #[$crate::adapter::__private::async_trait]
        impl $crate::AtomicKv for $ty {
            async fn get_versioned(
                &self,
                namespace: &str,
                key: &[u8],
            ) -> $crate::Result<Option<$crate::Versioned>> {
                $crate::adapter::__private::Instrument::instrument(
                    self.cas_get_versioned(namespace, key),
                    $crate::op_span!($backend, "get_versioned", namespace),
                )
                .await
            }

            async fn put_if(
                &self,
                namespace: &str,
                key: &[u8],
                value: $crate::adapter::__private::Bytes,
                mode: $crate::PutMode,
                options: $crate::PutOptions,
            ) -> $crate::Result<$crate::Version> {
                $crate::adapter::__private::Instrument::instrument(
                    self.cas_put_if(namespace, key, value, mode, options),
                    $crate::op_span!($backend, "put_if", namespace),
                )
                .await
            }

            async fn delete_if(
                &self,
                namespace: &str,
                key: &[u8],
                version: &$crate::Version,
            ) -> $crate::Result<()> {
                $crate::adapter::__private::Instrument::instrument(
                    self.cas_delete_if(namespace, key, version),
                    $crate::op_span!($backend, "delete_if", namespace),
                )
                .await
            }

            async fn transact(
                &self,
                ops: Vec<$crate::TxOp>,
            ) -> $crate::Result<Vec<Option<$crate::Version>>> {
                $crate::adapter::__private::Instrument::instrument(
                    self.cas_transact(ops),
                    $crate::op_span!($backend, "transact"),
                )
                .await
            }
        }
    };
}

/// `impl QueueStore for $ty` whose every method answers
/// `Error::Unsupported` (for a backend that declares `queue: false`).
/// `capabilities` is a closure-like `|store| expr` over `&$ty`.
#[macro_export]
macro_rules! unsupported_queue_store {
    ($ty:ty, $backend:expr, |$s:ident| $caps:expr) => {
        #[$crate::adapter::__private::async_trait]
        impl $crate::QueueStore for $ty {
            fn backend_name(&self) -> &'static str {
                $backend
            }
            fn capabilities(&self) -> $crate::Capabilities {
                let $s = self;
                $caps
            }
            async fn create_queue(&self, _: &str, _: $crate::QueueConfig) -> $crate::Result<()> {
                Err($crate::Error::unsupported("create_queue", $backend))
            }
            async fn queue_config(&self, _: &str) -> $crate::Result<$crate::QueueConfig> {
                Err($crate::Error::unsupported("queue_config", $backend))
            }
            async fn delete_queue(&self, _: &str) -> $crate::Result<bool> {
                Err($crate::Error::unsupported("delete_queue", $backend))
            }
            async fn list_queues(&self, _: &str) -> $crate::Result<Vec<String>> {
                Err($crate::Error::unsupported("list_queues", $backend))
            }
            async fn send_batch(
                &self,
                _: &str,
                _: Vec<$crate::SendMessage>,
            ) -> $crate::Result<Vec<$crate::MessageId>> {
                Err($crate::Error::unsupported("send_batch", $backend))
            }
            async fn receive(
                &self,
                _: &str,
                _: $crate::ReceiveOptions,
            ) -> $crate::Result<Vec<$crate::ReceivedMessage>> {
                Err($crate::Error::unsupported("receive", $backend))
            }
            async fn ack(&self, _: &str, _: &$crate::Receipt) -> $crate::Result<()> {
                Err($crate::Error::unsupported("ack", $backend))
            }
            async fn change_visibility(
                &self,
                _: &str,
                _: &$crate::Receipt,
                _: ::std::time::Duration,
            ) -> $crate::Result<()> {
                Err($crate::Error::unsupported("change_visibility", $backend))
            }
            async fn purge(&self, _: &str) -> $crate::Result<()> {
                Err($crate::Error::unsupported("purge", $backend))
            }
            async fn counts(&self, _: &str) -> $crate::Result<$crate::QueueCounts> {
                Err($crate::Error::unsupported("counts", $backend))
            }
            async fn export_queue(&self, _: &str) -> $crate::Result<$crate::QueueState> {
                Err($crate::Error::unsupported("export_queue", $backend))
            }
            async fn import_queue(&self, _: &str, _: $crate::QueueState) -> $crate::Result<()> {
                Err($crate::Error::unsupported("import_queue", $backend))
            }
        }
    };
}

/// `impl SqlEngine for $ty` whose every method answers
/// `Error::Unsupported` and whose dialect is `None`.
#[macro_export]
macro_rules! unsupported_sql_engine {
    ($ty:ty, $backend:expr) => {
        #[$crate::adapter::__private::async_trait]
        impl $crate::SqlEngine for $ty {
            fn backend_name(&self) -> &'static str {
                $backend
            }
            fn dialect(&self) -> Option<$crate::SqlDialect> {
                None
            }
            async fn execute(
                &self,
                _: &str,
                _: &[$crate::SqlValue],
            ) -> $crate::Result<$crate::SqlResult> {
                Err($crate::Error::unsupported("execute", $backend))
            }
            async fn execute_batch(&self, _: &str) -> $crate::Result<()> {
                Err($crate::Error::unsupported("execute_batch", $backend))
            }
        }
    };
}
