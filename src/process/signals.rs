//! Cancellation: SIGINT, SIGTERM and SIGHUP sent to us while Nix runs are passed on to Nix;
//! once Nix has stopped, we end by that signal (`die_by`), as `timeout` and `make` do, so
//! that no Nix process or builder outlives us and whoever started us sees a cancelled run.
//! (SIGKILL cannot be passed on; Nix learns of it from its parent-death signal, set in
//! `super::spawn`.)
//!
//! A signal ignored when we started (`nohup`, a background job) stays ignored, as it does
//! for Nix, which inherits that: it cannot cancel. Those we handle get their default action
//! back in what we start, as exec resets handlers.

use nix::poll::{PollTimeout, poll};
use nix::sys::signal::{self, SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal};
use nix::unistd::Pid;
use std::sync::Once;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const FORWARDED: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// The Nix process signals go to, or 0 when none runs.
static CHILD: AtomicI32 = AtomicI32::new(0);
/// The first signal received, or 0.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// The signals we installed our handler for, a bit per signal number.
static HANDLED: AtomicU64 = AtomicU64::new(0);

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

/// A signal's name, as a person reads it: `SIGTERM`.
pub fn name(signal: i32) -> String {
    match Signal::try_from(signal) {
        Ok(signal) => signal.as_str().into(),
        Err(_) => format!("signal {signal}"),
    }
}

/// Waits for `duration`, unless a signal asks us to stop first: then returns that signal at
/// once. Only after `Forwarding::install` do signals reach us here.
pub fn pause(duration: Duration) -> Option<i32> {
    let end = Instant::now() + duration;
    loop {
        if let Some(signal) = received() {
            return Some(signal);
        }
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        // poll(2) on nothing sleeps until the timeout, or until a signal is handled (EINTR,
        // as SA_RESTART does not restart poll). In steps, so that a signal that came just
        // before the call still ends the wait soon.
        let step = PollTimeout::try_from(left.min(Duration::from_millis(100)))
            .unwrap_or(PollTimeout::ZERO);
        let _ = poll(&mut [], step);
    }
}

/// Forwards signals to `child` until dropped. Install before spawning, so that a signal
/// arriving between spawn and `to` is still recorded, then passed on by `to`.
pub struct Forwarding(());

impl Forwarding {
    pub fn install() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            // Held back while our handler is tried on each, so that a signal that was
            // ignored cannot reach it; one that arrives meanwhile is discarded when the
            // signal is ignored again.
            let signals = SigSet::from_iter(FORWARDED);
            let mut mask = SigSet::empty();
            let held = signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals), Some(&mut mask));
            for signal in FORWARDED {
                match set(signal, SigHandler::Handler(on_signal)) {
                    Ok(SigHandler::SigIgn) => {
                        let _ = set(signal, SigHandler::SigIgn);
                    }
                    Ok(_) => {
                        HANDLED.fetch_or(1 << signal as u32, Ordering::SeqCst);
                    }
                    Err(_) => {}
                }
            }
            if held.is_ok() {
                let _ = signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&mask), None);
            }
        });
    }

    /// Forwards signals to `child`, and with `pending` the one received before, if any.
    pub fn to(child: u32, pending: bool) -> Self {
        CHILD.store(child as i32, Ordering::SeqCst);
        if let Some(signal) = received().filter(|_| pending) {
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

/// Gives the signals we handle their default action back, so that from now on they end us
/// at once: before exec, as the program must not start once the step is cancelled (check
/// `received` after this, for a signal that came before), and before `die_by`.
pub fn restore_defaults() {
    for signal in FORWARDED {
        if HANDLED.load(Ordering::SeqCst) & (1 << signal as u32) != 0 {
            let _ = set(signal, SigHandler::SigDfl);
        }
    }
}

/// Ends the process by `signal`, so that a shell that started us sees a killed child (and
/// stops a loop on Ctrl-C) and still reports 128+N.
pub fn die_by(signal: i32) -> ! {
    restore_defaults();
    if let Ok(signal) = Signal::try_from(signal) {
        let _ = signal::raise(signal);
    }
    // Not reached: a signal we handled ends us by default.
    std::process::exit(128 + signal)
}

/// Sets what `signal` does; returns what it did before.
fn set(signal: Signal, handler: SigHandler) -> nix::Result<SigHandler> {
    let action = SigAction::new(handler, SaFlags::SA_RESTART, SigSet::empty());
    // SAFETY: the only handler we set, `on_signal`, touches only atomics, errno and kill(2),
    // all async-signal-safe.
    unsafe { signal::sigaction(signal, &action) }.map(|old| old.handler())
}
