//! `zendesk-ivr lookup` against the in-process simulator, the simulator's admin endpoints,
//! and its set-up from options (seed file, latency, faults).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use zendesk_ivr::zendesk::sim::{
    self, Endpoint, FaultKind, SimAuth, SimData, SimOptions, SimState,
};

async fn start(state: SimState) -> String {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (addr, _task) = sim::spawn("127.0.0.1:0".parse().unwrap(), state).await.unwrap();
    format!("http://{addr}")
}

fn lookup(base: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_zendesk-ivr"))
        .arg("lookup")
        .args(args)
        .env("ZENDESK_IVR_ZENDESK__URL", base)
        .env("ZENDESK_IVR_SIP__DEFAULT_REGION", "NO")
        .env("ZENDESK_IVR_LOG", "error")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_prints_the_user_and_ticket() {
    let base = start(SimState::sample()).await;
    let out = tokio::task::spawn_blocking({
        let base = base.clone();
        move || lookup(&base, &["98765432", "--json"])
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["number"]["e164"], "+4798765432");
    assert_eq!(report["outcome"]["outcome"], "found");
    assert_eq!(report["outcome"]["user"]["id"], 1001);
    assert_eq!(report["outcome"]["ticket"]["id"], 102);
    assert_eq!(report["outcome"]["ticket"]["priority"], "urgent");
    assert_eq!(
        report["route"]["reason"]["kind"], "priority_ticket",
        "urgent tickets jump the queue"
    );
    assert_eq!(report["route"]["queue"], "priority");
    assert_eq!(report["route"]["targets"][0], "sip:priority@127.0.0.1:5070");

    let text =
        tokio::task::spawn_blocking(move || lookup(&base, &["+44 20 7946 0018"])).await.unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("Acme Reception"), "{text}");
    assert!(text.contains("not greeted by name"), "{text}");
    assert!(
        text.contains("says:     Your ticket 1 0 6, about Meeting room phone broken, is on hold."),
        "{text}"
    );
    assert!(text.contains("route:    default queue → sip:support@127.0.0.1:5070"), "{text}");
}

/// `lookup` prints, for every sample customer, the exact sentence the caller would hear,
/// in their language, and the queue a key press for an agent would go to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_says_the_sentence_each_sample_customer_hears() {
    let base = start(SimState::sample()).await;
    let cases = [
        (
            "98765432",
            "nb",
            "Hei Kari. Saken din 1 0 2, om Internett er helt nede, er under behandling.",
            "priority",
        ),
        (
            "987 65 433",
            "nb",
            "Hei Ola. Saken din 1 0 4, om Treg forbindelse, er under behandling.",
            "default",
        ),
        (
            "+12025550143",
            "en",
            "Hello Jane. Your ticket 1 0 5, about Refund for double charge, is received.",
            "priority",
        ),
        (
            "+442079460018",
            "en",
            "Your ticket 1 0 6, about Meeting room phone broken, is on hold.",
            "default",
        ),
        // German and Italian have no prompts: the default language; no unsolved ticket.
        ("+493012345678", "en", "Hello Max. You have no open tickets with us.", "default"),
        ("+390212345678", "en", "Hello Sofia. You have no open tickets with us.", "default"),
        (
            "+33142685300",
            "en",
            "Hello Camille. Your ticket 1 0 9, about Question sur ma facture, is waiting for your reply.",
            "default",
        ),
        (
            "+4722222222",
            "en",
            "We could not find an account for the number you are calling from.",
            "default",
        ),
        (
            "not a number",
            "en",
            "Your number is hidden, so we cannot look up your tickets.",
            "default",
        ),
    ];
    for (number, lang, sentence, queue) in cases {
        let out = tokio::task::spawn_blocking({
            let base = base.clone();
            move || lookup(&base, &[number, "--json"])
        })
        .await
        .unwrap();
        assert!(out.status.success(), "{number}: {}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["sentence"]["lang"], lang, "{number}");
        assert_eq!(report["sentence"]["text"], sentence, "{number}");
        assert_eq!(report["route"]["queue"], queue, "{number}");
    }
}

#[tokio::test]
async fn faults_can_be_set_and_cleared_over_http() {
    let state = SimState::sample();
    let base = start(state.clone()).await;
    let http = reqwest::Client::new();
    let added: Value = http
        .post(format!("{base}/__sim/faults"))
        .body(r#"{"faults":["search:500@1", {"endpoint":"comments","kind":"latency","ms":5}]}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(added["faults"].as_array().unwrap().len(), 2);
    let search = format!("{base}/api/v2/search?query=type:user%20phone:4798765432");
    assert_eq!(http.get(&search).send().await.unwrap().status(), 500);
    assert_eq!(http.get(&search).send().await.unwrap().status(), 200);
    let bad = http.post(format!("{base}/__sim/faults")).body(r#"{"faults":["x:y"]}"#).send();
    assert_eq!(bad.await.unwrap().status(), 400);
    http.delete(format!("{base}/__sim/faults")).send().await.unwrap();
    assert!(state.faults().is_empty());
    let log: Value =
        http.get(format!("{base}/__sim/requests")).send().await.unwrap().json().await.unwrap();
    assert_eq!(log["requests"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn options_seed_data_latency_and_faults() {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        r#"{"users":[{"id":7,"name":"Test Person","phone":"+4790000001","locale":"nb"}]}"#,
    )
    .unwrap();
    let options = SimOptions {
        data: Some(file.path().to_path_buf()),
        latency_ms: Some(100),
        faults: vec!["tickets:429:3@2".into()],
        email: Some("a@b.c".into()),
        token: Some("tok".into()),
    };
    let state = options.build().unwrap();
    assert_eq!(state.data().users.len(), 1);
    let faults = state.faults();
    assert_eq!(faults[0].kind, FaultKind::Latency { ms: 100 });
    assert_eq!(faults[1].endpoint, Endpoint::Tickets);
    let base = start(state).await;
    let started = Instant::now();
    let response = reqwest::get(format!("{base}/api/v2/users/7.json")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(100));
    // The latency applies, then the auth check refuses the anonymous request.
    assert_eq!(response.status(), 401);
    let bad = SimOptions { faults: vec!["search:teapot".into()], ..SimOptions::default() };
    assert!(bad.build().is_err());
}

/// `zendesk-ivr check` with `env` on top of a config for the simulator at `base`.
fn check(base: &str, dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zendesk-ivr"));
    command
        .arg("check")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("ZENDESK_IVR_ZENDESK__URL", base)
        .env("ZENDESK_IVR_ZENDESK__EMAIL", "ivr@example.com")
        .env("ZENDESK_IVR_OUTBOX__PATH", dir.join("outbox.sqlite"))
        .env("ZENDESK_IVR_LOG", "error");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_audio_outbox_and_credentials_and_fails_on_any() {
    let auth = SimAuth { email: "ivr@example.com".into(), token: "right-token".into() };
    let base = start(SimState::new(SimData::sample(), Some(auth))).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |env: Vec<(&'static str, &'static str)>| {
        let (base, dir) = (base.clone(), dir.path().to_path_buf());
        tokio::task::spawn_blocking(move || check(&base, &dir, &env))
    };

    let good = run(vec![("ZENDESK_IVR_ZENDESK__API_TOKEN", "right-token")]).await.unwrap();
    let text = String::from_utf8_lossy(&good.stdout).into_owned();
    assert!(good.status.success(), "{text}\n{}", String::from_utf8_lossy(&good.stderr));
    for line in ["ok   media.welcome_prompt:", "ok   media.hold_music:", "ok   outbox.path:"] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    assert!(text.contains("ok   zendesk credentials: accepted"), "{text}");
    assert!(text.contains("not created yet"), "{text}");
    assert!(!dir.path().join("outbox.sqlite").exists(), "check creates no database");
    assert!(text.contains("Hz)"), "the audio's length and rate: {text}");

    // An existing outbox is opened and counted.
    drop(zendesk_ivr::outbox::Outbox::open(dir.path().join("outbox.sqlite")).unwrap());
    let counted = run(vec![("ZENDESK_IVR_ZENDESK__API_TOKEN", "right-token")]).await.unwrap();
    let text = String::from_utf8_lossy(&counted.stdout).into_owned();
    assert!(text.contains("0 pending, 0 dead letters"), "{text}");

    let refused = run(vec![("ZENDESK_IVR_ZENDESK__API_TOKEN", "wrong-token")]).await.unwrap();
    let text = String::from_utf8_lossy(&refused.stdout).into_owned();
    assert!(!refused.status.success());
    assert!(text.contains("FAIL zendesk credentials:"), "{text}");
    assert!(!text.contains("wrong-token"), "the token is never printed: {text}");

    let no_audio = run(vec![
        ("ZENDESK_IVR_ZENDESK__API_TOKEN", "right-token"),
        ("ZENDESK_IVR_MEDIA__HOLD_MUSIC", "/nonexistent/hold.wav"),
    ])
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&no_audio.stdout).into_owned();
    assert!(!no_audio.status.success());
    assert!(text.contains("FAIL media.hold_music: /nonexistent/hold.wav"), "{text}");
}

/// A sentence template with a placeholder its sentence does not have (the Webex
/// template's `{{ticketId}}` bug) stops `check` and `run`, naming the key.
#[test]
fn check_refuses_an_unknown_placeholder_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ivr.toml");
    std::fs::write(
        &config,
        "[ivr.prompts.en]\nstatus_ticket = \"Your ticket {{ticketId}} is {status}.\"\n",
    )
    .unwrap();
    for command in ["check", "run"] {
        let out = Command::new(env!("CARGO_BIN_EXE_zendesk-ivr"))
            .args([command, "--config"])
            .arg(&config)
            .env("ZENDESK_IVR_LOG", "error")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command}: {text}");
        assert!(text.contains("ivr.prompts.en.status_ticket"), "{command}: {text}");
        assert!(text.contains("ticketId"), "{command}: {text}");
    }
}

/// A configuration file that holds the token and that every user can read: `check` warns,
/// naming the file and the key but not the token, and still passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_warns_about_a_secret_every_user_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let auth = SimAuth { email: "ivr@example.com".into(), token: "file-token-77".into() };
    let base = start(SimState::new(SimData::sample(), Some(auth))).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ivr.toml");
    std::fs::write(&config, "[zendesk]\napi_token = \"file-token-77\"\n").unwrap();
    let run = |mode: u32| {
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(mode)).unwrap();
        let config = config.clone();
        let env = [("ZENDESK_IVR_LOG", "error")];
        let (base, dir) = (base.clone(), dir.path().to_path_buf());
        tokio::task::spawn_blocking(move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_zendesk-ivr"));
            command
                .args(["check", "--config"])
                .arg(&config)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .env("ZENDESK_IVR_ZENDESK__URL", &base)
                .env("ZENDESK_IVR_ZENDESK__EMAIL", "ivr@example.com")
                .env("ZENDESK_IVR_OUTBOX__PATH", dir.join("outbox.sqlite"))
                .envs(env);
            command.output().unwrap()
        })
    };
    let open = run(0o644).await.unwrap();
    let text = String::from_utf8_lossy(&open.stdout).into_owned();
    assert!(open.status.success(), "a warning does not fail the check: {text}");
    let warning = format!("WARN secrets: {} holds zendesk.api_token", config.display());
    assert!(text.contains(&warning), "{warning} in:\n{text}");
    assert!(text.contains("mode 644"), "{text}");
    assert!(!text.contains("file-token-77"), "the token is never printed: {text}");
    let private = run(0o600).await.unwrap();
    let text = String::from_utf8_lossy(&private.stdout).into_owned();
    assert!(private.status.success() && !text.contains("WARN"), "{text}");
}
