//! Bad input and hostile setups give typed errors, never panics: empty
//! and oversized keys, bad namespaces, a missing bucket, wrong
//! credentials, an unreachable endpoint; credentials never appear in
//! `Debug` or error text; moto really enforces `If-Match` /
//! `If-None-Match` on PutObject.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions as OsPutOptions, UpdateVersion};
use storage_core::{AtomicKv, Error, KvStore, ManualClock, PutMode as Mode, PutOptions, Version};
use storage_remote::testing::S3Server;
use storage_remote::{RemoteStore, S3Config};

const SECRET: &str = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSECRET";

async fn rejects_bad_keys(store: RemoteStore) {
    let long = vec![b'k'; storage_remote::MAX_KEY_SIZE + 1];
    for key in [&b""[..], &long[..]] {
        assert!(matches!(
            store
                .put("ns", key, Bytes::new(), PutOptions::default())
                .await,
            Err(Error::InvalidInput { .. })
        ));
        assert!(matches!(
            store.get("ns", key).await,
            Err(Error::InvalidInput { .. })
        ));
        assert!(matches!(
            store
                .put_if("ns", key, Bytes::new(), Mode::Create, PutOptions::default())
                .await,
            Err(Error::InvalidInput { .. })
        ));
    }
    for ns in ["", "a b", "é", "x\0", "%2F", &"n".repeat(65)] {
        let r = store
            .put(ns, b"k", Bytes::new(), PutOptions::default())
            .await;
        assert!(
            matches!(r, Err(Error::InvalidInput { .. })),
            "{ns:?}: {r:?}"
        );
    }
    // Dots and slashes are legal in namespace names: such names must be
    // stored inside the prefix like any other (escaped to one segment).
    for ns in ["..", "../x", "/", "./.", "a/../.."] {
        store
            .put(ns, b"..", Bytes::from_static(b"h"), PutOptions::default())
            .await
            .expect(ns);
        assert_eq!(
            store.get(ns, b"..").await.expect(ns),
            Some(Bytes::from_static(b"h"))
        );
    }
    // A token this store never issued is a Conflict, not an input error.
    store
        .put("ns", b"k", Bytes::from_static(b"v"), PutOptions::default())
        .await
        .expect("put");
    for bogus in [
        "",
        ";v=",
        "\"d41d8cd98f00b204e9800998ecf8427e\"",
        "1",
        "garbage;v=1",
    ] {
        let r = store
            .put_if(
                "ns",
                b"k",
                Bytes::new(),
                Mode::Update(Version::new(bogus)),
                PutOptions::default(),
            )
            .await;
        assert!(
            matches!(
                r,
                Err(Error::Conflict {
                    current: Some(_),
                    ..
                })
            ),
            "{bogus:?}: {r:?}"
        );
    }
    // A tombstone's ETag cannot be used to resurrect a deleted key.
    let v = store
        .get_versioned("ns", b"k")
        .await
        .expect("read")
        .expect("live")
        .version;
    store.delete_if("ns", b"k", &v).await.expect("delete_if");
    for guess in [
        "\"d41d8cd98f00b204e9800998ecf8427e\"",
        "\"e3b0c44298fc1c149afbf4c8996fb924\"",
    ] {
        let r = store
            .put_if(
                "ns",
                b"k",
                Bytes::new(),
                Mode::Update(Version::new(guess)),
                PutOptions::default(),
            )
            .await;
        assert!(
            matches!(r, Err(Error::Conflict { current: None, .. })),
            "{r:?}"
        );
    }
    assert_eq!(store.get("ns", b"k").await.expect("get"), None);
    let names = store.list_namespaces().await.expect("list");
    for ns in ["..", "../x", "/", "./.", "a/../.."] {
        assert!(names.contains(&ns.to_owned()), "{ns} listed: {names:?}");
    }
}

#[tokio::test]
async fn in_memory_rejects_bad_input_with_typed_errors() {
    let (store, _keep) = common::memory();
    rejects_bad_keys(store).await;
}

