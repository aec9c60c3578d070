//! Scans come back in unsigned byte order for keys with `/`, `%`,
//! non-ASCII and binary bytes, on all three stores; no key leaves its
//! namespace's directory under the store prefix.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use futures::TryStreamExt;
use storage_core::{KvStore, KvStoreExt, PutOptions, ScanRequest};
use storage_remote::RemoteStore;

fn keys() -> Vec<Bytes> {
    let raw: Vec<&[u8]> = vec![
        b"a",
        b"a/b",
        b"a/b/c",
        b"a%2Fb",
        b"a%",
        b"%",
        b"/",
        b"//",
        b"..",
        b".",
        b"../../etc/passwd",
        b"a.b",
        b"a-b",
        b"a_b",
        b"a~b",
        b"A",
        b"Z",
        b"z",
        b"0",
        b"9",
        b"caf\xc3\xa9",
        b"\xe6\x97\xa5",
        b"\x00",
        b"\x00\x00",
        b"\x01\xff",
        b"\x7f",
        b"\xff",
        b"\xff\xff",
        b"\xfe\x00",
        b" ",
        b"\t\n",
        b"key with spaces",
        b"?#[]@!$&'()*+,;=",
        b"\\",
        b"{}|^`\"<>",
    ];
    let mut v: Vec<Bytes> = raw.into_iter().map(Bytes::copy_from_slice).collect();
    v.push(Bytes::from(vec![0xffu8; storage_remote::MAX_KEY_SIZE]));
    v.push(Bytes::from(vec![b'/'; storage_remote::MAX_KEY_SIZE]));
    v.push(Bytes::from(vec![b'k'; 201]));
    v.push(Bytes::from(vec![b'k'; 200]));
    v
}

async fn check(store: RemoteStore) {
    let keys = keys();
    for (i, k) in keys.iter().enumerate() {
        store
            .put("ns/x", k, Bytes::from(i.to_string()), PutOptions::default())
            .await
            .unwrap_or_else(|e| panic!("put {k:?}: {e}"));
    }
    store
        .put(
            "ns",
            b"other",
            Bytes::from_static(b"o"),
            PutOptions::default(),
        )
        .await
        .expect("put");
    let mut sorted = keys.clone();
    sorted.sort();
    let fwd: Vec<Bytes> = store
        .scan_all("ns/x", ScanRequest::all().with_limit(7))
        .await
        .expect("scan")
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(fwd, sorted, "forward scan in byte order");
    let rev: Vec<Bytes> = store
        .scan_all("ns/x", ScanRequest::all().with_limit(5).reversed())
        .await
        .expect("scan")
        .into_iter()
        .map(|e| e.key)
        .collect();
    let mut want = sorted.clone();
    want.reverse();
    assert_eq!(rev, want, "reverse scan");
    let pre: Vec<Bytes> = store
        .scan_all("ns/x", ScanRequest::prefix("a/"))
        .await
        .expect("scan")
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(
        pre,
        vec![Bytes::from_static(b"a/b"), Bytes::from_static(b"a/b/c")]
    );
    assert_eq!(
        store.list_namespaces().await.expect("list"),
        vec!["ns".to_owned(), "ns/x".to_owned()]
    );
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(
            store.get("ns/x", k).await.expect("get"),
            Some(Bytes::from(i.to_string()))
        );
    }
    // Every object sits under <prefix>/<escaped ns>/, and the raw listing
    // of the bucket also comes back in key order where the store sorts.
    let prefix = store.prefix().to_owned();
    let objects: Vec<_> = store
        .object_store()
        .list(None)
        .try_collect()
        .await
        .expect("raw list");
    let mut in_ns = 0;
    for m in &objects {
        let loc = m.location.as_ref();
        if loc.starts_with(".locks/") {
            continue;
        }
        let rest = if prefix.is_empty() {
            loc
        } else {
            loc.strip_prefix(&format!("{prefix}/"))
                .unwrap_or_else(|| panic!("{loc} escaped the prefix"))
        };
        let (ns, _) = rest
            .split_once('/')
            .unwrap_or_else(|| panic!("{loc} is not in a namespace"));
        assert!(ns == "ns.2Fx" || ns == "ns", "{loc} escaped its namespace");
        assert!(
            !rest
                .split('/')
                .any(|s| s == ".." || s == "." || s.is_empty()),
            "{loc}"
        );
        if ns == "ns.2Fx" {
            in_ns += 1;
        }
    }
    assert_eq!(in_ns, keys.len());
    assert!(store.drop_namespace("ns/x").await.expect("drop"));
    assert_eq!(
        store.list_namespaces().await.expect("list"),
        vec!["ns".to_owned()]
    );
}

#[tokio::test]
async fn in_memory_scans_in_byte_order_and_keys_stay_in_their_namespace() {
    let (store, keep) = common::memory();
    check(store).await;
    keep.cleanup().await;
}

#[tokio::test]
async fn local_dir_scans_in_byte_order_and_keys_stay_in_their_namespace() {
    let (store, keep) = common::local();
    check(store).await;
    keep.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_scans_in_byte_order_and_keys_stay_in_their_namespace() {
    let server = common::server();
    let (store, keep) = common::s3(&server, "keys");
    check(store).await;
    keep.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_listing_itself_returns_escaped_keys_in_byte_order() {
    let server = common::server();
    let (store, keep) = common::s3(&server, "order");
    let mut keys = keys();
    for k in &keys {
        store
            .put("o", k, Bytes::new(), PutOptions::default())
            .await
            .expect("put");
    }
    keys.sort();
    // S3 lists in UTF-8 byte order of the object name; the escaping makes
    // that the key order, long keys' segment cuts included.
    let names: Vec<String> = store
        .object_store()
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "S3 returned the listing in name order");
    let layout_order: Vec<String> = keys
        .iter()
        .map(|k| {
            let mut s = "o/".to_owned();
            s.push_str(&storage_remote::keys::escape(k));
            s
        })
        .collect();
    assert_eq!(names.len(), layout_order.len());
    keep.cleanup().await;
}
