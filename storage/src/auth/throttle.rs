//! Slows down password guessing, whatever the protocol (REST logins, WebDAV and REST Basic,
//! link passwords), without handing anyone a way to lock somebody else out.
//!
//! The rules, and why:
//! - Failures count per (account, address) and per address. After `PAIR_FREE` failures of
//!   one address against one account, each further one doubles that pair's wait; after
//!   `ADDR_FREE` failures of one address against any accounts, each further one doubles the
//!   address's wait (spraying one guess over many accounts). Both are capped at `MAX_WAIT`
//!   and answered `Throttled(seconds)` (HTTP 429 with Retry-After).
//! - A success clears only its own pair: signing in to one's own account does not wipe an
//!   address's record of guessing at others.
//! - So a correct password from an address that has not failed for that account (and is not
//!   itself guessing at many accounts) is never refused: a stranger's wrong passwords from
//!   elsewhere cannot lock the owner out.
//! - The guessing rate against one account from many addresses is still bounded, by a
//!   ceiling that slows and never blocks: once an account has `ACCOUNT_CEILING` failures in
//!   `ACCOUNT_WINDOW` (from any addresses), every attempt for it from an address where it
//!   has not signed in lately waits `SLOW_DELAY` before it is checked (right or wrong, so
//!   timing tells nothing), and the addresses that already failed for it share
//!   `RETRIES_PER_MINUTE` attempts a minute. The owner's own recent addresses pass at once,
//!   and a new address is slowed, never refused. One warning per window names the account.
//!   What is left to an attacker is one guess per fresh address (IPv6 counts by /64).
//! - An attempt is counted from when it is admitted, not from when its secret proves wrong:
//!   while attempts of a pair (or an address) are being checked, they count toward its free
//!   failures, and one more waits for them (never refused for it) until their outcome is
//!   known. So parallel guesses get no more checks than sequential ones, and the owner's
//!   parallel requests only queue briefly.
//! - Registrations count per address: `REGISTRATIONS_PER_CLIENT_HOUR`, then they are
//!   answered alike and do nothing (each costs an argon2 run and a pending account).
//! - S3 signatures are not guessable (40 random characters), so their failures only count
//!   per address, to protect the server: `S3_FREE_PER_MINUTE` a minute, then SlowDown.
//!
//! State is in memory: a restart forgets it, as it forgets nothing that matters for long.
//!
//! Several nodes over one metadata store keep it that way, each its own, on purpose.
//! Counting in the store would cost a write per failed attempt (on a few hot rows, so
//! serialization conflicts under a spray), which hands a guesser a way to load the database
//! every node depends on; and counting an attempt from its admission, with waiters woken
//! when it ends, would become round trips per attempt. Every bound above holds on each node
//! separately, so when a load balancer spreads one client's requests over N nodes, a
//! guesser gets at most N times the one-node budget, never more: N x `PAIR_FREE` free
//! failures per (account, address), after which each node's waits double up to `MAX_WAIT`
//! as fast as on one node (under 20 guesses a pair in the first hour per node, 4 an hour
//! after); the account ceiling slows after N x `ACCOUNT_CEILING` failures a window; S3,
//! registration and mail limits likewise. Guessing stays bounded and exponentially slowed,
//! by a factor the operator chooses (the number of nodes), and a balancer that keeps a
//! client address on one node (most can) brings that factor back to 1.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

const PAIR_FREE: u32 = 5;
const ADDR_FREE: u32 = 20;
const MAX_WAIT: Duration = Duration::from_secs(900);
/// Failures idle this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
const ACCOUNT_WINDOW: Duration = Duration::from_secs(15 * 60);
const ACCOUNT_CEILING: u32 = 50;
const SLOW_DELAY: Duration = Duration::from_secs(1);
const RETRIES_PER_MINUTE: u32 = 10;
/// An address where the account signed in within this time is the owner's: not slowed.
const TRUST_FOR: Duration = Duration::from_secs(24 * 3600);
const S3_FREE_PER_MINUTE: u32 = 300;
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);
/// Mails the account flows may send without a signed-in user, per recipient and per client.
const MAILS_PER_RECIPIENT_MINUTE: usize = 2;
const MAILS_PER_RECIPIENT_HOUR: usize = 10;
const MAILS_PER_CLIENT_HOUR: usize = 30;
pub const REGISTRATIONS_PER_CLIENT_HOUR: usize = 10;
/// Beyond this many entries, idle ones are dropped.
const PRUNE_ABOVE: usize = 100_000;

