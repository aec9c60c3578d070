//! Tokens are judged exactly, also where `Update` / `delete_if` skip
//! their read of the key (content-hash stores: S3 on moto, a local
//! directory), and on the read path (object_store's `InMemory`):
//!
//! - the token of an entry that has since expired is refused with
//!   `Conflict` and nothing is written;
//! - a token naming a tombstone's ETag (read with raw object_store after
//!   a `delete_if`) is refused, so a deleted key is never brought back;
//! - a string that is not a token is `Conflict`, never an input error;
//! - on `InMemory`, where `Update` / `delete_if` skip their read for a
//!   token the handle tagged for that path, a tag moved onto another
//!   ETag or key, or a token of another handle, never skips it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use storage_core::{AtomicKv, Error, KvStore, ManualClock, PutMode, PutOptions, Version};
use storage_remote::RemoteStore;

const NS: &str = "cas";

/// The object of key `key` (letters and digits only: no escaping).
fn path(store: &RemoteStore, key: &str) -> Path {
    let prefix = store.prefix();
    if prefix.is_empty() {
        Path::from(format!("{NS}/{key}"))
    } else {
        Path::from(format!("{prefix}/{NS}/{key}"))
    }
}

/// The raw object: its ETag and bytes.
async fn raw(store: &RemoteStore, key: &str) -> (Option<String>, Bytes) {
    let got = store
        .object_store()
        .get(&path(store, key))
        .await
        .expect("raw get");
    let e_tag = got.meta.e_tag.clone();
    (e_tag, got.bytes().await.expect("raw bytes"))
}

/// A token in the adapter's documented form (`<expiry>:<len>:<etag>`).
fn token(expiry: Option<u64>, e_tag: &str) -> Version {
    let x = expiry.map_or_else(|| "-".to_owned(), |ms| ms.to_string());
    Version::new(format!("{x}:{}:{e_tag}", e_tag.len()))
}

fn conflict<T: std::fmt::Debug>(what: &str, r: storage_core::Result<T>) -> Option<Version> {
    match r {
        Err(Error::Conflict { current, .. }) => current,
        other => panic!("{what}: expected Conflict, got {other:?}"),
    }
}

async fn expired_token_is_refused(store: &RemoteStore, clock: &ManualClock) {
    let v = store
        .put_if(
            NS,
            b"exp",
            Bytes::from_static(b"old"),
            PutMode::Create,
            PutOptions::ttl(Duration::from_secs(10)),
        )
        .await
        .expect("create");
    let read = store.get_versioned(NS, b"exp").await.expect("read");
    assert_eq!(
        read.map(|r| r.version),
        Some(v.clone()),
        "read = write token"
    );
    let before = raw(store, "exp").await;
    clock.advance(Duration::from_secs(10));
    let cur = conflict(
        "Update with an expired entry's token",
        store
            .put_if(
                NS,
                b"exp",
                Bytes::from_static(b"new"),
                PutMode::Update(v.clone()),
                PutOptions::default(),
            )
            .await,
    );
    assert_eq!(cur, None, "an expired entry is absent");
    let cur = conflict(
        "delete_if with an expired entry's token",
        store.delete_if(NS, b"exp", &v).await,
    );
    assert_eq!(cur, None);
    assert_eq!(raw(store, "exp").await, before, "nothing was written");
    assert_eq!(store.get(NS, b"exp").await.expect("get"), None);
    // The key is absent: Create takes it over.
    store
        .put_if(
            NS,
            b"exp",
            Bytes::from_static(b"again"),
            PutMode::Create,
            PutOptions::default(),
        )
        .await
        .expect("create over the expired entry");
}

