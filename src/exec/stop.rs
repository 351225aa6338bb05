//! The operator's stop request as the engine sees it: one [`Stop`] (a cancellation
//! token and who asked), requested by the first SIGINT or SIGTERM or by a stop request
//! in the store (`abort`, a purge). [`Signals`] only listens: what a signal means (the
//! first stops, the next exits at once) is decided by the session that drives the run.
//! Installs signal handlers.

use std::sync::{Arc, OnceLock};

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

/// The stop request: set once, by the first to ask.
#[derive(Clone, Default)]
pub struct Stop {
    token: CancellationToken,
    by: Arc<OnceLock<String>>,
}

impl Stop {
    pub fn new() -> Stop {
        Stop::default()
    }

    /// Ask to stop, as `by` (`SIGINT`, `abort by ann@bastion`). Whether this was the
    /// first request (a later one changes nothing).
    pub fn request(&self, by: &str) -> bool {
        let first = self.by.set(by.to_string()).is_ok();
        self.token.cancel();
        first
    }

    pub fn requested(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Who asked first, once someone has.
    pub fn by(&self) -> Option<String> {
        self.by.get().cloned()
    }

    /// Resolves once a stop is requested.
    pub async fn wait(&self) {
        self.token.cancelled().await
    }
}

/// SIGINT and SIGTERM (what service managers and CI runners send), as they come.
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Listen from now on (inside the runtime). From then on these signals no longer
    /// end the process by themselves.
    pub fn listen() -> std::io::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    /// The next signal's name.
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            Some(()) = self.int.recv() => "SIGINT",
            Some(()) = self.term.recv() => "SIGTERM",
            else => std::future::pending().await,
        }
    }
}
