//! A single-flight worker thread: blocking /proc work runs on it, the async
//! side waits under a timeout and never starts a second call while one is
//! still running.
//!
//! Why not `spawn_blocking`: a read that blocks in the kernel (a stat through
//! a hung FUSE or NFS mount) would pin one blocking-pool thread per round and
//! tokio waits for those at shutdown (PITFALLS.md). One long-lived thread per
//! kind of work bounds that to one stuck thread, ever, and keeps the worker's
//! state (a sweep in progress) where the work happens.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::oneshot;

/// Why a call returned no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The previous call has not returned yet (stuck in the kernel).
    #[error("the previous call is still running")]
    Busy,
    /// This call did not answer within its timeout; it goes on in the background.
    #[error("no answer within the timeout")]
    Timeout,
    /// The worker thread is gone (it panicked).
    #[error("the worker thread is gone")]
    Gone,
}

type Job<Req, Resp> = (Req, oneshot::Sender<Resp>);

/// Marks the worker idle when dropped.
struct Idle<'a>(&'a AtomicBool);

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A thread that owns some state `S` and answers requests one at a time.
pub struct Worker<Req, Resp> {
    tx: mpsc::Sender<Job<Req, Resp>>,
    busy: Arc<AtomicBool>,
}

impl<Req: Send + 'static, Resp: Send + 'static> Worker<Req, Resp> {
    /// Start the thread; `work` runs on it for every request.
    pub fn spawn<S, F>(name: &str, mut state: S, mut work: F) -> std::io::Result<Self>
    where
        S: Send + 'static,
        F: FnMut(&mut S, Req) -> Resp + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Job<Req, Resp>>();
        let busy = Arc::new(AtomicBool::new(false));
        let flag = busy.clone();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                // Ends when the Worker (the only sender) is dropped.
                while let Ok((req, reply)) = rx.recv() {
                    // Cleared on return and on a panic alike, so a dead thread
                    // shows as Gone (its channel closed), not as Busy forever.
                    let idle = Idle(&flag);
                    let resp = work(&mut state, req);
                    drop(idle);
                    // The caller may have timed out and gone: nothing to do then.
                    let _ = reply.send(resp);
                }
            })?;
        Ok(Worker { tx, busy })
    }

    /// Send `req` and wait up to `timeout` for the answer. While an earlier
    /// call is still running, fails at once with [`CallError::Busy`].
    pub async fn call(&self, req: Req, timeout: Duration) -> Result<Resp, CallError> {
        if self
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(CallError::Busy);
        }
        let (reply, answer) = oneshot::channel();
        if self.tx.send((req, reply)).is_err() {
            self.busy.store(false, Ordering::Release);
            return Err(CallError::Gone);
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(_)) => Err(CallError::Gone),
            Err(_) => Err(CallError::Timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_and_keeps_state() {
        let w = Worker::spawn("t", 0u32, |n: &mut u32, add: u32| {
            *n += add;
            *n
        })
        .unwrap();
        assert_eq!(w.call(2, Duration::from_secs(5)).await, Ok(2));
        assert_eq!(w.call(3, Duration::from_secs(5)).await, Ok(5));
    }

    #[tokio::test]
    async fn a_slow_call_times_out_and_blocks_the_next_until_done() {
        let w = Worker::spawn("t", (), |_: &mut (), d: u64| {
            std::thread::sleep(Duration::from_millis(d));
            d
        })
        .unwrap();
        assert_eq!(
            w.call(400, Duration::from_millis(50)).await,
            Err(CallError::Timeout)
        );
        assert_eq!(
            w.call(0, Duration::from_millis(50)).await,
            Err(CallError::Busy)
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(w.call(1, Duration::from_secs(5)).await, Ok(1));
    }

    #[tokio::test]
    async fn a_panicked_worker_is_gone_not_busy() {
        let w = Worker::spawn("t", (), |_: &mut (), boom: bool| {
            assert!(!boom, "test panic");
        })
        .unwrap();
        assert_eq!(
            w.call(true, Duration::from_secs(5)).await,
            Err(CallError::Gone)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            w.call(false, Duration::from_secs(5)).await,
            Err(CallError::Gone)
        );
    }
}
