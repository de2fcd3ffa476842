//! The outbox survives `kill -9`.
//!
//! This test binary plays two roles. Run normally, it is the test: it starts copies of
//! itself as child processes (the role is chosen by `OUTBOX_TEST_ROLE`), SIGKILLs them,
//! reopens their database in-process and checks what was kept. A small HTTP server in
//! the test process stands in for Zendesk's ticket endpoints.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Json;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};
use zendesk_ivr::outbox::{CommentSink, Entry, EntryState, Outbox, PostError, run_sender};

const ROLE: &str = "OUTBOX_TEST_ROLE";
const DB: &str = "OUTBOX_TEST_DB";
const URL: &str = "OUTBOX_TEST_URL";
const COUNT: &str = "OUTBOX_TEST_COUNT";
const WAIT: Duration = Duration::from_secs(30);

fn entry(n: u64) -> Entry {
    let call_id = format!("kill-test-call-{n:04}");
    Entry {
        body: format!("Call {n} from +4798765432: transferred to support.\n[call-id: {call_id}]"),
        call_id,
        ticket_id: 1000 + n % 7,
        public: false,
        created_at: SystemTime::now(),
    }
}

// ---- a comment sink over HTTP, speaking Zendesk's ticket endpoints ----

struct HttpSink {
    client: reqwest::Client,
    base: String,
}

impl HttpSink {
    fn new(base: &str) -> HttpSink {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("HTTP client");
        HttpSink { client, base: base.trim_end_matches('/').to_owned() }
    }
}

fn request_error(err: reqwest::Error) -> PostError {
    if err.is_connect() {
        PostError::Transient(err.to_string())
    } else {
        PostError::Ambiguous(err.to_string())
    }
}

fn status_error(status: reqwest::StatusCode) -> PostError {
    match status.as_u16() {
        429 => PostError::RetryAfter(Duration::from_secs(1)),
        500..=599 => PostError::Transient(status.to_string()),
        _ => PostError::Permanent(status.to_string()),
    }
}

impl CommentSink for HttpSink {
    async fn post_comment(
        &self,
        ticket_id: u64,
        body: &str,
        public: bool,
    ) -> Result<(), PostError> {
        let url = format!("{}/api/v2/tickets/{ticket_id}.json", self.base);
        let payload = json!({"ticket": {"comment": {"body": body, "public": public}}});
        let response = self.client.put(url).json(&payload).send().await.map_err(request_error)?;
        if response.status().is_success() { Ok(()) } else { Err(status_error(response.status())) }
    }

    async fn has_comment_containing(
        &self,
        ticket_id: u64,
        marker: &str,
    ) -> Result<bool, PostError> {
        let url = format!("{}/api/v2/tickets/{ticket_id}/comments.json", self.base);
        let response = self.client.get(url).send().await.map_err(request_error)?;
        if !response.status().is_success() {
            return Err(status_error(response.status()));
        }
        let page: Value = response.json().await.map_err(request_error)?;
        let comments = page["comments"].as_array().cloned().unwrap_or_default();
        Ok(comments.iter().any(|c| c["body"].as_str().is_some_and(|b| b.contains(marker))))
    }
}

// ---- a stand-in for Zendesk's ticket endpoints ----

#[derive(Default)]
struct Tickets {
    /// Comment bodies per ticket, in arrival order.
    comments: HashMap<u64, Vec<String>>,
    puts: usize,
    comment_reads: usize,
    /// Store PUTs but never answer them.
    hang_puts: bool,
}

#[derive(Clone)]
struct FakeZendesk {
    tickets: Arc<Mutex<Tickets>>,
    changed: Arc<watch::Sender<u64>>,
}

impl FakeZendesk {
    async fn start() -> (FakeZendesk, String) {
        let fake = FakeZendesk { tickets: Arc::default(), changed: Arc::new(watch::channel(0).0) };
        let app = axum::Router::new()
            .route("/api/v2/tickets/{file}", put(put_ticket))
            .route("/api/v2/tickets/{id}/comments.json", get(list_comments))
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (fake, format!("http://{addr}"))
    }

    fn with<T>(&self, f: impl FnOnce(&mut Tickets) -> T) -> T {
        let value = f(&mut self.tickets.lock().expect("lock"));
        self.changed.send_modify(|n| *n += 1);
        value
    }

    async fn wait_until(&self, what: &str, condition: impl Fn(&Tickets) -> bool) {
        let mut changes = self.changed.subscribe();
        let waited = tokio::time::timeout(WAIT, async {
            while !condition(&self.tickets.lock().expect("lock")) {
                if changes.changed().await.is_err() {
                    return;
                }
            }
        })
        .await;
        assert!(waited.is_ok(), "timed out waiting for {what}");
    }

    fn copies_of(&self, marker: &str) -> usize {
        let tickets = self.tickets.lock().expect("lock");
        tickets.comments.values().flatten().filter(|body| body.contains(marker)).count()
    }
}

async fn put_ticket(
    State(fake): State<FakeZendesk>,
    UrlPath(file): UrlPath<String>,
    Json(payload): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let Some(id) = file.strip_suffix(".json").and_then(|id| id.parse::<u64>().ok()) else {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "RecordNotFound"})));
    };
    let Some(body) = payload["ticket"]["comment"]["body"].as_str() else {
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({"error": "RecordInvalid"})));
    };
    let hang = fake.with(|t| {
        t.puts += 1;
        t.comments.entry(id).or_default().push(body.to_owned());
        t.hang_puts
    });
    if hang {
        std::future::pending::<()>().await;
    }
    (StatusCode::OK, Json(json!({"ticket": {"id": id}})))
}

