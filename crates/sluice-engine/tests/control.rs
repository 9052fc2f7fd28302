//! Cancellation, progress and I/O failures: operations stop promptly and
//! cleanly, never hang, and report the failing side.

mod common;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

use common::*;
use sluice_engine::format::{KeyRing, Suite};
use sluice_engine::{Control, Error};

#[test]
fn cancel_stops_an_endless_encode_promptly() {
    // Every wait here is bounded: a regression must fail the test, not hang it.
    let ctl = Control::new();
    let canceller = ctl.clone();
    let watcher = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while canceller.progress.bytes_in() < 8 << 20 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let saw_progress = canceller.progress.bytes_in() >= 8 << 20;
        canceller.cancel.cancel();
        (saw_progress, Instant::now())
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let worker_ctl = ctl.clone();
    std::thread::spawn(move || {
        let o = opts(Suite::None, "lz4", "1MiB", vec![]);
        let _ = tx.send(engine(2).encode(io::repeat(7), io::sink(), &o, &worker_ctl));
    });
    let result = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("encode did not stop within 20 s of starting");
    let (saw_progress, cancelled_at) = watcher.join().unwrap();
    assert!(saw_progress, "encode made no progress before it ended: {result:?}");
    let err = result.unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err}");
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(2),
        "took {:?} to stop",
        cancelled_at.elapsed()
    );
}

#[test]
fn progress_counts_bytes_and_chunks() {
    let e = engine(2);
    let data = sample(100_000, 1);
    let ctl = Control::new();
    let mut file = Vec::new();
    e.encode(&data[..], &mut file, &opts(Suite::None, "zstd", "16KiB", vec![]), &ctl)
        .unwrap();
    assert_eq!(ctl.progress.bytes_in(), data.len() as u64);
    assert_eq!(ctl.progress.bytes_out(), file.len() as u64);
    assert_eq!(ctl.progress.chunks(), 7);
    assert_eq!(ctl.progress.done(), data.len() as u64);
    let ctl = Control::new();
    e.decode(&file[..], io::sink(), &KeyRing::new().allowing_unencrypted(), &ctl)
        .unwrap();
    assert_eq!(ctl.progress.bytes_in(), file.len() as u64);
    assert_eq!(ctl.progress.bytes_out(), data.len() as u64);
    assert_eq!(ctl.progress.done(), file.len() as u64);
}

struct FailingWriter(usize);
impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.0 < buf.len() {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "no space left on device"));
        }
        self.0 -= buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct FailingReader(usize);
impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::other("device error"));
        }
        let n = buf.len().min(self.0);
        buf[..n].fill(1);
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn write_and_read_failures_are_reported_not_hung() {
    let e = engine(2);
    let o = opts(Suite::None, "none", "16KiB", vec![]);
    let err = e
        .encode(
            io::repeat(1).take(10 << 20),
            FailingWriter(100_000),
            &o,
            &Control::new(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Write(_)), "{err}");
    let err = e
        .encode(FailingReader(1 << 20), io::sink(), &o, &Control::new())
        .unwrap_err();
    assert!(matches!(err, Error::Read(_)), "{err}");

    let file = encode(&e, &sample(1 << 20, 2), &o);
    let err = e
        .decode(
            &file[..],
            FailingWriter(50_000),
            &KeyRing::new().allowing_unencrypted(),
            &Control::new(),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Write(_)), "{err}");
}

/// Encodes `len` bytes (64 KiB chunks, no compression, no encryption) into a
/// null sink on `e`, and returns the largest `lag(progress)` seen meanwhile.
fn worst_lag(e: &sluice_engine::Engine, len: u64, lag: fn(&sluice_engine::Progress) -> i64) -> i64 {
    use std::sync::atomic::{AtomicBool, Ordering};
    let ctl = Control::new();
    let watcher = ctl.clone();
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let t = std::thread::spawn(move || {
        let mut worst = 0i64;
        while !stop.load(Ordering::Relaxed) {
            worst = worst.max(lag(&watcher.progress));
            std::thread::yield_now();
        }
        worst
    });
    let o = opts(Suite::None, "none", "64KiB", vec![]);
    e.encode(io::repeat(3).take(len), io::sink(), &o, &ctl).unwrap();
    done.store(true, Ordering::Relaxed);
    t.join().unwrap()
}

#[test]
fn memory_stays_bounded_on_a_long_stream() {
    // 256 MiB through a 64 KiB-chunk pipeline with 4 buffers in flight: bytes
    // read but not yet written are bounded by the in-flight buffers.
    let e = sluice_engine::Engine::new(sluice_engine::EngineConfig {
        threads: Some(2),
        in_flight: Some(4),
        ..Default::default()
    })
    .unwrap();
    let worst = worst_lag(&e, 256 << 20, |p| p.bytes_in() as i64 - p.bytes_out() as i64);
    assert!(worst <= 6 * 65536, "reader ran {worst} bytes ahead of the writer");
}

