//! The compare-and-swap tier: versioned reads, conditional writes and
//! conditional multi-key transactions.

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;
use crate::kv::{KvStore, PutOptions};
use crate::version::Version;

/// A value with its version token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The stored value.
    pub value: Bytes,
    /// Its version token.
    pub version: Version,
}

/// How a conditional put treats the key's current state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum PutMode {
    /// Write whatever is there (still returns the new version).
    #[default]
    Overwrite,
    /// Write only if the key is absent (or expired).
    Create,
    /// Write only if the key's current version is this one.
    Update(Version),
}

/// A condition on one key of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The key must be absent.
    Absent,
    /// The key must exist (any version).
    Exists,
    /// The key must have this version.
    Version(Version),
}

/// What a transaction operation does to its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxAction {
    /// Store a value.
    Put {
        /// The value.
        value: Bytes,
        /// Put options (expiry).
        options: PutOptions,
    },
    /// Remove the key (a no-op if absent and unconditioned).
    Delete,
    /// Change nothing; only check the condition (DynamoDB ConditionCheck).
    Check,
}

/// One operation of [`AtomicKv::transact`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOp {
    /// Namespace of the key.
    pub namespace: String,
    /// The key.
    pub key: Bytes,
    /// What to do.
    pub action: TxAction,
    /// What must hold first; `None` = unconditional.
    pub condition: Option<Condition>,
}

impl TxOp {
    /// An unconditional put.
    pub fn put(
        namespace: impl Into<String>,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Self {
        TxOp {
            namespace: namespace.into(),
            key: key.into(),
            action: TxAction::Put {
                value: value.into(),
                options: PutOptions::default(),
            },
            condition: None,
        }
    }

    /// An unconditional delete.
    pub fn delete(namespace: impl Into<String>, key: impl Into<Bytes>) -> Self {
        TxOp {
            namespace: namespace.into(),
            key: key.into(),
            action: TxAction::Delete,
            condition: None,
        }
    }

    /// A condition check that writes nothing.
    pub fn check(
        namespace: impl Into<String>,
        key: impl Into<Bytes>,
        condition: Condition,
    ) -> Self {
        TxOp {
            namespace: namespace.into(),
            key: key.into(),
            action: TxAction::Check,
            condition: Some(condition),
        }
    }

    /// Adds a condition.
    pub fn when(mut self, condition: Condition) -> Self {
        self.condition = Some(condition);
        self
    }
}

/// Compare-and-swap over a [`KvStore`].
///
/// Needs [`Capabilities::atomic`](crate::Capabilities::atomic); transactions
/// need [`Capabilities::transaction_scope`](crate::Capabilities::transaction_scope)
/// other than `None`.
///
/// # Contract
///
/// - Every live value has a [`Version`]. The token changes whenever the
///   value changes; a store whose tokens are content hashes may return the
///   same token for a rewrite of identical bytes and then declares
///   [`Capabilities::atomic_content_hash_versions`](crate::Capabilities::atomic_content_hash_versions).
///   Plain [`KvStore::put`] also issues a new version.
/// - A conditional write checks its condition and writes in **one atomic
///   step** in the backend, and returns the new token from that step (no
///   read after the write).
/// - A failed condition is [`Error::Conflict`](crate::Error::Conflict)
///   with the key's current version (`None` if absent) and changes
///   nothing. Expired entries count as absent.
/// - **Transactions** are all-or-nothing: either every condition holds and
///   every action applies, or nothing changes and the `Conflict` names the
///   index of the first failed operation. A key may appear at most once per
///   transaction; more than `max_transaction_ops` operations, or keys
///   outside the declared scope, are `InvalidInput`.
/// - N concurrent read → conditional write → retry loops on one key end
///   with exactly N successful increments (the conformance race test).
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), storage_core::Error> {
/// use bytes::Bytes;
/// use storage_core::{AtomicKv, Error, PutMode, PutOptions};
/// let store = storage_memory::MemoryStore::new();
/// let v1 = store.put_if("t", b"k", Bytes::from_static(b"a"), PutMode::Create, PutOptions::default()).await?;
/// let v2 = store.put_if("t", b"k", Bytes::from_static(b"b"), PutMode::Update(v1.clone()), PutOptions::default()).await?;
/// // The old token no longer matches: the write is refused and nothing changes.
/// let err = store.put_if("t", b"k", Bytes::from_static(b"c"), PutMode::Update(v1), PutOptions::default()).await;
/// assert!(matches!(err, Err(Error::Conflict { current: Some(ref v), .. }) if *v == v2));
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait AtomicKv: KvStore {
    /// The value at `key` with its version, or `None`.
    async fn get_versioned(&self, namespace: &str, key: &[u8]) -> Result<Option<Versioned>>;

    /// Writes `value` if `mode` allows it; returns the new version.
    async fn put_if(
        &self,
        namespace: &str,
        key: &[u8],
        value: Bytes,
        mode: PutMode,
        options: PutOptions,
    ) -> Result<Version>;

    /// Deletes `key` only if its current version is `version`. An absent
    /// key is a `Conflict` with `current: None`.
    async fn delete_if(&self, namespace: &str, key: &[u8], version: &Version) -> Result<()>;

    /// Applies `ops` all-or-nothing; returns, per operation, the new
    /// version of a put and `None` for a delete or check.
    async fn transact(&self, ops: Vec<TxOp>) -> Result<Vec<Option<Version>>>;
}
