//! An instance's mailbox: the bounded queue of requests from outside, the
//! unbounded queue of its own activities' and timers' messages, and what it
//! publishes (its status), all behind one small lock.
//!
//! One allocation per instance instead of a tokio `mpsc` channel (which
//! allocates a block of 32 slots up front), an unbounded channel and a
//! `watch` channel: an idle instance holds a million times over, so its
//! bytes count. Queues allocate only once something is queued.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Mutex, MutexGuard};
use std::task::{Poll, Waker};

use tokio::sync::Notify;

/// What the receiving task takes next.
pub(crate) enum Next<C, O> {
    /// One of its own messages (taken before requests).
    Own(O),
    /// A request from outside.
    Request(C),
    /// Closed and drained: the task ends.
    Closed,
}

/// Why a request was not queued; the request is given back.
pub(crate) enum Refused<C> {
    /// The mailbox holds `capacity` requests.
    Full(C),
    /// The mailbox is closed.
    Closed(C),
}

pub(crate) struct Mailbox<C, O, T> {
    inner: Mutex<Inner<C, O, T>>,
    /// Wakes senders waiting for room.
    room: Notify,
    capacity: usize,
}

struct Inner<C, O, T> {
    requests: VecDeque<C>,
    own: VecDeque<O>,
    receiver: Option<Waker>,
    /// No new request is taken; the receiver drains what is queued and
    /// what the senders already waiting for room bring.
    closed: bool,
    /// Senders waiting for room.
    waiting: usize,
    /// The receiver is gone: nothing is queued any more.
    ended: bool,
    data: T,
}

