//! The operator's day, end to end on a real sshd fleet reached through an Ansible
//! dynamic inventory (a program run with `--list`): a run that rolls back, with
//! `--metrics-file` checked by `promtool` and its values asserted, a `[notify]` hook
//! that records one event, fails on another and hangs on the last (the run still ends,
//! and says so); then `--limit @failed:RUN` / `@untouched:RUN` / `@pending:RUN` on
//! plan, apply and purge, and a percentage concurrency shown as what it resolves to.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;

const NAME: &str = "raid-health";
const INSTALL: &str = "/usr/local/sbin/raid-health";

/// h01..h03 as an Ansible dynamic inventory: the names are the fleet's ssh_config aliases.
const INVENTORY: &str = r#"#!/bin/sh
# An Ansible dynamic inventory of the lab fleet.
case "$1" in
--list) cat <<'JSON'
{
    "fleet": {"hosts": ["h01", "h02", "h03"], "vars": {"ansible_user": "root", "dc": "lab"}},
    "db": {"hosts": ["h02"]},
    "_meta": {"hostvars": {"h02": {"role": "db"}}}
}
JSON
;;
*) echo '{}' ;;
esac
"#;

/// Records `started` and `unhealthy`, fails on `wave`, hangs on `rolled-back` (with a
/// child of its own, as a stuck `curl` would be).
const HOOK: &str = r#"#!/bin/sh
case "$WAVECTL_EVENT" in
wave) echo "no route to the webhook" >&2; exit 7 ;;
rolled-back) cat > got-rolled-back.json; sh -c 'sleep 600; :' "$PWD/hung-hook" & wait ;;
*) cat > "got-$WAVECTL_EVENT.json"; env | grep '^WAVECTL_' | sort > "got-$WAVECTL_EVENT.env" ;;
esac
"#;

fn spec() -> String {
    format!(
        r#"name = "{NAME}"
inventory = "inventory.sh"

[script]
source = "script.sh"
install_path = "{INSTALL}"
timeout = "20s"

[activation]
kind = "cron"
schedule = "*/5 * * * *"

[targets]
select = ["group=fleet"]

[waves]
sizes = [1]
concurrency = "50%"
bake = "1s"
min_runs = 1

[health]
interval = "2s"
probe_timeout = "2s"

[notify]
command = "./hook.sh"
events = ["started", "wave", "unhealthy", "rolled-back"]
timeout = "2s"
"#
    )
}

fn show(r: &Run) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        r.code, r.stdout, r.stderr
    )
}

fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
}

