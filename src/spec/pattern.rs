//! `--limit PATTERN`: Ansible's host patterns, narrowing the hosts a command acts on.
//! Parsing and matching, in one place; pure.
//!
//! A pattern is terms separated by `,` — or, when it has no `,`, by `:` (a `:` inside
//! `[...]` does not separate). A term is:
//! - `all` or `*`: every host;
//! - a name: the host of that name if there is one, else the hosts of that group (a
//!   value of the host's `group` label, which Ansible inventories fill; `ungrouped`: the
//!   hosts in no group);
//! - a glob (`*`, `?`, `[abc]`, `[!abc]`; case-sensitive, `*` also matches `.`): the hosts
//!   whose name matches, and the hosts of every group whose name matches;
//! - `key=value`: the hosts with that label (as `--select`; `group=NAME` matches any of
//!   the host's groups);
//! - `@failed:RUN`, `@pending:RUN`, `@untouched:RUN`: the hosts of an earlier run in that
//!   state ([`RunHosts`]). The caller reads the run's journal and hands the hosts in
//!   ([`RunSets`]); this module stays pure.
//!
//! `!TERM` excludes, `&TERM` intersects. As in Ansible, the plain terms are united first,
//! then each `&` term narrows the result, then each `!` term removes from it; with no
//! plain term the start is `all`. So `web*:&prod:!web3` is "hosts of a group or name
//! starting with `web`, also in `prod`, but not `web3`".
//!
//! Stricter than Ansible, which warns and goes on: every term must match some host of the
//! inventory (a typo in an exclusion must not go unnoticed), and the limit must leave at
//! least one of the hosts the command would act on. Not supported, each with its own
//! error: `~regex` terms, subscripts (`web[0]`, `web[1:3]`) and `@file`.

use std::collections::{BTreeMap, BTreeSet};

use super::Selector;
use crate::inventory::{shown, Bad, Host, Inventory};

/// How to write a pattern, for every error's hint.
const HELP: &str = "write host names, group names, globs (web*) or key=value labels, separated by ',' or ':'; prefix a term with '!' to exclude or '&' to intersect";

/// A parsed `--limit` pattern.
#[derive(Debug)]
pub struct Limit {
    text: String,
    terms: Vec<Term>,
}

/// Which hosts of an earlier run a `@STATE:RUN` term names (read off the run's journal,
/// replayed; the caller decides which host states each means).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RunHosts {
    /// `@failed:RUN`
    Failed,
    /// `@pending:RUN`
    Pending,
    /// `@untouched:RUN`
    Untouched,
}

impl RunHosts {
    pub const ALL: [RunHosts; 3] = [RunHosts::Failed, RunHosts::Pending, RunHosts::Untouched];

    pub fn name(self) -> &'static str {
        match self {
            RunHosts::Failed => "failed",
            RunHosts::Pending => "pending",
            RunHosts::Untouched => "untouched",
        }
    }

    /// `@failed`, `@pending` or `@untouched` (the term before its `:RUN`).
    fn of_prefix(text: &str) -> Option<RunHosts> {
        let name = text.strip_prefix('@')?;
        RunHosts::ALL.into_iter().find(|w| w.name() == name)
    }
}

/// The hosts of one run in one state, as the caller read them from its journal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSet {
    /// The run's whole id (the term may give a prefix).
    pub run: String,
    /// Its hosts in that state, in the run's order.
    pub hosts: Vec<String>,
}

/// For each `@STATE:RUN` term of a pattern, keyed by the state and RUN as written.
pub type RunSets = BTreeMap<(RunHosts, String), RunSet>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Intersect,
    Exclude,
}

#[derive(Debug)]
struct Term {
    op: Op,
    /// The term as written, without its `!` or `&`.
    text: String,
    what: What,
}

#[derive(Debug)]
enum What {
    All,
    /// A host name, or else a group name (decided against the inventory).
    Name(String),
    Glob(glob::Pattern),
    Label(Selector),
    /// `@STATE:RUN`: filled from [`RunSets`] before matching.
    Run {
        which: RunHosts,
        run: String,
        set: Option<RunSet>,
    },
}

const GLOB: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