impl<C, O, T> Mailbox<C, O, T> {
    /// A mailbox for `capacity` requests (at least one), holding `data`.
    pub(crate) fn new(capacity: usize, data: T) -> Self {
        Mailbox {
            inner: Mutex::new(Inner {
                requests: VecDeque::new(),
                own: VecDeque::new(),
                receiver: None,
                closed: false,
                waiting: 0,
                ended: false,
                data,
            }),
            room: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<C, O, T>> {
        // A poisoned lock only means a thread panicked holding it; the
        // queues themselves are always consistent.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads or changes the published data.
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.lock().data)
    }

    /// Queues a request if there is room.
    pub(crate) fn try_send(&self, request: C) -> Result<(), Refused<C>> {
        self.offer(request, None)
    }

    /// Queues a request if there is room. With `waiting`, a sender that
    /// will wait for room: counted among the waiting (who still get in
    /// after `close`) when it first finds none, uncounted when it gets in.
    fn offer(&self, request: C, waiting: Option<&mut bool>) -> Result<(), Refused<C>> {
        let mut inner = self.lock();
        let counted = waiting.as_deref().copied().unwrap_or(false);
        if inner.ended || (inner.closed && !counted) {
            return Err(Refused::Closed(request));
        }
        if inner.requests.len() >= self.capacity {
            if let Some(waiting) = waiting {
                if !*waiting {
                    inner.waiting += 1;
                    *waiting = true;
                }
            }
            return Err(Refused::Full(request));
        }
        inner.requests.push_back(request);
        if let Some(waiting) = waiting {
            if *waiting {
                inner.waiting -= 1;
                *waiting = false;
            }
        }
        let receiver = inner.receiver.take();
        drop(inner);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
        Ok(())
    }

    /// Queues a request, waiting for room; gives it back if the mailbox is
    /// closed before it began waiting, or has ended. A request already
    /// waiting when the mailbox is closed still gets in.
    pub(crate) async fn send(&self, mut request: C) -> Result<(), C> {
        let mut waiting = Waiting {
            mailbox: self,
            counted: false,
        };
        loop {
            // Registered before looking, so that room made in between is
            // not missed.
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.offer(request, Some(&mut waiting.counted)) {
                Ok(()) => return Ok(()),
                Err(Refused::Closed(back)) => return Err(back),
                Err(Refused::Full(back)) => request = back,
            }
            notified.await;
        }
    }

    /// Queues one of the receiver's own messages without waking it (dropped
    /// if it has ended): for a message that needs no prompt handling,
    /// because another that wakes it follows, or a request comes first
    /// (own messages are taken in order, before requests).
    pub(crate) fn push_own_quietly(&self, message: O) {
        self.queue_own(message, false);
    }

    /// Queues one of the receiver's own messages (dropped if it has ended).
    pub(crate) fn push_own(&self, message: O) {
        self.queue_own(message, true);
    }

    fn queue_own(&self, message: O, wake: bool) {
        let mut inner = self.lock();
        if inner.ended {
            return;
        }
        inner.own.push_back(message);
        let receiver = if wake { inner.receiver.take() } else { None };
        drop(inner);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
    }

    /// The receiver's next message: its own first, then requests; `Closed`
    /// once closed and drained.
    pub(crate) async fn next(&self) -> Next<C, O> {
        poll_fn(|cx| {
            let mut inner = self.lock();
            if let Some(message) = inner.own.pop_front() {
                if inner.own.is_empty() {
                    // Own messages come in bursts (an activity's attempts
                    // and outcome); an idle instance keeps no buffer.
                    inner.own = VecDeque::new();
                }
                return Poll::Ready(Next::Own(message));
            }
            if let Some(request) = inner.requests.pop_front() {
                // Every slot freed while senders wait wakes one of them,
                // whether or not the queue was full: a sender woken by an
                // earlier pop may not have taken its slot yet, so "was
                // full" would miss the room this pop makes (a lost
                // wake-up: senders waiting forever beside an empty queue).
                // A sender counted here is registered with `room` (it
                // enabled its `Notified` before it was counted), and a
                // notification to a sender dropped meanwhile passes on to
                // the next.
                let wake = inner.waiting > 0;
                drop(inner);
                if wake {
                    self.room.notify_one();
                }
                return Poll::Ready(Next::Request(request));
            }
            if inner.closed && inner.waiting == 0 {
                return Poll::Ready(Next::Closed);
            }
            if !inner.receiver.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                inner.receiver = Some(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }

    /// Takes no more requests; the receiver drains those queued, then gets
    /// [`Next::Closed`].
    pub(crate) fn close(&self) {
        let mut inner = self.lock();
        inner.closed = true;
        let receiver = inner.receiver.take();
        drop(inner);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
        self.room.notify_waiters();
    }

    /// The receiver is gone: what is queued is dropped (a request's reply
    /// channel with it, so its sender learns), and nothing more is taken.
    /// Changes the data with `f` under the same lock.
    pub(crate) fn end(&self, f: impl FnOnce(&mut T)) {
        let mut inner = self.lock();
        inner.closed = true;
        inner.ended = true;
        inner.receiver = None;
        let requests = std::mem::take(&mut inner.requests);
        let own = std::mem::take(&mut inner.own);
        f(&mut inner.data);
        drop(inner);
        // Dropped outside the lock: a reply channel's drop wakes its waiter.
        drop((requests, own));
        self.room.notify_waiters();
    }
}

/// A sender counted among those waiting for room, uncounted however it
/// ends (dropped included), so that a closed mailbox's receiver is not kept
/// waiting for it.
struct Waiting<'a, C, O, T> {
    mailbox: &'a Mailbox<C, O, T>,
    counted: bool,
}

impl<C, O, T> Drop for Waiting<'_, C, O, T> {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let mut inner = self.mailbox.lock();
        inner.waiting -= 1;
        let receiver = inner.receiver.take();
        drop(inner);
        if let Some(receiver) = receiver {
            receiver.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    type Box3 = Mailbox<u32, &'static str, u8>;

    /// A mailbox for one request, holding request 1, and a task sending
    /// request 2 (`true` if it got in), waiting for room.
    async fn full_with_a_sender_waiting() -> (Arc<Box3>, tokio::task::JoinHandle<bool>) {
        let mailbox = Arc::new(Box3::new(1, 0));
        assert!(mailbox.try_send(1).is_ok());
        let sender = tokio::spawn({
            let mailbox = mailbox.clone();
            async move { mailbox.send(2).await.is_ok() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        (mailbox, sender)
    }

    #[tokio::test]
    async fn own_messages_go_before_requests_in_order() {
        let mailbox = Box3::new(4, 0);
        assert!(mailbox.try_send(1).is_ok());
        assert!(mailbox.try_send(2).is_ok());
        mailbox.push_own("a");
        let mut seen = Vec::new();
        mailbox.close();
        loop {
            match mailbox.next().await {
                Next::Own(o) => seen.push(o.to_string()),
                Next::Request(r) => seen.push(r.to_string()),
                Next::Closed => break,
            }
        }
        assert_eq!(seen, ["a", "1", "2"]);
        assert!(matches!(mailbox.try_send(3), Err(Refused::Closed(3))));
    }

    #[tokio::test]
    async fn a_full_mailbox_refuses_try_send_and_send_waits_for_room() {
        let (mailbox, sender) = full_with_a_sender_waiting().await;
        assert!(matches!(mailbox.try_send(3), Err(Refused::Full(3))));
        assert!(!sender.is_finished(), "no room yet");
        assert!(matches!(mailbox.next().await, Next::Request(1)));
        assert!(sender.await.unwrap());
        assert!(matches!(mailbox.next().await, Next::Request(2)));
    }

    #[tokio::test]
    async fn every_slot_freed_wakes_a_waiting_sender() {
        // Full, two senders waiting, two requests taken back to back: the
        // second pop finds the queue no longer full but must still wake
        // the second sender.
        let mailbox = Arc::new(Box3::new(2, 0));
        assert!(mailbox.try_send(1).is_ok() && mailbox.try_send(2).is_ok());
        let senders: Vec<_> = [3, 4]
            .into_iter()
            .map(|n| {
                let mailbox = mailbox.clone();
                tokio::spawn(async move { mailbox.send(n).await.is_ok() })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(matches!(mailbox.next().await, Next::Request(1)));
        assert!(matches!(mailbox.next().await, Next::Request(2)));
        for sender in senders {
            let got_in = tokio::time::timeout(Duration::from_secs(5), sender).await;
            assert!(matches!(got_in, Ok(Ok(true))), "a sender was never woken");
        }
    }

    #[tokio::test]
    async fn a_sender_waiting_when_closed_still_gets_in() {
        let (mailbox, sender) = full_with_a_sender_waiting().await;
        mailbox.close();
        assert!(matches!(mailbox.try_send(3), Err(Refused::Closed(3))));
        assert!(matches!(mailbox.next().await, Next::Request(1)));
        assert!(matches!(mailbox.next().await, Next::Request(2)));
        assert!(matches!(mailbox.next().await, Next::Closed));
        assert!(sender.await.unwrap());
    }

    #[tokio::test]
    async fn a_waiting_sender_dropped_lets_a_closed_mailbox_end() {
        let (mailbox, sender) = full_with_a_sender_waiting().await;
        mailbox.close();
        assert!(matches!(mailbox.next().await, Next::Request(1)));
        sender.abort();
        let _ = sender.await;
        assert!(matches!(mailbox.next().await, Next::Closed));
    }

    #[tokio::test]
    async fn ending_refuses_waiting_senders_and_drops_what_is_queued() {
        let (mailbox, sender) = full_with_a_sender_waiting().await;
        mailbox.end(|data| *data = 7);
        assert!(!sender.await.unwrap(), "refused");
        mailbox.push_own("late");
        assert!(matches!(mailbox.next().await, Next::Closed));
        assert_eq!(mailbox.with(|data| *data), 7);
    }

    #[tokio::test]
    async fn a_quiet_message_waits_for_the_next_wake() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let mailbox = Arc::new(Box3::new(2, 0));
        let got_one = Arc::new(AtomicBool::new(false));
        let receiver = tokio::spawn({
            let (mailbox, got_one) = (mailbox.clone(), got_one.clone());
            async move {
                let first = mailbox.next().await;
                got_one.store(true, Ordering::SeqCst);
                let second = mailbox.next().await;
                matches!((first, second), (Next::Own("started"), Next::Own("outcome")))
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        mailbox.push_own_quietly("started");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!got_one.load(Ordering::SeqCst), "a quiet message wakes nobody");
        mailbox.push_own("outcome");
        assert!(receiver.await.unwrap(), "both, in order, at the next wake");
    }

    #[tokio::test]
    async fn the_receiver_is_woken_by_a_request() {
        let mailbox = Arc::new(Box3::new(2, 0));
        let receiver = tokio::spawn({
            let mailbox = mailbox.clone();
            async move { matches!(mailbox.next().await, Next::Request(5)) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(mailbox.try_send(5).is_ok());
        assert!(receiver.await.unwrap());
    }
}