/// The client's address, as the listener saw it. Front ends pass it to every check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Where attempts come from, as counted: an IPv4 address, or an IPv6 /64 (one host's share).
type Net = Option<IpAddr>;

fn net(addr: Option<ClientAddr>) -> Net {
    addr.map(|ClientAddr(ip)| match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    })
}

/// Login names count case-insensitively (emails are, and usernames are lowercase).
fn account_key(account: &str) -> String {
    account.trim().to_lowercase()
}

#[derive(Default)]
pub struct Throttle {
    state: Mutex<State>,
    /// Signalled when an admitted attempt ends, for those waiting behind it.
    ended: tokio::sync::Notify,
    /// Failures and refusals, for the metrics.
    pub(crate) counted: crate::metrics::AuthCounts,
}

#[derive(Default)]
struct State {
    pairs: HashMap<(String, Net), Pair>,
    addrs: HashMap<Net, Backoff>,
    accounts: HashMap<String, AccountWindow>,
    s3: HashMap<Net, Window>,
    limits: HashMap<String, Instant>,
    mail_to: HashMap<String, VecDeque<Instant>>,
    mail_from: HashMap<Net, VecDeque<Instant>>,
    registrations: HashMap<Net, VecDeque<Instant>>,
    /// Admitted attempts not yet decided, per pair and per address.
    checking_pairs: HashMap<(String, Net), u32>,
    checking_addrs: HashMap<Net, u32>,
}

/// Failures and the doubling wait they earned.
#[derive(Clone, Copy)]
struct Backoff {
    failures: u32,
    until: Option<Instant>,
    last: Instant,
}

impl Backoff {
    fn new(now: Instant) -> Self {
        Backoff { failures: 0, until: None, last: now }
    }

    fn fail(&mut self, now: Instant, free: u32) {
        if now.duration_since(self.last) > FORGET_AFTER {
            self.failures = 0;
        }
        self.failures += 1;
        self.last = now;
        if self.failures >= free {
            let exp = (self.failures - free).min(16);
            self.until = Some(now + Duration::from_secs(1u64 << exp).min(MAX_WAIT));
        }
    }

    fn wait(&self, now: Instant) -> Option<Duration> {
        self.until.filter(|u| *u > now).map(|u| u - now)
    }

    fn has_failed(&self, now: Instant) -> bool {
        self.failures > 0 && now.duration_since(self.last) <= FORGET_AFTER
    }

    /// How many attempts may be checked at once: the free failures left, and once they are
    /// spent, one (the one each wait lets through).
    fn parallel(&self, now: Instant, free: u32) -> u32 {
        let failures = if now.duration_since(self.last) > FORGET_AFTER { 0 } else { self.failures };
        free.saturating_sub(failures).max(1)
    }
}

struct Pair {
    backoff: Backoff,
    /// Until when this address counts as the account owner's (a recent success from it).
    trusted_until: Option<Instant>,
}

impl Pair {
    fn trusted(&self, now: Instant) -> bool {
        self.trusted_until.is_some_and(|t| t > now)
    }
}

/// An account's failures from all addresses in the current window.
struct AccountWindow {
    start: Instant,
    failures: u32,
    warned: bool,
    /// Attempts from addresses that already failed, in the current minute, once over the ceiling.
    minute_start: Instant,
    retries: u32,
}

#[derive(Clone, Copy)]
struct Window {
    start: Instant,
    count: u32,
}

fn secs(d: Duration) -> u64 {
    d.as_secs_f64().ceil().max(1.0) as u64
}

