//! The one way blocking host calls leave the async runtime: statvfs and the
//! mountinfo read (filesystem, logs), the /proc scan and the deleted-files walk
//! (processes), the log walks (one key per log group).
//!
//! A call that blocks in the kernel (a stat on a hung NFS or FUSE mount, a
//! mountinfo read waiting on the mount-namespace lock) cannot be cancelled.
//! `timeout(spawn_blocking(..))` would leave one runtime blocking thread per
//! attempt and make shutdown wait for them all (PITFALLS.md), so calls run on
//! plain std threads owned by an [`Offload`] pool, and the caller waits for the
//! answer under a tokio timeout.
//!
//! Every call names a key, chosen by the caller: the mount identity for
//! statvfs (mount ID and mountpoint, so a new mount at the path of a lazily
//! unmounted hung one is a new key), one key per log group, one for the /proc
//! scan. **At most one call per key is outstanding: at most one stuck thread
//! per key, ever.** While a key's call has not returned, a new call with that
//! key answers [`Outcome::Busy`] at once and starts nothing. A call that does
//! not answer in time is abandoned to its thread ([`Outcome::TimedOut`]); when
//! it finally returns, the thread goes back to the pool (or exits if the pool
//! already has enough idle threads), and the key is free again.
//!
//! Threads are therefore bounded by the number of keys the caller uses (each
//! at most one stuck thread) plus [`Limits::running`] calls starting at once
//! and [`Limits::idle`] idle threads kept for reuse, so a round of quick calls
//! spawns no thread. A call holds one of the `running` slots only for
//! [`Limits::hold`]: a call that is slow to answer gives its slot to the next
//! so that a burst of newly hung mounts cannot queue every healthy one behind
//! them, and every call of a batch gets its answer (or its timeout) within the
//! one timeout it was given.
//!
//! [`Offload::stuck`] counts this pool's abandoned calls still running,
//! [`stuck_threads`] those of the whole process.

use std::collections::HashMap;
use std::hash::Hash;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use tokio::sync::{Semaphore, oneshot};

/// Abandoned calls still running, over every pool in the process.
static STUCK: AtomicUsize = AtomicUsize::new(0);

/// Threads whose call was abandoned by its caller and has not returned yet,
/// over every [`Offload`] pool in the process.
pub fn stuck_threads() -> usize {
    STUCK.load(Ordering::Acquire)
}

/// What one offloaded call came to.
#[derive(Debug)]
pub enum Outcome<T> {
    /// The call returned this.
    Done(T),
    /// No answer within the timeout. If the call started, it goes on in the
    /// background and its key stays busy until it returns.
    TimedOut,
    /// An earlier call with the same key has not returned yet; nothing was started.
    Busy,
    /// The call panicked, or no thread could be started for it.
    Failed(OffloadError),
}

impl<T> Outcome<T> {
    /// The answer, if the call returned one.
    pub fn done(self) -> Option<T> {
        match self {
            Outcome::Done(t) => Some(t),
            _ => None,
        }
    }

    /// No answer because the work is (still) stuck: timed out or busy.
    pub fn is_stuck(&self) -> bool {
        matches!(self, Outcome::TimedOut | Outcome::Busy)
    }
}

/// Why an offloaded call gave no answer at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffloadError {
    #[error("the offloaded call panicked")]
    Panicked,
    #[error("cannot start a thread: {0}")]
    Spawn(String),
}

/// How many threads a pool keeps and starts; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Calls that may be starting or quickly answering at once.
    pub running: usize,
    /// Idle threads kept for reuse.
    pub idle: usize,
    /// How long a call keeps its `running` slot before it gives it up (and
    /// waits on for its answer without it).
    pub hold: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            // 500 mounts newly hung at once all start within 1.6 s.
            running: 16,
            idle: 4,
            hold: Duration::from_millis(50),
        }
    }
}

const IDLE: u8 = 0;
const RUNNING: u8 = 1;
/// Running, and its caller has given up waiting: a stuck thread.
const ABANDONED: u8 = 2;

/// The state of one key's call.
#[derive(Debug, Default)]
struct Flight(AtomicU8);

