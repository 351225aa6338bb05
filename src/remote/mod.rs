//! The on-host side: every remote command line and script, built and quoted in one place.
//! Pure text building and parsing; the transport carries the commands out.

pub mod quote;

use std::time::Duration;

/// One command for one host.
pub struct RemoteCommand {
    pub line: String,
    pub stdin: Option<Vec<u8>>,
    pub timeout: Duration,
    pub what: &'static str,
}