/// An attacker-chosen login name, fit for a log line.
fn loggable(account: &str) -> String {
    account.chars().filter(|c| !c.is_control()).take(100).collect()
}

impl Throttle {
    /// Admits an attempt to prove `account` from `addr`: refuses while this pair or this
    /// address must wait, waits while attempts already admitted use up what it may try, and
    /// waits itself (never refusing) while the account is over its ceiling and the address
    /// is not the owner's. Call before checking the secret; tell the [`Attempt`] how it went.
    pub async fn gate(&self, account: &str, addr: Option<ClientAddr>) -> Result<Attempt<'_>> {
        // Bounded: each round waits for an attempt of this pair or address to end, and each
        // attempt's own checks are bounded.
        loop {
            let ended = self.ended.notified();
            tokio::pin!(ended);
            // Registered before looking, so an attempt ending in between still wakes us.
            ended.as_mut().enable();
            match self.admit(account, addr, Instant::now()).inspect_err(|_| self.counted.throttled())? {
                Admit::Go(delay) => {
                    let attempt = Attempt { throttle: self, account: account.to_owned(), addr, done: false };
                    if let Some(delay) = delay {
                        tokio::time::sleep(delay).await;
                    }
                    return Ok(attempt);
                }
                Admit::Busy => ended.await,
            }
        }
    }

    /// Admits (and counts as being checked) or not; see `gate`.
    fn admit(&self, account: &str, addr: Option<ClientAddr>, now: Instant) -> Result<Admit> {
        let key = (account_key(account), net(addr));
        let mut guard = self.state.lock().expect("throttle");
        let st = &mut *guard;
        let pair = st.pairs.get(&key);
        if let Some(w) = pair.and_then(|p| p.backoff.wait(now)) {
            return Err(Error::Throttled(secs(w)));
        }
        let addr_backoff = st.addrs.get(&key.1);
        if let Some(w) = addr_backoff.and_then(|a| a.wait(now)) {
            return Err(Error::Throttled(secs(w)));
        }
        let pair_parallel = pair.map_or(PAIR_FREE, |p| p.backoff.parallel(now, PAIR_FREE));
        let addr_parallel = addr_backoff.map_or(ADDR_FREE, |a| a.parallel(now, ADDR_FREE));
        if st.checking_pairs.get(&key).is_some_and(|n| *n >= pair_parallel)
            || st.checking_addrs.get(&key.1).is_some_and(|n| *n >= addr_parallel)
        {
            return Ok(Admit::Busy);
        }
        let delay = st.delay(&key, now)?;
        *st.checking_pairs.entry(key.clone()).or_default() += 1;
        *st.checking_addrs.entry(key.1).or_default() += 1;
        Ok(Admit::Go(delay))
    }

    /// An attempt admitted with `key` ended (its outcome, if any, already recorded).
    fn end(&self, account: &str, addr: Option<ClientAddr>) {
        let key = (account_key(account), net(addr));
        {
            let mut st = self.state.lock().expect("throttle");
            if let Some(n) = st.checking_pairs.get_mut(&key) {
                *n -= 1;
                if *n == 0 {
                    st.checking_pairs.remove(&key);
                }
            }
            if let Some(n) = st.checking_addrs.get_mut(&key.1) {
                *n -= 1;
                if *n == 0 {
                    st.checking_addrs.remove(&key.1);
                }
            }
        }
        self.ended.notify_waiters();
    }

    /// Whether a registration from `addr` may go ahead now; counts it when it may.
    pub fn registration_allowed(&self, addr: Option<ClientAddr>) -> bool {
        self.registration_allowed_at(addr, Instant::now())
    }

    fn registration_allowed_at(&self, addr: Option<ClientAddr>, now: Instant) -> bool {
        let mut st = self.state.lock().expect("throttle");
        st.prune(now);
        let q = st.registrations.entry(net(addr)).or_default();
        forget_older(q, now, HOUR);
        if q.len() >= REGISTRATIONS_PER_CLIENT_HOUR {
            return false;
        }
        q.push_back(now);
        true
    }
}