impl Limit {
    /// Parse a pattern; the error says what is wrong with which term.
    pub(crate) fn parse(pattern: &str) -> Result<Limit, Bad> {
        let bad = |what: String| Bad::new(format!("bad --limit {}: {what}", shown(pattern)), HELP);
        let trimmed = pattern.trim();
        let mut terms = Vec::new();
        for raw in split(trimmed) {
            let raw = raw.trim();
            if raw.is_empty() {
                continue;
            }
            let (op, text) = match raw.as_bytes()[0] {
                b'!' => (Op::Exclude, raw[1..].trim()),
                b'&' => (Op::Intersect, raw[1..].trim()),
                _ => (Op::Union, raw),
            };
            if text.is_empty() {
                return Err(bad(format!("the term {} names nothing", shown(raw))));
            }
            if text.starts_with('~') {
                return Err(Bad::new(
                    format!(
                        "bad --limit {}: the term {} is a regular expression, which wavectl does not support",
                        shown(pattern),
                        shown(raw)
                    ),
                    "use a glob instead, e.g. web* or db-[0-9]*",
                ));
            }
            if is_subscript(text) {
                return Err(Bad::new(
                    format!(
                        "bad --limit {}: the term {} is a subscript (a group's hosts by position), which wavectl does not support",
                        shown(pattern),
                        shown(raw)
                    ),
                    "name the hosts (web1,web2) or use a glob (web[12]*)",
                ));
            }
            if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(bad(format!(
                    "the term {} contains whitespace or a control character",
                    shown(raw)
                )));
            }
            if text.starts_with('@') {
                let Some((which, run)) = text
                    .split_once(':')
                    .and_then(|(w, run)| Some((RunHosts::of_prefix(w)?, run)))
                else {
                    return Err(Bad::new(
                        format!(
                            "bad --limit {}: the term {} is an @FILE (a retry file), which wavectl does not read",
                            shown(pattern),
                            shown(raw)
                        ),
                        "list the hosts in the pattern itself (--limit host1,host2), or name an earlier run's hosts by their state there: @failed:RUN, @pending:RUN or @untouched:RUN",
                    ));
                };
                if run.is_empty() {
                    return Err(Bad::new(
                        format!(
                            "bad --limit {}: the term {} names no run",
                            shown(pattern),
                            shown(raw)
                        ),
                        format!(
                            "write @{}:RUN with a run id or a unique prefix of one (`wavectl status` lists the runs)",
                            which.name()
                        ),
                    ));
                }
                terms.push(Term {
                    op,
                    text: text.to_string(),
                    what: What::Run {
                        which,
                        run: run.to_string(),
                        set: None,
                    },
                });
                continue;
            }
            let what = if text == "all" || text == "*" {
                What::All
            } else if text.contains('=') {
                What::Label(Selector::parse_rule(text).map_err(|b| {
                    Bad::new(
                        format!("bad --limit {}: {}", shown(pattern), b.message),
                        b.help,
                    )
                })?)
            } else if text.contains(['*', '?', '[']) {
                What::Glob(glob::Pattern::new(text).map_err(|e| {
                    bad(format!("the glob {} does not parse: {}", shown(raw), e.msg))
                })?)
            } else {
                What::Name(text.to_string())
            };
            terms.push(Term {
                op,
                text: text.to_string(),
                what,
            });
        }
        if terms.is_empty() {
            return Err(Bad::new("--limit is empty", HELP));
        }
        Ok(Limit {
            text: pattern.to_string(),
            terms,
        })
    }

    /// The `@STATE:RUN` terms, for the caller to read those runs' journals.
    pub fn runs(&self) -> Vec<(RunHosts, String)> {
        self.terms
            .iter()
            .filter_map(|t| match &t.what {
                What::Run { which, run, .. } => Some((*which, run.clone())),
                _ => None,
            })
            .collect()
    }

    /// Fill each `@STATE:RUN` term's hosts from `sets` (what [`runs`](Self::runs) asked for).
    pub fn with_runs(mut self, sets: &RunSets) -> Limit {
        for t in &mut self.terms {
            if let What::Run { which, run, set } = &mut t.what {
                *set = sets.get(&(*which, run.clone())).cloned();
            }
        }
        self
    }

    /// The hosts of `candidates` the pattern keeps, in their order. Every term must
    /// match some host of `inv`, and at least one candidate must be kept; `what` names the
    /// candidates in that error ("targets of the rollout").
    pub(crate) fn apply(
        &self,
        inv: &Inventory,
        candidates: Vec<Host>,
        what: &str,
    ) -> Result<Vec<Host>, Bad> {
        for t in &self.terms {
            if let What::Run { which, run, set } = &t.what {
                self.check_run(inv, t, *which, run, set.as_ref())?;
            } else if !inv.hosts.iter().any(|h| t.matches(inv, h)) {
                return Err(self.no_match(inv, t));
            }
        }
        let has_union = self.terms.iter().any(|t| t.op == Op::Union);
        let keep = |h: &Host| {
            let terms_of = |op: Op| self.terms.iter().filter(move |t| t.op == op);
            (!has_union || terms_of(Op::Union).any(|t| t.matches(inv, h)))
                && terms_of(Op::Intersect).all(|t| t.matches(inv, h))
                && !terms_of(Op::Exclude).any(|t| t.matches(inv, h))
        };
        let total = candidates.len();
        let kept: Vec<Host> = candidates.into_iter().filter(|h| keep(h)).collect();
        if kept.is_empty() {
            let matched: Vec<&str> = inv
                .hosts
                .iter()
                .filter(|h| keep(h))
                .map(|h| h.name.as_str())
                .collect();
            let help = if matched.is_empty() {
                "its terms match hosts, but no host is left after its '&' and '!' terms; loosen them".to_string()
            } else {
                format!(
                    "in the inventory it matches {}; a limit only narrows the hosts the command would act on",
                    list(matched)
                )
            };
            return Err(Bad::new(
                format!(
                    "--limit {} leaves none of the {total} {what}",
                    shown(&self.text)
                ),
                help,
            ));
        }
        Ok(kept)
    }

    /// A `@STATE:RUN` term must name some host, and some of them must be in `inv`.
    fn check_run(
        &self,
        inv: &Inventory,
        t: &Term,
        which: RunHosts,
        run: &str,
        set: Option<&RunSet>,
    ) -> Result<(), Bad> {
        let head = format!("--limit {}: the term `{}`", shown(&self.text), t.text);
        let Some(set) = set else {
            return Err(Bad::new(
                format!("{head}: the hosts of run `{run}` were not read"),
                "this is a bug in wavectl: please report it",
            ));
        };
        if set.hosts.is_empty() {
            return Err(Bad::new(
                format!("{head}: run {} has no {} hosts", set.run, which.name()),
                format!(
                    "`wavectl status {}` shows the state of each of its hosts",
                    set.run
                ),
            ));
        }
        if !inv.hosts.iter().any(|h| t.matches(inv, h)) {
            return Err(Bad::new(
                format!(
                    "{head}: none of the {} hosts of run {} ({}) is in {}",
                    which.name(),
                    set.run,
                    list(set.hosts.iter().map(String::as_str)),
                    inv.path.display()
                ),
                "use the inventory that run used, or --inventory INV",
            ));
        }
        Ok(())
    }

    fn no_match(&self, inv: &Inventory, t: &Term) -> Bad {
        let groups: BTreeSet<&str> = inv.hosts.iter().flat_map(groups_of).collect();
        let help = match &t.what {
            What::Label(sel) => {
                let values: BTreeSet<&str> = inv
                    .hosts
                    .iter()
                    .filter_map(|h| h.labels.get(&sel.key))
                    .flat_map(|v| {
                        if sel.key == "group" {
                            v.split(',').collect()
                        } else {
                            vec![v.as_str()]
                        }
                    })
                    .collect();
                if values.is_empty() {
                    format!("no host has a `{}` label", sel.key)
                } else {
                    format!("`{}` values in use: {}", sel.key, list(values))
                }
            }
            _ => {
                let hosts = list(inv.hosts.iter().map(|h| h.name.as_str()));
                if groups.is_empty() {
                    format!("hosts: {hosts}; the inventory has no groups")
                } else {
                    format!("hosts: {hosts}; groups: {}", list(groups))
                }
            }
        };
        Bad::new(
            format!(
                "--limit {}: the term `{}` matches no host or group in {}",
                shown(&self.text),
                t.text,
                inv.path.display()
            ),
            help,
        )
    }
}