impl Flight {
    /// The call has returned (or panicked): free the key.
    fn land(&self, pool_stuck: &AtomicUsize) {
        if self.0.swap(IDLE, Ordering::AcqRel) == ABANDONED {
            pool_stuck.fetch_sub(1, Ordering::AcqRel);
            STUCK.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The caller gives up on a call that may still be running.
    fn abandon(&self, pool_stuck: &AtomicUsize) {
        // Count first: if the call lands between the two steps, the count is
        // one too high for a moment, never below zero.
        pool_stuck.fetch_add(1, Ordering::AcqRel);
        STUCK.fetch_add(1, Ordering::AcqRel);
        if self
            .0
            .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            pool_stuck.fetch_sub(1, Ordering::AcqRel);
            STUCK.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Runs the work and returns how to deliver its answer.
type Job = Box<dyn FnOnce() -> Box<dyn FnOnce() + Send> + Send>;

/// State shared by a pool and its threads.
struct Shared {
    /// Idle threads wait here for their next job.
    queue: Mutex<mpsc::Receiver<Job>>,
    /// Threads waiting on `queue` and not yet claimed by a caller.
    idle: AtomicUsize,
    /// Threads alive (idle, busy or stuck).
    threads: AtomicUsize,
    /// This pool's abandoned calls still running.
    stuck: AtomicUsize,
    max_idle: usize,
}

impl Shared {
    /// A thread's life: its first job, then jobs from the queue while the pool
    /// wants it idle. Ends when the pool is dropped (the queue closes).
    fn serve(self: Arc<Self>, first: Job) {
        let mut job = first;
        loop {
            let answer = job();
            // Back in the pool before the caller hears the answer, so that
            // the caller's next call finds this thread idle.
            let stays = self
                .idle
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < self.max_idle).then_some(n + 1)
                })
                .is_ok();
            answer();
            if !stays {
                break;
            }
            let next = match self.queue.lock() {
                Ok(rx) => rx.recv(),
                Err(_) => break,
            };
            match next {
                Ok(next) => job = next,
                Err(_) => break,
            }
        }
        self.threads.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A pool of plain threads for blocking calls, single-flight per key `K`.
pub struct Offload<K> {
    name: &'static str,
    shared: Arc<Shared>,
    jobs: mpsc::Sender<Job>,
    flights: Mutex<HashMap<K, Arc<Flight>>>,
    slots: Semaphore,
    hold: Duration,
}

impl<K> std::fmt::Debug for Offload<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Offload")
            .field("name", &self.name)
            .field("threads", &self.shared.threads.load(Ordering::Acquire))
            .field("stuck", &self.shared.stuck.load(Ordering::Acquire))
            .finish()
    }
}

impl<K: Eq + Hash + Clone> Offload<K> {
    /// A pool whose threads are named `name`, with the default [`Limits`].
    pub fn new(name: &'static str) -> Self {
        Self::with_limits(name, Limits::default())
    }

    pub fn with_limits(name: &'static str, limits: Limits) -> Self {
        let (jobs, queue) = mpsc::channel();
        Offload {
            name,
            shared: Arc::new(Shared {
                queue: Mutex::new(queue),
                idle: AtomicUsize::new(0),
                threads: AtomicUsize::new(0),
                stuck: AtomicUsize::new(0),
                max_idle: limits.idle,
            }),
            jobs,
            flights: Mutex::new(HashMap::new()),
            slots: Semaphore::new(limits.running.max(1)),
            hold: limits.hold,
        }
    }

