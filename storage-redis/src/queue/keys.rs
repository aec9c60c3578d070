//! Queue key layout.
//!
//! Every queue key of a store shares the hash tag `{<prefix>}`, so a
//! dead-letter move (two queues) is one script on one Cluster slot. The
//! price: one store's queues live on one Cluster node; spread queue load
//! over a cluster by giving services separate prefixes (stores).
//!
//! Queue `Q`'s keys are `{P}:q<code>:<Q>`; the code is a fixed word
//! before the first `:` after `q`, so no queue name (namespace rules) can
//! make one queue's key another's. `sid` is the message's sequence
//! number, zero-padded to 16 digits so that byte order is send order.
//!
//! | code | type | holds |
//! |---|---|---|
//! | `c` | hash | config: `cfg` (JSON, exact), `vis`/`delay`/`ret` (ms), `fifo`, `dlq`, `maxrecv`, `seq` (next sequence); `nexp`: a lower bound of the earliest retention deadline (ms; absent: unknown, see `scripts.rs`) |
//! | `r` | hash | sid → record `visible_at:receive_count:first_received:sent_at:id` (decimal ms) |
//! | `p` | hash | sid → payload (body, attributes, group and dedup ids; postcard, opaque to Lua) |
//! | `i` | hash | message id → sid (receipts name ids) |
//! | `v` | sorted set | sid by visible-at: a standard queue's delivery order; counts |
//! | `h` | sorted set | sid by visible-at, received messages only (in-flight counts) |
//! | `t` | sorted set | sid by sent-at (retention) |
//! | `d` | hash | FIFO dedup id → `expires_at:message id` |
//! | `dx` | sorted set | FIFO dedup id by expiry |
//! | `g` | hash | FIFO: sid → group id |
//! | `gm` | sorted set (lex) | FIFO: `len5(group) group sid`: each group's messages in send order |
//! | `gh` | sorted set (lex) | FIFO: `len5(group) group visible_at(16) sid` of received messages: a group's last hidden instant |
//! | `gr` | sorted set | FIFO: ready groups by head sequence |
//! | `gw` | sorted set | FIFO: blocked groups by the instant they unblock |
//!
//! Plus, per store: `{P}:queues` (sorted set of queue names, lexicographic,
//! for listing) and the pub/sub channel `{P}:qwake` (a message is a queue
//! name whose receivers should look again).

/// The per-queue key codes, in the order scripts take them as `KEYS`.
pub(crate) const CODES: [&str; 14] = [
    "c", "r", "p", "i", "v", "h", "t", "d", "dx", "g", "gm", "gh", "gr", "gw",
];

/// Key names of one store's queues.
#[derive(Debug, Clone)]
pub(crate) struct QueueKeys {
    /// `{P}:q`: a queue key is `base + code + ':' + name`.
    base: String,
    registry: String,
    channel: String,
}

impl QueueKeys {
    pub(crate) fn new(prefix: &str) -> Self {
        QueueKeys {
            base: format!("{{{prefix}}}:q"),
            registry: format!("{{{prefix}}}:queues"),
            channel: format!("{{{prefix}}}:qwake"),
        }
    }

    /// The base scripts derive a dead-letter queue's keys from.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    /// The sorted set of queue names.
    pub(crate) fn registry(&self) -> &str {
        &self.registry
    }

    /// The wake-up channel.
    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }

    /// The queue's config key.
    pub(crate) fn config(&self, queue: &str) -> String {
        format!("{}c:{queue}", self.base)
    }

    /// All keys of `queue`, in [`CODES`] order.
    pub(crate) fn all(&self, queue: &str) -> Vec<String> {
        CODES
            .iter()
            .map(|code| format!("{}{code}:{queue}", self.base))
            .collect()
    }
}
