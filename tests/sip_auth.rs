//! Digest authentication against real peers, with the real binary (its log is where the
//! security events go): inbound INVITEs challenged by `[sip.auth]` and answered by a SIPp
//! caller, and a `[[sip.register]]` registration to a SIPp registrar that challenges,
//! with a refresh and the un-REGISTER on SIGTERM.

mod common;

use std::time::Duration;

use common::kamailio::Kamailio;
use common::sipp_agent::SippAgent;
use common::{free_sip_port, output_lines, sipp, test_config, wait_for_line};

/// The password the endpoint reads from its environment (never from the config file).
const USER_PASSWORD: &str = "alice-s3cret-pw";
const TRUNK_PASSWORD: &str = "trunk-secret";

/// The endpoint binary on a free port, with `extra` TOML after a loopback test config.
struct Endpoint {
    child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    log: Vec<String>,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Endpoint {
    async fn start(extra: &str) -> Endpoint {
        let dir = tempfile::tempdir().expect("temp dir");
        let base = test_config();
        let port = free_sip_port();
        let toml = format!(
            "[sip]\nlisten = \"127.0.0.1:{port}\"\ndefault_region = \"NO\"\nmax_calls = 10\n\
             [media]\nrtp_ports = \"{}\"\nwelcome_prompt = \"\"\n\
             [zendesk]\nenabled = false\n\
             [admin]\nlisten = \"127.0.0.1:{admin}\"\n\
             [routing]\nprobe_interval_s = 0\n\
             [tts]\ncache_dir = \"{}\"\n{extra}",
            base.media.rtp_ports,
            base.tts.cache_dir.clone().unwrap_or_default().display(),
            admin = free_sip_port(),
        );
        let config = dir.path().join("zendesk-ivr.toml");
        std::fs::write(&config, toml).expect("config written");
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_zendesk-ivr"))
            .args(["run", "--drain", "1s", "--config"])
            .arg(&config)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("IVR_TEST_USER_PASSWORD", USER_PASSWORD)
            .env("IVR_TEST_TRUNK_PASSWORD", TRUNK_PASSWORD)
            .env("ZENDESK_IVR_LOG", "info")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("zendesk-ivr runs");
        let lines = output_lines(&mut child);
        let mut endpoint = Endpoint { child, lines, log: Vec::new(), port, _dir: dir };
        endpoint.wait_for("SIP endpoint listening").await;
        endpoint
    }

    async fn wait_for(&mut self, needle: &str) -> String {
        let within = Duration::from_secs(20);
        wait_for_line(&mut self.lines, &mut self.log, "zendesk-ivr", needle, within).await
    }

    fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// SIGTERM, then the exit status, with every line it printed.
    async fn terminate(mut self) -> Vec<String> {
        let pid = self.child.id().expect("pid") as i32;
        // SAFETY: signalling our own child process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("the endpoint exits after SIGTERM")
            .expect("exit status");
        assert!(status.success(), "{status:?}");
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_millis(200), self.lines.recv()).await
        {
            self.log.push(line);
        }
        self.log
    }
}

/// MD5 is offered first here because SIPp 3.6 answers only MD5 and reads only the first
/// challenge (the default order, SHA-256 first, is RFC 8760's preference; SHA-256 is
/// checked in the unit tests of `sip::digest` and `sip::registration`).
const AUTH_CONFIG: &str = "[sip.auth]\nenabled = true\nrealm = \"ivr.test\"\n\
    algorithms = [\"MD5\", \"SHA-256\"]\n\
    [[sip.auth.users]]\nname = \"alice\"\npassword_env = \"IVR_TEST_USER_PASSWORD\"\n";

