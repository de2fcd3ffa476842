//! The `endpoint` label of `zendesk_requests_total`: a request's method and path with
//! ids taken out, from a fixed list, so the label set stays small whatever a `next_page`
//! link from Zendesk says.

use reqwest::Method;

/// The API paths the client calls, with `{id}` for a numeric segment.
const KNOWN: &[(&str, &str, &str)] = &[
    ("GET", "/api/v2/search.json", "search"),
    ("GET", "/api/v2/tickets.json", "tickets_by_external_id"),
    ("POST", "/api/v2/tickets.json", "ticket_create"),
    ("PUT", "/api/v2/tickets/{id}.json", "ticket_update"),
    ("GET", "/api/v2/tickets/{id}/comments.json", "ticket_comments"),
    ("GET", "/api/v2/users/me.json", "users_me"),
];

/// The label for a request to `path` (no query string), or `other`.
pub fn endpoint_label(method: &Method, path: &str) -> &'static str {
    let template: Vec<&str> = path
        .split('/')
        .map(|segment| {
            let (stem, ext) = segment.split_once('.').unwrap_or((segment, ""));
            match (!stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()), ext) {
                (true, "json") => "{id}.json",
                (true, _) => "{id}",
                (false, _) => segment,
            }
        })
        .collect();
    let template = template.join("/");
    KNOWN
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && *p == template)
        .map(|(_, _, label)| *label)
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_taken_out_and_unknown_paths_are_other() {
        assert_eq!(endpoint_label(&Method::PUT, "/api/v2/tickets/101.json"), "ticket_update");
        assert_eq!(
            endpoint_label(&Method::GET, "/api/v2/tickets/7/comments.json"),
            "ticket_comments"
        );
        assert_eq!(endpoint_label(&Method::GET, "/api/v2/search.json"), "search");
        assert_eq!(endpoint_label(&Method::POST, "/api/v2/tickets.json"), "ticket_create");
        assert_eq!(endpoint_label(&Method::GET, "/api/v2/anything/else.json"), "other");
        assert_eq!(endpoint_label(&Method::DELETE, "/api/v2/tickets/1.json"), "other");
    }
}
