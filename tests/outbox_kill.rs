//! The outbox against the Zendesk simulator and the real Zendesk client: every comment
//! lands exactly once, across `kill -9`, lost answers and an unreachable Zendesk.
//!
//! This test binary plays two roles. Run normally, it is the test: it runs the simulator
//! (port 0) and starts copies of itself as child processes (the role is chosen by
//! `OUTBOX_TEST_ROLE`, the simulator's URL comes in `OUTBOX_TEST_URL`), SIGKILLs them,
//! reopens their database in-process, lets a new sender finish the work and reads the
//! simulator's request log and comments.

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use zendesk_ivr::config::{OutboxConfig, ZendeskConfig};
use zendesk_ivr::outbox::{
    Deferred, Entry, EntryInfo, EntryState, Outbox, OutboxError, TicketToOpen, run_sender,
};
use zendesk_ivr::zendesk::ZendeskClient;
use zendesk_ivr::zendesk::sim::{self, SimAuth, SimData, SimState};

const ROLE: &str = "OUTBOX_TEST_ROLE";
const DB: &str = "OUTBOX_TEST_DB";
const URL: &str = "OUTBOX_TEST_URL";
const COUNT: &str = "OUTBOX_TEST_COUNT";
/// `open`: the child's entries open tickets instead of commenting.
const KIND: &str = "OUTBOX_TEST_KIND";

const EMAIL: &str = "ivr@example.com";
const TOKEN: &str = "outbox-kill-token";
/// The sample data's tickets; entries go round them.
const TICKETS: [u64; 9] = [101, 102, 103, 104, 105, 106, 107, 108, 109];
/// Every body carries this before its call id, so our comments stand out from the sample's.
const MARKER_PREFIX: &str = "[call-id: obx-kill-";
/// The longest any one case may wait for something to happen.
// A bound against hangs, not a performance claim: each case normally takes about a second.
const CASE_BUDGET: Duration = Duration::from_secs(60);
/// How often the simulator and the outbox are polled while waiting.
const POLL: Duration = Duration::from_millis(5);

fn call_id(n: u64) -> String {
    format!("obx-kill-{n:04}")
}

fn entry(n: u64) -> Entry {
    let call_id = call_id(n);
    Entry {
        body: format!("Call {n} from +4798765432: transferred to support.\n[call-id: {call_id}]"),
        call_id,
        ticket_id: TICKETS[(n % TICKETS.len() as u64) as usize],
        deferred: None,
        public: false,
        created_at: SystemTime::now(),
    }
}

/// Entry `n` for a caller without a ticket: it opens one.
fn opening(n: u64) -> Entry {
    let open = TicketToOpen::for_caller(None, Some("+4798765432".into()));
    Entry { ticket_id: 0, deferred: Some(Deferred::OpenTicket(open)), ..entry(n) }
}

// ---- the simulator and the client ----

struct Zendesk {
    sim: SimState,
    url: String,
}

impl Zendesk {
    fn state() -> SimState {
        SimState::new(SimData::sample(), Some(SimAuth { email: EMAIL.into(), token: TOKEN.into() }))
    }

    /// The simulator with the sample data on 127.0.0.1, port 0, with `faults` set.
    async fn start(faults: &[&str]) -> Zendesk {
        let sim = Zendesk::state();
        for fault in faults {
            sim.add_fault(fault.parse().expect("fault spec"));
        }
        let (addr, _task) =
            sim::spawn("127.0.0.1:0".parse().expect("address"), sim.clone()).await.expect("sim");
        Zendesk { sim, url: format!("http://{addr}") }
    }

    /// PUTs of a comment carrying `call_id`, from the request log.
    fn puts_of(&self, call_id: &str) -> usize {
        self.sim
            .requests()
            .iter()
            .filter(|r| r.method == "PUT" && r.body.as_deref().is_some_and(|b| b.contains(call_id)))
            .count()
    }