#[tokio::test(flavor = "multi_thread")]
async fn an_authenticated_caller_completes_a_call_and_a_wrong_password_is_challenged_again() {
    let mut endpoint = Endpoint::start(AUTH_CONFIG).await;
    // SIPp hashes `sip:<remote ip>:<port>` unless told the Request-URI, which the endpoint
    // requires the digest `uri` to equal.
    let uri = format!("service@{}", endpoint.addr());
    let good = ["-au", "alice", "-ap", USER_PASSWORD, "-auth_uri", &uri];
    let run = sipp("uac_auth.xml", endpoint.addr(), "u1", &good).await;
    run.assert_ok();
    assert_eq!(run.count_received("SIP/2.0 401", "algorithm=SHA-256"), 1, "SHA-256 offered");
    assert_eq!(run.count_received("SIP/2.0 401", "algorithm=MD5"), 1, "MD5 offered");
    assert_eq!(run.count_received("SIP/2.0 200", "m=audio"), 1, "the call was answered");

    let wrong = ["-au", "alice", "-ap", "not-the-password", "-auth_uri", &uri];
    let run = sipp("uac_auth_wrong.xml", endpoint.addr(), "u1", &wrong).await;
    run.assert_ok();
    assert_eq!(run.count_received("SIP/2.0 401", "WWW-Authenticate"), 2, "401, then 401 again");
    let line = endpoint.wait_for("SECURITY bad-auth").await;
    assert!(line.contains("src=127.0.0.1") && line.contains("user=alice"), "{line}");

    // An unknown user gets the same answer, and the same event.
    let unknown = ["-au", "mallory", "-ap", USER_PASSWORD, "-auth_uri", &uri];
    let run = sipp("uac_auth_wrong.xml", endpoint.addr(), "u1", &unknown).await;
    run.assert_ok();
    let line = endpoint.wait_for("SECURITY bad-auth").await;
    assert!(line.contains("user=mallory"), "{line}");

    let log = endpoint.terminate().await;
    assert!(!log.iter().any(|l| l.contains(USER_PASSWORD)), "the password was logged");
}

#[tokio::test(flavor = "multi_thread")]
async fn registers_through_a_challenge_refreshes_and_unregisters_on_sigterm() {
    let registrar = SippAgent::start("uas_register_auth.xml");
    let extra = format!(
        "[[sip.register]]\nname = \"lab-trunk\"\nregistrar = \"sip:{}\"\nuser = \"ivr\"\n\
         password_env = \"IVR_TEST_TRUNK_PASSWORD\"\nexpires_s = 5\n",
        registrar.sip
    );
    let mut endpoint = Endpoint::start(&extra).await;
    endpoint.wait_for("state=Registered").await;
    // Granted 2 s: the refresh comes a second later, and registers again.
    endpoint.wait_for("state=Registered").await;
    let log = endpoint.terminate().await;
    assert!(log.iter().any(|l| l.contains("state=Unregistered")), "{}", log.join("\n"));
    assert!(!log.iter().any(|l| l.contains(TRUNK_PASSWORD)), "the password was logged");
    let messages = registrar.assert_passed().await;
    assert!(messages.contains("Expires: 0"), "the un-REGISTER came:\n{messages}");
}

/// Kamailio's registrar offers SHA-256 only: registering proves our SHA-256 answer verifies
/// in another implementation.
#[tokio::test(flavor = "multi_thread")]
async fn registers_with_kamailio_using_sha256_and_unregisters_on_sigterm() {
    let registrar = Kamailio::start_registrar().await;
    let extra = format!(
        "[[sip.register]]\nname = \"kamailio\"\nregistrar = \"sip:{}\"\nuser = \"ivr\"\n\
         password_env = \"IVR_TEST_TRUNK_PASSWORD\"\nexpires_s = 60\n",
        registrar.addr
    );
    let mut endpoint = Endpoint::start(&extra).await;
    endpoint.wait_for("state=Registered").await;
    // Kamailio grants at most 2 s: the refresh goes out a second later and succeeds.
    endpoint.wait_for("state=Registered").await;
    let log = endpoint.terminate().await;
    assert!(log.iter().any(|l| l.contains("state=Unregistered")), "{}", log.join("\n"));
    let failed =
        |l: &String| l.contains("registrar answered") || l.contains("un-REGISTER answered");
    assert!(!log.iter().any(failed), "{}", log.join("\n"));
    registrar.stop().await;
}
