//! Queue tier (placeholder until the implementation lands).
use std::time::Duration;

use async_trait::async_trait;
use storage_core::{
    Capabilities, Error, MessageId, QueueConfig, QueueCounts, QueueStore, Receipt, ReceiveOptions,
    ReceivedMessage, Result, SendMessage,
};

use crate::backend::MemoryStore;
use crate::config::{BACKEND, CAPABILITIES};

#[derive(Debug, Default)]
pub(crate) struct QueueState;

#[async_trait]
impl QueueStore for MemoryStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }
    async fn create_queue(&self, _: &str, _: QueueConfig) -> Result<()> {
        Err(Error::unsupported("create_queue", BACKEND))
    }
    async fn queue_config(&self, _: &str) -> Result<QueueConfig> {
        Err(Error::unsupported("queue_config", BACKEND))
    }
    async fn delete_queue(&self, _: &str) -> Result<bool> {
        Err(Error::unsupported("delete_queue", BACKEND))
    }
    async fn list_queues(&self, _: &str) -> Result<Vec<String>> {
        Err(Error::unsupported("list_queues", BACKEND))
    }
    async fn send_batch(&self, _: &str, _: Vec<SendMessage>) -> Result<Vec<MessageId>> {
        Err(Error::unsupported("send_batch", BACKEND))
    }
    async fn receive(&self, _: &str, _: ReceiveOptions) -> Result<Vec<ReceivedMessage>> {
        Err(Error::unsupported("receive", BACKEND))
    }
    async fn ack(&self, _: &str, _: &Receipt) -> Result<()> {
        Err(Error::unsupported("ack", BACKEND))
    }
    async fn change_visibility(&self, _: &str, _: &Receipt, _: Duration) -> Result<()> {
        Err(Error::unsupported("change_visibility", BACKEND))
    }
    async fn purge(&self, _: &str) -> Result<()> {
        Err(Error::unsupported("purge", BACKEND))
    }
    async fn counts(&self, _: &str) -> Result<QueueCounts> {
        Err(Error::unsupported("counts", BACKEND))
    }
    async fn export_queue(&self, _: &str) -> Result<storage_core::QueueState> {
        Err(Error::unsupported("export_queue", BACKEND))
    }
    async fn import_queue(&self, _: &str, _: storage_core::QueueState) -> Result<()> {
        Err(Error::unsupported("import_queue", BACKEND))
    }
}
