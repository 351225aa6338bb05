//! `report RUN`: the run's Markdown account (see `report::markdown`), from its journal.

use crate::cli::Global;
use crate::exec::wall_ms;
use crate::exit;
use crate::store::Access;

use super::session::{store, CmdResult};

pub async fn report(g: &Global, run: &str) -> CmdResult {
    let store = store(g, Access::Read).await?;
    let id = store.resolve(run).await?;
    let journal = store.read(&id).await?;
    if let Some(damage) = journal.damage {
        return Err(damage.into());
    }
    let text = crate::report::markdown::render(&journal.records);
    if g.json {
        let line = serde_json::json!({
            "event": "report",
            "at": crate::rollout::step::utc(wall_ms() / 1000),
            "run": id,
            "markdown": text,
        });
        crate::outln!("{line}");
    } else {
        crate::out!("{text}");
    }
    Ok(exit::OK)
}