async fn tombstone_etag_is_refused(store: &RemoteStore) {
    let v = store
        .put_if(
            NS,
            b"tomb",
            Bytes::from_static(b"v"),
            PutMode::Create,
            PutOptions::default(),
        )
        .await
        .expect("create");
    store.delete_if(NS, b"tomb", &v).await.expect("delete_if");
    let (e_tag, bytes) = raw(store, "tomb").await;
    assert!(bytes.is_empty(), "a tombstone is the empty object");
    let e_tag = e_tag.expect("the store reports ETags");
    let bare = e_tag.trim_matches('"').to_owned();
    let far = Some(u64::MAX);
    let mut guesses = vec![
        token(None, &e_tag),
        token(far, &e_tag),
        token(None, &bare),
        token(None, &format!("\"{}\"", bare.to_ascii_uppercase())),
        token(None, &format!("W/{e_tag}")),
        Version::new(e_tag.clone()),
    ];
    guesses.push(Version::new(format!("{};v=1", guesses[0])));
    for guess in &guesses {
        let cur = conflict(
            &format!("Update with tombstone token {guess}"),
            store
                .put_if(
                    NS,
                    b"tomb",
                    Bytes::from_static(b"zombie"),
                    PutMode::Update(guess.clone()),
                    PutOptions::default(),
                )
                .await,
        );
        assert_eq!(cur, None, "{guess}");
        let cur = conflict(
            &format!("delete_if with tombstone token {guess}"),
            store.delete_if(NS, b"tomb", guess).await,
        );
        assert_eq!(cur, None, "{guess}");
    }
    assert_eq!(store.get(NS, b"tomb").await.expect("get"), None);
    let (after, bytes) = raw(store, "tomb").await;
    assert!(bytes.is_empty(), "still the tombstone");
    assert_eq!(after.as_deref(), Some(e_tag.as_str()));
}

