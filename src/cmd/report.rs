//! `report RUN`: the run's Markdown account (see `report::markdown`), from its journal.

use crate::cli::Global;
use crate::exit;
use crate::journal::{self, Access};

use super::session::{state_dir, CmdResult};

pub fn report(g: &Global, run: &str) -> CmdResult {
    let dir = state_dir(g, Access::Read)?;
    let id = dir.resolve(run)?;
    let records = journal::read(&dir.journal_path(&id))?;
    let text = crate::report::markdown::render(&records);
    if g.json {
        let line = serde_json::json!({
            "event": "report",
            "at": crate::rollout::step::utc(crate::exec::now_ms() / 1000),
            "run": id,
            "markdown": text,
        });
        println!("{line}");
    } else {
        print!("{text}");
    }
    Ok(exit::OK)
}