    /// Reads of a ticket's comments (the outbox's duplicate check), from the request log.
    fn comment_reads(&self, ticket_id: u64) -> usize {
        let path = format!("/api/v2/tickets/{ticket_id}/comments.json");
        self.sim.requests().iter().filter(|r| r.method == "GET" && r.path == path).count()
    }

    /// Comments on the ticket carrying `call_id`.
    fn copies_of(&self, ticket_id: u64, call_id: &str) -> usize {
        self.sim.comments(ticket_id).iter().filter(|c| c.body.contains(call_id)).count()
    }

    /// Our call ids on each ticket, in the order the comments were added.
    fn call_ids_by_ticket(&self) -> BTreeMap<u64, Vec<String>> {
        let mut found = BTreeMap::new();
        for ticket in TICKETS {
            let ids: Vec<String> = self
                .sim
                .comments(ticket)
                .iter()
                .filter_map(|c| c.body.split_once(MARKER_PREFIX))
                .map(|(_, rest)| format!("obx-kill-{}", rest.trim_end_matches(']')))
                .collect();
            if !ids.is_empty() {
                found.insert(ticket, ids);
            }
        }
        found
    }

    /// Asserts that entries `0..n` are each on their ticket once, in order per ticket,
    /// each PUT once.
    fn assert_delivered_once_in_order(&self, n: u64) {
        let mut expected: BTreeMap<u64, Vec<String>> = BTreeMap::new();
        for i in 0..n {
            let entry = entry(i);
            expected.entry(entry.ticket_id).or_default().push(entry.call_id);
        }
        assert_eq!(self.call_ids_by_ticket(), expected, "each comment once, in order per ticket");
        for i in 0..n {
            assert_eq!(self.puts_of(&call_id(i)), 1, "entry {i} was PUT exactly once");
        }
    }
}

fn zendesk_client(url: &str) -> ZendeskClient {
    let config = ZendeskConfig {
        url: url.to_owned(),
        email: Some(EMAIL.into()),
        api_token: Some(TOKEN.into()),
        ..ZendeskConfig::default()
    };
    ZendeskClient::from_config(&config).expect("Zendesk client")
}

/// Short backoffs and a one-second attempt timeout, so that retries fit in a case.
fn quick_outbox(db: &Path) -> Outbox {
    let config = OutboxConfig {
        path: db.to_path_buf(),
        backoff_base_ms: 100,
        backoff_cap_ms: 400,
        attempt_timeout_s: 1,
        ..OutboxConfig::default()
    };
    Outbox::open_config(&config).expect("open outbox")
}

// ---- the sender, and waiting with a deadline ----

struct RunningSender {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), OutboxError>>,
}

fn start_sender(outbox: &Outbox, url: &str) -> RunningSender {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_sender(outbox.clone(), zendesk_client(url), async move {
        let _ = stopped.await;
    }));
    RunningSender { stop, task }
}

impl RunningSender {
    async fn stop(self) {
        let _ = self.stop.send(());
        let joined = tokio::time::timeout(CASE_BUDGET, self.task).await;
        assert!(matches!(joined, Ok(Ok(Ok(())))), "sender stopped cleanly: {joined:?}");
    }
}

/// Polls `condition` until it holds; fails the test past the case budget.
async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + CASE_BUDGET;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(POLL).await;
    }
}

async fn find(outbox: &Outbox, call_id: &str) -> EntryInfo {
    outbox.find(call_id).await.expect("find").expect("entry kept")
}

async fn delivered(outbox: &Outbox, call_id: &str) -> bool {
    find(outbox, call_id).await.state == EntryState::Delivered
}

async fn nothing_pending(outbox: &Outbox) -> bool {
    outbox.stats().await.expect("stats").pending == 0
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
    rx.recv_timeout(CASE_BUDGET).expect("child reported in time")
}

