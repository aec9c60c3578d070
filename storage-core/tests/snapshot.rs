//! Snapshot export/import: memory → memory round trips, replace vs merge,
//! and every corruption failing before anything is written.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use storage_core::snapshot::{self, ImportMode, Snapshot};
use storage_core::{
    BatchOp, Capabilities, Clock, Error, KvStore, KvStoreExt, ManualClock, MessageId, PutOptions,
    QueueConfig, QueueCounts, QueueState, QueueStore, QueueStoreExt, Receipt, ReceiveOptions,
    ReceivedMessage, RedrivePolicy, Result, ScanPage, ScanRequest, SendMessage, Timestamp,
};
use storage_memory::MemoryStore;

fn store() -> (ManualClock, MemoryStore) {
    let clock = ManualClock::default();
    let s = MemoryStore::with_clock(Arc::new(clock.clone()));
    (clock, s)
}

fn store_at(t: Timestamp) -> (ManualClock, MemoryStore) {
    let clock = ManualClock::new(t);
    let s = MemoryStore::with_clock(Arc::new(clock.clone()));
    (clock, s)
}

async fn put(s: &MemoryStore, ns: &str, k: &[u8], v: &[u8]) {
    s.put(ns, k, Bytes::copy_from_slice(v), PutOptions::default())
        .await
        .unwrap();
}

async fn export_all(s: &MemoryStore, clock: &ManualClock) -> Vec<u8> {
    let mut out = Vec::new();
    let summary = snapshot::export(Some(s), Some(s), clock.now(), &mut out)
        .await
        .unwrap();
    assert_eq!(summary.bytes, out.len() as u64);
    out
}

/// What a store holds, comparable across stores (version tokens left out).
type KvDump = Vec<(String, Vec<(Bytes, Bytes, Option<Timestamp>)>)>;

async fn dump(s: &MemoryStore) -> (KvDump, Vec<(String, QueueState)>) {
    let mut kv = Vec::new();
    for ns in s.list_namespaces().await.unwrap() {
        let entries = s
            .scan_all(&ns, ScanRequest::all().with_limit(7))
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value, e.expires_at))
            .collect();
        kv.push((ns, entries));
    }
    let mut queues = Vec::new();
    for q in s.list_queues("").await.unwrap() {
        let state = s.export_queue(&q).await.unwrap();
        queues.push((q, state));
    }
    (kv, queues)
}

fn reason(e: Error) -> String {
    match e {
        Error::InvalidInput { ctx, reason } => {
            assert_eq!(ctx.operation, "import_snapshot", "{reason}");
            reason
        }
        other => unreachable!("expected InvalidInput, got {other:?}"),
    }
}

fn strip_versions(mut s: Snapshot) -> Snapshot {
    for entries in s.namespaces.values_mut() {
        for e in entries {
            e.version = None;
        }
    }
    s
}

/// Source with several namespaces (binary keys, TTLs, > one scan page and
/// > one import batch) and queues in every message state.
struct Fixture {
    clock: ManualClock,
    store: MemoryStore,
    in_flight: Receipt,
    fifo_in_flight: Receipt,
}

