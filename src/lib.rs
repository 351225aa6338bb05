//! wavectl: a staged script rollout controller.
//!
//! The modules follow the pipeline: spec → plan → waves → deploy/probe/verdict →
//! rollback, with the store (journals, locks, stop requests), the transport and the
//! display at the edges.

pub mod child;
pub mod cli;
pub mod cmd;
pub mod diag;
pub mod exit;
pub mod out;
pub mod units;

pub mod inventory;
pub mod spec;

pub mod plan;
pub mod rollout;

pub mod remote;
pub mod transport;

pub mod exec;
pub mod report;
pub mod store;

pub mod lab;
