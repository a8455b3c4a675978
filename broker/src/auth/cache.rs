//! A small memory of passwords that verified recently, so a reconnect storm (a load balancer
//! restart, a network blip dropping thousands of clients at once) does not redo thousands of
//! deliberately slow PBKDF2/argon2 computations.
//!
//! It lives inside one [`crate::auth::Authenticator`], which is rebuilt for every configuration
//! revision, so a changed or removed password can never be served from it. Entries are keyed by
//! SHA-256 over a random per-cache secret, the username and the password: the cache never holds
//! a password, and without the secret (which never leaves memory) its keys cannot be used to
//! test password guesses offline. Only successes are remembered.

use std::num::NonZeroUsize;

use lru::LruCache;
use parking_lot::Mutex;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Identifies one (username, password) pair without holding the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct CacheKey([u8; 32]);

/// Recently verified (username, password) pairs, least recently used evicted first.
pub(super) struct VerifiedPasswords {
    key_secret: [u8; 32],
    /// Credential fingerprint of the password entry each pair matched.
    entries: Mutex<LruCache<CacheKey, u64>>,
}

impl VerifiedPasswords {
    /// An empty cache holding at most `capacity` pairs.
    pub(super) fn new(capacity: NonZeroUsize) -> VerifiedPasswords {
        let mut key_secret = [0u8; 32];
        rand::rng().fill_bytes(&mut key_secret);
        VerifiedPasswords {
            key_secret,
            entries: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// The cache key of a (username, password) pair. The username's length is hashed too, so
    /// ("ab", "c") and ("a", "bc") differ.
    pub(super) fn key(&self, username: &str, password: &[u8]) -> CacheKey {
        let digest = Sha256::new()
            .chain_update(self.key_secret)
            .chain_update((username.len() as u64).to_be_bytes())
            .chain_update(username.as_bytes())
            .chain_update(password)
            .finalize();
        CacheKey(digest.into())
    }

    /// The credential the pair verified against, if it verified recently.
    pub(super) fn get(&self, key: &CacheKey) -> Option<u64> {
        self.entries.lock().get(key).copied()
    }

    /// Records that the pair verified against the entry with fingerprint `credential`.
    pub(super) fn remember(&self, key: CacheKey, credential: u64) {
        self.entries.lock().put(key, credential);
    }

    /// How many pairs are remembered.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(capacity: usize) -> VerifiedPasswords {
        VerifiedPasswords::new(NonZeroUsize::new(capacity).expect("non-zero capacity"))
    }

    #[test]
    fn a_remembered_pair_is_found() {
        let cache = cache(4);
        let key = cache.key("alice", b"secret");
        cache.remember(key, 7);
        assert_eq!(cache.get(&cache.key("alice", b"secret")), Some(7));
    }

    #[test]
    fn another_password_is_not_found() {
        let cache = cache(4);
        cache.remember(cache.key("alice", b"secret"), 7);
        assert_eq!(cache.get(&cache.key("alice", b"secret2")), None);
    }

    #[test]
    fn username_and_password_boundaries_are_not_confused() {
        let cache = cache(4);
        assert_ne!(cache.key("ab", b"c"), cache.key("a", b"bc"));
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let cache = cache(2);
        for user in ["a", "b", "c", "d"] {
            cache.remember(cache.key(user, b"pw"), 1);
        }
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn keys_differ_between_caches() {
        assert_ne!(
            cache(1).key("alice", b"secret"),
            cache(1).key("alice", b"secret")
        );
    }
}