    /// Run `work` on a pool thread and wait at most `timeout` for its answer
    /// (waiting for a slot included). While an earlier call with `key` is
    /// still running, answers [`Outcome::Busy`] at once and runs nothing.
    pub async fn run<T, F>(&self, key: K, timeout: Duration, work: F) -> Outcome<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let flight = match self.flights.lock() {
            Ok(mut flights) => flights.entry(key).or_default().clone(),
            Err(_) => return Outcome::Failed(OffloadError::Panicked),
        };
        if flight.0.load(Ordering::Acquire) != IDLE {
            return Outcome::Busy;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        // Not started within the timeout: the key stays free.
        let Ok(Ok(slot)) = tokio::time::timeout_at(deadline, self.slots.acquire()).await else {
            return Outcome::TimedOut;
        };
        if flight
            .0
            .compare_exchange(IDLE, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Outcome::Busy;
        }
        let (reply, mut answer) = oneshot::channel();
        let landing = flight.clone();
        let shared = self.shared.clone();
        let job: Job = Box::new(move || {
            let result = catch_unwind(AssertUnwindSafe(work));
            // Free the key before answering, so a caller that sees the answer
            // may call again at once.
            landing.land(&shared.stuck);
            Box::new(move || {
                // The caller may have timed out and gone: nothing to do then.
                let _ = reply.send(result);
            })
        });
        if let Err(e) = self.dispatch(job) {
            flight.land(&self.shared.stuck);
            return Outcome::Failed(e);
        }
        let hold_until = deadline.min(tokio::time::Instant::now() + self.hold);
        let early = tokio::time::timeout_at(hold_until, &mut answer).await;
        drop(slot);
        let answered = match early {
            Ok(answered) => answered,
            Err(_) => match tokio::time::timeout_at(deadline, answer).await {
                Ok(answered) => answered,
                Err(_) => {
                    flight.abandon(&self.shared.stuck);
                    return Outcome::TimedOut;
                }
            },
        };
        match answered {
            Ok(Ok(t)) => Outcome::Done(t),
            // A panic, or a job dropped unrun (its thread died): either way no answer.
            Ok(Err(_)) | Err(_) => Outcome::Failed(OffloadError::Panicked),
        }
    }

    /// Hand `job` to an idle thread, or to a new one.
    fn dispatch(&self, job: Job) -> Result<(), OffloadError> {
        let idle = self
            .shared
            .idle
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok();
        if idle {
            // An idle thread is waiting on the queue (or about to), and the
            // claim keeps it for this job.
            return self
                .jobs
                .send(job)
                .map_err(|_| OffloadError::Spawn("the job queue is closed".into()));
        }
        let shared = self.shared.clone();
        shared.threads.fetch_add(1, Ordering::AcqRel);
        let spawned = std::thread::Builder::new()
            .name(self.name.to_string())
            .spawn(move || shared.serve(job));
        spawned.map(|_| ()).map_err(|e| {
            self.shared.threads.fetch_sub(1, Ordering::AcqRel);
            OffloadError::Spawn(e.to_string())
        })
    }

    /// True while a call with `key` has not returned.
    pub fn is_busy(&self, key: &K) -> bool {
        self.flights
            .lock()
            .ok()
            .and_then(|f| f.get(key).map(|f| f.0.load(Ordering::Acquire) != IDLE))
            .unwrap_or(false)
    }

    /// Forget keys that `keep` rejects, unless their call is still running
    /// (it stays counted until it returns).
    pub fn retain(&self, keep: impl Fn(&K) -> bool) {
        if let Ok(mut flights) = self.flights.lock() {
            flights.retain(|k, f| keep(k) || f.0.load(Ordering::Acquire) != IDLE);
        }
    }

    /// Keys remembered (each has had a call; the running ones are never forgotten).
    pub fn keys(&self) -> usize {
        self.flights.lock().map(|f| f.len()).unwrap_or(0)
    }

    /// This pool's threads whose call was abandoned and has not returned.
    pub fn stuck(&self) -> usize {
        self.shared.stuck.load(Ordering::Acquire)
    }