/// What `admit` decided for an attempt that is not refused.
#[derive(Debug, PartialEq)]
enum Admit {
    /// Checked now, after this delay if any.
    Go(Option<Duration>),
    /// Attempts already being checked use up what this pair or address may try.
    Busy,
}

/// An admitted attempt at a secret. Record its outcome with `failed` or `succeeded`; dropped
/// without one (another error, or the request went away), it counts for nothing.
pub struct Attempt<'a> {
    throttle: &'a Throttle,
    account: String,
    addr: Option<ClientAddr>,
    done: bool,
}

impl Attempt<'_> {
    pub fn failed(mut self) {
        self.throttle.failed(&self.account, self.addr);
        self.finish();
    }

    pub fn succeeded(mut self) {
        self.throttle.succeeded(&self.account, self.addr);
        self.finish();
    }

    fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.throttle.end(&self.account, self.addr);
        }
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        self.finish();
    }
}

impl State {
    /// The ceiling's delay for an attempt the pair and address rules let through.
    fn delay(&mut self, key: &(String, Net), now: Instant) -> Result<Option<Duration>> {
        let pair = self.pairs.get(key);
        let Some(acc) = self.accounts.get_mut(&key.0) else { return Ok(None) };
        if now.duration_since(acc.start) > ACCOUNT_WINDOW || acc.failures < ACCOUNT_CEILING {
            return Ok(None);
        }
        if pair.is_some_and(|p| p.trusted(now)) {
            return Ok(None);
        }
        if pair.is_some_and(|p| p.backoff.has_failed(now)) {
            if now.duration_since(acc.minute_start) >= MINUTE {
                acc.minute_start = now;
                acc.retries = 0;
            }
            if acc.retries >= RETRIES_PER_MINUTE {
                return Err(Error::Throttled(secs(MINUTE.saturating_sub(now.duration_since(acc.minute_start)))));
            }
            acc.retries += 1;
        }
        Ok(Some(SLOW_DELAY))
    }
}

impl Throttle {
    /// Records a wrong secret for `account` from `addr`.
    fn failed(&self, account: &str, addr: Option<ClientAddr>) {
        self.counted.failed();
        self.failed_at(account, addr, Instant::now());
    }

    /// Whether this failure raised the account's warning (once a window).
    fn failed_at(&self, account: &str, addr: Option<ClientAddr>, now: Instant) -> bool {
        let key = (account_key(account), net(addr));
        let mut st = self.state.lock().expect("throttle");
        st.prune(now);
        let pair = st.pairs.entry(key.clone()).or_insert(Pair { backoff: Backoff::new(now), trusted_until: None });
        pair.backoff.fail(now, PAIR_FREE);
        st.addrs.entry(key.1).or_insert(Backoff::new(now)).fail(now, ADDR_FREE);
        let acc = st.accounts.entry(key.0).or_insert(AccountWindow {
            start: now,
            failures: 0,
            warned: false,
            minute_start: now,
            retries: 0,
        });
        if now.duration_since(acc.start) > ACCOUNT_WINDOW {
            *acc = AccountWindow { start: now, failures: 0, warned: false, minute_start: now, retries: 0 };
        }
        acc.failures += 1;
        if acc.failures >= ACCOUNT_CEILING && !acc.warned {
            acc.warned = true;
            tracing::warn!(
                target: "audit",
                account = %loggable(account),
                failures = acc.failures,
                minutes = ACCOUNT_WINDOW.as_secs() / 60,
                "many failed sign-ins for one account from several addresses: attempts from addresses it has not \
                 signed in from are slowed"
            );
            return true;
        }
        false
    }

    /// Records a success: clears this pair's failures (only this pair's) and marks the
    /// address as the owner's for a while.
    fn succeeded(&self, account: &str, addr: Option<ClientAddr>) {
        let now = Instant::now();
        let key = (account_key(account), net(addr));
        let mut st = self.state.lock().expect("throttle");
        let pair = st.pairs.entry(key).or_insert(Pair { backoff: Backoff::new(now), trusted_until: None });
        pair.backoff = Backoff::new(now);
        pair.trusted_until = Some(now + TRUST_FOR);
    }

