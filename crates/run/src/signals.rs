//! Ctrl-C and SIGTERM while a temporary root exists: instead of dying with
//! the root left behind, remember the signal, stop what we are doing, and
//! let the temp directory be removed on the way out.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static DEPTH: AtomicUsize = AtomicUsize::new(0);
static SAVED: Mutex<Option<(libc::sigaction, libc::sigaction)>> = Mutex::new(None);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// While alive, SIGINT/SIGTERM set a flag instead of killing the process.
pub struct Guard(());

impl Guard {
    pub fn install() -> Guard {
        if DEPTH.fetch_add(1, Ordering::SeqCst) == 0 {
            INTERRUPTED.store(false, Ordering::SeqCst);
            // SAFETY: installing a handler that only stores to an atomic.
            unsafe {
                let mut act: libc::sigaction = std::mem::zeroed();
                act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
                libc::sigemptyset(&mut act.sa_mask);
                let mut old_int: libc::sigaction = std::mem::zeroed();
                let mut old_term: libc::sigaction = std::mem::zeroed();
                libc::sigaction(libc::SIGINT, &act, &mut old_int);
                libc::sigaction(libc::SIGTERM, &act, &mut old_term);
                *SAVED.lock().unwrap_or_else(|e| e.into_inner()) = Some((old_int, old_term));
            }
        }
        Guard(())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if DEPTH.fetch_sub(1, Ordering::SeqCst) == 1 {
            if let Some((old_int, old_term)) =
                SAVED.lock().unwrap_or_else(|e| e.into_inner()).take()
            {
                // SAFETY: restoring the handlers saved above.
                unsafe {
                    libc::sigaction(libc::SIGINT, &old_int, std::ptr::null_mut());
                    libc::sigaction(libc::SIGTERM, &old_term, std::ptr::null_mut());
                }
            }
        }
    }
}

/// Whether SIGINT or SIGTERM arrived since the outermost guard was installed.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
