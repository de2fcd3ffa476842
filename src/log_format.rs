//! The log output: human-readable text (the default) or one JSON object a line for
//! collectors (`--log-format json`). Both carry the same message text, so the security
//! event lines (`security_event`) read the same to `config/fail2ban/`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines: time, level, span, target, message.
    #[default]
    Text,
    /// One JSON object a line: timestamp, level, fields (message), target, span.
    Json,
}

/// The log filter: `$ZENDESK_IVR_LOG` (an `EnvFilter` directive), else `info`.
pub fn filter_from_env() -> EnvFilter {
    EnvFilter::try_from_env("ZENDESK_IVR_LOG").unwrap_or_else(|_| EnvFilter::new("info"))
}

/// A subscriber writing `format` lines to `writer`; `ansi` colours text (for a terminal).
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    match format {
        LogFormat::Text => Box::new(logs.with_ansi(ansi).finish()),
        LogFormat::Json => {
            Box::new(logs.json().with_current_span(true).with_span_list(false).finish())
        }
    }
}
