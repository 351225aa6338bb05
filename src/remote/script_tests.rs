//! The embedded host scripts themselves: the fixed shape of a command line, compaction,
//! `shellcheck` and `sh -n` on every script as a host runs it, and the shell's own
//! readings against the commands (or the parser) they stand in for.

use super::*;

#[test]
fn formats_seconds_for_gnu_timeout() {
    assert_eq!(secs(Duration::from_secs(120)), "120s");
    assert_eq!(secs(Duration::from_millis(2500)), "2.5s");
    assert_eq!(secs(Duration::from_millis(1250)), "1.25s");
    assert_eq!(secs(Duration::from_millis(7)), "0.007s");
    assert_eq!(secs(Duration::ZERO), "0.001s");
}

/// Every script a host runs: its name and its parts after `lib.sh` (the install's
/// library arrives inside the wrapper it carries, the same text).
fn assemblies() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut v = Vec::new();
    v.extend(install::assemblies());
    v.extend(host_probe::assemblies());
    v.extend(remove::assemblies());
    v.extend(settle::assemblies());
    v.extend(preview::assemblies());
    v.extend(purge_path::assemblies());
    v
}

/// Every fragment of every assembly, each once, with `lib.sh` first.
fn all_scripts() -> Vec<&'static str> {
    let mut v = vec![LIB_SH];
    for (_, parts) in assemblies() {
        for p in parts {
            if !v.contains(&p) {
                v.push(p);
            }
        }
    }
    v
}

/// Whether a shell text is inside a quoted string at the end of each line.
fn open_quote_after_each_line(script: &str) -> Vec<bool> {
    let mut q = Quotes::default();
    script
        .lines()
        .map(|line| {
            q.feed(line);
            q.open()
        })
        .collect()
}

/// The `become` line, run by a real shell through a real sudo (the tests run as
/// root), hands every hostile argument to the script byte for byte.
#[test]
fn become_line_round_trips_through_sudo() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("pwned");
    let m = marker.display();
    let args = [
        "it's".to_string(),
        format!("$(touch {m})"),
        format!("`touch {m}`; touch {m}"),
        "-n".into(),
        "--".into(),
        "a\nb\n".into(),
        String::new(),
    ];
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let c = command(
        "x",
        "printf '%s\\0' \"$@\"",
        &refs,
        Duration::from_secs(5),
        Duration::from_secs(1),
        None,
    );
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(c.line_as(true).as_ref())
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "{} (needs sudo: apt-get install sudo, and root)",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: String = args.iter().map(|a| format!("{a}\0")).collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    assert!(!marker.exists());
}

#[test]
fn compaction_never_drops_a_line_inside_a_string() {
    for script in all_scripts() {
        let name = script.lines().next().unwrap_or("");
        let open = open_quote_after_each_line(script);
        let lines: Vec<&str> = script.lines().collect();
        for (i, line) in lines.iter().enumerate().skip(1) {
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                assert!(
                    !open[i - 1],
                    "{name}:{}: dropped inside a string: {line:?}",
                    i + 1
                );
            }
        }
        assert!(
            !open.last().copied().unwrap_or(false),
            "{name}: ends in a string"
        );
    }
}

