//! `sluice push FILE --server URL`: a resumable upload in parallel parts.
//!
//! The session's id is remembered in a small record under the user's cache
//! directory (keyed by server, key, the file's path, size and modification
//! time); a push that was cut off — network, Ctrl-C, a killed process —
//! asks the server which parts arrived and sends only the others.

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use reqwest::Method;
use serde_json::{json, Value};
use sluice_server::api::{JobBody, SessionBody, SessionRequest};

use crate::cli::PushArgs;
use crate::client::Api;
use crate::exit::{usage, Code};
use crate::progress::Bar;

/// Runs the command.
pub fn run(args: &PushArgs) -> Result<Code> {
    let api = Api::new(&args.server)?;
    let meta = std::fs::metadata(&args.file).with_context(|| format!("{}: cannot read", args.file.display()))?;
    if !meta.is_file() {
        return Err(usage(format!("{}: not a regular file", args.file.display())));
    }
    let size = meta.len();
    let key = match &args.key {
        Some(k) => k.clone(),
        None => args
            .file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| usage("give the object's key with --key"))?,
    };
    let part_size = match &args.part_size {
        Some(s) => sluice_engine::format::parse_size(s).map_err(|e| usage(format!("--part-size {s:?}: {e}")))?,
        None => 8 << 20,
    };
    let parallel = args.parallel.clamp(1, 32);
    let record = Record::new(&args.server, &key, &args.file, &meta)?;

    let session = match record.load().and_then(|id| resumable(&api, &id, size, &key)) {
        Some(s) => {
            eprintln!(
                "resuming upload {} ({} of {} parts already stored)",
                s.id,
                s.received.len(),
                s.parts
            );
            s
        }
        None => {
            let body = SessionRequest {
                key: key.clone(),
                size,
                pipeline: args.pipeline.clone(),
                part_size: Some(part_size),
                blake3: None,
            };
            let s: SessionBody = api.json(|| api.request(Method::POST, "/v1/uploads").json(&body))?;
            record.save(&s.id)?;
            s
        }
    };
    let id = session.id.clone();
    let parts = u64::try_from(session.parts).context("the session has no part count")?;
    let part_size = u64::try_from(session.part_size).context("the session has no part size")?;
    let received: Vec<u64> = session.received.iter().filter_map(|n| u64::try_from(*n).ok()).collect();
    let todo: Vec<u64> = (0..parts).filter(|n| !received.contains(n)).collect();

    let sent = Arc::new(AtomicU64::new(
        received.iter().map(|n| part_len(*n, parts, part_size, size)).sum(),
    ));
    let bar = {
        let sent = Arc::clone(&sent);
        Bar::following(move || sent.load(Ordering::Relaxed), Some(size), args.quiet)
    };
    let next = AtomicUsize::new(0);
    let failed: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let file = std::fs::File::open(&args.file).with_context(|| format!("{}: cannot open", args.file.display()))?;
    std::thread::scope(|scope| {
        for _ in 0..parallel.min(todo.len().max(1)) {
            scope.spawn(|| loop {
                if failed.lock().map(|f| f.is_some()).unwrap_or(true) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&n) = todo.get(i) else { return };
                let len = part_len(n, parts, part_size, size);
                let mut buf = vec![0u8; len as usize];
                let sent_part = file
                    .read_exact_at(&mut buf, n * part_size)
                    .with_context(|| format!("{}: read failed (did it change?)", args.file.display()))
                    .and_then(|()| {
                        api.send_retrying(|| {
                            api.request(Method::PUT, &format!("/v1/uploads/{id}/parts/{n}"))
                                .body(buf.clone())
                        })
                    });
                match sent_part {
                    Ok(_) => {
                        sent.fetch_add(len, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if let Ok(mut f) = failed.lock() {
                            f.get_or_insert(e);
                        }
                        return;
                    }
                }
            });
        }
    });
    drop(bar);
    if let Some(e) = failed.into_inner().ok().flatten() {
        return Err(e.context("the upload stopped; run the same command again to resume it"));
    }
    let job: JobBody = api.json(|| api.request(Method::POST, &format!("/v1/uploads/{id}/complete")))?;
    record.forget();
    let job_id = job.id;
    if args.no_wait {
        println!("{job_id}");
        return Ok(Code::Ok);
    }
    let done = wait_for_job(&api, &job_id)?;
    match done.state.as_str() {
        "succeeded" => {
            eprintln!("stored {key} ({size} bytes; job {job_id})");
            Ok(Code::Ok)
        }
        state => bail!(
            "job {job_id} {state}: {}",
            done.error.as_deref().unwrap_or("no error given")
        ),
    }
}

fn part_len(n: u64, parts: u64, part_size: u64, size: u64) -> u64 {
    if n + 1 < parts {
        part_size
    } else {
        size - part_size * (parts - 1)
    }
}

/// The session `id` if the server still holds it open for this file.
fn resumable(api: &Api, id: &str, size: u64, key: &str) -> Option<SessionBody> {
    let s: SessionBody = api
        .json(|| api.request(Method::GET, &format!("/v1/uploads/{id}")))
        .ok()?;
    (s.state == "open" && u64::try_from(s.size).ok() == Some(size) && s.key == key).then_some(s)
}

/// Polls a job until it ends.
pub fn wait_for_job(api: &Api, id: &str) -> Result<JobBody> {
    loop {
        let j: JobBody = api.json(|| api.request(Method::GET, &format!("/v1/jobs/{id}")))?;
        if j.is_finished() {
            return Ok(j);
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Where a push remembers its session, so that running it again resumes.
struct Record {
    path: PathBuf,
}

impl Record {
    fn new(server: &str, key: &str, file: &Path, meta: &std::fs::Metadata) -> Result<Record> {
        let abs = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_path_buf());
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let id = blake3::hash(format!("{server}\n{key}\n{}\n{}\n{mtime}", abs.display(), meta.len()).as_bytes());
        let dir = match std::env::var_os("XDG_CACHE_HOME") {
            Some(d) => PathBuf::from(d),
            None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache"),
        }
        .join("sluice")
        .join("push");
        Ok(Record {
            path: dir.join(format!("{}.json", &id.to_hex()[..32])),
        })
    }

    fn load(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v["upload"].as_str().map(str::to_string)
    }

    fn save(&self, id: &str) -> Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
        }
        std::fs::write(&self.path, json!({"upload": id}).to_string())
            .with_context(|| format!("{}: cannot write", self.path.display()))
    }

    fn forget(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