impl Term {
    fn matches(&self, inv: &Inventory, h: &Host) -> bool {
        match &self.what {
            What::All => true,
            What::Label(sel) => sel.matches(h),
            What::Glob(g) => {
                g.matches_with(&h.name, GLOB) || groups_of(h).any(|grp| g.matches_with(grp, GLOB))
            }
            What::Run { set, .. } => set.as_ref().is_some_and(|s| s.hosts.contains(&h.name)),
            What::Name(n) if inv.get(n).is_some() => h.name == *n,
            What::Name(n) if n == "ungrouped" => groups_of(h).next().is_none(),
            What::Name(n) => groups_of(h).any(|g| g == n),
        }
    }
}

/// The groups a host is in (its `group` label, comma-separated).
fn groups_of(h: &Host) -> impl Iterator<Item = &str> {
    h.labels
        .get("group")
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter(|g| !g.is_empty())
}

/// Ansible's split: on ',' if there is one, else on ':' outside `[...]` — but never on
/// the ':' of a `@STATE:RUN` term.
fn split(s: &str) -> Vec<&str> {
    if s.contains(',') {
        return s.split(',').collect();
    }
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth <= 0 => {
                let so_far = s[start..i].trim().trim_start_matches(['!', '&']).trim();
                if RunHosts::of_prefix(so_far).is_none() {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// `NAME[3]`, `NAME[-1]`, `NAME[1:3]`, `NAME[1-3]`, `NAME[2:]`: Ansible's subscripts.
fn is_subscript(t: &str) -> bool {
    let Some(body) = t.strip_suffix(']') else {
        return false;
    };
    let Some(open) = body.rfind('[') else {
        return false;
    };
    if open == 0 {
        return false;
    }
    let inner = &body[open + 1..];
    let digits = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    if digits(inner.strip_prefix('-').unwrap_or(inner)) {
        return true;
    }
    match inner.split_once([':', '-']) {
        Some((a, b)) => digits(a) && (b.is_empty() || digits(b)),
        None => false,
    }
}

fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.into_iter().collect();
    if items.len() > 10 {
        format!("{}, ... ({} in all)", items[..10].join(", "), items.len())
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests;
