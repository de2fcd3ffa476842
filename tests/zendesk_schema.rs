//! The simulator speaks Zendesk's shapes: its responses are checked against the schemas of
//! Zendesk's OpenAPI description (`../shared/zendesk/oas.yaml`, or `$ZENDESK_IVR_SHARED`),
//! leniently: field names and types, enum values, and the presence of the fields the client
//! reads.

use std::path::PathBuf;

use serde_json::Value;
use serde_yaml::Value as Yaml;
use zendesk_ivr::zendesk::sim::{self, SimState};

fn shared_dir() -> PathBuf {
    std::env::var_os("ZENDESK_IVR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

struct Spec {
    schemas: Yaml,
}

impl Spec {
    fn load() -> Spec {
        let path = shared_dir().join("zendesk/oas.yaml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let doc: Yaml = serde_yaml::from_str(&text).unwrap();
        Spec { schemas: doc["components"]["schemas"].clone() }
    }

    fn schema(&self, name: &str) -> &Yaml {
        let schema = &self.schemas[name];
        assert!(schema.is_mapping(), "schema {name} not in the spec");
        schema
    }

    /// Checks every field of `value` that the schema describes; returns the problems.
    fn check(&self, schema_name: &str, value: &Value, problems: &mut Vec<String>) {
        let schema = self.schema(schema_name);
        let Some(object) = value.as_object() else {
            problems.push(format!("{schema_name}: not an object: {value}"));
            return;
        };
        for required in schema["required"].as_sequence().into_iter().flatten() {
            let name = required.as_str().unwrap_or_default();
            if !object.contains_key(name) {
                problems.push(format!("{schema_name}: required field {name} missing"));
            }
        }
        let Some(properties) = schema["properties"].as_mapping() else { return };
        for (field, field_value) in object {
            let Some(property) = properties.get(Yaml::from(field.as_str())) else { continue };
            check_property(&format!("{schema_name}.{field}"), property, field_value, problems);
        }
    }
}

fn check_property(path: &str, property: &Yaml, value: &Value, problems: &mut Vec<String>) {
    if value.is_null() {
        // Zendesk sends null for many fields the spec does not mark nullable (priority).
        return;
    }
    let wanted = property["type"].as_str().unwrap_or("");
    let ok = match wanted {
        "string" => value.is_string(),
        "integer" => value.is_u64() || value.is_i64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    };
    if !ok {
        problems.push(format!("{path}: expected {wanted}, got {value}"));
    }
    if let (Some(options), Some(text)) = (property["enum"].as_sequence(), value.as_str())
        && !options.iter().any(|o| o.as_str() == Some(text))
    {
        problems.push(format!("{path}: {text:?} is not one of {options:?}"));
    }
    if let (Some(items), Some(array)) = (property.get("items"), value.as_array()) {
        for item in array {
            check_property(&format!("{path}[]"), items, item, problems);
        }
    }
}

fn assert_fields(what: &str, value: &Value, fields: &[&str]) {
    for field in fields {
        assert!(value.get(*field).is_some(), "{what} lacks {field}: {value}");
    }
}

async fn get(base: &str, path: &str) -> Value {
    let response = reqwest::get(format!("{base}{path}")).await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

#[tokio::test]
async fn simulator_responses_match_the_zendesk_schemas() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let spec = Spec::load();
    let state = SimState::sample();
    let (addr, _task) = sim::spawn("127.0.0.1:0".parse().unwrap(), state).await.unwrap();
    let base = format!("http://{addr}");
    let mut problems = Vec::new();

    // The field names the client reads exist in the spec.
    for field in
        ["id", "name", "phone", "email", "locale", "role", "shared_phone_number", "updated_at"]
    {
        assert!(spec.schema("UserForEndUser")["properties"][field].is_mapping(), "user {field}");
    }
    for field in ["id", "subject", "status", "priority", "requester_id", "updated_at", "tags"] {
        assert!(spec.schema("TicketObject")["properties"][field].is_mapping(), "ticket {field}");
    }

    let users = get(&base, "/api/v2/search.json?query=type:user%20phone:*4741234567").await;
    spec.check("SearchResponse", &users, &mut problems);
    assert_fields("search", &users, &["results", "count", "next_page"]);
    let results = users["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    for user in results {
        spec.check("UserForAdmin", user, &mut problems);
        spec.check("UserForEndUser", user, &mut problems);
        spec.check("SearchResultObject", user, &mut problems);
        assert_fields(
            "user",
            user,
            &[
                "id",
                "name",
                "phone",
                "email",
                "locale",
                "role",
                "shared_phone_number",
                "updated_at",
            ],
        );
        assert!(["end-user", "agent", "admin"].contains(&user["role"].as_str().unwrap()));
    }

    let tickets = get(
        &base,
        "/api/v2/search?query=type:ticket%20priority%3E=low&sort_by=updated_at&sort_order=desc",
    )
    .await;
    spec.check("SearchResponse", &tickets, &mut problems);
    let results = tickets["results"].as_array().unwrap();
    assert!(results.len() >= 5);
    for ticket in results {
        spec.check("TicketObject", ticket, &mut problems);
        spec.check("SearchResultObject", ticket, &mut problems);
        assert_fields(
            "ticket",
            ticket,
            &["id", "subject", "status", "priority", "requester_id", "updated_at", "tags"],
        );
    }
    // A ticket with no priority: null, as Zendesk sends it.
    let shown = get(&base, "/api/v2/tickets/109.json").await;
    spec.check("TicketResponse", &shown, &mut problems);
    spec.check("TicketObject", &shown["ticket"], &mut problems);
    assert!(shown["ticket"]["priority"].is_null());

    let comments = get(&base, "/api/v2/tickets/102/comments.json").await;
    spec.check("TicketCommentsResponse", &comments, &mut problems);
    for comment in comments["comments"].as_array().unwrap() {
        spec.check("TicketCommentObject", comment, &mut problems);
        assert_fields("comment", comment, &["id", "body", "public", "author_id", "created_at"]);
    }

    let user = get(&base, "/api/v2/users/1001").await;
    spec.check("UserResponse", &user, &mut problems);
    spec.check("UserForAdmin", &user["user"], &mut problems);

    let me = get(&base, "/api/v2/users/me.json").await;
    spec.check("CurrentUserResponse", &me, &mut problems);
    spec.check("UserForAdmin", &me["user"], &mut problems);
    assert!(me["user"]["id"].is_u64(), "an authenticated user has an id");

    // Opening a ticket with an external id, then listing tickets by it.
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{base}/api/v2/tickets.json"))
        .json(&serde_json::json!({ "ticket": {
            "subject": "Phone call",
            "comment": { "body": "[call-id: schema-1]", "public": false },
            "requester_id": 1001,
            "external_id": "[call-id: schema-1]",
        }}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    spec.check("TicketResponse", &created, &mut problems);
    assert_eq!(created["ticket"]["external_id"], "[call-id: schema-1]");
    let listed = get(&base, "/api/v2/tickets.json?external_id=%5Bcall-id%3A%20schema-1%5D").await;
    spec.check("TicketsResponse", &listed, &mut problems);
    let tickets = listed["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 1, "only the ticket with that external id");
    spec.check("TicketObject", &tickets[0], &mut problems);
    assert_eq!(tickets[0]["id"], created["ticket"]["id"]);

    // Both error shapes match the spec's Errors schema or the documented single-error shape.
    let missing = reqwest::get(format!("{base}/api/v2/tickets/424242.json")).await.unwrap();
    assert_eq!(missing.status(), 404);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "RecordNotFound");

    assert!(problems.is_empty(), "schema problems:\n{}", problems.join("\n"));
}
