//! A progress bar on stderr (bytes, rate, ETA), fed from the engine's
//! [`Progress`] counters by a small thread, shown only on a terminal.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sluice_engine::Progress;

/// Draws the bar until dropped.
pub struct Bar {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Bar {
    /// Starts a bar for `total` bytes (if known) unless `quiet` or stderr is
    /// not a terminal. It follows [`Progress::done`] and appears only once
    /// real work has finished, so it never draws over a passphrase prompt.
    pub fn start(progress: Arc<Progress>, total: Option<u64>, quiet: bool) -> Bar {
        Bar::following(move || progress.done(), total, quiet)
    }

    /// A bar following any byte count (e.g. bytes sent over HTTP).
    pub fn following(done: impl Fn() -> u64 + Send + 'static, total: Option<u64>, quiet: bool) -> Bar {
        let stop = Arc::new(AtomicBool::new(false));
        if quiet || !std::io::stderr().is_terminal() {
            return Bar { stop, handle: None };
        }
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            // Short jobs finish before the bar would appear; a prompt (no
            // progress yet) keeps it hidden.
            let mut waited = 0;
            while waited < 5 || done() == 0 {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
                waited += 1;
            }
            let bar = match total {
                Some(t) => ProgressBar::with_draw_target(Some(t), ProgressDrawTarget::stderr()),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            };
            let template = if total.is_some() {
                "{bar:30} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
            } else {
                "{spinner} {bytes} {binary_bytes_per_sec}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            // Start the rate estimate from the first finished chunk, not from zero.
            bar.set_position(done());
            bar.reset_eta();
            while !flag.load(Ordering::Relaxed) {
                bar.set_position(done());
                std::thread::sleep(Duration::from_millis(100));
            }
            bar.finish_and_clear();
        });
        Bar {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