/// `promtool check metrics` on the file: it must pass (promtool is installed by
/// `.ci/run`: Debian's `prometheus` package). Returns the file's samples by series.
fn promtool_checked(path: &Path) -> Vec<(String, f64)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is needed (Debian's `prometheus` package; .ci/run installs it)");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

/// The value of the one sample whose series starts with `name{` and has all `labels`.
fn sample(samples: &[(String, f64)], name: &str, labels: &[&str]) -> Option<f64> {
    let found: Vec<f64> = samples
        .iter()
        .filter(|(s, _)| s.starts_with(&format!("{name}{{")))
        .filter(|(s, _)| labels.iter().all(|l| s.contains(l)))
        .map(|(_, v)| *v)
        .collect();
    assert!(found.len() <= 1, "{name} {labels:?}: {found:?}");
    found.first().copied()
}

fn installed(s: &Workdir) -> Vec<String> {
    s.fleet
        .hosts()
        .iter()
        .filter(|h| h.path(INSTALL).exists())
        .map(|h| h.name().to_string())
        .collect()
}

#[test]
fn a_rolled_back_run_its_metrics_hooks_and_a_retry_of_what_failed() {
    // The script fails on h02 only, in wave 1 (a dynamic inventory's hosts come in the
    // order first listed, its groups by name: `db` before `fleet`), so h01 and h03 are
    // never reached.
    let script = "#!/bin/sh\n[ \"$(hostname)\" != h02 ] || { echo 'raid: controller 0 degraded' >&2; exit 1; }\necho ok\n";
    let s = Workdir::new(fleet(3), script, &spec());
    executable(&s.path().join("inventory.sh"), INVENTORY);
    executable(&s.path().join("hook.sh"), HOOK);
    std::fs::create_dir(s.path().join("metrics")).unwrap();
    let prom = s.path().join("metrics/wavectl.prom");

    // plan: the percentage shown as the number it resolves to (50% of 3 targets).
    let r = s.wavectl(&["plan", "rollout.toml"]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert!(
        r.stdout
            .contains("at most 1 host at once: waves.concurrency = \"50%\" of 3 targets"),
        "{}",
        show(&r)
    );
    assert!(r.stdout.contains("in 3 waves"), "{}", show(&r));

    let r = s.wavectl(&[
        "apply",
        "rollout.toml",
        "--yes",
        "--metrics-file",
        prom.to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(1), "{}", show(&r));
    let run = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("run ")?.split(':').next())
        .unwrap()
        .to_string();
    assert!(
        r.stdout.contains("unhealthy:   h02 (degraded)"),
        "{}",
        show(&r)
    );
    assert!(installed(&s).is_empty(), "{:?}", installed(&s));

    // The hook: it recorded `started` and `unhealthy` (stdin: the --json event; env:
    // the run), failed on each `wave` and hung on `rolled-back`, and the run said so and
    // ended all the same, the hook's whole process group killed.
    let started: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.path().join("got-started.json")).unwrap()).unwrap();
    assert_eq!(started["event"], "run_started", "{started}");
    assert_eq!(started["run"], run.as_str());
    assert_eq!(started["rollout"], NAME);
    assert_eq!(started["hosts"], 3);
    assert_eq!(
        std::fs::read_to_string(s.path().join("got-started.env")).unwrap(),
        format!("WAVECTL_EVENT=started\nWAVECTL_ROLLOUT={NAME}\nWAVECTL_RUN={run}\n")
    );
    let bad: serde_json::Value = serde_json::from_slice(
        &std::fs::read(s.path().join("got-unhealthy.json"))
            .unwrap_or_else(|e| panic!("{e}: {}", show(&r))),
    )
    .unwrap();
    assert_eq!(bad["event"], "verdict", "{bad}");
    assert_eq!(bad["host"], "h02");
    assert_eq!(bad["verdict"]["evidence"][0]["signal"], "script", "{bad}");
    let end: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.path().join("got-rolled-back.json")).unwrap())
            .unwrap();
    assert_eq!(end["event"], "summary", "{end}");
    assert_eq!(end["status"], "rolled-back");
    assert_eq!(end["exit_code"], 1);
    assert!(
        r.stdout.contains(
            "notify: the hook for `wave` failed (exit code 7); its stderr: no route to the \
             webhook; the run is not affected"
        ),
        "{}",
        show(&r)
    );
    assert!(
        r.stdout.contains(
            "notify: the hook for `rolled-back` timed out after 2s: killed with its process \
             group; the run is not affected"
        ),
        "{}",
        show(&r)
    );
    let hung = s.path().join("hung-hook").display().to_string();
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&hung))
        .collect();
    assert!(
        left.is_empty(),
        "the hook's processes outlived it: {left:?}"
    );

    // The metrics file, as node_exporter would read it.
    let samples = promtool_checked(&prom);
    let id = format!("run=\"{run}\"");
    for (state, n) in [
        ("clean", 1.0),
        ("untouched", 2.0),
        ("installed", 0.0),
        ("pending", 0.0),
    ] {
        assert_eq!(
            sample(
                &samples,
                "wavectl_hosts",
                &[&id, &format!("state=\"{state}\"")]
            ),
            Some(n),
            "{state}: {samples:?}"
        );
    }
    assert_eq!(
        sample(
            &samples,
            "wavectl_verdicts_total",
            &[&id, "signal=\"script\""]
        ),
        Some(1.0)
    );
    assert_eq!(sample(&samples, "wavectl_run_exit_code", &[&id]), Some(1.0));
    assert_eq!(
        sample(
            &samples,
            "wavectl_run_info",
            &[&id, "kind=\"apply\"", "status=\"rolled-back\""]
        ),
        Some(1.0)
    );
    let start = sample(&samples, "wavectl_run_start_timestamp_seconds", &[&id]).unwrap();
    let end = sample(&samples, "wavectl_run_end_timestamp_seconds", &[&id]).unwrap();
    assert!(start > 1.7e9 && end >= start, "{start} {end}");

    // Retry what failed: the hosts of that run in that state, by a prefix of its id.
    let prefix = &run[..run.len() - 2];
    let r = s.wavectl(&[
        "plan",
        "rollout.toml",
        "--limit",
        &format!("@failed:{prefix}"),
    ]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert!(r.stdout.contains("wave 1 (1 host):"), "{}", show(&r));
    assert!(
        r.stdout.contains("h02") && !r.stdout.contains("h01") && !r.stdout.contains("h03"),
        "{}",
        show(&r)
    );
    let r = s.wavectl(&[
        "plan",
        "rollout.toml",
        "--limit",
        &format!("fleet:&@untouched:{run}"),
    ]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert!(
        r.stdout.contains("h01") && !r.stdout.contains("h02") && r.stdout.contains("h03"),
        "{}",
        show(&r)
    );
    for (limit, error) in [
        (
            format!("@pending:{run}"),
            format!(
                "error: --limit `@pending:{run}`: the term `@pending:{run}`: run {run} has no \
                 pending hosts\n  help: `wavectl status {run}` shows the state of each of its hosts"
            ),
        ),
        (
            "@failed:1999".to_string(),
            "error: --limit `@failed:1999`: no run `1999` in the state directory; `wavectl \
             status` lists the runs"
                .to_string(),
        ),
    ] {
        let r = s.wavectl(&["apply", "rollout.toml", "--yes", "--limit", &limit]);
        assert_eq!(r.code, Some(2), "{}", show(&r));
        assert_eq!(
            r.stderr.lines().next(),
            error.lines().next(),
            "{}",
            show(&r)
        );
    }
    assert!(installed(&s).is_empty(), "a refused limit touched a host");

    // The fixed script, to the failed host only.
    std::fs::write(s.path().join("script.sh"), "#!/bin/sh\necho ok\n").unwrap();
    let r = s.wavectl(&[
        "apply",
        "rollout.toml",
        "--yes",
        "--limit",
        &format!("@failed:{run}"),
    ]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert_eq!(installed(&s), ["h02"]);

    // purge through the dynamic inventory, with its own metrics.
    let purged = s.path().join("metrics/purge.prom");
    let r = s.wavectl(&[
        "purge",
        NAME,
        "--inventory",
        "inventory.sh",
        "--limit",
        "role=db",
        "--yes",
        "--metrics-file",
        purged.to_str().unwrap(),
    ]);
    assert_eq!(r.code, Some(0), "{}", show(&r));
    assert!(installed(&s).is_empty(), "{:?}", installed(&s));
    let samples = promtool_checked(&purged);
    assert_eq!(
        sample(&samples, "wavectl_hosts", &["kind=\"purge\""]),
        None,
        "kind is a label of wavectl_run_info only"
    );
    assert_eq!(
        sample(&samples, "wavectl_hosts", &["state=\"clean\""]),
        Some(1.0)
    );
    assert_eq!(sample(&samples, "wavectl_run_exit_code", &[]), Some(0.0));
    assert_eq!(
        sample(
            &samples,
            "wavectl_run_info",
            &["kind=\"purge\"", "status=\"purged\""]
        ),
        Some(1.0)
    );
    s.assert_no_ssh_left();
}

/// One HTTP request to `listener`, answered 200: its head and its body.
fn serve_one(listener: std::net::TcpListener) -> std::thread::JoinHandle<(String, String)> {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = conn.read(&mut chunk).unwrap();
            assert!(
                n > 0,
                "the connection closed before the request's head ended"
            );
            buf.extend_from_slice(&chunk[..n]);
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap())
            })
            .expect("a Content-Length");
        while buf.len() < head_end + length {
            let n = conn.read(&mut chunk).unwrap();
            assert!(n > 0, "the connection closed before the body ended");
            buf.extend_from_slice(&chunk[..n]);
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .unwrap();
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).into_owned();
        (head, body)
    })
}

