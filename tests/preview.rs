//! `plan --probe` on real hosts, one in each situation (nothing; a wavectl version; the
//! same script by hand; a file wavectl did not install; a packaged file, a path another
//! rollout owns, a purge fence newer than now, a parent others may write, an install cut
//! short and a link into a protected path, each of which an install would refuse): it
//! reports each, and every host's files and mtimes stay as they were — compared from
//! outside, through the hosts' overlay upper dirs (what a host changes lands there).

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde_json::Value;
use wavectl::lab::LabHost;

use common::*;

const NAME: &str = "raidcheck";
const INSTALL: &str = "/usr/local/sbin/raidcheck";
const SCRIPT: &str = "#!/bin/sh\necho raid ok\n";

fn spec() -> String {
    format!(
        r#"name = "{NAME}"
inventory = "inventory.toml"
[script]
source = "script.sh"
install_path = "{INSTALL}"
timeout = "10s"
[activation]
kind = "cron"
schedule = "*/5 * * * *"
run_on_install = false
[waves]
sizes = ["100%"]
bake = "1s"
min_runs = 0
[health]
interval = "2s"
probe_timeout = "2s"
builtin = ["reachable"]
"#
    )
}

/// Every file under `root` (recursively, links not followed): type, mode, owner, size,
/// mtime and ctime (ns), a link's target, a file's bytes.
fn walk(root: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(m) = std::fs::symlink_metadata(root) else {
        out.insert(root.display().to_string(), "absent".into());
        return;
    };
    let mut facts = format!(
        "{:o} {}:{} {} {}.{} {}.{}",
        m.mode(),
        m.uid(),
        m.gid(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    );
    if m.file_type().is_symlink() {
        facts += &format!(" -> {}", std::fs::read_link(root).unwrap().display());
    } else if m.is_file() {
        facts += &format!(" {}", sha256_hex(&std::fs::read(root).unwrap()));
    } else if m.is_dir() {
        for e in std::fs::read_dir(root).unwrap().flatten() {
            walk(&e.path(), out);
        }
    }
    out.insert(root.display().to_string(), facts);
}

/// What a preview must leave as it is on a host: its state, the install path and its
/// parent, the activations — as its overlay upper dirs hold them.
fn upper_facts(h: &LabHost) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for p in [
        "var/lib/wavectl",
        "usr/local/sbin",
        "etc/cron.d",
        "etc/systemd/system",
    ] {
        walk(&h.dir().join("upper").join(p), &mut out);
    }
    out
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

fn exec(h: &LabHost, cmd: &str) {
    let o = h.exec(cmd).unwrap();
    assert!(o.status.success(), "{}: {cmd}: {o:?}", h.name());
}

/// The `host_holds` events of a `--json plan --probe`, by host, and its last line.
fn holds(stdout: &str) -> (BTreeMap<String, Value>, Value) {
    let mut by_host = BTreeMap::new();
    let mut last = Value::Null;
    for l in stdout.lines() {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        if v["event"] == "host_holds" {
            by_host.insert(v["host"].as_str().unwrap().to_string(), v.clone());
        }
        last = v;
    }
    (by_host, last)
}

#[test]
fn plan_probe_reports_what_each_host_holds_and_changes_nothing() {
    let w = Workdir::new(fleet(10), SCRIPT, &spec());
    let f = &w.fleet;
    // h02: a confirmed wavectl version of this very script.
    let r = w.wavectl(&["--json", "apply", "rollout.toml", "--yes", "--limit", "h02"]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let run = serde_json::from_str::<Value>(r.stdout.lines().next().unwrap()).unwrap()["run"]
        .as_str()
        .unwrap()
        .to_string();
    // h03: the same script by hand. h04: a vendor's file. h05: a packaged one.
    exec(
        f.host("h03"),
        &format!("printf '%s' '{SCRIPT}' > {INSTALL} && chmod 0700 {INSTALL}"),
    );
    exec(
        f.host("h04"),
        &format!("printf vendor > {INSTALL} && chown 1:2 {INSTALL}"),
    );
    exec(
        f.host("h05"),
        &format!(
            "printf vendor > {INSTALL} && \
             printf 'Package: wv-vendor\\nStatus: install ok installed\\nPriority: optional\\nSection: misc\\nMaintainer: nobody <nobody@example.com>\\nArchitecture: all\\nVersion: 1.0\\nDescription: a vendor tool\\n\\n' >> /var/lib/dpkg/status && \
             printf '/.\\n/usr\\n/usr/local\\n/usr/local/sbin\\n{INSTALL}\\n' > /var/lib/dpkg/info/wv-vendor.list"
        ),
    );
    // h06: another rollout's state records the path. h07: a purge of NAME newer than
    // now. h08: the parent writable by others. h09: an install of NAME cut short.
    // h10: a link into a protected path.
    exec(
        f.host("h06"),
        &format!("mkdir -p -m 0700 /var/lib/wavectl/other && printf '%s' {INSTALL} > /var/lib/wavectl/other/install_path"),
    );
    exec(
        f.host("h07"),
        &format!("mkdir -p /var/lib/wavectl/.fences && echo 20990101T000000Z-{NAME}-0000 > /var/lib/wavectl/.fences/{NAME}"),
    );
    exec(f.host("h08"), "chmod o+w /usr/local/sbin");
    exec(
        f.host("h09"),
        &format!("mkdir -p -m 0700 /var/lib/wavectl/{NAME} && echo 20200101T000000Z-{NAME}-cafe > /var/lib/wavectl/{NAME}/txn"),
    );
    exec(f.host("h10"), &format!("ln -s /etc/shadow {INSTALL}"));
    let before: Vec<_> = f.hosts().iter().map(upper_facts).collect();

    let r = w.wavectl(&["--json", "plan", "rollout.toml", "--probe"]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let (by_host, last) = holds(&r.stdout);
    assert_eq!(by_host.len(), 10, "{}", r.stdout);
    let word = |h: &str| by_host[h]["holds"].as_str().unwrap().to_string();
    let reason = |h: &str| by_host[h]["reason"].as_str().unwrap_or("").to_string();
    assert_eq!(word("h01"), "nothing");
    assert_eq!(by_host["h01"]["install_path"], INSTALL);
    assert_eq!(word("h02"), "version");
    assert_eq!(by_host["h02"]["run"], run.as_str());
    assert_eq!(by_host["h02"]["state"], "confirmed");
    assert_eq!(by_host["h02"]["same"], true);
    assert_eq!(by_host["h02"]["sha256"], sha256_hex(SCRIPT.as_bytes()));
    assert_eq!(word("h03"), "same-script");
    assert_eq!(by_host["h03"]["mode"], "700");
    assert_eq!(word("h04"), "foreign");
    assert_eq!(by_host["h04"]["sha256"], sha256_hex(b"vendor"));
    assert_eq!(by_host["h04"]["owner"], "daemon:bin");
    assert!(
        by_host["h04"].get("package").is_none(),
        "{}",
        by_host["h04"]
    );
    assert_eq!(word("h05"), "refused");
    assert_eq!(by_host["h05"]["package"], "wv-vendor");
    assert!(
        reason("h05").contains("belongs to package wv-vendor: pass --force"),
        "{}",
        reason("h05")
    );
    for (h, why) in [
        ("h06", "is owned by rollout other here"),
        ("h07", "was purged here by run 20990101T000000Z-raidcheck-0000"),
        ("h08", "/usr/local/sbin (above install_path /usr/local/sbin/raidcheck) is not owned by root or is writable by group or others"),
        ("h09", "run 20200101T000000Z-raidcheck-cafe's install was cut short here"),
        ("h10", "leads to /etc/shadow, a path wavectl protects"),
    ] {
        assert_eq!(word(h), "refused", "{h}: {}", by_host[h]);
        assert!(reason(h).contains(why), "{h}: {}", reason(h));
    }
    assert_eq!(by_host["h10"]["link"], "/etc/shadow");
    assert_eq!(last["event"], "probe_done");
    assert_eq!(
        (last["hosts"].as_u64(), last["exit_code"].as_i64()),
        (Some(10), Some(0))
    );
    assert_eq!(last["holds"]["refused"], 6);

    // Nothing changed on any host, and nothing was made: no state directory, no lock.
    for (h, b) in f.hosts().iter().zip(&before) {
        assert_eq!(&upper_facts(h), b, "{} changed", h.name());
    }
    assert!(!f.host("h01").path("/run/wavectl.lock").exists());
    assert!(!f.host("h01").path("/var/lib/wavectl").exists());

    // The human display says the same; a host that does not answer is not asked, and
    // the preview is incomplete (exit 4).
    f.host("h01").kill().unwrap();
    let r = w.wavectl(&["plan", "rollout.toml", "--probe"]);
    assert_eq!(r.code, Some(4), "{}\n{}", r.stdout, r.stderr);
    for line in [
        "h01: not asked: ",
        &format!("h02: run {run}'s version (confirmed), the same script"),
        "h03: the same script already, not installed by wavectl: sha256 ",
        "h04: a file wavectl did not install: sha256 ",
        "h05: an install would be refused: /usr/local/sbin/raidcheck belongs to package wv-vendor",
        "probed 10 hosts: ",
    ] {
        assert!(r.stdout.contains(line), "{line:?} not in:\n{}", r.stdout);
    }
    for (h, b) in f.hosts().iter().zip(&before).skip(1) {
        assert_eq!(&upper_facts(h), b, "{} changed", h.name());
    }
    w.assert_no_ssh_left();
}
