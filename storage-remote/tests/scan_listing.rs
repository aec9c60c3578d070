//! A forward scan page on a store that lists in path order
//! (`RemoteConfig::ordered_listing`) lists from its start key and stops
//! once the page is full, and returns exactly what the list-everything
//! path returns over the same objects.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions as StorePutOptions, PutPayload, PutResult, Result,
};
use storage_core::{KvStore, ManualClock, PutOptions, ScanPage, ScanRequest};
use storage_remote::{RemoteConfig, RemoteStore};

/// InMemory that counts the objects its listings hand out.
#[derive(Debug, Default)]
struct CountingStore {
    inner: InMemory,
    listed: Arc<AtomicUsize>,
}

impl fmt::Display for CountingStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountingStore")
    }
}

impl CountingStore {
    fn counted(
        &self,
        s: BoxStream<'static, Result<ObjectMeta>>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let listed = Arc::clone(&self.listed);
        s.inspect(move |_| {
            listed.fetch_add(1, Ordering::Relaxed);
        })
        .boxed()
    }
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: StorePutOptions,
    ) -> Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counted(self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.counted(self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

const KEYS: usize = 2_000;

/// Two stores over the same objects: one lists in order, one does not.
async fn stores() -> (RemoteStore, RemoteStore, Arc<AtomicUsize>) {
    let counting = CountingStore::default();
    let listed = Arc::clone(&counting.listed);
    let shared: Arc<dyn ObjectStore> = Arc::new(counting);
    let clock = Arc::new(ManualClock::default());
    let config = RemoteConfig::new("p").with_content_hash_etags(false);
    let ordered = RemoteStore::with_clock(
        Arc::clone(&shared),
        config.clone().with_ordered_listing(true),
        clock.clone(),
    )
    .unwrap();
    let unordered = RemoteStore::with_clock(shared, config, clock).unwrap();
    for i in 0..KEYS {
        // Binary keys with a shared prefix, so offsets fall mid-escape.
        let key = [b"k\xff".as_slice(), format!("{i:05}").as_bytes()].concat();
        ordered
            .put("ns", &key, Bytes::from(vec![1; 8]), PutOptions::default())
            .await
            .unwrap();
    }
    // A key in another namespace, which no page may show.
    ordered
        .put("other", b"k", "x".into(), PutOptions::default())
        .await
        .unwrap();
    listed.store(0, Ordering::Relaxed);
    (ordered, unordered, listed)
}

fn keys(page: &ScanPage) -> Vec<Bytes> {
    page.entries.iter().map(|e| e.key.clone()).collect()
}

#[tokio::test]
async fn a_forward_page_lists_from_its_start_key_and_stops_when_full() {
    let (ordered, unordered, listed) = stores().await;
    let start = Bytes::from([b"k\xff".as_slice(), b"01000"].concat());
    let request = ScanRequest {
        start: std::ops::Bound::Included(start.clone()),
        ..ScanRequest::all()
    }
    .with_limit(10);

    let page = ordered.scan("ns", request.clone()).await.unwrap();
    let ordered_listed = listed.swap(0, Ordering::Relaxed);
    assert_eq!(page.entries.len(), 10);
    assert_eq!(page.entries[0].key, start);
    // The page, the one entry proving a next page, and the reads in flight.
    assert!(
        ordered_listed <= 40,
        "listed {ordered_listed} objects for one page"
    );

    let same = unordered.scan("ns", request).await.unwrap();
    let unordered_listed = listed.swap(0, Ordering::Relaxed);
    assert_eq!(keys(&page), keys(&same));
    assert_eq!(page.cursor, same.cursor);
    // The fallback sorts what it lists, but a forward page still lists
    // only the objects from its start key on (a directory skips the
    // others by name, without a `stat` each).
    assert_eq!(
        unordered_listed,
        KEYS - 1000,
        "the fallback lists from the start key"
    );
    // A reverse page has no offset to list from: the whole namespace.
    let reverse = unordered
        .scan("ns", ScanRequest::all().reversed().with_limit(10))
        .await
        .unwrap();
    assert_eq!(reverse.entries.len(), 10);
    assert_eq!(
        listed.swap(0, Ordering::Relaxed),
        KEYS,
        "a reverse page lists the whole namespace"
    );
}

#[tokio::test]
async fn ordered_and_unordered_listings_page_alike() {
    let (ordered, unordered, _) = stores().await;
    let requests = [
        ScanRequest::all().with_limit(7),
        ScanRequest::prefix(Bytes::from_static(b"k\xff0199")).with_limit(3),
        ScanRequest::range(
            Bytes::from([b"k\xff".as_slice(), b"00100"].concat()),
            Bytes::from([b"k\xff".as_slice(), b"00137"].concat()),
        )
        .with_limit(5),
        ScanRequest::all().reversed().with_limit(11),
    ];
    for base in requests {
        let (mut a, mut b) = (base.clone(), base.clone());
        let mut pages = 0;
        loop {
            let pa = ordered.scan("ns", a.clone()).await.unwrap();
            let pb = unordered.scan("ns", b.clone()).await.unwrap();
            assert_eq!(keys(&pa), keys(&pb), "{base:?} page {pages}");
            assert_eq!(pa.cursor, pb.cursor, "{base:?} page {pages}");
            pages += 1;
            match pa.cursor {
                Some(c) if pages < 400 => {
                    a.cursor = Some(c.clone());
                    b.cursor = Some(c);
                }
                _ => break,
            }
        }
    }
}
