//! The subset of Zendesk's search syntax the client uses, and a little more:
//! `type:user phone:4798765432`, `phone:*98765432` (leading `*`: the stored number ends with
//! the digits; trailing `*`: starts with), `type:ticket requester_id:1001 status<solved`,
//! `status:open`, `priority:urgent`, `tags:billing`, `email:...`, `role:...`, and bare words
//! matched against names and subjects. Sorting follows `sort_by` / `sort_order`.

use crate::zendesk::model::{Priority, Status, Ticket, User};

use super::data::SimData;

/// Longest query accepted, in bytes, and most terms in it.
pub const MAX_QUERY_BYTES: usize = 1024;
pub const MAX_TERMS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub field: Option<String>,
    pub op: Op,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// `type:` (user, ticket); `None` searches both.
    pub kind: Option<String>,
    pub terms: Vec<Term>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("query too long")]
    TooLong,
    #[error("too many terms")]
    TooManyTerms,
    #[error("empty query")]
    Empty,
    #[error("unsupported type {0:?}")]
    UnsupportedType(String),
}

pub fn parse_query(text: &str) -> Result<Query, QueryError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(QueryError::TooLong);
    }
    let mut kind = None;
    let mut terms = Vec::new();
    for word in text.split_whitespace() {
        if terms.len() == MAX_TERMS {
            return Err(QueryError::TooManyTerms);
        }
        let term = parse_term(word);
        if term.field.as_deref() == Some("type") {
            let value = term.value.to_ascii_lowercase();
            if !matches!(value.as_str(), "user" | "ticket") {
                return Err(QueryError::UnsupportedType(value));
            }
            kind = Some(value);
        } else {
            terms.push(term);
        }
    }
    if kind.is_none() && terms.is_empty() {
        return Err(QueryError::Empty);
    }
    Ok(Query { kind, terms })
}

fn parse_term(word: &str) -> Term {
    // The first operator character splits field and value.
    let Some(pos) = word.find([':', '<', '>']) else {
        return Term { field: None, op: Op::Eq, value: word.to_string() };
    };
    let field = word[..pos].to_ascii_lowercase();
    let rest = &word[pos..];
    let (op, len) = if rest.starts_with("<=") {
        (Op::Le, 2)
    } else if rest.starts_with(">=") {
        (Op::Ge, 2)
    } else if rest.starts_with('<') {
        (Op::Lt, 1)
    } else if rest.starts_with('>') {
        (Op::Gt, 1)
    } else {
        (Op::Eq, 1)
    };
    let value = rest[len..].trim_matches('"').to_string();
    Term { field: Some(field), op, value }
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// Zendesk-like phone matching on digits: exact, or `*` wildcards at either end.
pub fn phone_matches(stored: Option<&str>, pattern: &str) -> bool {
    let Some(stored) = stored else { return false };
    let stored = digits(stored);
    let (lead, trail) = (pattern.starts_with('*'), pattern.ends_with('*') && pattern.len() > 1);
    let wanted = digits(pattern);
    if wanted.is_empty() || stored.is_empty() {
        return false;
    }
    match (lead, trail) {
        (true, true) => stored.contains(&wanted),
        (true, false) => stored.ends_with(&wanted),
        (false, true) => stored.starts_with(&wanted),
        (false, false) => stored == wanted,
    }
}

fn text_matches(haystack: &str, needle: &str) -> bool {
    haystack.to_lowercase().contains(&needle.to_lowercase())
}

fn compare<T: Ord>(op: Op, actual: T, wanted: T) -> bool {
    match op {
        Op::Eq => actual == wanted,
        Op::Lt => actual < wanted,
        Op::Le => actual <= wanted,
        Op::Gt => actual > wanted,
        Op::Ge => actual >= wanted,
    }
}

pub fn user_matches(user: &User, terms: &[Term]) -> bool {
    terms.iter().all(|term| match term.field.as_deref() {
        Some("phone") => phone_matches(user.phone.as_deref(), &term.value),
        Some("email") => user.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(&term.value)),
        Some("role") => user.role.as_deref().unwrap_or_default().eq_ignore_ascii_case(&term.value),
        Some("name") => text_matches(&user.name, &term.value),
        Some("id") => term.value.parse::<u64>().is_ok_and(|id| id == user.id),
        Some(_) => false,
        None => text_matches(&user.name, &term.value),
    })
}

fn priority_rank(p: Option<Priority>) -> u8 {
    match p {
        None => 0,
        Some(Priority::Low) => 1,
        Some(Priority::Normal) => 2,
        Some(Priority::High) => 3,
        Some(Priority::Urgent) => 4,
        Some(Priority::Other) => 0,
    }
}

