//! Group health before a wave: which hosts a wave's redundancy groups hold, when they
//! hold it back, and what the run does then (pause, and resume samples them again).
//! Pure: records in, actions and state out.

use std::time::Duration;

use super::step::{group_hold, group_members};
use super::*;
use crate::exit;
use crate::inventory::Host;
use crate::spec::{ActivationKind, Builtin, OnFailure};

const T0: u64 = 1_700_000_000_000;

fn host(name: &str, cluster: &str) -> Host {
    let mut h = Host::named(name);
    h.labels.insert("cluster".into(), cluster.into());
    h
}

/// db-1 (wave 1) and db-2 (wave 2) in pg-main, app-1 (wave 2) in web; outside the
/// rollout: the standby of pg-main and a host of pg-other.
fn plan() -> Plan {
    Plan {
        run: "r1".into(),
        name: "x".into(),
        target: Target::Apply(Deployment {
            install_path: "/usr/local/sbin/x".into(),
            mode: 0o755,
            sha256: "00".repeat(32),
            script_timeout: Duration::from_secs(10),
            activation: ActivationKind::Cron,
            schedule: "*/5 * * * *".into(),
            run_on_install: true,
            interval: Duration::from_secs(1),
            probe_timeout: Duration::from_secs(1),
            builtins: vec![Builtin::Reachable],
            thresholds: Default::default(),
            checks: vec![],
            lease: Duration::from_secs(60),
            force: false,
        }),
        hosts: vec![
            host("db-1", "pg-main"),
            host("db-2", "pg-main"),
            host("app-1", "web"),
        ],
        waves: vec![vec!["db-1".into()], vec!["db-2".into(), "app-1".into()]],
        policy: Policy {
            max_unhealthy: 0,
            on_failure: OnFailure::Rollback,
            bake: Duration::from_secs(1),
            min_runs: 0,
            concurrency: 5,
            fanout: 5,
            login_timeout: Duration::from_secs(2),
            baseline: false,
            controls: false,
            gates: None,
        },
        spec: None,
        inventory: None,
        ssh_config: None,
        user: "ann".into(),
        approval: None,
        command: vec![],
        preflight: None,
        groups: Some(Groups {
            label: "cluster".into(),
            others: vec![host("db-standby", "pg-main"), host("db-9", "pg-other")],
        }),
    }
}

fn healthy(host: &str) -> Sample {
    Sample {
        host: host.into(),
        seen: Seen::Answered { failing: vec![] },
    }
}

fn down(host: &str) -> Sample {
    Sample {
        host: host.into(),
        seen: Seen::NoAnswer {
            reason: "cannot connect: Connection refused".into(),
        },
    }
}

/// Fold records; the actions of the last one, and the journal so far.
struct Run {
    s: RunState,
    journal: Vec<Record>,
    at: u64,
}

impl Run {
    fn begin(plan: Plan) -> (Run, Vec<Action>) {
        let mut r = Run {
            s: RunState::new(),
            journal: Vec::new(),
            at: T0,
        };
        let a = r.submit(Event::Begin {
            plan: Box::new(plan),
            pid: 1,
            until_done: false,
        });
        (r, a)
    }

    fn submit(&mut self, e: Event) -> Vec<Action> {
        self.at += 10;
        let rec = Record::new(self.at, e);
        self.journal.push(rec.clone());
        step(&mut self.s, &rec)
    }
}

