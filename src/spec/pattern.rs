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
//!   the host's groups).
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

use std::collections::BTreeSet;

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
        if trimmed.starts_with('@') {
            return Err(Bad::new(
                format!(
                    "bad --limit {}: @FILE (a retry file) is not supported",
                    shown(pattern)
                ),
                "list the hosts in the pattern itself: --limit host1,host2",
            ));
        }
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
            if !inv.hosts.iter().any(|h| t.matches(inv, h)) {
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

/// Ansible's split: on ',' if there is one, else on ':' outside `[...]`.
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
                out.push(&s[start..i]);
                start = i + 1;
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
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// Groups as an Ansible inventory gives them; `db` is also a host name.
    fn inv() -> Inventory {
        Inventory {
            path: PathBuf::from("hosts.yml"),
            hosts: vec![
                Host::labelled("web1.lon", &[("group", "prod,web"), ("dc", "lon")]),
                Host::labelled("web2.lon", &[("group", "prod,web"), ("dc", "lon")]),
                Host::labelled("web3.ams", &[("group", "staging,web"), ("dc", "ams")]),
                Host::labelled("db1.lon", &[("group", "dbservers,prod"), ("dc", "lon")]),
                Host::labelled("db", &[("group", "web")]),
                Host::labelled("bastion", &[("dc", "lon")]),
            ],
        }
    }

    fn limit(pattern: &str) -> Result<Vec<String>, String> {
        let inv = inv();
        let all = inv.hosts.clone();
        Limit::parse(pattern)
            .and_then(|l| l.apply(&inv, all, "hosts"))
            .map(|hs| hs.into_iter().map(|h| h.name).collect())
            .map_err(|b| format!("{}\n  help: {}", b.message, b.help))
    }

    fn ok(pattern: &str) -> Vec<String> {
        limit(pattern).unwrap_or_else(|e| panic!("{pattern}: {e}"))
    }

    #[test]
    fn names_groups_globs_and_labels() {
        assert_eq!(ok("web1.lon"), ["web1.lon"]);
        assert_eq!(ok("staging"), ["web3.ams"]);
        assert_eq!(ok("web"), ["web1.lon", "web2.lon", "web3.ams", "db"]);
        assert_eq!(ok("ungrouped"), ["bastion"]);
        // A host name wins over a group of the same name.
        assert_eq!(ok("db"), ["db"]);
        assert_eq!(ok("all").len(), 6);
        assert_eq!(ok("*").len(), 6);
        // A glob matches host names and group names.
        assert_eq!(ok("*.lon"), ["web1.lon", "web2.lon", "db1.lon"]);
        assert_eq!(ok("db*"), ["db1.lon", "db"]);
        assert_eq!(ok("web[12].*"), ["web1.lon", "web2.lon"]);
        assert_eq!(ok("web?.[!l]*"), ["web3.ams"]);
        assert_eq!(ok("stag*"), ["web3.ams"]);
        assert_eq!(ok("dc=lon"), ["web1.lon", "web2.lon", "db1.lon", "bastion"]);
        assert_eq!(ok("group=prod"), ["web1.lon", "web2.lon", "db1.lon"]);
        // Case matters, as in Ansible.
        assert!(limit("WEB1.lon").is_err());
    }

    #[test]
    fn unions_intersections_exclusions() {
        assert_eq!(ok("staging:dbservers"), ["web3.ams", "db1.lon"]);
        assert_eq!(ok("staging,dbservers"), ["web3.ams", "db1.lon"]);
        assert_eq!(ok(" staging , , dbservers "), ["web3.ams", "db1.lon"]);
        assert_eq!(ok("web:&prod"), ["web1.lon", "web2.lon"]);
        assert_eq!(ok("web:!prod"), ["web3.ams", "db"]);
        assert_eq!(ok("web,&prod,!web2.lon"), ["web1.lon"]);
        // Order does not matter: unions, then intersections, then exclusions.
        assert_eq!(ok("!web2.lon:&prod:web"), ["web1.lon"]);
        // Only exclusions or intersections: they start from all.
        assert_eq!(ok("!web"), ["db1.lon", "bastion"]);
        assert_eq!(
            ok("&dc=lon"),
            ["web1.lon", "web2.lon", "db1.lon", "bastion"]
        );
        assert_eq!(ok("*.lon:!dc=ams:&group=web"), ["web1.lon", "web2.lon"]);
        // A ':' inside brackets does not separate.
        assert_eq!(ok("web[1:3].*"), ["web1.lon", "web3.ams"]);
    }

    #[test]
    fn narrows_only_the_candidates() {
        let inv = inv();
        let candidates: Vec<Host> = inv.hosts[2..].to_vec();
        let l = Limit::parse("prod").unwrap();
        let got: Vec<String> = l
            .apply(&inv, candidates.clone(), "targets of the rollout")
            .unwrap()
            .into_iter()
            .map(|h| h.name)
            .collect();
        assert_eq!(got, ["db1.lon"]);
        let e = Limit::parse("web1.lon,web2.lon")
            .unwrap()
            .apply(&inv, candidates, "targets of the rollout")
            .unwrap_err();
        assert_eq!(
            e.message,
            "--limit `web1.lon,web2.lon` leaves none of the 4 targets of the rollout"
        );
        assert_eq!(
            e.help,
            "in the inventory it matches web1.lon, web2.lon; a limit only narrows the hosts the command would act on"
        );
    }

    #[test]
    fn errors() {
        let cases = [
            (
                "wbe*",
                "--limit `wbe*`: the term `wbe*` matches no host or group in hosts.yml\n  \
                 help: hosts: web1.lon, web2.lon, web3.ams, db1.lon, db, bastion; groups: dbservers, prod, staging, web",
            ),
            (
                "web:!web9",
                "--limit `web:!web9`: the term `web9` matches no host or group in hosts.yml\n  \
                 help: hosts: web1.lon, web2.lon, web3.ams, db1.lon, db, bastion; groups: dbservers, prod, staging, web",
            ),
            (
                "dc=par",
                "--limit `dc=par`: the term `dc=par` matches no host or group in hosts.yml\n  \
                 help: `dc` values in use: ams, lon",
            ),
            (
                "rack=1",
                "--limit `rack=1`: the term `rack=1` matches no host or group in hosts.yml\n  \
                 help: no host has a `rack` label",
            ),
            (
                "staging:&dbservers",
                "--limit `staging:&dbservers` leaves none of the 6 hosts\n  \
                 help: its terms match hosts, but no host is left after its '&' and '!' terms; loosen them",
            ),
            ("", &format!("--limit is empty\n  help: {HELP}")),
            (" , , ", &format!("--limit is empty\n  help: {HELP}")),
            (
                "web,!",
                &format!("bad --limit `web,!`: the term `!` names nothing\n  help: {HELP}"),
            ),
            (
                "~web.*",
                "bad --limit `~web.*`: the term `~web.*` is a regular expression, which wavectl does not support\n  \
                 help: use a glob instead, e.g. web* or db-[0-9]*",
            ),
            (
                "web[0]",
                "bad --limit `web[0]`: the term `web[0]` is a subscript (a group's hosts by position), which wavectl does not support\n  \
                 help: name the hosts (web1,web2) or use a glob (web[12]*)",
            ),
            (
                "web[1:]",
                "bad --limit `web[1:]`: the term `web[1:]` is a subscript (a group's hosts by position), which wavectl does not support\n  \
                 help: name the hosts (web1,web2) or use a glob (web[12]*)",
            ),
            (
                "@retry",
                "bad --limit `@retry`: @FILE (a retry file) is not supported\n  \
                 help: list the hosts in the pattern itself: --limit host1,host2",
            ),
            (
                "web[",
                &format!("bad --limit `web[`: the glob `web[` does not parse: invalid range pattern\n  help: {HELP}"),
            ),
            (
                "=db",
                "bad --limit `=db`: selector `=db` has no key\n  help: write a label selector like \"role=db\"",
            ),
            (
                "web\tdb",
                &format!("bad --limit `web\\tdb`: the term `web\\tdb` contains whitespace or a control character\n  help: {HELP}"),
            ),
        ];
        for (pattern, expected) in cases {
            assert_eq!(limit(pattern).unwrap_err(), expected, "{pattern:?}");
        }
    }

    #[test]
    fn subscripts_are_told_from_globs() {
        for s in ["w[0]", "w[-1]", "w[1:3]", "w[1-3]", "w[2:]"] {
            assert!(is_subscript(s), "{s}");
        }
        for s in ["w[12]x", "w[a-c]", "w[!1]", "[1]", "w[1:x]", "w"] {
            assert!(!is_subscript(s), "{s}");
        }
    }

    #[test]
    fn load_with_narrows_targets_and_drops_canaries_left_out() {
        use crate::spec::tests::{Fixture, BASE, INV};
        let f = Fixture::new(
            &format!("{BASE}[targets]\nselect = [\"role=db\"]\n[waves]\ncanaries = [\"db-2\"]\n"),
            INV,
        );
        let with = |limit: &str| {
            let opts = crate::spec::LoadOptions {
                force: false,
                limit: Some(limit.to_string()),
            };
            crate::spec::load_with(&f.spec(), None, &opts)
        };
        let names = |l: &crate::spec::Loaded| -> Vec<String> {
            l.targets.iter().map(|h| h.name.clone()).collect()
        };
        let all = f.load().unwrap();
        assert_eq!(names(&all), ["db-1", "db-2"]);
        assert_eq!(all.rollout.waves.canaries.len(), 1);
        let l = with("db-*:!db-2").unwrap();
        assert_eq!(names(&l), ["db-1"]);
        assert!(l.rollout.waves.canaries.is_empty());
        let l = with("cluster=b").unwrap();
        assert_eq!(names(&l), ["db-2"]);
        assert_eq!(l.rollout.waves.canaries[0].value, "db-2");
        assert_eq!(
            f.err_of(with("web-1")),
            "--limit `web-1` leaves none of the 2 targets of the rollout\n  help: in the inventory \
             it matches web-1; a limit only narrows the hosts the command would act on"
        );
    }
}
