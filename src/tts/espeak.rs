//! espeak-ng as a process: `espeak-ng --stdout --stdin -b 1 -v VOICE`, the text on stdin.
//!
//! No `-m`: markup is not interpreted, so `<speak>` or `<audio src=...>` in a ticket subject
//! is read out as words. The text never appears in the arguments, so nothing in it can act
//! as an option. The process is killed when it runs past its time bound, writes more than
//! [`MAX_WAV_BYTES`], or its render is dropped (`kill_on_drop`).

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::{MAX_WAV_BYTES, Synthesizer, TtsError};

/// The most of espeak-ng's error output kept for the error message.
const MAX_STDERR_BYTES: usize = 2048;

/// espeak-ng, run once per sentence.
#[derive(Debug, Clone)]
pub struct EspeakSynthesizer {
    program: PathBuf,
    limit: Duration,
}

impl EspeakSynthesizer {
    /// `program` is the espeak-ng executable; `limit` bounds each run.
    pub fn new(program: impl Into<PathBuf>, limit: Duration) -> Self {
        EspeakSynthesizer { program: program.into(), limit }
    }

    async fn run(&self, text: &str, voice: &str) -> Result<Vec<u8>, TtsError> {
        let mut child = Command::new(&self.program)
            .args(["--stdout", "--stdin", "-b", "1", "-v", voice])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|err| {
                TtsError::Engine(format!("cannot run {}: {err}", self.program.display()))
            })?;
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(TtsError::Engine("espeak-ng pipes are missing".into()));
        };
        // Error output is drained by its own task, so a chatty process cannot block on it.
        let errors = tokio::spawn(drain_keeping(stderr, MAX_STDERR_BYTES));
        let write = async move {
            // A process that exits early closes the pipe; its exit status tells why.
            let _ = stdin.write_all(text.as_bytes()).await;
            let _ = stdin.shutdown().await;
        };
        let ((), wav) = tokio::join!(write, read_bounded(stdout, MAX_WAV_BYTES));
        let wav =
            wav.map_err(|err| TtsError::Engine(format!("reading espeak-ng output: {err}")))?;
        if wav.len() > MAX_WAV_BYTES {
            let _ = child.kill().await;
            return Err(TtsError::OutputTooLarge { max: MAX_WAV_BYTES });
        }
        let status = child
            .wait()
            .await
            .map_err(|err| TtsError::Engine(format!("waiting for espeak-ng: {err}")))?;
        if !status.success() || wav.is_empty() {
            let errors = errors.await.unwrap_or_default();
            let message = String::from_utf8_lossy(&errors);
            return Err(TtsError::Engine(format!(
                "espeak-ng -v {voice} failed ({status}): {}",
                message.trim()
            )));
        }
        Ok(wav)
    }
}

/// Reads at most `max + 1` bytes, so that a result longer than `max` means "too much".
async fn read_bounded(reader: impl AsyncRead + Unpin, max: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    reader.take(max as u64 + 1).read_to_end(&mut out).await?;
    Ok(out)
}

/// Reads to the end, keeping the first `keep` bytes.
async fn drain_keeping(mut reader: impl AsyncRead + Unpin, keep: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n @ 1..) = reader.read(&mut buf).await {
        let room = keep.saturating_sub(kept.len()).min(n);
        kept.extend_from_slice(&buf[..room]);
    }
    kept
}

impl Synthesizer for EspeakSynthesizer {
    async fn synthesize(&self, text: &str, voice: &str) -> Result<Vec<u8>, TtsError> {
        tokio::time::timeout(self.limit, self.run(text, voice))
            .await
            .unwrap_or(Err(TtsError::Timeout(self.limit)))
    }

    fn backend(&self) -> &str {
        "espeak-ng"
    }
}