async fn fixture() -> Fixture {
    let (clock, s) = store();
    // KV.
    put(&s, "users", b"alice", b"1").await;
    put(&s, "users", b"bob", b"").await;
    put(&s, "bin/ns:1", &[0x00], &[0xff, 0x00]).await;
    put(&s, "bin/ns:1", &[0xff, 0xff, 0x00], b"high").await;
    put(&s, "bin/ns:1", b"a\x00b", &[0u8; 300]).await;
    for i in 0..2_345u32 {
        put(&s, "many", &i.to_be_bytes(), format!("v{i}").as_bytes()).await;
    }
    s.put(
        "ttl",
        b"short",
        Bytes::from_static(b"s"),
        PutOptions::ttl(Duration::from_secs(10)),
    )
    .await
    .unwrap();
    s.put(
        "ttl",
        b"long",
        Bytes::from_static(b"l"),
        PutOptions::ttl(Duration::from_secs(3600)),
    )
    .await
    .unwrap();
    put(&s, "ttl", b"forever", b"f").await;

    // Standard queue: visible, in flight, delayed.
    s.create_queue("std", QueueConfig::default()).await.unwrap();
    for body in ["m1", "m2", "m3"] {
        s.send("std", SendMessage::new(body).attribute("k", body))
            .await
            .unwrap();
    }
    let got = s.receive("std", ReceiveOptions::default()).await.unwrap();
    assert_eq!(&got[0].body[..], b"m1");
    let in_flight = got[0].receipt.clone();
    s.send(
        "std",
        SendMessage::new("m4").delayed(Duration::from_secs(60)),
    )
    .await
    .unwrap();

    // FIFO queue with groups and dedup memory.
    let fifo = QueueConfig {
        content_based_dedup: true,
        ..QueueConfig::fifo()
    };
    s.create_queue("orders.fifo", fifo).await.unwrap();
    s.send(
        "orders.fifo",
        SendMessage::new("a1").group("g1").dedup("d-a1"),
    )
    .await
    .unwrap();
    s.send("orders.fifo", SendMessage::new("a2").group("g1"))
        .await
        .unwrap();
    s.send("orders.fifo", SendMessage::new("b1").group("g2"))
        .await
        .unwrap();
    let got = s
        .receive("orders.fifo", ReceiveOptions::default())
        .await
        .unwrap();
    assert_eq!(&got[0].body[..], b"a1");
    let fifo_in_flight = got[0].receipt.clone();
    // An acked message leaves its dedup entry behind.
    s.send(
        "orders.fifo",
        SendMessage::new("c1").group("g3").dedup("d-c1"),
    )
    .await
    .unwrap();
    let got = s
        .receive("orders.fifo", ReceiveOptions::batch(10))
        .await
        .unwrap();
    let c1 = got.iter().find(|m| &m.body[..] == b"c1").unwrap();
    s.ack("orders.fifo", &c1.receipt).await.unwrap();
    for m in got.iter().filter(|m| &m.body[..] != b"c1") {
        s.change_visibility("orders.fifo", &m.receipt, Duration::ZERO)
            .await
            .unwrap();
    }

    // Redrive: one message received once and nacked; the next receive
    // moves it to the DLQ.
    s.create_queue("dlq", QueueConfig::default()).await.unwrap();
    s.create_queue(
        "main",
        QueueConfig {
            redrive: Some(RedrivePolicy {
                max_receives: 1,
                dead_letter_queue: "dlq".into(),
            }),
            ..QueueConfig::default()
        },
    )
    .await
    .unwrap();
    s.send("main", SendMessage::new("poison")).await.unwrap();
    let got = s.receive("main", ReceiveOptions::default()).await.unwrap();
    s.change_visibility("main", &got[0].receipt, Duration::ZERO)
        .await
        .unwrap();

    clock.advance(Duration::from_secs(1));
    Fixture {
        clock,
        store: s,
        in_flight,
        fifo_in_flight,
    }
}

fn same_delivery(a: &[ReceivedMessage], b: &[ReceivedMessage]) {
    assert_eq!(a, b);
}

async fn receive_both(
    a: &MemoryStore,
    b: &MemoryStore,
    queue: &str,
    n: usize,
) -> Vec<ReceivedMessage> {
    let x = a.receive(queue, ReceiveOptions::batch(n)).await.unwrap();
    let y = b.receive(queue, ReceiveOptions::batch(n)).await.unwrap();
    same_delivery(&x, &y);
    x
}

async fn counts_agree(a: &MemoryStore, b: &MemoryStore) {
    for q in a.list_queues("").await.unwrap() {
        let x: QueueCounts = a.counts(&q).await.unwrap();
        let y = b.counts(&q).await.unwrap();
        assert_eq!(x, y, "counts of {q}");
    }
}