pub fn ticket_matches(ticket: &Ticket, terms: &[Term]) -> bool {
    terms.iter().all(|term| match term.field.as_deref() {
        Some("requester_id" | "requester") => {
            term.value.parse::<u64>().is_ok_and(|id| id == ticket.requester_id)
        }
        Some("status") => Status::from_name(&term.value)
            .is_some_and(|wanted| compare(term.op, ticket.status, wanted)),
        Some("priority") => {
            let wanted = match term.value.to_ascii_lowercase().as_str() {
                "none" => None,
                "low" => Some(Priority::Low),
                "normal" => Some(Priority::Normal),
                "high" => Some(Priority::High),
                "urgent" => Some(Priority::Urgent),
                _ => return false,
            };
            compare(term.op, priority_rank(ticket.priority), priority_rank(wanted))
        }
        Some("tags" | "tag") => ticket.tags.iter().any(|t| t.eq_ignore_ascii_case(&term.value)),
        Some("subject") => text_matches(subject(ticket), &term.value),
        Some("id") => term.value.parse::<u64>().is_ok_and(|id| id == ticket.id),
        Some(_) => false,
        None => text_matches(subject(ticket), &term.value),
    })
}

fn subject(ticket: &Ticket) -> &str {
    ticket.subject.as_deref().unwrap_or_default()
}

/// A search hit, before it is turned into JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Hit<'a> {
    User(&'a User),
    Ticket(&'a Ticket),
}

impl Hit<'_> {
    fn updated_at(&self) -> &str {
        match self {
            Hit::User(u) => u.updated_at.as_deref(),
            Hit::Ticket(t) => t.updated_at.as_deref(),
        }
        .unwrap_or_default()
    }
    fn created_at(&self) -> &str {
        match self {
            Hit::User(u) => u.created_at.as_deref(),
            Hit::Ticket(t) => t.created_at.as_deref(),
        }
        .unwrap_or_default()
    }
    fn id(&self) -> u64 {
        match self {
            Hit::User(u) => u.id,
            Hit::Ticket(t) => t.id,
        }
    }
}

/// Runs a query. Without `sort_by` results come in id order; with it, RFC 3339 times in
/// Zendesk's fixed `Z` form sort correctly as text. `sort_order` defaults to `desc`.
pub fn search<'a>(
    data: &'a SimData,
    query: &Query,
    sort_by: Option<&str>,
    sort_order: Option<&str>,
) -> Vec<Hit<'a>> {
    let mut hits: Vec<Hit<'a>> = Vec::new();
    if query.kind.as_deref() != Some("ticket") {
        hits.extend(data.users.iter().filter(|u| user_matches(u, &query.terms)).map(Hit::User));
    }
    if query.kind.as_deref() != Some("user") {
        hits.extend(
            data.tickets.iter().filter(|t| ticket_matches(t, &query.terms)).map(Hit::Ticket),
        );
    }
    let Some(sort_by) = sort_by else {
        hits.sort_by_key(Hit::id);
        return hits;
    };
    match sort_by {
        "created_at" => hits.sort_by(|a, b| a.created_at().cmp(b.created_at())),
        "priority" => hits.sort_by_key(|h| match h {
            Hit::Ticket(t) => priority_rank(t.priority),
            Hit::User(_) => 0,
        }),
        "status" => hits.sort_by_key(|h| match h {
            Hit::Ticket(t) => Some(t.status),
            Hit::User(_) => None,
        }),
        _ => hits.sort_by(|a, b| a.updated_at().cmp(b.updated_at())),
    }
    if sort_order != Some("asc") {
        hits.reverse();
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_client_queries() {
        let q = parse_query("type:ticket requester_id:1001 status<solved").unwrap();
        assert_eq!(q.kind.as_deref(), Some("ticket"));
        assert_eq!(
            q.terms[1],
            Term { field: Some("status".into()), op: Op::Lt, value: "solved".into() }
        );
        let q = parse_query("type:user phone:*98765432").unwrap();
        assert_eq!(q.terms[0].value, "*98765432");
        assert_eq!(parse_query("type:group x"), Err(QueryError::UnsupportedType("group".into())));
        assert_eq!(parse_query("  "), Err(QueryError::Empty));
        assert_eq!(parse_query(&"a ".repeat(20)), Err(QueryError::TooManyTerms));
        assert_eq!(parse_query(&"a".repeat(2000)), Err(QueryError::TooLong));
    }

    #[test]
    fn phone_matching_is_on_digits_with_wildcards() {
        assert!(phone_matches(Some("+47 987 65 432"), "4798765432"));
        assert!(!phone_matches(Some("987 65 432"), "4798765432"));
        assert!(phone_matches(Some("987 65 432"), "*98765432"));
        assert!(phone_matches(Some("(0047) 98765432"), "*98765432"));
        assert!(phone_matches(Some("+4798765432"), "4798*"));
        assert!(!phone_matches(Some("+4798765432"), "*12345"));
        assert!(!phone_matches(None, "*1"));
        assert!(!phone_matches(Some("+47"), "*"));
    }

    #[test]
    fn unsolved_tickets_sorted_by_update() {
        let data = SimData::sample();
        let q = parse_query("type:ticket requester_id:1001 status<solved").unwrap();
        let hits = search(&data, &q, Some("updated_at"), Some("desc"));
        let ids: Vec<u64> = hits.iter().map(Hit::id).collect();
        assert_eq!(ids, vec![102, 101]);
        let asc = search(&data, &q, Some("updated_at"), Some("asc"));
        assert_eq!(asc.iter().map(Hit::id).collect::<Vec<_>>(), vec![101, 102]);
        let urgent = parse_query("type:ticket priority>=high").unwrap();
        assert_eq!(search(&data, &urgent, None, None).len(), 2);
    }
}
