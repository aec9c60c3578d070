//! Key layout. Every key of one namespace shares the hash tag
//! `{<prefix>/<namespace>}`, so each script touches one Cluster slot.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{P/ns}:i` | sorted set, all scores 0 | the namespace's keys; `ZRANGEBYLEX` walks them in byte order |
//! | `{P/ns}:d` | hash | key → value |
//! | `{P/ns}:v` | hash | key → version (decimal) |
//! | `{P/ns}:e` | hash | key → expiry instant, ms by the store clock (absent: never) |
//! | `{P/ns}:x` | sorted set, score = expiry | expiring keys, for bounded purges |
//! | `{P/ns}:c` | string counter | last version issued; never deleted, so tokens are never reused |
//! | `{P}:ns` | set | namespace names ever written (filtered for live entries on listing) |
//!
//! Namespace names and the prefix follow the namespace rules (letters,
//! digits, `_ - . : /`), so neither can contain a brace and break the tag.
//! Key bytes and values travel as script arguments, never in script text.

/// The six keys of one namespace, in the order scripts take them.
#[derive(Debug, Clone)]
pub(crate) struct NsKeys {
    pub(crate) index: String,
    pub(crate) data: String,
    pub(crate) versions: String,
    pub(crate) expiry: String,
    pub(crate) expiring: String,
    pub(crate) counter: String,
}

impl NsKeys {
    /// The keys as a list, in script order (KEYS[1..6]).
    pub(crate) fn all(&self) -> [&str; 6] {
        [
            &self.index,
            &self.data,
            &self.versions,
            &self.expiry,
            &self.expiring,
            &self.counter,
        ]
    }
}

/// Builds keys for one store prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    /// The keys of namespace `ns`.
    pub(crate) fn ns(&self, ns: &str) -> NsKeys {
        let tag = format!("{{{}/{}}}", self.prefix, ns);
        NsKeys {
            index: format!("{tag}:i"),
            data: format!("{tag}:d"),
            versions: format!("{tag}:v"),
            expiry: format!("{tag}:e"),
            expiring: format!("{tag}:x"),
            counter: format!("{tag}:c"),
        }
    }

    /// The namespace registry.
    pub(crate) fn namespaces(&self) -> String {
        format!("{{{}}}:ns", self.prefix)
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