#[tokio::test]
async fn memory_to_memory_round_trip_is_lossless() {
    let f = fixture().await;
    let src = &f.store;
    let bytes = export_all(src, &f.clock).await;
    let decoded = snapshot::decode(&bytes).unwrap();
    assert_eq!(decoded.exported_at, f.clock.now());
    assert_eq!(decoded.backend, "memory");
    assert_eq!(decoded.namespaces.len(), 4);
    assert_eq!(decoded.namespaces["many"].len(), 2_345);
    assert!(decoded.namespaces["users"][0].version.is_some());

    let (tclock, dst) = store_at(decoded.exported_at);
    let summary = snapshot::import(&bytes, Some(&dst), Some(&dst), ImportMode::Replace)
        .await
        .unwrap();
    assert_eq!(summary.namespaces, 4);
    assert_eq!(summary.entries, 2 + 3 + 2_345 + 3);
    assert_eq!(summary.queues, 4);
    assert_eq!(summary.bytes, bytes.len() as u64);

    // Everything observable agrees.
    assert_eq!(dump(src).await, dump(&dst).await);
    counts_agree(src, &dst).await;
    for (ns, key) in [
        ("users", &b"alice"[..]),
        ("users", b"bob"),
        ("bin/ns:1", &[0x00]),
        ("bin/ns:1", &[0xff, 0xff, 0x00]),
        ("ttl", b"short"),
        ("ttl", b"missing"),
    ] {
        assert_eq!(
            src.get(ns, key).await.unwrap(),
            dst.get(ns, key).await.unwrap()
        );
    }
    let page = |s: &MemoryStore| {
        let s = s.clone();
        async move {
            s.scan("many", ScanRequest::all().reversed().with_limit(5))
                .await
                .unwrap()
                .entries
                .into_iter()
                .map(|e| (e.key, e.value))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(page(src).await, page(&dst).await);

    // A second export of the copy is the same snapshot (up to tokens).
    let again = export_all(&dst, &tclock).await;
    assert_eq!(
        strip_versions(snapshot::decode(&again).unwrap()),
        strip_versions(decoded)
    );

    // Receipts issued by the source are valid in the copy.
    dst.ack("std", &f.in_flight).await.unwrap();
    src.ack("std", &f.in_flight).await.unwrap();
    dst.change_visibility("orders.fifo", &f.fifo_in_flight, Duration::from_secs(5))
        .await
        .unwrap();
    src.change_visibility("orders.fifo", &f.fifo_in_flight, Duration::from_secs(5))
        .await
        .unwrap();

    // Same deliveries, step by step, on lockstep clocks.
    let got = receive_both(src, &dst, "std", 10).await;
    assert_eq!(got.len(), 2); // m2, m3; m4 is delayed
    let got = receive_both(src, &dst, "orders.fifo", 10).await;
    assert_eq!(
        got.iter().map(|m| &m.body[..]).collect::<Vec<_>>(),
        vec![&b"b1"[..]]
    ); // g1 is blocked by a1 in flight
       // The redrive moves "poison" to the DLQ in both.
    assert!(receive_both(src, &dst, "main", 10).await.is_empty());
    let got = receive_both(src, &dst, "dlq", 10).await;
    assert_eq!(&got[0].body[..], b"poison");
    counts_agree(src, &dst).await;

    // Dedup memory came along: a duplicate send returns the original id.
    let dup = |s: MemoryStore| async move {
        s.send(
            "orders.fifo",
            SendMessage::new("again").group("g3").dedup("d-c1"),
        )
        .await
        .unwrap()
    };
    assert_eq!(dup(src.clone()).await, dup(dst.clone()).await);

    for d in [10, 60, 3600] {
        f.clock.advance(Duration::from_secs(d));
        tclock.advance(Duration::from_secs(d));
        for q in ["std", "orders.fifo", "main", "dlq"] {
            receive_both(src, &dst, q, 10).await;
        }
        counts_agree(src, &dst).await;
        assert_eq!(dump(src).await, dump(&dst).await);
    }
    assert_eq!(dst.get("ttl", b"short").await.unwrap(), None);
    assert_eq!(dst.get("ttl", b"long").await.unwrap(), None);
    assert_eq!(
        dst.get("ttl", b"forever").await.unwrap(),
        Some(Bytes::from_static(b"f"))
    );
}

async fn prepopulated_target(at: Timestamp) -> (ManualClock, MemoryStore) {
    let (clock, t) = store_at(at);
    put(&t, "old", b"k", b"old").await;
    put(&t, "users", b"alice", b"overwritten?").await;
    put(&t, "users", b"zzz", b"target only").await;
    t.create_queue("oldq", QueueConfig::default())
        .await
        .unwrap();
    t.send("oldq", SendMessage::new("keep me")).await.unwrap();
    t.create_queue(
        "std",
        QueueConfig {
            visibility_timeout: Duration::from_secs(99),
            ..QueueConfig::default()
        },
    )
    .await
    .unwrap();
    t.send("std", SendMessage::new("target message"))
        .await
        .unwrap();
    (clock, t)
}

#[tokio::test]
async fn replace_removes_what_the_target_held() {
    let f = fixture().await;
    let bytes = export_all(&f.store, &f.clock).await;
    let (_c, t) = prepopulated_target(f.clock.now()).await;
    snapshot::import(&bytes, Some(&t), Some(&t), ImportMode::Replace)
        .await
        .unwrap();
    assert_eq!(dump(&t).await, dump(&f.store).await);
    assert_eq!(t.get("old", b"k").await.unwrap(), None);
    assert_eq!(t.get("users", b"zzz").await.unwrap(), None);
    assert!(!t.list_queues("").await.unwrap().contains(&"oldq".into()));
}

#[tokio::test]
async fn merge_keeps_what_the_snapshot_does_not_name() {
    let f = fixture().await;
    let bytes = export_all(&f.store, &f.clock).await;
    let (_c, t) = prepopulated_target(f.clock.now()).await;
    snapshot::import(&bytes, Some(&t), Some(&t), ImportMode::Merge)
        .await
        .unwrap();
    assert_eq!(
        t.get("old", b"k").await.unwrap(),
        Some(Bytes::from_static(b"old"))
    );
    assert_eq!(
        t.get("users", b"zzz").await.unwrap(),
        Some(Bytes::from_static(b"target only"))
    );
    assert_eq!(
        t.get("users", b"alice").await.unwrap(),
        Some(Bytes::from_static(b"1"))
    );
    assert_eq!(t.counts("oldq").await.unwrap().visible, 1);
    // A queue the snapshot names is replaced whole.
    assert_eq!(
        t.export_queue("std").await.unwrap(),
        f.store.export_queue("std").await.unwrap()
    );
    assert_eq!(
        t.scan_all("many", ScanRequest::all()).await.unwrap().len(),
        2_345
    );
}

/// A small snapshot: two namespaces, an expiring entry, one queue with a
/// message.
async fn small() -> (ManualClock, Vec<u8>) {
    let (clock, s) = store();
    put(&s, "a", b"k1", b"v1").await;
    s.put(
        "b",
        &[0x00, 0xff],
        Bytes::from_static(b"v2"),
        PutOptions::ttl(Duration::from_secs(30)),
    )
    .await
    .unwrap();
    s.create_queue("q", QueueConfig::default()).await.unwrap();
    s.send("q", SendMessage::new("hi").attribute("x", "y"))
        .await
        .unwrap();
    let bytes = export_all(&s, &clock).await;
    (clock, bytes)
}

async fn untouched_target(at: Timestamp) -> MemoryStore {
    let (_c, t) = store_at(at);
    put(&t, "keep", b"k", b"v").await;
    t.create_queue("keepq", QueueConfig::default())
        .await
        .unwrap();
    t.send("keepq", SendMessage::new("m")).await.unwrap();
    t
}

#[tokio::test]
async fn every_truncation_fails_and_writes_nothing() {
    let (clock, bytes) = small().await;
    let t = untouched_target(clock.now()).await;
    let before = dump(&t).await;
    for len in 0..bytes.len() {
        for mode in [ImportMode::Replace, ImportMode::Merge] {
            let err = snapshot::import(&bytes[..len], Some(&t), Some(&t), mode)
                .await
                .unwrap_err();
            let why = reason(err);
            assert!(why.starts_with("truncated at byte "), "len {len}: {why}");
        }
        assert_eq!(dump(&t).await, before, "len {len}");
    }
    snapshot::import(&bytes, Some(&t), Some(&t), ImportMode::Merge)
        .await
        .unwrap();
}

#[tokio::test]
async fn every_flipped_byte_fails_and_writes_nothing() {
    let (clock, bytes) = small().await;
    let t = untouched_target(clock.now()).await;
    let before = dump(&t).await;
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut bad = bytes.clone();
            bad[i] ^= mask;
            let err = snapshot::import(&bad, Some(&t), Some(&t), ImportMode::Replace)
                .await
                .unwrap_err();
            let why = reason(err);
            let expected: &[&str] = match i {
                0..=7 => &["bad magic"],
                8..=11 => &["unsupported format version"],
                _ => &["checksum mismatch", "truncated at byte "],
            };
            assert!(
                expected.iter().any(|e| why.starts_with(e)),
                "byte {i} ^ {mask:#x}: {why}"
            );
        }
    }
    assert_eq!(dump(&t).await, before);
}