#[test]
fn memory_budget_caps_read_ahead_whatever_the_in_flight_setting() {
    // 64 chunks requested, but the budget holds only 3 chunks x 2 buffers.
    let e = sluice_engine::Engine::new(sluice_engine::EngineConfig {
        threads: Some(2),
        in_flight: Some(64),
        memory_budget: Some(3 * 2 * 65536),
        shared_memory: None,
    })
    .unwrap();
    assert_eq!(e.in_flight_for(65536), 3);
    let worst = worst_lag(&e, 64 << 20, |p| p.bytes_in() as i64 - p.done() as i64);
    assert!(
        worst <= 4 * 65536,
        "reader ran {worst} bytes ahead with a 3-chunk budget"
    );
}

#[test]
fn concurrent_operations_share_one_buffer_budget() {
    // Each operation may hold 8 chunks, but all of them together only 4.
    let pair = 2 * 65536;
    let e = sluice_engine::Engine::new(sluice_engine::EngineConfig {
        threads: Some(2),
        in_flight: Some(8),
        memory_budget: Some(64 << 20),
        shared_memory: Some(4 * pair),
    })
    .unwrap();
    let o = opts(Suite::None, "lz4", "64KiB", vec![]);
    let data = vec![7u8; 16 << 20];
    let done = std::sync::atomic::AtomicBool::new(false);
    let peak = std::thread::scope(|s| {
        let watcher = s.spawn(|| {
            let mut peak = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(e.buffers().lent());
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            peak
        });
        let jobs: Vec<_> = (0..3)
            .map(|_| s.spawn(|| e.encode(&data[..], std::io::sink(), &o, &Control::new()).unwrap()))
            .collect();
        for j in jobs {
            assert_eq!(j.join().unwrap().plaintext_len, data.len() as u64);
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        watcher.join().unwrap()
    });
    assert!(peak <= 4 * pair, "{peak} bytes lent at once, budget {}", 4 * pair);
    assert!(peak > 0);
    assert_eq!(e.buffers().lent(), 0, "every reservation was returned");
}

#[test]
fn cancel_reaches_a_read_that_blocks_through_a_hook() {
    /// An input that delivers what its channel sends and blocks in
    /// between, like a network body from a client that went quiet.
    struct Quiet(std::sync::mpsc::Receiver<Vec<u8>>, Vec<u8>);
    impl Read for Quiet {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1.is_empty() {
                self.1 = self
                    .0
                    .recv()
                    .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "input closed"))?;
            }
            let n = buf.len().min(self.1.len());
            buf[..n].copy_from_slice(&self.1[..n]);
            self.1.drain(..n);
            Ok(n)
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    tx.send(vec![1u8; 3 << 20]).unwrap();
    // The hook is how the feeder learns of the cancel: it closes the input.
    let feeder = std::sync::Arc::new(std::sync::Mutex::new(Some(tx)));
    let ctl = Control::new();
    let hook_feeder = std::sync::Arc::clone(&feeder);
    ctl.cancel.on_cancel(move || drop(hook_feeder.lock().unwrap().take()));
    let canceller = ctl.clone();
    let cancelled_at = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        while canceller.progress.bytes_in() < 3 << 20 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        // The reader is now blocked waiting for bytes that never come.
        std::thread::sleep(Duration::from_millis(100));
        canceller.cancel.cancel();
        Instant::now()
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let worker_ctl = ctl.clone();
    std::thread::spawn(move || {
        let o = opts(Suite::None, "lz4", "1MiB", vec![]);
        let _ = done_tx.send(engine(2).encode(Quiet(rx, Vec::new()), io::sink(), &o, &worker_ctl));
    });
    let result = done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("a cancelled encode stayed blocked in its read");
    let cancelled_at = cancelled_at.join().unwrap();
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(2),
        "took {:?} to stop",
        cancelled_at.elapsed()
    );
    assert!(feeder.lock().unwrap().is_none(), "the hook ran");
    // A hook registered after the cancel runs at once.
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r = std::sync::Arc::clone(&ran);
    ctl.cancel
        .on_cancel(move || r.store(true, std::sync::atomic::Ordering::SeqCst));
    assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn cancel_does_not_wait_for_argon2() {
    use sluice_engine::format::{KdfParams, Passphrase, SlotSpec};
    let pass = Passphrase::new("a slow passphrase");
    // Costly enough that waiting for it would show: 64 MiB, 10 passes.
    let kdf = KdfParams {
        memory_kib: 64 * 1024,
        passes: 10,
        lanes: 1,
    };
    let e = engine(2);
    let started = Instant::now();
    let o = opts(
        Suite::Aes256Gcm,
        "lz4",
        "64KiB",
        vec![SlotSpec::Passphrase(pass.clone(), kdf)],
    );
    let mut file = Vec::new();
    e.encode(&sample(10_000, 3)[..], &mut file, &o, &Control::new())
        .unwrap();
    // Encoding ran the same Argon2 once: about what an unlock costs.
    let kdf_time = started.elapsed();
    let keys = KeyRing::new().with_passphrase(pass);
    let ctl = Control::new();
    let canceller = ctl.cancel.clone();
    let at = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        canceller.cancel();
        Instant::now()
    });
    let result = e.decode(&file[..], io::sink(), &keys, &ctl);
    let cancelled_at = at.join().unwrap();
    let waited = cancelled_at.elapsed();
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert!(
        waited * 3 < kdf_time,
        "returned {waited:?} after the cancel; Argon2 takes {kdf_time:?}"
    );
    // Not cancelled, the same file opens.
    e.decode(&file[..], io::sink(), &keys, &Control::new()).unwrap();
}