async fn unparseable_token_is_conflict(store: &RemoteStore) {
    let v = store
        .put_if(
            NS,
            b"bad",
            Bytes::from_static(b"v"),
            PutMode::Create,
            PutOptions::default(),
        )
        .await
        .expect("create");
    let (e_tag, _) = raw(store, "bad").await;
    let e_tag = e_tag.expect("ETag");
    let text = v.to_string();
    let mut bogus: Vec<String> = [
        "",
        "-",
        ":",
        "-::",
        "-:0:",
        "garbage;v=1",
        "\u{0}\u{ffff}",
        "-:99999999999999999999999:x",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    bogus.extend([
        // The issued token, spelt otherwise or cut short.
        format!("-:0{}:{e_tag}", e_tag.len()),
        format!("-:+{}:{e_tag}", e_tag.len()),
        format!("00{text}"),
        format!("{text} "),
        format!("{text};v="),
        text[..text.len() - 1].to_owned(),
        // The bare ETag (the token form of earlier versions).
        e_tag.clone(),
    ]);
    for b in &bogus {
        let t = Version::new(b.as_str());
        let cur = conflict(
            &format!("Update with {b:?}"),
            store
                .put_if(
                    NS,
                    b"bad",
                    Bytes::from_static(b"x"),
                    PutMode::Update(t.clone()),
                    PutOptions::default(),
                )
                .await,
        );
        assert_eq!(cur, Some(v.clone()), "{b:?}");
        let cur = conflict(
            &format!("delete_if with {b:?}"),
            store.delete_if(NS, b"bad", &t).await,
        );
        assert_eq!(cur, Some(v.clone()), "{b:?}");
        let cur = conflict(
            &format!("Update of an absent key with {b:?}"),
            store
                .put_if(
                    NS,
                    b"never",
                    Bytes::from_static(b"x"),
                    PutMode::Update(t),
                    PutOptions::default(),
                )
                .await,
        );
        assert_eq!(cur, None, "{b:?}");
    }
    assert_eq!(
        store.get(NS, b"bad").await.expect("get"),
        Some(Bytes::from_static(b"v"))
    );
    assert_eq!(store.get(NS, b"never").await.expect("get"), None);
    // The real token still works.
    store
        .put_if(
            NS,
            b"bad",
            Bytes::from_static(b"w"),
            PutMode::Update(v),
            PutOptions::default(),
        )
        .await
        .expect("Update with the issued token");
}

async fn all(store: RemoteStore, clock: ManualClock) {
    expired_token_is_refused(&store, &clock).await;
    tombstone_etag_is_refused(&store).await;
    unparseable_token_is_conflict(&store).await;
}

#[tokio::test]
async fn local_dir_refuses_dead_and_bogus_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::at_fixed_start();
    let store = RemoteStore::local_dir(dir.path(), Arc::new(clock.clone())).expect("open");
    all(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_refuses_dead_and_bogus_tokens() {
    let server = common::server();
    let clock = ManualClock::at_fixed_start();
    let (store, bucket) = server
        .store("cas", Arc::new(clock.clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    all(store, clock).await;
    bucket.cleanup().await;
}

#[tokio::test]
async fn in_memory_refuses_dead_and_bogus_tokens() {
    let clock = ManualClock::at_fixed_start();
    let store = RemoteStore::in_memory(Arc::new(clock.clone()));
    all(store, clock).await;
}

/// A content-hash store the adapter knows nothing about: it learns the
/// tombstone ETag from the first tombstone it writes or reads.
#[tokio::test]
async fn generic_content_hash_store_refuses_dead_and_bogus_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = ManualClock::at_fixed_start();
    let os = storage_remote::LocalDirStore::open(dir.path()).expect("open");
    let store = RemoteStore::with_clock(
        Arc::new(os),
        storage_remote::RemoteConfig::new("p"),
        Arc::new(clock.clone()),
    )
    .expect("store");
    all(store, clock).await;
}

/// The tag prefix (`~` and 8 characters) of a tagged token.
fn tag_of(v: &Version) -> &str {
    let t = v.as_str();
    assert!(t.starts_with('~'), "{t} is tagged");
    &t[..9]
}

/// `Update` of `key` to `value` under token `v`.
async fn update(
    store: &RemoteStore,
    key: &[u8],
    value: &'static [u8],
    v: Version,
) -> storage_core::Result<Version> {
    store
        .put_if(
            NS,
            key,
            Bytes::from_static(value),
            PutMode::Update(v),
            PutOptions::default(),
        )
        .await
}

/// Tags vouch for one path and one state: moved onto a tombstone's ETag
/// or onto another key they do not check out, and the read path refuses
/// the token. Another handle over the same `InMemory` (untagged) and
/// this one accept each other's tokens through their reads.
#[tokio::test]
async fn in_memory_tags_vouch_for_one_path_and_state() {
    let clock = ManualClock::at_fixed_start();
    let store = RemoteStore::in_memory(Arc::new(clock.clone()));
    let put = |key: &'static [u8], mode: PutMode| {
        let store = store.clone();
        async move {
            store
                .put_if(
                    NS,
                    key,
                    Bytes::from_static(b"v"),
                    mode,
                    PutOptions::default(),
                )
                .await
        }
    };
    let a = put(b"a", PutMode::Create).await.expect("create a");
    let b = put(b"b", PutMode::Create).await.expect("create b");
    let read = store
        .get_versioned(NS, b"a")
        .await
        .expect("read")
        .expect("a");
    assert_eq!(read.version, a, "a read hands out the write's tagged token");
    // A tombstone at b, then a's tag on b's tombstone ETag.
    store.delete_if(NS, b"b", &b).await.expect("delete_if b");
    let (tomb, bytes) = raw(&store, "b").await;
    assert!(bytes.is_empty());
    let tomb = tomb.expect("ETag");
    let moved = Version::new(format!("{}{}", tag_of(&a), token(None, &tomb)));
    for key in [&b"a"[..], b"b"] {
        let r = update(&store, key, b"zombie", moved.clone()).await;
        assert!(matches!(r, Err(Error::Conflict { .. })), "{r:?}");
        let r = store.delete_if(NS, key, &moved).await;
        assert!(matches!(r, Err(Error::Conflict { .. })), "{r:?}");
    }
    assert_eq!(
        store.get(NS, b"b").await.expect("get"),
        None,
        "b stays deleted"
    );
    // a's token, as is, on another key: refused, b untouched.
    let r = update(&store, b"b", b"x", a.clone()).await;
    assert!(
        matches!(r, Err(Error::Conflict { current: None, .. })),
        "{r:?}"
    );
    // Every tag but the right one, on a's live state: the read path
    // judges the state and accepts it.
    let untagged = a.as_str()[9..].to_owned();
    let forged = Version::new(format!("~AAAAAAAA{untagged}"));
    assert_ne!(forged, a);
    let a2 = update(&store, b"a", b"2", forged)
        .await
        .expect("a wrong tag on the live state goes through the read");
    // Another handle over the same objects: untagged tokens, and each
    // accepts the other's through its read.
    let other = RemoteStore::new(
        store.object_store().clone(),
        storage_remote::RemoteConfig::new(""),
    )
    .expect("other handle");
    let a3 = update(&other, b"a", b"3", a2)
        .await
        .expect("the other handle takes a tagged token");
    assert!(!a3.as_str().starts_with('~'), "{a3} is untagged");
    let a4 = update(&store, b"a", b"4", a3.clone())
        .await
        .expect("this handle takes the other's token");
    let r = other.delete_if(NS, b"a", &a3).await;
    assert!(
        matches!(r, Err(Error::Conflict { .. })),
        "a superseded token: {r:?}"
    );
    store
        .delete_if(NS, b"a", &a4)
        .await
        .expect("delete_if with the latest token");
    assert_eq!(other.get(NS, b"a").await.expect("get"), None);
}
