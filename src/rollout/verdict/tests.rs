//! The verdict logic on probe outputs as the probe prints them (recorded on lab hosts,
//! then edited where a test needs a host to show something): each goes through the
//! real parser, then the watch.

use super::*;
use crate::remote::host_probe::parse_probe;
use crate::rollout::probe_report::CheckResult;

/// A probe's output (without its `end` line) as a report.
fn rep(text: &str) -> ProbeReport {
    parse_probe(&format!("{text}\nend\n"), &[]).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn hx(s: &str) -> String {
    hex::encode(s.as_bytes())
}

/// A plain lab host's probe with every source asked for, at `up` seconds since boot (a
/// systemd-less host: units not available), as recorded, with the given load, blocked
/// tasks, OOM kills and pressure totals.
fn sample(up: f64, load: f64, blocked: u64, oom: u64, io_us: u64) -> String {
    format!(
        "uptime {up:.2}\nclock {}\nload1 {load}\ncpus 2\nblocked {blocked}\noom_kill {oom}\n\
         pressure 1000000 2000000 {io_us}\nkcursor 6c1d0d0e-0b7a-4d43-9a43-5a3c4f0e1b2c:{:.6}\n\
         kcount 0\nna units {}\nowner r-1\nstate probation\nlease 0\nrunning 0",
        1_764_680_000 + up as u64,
        up - 1.0,
        hx("systemd does not run here"),
    )
}

fn watch() -> Watch {
    Watch::new(&Builtin::ALL, &Thresholds::default())
}

fn ok(text: &str) -> Outcome {
    Outcome::Report(Box::new(rep(text)))
}

/// A watch with host `h` and controls `c1`, `c2` baselined on three quiet samples
/// (load 0.2, nothing blocked, no OOM kill, 1 % io stall).
fn baselined() -> Watch {
    let mut w = watch();
    for h in ["h", "c1", "c2"] {
        let samples = (0u32..3)
            .map(|i| {
                rep(&sample(
                    100.0 + f64::from(i),
                    0.2,
                    0,
                    5,
                    10_000 * u64::from(i),
                ))
            })
            .collect();
        w.set_baseline(h, samples);
    }
    w
}

/// One round: `h` judged, `c1` and `c2` controls.
fn round(w: &mut Watch, h: Outcome, c1: Outcome, c2: Outcome) -> Verdict {
    let outcomes = vec![
        ("h".to_string(), h),
        ("c1".to_string(), c1),
        ("c2".to_string(), c2),
    ];
    let mut v = w.round(&outcomes, &["h".to_string()], &["c1".into(), "c2".into()]);
    assert_eq!(v.len(), 1);
    v.remove(0).1
}

fn quiet(up: f64) -> Outcome {
    ok(&sample(up, 0.2, 0, 5, 10_000 * (up as u64 - 100)))
}

fn missed() -> Outcome {
    Outcome::Missed {
        what: "login".into(),
        after: Duration::from_secs(5),
    }
}

fn refused() -> Outcome {
    Outcome::Failed {
        message: "ssh: connect to host 127.0.0.1 port 2201: Connection refused".into(),
    }
}

#[test]
fn a_quiet_host_is_healthy_and_a_missing_source_is_not_available_not_a_failure() {
    let mut w = baselined();
    let v = round(&mut w, quiet(104.0), quiet(104.0), quiet(104.0));
    assert_eq!(v.health, Health::Healthy, "{v:?}");
    assert!(v.evidence.is_empty());
    let na: Vec<&str> = v.not_available.iter().map(|e| e.signal.as_str()).collect();
    assert_eq!(na, ["units"]);
    assert_eq!(
        v.not_available[0].to_string(),
        "units: not available on this host: systemd does not run here"
    );
}

#[test]
fn a_missed_deadline_is_hung_after_an_answer_and_unreachable_before_any() {
    let mut w = baselined();
    let v = round(&mut w, missed(), quiet(104.0), quiet(104.0));
    assert_eq!(v.health, Health::Hung);
    assert_eq!(v.evidence[0].signal, "reachable");
    assert_eq!(
        v.evidence[0].to_string(),
        "reachable: login gave no answer within 5s (it answered before)"
    );
    // A host never heard from in this run.
    let mut fresh = watch();
    let outcomes = vec![("x".to_string(), missed())];
    let v = fresh.round(&outcomes, &["x".to_string()], &[]);
    assert_eq!(v[0].1.health, Health::Unreachable);
    // A refused connection is unreachable, whatever came before.
    let v = round(&mut w, refused(), quiet(105.0), quiet(105.0));
    assert_eq!(v.health, Health::Unreachable);
    assert!(v.evidence[0].to_string().contains("Connection refused"));
}

#[test]
fn when_every_control_fails_with_the_host_the_controllers_network_is_suspect() {
    let mut w = baselined();
    let v = round(&mut w, missed(), missed(), refused());
    assert_eq!(v.health, Health::Inconclusive, "{v:?}");
    let text = v.evidence[0].to_string();
    assert!(
        text.contains("suspect the controller's own network"),
        "{text}"
    );
    assert!(
        text.contains("c1: login gave no answer within 5s"),
        "{text}"
    );
    assert!(text.contains("c2: ssh: connect"), "{text}");
    // One control still answering: the host itself is hung.
    let v = round(&mut w, missed(), missed(), quiet(105.0));
    assert_eq!(v.health, Health::Hung);
    // A control that never answered in this run is no evidence either way.
    let mut w = watch();
    w.answered("h");
    let outcomes = vec![("h".to_string(), missed()), ("c1".to_string(), missed())];
    let v = w.round(&outcomes, &["h".to_string()], &["c1".to_string()]);
    assert_eq!(v[0].1.health, Health::Hung);
}

fn with_kernel(up: f64, lines: &[&str]) -> Outcome {
    let mut text = sample(up, 0.2, 0, 5, 10_000 * (up as u64 - 100));
    for l in lines {
        text.push_str(&format!("\nkline {}", hx(l)));
    }
    ok(&text)
}

const HUNG: &str = "[  102.500000] INFO: task raid-check:4242 blocked for more than 120 seconds.";
const OOPS: &str = "[  103.700000] BUG: unable to handle page fault for address: 0000000000001000";

#[test]
fn a_kernel_line_only_the_host_shows_fails_it_at_once_with_its_evidence() {
    let mut w = baselined();
    let v = round(
        &mut w,
        with_kernel(104.0, &[HUNG]),
        quiet(104.0),
        quiet(104.0),
    );
    assert_eq!(v.health, Health::Degraded);
    let e = &v.evidence[0];
    assert_eq!(e.signal, "kernel");
    assert_eq!(e.raw.as_deref(), Some(HUNG));
    assert_eq!(e.before.as_deref(), Some("0"));
    assert_eq!(e.after.as_deref(), Some("1 hung task line"));
    assert_eq!(e.control.as_deref(), Some("none on c1, c2"));
    // Written 1.5 s before the probe: the host's clock less that (whole seconds), in UTC.
    assert_eq!(e.at.as_deref(), Some("2025-12-02T12:55:03Z"));
    assert!(e.threshold.as_deref().unwrap().contains("any alert line"));
}

#[test]
fn a_kernel_line_the_controls_show_too_is_inconclusive_and_another_kind_is_not() {
    let mut w = baselined();
    let v = round(
        &mut w,
        with_kernel(104.0, &[HUNG]),
        with_kernel(104.0, &[HUNG]),
        quiet(104.0),
    );
    assert_eq!(v.health, Health::Inconclusive, "{v:?}");
    assert_eq!(v.evidence[0].signal, "kernel");
    assert_eq!(
        v.evidence[0].control.as_deref(),
        Some("the same on c1 (a fleet-wide event?)")
    );
    // An oops of its own beside the fleet-wide line: that one is the host's.
    let v = round(
        &mut w,
        with_kernel(105.0, &[HUNG, OOPS]),
        with_kernel(105.0, &[HUNG]),
        with_kernel(105.0, &[HUNG]),
    );
    assert_eq!(v.health, Health::Degraded);
    assert_eq!(v.evidence.len(), 1);
    assert_eq!(v.evidence[0].raw.as_deref(), Some(OOPS));
}

#[test]
fn a_kernel_line_newer_than_every_control_reading_waits_one_probe_for_the_controls() {
    // Written at uptime 104.6: the controls were read at 104.0 (the same second), the host
    // a moment later. Nothing is decided yet; the next probe of the controls decides.
    const LATE: &str =
        "[  104.600000] INFO: task raid-check:4242 blocked for more than 120 seconds.";
    let mut fleet_wide = baselined();
    let v = round(
        &mut fleet_wide,
        with_kernel(105.0, &[LATE]),
        quiet(104.0),
        quiet(104.0),
    );
    assert_eq!(v.health, Health::Healthy, "{v:?}");
    let v = round(
        &mut fleet_wide,
        with_kernel(106.0, &[LATE]),
        with_kernel(106.0, &[LATE]),
        with_kernel(106.0, &[LATE]),
    );
    assert_eq!(v.health, Health::Inconclusive, "{v:?}");

    let mut own = baselined();
    let v = round(
        &mut own,
        with_kernel(105.0, &[LATE]),
        quiet(104.0),
        quiet(104.0),
    );
    assert_eq!(v.health, Health::Healthy, "{v:?}");
    // Once only: the controls read after it and still without it, it is the host's.
    let v = round(
        &mut own,
        with_kernel(106.0, &[LATE]),
        quiet(104.0),
        quiet(104.0),
    );
    assert_eq!(v.health, Health::Degraded, "{v:?}");
    assert_eq!(v.evidence[0].raw.as_deref(), Some(LATE));
}

#[test]
fn a_kernel_line_one_control_shows_waits_one_probe_for_a_control_read_before_it() {
    // Written at uptime 104.6: c1 was read after it and shows it, c2 was read before it
    // (104.0) and cannot show it yet. The next probe of the controls decides, with both.
    const LATE: &str =
        "[  104.600000] INFO: task raid-check:4242 blocked for more than 120 seconds.";
    let mut w = baselined();
    let v = round(
        &mut w,
        with_kernel(105.0, &[LATE]),
        with_kernel(105.0, &[LATE]),
        quiet(104.0),
    );
    assert_eq!(v.health, Health::Healthy, "{v:?}");
    let v = round(
        &mut w,
        with_kernel(106.0, &[LATE]),
        with_kernel(106.0, &[LATE]),
        with_kernel(106.0, &[LATE]),
    );
    assert_eq!(v.health, Health::Inconclusive, "{v:?}");
    assert_eq!(
        v.evidence[0].control.as_deref(),
        Some("the same on c1, c2 (a fleet-wide event?)")
    );
    // Neither control shows it, one was read after it: still the other's turn first.
    let mut w = baselined();
    let v = round(
        &mut w,
        with_kernel(105.0, &[LATE]),
        quiet(105.0),
        quiet(104.0),
    );
    assert_eq!(v.health, Health::Healthy, "{v:?}");
    let v = round(
        &mut w,
        with_kernel(106.0, &[LATE]),
        quiet(106.0),
        quiet(106.0),
    );
    assert_eq!(v.health, Health::Degraded, "{v:?}");
    assert_eq!(v.evidence[0].control.as_deref(), Some("none on c1, c2"));
}

fn with_units(up: f64, failed: &[&str], restarts: &[(&str, u64)]) -> Outcome {
    let mut text = sample(up, 0.2, 0, 5, 10_000 * (up as u64 - 100)).replace(
        &format!("na units {}", hx("systemd does not run here")),
        "systemd 1",
    );
    for f in failed {
        text.push_str(&format!("\nfailed {f}"));
    }
    for (u, n) in restarts {
        text.push_str(&format!("\nrestarts {u} {n}"));
    }
    ok(&text)
}

#[test]
fn new_failed_units_and_restart_storms_fail_a_host_and_old_ones_do_not() {
    let mut w = watch();
    let base = |up: f64| match with_units(up, &["old.service"], &[("flappy.service", 7)]) {
        Outcome::Report(r) => *r,
        _ => unreachable!(),
    };
    w.set_baseline("h", vec![base(100.0), base(101.0)]);
    w.set_baseline("c1", vec![base(100.0), base(101.0)]);
    let controls = ["c1".to_string()];
    let judge = |w: &mut Watch, h: Outcome, c: Outcome| {
        let o = vec![("h".to_string(), h), ("c1".to_string(), c)];
        w.round(&o, &["h".to_string()], &controls).remove(0).1
    };
    // Failed before the wave, restarted twice more: nothing new.
    let calm = || with_units(102.0, &["old.service"], &[("flappy.service", 9)]);
    assert_eq!(judge(&mut w, calm(), calm()).health, Health::Healthy);
    // raid-agent fails on the host only; flappy restarts 3 more times.
    let v = judge(
        &mut w,
        with_units(
            103.0,
            &["old.service", "raid-agent.service"],
            &[("flappy.service", 10)],
        ),
        calm(),
    );
    assert_eq!(v.health, Health::Degraded);
    let text: Vec<String> = v.evidence.iter().map(|e| e.to_string()).collect();
    assert_eq!(v.evidence.len(), 2, "{text:?}");
    assert!(
        text[0].starts_with(
            "units: 1 failed -> 2 failed; controls: none on c1: raid-agent.service failed"
        ),
        "{text:?}"
    );
    assert!(
        text[1].contains("flappy.service restarted 3 times since the baseline"),
        "{text:?}"
    );
    // The same unit failing on the control: a fleet-wide failure, inconclusive.
    let both = || with_units(104.0, &["old.service", "nfs.mount"], &[]);
    let v = judge(&mut w, both(), both());
    assert_eq!(v.health, Health::Inconclusive, "{v:?}");
}

#[test]
fn an_oom_kill_fails_a_host_unless_the_controls_had_one_too() {
    let mut w = baselined();
    let v = round(
        &mut w,
        ok(&sample(104.0, 0.2, 0, 6, 40_000)),
        quiet(104.0),
        quiet(104.0),
    );
    assert_eq!(v.health, Health::Degraded);
    assert_eq!(v.evidence[0].signal, "oom");
    assert_eq!(v.evidence[0].before.as_deref(), Some("oom_kill 5"));
    assert_eq!(v.evidence[0].after.as_deref(), Some("oom_kill 6"));
    let mut w = baselined();
    let v = round(
        &mut w,
        ok(&sample(104.0, 0.2, 0, 6, 40_000)),
        ok(&sample(104.0, 0.2, 0, 7, 40_000)),
        quiet(104.0),
    );
    assert_eq!(v.health, Health::Inconclusive);
}

#[test]
fn a_failed_run_fails_at_once_with_its_stderr_and_times_in_utc() {
    let mut w = baselined();
    let text = format!(
        "{}\nrun 1764680101 1764680102 0\nrun 1764680160 1764680163 3\nrunerr 1764680160 1764680163 3 {}",
        sample(104.0, 0.2, 0, 5, 40_000),
        hx("checking controller 0\nraid-check: controller 0 not responding\n")
    );
    let v = round(&mut w, ok(&text), quiet(104.0), quiet(104.0));
    assert_eq!(v.health, Health::Degraded);
    let e = &v.evidence[0];
    assert_eq!(e.signal, "script");
    assert_eq!(e.raw.as_deref(), Some("a run exited 3 after 3s"));
    assert_eq!(e.at.as_deref(), Some("2025-12-02T12:56:00Z"));
    assert_eq!(
        e.to_string(),
        "script: a run exited 3 after 3s, at 2025-12-02T12:56:00Z (threshold every run exits 0 \
         within the script's timeout); stderr: checking controller 0 | raid-check: controller 0 \
         not responding"
    );
    assert_eq!(
        e.stderr.as_deref(),
        Some("checking controller 0\nraid-check: controller 0 not responding")
    );
    // Killed by its timeout.
    let text = format!(
        "{}\nrun 1764680160 1764680280 124",
        sample(105.0, 0.2, 0, 5, 50_000)
    );
    let v = round(&mut w, ok(&text), quiet(105.0), quiet(105.0));
    assert!(
        v.evidence[0]
            .to_string()
            .contains("a run was killed by its timeout after 120s (exit 124)"),
        "{v:?}"
    );
}

#[test]
fn load_must_rise_against_its_baseline_and_the_controls_for_several_probes() {
    let mut w = baselined();
    let strikes = Thresholds::default().strikes;
    // 2 CPUs: load 4.0 is 2.0 per CPU. The controls stay quiet.
    for i in 0..strikes - 1 {
        let up = 104.0 + f64::from(i);
        let v = round(
            &mut w,
            ok(&sample(up, 4.0, 0, 5, 10_000 * (up as u64 - 100))),
            quiet(up),
            quiet(up),
        );
        assert_eq!(v.health, Health::Healthy, "probe {i}: {v:?}");
    }
    let up = 104.0 + f64::from(strikes - 1);
    let v = round(
        &mut w,
        ok(&sample(up, 4.0, 0, 5, 10_000 * (up as u64 - 100))),
        quiet(up),
        quiet(up),
    );
    assert_eq!(v.health, Health::Degraded);
    let e = &v.evidence[0];
    assert_eq!(e.signal, "load");
    assert_eq!(e.before.as_deref(), Some("0.10"));
    assert_eq!(e.after.as_deref(), Some("2.00 load per CPU"));
    assert_eq!(
        e.control.as_deref(),
        Some("median rise +0.00 (c1 +0.00, c2 +0.00)")
    );
    // A quiet probe breaks the streak.
    let v = round(&mut w, quiet(110.0), quiet(110.0), quiet(110.0));
    assert_eq!(v.health, Health::Healthy);
}

#[test]
fn a_fleet_wide_rise_is_inconclusive_and_a_rise_below_the_floor_is_nothing() {
    let mut w = baselined();
    let strikes = Thresholds::default().strikes;
    let busy = |up: f64| ok(&sample(up, 3.8, 0, 5, 10_000 * (up as u64 - 100)));
    let mut last = None;
    for i in 0..strikes {
        let up = 104.0 + f64::from(i);
        last = Some(round(&mut w, busy(up), busy(up), busy(up)));
    }
    let v = last.unwrap();
    assert_eq!(v.health, Health::Inconclusive, "{v:?}");
    assert!(v.evidence[0]
        .control
        .as_deref()
        .unwrap()
        .starts_with("median rise +1.80"));
    // 0.8 per CPU: risen, but below the floor of 1.0.
    let mut w = baselined();
    for i in 0..strikes + 2 {
        let up = 104.0 + f64::from(i);
        let v = round(
            &mut w,
            ok(&sample(up, 1.6, 0, 5, 10_000 * (up as u64 - 100))),
            quiet(up),
            quiet(up),
        );
        assert_eq!(v.health, Health::Healthy);
    }
}

#[test]
fn without_controls_the_baseline_alone_decides_and_says_so() {
    let mut w = baselined();
    let strikes = Thresholds::default().strikes;
    let mut v = Verdict::healthy();
    for i in 0..strikes {
        let up = 104.0 + f64::from(i);
        let o = vec![(
            "h".to_string(),
            ok(&sample(up, 0.2, 9, 5, 10_000 * (up as u64 - 100))),
        )];
        v = w.round(&o, &["h".to_string()], &[]).remove(0).1;
    }
    assert_eq!(v.health, Health::Degraded);
    assert_eq!(v.evidence[0].signal, "blocked");
    assert_eq!(
        v.evidence[0].control.as_deref(),
        Some("no control host to compare with")
    );
}

#[test]
fn pressure_is_the_share_of_time_stalled_between_two_probes() {
    let mut w = baselined();
    let strikes = Thresholds::default().strikes;
    // The baseline stalled on I/O 1 % of the time (10 ms a second); now 60 % (600 ms a
    // second) on the host, while the controls stay at 1 %.
    let mut io = 20_000;
    let mut v = Verdict::healthy();
    for i in 0..strikes {
        let up = 104.0 + f64::from(i);
        io += 600_000;
        v = round(&mut w, ok(&sample(up, 0.2, 0, 5, io)), quiet(up), quiet(up));
    }
    assert_eq!(v.health, Health::Degraded, "{v:?}");
    let e = &v.evidence[0];
    assert_eq!(e.signal, "pressure.io");
    assert_eq!(e.before.as_deref(), Some("1.00"));
    assert_eq!(
        e.after.as_deref(),
        Some("60.00 % of the time stalled on I/O")
    );
}

#[test]
fn a_custom_check_must_fail_twice_in_a_row_and_a_lost_result_counts() {
    let mut w = baselined();
    let with_check = |up: f64, exit: i32, reported: bool| {
        let mut r = rep(&sample(up, 0.2, 0, 5, 10_000 * (up as u64 - 100)));
        r.checks.push(CheckResult {
            name: "pg".into(),
            exit,
            output: "no response".into(),
            reported,
        });
        Outcome::Report(Box::new(r))
    };
    assert_eq!(
        round(
            &mut w,
            with_check(104.0, 1, true),
            quiet(104.0),
            quiet(104.0)
        )
        .health,
        Health::Healthy
    );
    assert_eq!(
        round(
            &mut w,
            with_check(105.0, 0, true),
            quiet(105.0),
            quiet(105.0)
        )
        .health,
        Health::Healthy
    );
    assert_eq!(
        round(
            &mut w,
            with_check(106.0, -1, false),
            quiet(106.0),
            quiet(106.0)
        )
        .health,
        Health::Healthy
    );
    let v = round(
        &mut w,
        with_check(107.0, 2, true),
        quiet(107.0),
        quiet(107.0),
    );
    assert_eq!(v.health, Health::Degraded);
    assert_eq!(v.evidence[0].signal, "check pg");
    assert!(v.evidence[0]
        .to_string()
        .contains("exit 2, 2 probes in a row: no response"));
}

#[test]
fn without_a_baseline_the_first_probes_make_one() {
    // After a resume: no baseline; the kernel line in the first probe is before the
    // cursor it takes, and judging starts once two probes are in.
    let mut w = watch();
    w.answered("h");
    assert_eq!(w.cursor("h"), None);
    let one = |w: &mut Watch, o: Outcome| {
        w.round(&[("h".to_string(), o)], &["h".to_string()], &[])
            .remove(0)
            .1
    };
    assert_eq!(one(&mut w, with_kernel(100.0, &[])).health, Health::Healthy);
    assert_eq!(
        w.cursor("h").as_deref(),
        Some("6c1d0d0e-0b7a-4d43-9a43-5a3c4f0e1b2c:99.000000")
    );
    assert_eq!(one(&mut w, with_kernel(101.0, &[])).health, Health::Healthy);
    assert_eq!(
        one(&mut w, with_kernel(102.0, &[OOPS])).health,
        Health::Degraded
    );
}

#[test]
fn evidence_reads_as_one_line_per_piece() {
    let e = Evidence::new("kernel")
        .change("0", "1 oops line", "any alert line after the wave's cursor")
        .control("none on c1")
        .raw(OOPS)
        .at(Some(1_764_680_003));
    assert_eq!(
        e.to_string(),
        format!(
            "kernel: 0 -> 1 oops line; controls: none on c1: {OOPS}, at 2025-12-02T12:53:23Z \
             (threshold any alert line after the wave's cursor)"
        )
    );
}
