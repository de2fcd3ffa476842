//! TTS against real engines: espeak-ng (installed by scripts/setup.sh; these tests fail
//! without it), an OpenAI-compatible HTTP engine played by a small axum server, and the
//! `say` and `check` subcommands through the binary.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use zendesk_ivr::media::prompt::{Limits, Pcm, decode_wav};
use zendesk_ivr::tts::{Engine, Tts, TtsConfig, TtsError, fake};

fn espeak_config() -> TtsConfig {
    let version = Command::new("espeak-ng").arg("--version").output();
    assert!(
        version.is_ok_and(|out| out.status.success()),
        "espeak-ng is needed for these tests: apt-get install espeak-ng (scripts/setup.sh)"
    );
    TtsConfig { cache_dir: None, timeout_ms: 5000, ..TtsConfig::default() }
}

fn rms(pcm: &Pcm) -> f64 {
    let sum: f64 = pcm.samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / pcm.samples.len().max(1) as f64).sqrt()
}

async fn speak(tts: &Tts, text: &str, lang: &str) -> Pcm {
    let wav = tts.render(text, lang).await.unwrap_or_else(|err| panic!("{lang}: {err}"));
    decode_wav(&wav, Limits::default()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn espeak_speaks_english_and_norwegian() {
    let tts = Tts::from_config(&espeak_config()).unwrap();
    for (text, lang) in [
        ("Your ticket about the broken printer is being worked on.", "en"),
        ("Saken din om den ødelagte skriveren er under arbeid.", "nb-NO"),
    ] {
        let pcm = speak(&tts, text, lang).await;
        assert_eq!(pcm.rate, 22_050, "{lang}");
        assert!(pcm.duration() > Duration::from_millis(500), "{lang}: {:?}", pcm.duration());
        assert!(rms(&pcm) > 0.02, "{lang}: voiced audio, rms {}", rms(&pcm));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn espeak_reads_shell_syntax_and_markup_literally() {
    let tts = Tts::from_config(&espeak_config()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let m = marker.display();
    let text = format!("$(touch {m}) `touch {m}`; touch {m} && echo | sh -c 'touch {m}'");
    speak(&tts, &text, "en").await;
    let pcm = speak(&tts, "--help -w /tmp/x.wav", "en").await;
    assert!(pcm.duration() > Duration::from_millis(500), "option-like text is spoken");
    assert!(!marker.exists(), "text reached a shell");

    // Markup is read out as words, not obeyed: "<speak>" makes the sentence longer.
    let plain = speak(&tts, "hello", "en").await.duration();
    let tagged = speak(&tts, "<speak>hello</speak>", "en").await.duration();
    assert!(tagged > plain + Duration::from_millis(500), "{plain:?} vs {tagged:?}");
    let break_tag = speak(&tts, "<speak>hi<break time=\"9s\"/></speak>", "en").await;
    assert!(break_tag.duration() < Duration::from_secs(8), "no 9 s SSML break");
}

#[derive(Clone, Default)]
struct Seen {
    bodies: Arc<Mutex<Vec<serde_json::Value>>>,
}

/// `/v1/audio/speech`, OpenAI-style: checks the key and the body, answers with a WAV.
async fn speech(State(seen): State<Seen>, headers: HeaderMap, body: String) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer sk-test-42") {
        return (StatusCode::UNAUTHORIZED, "bad key").into_response();
    }
    let Ok(json) = serde_json::from_str::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    seen.bodies.lock().unwrap().push(json.clone());
    match json["input"].as_str().unwrap_or_default() {
        "slow" => {
            tokio::time::sleep(Duration::from_secs(10)).await;
            StatusCode::OK.into_response()
        }
        "huge" => vec![0u8; zendesk_ivr::tts::MAX_WAV_BYTES + 1].into_response(),
        "error" => (StatusCode::INTERNAL_SERVER_ERROR, "engine\r\nbroke").into_response(),
        text => fake::tone_wav(Duration::from_millis(200 + 10 * text.len() as u64), false)
            .into_response(),
    }
}

async fn speech_server() -> (String, Seen) {
    let seen = Seen::default();
    let app = axum::Router::new()
        .route("/v1/audio/speech", axum::routing::post(speech))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_engine_sends_the_openai_request_with_its_key() {
    let (url, seen) = speech_server().await;
    let key_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key_file.path(), "sk-test-42\n").unwrap();
    let mut config = TtsConfig {
        engine: Engine::Http,
        cache_dir: None,
        timeout_ms: 300,
        voices: BTreeMap::from([("en".into(), "alloy".into())]),
        ..TtsConfig::default()
    };
    config.http.url = url;
    config.http.model = "tts-1-hd".into();
    config.http.api_key_file = Some(key_file.path().to_path_buf());
    config.validate().unwrap();
    let tts = Tts::from_config(&config).unwrap();
    assert!(!format!("{tts:?}").contains("sk-test-42"), "{tts:?}");

    let text = "Ticket \"42\" <b>urgent</b> \u{1F600}";
    let wav = tts.render(text, "en-GB").await.unwrap();
    assert!(decode_wav(&wav, Limits::default()).unwrap().duration() > Duration::from_millis(200));
    let body = seen.bodies.lock().unwrap().pop().unwrap();
    let expected = serde_json::json!({
        "model": "tts-1-hd", "voice": "alloy", "input": text, "response_format": "wav",
    });
    assert_eq!(body, expected);

    let started = Instant::now();
    assert!(matches!(tts.render("slow", "en").await, Err(TtsError::Timeout(_))));
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let huge = tts.render_unhurried("huge", "en").await;
    assert!(matches!(huge, Err(TtsError::OutputTooLarge { .. })), "{huge:?}");
    let failed = tts.render("error", "en").await.unwrap_err().to_string();
    assert!(failed.contains("500") && failed.contains("engine  broke"), "{failed}");

    config.http.api_key_file = None;
    config.http.api_key = Some("sk-wrong".into());
    let refused = Tts::from_config(&config).unwrap().render("hi", "en").await.unwrap_err();
    assert!(refused.to_string().contains("401"), "{refused}");
    assert!(!refused.to_string().contains("sk-wrong"), "{refused}");
}

fn binary(args: &[&str], dir: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_zendesk-ivr"));
    command.args(args).current_dir(dir).env("ZENDESK_IVR_LOG", "error");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().unwrap()
}

#[test]
fn say_writes_a_wav_and_uses_the_disk_cache_the_second_time() {
    espeak_config();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hei.wav");
    let args = ["say", "Hei, og velkommen.", "--lang", "nb", "--out", out.to_str().unwrap()];
    let cache = dir.path().join("cache");
    let env = [("ZENDESK_IVR_TTS__CACHE_DIR", cache.to_str().unwrap())];
    let first = binary(&args, dir.path(), &env);
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{text}{}", String::from_utf8_lossy(&first.stderr));
    assert!(text.contains("hei.wav") && text.contains("voice nb, rendered"), "{text}");
    let pcm = decode_wav(&std::fs::read(&out).unwrap(), Limits::default()).unwrap();
    assert!(pcm.duration() > Duration::from_millis(500) && rms(&pcm) > 0.02);

    let second = binary(&args, dir.path(), &env);
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(text.contains("from the disk cache"), "{text}");

    let unknown = binary(&["say", "Hallo", "--lang", "de"], dir.path(), &env);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("\"de\""));
    assert!(!dir.path().join("say.wav").exists());
}

#[test]
fn check_has_a_line_per_voice_and_writes_no_cache() {
    espeak_config();
    let dir = tempfile::tempdir().unwrap();
    let audio = Path::new(env!("CARGO_MANIFEST_DIR")).join("audio");
    let (welcome, hold) = (audio.join("welcome.wav"), audio.join("defaultmusic_on_hold.wav"));
    let env = [
        ("ZENDESK_IVR_ZENDESK__ENABLED", "false"),
        ("ZENDESK_IVR_MEDIA__WELCOME_PROMPT", welcome.to_str().unwrap()),
        ("ZENDESK_IVR_MEDIA__HOLD_MUSIC", hold.to_str().unwrap()),
        ("ZENDESK_IVR_TTS__VOICES__XX", "zz"),
    ];
    let out = binary(&["check"], dir.path(), &env);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ok   tts.voices.en: voice en-us by espeak-ng"), "{text}");
    assert!(text.contains("ok   tts.voices.nb: voice nb"), "{text}");
    assert!(text.contains("FAIL tts.voices.xx:"), "{text}");
    assert!(!out.status.success());
    assert!(!dir.path().join("tts-cache").exists(), "check writes no cache");
}
