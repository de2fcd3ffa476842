//! `zendesk-ivr outbox list|replay|stats`: look into the outbox and replay dead letters.

use std::io::Write;
use std::time::SystemTime;

use clap::Subcommand;

use super::{DeadLetterFilter, Deferred, EntryInfo, EntryState, Outbox, OutboxError};
use crate::config::OutboxConfig;

#[derive(Debug, Clone, Subcommand)]
pub enum OutboxCommand {
    /// List pending entries (or dead letters with --dead).
    List {
        /// List the dead letters instead of the pending entries.
        #[arg(long)]
        dead: bool,
        /// Print at most this many entries.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Move dead letters back to pending. Needs --all, --ticket or --call-id.
    Replay {
        /// Replay every dead letter.
        #[arg(long, conflicts_with_all = ["ticket", "call_id"])]
        all: bool,
        /// Only dead letters for this ticket.
        #[arg(long)]
        ticket: Option<u64>,
        /// Only the dead letter with this call id.
        #[arg(long)]
        call_id: Option<String>,
    },
    /// Print the counts: pending, in flight, delivered, dead letters, oldest age.
    Stats,
}

/// Why an outbox command failed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("replay needs --all, --ticket ID or --call-id ID")]
    ReplayWithoutFilter,
    #[error("no outbox database at {0} (see outbox.path in the configuration)")]
    Missing(std::path::PathBuf),
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

/// Runs one outbox command against the outbox in `config`, writing a report to `out`.
pub fn run(
    config: &OutboxConfig,
    command: OutboxCommand,
    out: &mut impl Write,
) -> Result<(), CommandError> {
    if let OutboxCommand::Replay { all: false, ticket: None, call_id: None } = command {
        return Err(CommandError::ReplayWithoutFilter);
    }
    if !config.path.exists() {
        return Err(CommandError::Missing(config.path.clone()));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Runtime)?;
    let outbox = Outbox::open_config(config)?;
    let text = runtime.block_on(report(&outbox, command))?;
    out.write_all(text.as_bytes()).map_err(CommandError::Output)
}

async fn report(outbox: &Outbox, command: OutboxCommand) -> Result<String, OutboxError> {
    let mut text = String::new();
    match command {
        OutboxCommand::List { dead, limit } => {
            let state = if dead { EntryState::DeadLetter } else { EntryState::Pending };
            let entries = outbox.list(state, limit).await?;
            for entry in &entries {
                text.push_str(&entry_line(entry));
                text.push('\n');
            }
            text.push_str(&format!("{} {} entries shown\n", entries.len(), state_name(state)));
        }
        OutboxCommand::Replay { all: _, ticket, call_id } => {
            let moved =
                outbox.replay_dead_letters(DeadLetterFilter { ticket_id: ticket, call_id }).await?;
            text.push_str(&format!("{moved} dead letters moved back to pending\n"));
        }
        OutboxCommand::Stats => {
            let stats = outbox.stats().await?;
            text.push_str(&format!(
                "pending {}\nin_flight {}\ndelivered {}\ndead_letters {}\noldest_pending_age_s {}\n",
                stats.pending,
                stats.in_flight,
                stats.delivered,
                stats.dead_letters,
                stats.oldest_pending_age.map_or(0, |age| age.as_secs()),
            ));
        }
    }
    Ok(text)
}

fn state_name(state: EntryState) -> &'static str {
    match state {
        EntryState::Pending => "pending",
        EntryState::Delivered => "delivered",
        EntryState::DeadLetter => "dead-letter",
    }
}

fn entry_line(entry: &EntryInfo) -> String {
    let age = SystemTime::now().duration_since(entry.enqueued_at).unwrap_or_default().as_secs();
    // The body may hold personal data: list it by size only. Errors are printed escaped,
    // since they may quote a server's reply.
    // A deferred entry's ticket is decided when it is sent (the number stays unprinted).
    let ticket = match entry.deferred {
        Some(Deferred::OpenTicket(_)) => "to-open".to_string(),
        Some(Deferred::CallersTicket { .. }) => "callers-latest".to_string(),
        None => entry.ticket_id.to_string(),
    };
    format!(
        "call_id={:?} ticket={} public={} attempts={} age_s={} body_bytes={} last_error={:?}",
        entry.call_id,
        ticket,
        entry.public,
        entry.attempts,
        age,
        entry.body.len(),
        entry.last_error.as_deref().unwrap_or(""),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(ticket_id: u64, deferred: Option<Deferred>) -> EntryInfo {
        EntryInfo {
            call_id: "[call-id: c1]".into(),
            ticket_id,
            deferred,
            body: "private words [call-id: c1]".into(),
            public: false,
            created_at: SystemTime::now(),
            enqueued_at: SystemTime::now(),
            attempts: 2,
            check_first: false,
            last_error: Some("boom\r\n".into()),
            next_attempt_at: None,
            state: EntryState::Pending,
        }
    }

    #[test]
    fn lines_name_the_ticket_or_how_it_is_found_never_the_body_or_number() {
        let plain = entry_line(&info(7, None));
        assert!(plain.contains("ticket=7 ") && plain.contains("body_bytes=27"), "{plain}");
        assert!(plain.contains(r#"last_error="boom\r\n""#), "escaped: {plain}");
        let later = Deferred::CallersTicket { phone: "+4798765432".into(), open_if_none: true };
        let line = entry_line(&info(0, Some(later)));
        assert!(line.contains("ticket=callers-latest"), "{line}");
        assert!(!line.contains("4798765432") && !line.contains("private"), "{line}");
        let open = Deferred::OpenTicket(super::super::TicketToOpen::for_caller(Some(5), None));
        assert!(entry_line(&info(0, Some(open))).contains("ticket=to-open"));
    }
}
