//! `demo`: a local lab fleet and a rollout in which one host goes bad.

use crate::cli::Global;

pub fn demo(_g: &Global, _hosts: usize) -> i32 {
    eprintln!("demo: not built yet");
    crate::exit::INCOMPLETE
}
