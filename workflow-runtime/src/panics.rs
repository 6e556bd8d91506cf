//! Panics in user code that the engine catches (a guard, an action, an
//! activity's attempt): recorded in the instance's history and kept out of
//! stderr.
//!
//! `catch_unwind` catches a panic only after the panic hook ran, and the
//! default hook prints the message, which may quote a secret, to stderr.
//! So the first catch installs, once per process, a hook that wraps the one
//! set at that moment (the default, or the application's): a panic inside
//! [`catch`] on this thread is not reported, any other panic goes to the
//! wrapped hook unchanged. An application that sets its own hook after the
//! engine started replaces this one and sees every panic again.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// How many [`catch`] calls are running on this thread.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
}

static HOOK: Once = Once::new();

/// Runs `f`, catching a panic in it without reporting it to the panic hook.
#[inline]
pub(crate) fn catch<R>(f: impl FnOnce() -> R) -> std::thread::Result<R> {
    HOOK.call_once(install);
    CATCHING.with(|n| n.set(n.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|n| n.set(n.get() - 1));
    result
}

#[cold]
fn install() {
    let wrapped = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        // A thread being torn down has no locals left: report as usual.
        if CATCHING.try_with(Cell::get).unwrap_or(0) == 0 {
            wrapped(info);
        }
    }));
}

/// A caught panic's message (a `&str` or `String` payload), if it has one.
pub(crate) fn message(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
}
