//! `plan --probe`: ask every target what it holds at the install path
//! ([`mod@remote::preview`]: the install's own checks, read-only), at most [`FANOUT`] hosts
//! at once, through the transport (its admission bounds the logins and commands under
//! way). Changes nothing on any host, journals nothing; each host is reported as it
//! answers. A stop request starts no further host.

use std::time::Duration;

use futures::StreamExt;

use super::Stop;
use crate::inventory::Host;
use crate::remote::preview::AtPath;
use crate::remote::{self, Holds, PreviewParams, PreviewReport};
use crate::report::Holding;
use crate::transport::Transport;

/// Hosts asked at once (the transport's admission bounds the logins in their handshake
/// and the commands starting, whatever this is).
pub const FANOUT: usize = 100;

/// One host's answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// What the host holds.
    Report(Box<PreviewReport>),
    /// No login (unreachable, hung, or it refused us), with why.
    NotAsked(String),
    /// Logged in, but the preview did not answer as it should, with why.
    Failed(String),
}

/// Ask every host of `hosts` (`p` for each), logging in within `login`; `each` is called
/// with each answer as it comes. Hosts not yet started when `stop` is requested are
/// left out (not reported).
pub async fn preview_all(
    transport: &Transport,
    hosts: &[Host],
    p: &PreviewParams<'_>,
    login: Duration,
    stop: &Stop,
    mut each: impl FnMut(&Host, Answer),
) {
    let cmd = remote::preview(p);
    let mut answers = futures::stream::iter(hosts)
        .take_while(|_| std::future::ready(!stop.requested()))
        .map(|h| {
            let cmd = &cmd;
            async move { (h, ask(transport, h, cmd, login).await) }
        })
        .buffer_unordered(FANOUT);
    while let Some((h, a)) = answers.next().await {
        each(h, a);
    }
}

async fn ask(t: &Transport, host: &Host, cmd: &remote::RemoteCommand, login: Duration) -> Answer {
    let conn = match t.connect(host, login).await {
        Ok(c) => c,
        Err(e) => return Answer::NotAsked(e.to_string()),
    };
    let out = conn.run(cmd).await;
    conn.close().await;
    match out {
        Ok(o) if o.success() => match remote::parse_preview(&o.stdout) {
            Ok(r) => Answer::Report(Box::new(r)),
            Err(e) => Answer::Failed(e),
        },
        Ok(o) => Answer::Failed(format!(
            "the preview failed (exit {}): {}",
            o.code.map_or_else(|| "none".into(), |c| c.to_string()),
            o.last_line()
        )),
        Err(e) => Answer::Failed(e.to_string()),
    }
}

impl Answer {
    /// The event of `host`'s answer, for a spec whose script has `sha256`.
    pub fn holding(&self, host: &str, install_path: &str, sha256: &str) -> Holding {
        let mut h = Holding {
            host: host.to_string(),
            install_path: install_path.to_string(),
            ..Holding::default()
        };
        let r = match self {
            Answer::Report(r) => r,
            Answer::NotAsked(why) => {
                h.holds = "not-asked";
                h.reason = Some(why.clone());
                return h;
            }
            Answer::Failed(why) => {
                h.holds = "failed";
                h.reason = Some(why.clone());
                return h;
            }
        };
        let holds = r.holds(sha256);
        h.holds = holds.as_str();
        match holds {
            Holds::Version {
                run, state, same, ..
            } => {
                h.run = Some(run);
                h.state = Some(state.as_str());
                h.same = Some(same);
            }
            Holds::Refused(why) => h.reason = Some(why),
            Holds::Nothing | Holds::SameScript | Holds::Foreign => {}
        }
        match &r.at_path {
            AtPath::File(s) => h.sha256 = s.clone(),
            AtPath::Link(t) => h.link = Some(t.clone()),
            AtPath::Absent | AtPath::Other => {}
        }
        h.owner = r.owner.clone();
        h.mode = r.mode.clone();
        h.package = r.package.clone();
        h.txn = r.txn.clone();
        h
    }
}