/// `shellcheck -s sh` finds nothing in any script a host runs, checked as it runs:
/// `lib.sh` and the fragments after it joined (so a name one fragment sets and another
/// reads is checked too). Set aside: SC2034 and SC2317 (a library variable or
/// function this script leaves unused) and SC2015 (`A && B || C`, meant throughout).
/// Every `.sh` file here is in some assembly.
#[test]
fn every_host_script_as_it_runs_is_shellcheck_clean() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/remote/scripts");
    let used = all_scripts();
    let mut files = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "sh") {
            files += 1;
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(
                used.contains(&text.as_str()),
                "{} is in no assembly",
                p.display()
            );
        }
    }
    assert!(files >= 14, "{files} scripts");
    let tmp = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for (name, parts) in assemblies() {
        let mut text = String::from("#!/bin/sh\n");
        text.push_str(LIB_SH);
        for p in parts {
            text.push_str(p);
        }
        let path = tmp.path().join(name.replace(' ', "_") + ".sh");
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let out = std::process::Command::new("shellcheck")
        .args(["--norc", "-s", "sh", "-e", "SC2034,SC2317,SC2015"])
        .args(&paths)
        .output()
        .expect("run shellcheck (apt-get install -y shellcheck)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The install takes the library from the wrapper it carries, up to the first
/// [`install::LIB_END`] line: no library text may hold one.
#[test]
fn no_library_text_holds_the_wrappers_marker() {
    for (name, script) in [
        ("lib.sh", LIB_SH),
        ("procs.sh", PROCS_SH),
        ("activation.sh", ACTIVATION_SH),
        ("removal.sh", REMOVAL_SH),
    ] {
        assert!(
            !compact(script).contains(install::LIB_END.trim_end()),
            "{name}"
        );
    }
}

/// The shells a host may run the scripts with: each must be here.
const SHELLS: [&str; 3] = ["sh", "dash", "bash"];

fn assert_shells_present() {
    for shell in SHELLS {
        let ok = std::process::Command::new(shell)
            .arg("-c")
            .arg("true")
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "{shell} is needed by this test (apt-get install -y dash bash)"
        );
    }
}

#[test]
fn compacted_scripts_parse() {
    assert_shells_present();
    for shell in SHELLS {
        for (name, parts) in assemblies() {
            let text = with_lib(&parts);
            let o = std::process::Command::new(shell)
                .arg("-n")
                .arg("-c")
                .arg(&text)
                .output()
                .unwrap();
            assert!(
                o.status.success(),
                "{shell} {name}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
}

#[test]
fn command_line_has_the_fixed_shape() {
    let c = command(
        "x",
        "echo \"$1\"",
        &["a'b", "$(x)"],
        Duration::from_secs(5),
        Duration::from_secs(2),
        None,
    );
    assert_eq!(
        c.line,
        "timeout -k 2s 5s sh -c 'echo \"$1\"' wavectl 'a'\\''b' '$(x)'"
    );
    assert_eq!(c.line_as(false), c.line);
    assert_eq!(
        c.line_as(true),
        "sudo -n -- timeout -k 2s 5s sh -c 'echo \"$1\"' wavectl 'a'\\''b' '$(x)'"
    );
    assert_eq!(
        become_check(Duration::from_secs(5)).line_as(true),
        "sudo -n -- timeout -k 1s 5s sh -c 'exit 0' wavectl"
    );
}

/// The shell's own readings (hex, the manifest's fields and rewrites, whole files,
/// runs.log, sha256s) give exactly what the commands they stand in for (od|tr,
/// awk, grep -qx; for the previous release's JSON manifest, its own sed|head) give —
/// or, for the manifest, what its parser means — in every shell here, in the C and
/// a UTF-8 locale, for odd input too.
#[test]
fn shell_readings_match_the_commands_they_stand_in_for() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f");
    let fp = f.to_str().unwrap();
    let long = "x/".repeat(300);
    let ascii: String = (0x20u8..0x7f).map(char::from).collect();
    let strings = [
        "",
        "plain",
        "/var/lib/wavectl/x y: kept (changed since?)",
        &ascii,
        "tab\there",
        "nl\n",
        "x\n\n",
        "\u{e9}t\u{e9}",
        "a'b\"c\\d$(x)`y`",
        &long,
        "\u{1}",
        "*",
        "[!a]",
    ];
    let manifests: &[&[u8]] = &[
        b"",
        b"{\"name\":\"n\",\"run_id\":\"r1\",\"state\":\"probation\",\"sha256\":\"ab\",\"prev\":{\"run_id\":\"r0\",\"state\":\"confirmed\"}}\n",
        b"{\"run_id\":\"r1\",\"state\":\"confirmed\",\"prev\":null}",
        b"{\"run_id\":\"r1\",\"x\":\"\\\"run_id\\\":\\\"no\\\"\",\"run_id\":\"r\\\\2\",\"state\":\"Odd\",\"state\":\"b\"}\n",
        b"{\"state\":\"\",\"run_id\":\"unterminated}\n",
        b"{\"run_id\":\"r1\"}\n{\"run_id\":\"r2\",\"state\":\"x\"}\n",
        b"{\"run_id\":\"r1\",\"state\":\"a\"}\n\n",
        b"no json at all\n",
    ];
    let mut m = Manifest {
        name: "n".into(),
        run_id: "r1".into(),
        state: ManifestState::Probation,
        sha256: "ab".into(),
        installed_at: 1,
        install_path: "/x=\"y\" *".into(),
        activation: crate::spec::ActivationKind::Cron,
        schedule: "* * * * *".into(),
        lease_secs: 0,
        backup: false,
        prev: None,
        format: ManifestFormat::KeyValue,
    };
    let rendered = super::manifest::render_key_value(&m);
    // This release's manifest.json: the Rust renderer's, hostile values and all, then
    // odd ones.
    m.install_path = "/x\n\"state\": \"confirmed\",\n\"run_id\": \"r9\"\\".into();
    m.schedule = "\"sha256\": \"ff\"".into();
    let json_new = m.render().unwrap();
    m.backup = true;
    m.state = ManifestState::Confirmed;
    m.prev = Some(PrevVersion {
        run_id: "r0".into(),
        sha256: "cd".into(),
    });
    let json_held = m.render().unwrap();
    let json_manifests = [
        json_new.clone(),
        json_held.clone(),
        "{\n\"state\": \"confirmed\",\n\"run_id\": \"r2\",\n\"run_id\": \"r\\\"3\",\n\"sha256\": \"a\\\\b\",\n\"state\": \"x y\",\n\"prev_run_id\": \"p\",\n\"sha256\": \"a\"b\",\n\"x\": \"\\\"state\\\": \\\"z\\\"\"\n}\n".into(),
        "{\n\"run_id\": 5,\n\"state\": \"\",\n  \"sha256\": \"ab\",\n\"prev_sha256\": null\n".into(),
        "{\n\"run_id\": \"r1\"".into(),
        "{".into(),
    ];
    // What the shell must read of it: the last line that begins `"KEY": "` whose
    // value is a plain string (no `"` or `\\` in it).
    fn json_value(m: &str, key: &str) -> String {
        let mut v = String::new();
        for l in m.split('\n') {
            let Some(x) = l.strip_prefix(&format!("\"{key}\": \"")) else {
                continue;
            };
            let x = x.strip_suffix(',').unwrap_or(x);
            if let Some(x) = x.strip_suffix('"') {
                if !x.contains(['"', '\\']) {
                    v = x.to_string();
                }
            }
        }
        v
    }
    // What wv_mfj_set must write (None: it fails, nothing matched).
    fn json_set(m: &str, pat: &str, value: &str) -> Option<String> {
        let mut out = String::new();
        let mut done = false;
        for l in m.strip_suffix('\n').unwrap_or(m).split('\n') {
            let matched = match pat.strip_suffix('*') {
                Some(p) => l.starts_with(&format!("\"{p}")) && l[p.len() + 1..].contains("\": "),
                None => l.starts_with(&format!("\"{pat}\": ")),
            };
            if matched {
                let key = &l[..l.find("\": ").unwrap()];
                let comma = if l.ends_with(',') { "," } else { "" };
                out.push_str(&format!("{key}\": {value}{comma}\n"));
                done = true;
            } else {
                out.push_str(l);
                out.push('\n');
            }
        }
        done.then_some(out)
    }
    let lines_manifests = [
        rendered.clone(),
        rendered.clone() + "backup=1\nprev_run_id=r0\nprev_sha256=cd\n",
        "state=confirmed\nrun_id=r2\n# state=revoked\nrun_id=r3\nsha256=a=b\nstate=x y".into(),
        "prev_run_id=r0\nstate=probation\nprev_sha256=\n".into(),
        "run_id= spaced \n\nstate=*\n".into(),
        String::new(),
    ];
    // What the shell must read of a manifest: the last `KEY=` line's value.
    fn last_value(m: &str, key: &str) -> String {
        let mut v = String::new();
        for l in m.split('\n') {
            if let Some(x) = l.strip_prefix(key).and_then(|r| r.strip_prefix('=')) {
                v = x.to_string();
            }
        }
        v
    }
    // What wv_mf_set must write (None: it fails, the file read empty).
    fn set_value(m: &str, pat: &str, value: &str) -> Option<String> {
        let lines: Vec<&str> = m.strip_suffix('\n').unwrap_or(m).split('\n').collect();
        if m.is_empty() {
            return None;
        }
        let matches = |l: &str| match pat.strip_suffix('*') {
            Some(p) => l.starts_with(p) && l.contains('='),
            None => l.starts_with(&format!("{pat}=")),
        };
        let mut out = String::new();
        let mut done = false;
        for l in lines {
            if matches(l) {
                if !done && !value.is_empty() {
                    out.push_str(&format!("{pat}={value}\n"));
                }
                done = true;
            } else {
                out.push_str(l);
                out.push('\n');
            }
        }
        if !done && !value.is_empty() {
            out.push_str(&format!("{pat}={value}\n"));
        }
        Some(out)
    }
    let runs =
        "1 2 0 r1\n 3\t4  -1 r1\n5 6 0\n7 8 0 r2\nx 9 0 r1\n1 2 --1 r1\n1 2 0 r1 z\n\n9 9 9 r1";
    let mut long_runs = String::new();
    for i in 0..40 {
        long_runs.push_str(&format!("{i} {i} 0 r1\n"));
    }
    assert_shells_present();
    for shell in SHELLS {
        for locale in ["C", "C.UTF-8"] {
            let run = |script: &str, args: &[&str]| -> String {
                let text = with_lib(&[REPORT_SH]) + script;
                let o = std::process::Command::new(shell)
                    .env("LC_ALL", locale)
                    .arg("-c")
                    .arg(&text)
                    .arg("wavectl")
                    .args(args)
                    .output()
                    .unwrap();
                String::from_utf8_lossy(&o.stdout).into_owned()
            };
            for s in strings {
                let want = if s.is_empty() {
                    "-".to_string()
                } else {
                    hex::encode(s)
                };
                let got = run("wv_hex \"$1\"; printf '|'; wv_out t \"$1\"", &[s]);
                assert_eq!(got, format!("{want}|t {want}\n"), "{shell} {locale}: {s:?}");
            }
            let d = dir.path().join("m");
            std::fs::create_dir_all(&d).unwrap();
            let dp = d.to_str().unwrap();
            let json = d.join("manifest.json");
            for m in manifests {
                std::fs::write(&json, m).unwrap();
                for key in ["run_id", "state", "sha256"] {
                    let sed = run(
                        "sed -n 's/,\"prev\":.*//; s/.*\"'\"$1\"'\":\"\\([^\"\\\\]*\\)\".*/\\1/p' \"$2\" | head -n 1",
                        &[key, json.to_str().unwrap()],
                    );
                    let got = run(
                        "wv_mf_read \"$2\"; case $1 in run_id) v=$WV_MFR ;; state) v=$WV_MFS ;; *) v=$WV_MFH ;; esac; printf '%s %s\\n' \"$WV_MFJ\" \"$v\"",
                        &[key, dp],
                    );
                    assert_eq!(
                        got.trim_end(),
                        format!("1 {}", sed.trim_end()).trim_end(),
                        "{shell} {locale} {key}: {m:?}"
                    );
                }
                let sed = run(
                    "sed 's/\"state\":\"[a-z]*\"/\"state\":\"revoked\"/' \"$1\"",
                    &[json.to_str().unwrap()],
                );
                let got = run(
                    "WV_DIR=$1; wv_set_state revoked && cat \"$1/manifest.json\"",
                    &[dp],
                );
                assert_eq!(got, sed, "{shell} {locale}: {m:?}");
                std::fs::write(&f, m).unwrap();
                let got = run("wv_read_file \"$1\"; printf '%s|' \"$WV_VAL\"", &[fp]);
                assert_eq!(got, format!("{}|", String::from_utf8_lossy(m)), "{shell}");
            }
            std::fs::remove_file(&json).unwrap();
            // The manifest of this release: the last line of a key counts; a
            // manifest.json beside it is not read.
            std::fs::write(&json, manifests[1]).unwrap();
            let file = d.join("manifest");
            for m in &lines_manifests {
                std::fs::write(&file, m).unwrap();
                let got = run(
                    "wv_mf_read \"$1\"; printf '%s|%s|%s|%s' \"$WV_MFJ\" \"$WV_MFR\" \"$WV_MFS\" \"$WV_MFH\"",
                    &[dp],
                );
                let want = format!(
                    "|{}|{}|{}",
                    last_value(m, "run_id"),
                    last_value(m, "state"),
                    last_value(m, "sha256")
                );
                assert_eq!(got, want, "{shell} {locale}: {m:?}");
                for (key, value) in [("state", "revoked"), ("prev_*", ""), ("new_key", "v")] {
                    std::fs::write(&file, m).unwrap();
                    let got = run(
                        "wv_mf_set \"$1/manifest\" \"$2\" \"$3\" && cat \"$1/manifest\"",
                        &[dp, key, value],
                    );
                    let want = set_value(m, key, value).unwrap_or_default();
                    assert_eq!(got, want, "{shell} {locale} {key}={value}: {m:?}");
                }
            }
            // This release's manifest.json: read before a `manifest` beside it.
            std::fs::write(&file, &rendered).unwrap();
            for m in &json_manifests {
                std::fs::write(&json, m).unwrap();
                let got = run(
                    "wv_mf_read \"$1\"; printf '%s|%s|%s|%s|%s' \"${WV_MFF##*/}\" \"$WV_MFJ\" \"$WV_MFR\" \"$WV_MFS\" \"$WV_MFH\"",
                    &[dp],
                );
                let want = format!(
                    "manifest.json|2|{}|{}|{}",
                    json_value(m, "run_id"),
                    json_value(m, "state"),
                    json_value(m, "sha256")
                );
                assert_eq!(got, want, "{shell} {locale}: {m:?}");
                for (key, value) in [
                    ("state", "\"revoked\""),
                    ("prev_*", "null"),
                    ("backup", "true"),
                    ("new_key", "1"),
                ] {
                    std::fs::write(&json, m).unwrap();
                    let got = run(
                        "wv_mfj_set \"$1/manifest.json\" \"$2\" \"$3\" && cat \"$1/manifest.json\"",
                        &[dp, key, value],
                    );
                    let want = json_set(m, key, value).unwrap_or_default();
                    assert_eq!(got, want, "{shell} {locale} {key}={value}: {m:?}");
                    assert_eq!(
                        std::fs::read_to_string(&json).unwrap(),
                        if want.is_empty() {
                            m.as_str()
                        } else {
                            want.as_str()
                        }
                    );
                }
            }
            // The rewrites of a real manifest stay JSON, and mean what they say.
            for (m, prev) in [(&json_new, None), (&json_held, Some("r0"))] {
                std::fs::write(&json, m).unwrap();
                let got = run(
                    "WV_DIR=$1; wv_set_state revoked && wv_mfj_set \"$1/manifest.json\" 'prev_*' null && cat \"$1/manifest.json\"",
                    &[dp],
                );
                let was = Manifest::read(m).unwrap();
                assert_eq!(was.prev.as_ref().map(|p| p.run_id.as_str()), prev);
                let now = Manifest::read(&got).unwrap();
                assert_eq!(now.state, ManifestState::Revoked, "{got}");
                assert_eq!(now.prev, None, "{got}");
                assert_eq!(
                    (now.install_path, now.schedule),
                    (was.install_path, was.schedule)
                );
                let v: serde_json::Value = serde_json::from_str(&got).unwrap();
                assert_eq!(v["state"], "revoked");
            }
            std::fs::remove_file(&file).unwrap();
            std::fs::remove_file(&json).unwrap();
            for log in [runs, &long_runs] {
                let d = dir.path().join("d");
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join("runs.log"), log).unwrap();
                let dp = d.to_str().unwrap();
                let awk = run(
                    "WVR=r1 awk 'NF == 3 { $4 = \"-\" } (NF == 3 || NF == 4) && $4 == ENVIRON[\"WVR\"] && $1 ~ /^[0-9]+$/ && $2 ~ /^[0-9]+$/ && $3 ~ /^-?[0-9]+$/ { print \"run \" $1 \" \" $2 \" \" $3 }' \"$1/runs.log\"",
                    &[dp],
                );
                assert_eq!(run("WV_DIR=$1; wv_runs r1", &[dp]), awk, "{shell} {locale}");
                for line in ["1 2 0 r1", "39 39 0 r1", "r1", ""] {
                    let grep = run("grep -qx \"$2\" \"$1/runs.log\" && echo yes", &[dp, line]);
                    let got = run(
                        "wv_has_line \"$1/runs.log\" \"$2\" && echo yes",
                        &[dp, line],
                    );
                    assert_eq!(got, grep, "{shell} {locale}: {line:?}");
                }
            }
        }
    }
}
