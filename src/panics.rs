//! Panic isolation. A panic is a bug, but on a node in trouble one bug in one
//! collector must not blind the others or freeze its own series at their
//! last values: the scheduler and the Docker probe tasks run their futures
//! through [`catch`] or [`quiet`], so a panic becomes one failed round or
//! one failed probe, logged once through `FailureLog` instead of printed by
//! the default hook on every round (which would also break `--log.format=json`).
//!
//! Also here: locks that survive a panicking holder, and the debug-only
//! fault injection the isolation tests use ([`inject_panic`]).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::task::{Context, Poll};

use futures_util::FutureExt;

thread_local! {
    /// Set while this thread polls a future under [`quiet`].
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    /// The latest captured panic's text ("panicked at FILE:LINE:COL: MESSAGE").
    static CAUGHT: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Install once at start-up, before any collector runs: a panic raised while
/// polling a future under [`quiet`] is kept for the code that handles it
/// (which logs it once); any other panic goes to the previous hook as before.
pub fn install_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if CAPTURING.with(Cell::get) {
            let text = describe(info);
            CAUGHT.with(|c| *c.borrow_mut() = Some(text));
        } else {
            previous(info);
        }
    }));
}

fn describe(info: &PanicHookInfo<'_>) -> String {
    let message = info.payload_as_str().unwrap_or("(no message)");
    match info.location() {
        Some(at) => format!("panicked at {at}: {message}"),
        None => format!("panicked: {message}"),
    }
}

/// The text of the panic this thread captured last, taken (so it is reported once).
/// Call it on the thread that caught the panic: during unwinding (a drop
/// guard) or right after `catch_unwind` returns.
pub fn take_caught() -> Option<String> {
    CAUGHT.with(|c| c.borrow_mut().take())
}

/// `future`, with panics raised while it is polled captured by the hook
/// instead of printed. The panic still unwinds: catch it, or let a drop guard
/// see it.
pub fn quiet<F: Future>(future: F) -> Quiet<F> {
    Quiet(Box::pin(future))
}

/// See [`quiet`]. Boxed so it can be polled without pin projection.
pub struct Quiet<F>(Pin<Box<F>>);

impl<F: Future> Future for Quiet<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _capturing = Capturing::enter();
        self.0.as_mut().poll(cx)
    }
}

/// Restores the thread's capture flag however the poll ends (it may unwind).
struct Capturing(bool);

impl Capturing {
    fn enter() -> Self {
        Capturing(CAPTURING.with(|c| c.replace(true)))
    }
}

impl Drop for Capturing {
    fn drop(&mut self) {
        let previous = self.0;
        CAPTURING.with(|c| c.set(previous));
    }
}

/// Run `future` to completion; a panic inside it becomes `Err` with its text
/// ("panicked at FILE:LINE:COL: MESSAGE").
///
/// Whatever state the future had borrowed may be half-updated after a panic:
/// callers use this where the next round rebuilds what it needs (a
/// collector's round), which is why asserting unwind safety is sound here.
pub async fn catch<F: Future>(future: F) -> Result<F::Output, String> {
    match AssertUnwindSafe(quiet(future)).catch_unwind().await {
        Ok(output) => Ok(output),
        Err(payload) => Err(take_caught().unwrap_or_else(|| {
            // No hook installed (unit tests): the payload has the message, not the place.
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            format!("panicked: {message}")
        })),
    }
}

/// Lock `mutex` even if a holder panicked: every state guarded this way is
/// replaced or counted whole, so what a panicking holder left is still usable,
/// and refusing it would turn one panic into a dead collector.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// [`lock`] for reading an `RwLock`.
pub fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// [`lock`] for writing an `RwLock`.
pub fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The environment variable [`inject_panic`] reads (debug builds only).
pub const INJECT_ENV: &str = "NODE_SENTINEL_TEST_PANIC";

/// Test-only fault injection, compiled into debug builds only: panics the
/// Nth time the site `GROUP.NAME` is reached, as listed in
/// `NODE_SENTINEL_TEST_PANIC` (comma-separated `GROUP.NAME@N`, N from 1).
/// Sites: `round.COLLECTOR` (the start of each round of that collector) and
/// `docker.OPERATION` (a Docker probe task, after its request answered).
/// Example: `NODE_SENTINEL_TEST_PANIC=round.processes@2,docker.info@1`.
#[cfg(debug_assertions)]
#[track_caller]
pub fn inject_panic(group: &str, name: &str) {
    use std::collections::BTreeMap;
    use std::sync::OnceLock;

    static PLAN: OnceLock<Vec<(String, String, u64)>> = OnceLock::new();
    static HITS: Mutex<BTreeMap<(String, String), u64>> = Mutex::new(BTreeMap::new());
    let plan = PLAN.get_or_init(|| parse_plan(&std::env::var(INJECT_ENV).unwrap_or_default()));
    if !plan.iter().any(|(g, n, _)| g == group && n == name) {
        return;
    }
    let hit = {
        let mut hits = lock(&HITS);
        let count = hits
            .entry((group.to_string(), name.to_string()))
            .or_insert(0);
        *count += 1;
        *count
    };
    if plan
        .iter()
        .any(|(g, n, at)| g == group && n == name && *at == hit)
    {
        panic!("injected by {INJECT_ENV} at {group}.{name}@{hit}");
    }
}

/// Release builds: no fault injection, and nothing to read.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn inject_panic(_group: &str, _name: &str) {}

/// `GROUP.NAME@N,...`; entries that do not parse are ignored (a test hook, not a flag).
#[cfg(any(debug_assertions, test))]
fn parse_plan(spec: &str) -> Vec<(String, String, u64)> {
    spec.split(',')
        .filter_map(|entry| {
            let (site, at) = entry.trim().rsplit_once('@')?;
            let (group, name) = site.split_once('.')?;
            let at = at.parse().ok().filter(|n| *n > 0)?;
            Some((group.to_string(), name.to_string(), at))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn catch_turns_a_panic_into_its_text_and_keeps_values() {
        assert_eq!(catch(async { 7 }).await, Ok(7));
        let err = catch(async {
            tokio::task::yield_now().await;
            panic!("boom {}", 1);
        })
        .await;
        let err: Result<(), String> = err;
        assert!(err.unwrap_err().contains("boom 1"));
    }

    #[test]
    fn a_poisoned_lock_is_still_usable() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock();
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        *lock(&m) += 1;
        assert_eq!(*lock(&m), 2);
        let rw = RwLock::new(3);
        *write(&rw) += 1;
        assert_eq!(*read(&rw), 4);
    }

    #[test]
    fn plan_parsing() {
        assert_eq!(
            parse_plan("round.logs@2, docker.info@1,bad,x@0,round.a.b@3"),
            vec![
                ("round".into(), "logs".into(), 2),
                ("docker".into(), "info".into(), 1),
                ("round".into(), "a.b".into(), 3),
            ]
        );
        assert!(parse_plan("").is_empty());
    }
}