async fn list_comments(State(fake): State<FakeZendesk>, UrlPath(id): UrlPath<u64>) -> Json<Value> {
    let bodies = fake.with(|t| {
        t.comment_reads += 1;
        t.comments.get(&id).cloned().unwrap_or_default()
    });
    let comments: Vec<Value> = bodies.iter().map(|b| json!({"body": b, "public": false})).collect();
    Json(json!({"comments": comments, "next_page": null, "count": comments.len()}))
}

// ---- child processes ----

/// Kills the child when dropped, so a failing test leaves no process behind.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(role: &str, db: &Path, vars: &[(&str, String)]) -> ChildGuard {
    let exe = std::env::current_exe().expect("own executable");
    let mut command = Command::new(exe);
    command.env(ROLE, role).env(DB, db).stdout(Stdio::piped()).stderr(Stdio::inherit());
    for (name, value) in vars {
        command.env(name, value);
    }
    ChildGuard(command.spawn().expect("spawn child"))
}

/// Waits (on a thread, with a timeout) for the child's first line of output.
fn first_line(child: &mut ChildGuard) -> String {
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(WAIT).expect("child reported in time")
}

/// SIGKILL (std's `Child::kill` on unix), then reap.
fn kill_9(mut child: ChildGuard) {
    child.0.kill().expect("kill");
    let status = child.0.wait().expect("wait");
    assert!(!status.success(), "the child was killed, not finished: {status:?}");
}

fn child_main(role: &str) {
    let db = PathBuf::from(std::env::var_os(DB).expect("db path"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let outbox = Outbox::open(&db).expect("open outbox");
        match role {
            "writer" => {
                let count: u64 =
                    std::env::var(COUNT).ok().and_then(|n| n.parse().ok()).expect("count");
                for n in 0..count {
                    assert!(outbox.enqueue(entry(n)).await.expect("enqueue"));
                }
                println!("enqueued {count}");
                std::future::pending::<()>().await;
            }
            "sender" => {
                let url = std::env::var(URL).expect("url");
                outbox.enqueue(entry(0)).await.expect("enqueue");
                let _ = run_sender(outbox, HttpSink::new(&url), std::future::pending()).await;
            }
            other => panic!("unknown role {other}"),
        }
    });
}

// ---- the tests ----

async fn deliver_everything(outbox: &Outbox, url: &str, done: impl AsyncFnOnce()) {
    let (stop, stopped) = oneshot::channel::<()>();
    let sender = tokio::spawn(run_sender(outbox.clone(), HttpSink::new(url), async move {
        let _ = stopped.await;
    }));
    done().await;
    let _ = stop.send(());
    let joined = tokio::time::timeout(WAIT, sender).await;
    assert!(matches!(joined, Ok(Ok(Ok(())))), "sender stopped cleanly: {joined:?}");
}

async fn killed_writer_keeps_every_enqueued_entry() {
    const N: u64 = 50;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("outbox.sqlite");
    let mut child = spawn_child("writer", &db, &[(COUNT, N.to_string())]);
    assert_eq!(first_line(&mut child).trim(), format!("enqueued {N}"));
    kill_9(child);

    let outbox = Outbox::open(&db).expect("reopen");
    let pending = outbox.list(EntryState::Pending, 1000).await.expect("list");
    assert_eq!(pending.len() as u64, N);
    for (n, stored) in (0..N).zip(&pending) {
        let expected = entry(n);
        assert_eq!(stored.call_id, expected.call_id);
        assert_eq!(stored.ticket_id, expected.ticket_id);
        assert_eq!(stored.body, expected.body);
        assert_eq!(stored.attempts, 0);
    }

    let (zendesk, url) = FakeZendesk::start().await;
    deliver_everything(&outbox, &url, async || {
        zendesk.wait_until("all comments", |t| t.puts as u64 >= N).await;
    })
    .await;
    for n in 0..N {
        assert_eq!(zendesk.copies_of(&entry(n).call_id), 1, "entry {n} delivered exactly once");
    }
    let stats = outbox.stats().await.expect("stats");
    assert_eq!((stats.pending, stats.delivered, stats.dead_letters), (0, N, 0));
    assert_eq!(zendesk.with(|t| t.puts) as u64, N, "no PUT was repeated");
}

async fn killed_mid_send_lands_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("outbox.sqlite");
    let (zendesk, url) = FakeZendesk::start().await;
    zendesk.with(|t| t.hang_puts = true);
    let child = spawn_child("sender", &db, &[(URL, url.clone())]);
    zendesk.wait_until("the child's PUT", |t| t.puts == 1).await;
    kill_9(child);
    zendesk.with(|t| t.hang_puts = false);

    let outbox = Outbox::open(&db).expect("reopen");
    let marker = entry(0).call_id;
    let before = outbox.find(&marker).await.expect("find").expect("entry kept");
    assert_eq!((before.state, before.attempts), (EntryState::Pending, 1));
    assert_eq!(outbox.stats().await.expect("stats").in_flight, 1, "the attempt was recorded");

    deliver_everything(&outbox, &url, async || {
        zendesk.wait_until("the check", |t| t.comment_reads >= 1).await;
    })
    .await;
    assert_eq!(zendesk.copies_of(&marker), 1, "exactly one comment landed");
    assert_eq!(zendesk.with(|t| t.puts), 1, "no second PUT after the check found it");
    let after = outbox.find(&marker).await.expect("find").expect("entry kept");
    assert_eq!(after.state, EntryState::Delivered);
}

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        child_main(&role);
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        killed_writer_keeps_every_enqueued_entry().await;
        println!("test killed_writer_keeps_every_enqueued_entry ... ok");
        killed_mid_send_lands_exactly_once().await;
        println!("test killed_mid_send_lands_exactly_once ... ok");
    });
}
