//! Outbox throughput: durable enqueues per second, and comments per second delivered into
//! the Zendesk simulator through the real Zendesk client. Not part of the test suite.
//!
//! ```text
//! cargo run --example outbox_throughput -- [ENTRIES] [QUEUES] [IN_FLIGHT]
//!     ENTRIES    comments in the burst (default 1000)
//!     QUEUES     1: every comment on one ticket (the load benchmark: one caller),
//!                9: round the sample data's nine tickets,
//!                open: each comment opens a ticket (a queue of its own) (default 1)
//!     IN_FLIGHT  outbox.max_in_flight (default: the config default)
//! ```
//!
//! Four phases, each on a fresh database in a temporary folder (the disk the system
//! temporary folder is on):
//! 0. one at a time: 100 enqueues, each awaited before the next (the latency of one
//!    synced commit, with nothing to share it with);
//! 1. enqueue: ENTRIES hang-ups at once, each `Outbox::enqueue` awaited (on disk when it
//!    returns); no sender running.
//! 2. deliver: the sender starts on that backlog; time until the simulator holds them all.
//! 3. burst: the sender runs while ENTRIES hang-ups enqueue at once; the enqueue time and
//!    the time until the simulator holds them all.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use zendesk_ivr::config::{OutboxConfig, ZendeskConfig};
use zendesk_ivr::outbox::{Deferred, Entry, Outbox, TicketToOpen, run_sender};
use zendesk_ivr::zendesk::ZendeskClient;
use zendesk_ivr::zendesk::sim::{self, SimState};

/// The sample data's tickets.
const TICKETS: [u64; 9] = [101, 102, 103, 104, 105, 106, 107, 108, 109];
/// Past this, a phase counts as stuck.
const PHASE_LIMIT: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_millis(10);

#[derive(Clone, Copy, PartialEq)]
enum Queues {
    OneTicket,
    NineTickets,
    Open,
}

fn entry(run: &str, n: usize, queues: Queues) -> Entry {
    let call_id = format!("bench-{run}-{n:05}");
    let body = format!("Call {n} from +4798765432: pressed 1.\n[call-id: {call_id}]");
    let (ticket_id, deferred) = match queues {
        Queues::OneTicket => (TICKETS[0], None),
        Queues::NineTickets => (TICKETS[n % TICKETS.len()], None),
        Queues::Open => (
            0,
            Some(Deferred::OpenTicket(TicketToOpen::for_caller(None, Some("+4798765432".into())))),
        ),
    };
    Entry { call_id, ticket_id, deferred, body, public: false, created_at: SystemTime::now() }
}

/// Comments of this run that the simulator holds (as comments, or as opened tickets).
fn landed(sim: &SimState, run: &str) -> usize {
    let marker = format!("[call-id: bench-{run}-");
    let data = sim.data();
    data.comments.iter().filter(|c| c.body.contains(&marker)).count()
}

/// Enqueues `count` entries at once; returns the wall time and each enqueue's latency.
async fn burst(
    outbox: &Outbox,
    run: &str,
    count: usize,
    queues: Queues,
) -> anyhow::Result<(Duration, Vec<Duration>)> {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for n in 0..count {
        let outbox = outbox.clone();
        let entry = entry(run, n, queues);
        tasks.spawn(async move {
            let began = Instant::now();
            let added = outbox.enqueue(entry).await;
            (added, began.elapsed())
        });
    }
    let mut latencies = Vec::with_capacity(count);
    while let Some(joined) = tasks.join_next().await {
        let (added, latency) = joined?;
        if !added? {
            bail!("an entry was not added");
        }
        latencies.push(latency);
    }
    Ok((started.elapsed(), latencies))
}

async fn wait_landed(sim: &SimState, run: &str, count: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    while landed(sim, run) < count {
        if started.elapsed() > PHASE_LIMIT {
            bail!("only {} of {count} landed in {PHASE_LIMIT:?}", landed(sim, run));
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len().saturating_sub(1)) as f64 * p / 100.0).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

fn rate(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64().max(1e-9)
}

fn report_enqueue(phase: &str, count: usize, took: Duration, mut latencies: Vec<Duration>) {
    latencies.sort();
    println!(
        "{phase}: {count} enqueues in {:.3} s = {:.0}/s; latency p50 {:.1} ms p99 {:.1} ms max {:.1} ms",
        took.as_secs_f64(),
        rate(count, took),
        percentile(&latencies, 50.0).as_secs_f64() * 1000.0,
        percentile(&latencies, 99.0).as_secs_f64() * 1000.0,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
    );
}

struct Sender {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), zendesk_ivr::outbox::OutboxError>>,
}

fn start_sender(outbox: &Outbox, url: &str) -> anyhow::Result<Sender> {
    let config = ZendeskConfig { url: url.to_owned(), ..ZendeskConfig::default() };
    let client = ZendeskClient::from_config(&config).context("Zendesk client")?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(run_sender(outbox.clone(), client, async move {
        let _ = stopped.await;
    }));
    Ok(Sender { stop, task })
}

impl Sender {
    async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task.await??;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(1000);
    let queues = match args.next().as_deref() {
        None | Some("1") => Queues::OneTicket,
        Some("9") => Queues::NineTickets,
        Some("open") => Queues::Open,
        Some(other) => bail!("QUEUES is 1, 9 or open, not {other}"),
    };
    let in_flight: Option<usize> = args.next().map(|n| n.parse()).transpose()?;
    let dir = tempfile::tempdir()?;
    let open = |name: &str| {
        let mut config = OutboxConfig { path: dir.path().join(name), ..OutboxConfig::default() };
        if let Some(n) = in_flight {
            config.max_in_flight = n;
        }
        println!("outbox.max_in_flight = {}", config.max_in_flight);
        Outbox::open_config(&config)
    };
    let sim = SimState::sample();
    let (addr, _server) = sim::spawn("127.0.0.1:0".parse()?, sim.clone()).await?;
    let url = format!("http://{addr}");

    // 0: one at a time.
    let outbox = open("serial.sqlite")?;
    let mut latencies = Vec::new();
    let started = Instant::now();
    for n in 0..100 {
        let began = Instant::now();
        if !outbox.enqueue(entry("s", n, queues)).await? {
            bail!("an entry was not added");
        }
        latencies.push(began.elapsed());
    }
    report_enqueue("enqueue (one at a time)", 100, started.elapsed(), latencies);

    // 1 and 2: a backlog, then the sender.
    let outbox = open("backlog.sqlite")?;
    let (took, latencies) = burst(&outbox, "a", count, queues).await?;
    report_enqueue("enqueue (no sender)", count, took, latencies);
    let sender = start_sender(&outbox, &url)?;
    let took = wait_landed(&sim, "a", count).await?;
    sender.stop().await?;
    println!(
        "deliver (backlog): {count} comments in {:.3} s = {:.0}/s",
        took.as_secs_f64(),
        rate(count, took)
    );

    // 3: a burst of hang-ups while the sender runs.
    let outbox = open("burst.sqlite")?;
    let sender = start_sender(&outbox, &url)?;
    let started = Instant::now();
    let (took, latencies) = burst(&outbox, "b", count, queues).await?;
    report_enqueue("enqueue (sender running)", count, took, latencies);
    wait_landed(&sim, "b", count).await?;
    let took = started.elapsed();
    sender.stop().await?;
    println!(
        "burst: {count} comments enqueued and delivered in {:.3} s = {:.0}/s",
        took.as_secs_f64(),
        rate(count, took)
    );
    Ok(())
}
