//! KV tier (placeholder until the implementation lands).
use async_trait::async_trait;
use bytes::Bytes;
use storage_core::{
    BatchOp, Capabilities, Error, KvStore, PutOptions, Result, ScanPage, ScanRequest,
};

use crate::backend::MemoryStore;
use crate::config::{BACKEND, CAPABILITIES};

#[derive(Debug, Default)]
pub(crate) struct KvState;

#[async_trait]
impl KvStore for MemoryStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }
    async fn get(&self, _: &str, _: &[u8]) -> Result<Option<Bytes>> {
        Err(Error::unsupported("get", BACKEND))
    }
    async fn put(&self, _: &str, _: &[u8], _: Bytes, _: PutOptions) -> Result<()> {
        Err(Error::unsupported("put", BACKEND))
    }
    async fn delete(&self, _: &str, _: &[u8]) -> Result<bool> {
        Err(Error::unsupported("delete", BACKEND))
    }
    async fn get_many(&self, _: &str, _: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        Err(Error::unsupported("get_many", BACKEND))
    }
    async fn write_batch(&self, _: &str, _: Vec<BatchOp>) -> Result<()> {
        Err(Error::unsupported("write_batch", BACKEND))
    }
    async fn scan(&self, _: &str, _: ScanRequest) -> Result<ScanPage> {
        Err(Error::unsupported("scan", BACKEND))
    }
    async fn list_namespaces(&self) -> Result<Vec<String>> {
        Err(Error::unsupported("list_namespaces", BACKEND))
    }
    async fn drop_namespace(&self, _: &str) -> Result<bool> {
        Err(Error::unsupported("drop_namespace", BACKEND))
    }
}