    /// Refuses S3 requests from an address past its signature failures for this minute.
    pub fn s3_check(&self, addr: Option<ClientAddr>) -> Result<()> {
        self.s3_check_at(addr, Instant::now()).inspect_err(|_| self.counted.throttled())
    }

    fn s3_check_at(&self, addr: Option<ClientAddr>, now: Instant) -> Result<()> {
        let st = self.state.lock().expect("throttle");
        match st.s3.get(&net(addr)) {
            Some(w) if now.duration_since(w.start) < MINUTE && w.count >= S3_FREE_PER_MINUTE => {
                Err(Error::Throttled(secs(MINUTE - now.duration_since(w.start))))
            }
            _ => Ok(()),
        }
    }

    /// Records a failed S3 signature (or unknown access key) from `addr`.
    pub fn s3_failed(&self, addr: Option<ClientAddr>) {
        self.counted.failed();
        self.s3_failed_at(addr, Instant::now());
    }

    fn s3_failed_at(&self, addr: Option<ClientAddr>, now: Instant) {
        let mut st = self.state.lock().expect("throttle");
        st.prune(now);
        let w = st.s3.entry(net(addr)).or_insert(Window { start: now, count: 0 });
        if now.duration_since(w.start) >= MINUTE {
            *w = Window { start: now, count: 0 };
        }
        w.count += 1;
    }

    /// A plain rate limit on some action of a signed-in user (a code for an email change):
    /// at most one per `every`.
    pub fn limit(&self, what: &str, every: Duration) -> Result<()> {
        let now = Instant::now();
        let mut st = self.state.lock().expect("throttle");
        st.prune(now);
        if let Some(until) = st.limits.get(what)
            && *until > now
        {
            self.counted.throttled();
            return Err(Error::Throttled(secs(*until - now)));
        }
        st.limits.insert(what.to_owned(), now + every);
        Ok(())
    }

    /// Whether a mail the account flows send on an anonymous request (registration,
    /// resend, password reset) may go to `recipient` now; counts it when it may. Limited per
    /// recipient, whether or not an account has the address, and per client address, so
    /// nobody can flood a mailbox or use the server to mail many people.
    pub fn mail_allowed(&self, recipient: &str, addr: Option<ClientAddr>) -> bool {
        self.mail_allowed_at(recipient, addr, Instant::now())
    }

    fn mail_allowed_at(&self, recipient: &str, addr: Option<ClientAddr>, now: Instant) -> bool {
        let mut st = self.state.lock().expect("throttle");
        st.prune(now);
        let to = st.mail_to.entry(recipient.trim().to_lowercase()).or_default();
        forget_older(to, now, HOUR);
        let last_minute = to.iter().filter(|t| now.duration_since(**t) < MINUTE).count();
        let to_ok = last_minute < MAILS_PER_RECIPIENT_MINUTE && to.len() < MAILS_PER_RECIPIENT_HOUR;
        if to_ok {
            to.push_back(now);
        }
        let from = st.mail_from.entry(net(addr)).or_default();
        forget_older(from, now, HOUR);
        let allowed = to_ok && from.len() < MAILS_PER_CLIENT_HOUR;
        if allowed {
            from.push_back(now);
        } else if to_ok {
            // Refused for the client's sake: the recipient's count gets its slot back.
            if let Some(to) = st.mail_to.get_mut(&recipient.trim().to_lowercase()) {
                to.pop_back();
            }
        }
        allowed
    }
}

fn forget_older(q: &mut VecDeque<Instant>, now: Instant, age: Duration) {
    while q.front().is_some_and(|t| now.duration_since(*t) >= age) {
        q.pop_front();
    }
}

impl State {
    fn len(&self) -> usize {
        self.pairs.len()
            + self.addrs.len()
            + self.accounts.len()
            + self.s3.len()
            + self.limits.len()
            + self.mail_to.len()
            + self.mail_from.len()
            + self.registrations.len()
    }