#[tokio::test]
async fn local_dir_rejects_bad_input_with_typed_errors() {
    let (store, _keep) = common::local();
    rejects_bad_keys(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_rejects_bad_input_with_typed_errors() {
    let server = common::server();
    let (store, keep) = common::s3(&server, "bad");
    rejects_bad_keys(store).await;
    keep.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bucket_is_not_found_never_absent() {
    let server = common::server();
    let store = RemoteStore::s3(
        &server.config("no-such-bucket-here"),
        Arc::new(ManualClock::default()),
    )
    .expect("client");
    let get = store.get("ns", b"k").await;
    assert!(matches!(get, Err(Error::NotFound { .. })), "{get:?}");
    let put = store
        .put("ns", b"k", Bytes::new(), PutOptions::default())
        .await;
    assert!(matches!(put, Err(Error::NotFound { .. })), "{put:?}");
    let cas = store
        .put_if(
            "ns",
            b"k",
            Bytes::new(),
            Mode::Create,
            PutOptions::default(),
        )
        .await;
    assert!(matches!(cas, Err(Error::NotFound { .. })), "{cas:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_a_typed_error_and_never_printed() {
    // With no unauthenticated actions allowed, moto checks every request's
    // access key against its IAM state, where ours does not exist.
    let server =
        S3Server::spawn(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]).unwrap_or_else(|e| panic!("{e}"));
    let config = S3Config::endpoint(server.endpoint(), "any-bucket", "AKIAWRONGKEY", SECRET);
    let store = RemoteStore::s3(&config, Arc::new(ManualClock::default())).expect("client");
    let err = store
        .put("ns", b"k", Bytes::from_static(b"v"), PutOptions::default())
        .await
        .expect_err("refused");
    assert!(matches!(err, Error::Backend { .. }), "{err:?}");
    assert!(!err.is_retryable());
    let text = format!("{err} {err:?}");
    assert!(!text.contains(SECRET), "secret in the error: {text}");
    let debug = format!("{config:?} {store:?}");
    assert!(!debug.contains(SECRET), "secret in Debug: {debug}");
    assert!(debug.contains("<redacted>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_is_retryable_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let config = S3Config::endpoint(format!("http://127.0.0.1:{port}"), "b", "k", SECRET);
    let store = RemoteStore::s3(&config, Arc::new(ManualClock::default())).expect("client");
    let err = store.get("ns", b"k").await.expect_err("nothing listens");
    assert!(err.is_retryable(), "{err:?}");
    assert!(!format!("{err:?}").contains(SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moto_enforces_if_match_and_if_none_match_on_put_object() {
    let server = common::server();
    let (store, keep) = common::s3(&server, "cond");
    let os = store.object_store().clone();
    let p = Path::from("raw/obj");
    let create = |body: &'static [u8]| {
        let os = os.clone();
        let p = p.clone();
        async move {
            os.put_opts(
                &p,
                Bytes::from_static(body).into(),
                OsPutOptions::from(PutMode::Create),
            )
            .await
        }
    };
    let first = create(b"one").await.expect("If-None-Match on a new key");
    assert!(matches!(
        create(b"two").await,
        Err(object_store::Error::AlreadyExists { .. })
    ));
    let upd = |etag: Option<String>, body: &'static [u8]| {
        let os = os.clone();
        let p = p.clone();
        async move {
            let mode = PutMode::Update(UpdateVersion {
                e_tag: etag,
                version: None,
            });
            os.put_opts(
                &p,
                Bytes::from_static(body).into(),
                OsPutOptions::from(mode),
            )
            .await
        }
    };
    let second = upd(first.e_tag.clone(), b"three")
        .await
        .expect("If-Match current");
    assert!(matches!(
        upd(first.e_tag.clone(), b"four").await,
        Err(object_store::Error::Precondition { .. })
    ));
    assert_ne!(first.e_tag, second.e_tag);
    let got = os.get(&p).await.expect("get").bytes().await.expect("bytes");
    assert_eq!(&got[..], b"three", "refused writes changed nothing");
    keep.cleanup().await;
}