    /// This pool's threads alive: idle, answering, or stuck.
    pub fn threads(&self) -> usize {
        self.shared.threads.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    /// A call that blocks until the test lets it go, like a stat on a stopped mount.
    #[derive(Clone, Default)]
    struct Gate(Arc<(Mutex<bool>, std::sync::Condvar)>);

    impl Gate {
        fn wait(&self) {
            let (open, cv) = &*self.0;
            let mut open = open.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
        }
        fn open(&self) {
            let (open, cv) = &*self.0;
            *open.lock().unwrap() = true;
            cv.notify_all();
        }
    }

    /// Wait (really) until `cond` holds, for at most 5 s.
    async fn eventually(what: &str, cond: impl Fn() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < Duration::from_secs(5), "never: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    const LONG: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn answers_and_reuses_idle_threads() {
        let pool = Offload::new("t");
        for i in 0..20u32 {
            assert!(
                matches!(pool.run(i % 3, LONG, move || i * 2).await, Outcome::Done(v) if v == i * 2)
            );
        }
        assert_eq!(pool.threads(), 1, "one thread, reused for every call");
        assert_eq!(pool.stuck(), 0);
    }

    #[tokio::test]
    async fn a_stuck_key_is_busy_without_a_second_call_and_frees_on_return() {
        let pool = Offload::new("t");
        let gate = Gate::default();
        let started = Arc::new(AtomicUsize::new(0));
        let call = |gate: Gate, started: Arc<AtomicUsize>| {
            move || {
                started.fetch_add(1, Ordering::AcqRel);
                gate.wait();
                7
            }
        };
        let first = pool
            .run(
                "m",
                Duration::from_millis(50),
                call(gate.clone(), started.clone()),
            )
            .await;
        assert!(matches!(first, Outcome::TimedOut), "{first:?}");
        assert_eq!(pool.stuck(), 1);
        assert!(stuck_threads() >= 1);
        assert!(pool.is_busy(&"m"));
        for _ in 0..5 {
            let again = pool
                .run("m", LONG, call(gate.clone(), started.clone()))
                .await;
            assert!(matches!(again, Outcome::Busy), "{again:?}");
        }
        assert_eq!(started.load(Ordering::Acquire), 1, "one call, one thread");
        // Other keys go on meanwhile.
        assert!(matches!(
            pool.run("other", LONG, || 1).await,
            Outcome::Done(1)
        ));
        gate.open();
        eventually("the stuck call returned", || !pool.is_busy(&"m")).await;
        assert_eq!(pool.stuck(), 0);
        assert!(matches!(pool.run("m", LONG, || 8).await, Outcome::Done(8)));
    }

    #[tokio::test]
    async fn a_burst_of_stuck_keys_does_not_delay_a_quick_one() {
        // More stuck calls than running slots: each gives its slot up after
        // `hold`, so the quick call behind them still answers within the timeout.
        let limits = Limits {
            running: 2,
            idle: 2,
            hold: Duration::from_millis(20),
        };
        let pool = Arc::new(Offload::with_limits("t", limits));
        let gate = Gate::default();
        let timeout = Duration::from_secs(2);
        let start = Instant::now();
        let mut calls = Vec::new();
        for k in 0..24u32 {
            let (pool, gate) = (pool.clone(), gate.clone());
            calls.push(tokio::spawn(async move {
                pool.run(k, timeout, move || gate.wait()).await.is_stuck()
            }));
        }
        let quick = pool.run(100, timeout, || "/").await;
        assert!(matches!(quick, Outcome::Done("/")), "{quick:?}");
        for c in calls {
            assert!(c.await.unwrap(), "a gated call answered");
        }
        assert!(start.elapsed() < timeout + Duration::from_secs(1));
        assert_eq!(pool.stuck(), 24);
        assert!(pool.threads() <= 24 + 2, "{} threads", pool.threads());
        // Every later round answers at once, starting no thread.
        let again = Instant::now();
        for k in 0..24u32 {
            assert!(matches!(pool.run(k, timeout, || ()).await, Outcome::Busy));
        }
        assert!(again.elapsed() < Duration::from_millis(500));
        gate.open();
        eventually("all returned", || pool.stuck() == 0).await;
        eventually("idle threads capped", || pool.threads() <= 2).await;
    }

    #[tokio::test]
    async fn a_panic_is_a_failure_and_frees_the_key() {
        let pool = Offload::new("t");
        let boom = Arc::new(AtomicBool::new(true));
        let b = boom.clone();
        let out = pool
            .run("k", LONG, move || {
                assert!(!b.load(Ordering::Acquire), "test panic")
            })
            .await;
        assert!(
            matches!(out, Outcome::Failed(OffloadError::Panicked)),
            "{out:?}"
        );
        boom.store(false, Ordering::Release);
        let b = boom.clone();
        let out = pool.run("k", LONG, move || b.load(Ordering::Acquire)).await;
        assert!(matches!(out, Outcome::Done(false)), "{out:?}");
    }

    #[tokio::test]
    async fn retain_keeps_running_keys() {
        let pool = Offload::new("t");
        let gate = Gate::default();
        let g = gate.clone();
        let _ = pool
            .run(1u32, Duration::from_millis(20), move || g.wait())
            .await;
        let _ = pool.run(2u32, LONG, || ()).await;
        pool.retain(|_| false);
        assert_eq!(pool.keys(), 1, "the stuck key is remembered");
        assert!(pool.is_busy(&1));
        gate.open();
        eventually("returned", || !pool.is_busy(&1)).await;
        pool.retain(|_| false);
        assert_eq!(pool.keys(), 0);
    }
}