    /// Drops what no longer matters once the tables grow large, so that a flood of names
    /// and addresses cannot grow them without bound.
    fn prune(&mut self, now: Instant) {
        if self.len() <= PRUNE_ABOVE {
            return;
        }
        self.pairs.retain(|_, p| p.trusted(now) || now.duration_since(p.backoff.last) < FORGET_AFTER);
        self.addrs.retain(|_, b| now.duration_since(b.last) < FORGET_AFTER);
        self.accounts.retain(|_, a| now.duration_since(a.start) < ACCOUNT_WINDOW);
        self.s3.retain(|_, w| now.duration_since(w.start) < MINUTE);
        self.limits.retain(|_, until| *until > now);
        self.mail_to.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < HOUR));
        self.mail_from.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < HOUR));
        self.registrations.retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) < HOUR));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<ClientAddr> {
        Some(ClientAddr(s.parse().unwrap()))
    }

    fn throttled(r: Result<Option<Duration>>) -> bool {
        matches!(r, Err(Error::Throttled(_)))
    }

    impl Throttle {
        /// `admit` for one attempt that ends at once (its outcome recorded apart).
        fn check(&self, account: &str, addr: Option<ClientAddr>, now: Instant) -> Result<Option<Duration>> {
            match self.admit(account, addr, now)? {
                Admit::Go(delay) => {
                    self.end(account, addr);
                    Ok(delay)
                }
                Admit::Busy => panic!("attempts of {account} being checked"),
            }
        }
    }

    #[test]
    fn attempts_being_checked_count_toward_the_free_failures() {
        let t = Throttle::default();
        let now = Instant::now();
        let (attacker, owner) = (ip("127.0.0.2"), ip("127.0.0.3"));
        for _ in 0..PAIR_FREE {
            assert_eq!(t.admit("alice", attacker, now).unwrap(), Admit::Go(None));
        }
        assert_eq!(t.admit("alice", attacker, now).unwrap(), Admit::Busy, "five at once, no more");
        assert_eq!(t.check("alice", owner, now).unwrap(), None, "the owner elsewhere is not held up");
        // One fails: one failure and four being checked still use up the five.
        t.failed_at("alice", attacker, now);
        t.end("alice", attacker);
        assert_eq!(t.admit("alice", attacker, now).unwrap(), Admit::Busy);
        for _ in 1..PAIR_FREE {
            t.failed_at("alice", attacker, now);
            t.end("alice", attacker);
        }
        assert!(throttled(t.admit("alice", attacker, now).map(|_| None)), "five failures: the pair waits");
        // Once the wait is over, one attempt at a time.
        let later = now + Duration::from_secs(2);
        assert_eq!(t.admit("alice", attacker, later).unwrap(), Admit::Go(None));
        assert_eq!(t.admit("alice", attacker, later).unwrap(), Admit::Busy);
        // A success frees the pair at once.
        t.succeeded("alice", attacker);
        t.end("alice", attacker);
        for _ in 0..PAIR_FREE {
            assert_eq!(t.admit("alice", attacker, later).unwrap(), Admit::Go(None));
        }
    }

    #[test]
    fn an_address_has_as_many_attempts_at_once_as_free_failures() {
        let t = Throttle::default();
        let now = Instant::now();
        let a = ip("127.0.0.2");
        for i in 0..ADDR_FREE {
            assert_eq!(t.admit(&format!("user{i}"), a, now).unwrap(), Admit::Go(None));
        }
        assert_eq!(t.admit("user99", a, now).unwrap(), Admit::Busy);
        assert_eq!(t.check("user99", ip("127.0.0.3"), now).unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn parallel_wrong_guesses_get_no_more_checks_than_sequential_ones() {
        let t = std::sync::Arc::new(Throttle::default());
        let attacker = ip("127.0.0.2");
        let guesses: Vec<_> = (0..50)
            .map(|_| {
                let t = t.clone();
                tokio::spawn(async move {
                    match t.gate("alice", attacker).await {
                        Ok(attempt) => {
                            // The password check takes a while.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            attempt.failed();
                            true
                        }
                        Err(Error::Throttled(_)) => false,
                        Err(e) => panic!("{e}"),
                    }
                })
            })
            .collect();
        let mut checked = 0;
        for g in guesses {
            checked += u32::from(tokio::time::timeout(Duration::from_secs(10), g).await.unwrap().unwrap());
        }
        assert_eq!(checked, PAIR_FREE);
        // The owner elsewhere goes straight in; an attempt dropped undecided counts for nothing.
        drop(t.gate("alice", ip("127.0.0.3")).await.unwrap());
        assert!(t.state.lock().unwrap().checking_pairs.is_empty());
        t.gate("alice", ip("127.0.0.3")).await.unwrap().succeeded();
        assert!(t.state.lock().unwrap().checking_addrs.is_empty());
    }

    #[test]
    fn registrations_are_limited_per_client() {
        let t = Throttle::default();
        let now = Instant::now();
        let a = ip("127.0.0.2");
        let allowed = (0..30).filter(|_| t.registration_allowed_at(a, now)).count();
        assert_eq!(allowed, REGISTRATIONS_PER_CLIENT_HOUR);
        assert!(t.registration_allowed_at(ip("127.0.0.3"), now));
        assert!(t.registration_allowed_at(a, now + HOUR), "an hour later");
    }

    #[test]
    fn a_pair_backs_off_and_only_its_own_success_clears_it() {
        let t = Throttle::default();
        let now = Instant::now();
        let (attacker, owner) = (ip("127.0.0.2"), ip("127.0.0.3"));
        for _ in 0..PAIR_FREE - 1 {
            t.failed_at("alice", attacker, now);
            assert_eq!(t.check("alice", attacker, now).unwrap(), None);
        }
        t.failed_at("Alice", attacker, now);
        assert!(throttled(t.check("alice", attacker, now)), "names count case-insensitively");
        // The owner elsewhere, and the attacker for another account, are not refused.
        assert_eq!(t.check("alice", owner, now).unwrap(), None);
        assert_eq!(t.check("bob", attacker, now).unwrap(), None);
        // Success elsewhere clears nothing of the attacker's pair.
        t.succeeded("alice", owner);
        assert!(throttled(t.check("alice", attacker, now)));
        // The wait doubles and ends.
        assert!(t.check("alice", attacker, now + Duration::from_secs(2)).is_ok());
        t.failed_at("alice", attacker, now + Duration::from_secs(2));
        assert!(throttled(t.check("alice", attacker, now + Duration::from_secs(3))));
        assert!(t.check("alice", attacker, now + Duration::from_secs(5)).is_ok());
    }

    #[test]
    fn an_address_spraying_many_accounts_is_slowed_despite_its_own_successes() {
        let t = Throttle::default();
        let now = Instant::now();
        let a = ip("127.0.0.2");
        for i in 0..ADDR_FREE {
            assert!(t.check(&format!("user{i}"), a, now).is_ok(), "{i}");
            t.failed_at(&format!("user{i}"), a, now);
            t.succeeded("mallory", a);
        }
        assert!(throttled(t.check("mallory", a, now)), "the address waits, whatever it signs in to");
        assert!(throttled(t.check("user99", a, now)));
        assert_eq!(t.check("user99", ip("127.0.0.3"), now).unwrap(), None);
    }

    #[test]
    fn ipv6_counts_by_64_and_mapped_v4_as_v4() {
        assert_eq!(net(ip("2001:db8:1:2:aaaa::1")), net(ip("2001:db8:1:2:bbbb::9")));
        assert_ne!(net(ip("2001:db8:1:2::1")), net(ip("2001:db8:1:3::1")));
        assert_eq!(net(ip("::ffff:10.0.0.1")), net(ip("10.0.0.1")));
    }

    #[test]
    fn many_addresses_against_one_account_are_slowed_never_blocked() {
        let t = Throttle::default();
        let now = Instant::now();
        let home = ip("192.0.2.1");
        t.succeeded("alice", home);
        // Each guessing address stays under its own pair limit.
        let mut warnings = 0;
        for n in 0..ACCOUNT_CEILING {
            let a = ip(&format!("10.0.{}.{}", n / 200, n % 200 + 1));
            assert_eq!(t.check("alice", a, now).unwrap(), None, "under the ceiling: no delay");
            warnings += usize::from(t.failed_at("alice", a, now));
        }
        assert_eq!(warnings, 1, "the ceiling is logged");
        assert!(!t.failed_at("alice", ip("10.9.9.9"), now), "once a window");
        // Over the ceiling: a fresh address waits but is admitted; the owner's is not slowed.
        for n in 0..100 {
            let fresh = ip(&format!("172.16.{}.{}", n / 200, n % 200 + 1));
            assert_eq!(t.check("alice", fresh, now).unwrap(), Some(SLOW_DELAY));
        }
        assert_eq!(t.check("alice", home, now).unwrap(), None);
        assert_eq!(t.check("bob", ip("172.16.0.1"), now).unwrap(), None, "other accounts are not slowed");
        // Addresses that already failed share a few attempts a minute.
        let mut admitted = 0;
        for n in 0..ACCOUNT_CEILING {
            let a = ip(&format!("10.0.{}.{}", n / 200, n % 200 + 1));
            if t.check("alice", a, now).is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, RETRIES_PER_MINUTE);
        assert!(t.check("alice", ip("10.0.0.1"), now + MINUTE).is_ok(), "a new minute, new attempts");
        // The window ends.
        let later = now + ACCOUNT_WINDOW + Duration::from_secs(1);
        assert_eq!(t.check("alice", ip("172.16.0.1"), later).unwrap(), None);
        assert!(!t.failed_at("alice", ip("172.16.0.1"), later), "a new window counts afresh");
    }

    #[test]
    fn s3_failures_count_per_address_per_minute() {
        let t = Throttle::default();
        let now = Instant::now();
        let a = ip("127.0.0.2");
        for _ in 0..S3_FREE_PER_MINUTE - 1 {
            t.s3_failed_at(a, now);
        }
        assert!(t.s3_check_at(a, now).is_ok());
        t.s3_failed_at(a, now);
        assert!(matches!(t.s3_check_at(a, now), Err(Error::Throttled(60))));
        assert!(t.s3_check_at(ip("127.0.0.3"), now).is_ok());
        assert!(t.s3_check_at(a, now + MINUTE).is_ok());
        // S3 failures are no login failures.
        assert_eq!(t.check("s3", a, now).unwrap(), None);
    }

    #[test]
    fn mail_is_limited_per_recipient_and_per_client() {
        let t = Throttle::default();
        let now = Instant::now();
        let a = ip("127.0.0.2");
        assert!(t.mail_allowed_at("x@example.test", a, now));
        assert!(t.mail_allowed_at("X@example.test", a, now));
        assert!(!t.mail_allowed_at("x@example.test", ip("127.0.0.3"), now), "two a minute per recipient");
        let mut sent = 2;
        for m in 1..=30 {
            if t.mail_allowed_at("x@example.test", ip(&format!("127.0.1.{m}")), now + MINUTE * m) {
                sent += 1;
            }
        }
        assert_eq!(sent, MAILS_PER_RECIPIENT_HOUR, "ten an hour per recipient");
        let b = ip("127.0.0.9");
        let allowed = (0..50).filter(|i| t.mail_allowed_at(&format!("v{i}@example.test"), b, now)).count();
        assert_eq!(allowed, MAILS_PER_CLIENT_HOUR);
        assert!(t.mail_allowed_at("v0@example.test", b, now + HOUR), "an hour later");
    }

    #[test]
    fn plain_limits() {
        let t = Throttle::default();
        assert!(t.limit("email:1", Duration::from_secs(60)).is_ok());
        assert!(t.limit("email:1", Duration::from_secs(60)).is_err());
        assert!(t.limit("email:2", Duration::from_secs(60)).is_ok());
    }
}