/// SIGKILL (std's `Child::kill` on unix), then reap.
fn kill_9(mut child: ChildGuard) {
    child.0.kill().expect("kill");
    let status = child.0.wait().expect("wait");
    assert!(!status.success(), "the child was killed, not finished: {status:?}");
}

/// The child: enqueue `OUTBOX_TEST_COUNT` entries, say so, then (as `sender`) post them one
/// at a time through the Zendesk client at `OUTBOX_TEST_URL`, or (as `writer`) just wait.
/// Either way it runs until it is killed.
fn child_main(role: &str) {
    let db = PathBuf::from(std::env::var_os(DB).expect("db path"));
    let count: u64 = std::env::var(COUNT).ok().and_then(|n| n.parse().ok()).expect("count");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let config = OutboxConfig { path: db, max_in_flight: 1, ..OutboxConfig::default() };
        let outbox = Outbox::open_config(&config).expect("open outbox");
        let opens = std::env::var(KIND).is_ok_and(|kind| kind == "open");
        for n in 0..count {
            let entry = if opens { opening(n) } else { entry(n) };
            assert!(outbox.enqueue(entry).await.expect("enqueue"));
        }
        println!("enqueued {count}");
        match role {
            "writer" => std::future::pending::<()>().await,
            "sender" => {
                let client = zendesk_client(&std::env::var(URL).expect("url"));
                let _ = run_sender(outbox, client, std::future::pending()).await;
            }
            other => panic!("unknown role {other}"),
        }
    });
}

// ---- the cases ----

/// Killed with everything pending, nothing sent: the restarted sender delivers each
/// comment once, in order per ticket.
async fn killed_before_sending_delivers_each_once() {
    const N: u64 = 40;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("outbox.sqlite");
    let zendesk = Zendesk::start(&[]).await;
    let mut child = spawn_child("writer", &db, &[(COUNT, N.to_string())]);
    assert_eq!(first_line(&mut child).trim(), format!("enqueued {N}"));
    kill_9(child);
    assert!(zendesk.sim.requests().is_empty(), "the writer sent nothing");

    let outbox = quick_outbox(&db);
    let pending = outbox.list(EntryState::Pending, 1000).await.expect("list");
    assert_eq!(pending.len() as u64, N, "every enqueued entry survived the kill");
    for (n, stored) in (0..N).zip(&pending) {
        let expected = entry(n);
        assert_eq!(
            (&stored.call_id, stored.ticket_id, &stored.body, stored.attempts),
            (&expected.call_id, expected.ticket_id, &expected.body, 0)
        );
    }

    let sender = start_sender(&outbox, &zendesk.url);
    eventually("every entry delivered", || nothing_pending(&outbox)).await;
    sender.stop().await;
    zendesk.assert_delivered_once_in_order(N);
    let stats = outbox.stats().await.expect("stats");
    assert_eq!((stats.pending, stats.delivered, stats.dead_letters), (0, N, 0));
}

/// Killed in the middle of sending: what landed before the kill is not sent again, the
/// rest is delivered by the restarted sender, each comment once, in order per ticket.
///
/// The child sends one entry at a time, so at most one attempt is cut by the kill. The
/// simulator runs without latency: a PUT it has logged is applied in the same step, so
/// no stray PUT of the dead child can land after the restarted sender has checked.
async fn killed_while_sending_delivers_each_once() {
    const N: u64 = 90;
    const KILL_AFTER: usize = 10;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("outbox.sqlite");
    let zendesk = Zendesk::start(&[]).await;
    let mut child =
        spawn_child("sender", &db, &[(COUNT, N.to_string()), (URL, zendesk.url.clone())]);
    assert_eq!(first_line(&mut child).trim(), format!("enqueued {N}"));
    let puts = || zendesk.sim.requests().iter().filter(|r| r.method == "PUT").count();
    eventually("the child's first PUTs", || std::future::ready(puts() >= KILL_AFTER)).await;
    kill_9(child);

    let outbox = quick_outbox(&db);
    let stats = outbox.stats().await.expect("stats");
    assert!(stats.delivered >= KILL_AFTER as u64 - 1, "the child delivered some: {stats:?}");
    assert!(stats.pending > 0, "the child was killed with entries pending: {stats:?}");
    assert!(stats.in_flight <= 1, "the child sent one at a time: {stats:?}");

    let sender = start_sender(&outbox, &zendesk.url);
    eventually("every entry delivered", || nothing_pending(&outbox)).await;
    sender.stop().await;
    zendesk.assert_delivered_once_in_order(N);
    let checks: usize = TICKETS.iter().map(|&t| zendesk.comment_reads(t)).sum();
    assert_eq!(checks as u64, stats.in_flight, "only the attempt cut by the kill was checked");
}

