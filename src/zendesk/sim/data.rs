//! The simulator's records: users, tickets and comments, seeded from JSON.
//!
//! Users and tickets are the API model's types ([`User`], [`Ticket`]), so their shapes are
//! defined once; loading fills the fields Zendesk always sends (locale, role, times, ...)
//! with Zendesk's defaults. Comments are stored with their ticket id and served in the
//! model's [`Comment`](crate::zendesk::model::Comment) shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::zendesk::model::{Ticket, User};

/// Built-in sample data: customers in several locales (Norwegian `nb` with region NO among
/// them), every priority, an urgent ticket, a user with no ticket, one with only a solved
/// ticket, a shared number, and a number shared by several users.
pub const SAMPLE_JSON: &str = include_str!("sample.json");

/// Largest seed file accepted, in bytes.
pub const MAX_SEED_BYTES: u64 = 16 * 1024 * 1024;

/// A stored comment: the API fields plus the ticket it belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimComment {
    #[serde(default)]
    pub id: u64,
    pub ticket_id: u64,
    #[serde(default)]
    pub author_id: u64,
    pub body: String,
    #[serde(default)]
    pub public: bool,
    #[serde(default = "default_time")]
    pub created_at: String,
}

/// Everything the simulator knows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SimData {
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub tickets: Vec<Ticket>,
    #[serde(default)]
    pub comments: Vec<SimComment>,
}

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("reading {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("seed data: {0}")]
    Json(#[from] serde_json::Error),
    #[error("seed data: {0}")]
    Invalid(String),
}

pub(super) fn default_locale() -> String {
    "en-US".into()
}
pub(super) fn default_role() -> String {
    "end-user".into()
}
fn default_time() -> String {
    "2024-01-01T00:00:00Z".into()
}

impl SimData {
    /// The built-in sample data.
    pub fn sample() -> SimData {
        // The sample is part of the build and covered by tests; an error here is a bug.
        Self::from_json(SAMPLE_JSON).unwrap_or_default()
    }

    pub fn from_json(text: &str) -> Result<SimData, SeedError> {
        let mut data: SimData = serde_json::from_str(text)?;
        data.check()?;
        data.number_comments();
        data.fill_defaults();
        Ok(data)
    }

    pub fn from_file(path: &std::path::Path) -> Result<SimData, SeedError> {
        let err = |reason: String| SeedError::Read { path: path.display().to_string(), reason };
        let len = std::fs::metadata(path).map_err(|e| err(e.to_string()))?.len();
        if len > MAX_SEED_BYTES {
            return Err(err(format!("larger than {MAX_SEED_BYTES} bytes")));
        }
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        Self::from_json(&text)
    }

    fn check(&self) -> Result<(), SeedError> {
        let mut ids = std::collections::HashSet::new();
        if let Some(user) = self.users.iter().find(|u| !ids.insert(u.id)) {
            return Err(SeedError::Invalid(format!("user id {} appears twice", user.id)));
        }
        let mut ticket_ids = std::collections::HashSet::new();
        for ticket in &self.tickets {
            if !ticket_ids.insert(ticket.id) {
                return Err(SeedError::Invalid(format!("ticket id {} appears twice", ticket.id)));
            }
            if !ids.contains(&ticket.requester_id) {
                return Err(SeedError::Invalid(format!(
                    "ticket {} has unknown requester {}",
                    ticket.id, ticket.requester_id
                )));
            }
        }
        if let Some(c) = self.comments.iter().find(|c| !ticket_ids.contains(&c.ticket_id)) {
            return Err(SeedError::Invalid(format!("comment on unknown ticket {}", c.ticket_id)));
        }
        Ok(())
    }

    /// Gives the fields Zendesk always sends, where a record leaves them out, Zendesk's
    /// defaults (an `en-US` end-user, an empty subject, times at the start of 2024).
    pub fn fill_defaults(&mut self) {
        for user in &mut self.users {
            user.locale.get_or_insert_with(default_locale);
            user.role.get_or_insert_with(default_role);
            user.shared_phone_number.get_or_insert(false);
            user.created_at.get_or_insert_with(default_time);
            user.updated_at.get_or_insert_with(default_time);
        }
        for ticket in &mut self.tickets {
            ticket.subject.get_or_insert_with(String::new);
            ticket.created_at.get_or_insert_with(default_time);
            ticket.updated_at.get_or_insert_with(default_time);
        }
    }

    /// Gives comments without an id one above the highest id.
    fn number_comments(&mut self) {
        let first = self.comments.iter().map(|c| c.id).max().unwrap_or(0) + 1;
        for (id, comment) in (first..).zip(self.comments.iter_mut().filter(|c| c.id == 0)) {
            comment.id = id;
        }
    }

    pub fn user(&self, id: u64) -> Option<&User> {
        self.users.iter().find(|u| u.id == id)
    }

    pub fn ticket_mut(&mut self, id: u64) -> Option<&mut Ticket> {
        self.tickets.iter_mut().find(|t| t.id == id)
    }

    pub fn comments_of(&self, ticket_id: u64) -> Vec<&SimComment> {
        self.comments.iter().filter(|c| c.ticket_id == ticket_id).collect()
    }

    pub fn next_comment_id(&self) -> u64 {
        self.comments.iter().map(|c| c.id).max().unwrap_or(5000) + 1
    }

    pub fn next_ticket_id(&self) -> u64 {
        self.tickets.iter().map(|t| t.id).max().unwrap_or(100) + 1
    }

    pub fn next_user_id(&self) -> u64 {
        self.users.iter().map(|u| u.id).max().unwrap_or(1000) + 1
    }

    /// Counts of records, for a start-up line.
    pub fn summary(&self) -> BTreeMap<&'static str, usize> {
        BTreeMap::from([
            ("users", self.users.len()),
            ("tickets", self.tickets.len()),
            ("comments", self.comments.len()),
        ])
    }
}

