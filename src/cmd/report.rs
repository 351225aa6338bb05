//! `report RUN`: the run's Markdown account (see `report::markdown`), from its journal.

use crate::cli::Global;
use crate::exit;
use crate::report::Event;
use crate::store::Access;

use super::session::{reporter, store, CmdResult};

pub async fn report(g: &Global, run: &str) -> CmdResult {
    let store = store(g, Access::Read).await?;
    let id = store.resolve(run).await?;
    let journal = store.read(&id).await?;
    if let Some(damage) = journal.damage {
        return Err(damage.into());
    }
    let markdown = crate::report::markdown::render(&journal.records);
    reporter(g).emit(Event::Report { run: id, markdown });
    Ok(exit::OK)
}