/// Killed while its PUT has landed in Zendesk but the answer has not come back: the
/// restarted sender finds the comment on the ticket and does not PUT again.
async fn killed_mid_send_lands_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("outbox.sqlite");
    let zendesk = Zendesk::start(&["tickets:stall@1"]).await;
    let sent = entry(0);
    let mut child = spawn_child("sender", &db, &[(COUNT, "1".into()), (URL, zendesk.url.clone())]);
    assert_eq!(first_line(&mut child).trim(), "enqueued 1");
    eventually("the child's comment on the ticket", || {
        std::future::ready(zendesk.copies_of(sent.ticket_id, &sent.call_id) == 1)
    })
    .await;
    kill_9(child);
    assert_eq!(zendesk.comment_reads(sent.ticket_id), 0, "no check before the first post");

    let outbox = quick_outbox(&db);
    let before = find(&outbox, &sent.call_id).await;
    assert_eq!((before.state, before.attempts), (EntryState::Pending, 1));
    assert_eq!(outbox.stats().await.expect("stats").in_flight, 1, "the attempt was recorded");

    let sender = start_sender(&outbox, &zendesk.url);
    eventually("the entry delivered", || delivered(&outbox, &sent.call_id)).await;
    sender.stop().await;
    assert_eq!(zendesk.comment_reads(sent.ticket_id), 1, "the restart checked the ticket");
    assert_eq!(zendesk.puts_of(&sent.call_id), 1, "no second PUT after the check found it");
    assert_eq!(zendesk.copies_of(sent.ticket_id, &sent.call_id), 1, "one comment landed");
    assert_eq!(find(&outbox, &sent.call_id).await.attempts, 2);
}

/// Killed while the ticket it opens (for a caller without one) has been created but the
/// answer has not come back: the restarted sender finds the ticket by its external id and
/// does not create another.
async fn killed_mid_open_opens_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("outbox.sqlite");
    let zendesk = Zendesk::start(&["tickets:stall@1"]).await;
    let sent = opening(0);
    let vars = [(COUNT, "1".into()), (URL, zendesk.url.clone()), (KIND, "open".into())];
    let mut child = spawn_child("sender", &db, &vars);
    assert_eq!(first_line(&mut child).trim(), "enqueued 1");
    let opened = || {
        let data = zendesk.sim.data();
        data.tickets.iter().filter(|t| t.external_id.as_deref() == Some(&sent.call_id)).count()
    };
    eventually("the child's ticket opened", || std::future::ready(opened() == 1)).await;
    kill_9(child);

    let outbox = quick_outbox(&db);
    let before = find(&outbox, &sent.call_id).await;
    assert_eq!((before.state, before.attempts), (EntryState::Pending, 1));
    assert_eq!(before.deferred, sent.deferred, "the ticket to open survived the kill");

    let sender = start_sender(&outbox, &zendesk.url);
    eventually("the entry delivered", || delivered(&outbox, &sent.call_id)).await;
    sender.stop().await;
    let requests = zendesk.sim.requests();
    let lookups = requests
        .iter()
        .filter(|r| r.method == "GET" && r.param("external_id").as_deref() == Some(&sent.call_id))
        .count();
    let creates = requests
        .iter()
        .filter(|r| {
            r.method == "POST" && r.body.as_deref().is_some_and(|b| b.contains(&sent.call_id))
        })
        .count();
    assert_eq!(lookups, 1, "the restart looked the ticket up by its external id");
    assert_eq!(creates, 1, "no second create after the lookup found it");
    assert_eq!(opened(), 1, "one ticket for the call");
}