/// The current time as Zendesk writes it (`2024-05-01T10:00:00Z`).
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    now.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| default_time())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zendesk::model::Priority;

    #[test]
    fn sample_data_loads_and_covers_the_cases() {
        let data = SimData::from_json(SAMPLE_JSON).unwrap();
        assert!(data.users.len() >= 8);
        assert!(data.users.iter().any(|u| u.locale.as_deref() == Some("nb")));
        assert!(data.users.iter().any(|u| u.has_shared_phone_number()));
        assert!(data.tickets.iter().any(|t| t.priority == Some(Priority::Urgent)));
        assert!(data.users.iter().any(|u| !data.tickets.iter().any(|t| t.requester_id == u.id)));
        assert_eq!(data, SimData::sample());
    }

    #[test]
    fn missing_fields_get_zendesk_defaults() {
        let seed = r#"{"users":[{"id":1,"name":"a","locale":"nb"}],
                       "tickets":[{"id":2,"status":"open","requester_id":1}]}"#;
        let data = SimData::from_json(seed).unwrap();
        let user = &data.users[0];
        assert_eq!(user.locale.as_deref(), Some("nb"));
        assert!(user.is_end_user());
        assert_eq!(user.shared_phone_number, Some(false));
        assert_eq!(user.created_at.as_deref(), Some("2024-01-01T00:00:00Z"));
        let ticket = &data.tickets[0];
        assert_eq!(ticket.subject.as_deref(), Some(""));
        assert_eq!(ticket.updated_at.as_deref(), Some("2024-01-01T00:00:00Z"));
    }

    #[test]
    fn bad_seed_data_is_refused_with_a_reason() {
        let dup = r#"{"users":[{"id":1,"name":"a"},{"id":1,"name":"b"}]}"#;
        assert!(SimData::from_json(dup).unwrap_err().to_string().contains("twice"));
        let orphan = r#"{"tickets":[{"id":1,"status":"open","requester_id":9}]}"#;
        assert!(SimData::from_json(orphan).unwrap_err().to_string().contains("requester"));
        assert!(SimData::from_json("{").is_err());
        assert!(now_rfc3339().ends_with('Z'));
    }
}