/// Run an example hook from `examples/notify/` as wavectl would: `/bin/sh -c`, the event
/// on stdin, the run in the environment, `url_var` pointing at a local listener.
fn example_hook(script: &str, url_var: &str, event: &str, kind: &str) -> (String, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let server = serve_one(listener);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/notify")
        .join(script);
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(path.to_str().unwrap())
        .env(url_var, &url)
        .env("no_proxy", "127.0.0.1")
        .env("NO_PROXY", "127.0.0.1")
        .env("WAVECTL_RUN", "20261202T144507Z-raid-health-83fa")
        .env("WAVECTL_ROLLOUT", "raid-health")
        .env("WAVECTL_EVENT", kind)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), event.as_bytes()).unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.join().unwrap()
}

#[test]
fn the_example_hooks_post_the_event_to_a_webhook() {
    let event = r#"{"at":"2026-12-02T14:45:15.310Z","event":"summary","exit_code":1,"outcome":"rolled back: 1 host unhealthy, more than max_unhealthy = 0","run":"20261202T144507Z-raid-health-83fa","status":"rolled-back"}"#;
    // webhook.sh: the event as it is, and its kind in a header.
    let (head, body) = example_hook(
        "webhook.sh",
        "WAVECTL_WEBHOOK_URL",
        &format!("{event}\n"),
        "rolled-back",
    );
    assert!(head.starts_with("POST /hook HTTP/1.1\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: application/json\r\n"),
        "{head}"
    );
    assert!(head.contains("X-Wavectl-Event: rolled-back\r\n"), "{head}");
    assert_eq!(body, format!("{event}\n"));
    // slack.sh: Slack's {"text": ...}, saying what happened.
    let (_, body) = example_hook("slack.sh", "WAVECTL_SLACK_URL", event, "rolled-back");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"text": "wavectl: rollout *raid-health*, run `20261202T144507Z-raid-health-83fa`: rolled-back — rolled back: 1 host unhealthy, more than max_unhealthy = 0"})
    );
    let verdict = r#"{"event":"verdict","host":"h02","verdict":{"health":"hung","evidence":[]}}"#;
    let (_, body) = example_hook("slack.sh", "WAVECTL_SLACK_URL", verdict, "unhealthy");
    assert!(body.contains(": unhealthy — h02 is hung\""), "{body}");
}