/// In one process: a PUT that lands but is never answered (held past the attempt timeout),
/// and one whose connection is cut after it landed, each end as one comment.
async fn timeout_after_send_makes_no_duplicate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let outbox = quick_outbox(&dir.path().join("outbox.sqlite"));
    let zendesk = Zendesk::start(&["tickets:stall@1", "tickets:stall:200@1"]).await;
    let entries = [entry(1), entry(3)];
    for entry in &entries {
        assert!(outbox.enqueue(entry.clone()).await.expect("enqueue"));
    }
    let started = Instant::now();
    let sender = start_sender(&outbox, &zendesk.url);
    eventually("both entries delivered", || nothing_pending(&outbox)).await;
    sender.stop().await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "one attempt waited out the attempt timeout"
    );
    assert!(zendesk.sim.faults().is_empty(), "both stalls were used");
    for entry in &entries {
        let stored = find(&outbox, &entry.call_id).await;
        assert_eq!((stored.state, stored.attempts), (EntryState::Delivered, 2));
        assert_eq!(zendesk.comment_reads(entry.ticket_id), 1, "the retry checked first");
        assert_eq!(zendesk.puts_of(&entry.call_id), 1, "no second PUT");
        assert_eq!(zendesk.copies_of(entry.ticket_id, &entry.call_id), 1, "one comment");
    }
}

/// In one process: Zendesk is unreachable (its port refuses connections) when the call
/// ends; the comment is delivered once it is back, on the same port.
async fn zendesk_down_at_hang_up_then_back() {
    let dir = tempfile::tempdir().expect("temp dir");
    let outbox = quick_outbox(&dir.path().join("outbox.sqlite"));
    // Bound but not listening: connections are refused, and the port stays ours.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
    let url = format!("http://{}", socket.local_addr().expect("address"));
    let sent = entry(5);
    assert!(outbox.enqueue(sent.clone()).await.expect("enqueue"));
    let sender = start_sender(&outbox, &url);
    eventually("two refused attempts", || async {
        let stored = find(&outbox, &sent.call_id).await;
        stored.attempts >= 2 && stored.last_error.is_some()
    })
    .await;
    assert_eq!(find(&outbox, &sent.call_id).await.state, EntryState::Pending);

    let sim = Zendesk::state();
    let listener = socket.listen(64).expect("listen");
    tokio::spawn(sim::serve(listener, sim.clone()));
    let zendesk = Zendesk { sim, url };
    eventually("the entry delivered", || delivered(&outbox, &sent.call_id)).await;
    sender.stop().await;
    assert_eq!(zendesk.puts_of(&sent.call_id), 1, "one PUT once Zendesk was back");
    assert_eq!(zendesk.comment_reads(sent.ticket_id), 0, "a refused connection needs no check");
    assert_eq!(zendesk.copies_of(sent.ticket_id, &sent.call_id), 1, "one comment");
}

