//! Cancellation: SIGINT, SIGTERM and SIGHUP sent to us while Nix runs are passed on to Nix,
//! and we exit 128+N only after Nix has stopped, so no Nix process or builder outlives us.
//! (SIGKILL cannot be passed on; Nix learns of it from its parent-death signal, set in
//! `crate::command::spawn`.)

use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::Pid;
use std::sync::Once;
use std::sync::atomic::{AtomicI32, Ordering};

/// The signals we handle; exec resets their handlers to the default in what we start.
pub(crate) const FORWARDED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// The Nix process signals go to, or 0 when none runs.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// The first signal received, or 0.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: i32) {
    // kill(2) may set errno, which the code this handler interrupted may be about to read.
    let errno = nix::errno::Errno::last_raw();
    let _ = RECEIVED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    // Every signal is forwarded, not only the first: Nix may be waiting for a second one.
    forward(signal);
    nix::errno::Errno::set_raw(errno);
}

/// Async-signal-safe: one atomic load and one kill(2).
fn forward(signal: i32) {
    let child = CHILD.load(Ordering::SeqCst);
    if child > 0
        && let Ok(signal) = Signal::try_from(signal)
    {
        let _ = signal::kill(Pid::from_raw(child), signal);
    }
}

/// The first signal that asked us to stop, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

/// Forwards signals to `child` until dropped. Install before spawning, so that a signal
/// arriving between spawn and this call is still recorded, then passed on here.
pub struct Forwarding(());

impl Forwarding {
    pub fn install() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            let action = SigAction::new(
                SigHandler::Handler(on_signal),
                SaFlags::SA_RESTART,
                SigSet::empty(),
            );
            for signal in FORWARDED {
                // SAFETY: the handler only touches atomics, errno and kill(2).
                let old = unsafe { signal::sigaction(signal, &action) };
                // A signal ignored when we started (`nohup`, a background job) stays
                // ignored, as it is for Nix, which inherits that: it must not cancel.
                if let Ok(old) = old
                    && matches!(old.handler(), SigHandler::SigIgn)
                {
                    // SAFETY: restores the disposition we found.
                    let _ = unsafe { signal::sigaction(signal, &old) };
                }
            }
        });
    }

    pub fn to(child: u32) -> Self {
        CHILD.store(child as i32, Ordering::SeqCst);
        if let Some(signal) = received() {
            forward(signal);
        }
        Forwarding(())
    }
}

impl Drop for Forwarding {
    fn drop(&mut self) {
        CHILD.store(0, Ordering::SeqCst);
    }
}
