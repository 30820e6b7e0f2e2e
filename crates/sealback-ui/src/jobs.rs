//! Long work (backup, restore) runs as a job; the page polls its progress.

use sealback_engine::progress::Progress;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Jobs kept for the page to read; older finished ones are dropped.
const KEEP: usize = 32;

/// How a job ended, or that it still runs.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JobState {
    Running,
    Done { result: serde_json::Value },
    Failed { error: crate::api::ApiError },
}

/// One job's progress; the engine writes it through [`Progress`].
pub struct Job {
    pub kind: &'static str,
    phase: Mutex<String>,
    total: AtomicU64,
    done: AtomicU64,
    state: Mutex<JobState>,
}

impl Job {
    fn new(kind: &'static str) -> Self {
        Self {
            kind,
            phase: Mutex::new("starting".into()),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            state: Mutex::new(JobState::Running),
        }
    }

    pub fn end(&self, state: JobState) {
        *self.state.lock().expect("job lock") = state;
    }

    pub fn view(&self, id: &str) -> serde_json::Value {
        let state = self.state.lock().expect("job lock").clone();
        let mut v = serde_json::json!({
            "id": id,
            "kind": self.kind,
            "phase": *self.phase.lock().expect("job lock"),
            "total_bytes": self.total.load(Ordering::Relaxed),
            "done_bytes": self.done.load(Ordering::Relaxed),
        });
        if let (Some(o), Ok(serde_json::Value::Object(s))) =
            (v.as_object_mut(), serde_json::to_value(state))
        {
            o.extend(s);
        }
        v
    }

    pub fn running(&self) -> bool {
        matches!(*self.state.lock().expect("job lock"), JobState::Running)
    }
}

impl Progress for Job {
    fn start(&self, phase: &str, total_bytes: Option<u64>) {
        *self.phase.lock().expect("job lock") = phase.to_string();
        self.total
            .store(total_bytes.unwrap_or(0), Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
    }
    fn advance(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
    }
    fn finish(&self) {
        let total = self.total.load(Ordering::Relaxed);
        self.done.fetch_max(total, Ordering::Relaxed);
    }
}

/// All jobs of this UI process.
#[derive(Default)]
pub struct Jobs {
    next: AtomicU64,
    jobs: Mutex<Vec<(String, std::sync::Arc<Job>)>>,
}

impl Jobs {
    pub fn start(&self, kind: &'static str) -> (String, std::sync::Arc<Job>) {
        let id = format!("{kind}-{}", self.next.fetch_add(1, Ordering::Relaxed) + 1);
        let job = std::sync::Arc::new(Job::new(kind));
        let mut jobs = self.jobs.lock().expect("jobs lock");
        if jobs.len() >= KEEP {
            if let Some(pos) = jobs.iter().position(|(_, j)| !j.running()) {
                jobs.remove(pos);
            }
        }
        jobs.push((id.clone(), job.clone()));
        (id, job)
    }

    pub fn get(&self, id: &str) -> Option<std::sync::Arc<Job>> {
        self.jobs
            .lock()
            .expect("jobs lock")
            .iter()
            .find(|(i, _)| i == id)
            .map(|(_, j)| j.clone())
    }

    /// The views of every job, newest last (so a reloaded page finds a running backup).
    pub fn all(&self) -> HashMap<String, serde_json::Value> {
        self.jobs
            .lock()
            .expect("jobs lock")
            .iter()
            .map(|(id, j)| (id.clone(), j.view(id)))
            .collect()
    }
}
