//! SIGINT, SIGTERM, SIGHUP and SIGQUIT while a run is in progress: instead
//! of dying with the temporary root left behind, remember each signal so the
//! run can pass it on to the program (as `docker run` proxies signals) and
//! clean up on the way out.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The signals a run catches and forwards to the program.
pub const FORWARDED: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Arrivals not yet taken, per signal in [`FORWARDED`] order.
static PENDING: [AtomicU32; 4] = [
    AtomicU32::new(0),
    AtomicU32::new(0),
    AtomicU32::new(0),
    AtomicU32::new(0),
];
static DEPTH: AtomicUsize = AtomicUsize::new(0);
static SAVED: Mutex<Option<[libc::sigaction; 4]>> = Mutex::new(None);

extern "C" fn on_signal(sig: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
    if let Some(i) = FORWARDED.iter().position(|&s| s == sig) {
        PENDING[i].fetch_add(1, Ordering::SeqCst);
    }
}

/// While alive, the forwarded signals are recorded instead of killing the
/// process.
pub struct Guard(());

impl Guard {
    pub fn install() -> Guard {
        if DEPTH.fetch_add(1, Ordering::SeqCst) == 0 {
            INTERRUPTED.store(false, Ordering::SeqCst);
            for p in &PENDING {
                p.store(0, Ordering::SeqCst);
            }
            // SAFETY: installing a handler that only touches atomics.
            unsafe {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                act.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut act.sa_mask);
                let mut old: [libc::sigaction; 4] = std::mem::zeroed();
                for (i, sig) in FORWARDED.iter().enumerate() {
                    libc::sigaction(*sig, &act, &mut old[i]);
                }
                *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some(old);
            }
        }
        Guard(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if DEPTH.fetch_sub(1, Ordering::SeqCst) == 1 {
            if let Some(old) = SAVED.lock().unwrap_or_else(|e| e.into_inner()).take() {
                // SAFETY: restoring the handlers saved above.
                unsafe {
                    for (i, sig) in FORWARDED.iter().enumerate() {
                        libc::sigaction(*sig, &old[i], std::ptr::null_mut());
                    }
                }
            }
        }
    }
}

/// Whether one of the caught signals arrived since the outermost guard was
/// installed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// The signals that arrived since the last call, in arrival-count order
/// (one entry per arrival).
pub fn take_pending() -> Vec<libc::c_int> {
    let mut out = Vec::new();
    for (i, sig) in FORWARDED.iter().enumerate() {
        let n = PENDING[i].swap(0, Ordering::SeqCst);
        out.extend(std::iter::repeat_n(*sig, n as usize));
    }
    out
}