#[tokio::test]
async fn wrong_magic_and_version_are_named() {
    let (_clock, bytes) = small().await;
    let mut bad = bytes.clone();
    bad[..8].copy_from_slice(b"NOTASNAP");
    let why = reason(snapshot::decode(&bad).unwrap_err());
    assert!(why.starts_with("bad magic"), "{why}");
    let why = reason(snapshot::decode(b"PK\x03\x04").unwrap_err());
    assert!(why.starts_with("bad magic"), "{why}");

    let mut bad = bytes.clone();
    bad[8..12].copy_from_slice(&2u32.to_le_bytes());
    let why = reason(snapshot::decode(&bad).unwrap_err());
    assert!(why.starts_with("unsupported format version 2"), "{why}");
    let mut bad = bytes;
    bad[8..12].copy_from_slice(&0u32.to_le_bytes());
    let why = reason(snapshot::decode(&bad).unwrap_err());
    assert!(why.starts_with("unsupported format version 0"), "{why}");
}

/// Splits a snapshot into (header frame, record frames); each frame
/// without its length prefix.
fn frames(bytes: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let body = &bytes[..bytes.len() - 32];
    let mut pos = 12;
    let mut out = Vec::new();
    while pos < body.len() {
        let len = u32::from_le_bytes(body[pos..pos + 4].try_into().unwrap()) as usize;
        out.push(body[pos + 4..pos + 4 + len].to_vec());
        pos += 4 + len;
    }
    let header = out.remove(0);
    (header, out)
}

