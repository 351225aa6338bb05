//! Tests of `--limit` patterns: parsing, matching, `@STATE:RUN` terms, exact errors.

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
            "bad --limit `@retry`: the term `@retry` is an @FILE (a retry file), which wavectl does not read\n  \
             help: list the hosts in the pattern itself (--limit host1,host2), or name an earlier run's hosts by their state there: @failed:RUN, @pending:RUN or @untouched:RUN",
        ),
        (
            "web:@failed",
            "bad --limit `web:@failed`: the term `@failed` is an @FILE (a retry file), which wavectl does not read\n  \
             help: list the hosts in the pattern itself (--limit host1,host2), or name an earlier run's hosts by their state there: @failed:RUN, @pending:RUN or @untouched:RUN",
        ),
        (
            "@failed:",
            "bad --limit `@failed:`: the term `@failed:` names no run\n  \
             help: write @failed:RUN with a run id or a unique prefix of one (`wavectl status` lists the runs)",
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

fn sets(entries: &[(RunHosts, &str, &[&str])]) -> RunSets {
    entries
        .iter()
        .map(|(w, run, hosts)| {
            (
                (*w, run.to_string()),
                RunSet {
                    run: format!("{run}-full"),
                    hosts: hosts.iter().map(|h| h.to_string()).collect(),
                },
            )
        })
        .collect()
}

fn with_runs(pattern: &str, runs: &RunSets) -> Result<Vec<String>, String> {
    let inv = inv();
    let all = inv.hosts.clone();
    Limit::parse(pattern)
        .and_then(|l| l.with_runs(runs).apply(&inv, all, "hosts"))
        .map(|hs| hs.into_iter().map(|h| h.name).collect())
        .map_err(|b| format!("{}\n  help: {}", b.message, b.help))
}

#[test]
fn run_terms_name_an_earlier_runs_hosts() {
    use RunHosts::*;
    // The ':' of `@STATE:RUN` never separates terms, also after '!' or '&'.
    let l = Limit::parse("@failed:r1:!@untouched:r2:&web").unwrap();
    assert_eq!(
        l.runs(),
        [(Failed, "r1".to_string()), (Untouched, "r2".to_string())]
    );
    assert_eq!(Limit::parse("web:!@pending:r1").unwrap().runs().len(), 1);
    let runs = sets(&[
        (Failed, "r1", &["web2.lon", "db1.lon", "gone"]),
        (Untouched, "r2", &["db1.lon"]),
        (Pending, "r3", &[]),
        (Pending, "r4", &["gone"]),
    ]);
    // In the inventory's order; a host no longer in it is simply not there.
    assert_eq!(
        with_runs("@failed:r1", &runs).unwrap(),
        ["web2.lon", "db1.lon"]
    );
    assert_eq!(with_runs("@failed:r1:&web", &runs).unwrap(), ["web2.lon"]);
    assert_eq!(
        with_runs("@failed:r1,!@untouched:r2", &runs).unwrap(),
        ["web2.lon"]
    );
    assert_eq!(
        with_runs("web:!@failed:r1", &runs).unwrap(),
        ["web1.lon", "web3.ams", "db"]
    );
    assert_eq!(
        with_runs("@pending:r3", &runs).unwrap_err(),
        "--limit `@pending:r3`: the term `@pending:r3`: run r3-full has no pending hosts\n  \
         help: `wavectl status r3-full` shows the state of each of its hosts"
    );
    assert_eq!(
        with_runs("web:!@pending:r4", &runs).unwrap_err(),
        "--limit `web:!@pending:r4`: the term `@pending:r4`: none of the pending hosts of run \
         r4-full (gone) is in hosts.yml\n  help: use the inventory that run used, or --inventory INV"
    );
    assert!(with_runs("@failed:r9", &runs)
        .unwrap_err()
        .contains("were not read"));
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
            ..Default::default()
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
