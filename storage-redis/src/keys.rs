//! Key layout. Every key of one namespace shares the hash tag
//! `{<prefix>/<namespace>}`, so each script touches one Cluster slot.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{P/ns}:i` | sorted set, all scores 0 | the namespace's keys; `ZRANGEBYLEX` walks them in byte order |
//! | `{P/ns}:d` | hash | key → *record*: `<version>;<expiry>;<value>` (below) |
//! | `{P/ns}:x` | sorted set, score = expiry | expiring keys, for bounded purges |
//! | `{P/ns}:c` | string counter | highest version reserved (stores reserve blocks of 1,024 by `INCRBY`, see `versions.rs`); never deleted, so tokens are never reused |
//! | `{P}:ns` | set | namespace names ever written (filtered for live entries on listing) |
//!
//! A **record** packs everything about one key into one hash field, so a
//! read is one `HGET` (`HMGET` for many keys) and needs no script:
//! `<version>` is the decimal version the write was issued (from the
//! writing store's reserved block),
//! `<expiry>` the decimal expiry instant in ms by the store clock, exactly
//! as the client sent it (empty: never expires), then the value bytes
//! verbatim. The two `;` separators cannot occur in the decimals, so the
//! value needs no escaping. An entry with `expiry <= now` is absent; the
//! client judges that for reads, scripts for writes.
//!
//! Invariants every script keeps: a key is in `i` exactly when it has a
//! record in `d`; it is in `x` exactly when its record has an expiry. On a
//! standalone server a namespace is in `{P}:ns` whenever `i` is non-empty
//! (scripts add it when they create a key and remove it when they drop
//! the namespace); on a Cluster the registry lives in another slot, so
//! the client adds it after every write and re-checks after a drop.
//!
//! Namespace names and the prefix follow the namespace rules (letters,
//! digits, `_ - . : /`), so neither can contain a brace and break the tag.
//! Key bytes and values travel as script or command arguments, never in
//! script text.

/// The four keys of one namespace, in the order scripts take them.
#[derive(Debug, Clone)]
pub(crate) struct NsKeys {
    pub(crate) index: String,
    pub(crate) data: String,
    pub(crate) expiring: String,
    pub(crate) counter: String,
}

impl NsKeys {
    /// The keys as a list, in script order (KEYS[1..4]).
    pub(crate) fn all(&self) -> [&str; 4] {
        [&self.index, &self.data, &self.expiring, &self.counter]
    }
}

/// Builds keys for one store prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
    /// `{<prefix>}:ns`, built once.
    registry: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
            registry: format!("{{{prefix}}}:ns"),
        }
    }

    fn tagged(&self, ns: &str, suffix: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + ns.len() + 3 + suffix.len());
        key.push('{');
        key.push_str(&self.prefix);
        key.push('/');
        key.push_str(ns);
        key.push('}');
        key.push_str(suffix);
        key
    }

    /// The keys of namespace `ns`.
    pub(crate) fn ns(&self, ns: &str) -> NsKeys {
        NsKeys {
            index: self.tagged(ns, ":i"),
            data: self.tagged(ns, ":d"),
            expiring: self.tagged(ns, ":x"),
            counter: self.tagged(ns, ":c"),
        }
    }

    /// The records hash of namespace `ns` alone (what reads need).
    pub(crate) fn data(&self, ns: &str) -> String {
        self.tagged(ns, ":d")
    }

    /// The namespace registry.
    pub(crate) fn namespaces(&self) -> &str {
        &self.registry
    }

    /// Globs matching every key of this store and no other store's (for
    /// cleanup). The prefix holds no glob characters (namespace rules).
    pub(crate) fn patterns(&self) -> [String; 2] {
        [
            format!("{{{}/*", self.prefix),
            format!("{{{}}}:*", self.prefix),
        ]
    }
}
