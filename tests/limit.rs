//! Ansible inventories and `--limit` end to end: an INI and a YAML inventory of a real
//! sshd fleet (groups, `:children`, `[all:vars]`, a range), `apply` and `purge` narrowed
//! by Ansible patterns, and a limit that matches nothing refused (exit 2) before any
//! host is contacted.

mod common;

use wavectl::lab::Fleet;

use common::*;

const NAME: &str = "raid-health";
const INSTALL: &str = "/usr/local/sbin/raid-health";

fn spec(inventory: &str) -> String {
    format!(
        r#"name = "{NAME}"
inventory = "{inventory}"

[script]
source = "script.sh"
install_path = "{INSTALL}"

[activation]
kind = "cron"
schedule = "*/5 * * * *"

[targets]
select = ["group=fleet"]

[waves]
sizes = [1, "100%"]
bake = "1s"
min_runs = 1

[health]
interval = "2s"
probe_timeout = "2s"
"#
    )
}

/// The lab's hosts h01..h04 as an Ansible INI inventory: each name is its ssh_config
/// alias (port, key and known_hosts come from the fleet's ssh_config).
const INI: &str = "\
[web]
h0[1:2]

[db]
h03 ansible_user=root
h04

[fleet:children]
web
db

[db:vars]
role=db

[all:vars]
ansible_user=root
dc=lab
";

const YML: &str = "\
all:
  vars:
    ansible_user: root
    dc: lab
  children:
    fleet:
      children:
        web:
          hosts:
            h0[1:2]:
        db:
          hosts:
            h03:
            h04:
          vars:
            role: db
";

fn installed(f: &Fleet) -> Vec<String> {
    f.hosts()
        .iter()
        .filter(|h| h.path(INSTALL).exists())
        .map(|h| h.name().to_string())
        .collect()
}

fn show(r: &Run) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    )
}

#[test]
fn limit_narrows_apply_and_purge_over_ansible_inventories() {
    let s = Workdir::new(fleet(4), "#!/bin/sh\necho ok\n", &spec("hosts.ini"));
    std::fs::write(s.path().join("hosts.ini"), INI).unwrap();
    std::fs::write(s.path().join("hosts.yml"), YML).unwrap();

    // plan: the limit decides the targets, and the waves are planned over them.
    for inv in ["hosts.ini", "hosts.yml"] {
        let r = s.wavectl(&[
            "plan",
            "rollout.toml",
            "--inventory",
            inv,
            "--limit",
            "fleet:!web",
        ]);
        assert_eq!(r.code, Some(0), "{inv}: {}", show(&r));
        assert!(
            r.stdout.contains("wave 1 (1 host): h03") && r.stdout.contains("h04"),
            "{inv}: {}",
            show(&r)
        );
        assert!(!r.stdout.contains("h01"), "{inv}: {}", show(&r));
    }

    // apply: only the hosts the limit keeps get the script.
    let r = s.wavectl(&[
        "apply",
        "rollout.toml",
        "--limit",
        "h0*:&role=db:!h04",
        "--yes",
    ]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert_eq!(installed(&s.fleet), ["h03"]);
    // A plan file records the limit; `apply PLAN` resolves it again with the same limit.
    let r = s.wavectl(&[
        "plan",
        "rollout.toml",
        "--inventory",
        "hosts.yml",
        "--limit",
        "web,h04",
        "-o",
        "plan.json",
    ]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    let pf: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.path().join("plan.json")).unwrap()).unwrap();
    assert_eq!(pf["content"]["limit"], "web,h04");
    let planned: Vec<&str> = pf["content"]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(planned, ["h01", "h02", "h04"]);
    let r = s.wavectl(&["apply", "plan.json", "--yes"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert_eq!(installed(&s.fleet), ["h01", "h02", "h03", "h04"]);

    // purge: the limit narrows the inventory's hosts.
    let r = s.wavectl(&[
        "purge",
        NAME,
        "--inventory",
        "hosts.ini",
        "--limit",
        "db",
        "--yes",
    ]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert_eq!(installed(&s.fleet), ["h01", "h02"]);
    for h in ["h03", "h04"] {
        assert_no_wavectl_files(s.fleet.host(h), NAME, INSTALL);
    }
    s.assert_no_ssh_left();
}

#[test]
fn a_limit_that_matches_nothing_contacts_no_host() {
    let s = Workdir::new(fleet(2), "#!/bin/sh\necho ok\n", &spec("hosts.ini"));
    std::fs::write(s.path().join("hosts.ini"), "[fleet]\nh01\nh02\n").unwrap();
    // What sshd logged beyond its start and the lab's banner check (a TCP connection
    // closed before key exchange): a login of ours would show there.
    let logins = |s: &Workdir| -> Vec<String> {
        s.fleet
            .hosts()
            .iter()
            .flat_map(|h| {
                std::fs::read_to_string(h.dir().join("sshd.log"))
                    .unwrap()
                    .lines()
                    .filter(|l| {
                        !l.starts_with("Server listening")
                            && !l.starts_with("kex_exchange_identification")
                            && !l.starts_with("Connection reset by 127.0.0.1")
                    })
                    .map(|l| format!("{}: {l}", h.name()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    assert!(logins(&s).is_empty(), "{:?}", logins(&s));
    let cases: [(&[&str], &str); 5] = [
        (
            &["apply", "rollout.toml", "--limit", "h09", "--yes"],
            "error: --limit `h09`: the term `h09` matches no host or group in hosts.ini\n  \
             help: hosts: h01, h02; groups: fleet\n",
        ),
        (
            &["apply", "rollout.toml", "--limit", "fleet:!h03", "--yes"],
            "error: --limit `fleet:!h03`: the term `h03` matches no host or group in hosts.ini\n  \
             help: hosts: h01, h02; groups: fleet\n",
        ),
        (
            &["plan", "rollout.toml", "--limit", "h01:&h02"],
            "error: --limit `h01:&h02` leaves none of the 2 targets of the rollout\n  \
             help: its terms match hosts, but no host is left after its '&' and '!' terms; loosen them\n",
        ),
        (
            &["apply", "rollout.toml", "--limit", "~h0.", "--yes"],
            "error: bad --limit `~h0.`: the term `~h0.` is a regular expression, which wavectl \
             does not support\n  help: use a glob instead, e.g. web* or db-[0-9]*\n",
        ),
        (
            &[
                "purge",
                NAME,
                "--inventory",
                "hosts.ini",
                "--limit",
                "group=db",
                "--yes",
            ],
            "error: --limit `group=db`: the term `group=db` matches no host or group in hosts.ini\n  \
             help: `group` values in use: fleet\n",
        ),
    ];
    for (args, want) in cases {
        let r = s.wavectl(args);
        assert_eq!(r.code, Some(2), "{args:?}: {}", show(&r));
        assert_eq!(r.stderr, want, "{args:?}");
        assert!(r.stdout.is_empty(), "{args:?}: {}", show(&r));
    }
    assert!(
        logins(&s).is_empty(),
        "a host was contacted: {:?}",
        logins(&s)
    );
    for h in s.fleet.hosts() {
        assert!(!h.path("/var/lib/wavectl").exists(), "{}", h.name());
    }
    let st = s.wavectl(&["status", "--json"]);
    assert!(st.stdout.trim().is_empty(), "runs recorded:\n{}", st.stdout);
}
