//! `plan --probe`: log in to every target and report what each holds at the install
//! path, changing nothing (the asking is `exec::preview`'s; the words, `report`'s).
//! Exit 0 when every target answered, 4 when some could not be asked.

use std::collections::BTreeMap;

use crate::cli::{Global, SpecArgs};
use crate::exec::{self, preview::Answer, Signals, Stop};
use crate::exit;
use crate::remote::PreviewParams;
use crate::report::Event;
use crate::transport::Transport;

use super::load;
use super::session::{reporter, CmdError, CmdResult};
use super::Failure;

pub async fn probe(g: &Global, args: &SpecArgs) -> CmdResult {
    let (l, _) = load(g, args).await?;
    let r = &l.rollout;
    // The run an apply started now would be: a purge fence newer than it refuses.
    let run_id = exec::new_run_id(&r.name);
    let p = PreviewParams {
        name: &r.name,
        install_path: &r.script.install_path,
        sha256: &r.script.sha256,
        run_id: &run_id,
        force: args.force,
    };
    let login = exec::login_deadline(r.health.probe_timeout);
    let shown = reporter(g);
    // A signal stops the asking: no further host is asked; those in flight finish.
    let stop = Stop::new();
    let mut signals = Signals::listen()
        .map_err(|e| CmdError::System(Failure::new(format!("cannot listen for signals: {e}"))))?;
    let listener = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let by = signals.next().await;
            stop.request(by);
        })
    };
    let result = async {
        let transport = Transport::new(g.ssh_config.clone()).map_err(|e| {
            CmdError::Setup(Failure::new(format!(
                "cannot create the ssh control directory under /tmp: {e}"
            )))
        })?;
        let mut holds: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut unanswered = 0;
        let mut asked = 0;
        exec::preview::preview_all(&transport, &l.targets, &p, login, &stop, |h, a| {
            asked += 1;
            if !matches!(a, Answer::Report(_)) {
                unanswered += 1;
            }
            let holding = a.holding(&h.name, p.install_path, p.sha256);
            *holds.entry(holding.holds).or_default() += 1;
            shown.emit(Event::HostHolds(holding));
        })
        .await;
        transport.close_idle().await;
        transport.reap();
        let exit_code = if unanswered > 0 || asked < l.targets.len() {
            exit::INCOMPLETE
        } else {
            exit::OK
        };
        shown.emit(Event::ProbeDone {
            hosts: asked,
            holds,
            exit_code,
        });
        Ok(exit_code)
    }
    .await;
    listener.abort();
    result
}