/// Frames and checksums a snapshot from raw parts.
fn seal(header: &[u8], records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"STORSNAP".to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    for frame in std::iter::once(header).chain(records.iter().map(Vec::as_slice)) {
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(frame);
    }
    let digest = Sha256::digest(&out);
    out.extend_from_slice(&digest);
    out
}

#[tokio::test]
async fn well_checksummed_but_bad_records_are_named() {
    let (_clock, bytes) = small().await;
    let (header, records) = frames(&bytes);
    assert_eq!(records.len(), 5); // 2 entries, 1 queue, 1 message, End
    assert_eq!(seal(&header, &records), bytes);

    let mut swapped = records.clone();
    swapped.swap(0, 1);
    let why = reason(snapshot::decode(&seal(&header, &swapped)).unwrap_err());
    assert!(
        why.starts_with("records out of order at record #2"),
        "{why}"
    );

    let mut queue_first = records.clone();
    let q = queue_first.remove(2);
    queue_first.insert(0, q);
    let why = reason(snapshot::decode(&seal(&header, &queue_first)).unwrap_err());
    assert!(
        why.starts_with("records out of order at record #2"),
        "{why}"
    );

    let mut orphan = records.clone();
    orphan.remove(2); // the queue record; its message is now an orphan
    let why = reason(snapshot::decode(&seal(&header, &orphan)).unwrap_err());
    assert!(
        why.starts_with("records out of order at record #3"),
        "{why}"
    );

    let mut garbage = records.clone();
    garbage[1] = vec![0xff, 0xff, 0xff];
    let why = reason(snapshot::decode(&seal(&header, &garbage)).unwrap_err());
    assert!(why.starts_with("malformed record #2"), "{why}");

    let mut padded = records.clone();
    padded[0].push(0);
    let why = reason(snapshot::decode(&seal(&header, &padded)).unwrap_err());
    assert!(why.starts_with("malformed record #1"), "{why}");

    let mut no_end = records.clone();
    no_end.pop();
    let why = reason(snapshot::decode(&seal(&header, &no_end)).unwrap_err());
    assert!(why.starts_with("truncated at byte"), "{why}");

    let mut dup_end = records.clone();
    dup_end.push(records[4].clone());
    let why = reason(snapshot::decode(&seal(&header, &dup_end)).unwrap_err());
    assert!(why.starts_with("malformed record #5"), "{why}");

    let mut dropped = records.clone();
    dropped.remove(0);
    let why = reason(snapshot::decode(&seal(&header, &dropped)).unwrap_err());
    assert!(why.starts_with("malformed record #4"), "{why}"); // End count

    let why = reason(snapshot::decode(&seal(&[0xff; 2], &records)).unwrap_err());
    assert!(why.starts_with("malformed header record"), "{why}");
}

