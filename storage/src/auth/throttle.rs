//! Slows down password guessing, whatever the protocol: REST logins, WebDAV Basic attempts
//! and S3 signature failures all count against the account and the client address.
//! After a few free failures each further one doubles the wait (capped), answered as
//! `Throttled(seconds)` (HTTP 429 with Retry-After).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

const FREE_FAILURES: u32 = 5;
const MAX_WAIT: Duration = Duration::from_secs(900);
/// Entries idle this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub struct Throttle {
    entries: Mutex<HashMap<Key, Entry>>,
}

#[derive(Hash, PartialEq, Eq, Clone)]
enum Key {
    Account(String),
    Addr(IpAddr),
    Other(String),
}

struct Entry {
    failures: u32,
    until: Instant,
    last: Instant,
}

/// The client's address, as the listener saw it. Front ends pass it to every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl Throttle {
    fn keys(account: &str, addr: Option<ClientAddr>) -> Vec<Key> {
        let mut k = vec![Key::Account(account.to_ascii_lowercase())];
        if let Some(ClientAddr(ip)) = addr {
            k.push(Key::Addr(ip));
        }
        k
    }

    /// Refuses while the account or the address must wait.
    pub fn check(&self, account: &str, addr: Option<ClientAddr>) -> Result<()> {
        let now = Instant::now();
        let entries = self.entries.lock().expect("throttle");
        let wait = Self::keys(account, addr)
            .iter()
            .filter_map(|k| entries.get(k))
            .filter(|e| e.until > now)
            .map(|e| e.until - now)
            .max();
        match wait {
            Some(w) => Err(Error::Throttled(w.as_secs().max(1))),
            None => Ok(()),
        }
    }

    pub fn failed(&self, account: &str, addr: Option<ClientAddr>) {
        let keys = Self::keys(account, addr);
        self.bump(keys);
    }

    pub fn succeeded(&self, account: &str, addr: Option<ClientAddr>) {
        let mut entries = self.entries.lock().expect("throttle");
        for k in Self::keys(account, addr) {
            entries.remove(&k);
        }
    }

    /// A plain rate limit on some action (resending a code): at most one per `every`.
    pub fn limit(&self, what: &str, every: Duration) -> Result<()> {
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("throttle");
        let key = Key::Other(what.to_owned());
        if let Some(e) = entries.get(&key)
            && e.until > now
        {
            return Err(Error::Throttled((e.until - now).as_secs().max(1)));
        }
        entries.insert(key, Entry { failures: 0, until: now + every, last: now });
        Ok(())
    }

    fn bump(&self, keys: Vec<Key>) {
        let now = Instant::now();
        let mut entries = self.entries.lock().expect("throttle");
        if entries.len() > 100_000 {
            entries.retain(|_, e| now.duration_since(e.last) < FORGET_AFTER);
        }
        for k in keys {
            let e = entries.entry(k).or_insert(Entry { failures: 0, until: now, last: now });
            if now.duration_since(e.last) > FORGET_AFTER {
                e.failures = 0;
            }
            e.failures += 1;
            e.last = now;
            if e.failures >= FREE_FAILURES {
                let exp = (e.failures - FREE_FAILURES).min(16);
                let wait = Duration::from_secs(1u64 << exp).min(MAX_WAIT);
                e.until = now + wait;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_after_free_failures_and_resets_on_success() {
        let t = Throttle::default();
        let ip = Some(ClientAddr("127.0.0.1".parse().unwrap()));
        for _ in 0..FREE_FAILURES - 1 {
            t.failed("alice", ip);
            assert!(t.check("alice", ip).is_ok());
        }
        t.failed("alice", ip);
        assert!(matches!(t.check("alice", None), Err(Error::Throttled(_))));
        // The address is slowed for other accounts too.
        assert!(matches!(t.check("bob", ip), Err(Error::Throttled(_))));
        t.succeeded("alice", ip);
        assert!(t.check("alice", ip).is_ok());
        assert!(t.limit("resend:1", Duration::from_secs(60)).is_ok());
        assert!(t.limit("resend:1", Duration::from_secs(60)).is_err());
    }
}
