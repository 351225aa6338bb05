//! The operator's stop request: SIGINT and SIGTERM (what service managers and CI runners
//! send) both cancel one token, which the dispatcher sees at once, even mid-bake; a
//! second signal exits at once (the journal is already on disk). Installs signal handlers.

use std::sync::{Arc, OnceLock};

use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;

use crate::exit;

/// The stop request: the token, and which signal set it.
#[derive(Clone)]
pub struct Stop {
    pub token: CancellationToken,
    pub by: Arc<OnceLock<String>>,
}

impl Stop {
    /// Listen for SIGINT and SIGTERM from now on (call inside the runtime).
    pub fn listen() -> std::io::Result<Stop> {
        let stop = Stop {
            token: CancellationToken::new(),
            by: Arc::new(OnceLock::new()),
        };
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        let s = stop.clone();
        tokio::spawn(async move {
            loop {
                let name = tokio::select! {
                    Some(()) = int.recv() => "SIGINT",
                    Some(()) = term.recv() => "SIGTERM",
                    else => return,
                };
                if s.token.is_cancelled() {
                    eprintln!("\nsecond interrupt ({name}): exiting now; the journal is intact (`wavectl status`, then `wavectl resume RUN`, `rollback RUN` or `reconcile`)");
                    crate::transport::reap_all();
                    std::process::exit(exit::ABORTED);
                }
                let _ = s.by.set(name.to_string());
                s.token.cancel();
            }
        });
        Ok(stop)
    }

    pub fn requested(&self) -> bool {
        self.token.is_cancelled()
    }
}
