//! Long-poll wake-ups over Redis pub/sub.
//!
//! Scripts that may make a message deliverable `PUBLISH` the queue's name
//! on the store's channel (see [`super::keys`]). The first long poll of a
//! store starts one listener task with its own pub/sub connection (on a
//! cluster, to any node: classic pub/sub is broadcast cluster-wide); the
//! listener wakes that queue's local waiters. So a receive waiting in one
//! process is woken by a send from another, with no polling loop.
//!
//! If the subscription drops (server restart), the listener wakes every
//! waiter so each re-checks, reconnects with backoff, and wakes them all
//! again once subscribed (covering what was published in between). A
//! long poll that starts while no subscription can be made re-checks on a
//! short interval instead.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use storage_core::wake::Waiters;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a long poll waits for the subscription before falling back
/// to re-checking.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Re-check interval of a long poll without a subscription.
pub(crate) const FALLBACK_RECHECK: Duration = Duration::from_millis(250);

struct Shared {
    waiters: Waiters,
    channel: String,
    /// Node URLs, tried in order.
    urls: Vec<String>,
    subscribed: watch::Sender<bool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("waiters", &self.waiters)
            .field("channel", &self.channel)
            .field(
                "urls",
                &self
                    .urls
                    .iter()
                    .map(|u| crate::config::redact(u))
                    .collect::<Vec<_>>(),
            )
            .field("subscribed", &*self.subscribed.borrow())
            .finish()
    }
}

/// One store's wake-up listener (started lazily, stopped on drop).
#[derive(Debug)]
pub(crate) struct Notifier {
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Notifier {
    pub(crate) fn new(channel: String, urls: Vec<String>) -> Self {
        Notifier {
            shared: Arc::new(Shared {
                waiters: Waiters::new(),
                channel,
                urls,
                subscribed: watch::channel(false).0,
            }),
            task: Mutex::new(None),
        }
    }

    /// The local long polls.
    pub(crate) fn waiters(&self) -> &Waiters {
        &self.shared.waiters
    }

    /// Starts the listener if needed and waits (bounded) until it is
    /// subscribed; `false` if it is not (the caller then re-checks on an
    /// interval).
    pub(crate) async fn listening(&self) -> bool {
        {
            let mut task = self.task.lock().unwrap_or_else(|p| p.into_inner());
            if task.as_ref().is_none_or(JoinHandle::is_finished) {
                *task = Some(tokio::spawn(listen(self.shared.clone())));
            }
        }
        let mut rx = self.shared.subscribed.subscribe();
        let subscribed = matches!(
            tokio::time::timeout(SUBSCRIBE_TIMEOUT, rx.wait_for(|s| *s)).await,
            Ok(Ok(_))
        );
        subscribed
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        let task = self.task.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = task.take() {
            t.abort();
        }
    }
}

/// The listener: subscribe, forward, and on loss wake everyone and retry.
async fn listen(shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        for url in &shared.urls {
            let Some(mut pubsub) = subscribe(url, &shared.channel).await else {
                continue;
            };
            backoff = Duration::from_millis(50);
            shared.subscribed.send_replace(true);
            shared.waiters.wake_all();
            let mut messages = pubsub.on_message();
            while let Some(msg) = messages.next().await {
                if let Ok(queue) = msg.get_payload::<String>() {
                    shared.waiters.wake(&queue);
                }
            }
            shared.subscribed.send_replace(false);
            shared.waiters.wake_all();
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

async fn subscribe(url: &str, channel: &str) -> Option<redis::aio::PubSub> {
    let client = redis::Client::open(url).ok()?;
    let attempt = async {
        let mut pubsub = client.get_async_pubsub().await.ok()?;
        pubsub.subscribe(channel).await.ok()?;
        Some(pubsub)
    };
    tokio::time::timeout(SUBSCRIBE_TIMEOUT, attempt)
        .await
        .ok()
        .flatten()
}