fn installs(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Host {
                host,
                op: Op::Install,
                ..
            } => Some(host.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_waves_groups_hold_other_targets_and_the_inventory_hosts_outside_the_rollout() {
    let p = plan();
    assert_eq!(
        group_members(&p, 1),
        vec![
            ("pg-main".to_string(), "db-2".to_string()),
            ("pg-main".to_string(), "db-standby".to_string()),
        ]
    );
    // Wave 2 touches pg-main (db-1, the standby) and web (nobody else).
    assert_eq!(
        group_members(&p, 2),
        vec![
            ("pg-main".to_string(), "db-1".to_string()),
            ("pg-main".to_string(), "db-standby".to_string()),
        ]
    );
    assert!(group_members(&p, 3).is_empty());
    let no_groups = Plan {
        groups: None,
        ..plan()
    };
    assert!(group_members(&no_groups, 1).is_empty());
}

#[test]
fn a_member_unreachable_unhealthy_or_not_sampled_holds_the_wave() {
    let p = plan();
    assert_eq!(
        group_hold(&p, 1, &[healthy("db-2"), healthy("db-standby")]),
        None
    );
    assert_eq!(
        group_hold(&p, 1, &[healthy("db-2"), down("db-standby")]),
        Some((
            "pg-main".into(),
            "db-standby".into(),
            "unreachable: cannot connect: Connection refused".into()
        ))
    );
    let failing = Sample {
        host: "db-standby".into(),
        seen: Seen::Answered {
            failing: vec!["check postgres: exit 2: no response".into()],
        },
    };
    assert_eq!(
        group_hold(&p, 1, &[healthy("db-2"), failing]),
        Some((
            "pg-main".into(),
            "db-standby".into(),
            "unhealthy: check postgres: exit 2: no response".into()
        ))
    );
    assert_eq!(
        group_hold(&p, 1, &[healthy("db-standby")]),
        Some((
            "pg-main".into(),
            "db-2".into(),
            "unreachable: not sampled".into()
        ))
    );
    // A host outside the wave's groups says nothing of it.
    assert_eq!(
        group_hold(
            &p,
            1,
            &[healthy("db-2"), healthy("db-standby"), down("db-9")]
        ),
        None
    );
}

#[test]
fn the_wave_is_sampled_with_its_groups_even_without_a_baseline() {
    let (_, actions) = Run::begin(plan());
    assert_eq!(
        actions,
        vec![Action::Baseline {
            wave: 1,
            hosts: vec![],
            controls: vec![],
            group: vec!["db-2".into(), "db-standby".into()],
        }]
    );
    // Without groups (and no baseline) the wave deploys at once, as before.
    let (r, actions) = Run::begin(Plan {
        groups: None,
        ..plan()
    });
    assert_eq!(installs(&actions), vec!["db-1".to_string()]);
    assert!(matches!(
        r.s.status,
        Status::Running {
            stage: Stage::Deploy { wave: 1 }
        }
    ));
}

#[test]
fn an_unhealthy_member_pauses_the_run_before_the_wave_naming_group_and_host() {
    let (mut r, _) = Run::begin(plan());
    let actions = r.submit(Event::BaselineDone {
        wave: 1,
        watch: vec![],
        group: vec![healthy("db-2"), down("db-standby")],
    });
    assert!(installs(&actions).is_empty(), "{actions:?}");
    assert!(r.s.hosts.iter().all(|h| h.state == HostState::Untouched));
    let Status::Ended {
        end: End::Paused { stage, why },
    } = &r.s.status
    else {
        panic!("not paused: {:?}", r.s.status);
    };
    assert_eq!(*stage, Stage::Baseline { wave: 1 });
    assert_eq!(
        *why,
        Why::Group {
            group: "pg-main".into(),
            host: "db-standby".into(),
            reason: "unreachable: cannot connect: Connection refused".into(),
        }
    );
    assert_eq!(
        serde_json::to_string(&r.s.status).unwrap(),
        r#"{"status":"ended","end":{"end":"paused","stage":{"stage":"baseline","wave":1},"why":{"why":"group","group":"pg-main","host":"db-standby","reason":"unreachable: cannot connect: Connection refused"}}}"#
    );
    assert_eq!(exit_code(&r.s), exit::ROLLED_BACK);
    assert_eq!(r.s.status_name(), "paused");
    let sum = summarize(&r.s);
    assert!(
        sum.outcome.starts_with(
            "paused before wave 1, which does not start while a host of group pg-main is not healthy: db-standby is unreachable"
        ),
        "{}",
        sum.outcome
    );
    // The journal alone gives the same state.
    assert_eq!(replay(&r.journal), r.s);
}

#[test]
fn resume_samples_the_group_again_and_goes_on_once_it_is_healthy() {
    let (mut r, _) = Run::begin(plan());
    r.submit(Event::BaselineDone {
        wave: 1,
        watch: vec![],
        group: vec![healthy("db-2"), down("db-standby")],
    });
    let again = r.submit(Event::Attach(Attach {
        pid: 2,
        intent: Intent::Resume,
        until_done: false,
        fanout: None,
        user: "ann".into(),
        command: vec![],
    }));
    assert_eq!(
        again,
        vec![Action::Baseline {
            wave: 1,
            hosts: vec![],
            controls: vec![],
            group: vec!["db-2".into(), "db-standby".into()],
        }]
    );
    // Still down: paused again.
    r.submit(Event::BaselineDone {
        wave: 1,
        watch: vec![],
        group: vec![healthy("db-2"), down("db-standby")],
    });
    assert_eq!(r.s.status_name(), "paused");
    r.submit(Event::Attach(Attach {
        pid: 3,
        intent: Intent::Resume,
        until_done: false,
        fanout: None,
        user: "ann".into(),
        command: vec![],
    }));
    let go = r.submit(Event::BaselineDone {
        wave: 1,
        watch: vec![],
        group: vec![healthy("db-2"), healthy("db-standby")],
    });
    assert_eq!(installs(&go), vec!["db-1".to_string()]);
    assert_eq!(replay(&r.journal), r.s);
}

#[test]
fn rollback_of_a_run_paused_by_its_group_touches_nothing() {
    let (mut r, _) = Run::begin(plan());
    r.submit(Event::BaselineDone {
        wave: 1,
        watch: vec![],
        group: vec![down("db-2"), healthy("db-standby")],
    });
    let actions = r.submit(Event::Attach(Attach {
        pid: 2,
        intent: Intent::Rollback,
        until_done: false,
        fanout: None,
        user: "ann".into(),
        command: vec![],
    }));
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(r.s.status_name(), "rolled-back");
}

#[test]
fn journals_without_the_new_fields_read_the_same() {
    let rec: Record =
        serde_json::from_str(r#"{"v":1,"at":1,"type":"baseline_done","wave":2}"#).unwrap();
    assert_eq!(
        rec.event,
        Event::BaselineDone {
            wave: 2,
            watch: vec![],
            group: vec![]
        }
    );
    assert_eq!(
        serde_json::to_string(&rec).unwrap(),
        r#"{"v":1,"at":1,"type":"baseline_done","wave":2}"#
    );
    let p = Plan {
        groups: None,
        ..plan()
    };
    let text = serde_json::to_string(&p).unwrap();
    assert!(!text.contains("groups") && !text.contains("preflight"));
    assert_eq!(serde_json::from_str::<Plan>(&text).unwrap(), p);
    // The samples as the journal keeps them.
    let done = Record::new(
        5,
        Event::BaselineDone {
            wave: 1,
            watch: vec![],
            group: vec![healthy("db-2"), down("db-standby")],
        },
    );
    assert_eq!(
        serde_json::to_string(&done).unwrap(),
        r#"{"v":1,"at":5,"type":"baseline_done","wave":1,"group":[{"host":"db-2","seen":"answered"},{"host":"db-standby","seen":"no-answer","reason":"cannot connect: Connection refused"}]}"#
    );
}