/// In one process: Zendesk fails the first PUTs (500, 500, then a cut connection), none of
/// which takes effect; the comment is delivered once, after checks that found nothing.
async fn zendesk_failing_then_back_delivers_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let outbox = quick_outbox(&dir.path().join("outbox.sqlite"));
    let zendesk = Zendesk::start(&["tickets:500@2", "tickets:drop@1"]).await;
    let sent = entry(7);
    assert!(outbox.enqueue(sent.clone()).await.expect("enqueue"));
    let sender = start_sender(&outbox, &zendesk.url);
    eventually("the entry delivered", || delivered(&outbox, &sent.call_id)).await;
    sender.stop().await;
    assert!(zendesk.sim.faults().is_empty(), "every fault was used");
    assert_eq!(zendesk.puts_of(&sent.call_id), 4, "three failed PUTs, then one that landed");
    assert_eq!(zendesk.comment_reads(sent.ticket_id), 3, "each retry after a 5xx checked");
    assert_eq!(zendesk.copies_of(sent.ticket_id, &sent.call_id), 1, "one comment");
    assert_eq!(find(&outbox, &sent.call_id).await.attempts, 4);
}

/// In one process: a burst of hang-ups (500 comments enqueued at once, round the sample's
/// tickets) while the sender runs: every comment lands once, each ticket's in the order
/// the outbox committed them.
async fn burst_is_delivered_once_in_order_per_ticket() {
    const N: u64 = 500;
    let dir = tempfile::tempdir().expect("temp dir");
    let outbox = quick_outbox(&dir.path().join("outbox.sqlite"));
    let zendesk = Zendesk::start(&[]).await;
    let sender = start_sender(&outbox, &zendesk.url);
    let mut enqueues = tokio::task::JoinSet::new();
    for n in 0..N {
        let outbox = outbox.clone();
        enqueues.spawn(async move { outbox.enqueue(entry(n)).await });
    }
    while let Some(joined) = enqueues.join_next().await {
        assert!(joined.expect("enqueue task").expect("enqueue"), "added");
    }
    eventually("every entry delivered", || nothing_pending(&outbox)).await;
    sender.stop().await;
    let mut committed: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for stored in outbox.list(EntryState::Delivered, 1000).await.expect("list") {
        committed.entry(stored.ticket_id).or_default().push(stored.call_id);
    }
    assert_eq!(committed.values().map(Vec::len).sum::<usize>() as u64, N, "all delivered");
    assert_eq!(zendesk.call_ids_by_ticket(), committed, "each once, in order per ticket");
    for n in 0..N {
        assert_eq!(zendesk.puts_of(&call_id(n)), 1, "entry {n} was PUT exactly once");
    }
}

async fn run_case(name: &str, case: impl Future<Output = ()>) {
    let started = Instant::now();
    case.await;
    let elapsed = started.elapsed();
    assert!(elapsed < CASE_BUDGET, "{name} took {elapsed:?}");
    println!("test {name} ... ok ({elapsed:.2?})");
    PASSED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
}

/// Cases that passed (a failing case panics and ends the process non-zero).
static PASSED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn main() {
    if let Ok(role) = std::env::var(ROLE) {
        child_main(&role);
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        run_case(
            "killed_before_sending_delivers_each_once",
            killed_before_sending_delivers_each_once(),
        )
        .await;
        run_case(
            "killed_while_sending_delivers_each_once",
            killed_while_sending_delivers_each_once(),
        )
        .await;
        run_case("killed_mid_send_lands_exactly_once", killed_mid_send_lands_exactly_once()).await;
        run_case("killed_mid_open_opens_exactly_once", killed_mid_open_opens_exactly_once()).await;
        run_case("timeout_after_send_makes_no_duplicate", timeout_after_send_makes_no_duplicate())
            .await;
        run_case("zendesk_down_at_hang_up_then_back", zendesk_down_at_hang_up_then_back()).await;
        run_case(
            "zendesk_failing_then_back_delivers_once",
            zendesk_failing_then_back_delivers_once(),
        )
        .await;
        run_case(
            "burst_is_delivered_once_in_order_per_ticket",
            burst_is_delivered_once_in_order_per_ticket(),
        )
        .await;
    });
    let passed = PASSED.load(std::sync::atomic::Ordering::SeqCst);
    println!(
        "\ntest result: ok. {passed} passed; 0 failed; 0 ignored; 0 measured; 0 filtered out\n"
    );
}