#[test]
fn a_failing_dynamic_inventory_is_exit_2_naming_it_with_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rollout.toml"), spec()).unwrap();
    std::fs::write(dir.path().join("script.sh"), "#!/bin/sh\necho ok\n").unwrap();
    let state = dir.path().join("state");
    let wavectl = |args: &[&str]| {
        let mut all = vec!["--state-dir", state.to_str().unwrap()];
        all.extend_from_slice(args);
        run(dir.path(), all, &[])
    };
    for (program, first, second) in [
        (
            "#!/bin/sh\necho 'cannot reach the CMDB' >&2\nexit 3\n",
            "error: inventory.sh: the inventory program `inventory.sh --list` exited with code 3; its stderr:",
            "    cannot reach the CMDB",
        ),
        (
            "#!/bin/sh\necho '{\"web\": [\"h1\",]}'\necho 'stale cache' >&2\n",
            "error: inventory.sh: the output of `inventory.sh --list` is not JSON: trailing comma at line 1 column 15; its stderr:",
            "    stale cache",
        ),
    ] {
        executable(&dir.path().join("inventory.sh"), program);
        for cmd in [&["check", "rollout.toml"][..], &["apply", "rollout.toml", "--yes"]] {
            let r = wavectl(cmd);
            assert_eq!(r.code, Some(2), "{cmd:?}: {}", show(&r));
            let mut lines = r.stderr.lines();
            assert_eq!(lines.next(), Some(first), "{cmd:?}: {}", show(&r));
            assert_eq!(lines.next(), Some(second), "{cmd:?}: {}", show(&r));
            assert!(!state.join("runs").exists(), "{cmd:?}: a run began");
        }
    }
}