/// A memory store that declares fewer capabilities than it has.
#[derive(Clone)]
struct Limited {
    inner: MemoryStore,
    caps: Capabilities,
}

#[async_trait]
impl KvStore for Limited {
    fn backend_name(&self) -> &'static str {
        "limited"
    }
    fn capabilities(&self) -> Capabilities {
        self.caps
    }
    async fn get(&self, ns: &str, key: &[u8]) -> Result<Option<Bytes>> {
        KvStore::get(&self.inner, ns, key).await
    }
    async fn put(&self, ns: &str, key: &[u8], value: Bytes, o: PutOptions) -> Result<()> {
        self.inner.put(ns, key, value, o).await
    }
    async fn delete(&self, ns: &str, key: &[u8]) -> Result<bool> {
        self.inner.delete(ns, key).await
    }
    async fn get_many(&self, ns: &str, keys: &[Bytes]) -> Result<Vec<Option<Bytes>>> {
        self.inner.get_many(ns, keys).await
    }
    async fn write_batch(&self, ns: &str, ops: Vec<BatchOp>) -> Result<()> {
        let most = match self.caps.max_transaction_ops {
            0 => 100,
            n => n.min(100),
        };
        assert!(ops.len() <= most, "batch of {} ops", ops.len());
        self.inner.write_batch(ns, ops).await
    }
    async fn scan(&self, ns: &str, r: ScanRequest) -> Result<ScanPage> {
        self.inner.scan(ns, r).await
    }
    async fn list_namespaces(&self) -> Result<Vec<String>> {
        self.inner.list_namespaces().await
    }
    async fn drop_namespace(&self, ns: &str) -> Result<bool> {
        self.inner.drop_namespace(ns).await
    }
}

#[async_trait]
impl QueueStore for Limited {
    fn backend_name(&self) -> &'static str {
        "limited"
    }
    fn capabilities(&self) -> Capabilities {
        self.caps
    }
    async fn create_queue(&self, q: &str, c: QueueConfig) -> Result<()> {
        self.inner.create_queue(q, c).await
    }
    async fn queue_config(&self, q: &str) -> Result<QueueConfig> {
        self.inner.queue_config(q).await
    }
    async fn delete_queue(&self, q: &str) -> Result<bool> {
        self.inner.delete_queue(q).await
    }
    async fn list_queues(&self, p: &str) -> Result<Vec<String>> {
        self.inner.list_queues(p).await
    }
    async fn send_batch(&self, q: &str, m: Vec<SendMessage>) -> Result<Vec<MessageId>> {
        self.inner.send_batch(q, m).await
    }
    async fn receive(&self, q: &str, o: ReceiveOptions) -> Result<Vec<ReceivedMessage>> {
        self.inner.receive(q, o).await
    }
    async fn ack(&self, q: &str, r: &Receipt) -> Result<()> {
        self.inner.ack(q, r).await
    }
    async fn change_visibility(&self, q: &str, r: &Receipt, t: Duration) -> Result<()> {
        self.inner.change_visibility(q, r, t).await
    }
    async fn purge(&self, q: &str) -> Result<()> {
        self.inner.purge(q).await
    }
    async fn counts(&self, q: &str) -> Result<QueueCounts> {
        self.inner.counts(q).await
    }
    async fn export_queue(&self, q: &str) -> Result<QueueState> {
        self.inner.export_queue(q).await
    }
    async fn import_queue(&self, q: &str, s: QueueState) -> Result<()> {
        self.inner.import_queue(q, s).await
    }
}

