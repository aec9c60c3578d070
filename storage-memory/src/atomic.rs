//! CAS tier (placeholder until the implementation lands).
use async_trait::async_trait;
use bytes::Bytes;
use storage_core::{AtomicKv, Error, PutMode, PutOptions, Result, TxOp, Version, Versioned};

use crate::backend::MemoryStore;
use crate::config::BACKEND;

#[async_trait]
impl AtomicKv for MemoryStore {
    async fn get_versioned(&self, _: &str, _: &[u8]) -> Result<Option<Versioned>> {
        Err(Error::unsupported("get_versioned", BACKEND))
    }
    async fn put_if(
        &self,
        _: &str,
        _: &[u8],
        _: Bytes,
        _: PutMode,
        _: PutOptions,
    ) -> Result<Version> {
        Err(Error::unsupported("put_if", BACKEND))
    }
    async fn delete_if(&self, _: &str, _: &[u8], _: &Version) -> Result<()> {
        Err(Error::unsupported("delete_if", BACKEND))
    }
    async fn transact(&self, _: Vec<TxOp>) -> Result<Vec<Option<Version>>> {
        Err(Error::unsupported("transact", BACKEND))
    }
}
