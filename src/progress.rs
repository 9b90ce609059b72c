//! A progress line on a terminal for work that takes more than a moment.
//!
//! Nothing is printed when stderr is not a terminal, or when the work ends within 300 ms.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running progress indicator; [`Progress::finish`] (or drop) clears it.
pub struct Progress {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts showing `what` with a spinner and the elapsed time after a short delay.
    pub fn start(what: String) -> Progress {
        let done = Arc::new(AtomicBool::new(false));
        if !std::io::stderr().is_terminal() {
            return Progress { done, thread: None };
        }
        let flag = done.clone();
        // No indicator where no thread can be made: the work goes on without it.
        let thread = std::thread::Builder::new().spawn(move || {
            let start = Instant::now();
            let mut shown = false;
            let spinner = ['|', '/', '-', '\\'];
            let mut tick = 0usize;
            while !flag.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(100));
                let elapsed = start.elapsed();
                if elapsed < Duration::from_millis(300) || flag.load(Ordering::Acquire) {
                    continue;
                }
                shown = true;
                tick += 1;
                let mut err = std::io::stderr().lock();
                let _ = write!(
                    err,
                    "\r\x1b[Kkprof: {what} {} {:.1}s",
                    spinner[tick % spinner.len()],
                    elapsed.as_secs_f64()
                );
                let _ = err.flush();
            }
            if shown {
                let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
            }
        });
        Progress {
            done,
            thread: thread.ok(),
        }
    }

    /// Stops and clears the indicator.
    pub fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.done.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.stop();
    }
}