#[tokio::test]
async fn targets_lacking_capabilities_are_refused_before_writing() {
    let f = fixture().await;
    let bytes = export_all(&f.store, &f.clock).await;
    let full = storage_memory::CAPABILITIES;
    let cases: [(Capabilities, &str); 5] = [
        (
            Capabilities { kv: false, ..full },
            "does not declare the KV tier",
        ),
        (
            Capabilities {
                kv_ttl: false,
                ..full
            },
            "kv_ttl",
        ),
        (
            Capabilities {
                queue: false,
                ..full
            },
            "does not declare the queue tier",
        ),
        (
            Capabilities {
                queue_fifo: false,
                ..full
            },
            "queue_fifo",
        ),
        (
            Capabilities {
                queue_dead_letter: false,
                ..full
            },
            "queue_dead_letter",
        ),
    ];
    for (caps, expected) in cases {
        let t = untouched_target(f.clock.now()).await;
        let before = dump(&t).await;
        let l = Limited {
            inner: t.clone(),
            caps,
        };
        let why = reason(
            snapshot::import(&bytes, Some(&l), Some(&l), ImportMode::Replace)
                .await
                .unwrap_err(),
        );
        assert!(why.contains(expected), "{expected}: {why}");
        assert_eq!(dump(&t).await, before);
    }

    // Missing targets.
    let t = untouched_target(f.clock.now()).await;
    let why = reason(
        snapshot::import(&bytes, None, Some(&t), ImportMode::Replace)
            .await
            .unwrap_err(),
    );
    assert!(why.contains("no KV target"), "{why}");
    let why = reason(
        snapshot::import(&bytes, Some(&t), None, ImportMode::Replace)
            .await
            .unwrap_err(),
    );
    assert!(why.contains("no queue target"), "{why}");

    // Limits: a target whose keys may be at most 2 bytes.
    let l = Limited {
        inner: t.clone(),
        caps: Capabilities {
            max_key_size: 2,
            ..full
        },
    };
    let before = dump(&t).await;
    let why = reason(
        snapshot::import(&bytes, Some(&l), Some(&l), ImportMode::Replace)
            .await
            .unwrap_err(),
    );
    assert!(why.contains("key is"), "{why}");
    assert_eq!(dump(&t).await, before);

    // Small transactions: batches respect max_transaction_ops (asserted in
    // the wrapper) and the result is still complete.
    let l = Limited {
        inner: t.clone(),
        caps: Capabilities {
            max_transaction_ops: 7,
            ..full
        },
    };
    snapshot::import(&bytes, Some(&l), Some(&l), ImportMode::Replace)
        .await
        .unwrap();
    assert_eq!(dump(&t).await, dump(&f.store).await);
}

#[tokio::test]
async fn empty_and_kv_only_snapshots() {
    let (clock, s) = store();
    let mut out = Vec::new();
    let summary = snapshot::export(None, None, clock.now(), &mut out)
        .await
        .unwrap();
    assert_eq!(summary.entries + summary.queues, 0);
    let decoded = snapshot::decode(&out).unwrap();
    assert_eq!(decoded.backend, "none");
    // An empty snapshot needs no targets.
    snapshot::import(&out, None, None, ImportMode::Replace)
        .await
        .unwrap();

    put(&s, "only", b"k", b"v").await;
    let mut out = Vec::new();
    snapshot::export(Some(&s), None, clock.now(), &mut out)
        .await
        .unwrap();
    let t = untouched_target(clock.now()).await;
    // KV only: the target's queues are not touched even in Replace mode.
    snapshot::import(&out, Some(&t), None, ImportMode::Replace)
        .await
        .unwrap();
    assert_eq!(t.list_namespaces().await.unwrap(), vec!["only".to_owned()]);
    assert_eq!(t.counts("keepq").await.unwrap().visible, 1);
}

#[test]
fn decode_never_panics_on_noise() {
    // Deterministic pseudo-random inputs, with and without a valid preamble
    // and checksum.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for n in 0..2_000usize {
        let mut body = b"STORSNAP\x01\x00\x00\x00".to_vec();
        for _ in 0..(n % 97) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            body.push((x & 0xff) as u8);
        }
        assert!(snapshot::decode(&body).is_err());
        let digest = Sha256::digest(&body);
        body.extend_from_slice(&digest);
        let _ = snapshot::decode(&body);
    }
}

