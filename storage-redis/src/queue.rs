//! The queue tier is not implemented on Redis yet: the store declares
//! `queue: false` and every method answers `Unsupported`, which the
//! conformance suite checks.

use std::time::Duration;

use async_trait::async_trait;
use storage_core::{
    Capabilities, Error, MessageId, QueueConfig, QueueCounts, QueueState, QueueStore, Receipt,
    ReceiveOptions, ReceivedMessage, Result, SendMessage,
};

use crate::backend::RedisStore;
use crate::config::BACKEND;

fn no<T>(op: &'static str) -> Result<T> {
    Err(Error::unsupported(op, BACKEND))
}

#[async_trait]
impl QueueStore for RedisStore {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.caps
    }
    async fn create_queue(&self, _: &str, _: QueueConfig) -> Result<()> {
        no("create_queue")
    }
    async fn queue_config(&self, _: &str) -> Result<QueueConfig> {
        no("queue_config")
    }
    async fn delete_queue(&self, _: &str) -> Result<bool> {
        no("delete_queue")
    }
    async fn list_queues(&self, _: &str) -> Result<Vec<String>> {
        no("list_queues")
    }
    async fn send_batch(&self, _: &str, _: Vec<SendMessage>) -> Result<Vec<MessageId>> {
        no("send_batch")
    }
    async fn receive(&self, _: &str, _: ReceiveOptions) -> Result<Vec<ReceivedMessage>> {
        no("receive")
    }
    async fn ack(&self, _: &str, _: &Receipt) -> Result<()> {
        no("ack")
    }
    async fn change_visibility(&self, _: &str, _: &Receipt, _: Duration) -> Result<()> {
        no("change_visibility")
    }
    async fn purge(&self, _: &str) -> Result<()> {
        no("purge")
    }
    async fn counts(&self, _: &str) -> Result<QueueCounts> {
        no("counts")
    }
    async fn export_queue(&self, _: &str) -> Result<QueueState> {
        no("export_queue")
    }
    async fn import_queue(&self, _: &str, _: QueueState) -> Result<()> {
        no("import_queue")
    }
}
