//! The preflight of an apply, before any change: does each target answer? An SSH banner
//! for every target (a TCP connect and one line read: cheap, bounded fan-out), then a
//! login for the first wave's hosts (`cmd::apply` decides which, and what an answer
//! means for the run), kept in the transport for the run's first actions there (so the
//! preflight costs those hosts no login of its own). Talks to hosts; changes nothing on
//! them and writes nothing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use tokio::sync::Semaphore;

use crate::inventory::Host;
use crate::transport::banner::{self, BannerError};
use crate::transport::{Transport, TransportError};

/// Targets checked at once.
pub const FANOUT: usize = 32;

/// How to check a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Its SSH banner (a login where a proxy stands between).
    Banner,
    /// A login (key exchange and authentication, `sudo -n` on a `become` host).
    Login,
}

/// What a target said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// It answered (the banner line, or "login").
    Answered(String),
    /// It did not answer: offline before the run.
    Offline(String),
    /// It answered and refused us for a reason of ours (host key, credentials, sudo).
    Refused { reason: String, help: String },
}

/// Check every host as `how` says, at most [`FANOUT`] at once, each within `deadline`
/// from when its check is under way. In the order given.
pub async fn check(
    transport: &Transport,
    ssh_config: Option<&Path>,
    hosts: &[Host],
    how: Check,
    deadline: Duration,
) -> Vec<(String, Answer)> {
    let limit = Arc::new(Semaphore::new(FANOUT));
    let all = hosts.iter().map(|h| {
        let limit = limit.clone();
        async move {
            let _permit = limit.acquire().await;
            let answer = match how {
                Check::Banner => banner_of(transport, ssh_config, h, deadline).await,
                Check::Login => login(transport, h, deadline).await,
            };
            (h.name.clone(), answer)
        }
    });
    join_all(all).await
}

async fn banner_of(
    transport: &Transport,
    ssh_config: Option<&Path>,
    host: &Host,
    deadline: Duration,
) -> Answer {
    match banner::resolve(host, ssh_config).await {
        Ok((addr, port)) => match banner::read(&addr, port, deadline).await {
            Ok(line) => Answer::Answered(line),
            Err(e) => Answer::Offline(e.to_string()),
        },
        // Only a login can tell (a proxy between, or no address to read a banner from).
        Err(BannerError::Indirect(_)) => login(transport, host, deadline).await,
        Err(e @ BannerError::NoBanner(_)) => Answer::Offline(e.to_string()),
    }
}

/// A login; one that missed its deadline is tried once more (a miss can be the
/// handshake's, on a busy controller) and only a second miss makes the host offline.
async fn login(transport: &Transport, host: &Host, deadline: Duration) -> Answer {
    let mut missed: Option<String> = None;
    loop {
        return match transport.connect(host, deadline).await {
            Ok(conn) => {
                // Kept: the run's first action on the host rides it.
                transport.keep(conn).await;
                Answer::Answered("login".into())
            }
            Err(TransportError::Refused { message, help, .. }) => Answer::Refused {
                reason: message,
                help,
            },
            Err(e) if e.is_deadline() && missed.is_none() => {
                missed = Some(e.to_string());
                continue;
            }
            Err(e) => Answer::Offline(match missed {
                Some(first) => format!("{e} (and before that: {first})"),
                None => e.to_string(),
            }),
        };
    }
}