#[tokio::test]
async fn decode_never_panics_on_well_framed_noise() {
    // A valid header and checksum around random record payloads, so the
    // record decoder itself sees garbage (huge length claims included).
    let (_clock, bytes) = small().await;
    let (header, records) = frames(&bytes);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for n in 0..3_000usize {
        let mut recs = records.clone();
        let i = n % recs.len();
        let mut payload = recs[i].clone();
        for _ in 0..(1 + n % 4) {
            let at = (next() as usize) % payload.len().max(1);
            if let Some(b) = payload.get_mut(at) {
                *b = next() as u8;
            }
        }
        if n % 3 == 0 {
            payload.truncate((next() as usize) % (payload.len() + 1));
        }
        if n % 5 == 0 {
            payload = (0..(n % 40)).map(|_| next() as u8).collect();
        }
        recs[i] = payload;
        let sealed = seal(&header, &recs);
        if let Err(e) = snapshot::decode(&sealed) {
            reason(e);
        }
    }
}

#[tokio::test]
async fn a_rebased_snapshot_keeps_the_time_left_on_every_instant() {
    let t0 = Timestamp::from_millis(1_000_000);
    let (clock, source) = store_at(t0);
    source
        .put(
            "s",
            b"ttl",
            Bytes::from_static(b"v"),
            PutOptions {
                expiry: storage_core::Expiry::After(Duration::from_secs(60)),
            },
        )
        .await
        .unwrap();
    source
        .create_queue("q", QueueConfig::default())
        .await
        .unwrap();
    source
        .send(
            "q",
            SendMessage::new("delayed").delayed(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    source
        .send("q", SendMessage::new("in flight"))
        .await
        .unwrap();
    let got = source
        .receive("q", ReceiveOptions::default())
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let bytes = export_all(&source, &clock).await;

    // Loaded a day later: without a rebase everything has run out ...
    let later = t0.saturating_add(Duration::from_secs(86_400));
    let (_, stale) = store_at(later);
    snapshot::import(&bytes, Some(&stale), Some(&stale), ImportMode::Replace)
        .await
        .unwrap();
    assert_eq!(stale.get("s", b"ttl").await.unwrap(), None);
    assert_eq!(stale.counts("q").await.unwrap().visible, 2);

    // ... rebased, each instant kept the time it had left.
    let rebased = snapshot::decode(&bytes).unwrap().rebased(later);
    assert_eq!(rebased.exported_at, later);
    let mut rebytes = Vec::new();
    snapshot::encode(&rebased, &mut rebytes).unwrap();
    let (clock2, target) = store_at(later);
    snapshot::import(&rebytes, Some(&target), Some(&target), ImportMode::Replace)
        .await
        .unwrap();
    let entry = target
        .scan("s", ScanRequest::all())
        .await
        .unwrap()
        .entries
        .remove(0);
    assert_eq!(
        entry.expires_at,
        Some(later.saturating_add(Duration::from_secs(60)))
    );
    assert_eq!(
        target.counts("q").await.unwrap(),
        QueueCounts {
            visible: 0,
            in_flight: 1,
            delayed: 1
        }
    );
    clock2.advance(Duration::from_secs(10));
    let d = target
        .receive("q", ReceiveOptions::default())
        .await
        .unwrap();
    assert_eq!(d[0].body, Bytes::from_static(b"delayed"));
    clock2.advance(Duration::from_secs(20));
    let d = target
        .receive("q", ReceiveOptions::default())
        .await
        .unwrap();
    assert_eq!(d[0].body, Bytes::from_static(b"in flight"));
    assert_eq!(d[0].receive_count, 2);

    // Backwards works too (a snapshot from the future).
    let earlier = Timestamp::from_millis(10);
    let back = snapshot::decode(&bytes).unwrap().rebased(earlier);
    assert_eq!(
        back.namespaces["s"][0].expires_at,
        Some(Timestamp::from_millis(60_010))
    );
}
