//! Tests of Ansible dynamic inventories: the examples of Ansible's dynamic inventory
//! guide (`tests/fixtures/ansible/dynamic_*.sh`, real programs run with `--list`)
//! resolved to exact hosts and labels, and each way a program or its output can be bad,
//! with its exact error.

use std::time::Duration;

use super::*;

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ansible")
        .join(name)
}

/// One line per host: `name[ @address][:port][ user=U][ become][ k=v]...`.
fn render(inv: &Inventory) -> String {
    inv.hosts
        .iter()
        .map(|h| {
            let mut line = h.name.clone();
            if h.address != h.name {
                line.push_str(&format!(" @{}", h.address));
            }
            if let Some(p) = h.port {
                line.push_str(&format!(":{p}"));
            }
            if let Some(u) = &h.user {
                line.push_str(&format!(" user={u}"));
            }
            if h.become_root {
                line.push_str(" become");
            }
            for (k, v) in &h.labels {
                line.push_str(&format!(" {k}={v}"));
            }
            line + "\n"
        })
        .collect()
}

fn lines(expected: &str) -> String {
    expected
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn the_dev_guides_example_resolves_as_ansible_resolves_it() {
    let inv = load(&fixture("dynamic_dev_guide.sh")).unwrap();
    // group002 is a child of group001: its hosts are in both, with var1 inherited.
    assert_eq!(
        render(&inv),
        lines(
            "host001 group=group001 var001=value var1=true
             host002 group=group001 var002=value var1=true
             host003 group=group001,group002 var1=true var2=500
             host004 group=group001,group002 var1=true var2=500"
        )
    );
}

#[test]
fn the_script_conventions_example_with_plain_lists_and_children() {
    let inv = load(&fixture("dynamic_conventions.sh")).unwrap();
    assert_eq!(
        render(&inv),
        lines(
            "host7.example.com b=false group=5points,atlanta
             host1.example.com a=true b=false group=atlanta,databases
             host4.example.com b=false group=atlanta
             host5.example.com b=false group=atlanta
             host2.example.com a=true group=databases,webservers
             host6.example.com b=false group=atlanta,marietta
             host3.example.com group=webservers"
        )
    );
}

/// A program in a temp dir printing `json` (and `stderr`) and exiting with `code`.
fn program(json: &str, stderr: &str, code: i32) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("inv.sh");
    std::fs::write(dir.path().join("out.json"), json).unwrap();
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\n[ \"$1\" = --list ] || exit 9\ncat \"$(dirname \"$0\")/out.json\"\nprintf '%s' '{stderr}' >&2\nexit {code}\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (dir, path)
}

fn shown_err(dir: &tempfile::TempDir, r: Result<Inventory, InputError>) -> String {
    r.unwrap_err()
        .to_string()
        .replace(&dir.path().display().to_string(), "T")
}

fn err(json: &str) -> String {
    let (dir, path) = program(json, "", 0);
    shown_err(&dir, load(&path))
}

const META: &str = "\"_meta\": {\"hostvars\": {}}";

#[test]
fn host_variables_set_the_connection_and_win_over_groups() {
    let (_dir, path) = program(
        r#"{"all": {"vars": {"ansible_user": "deploy", "dc": "lon"}},
            "db": {"hosts": ["db1", "db2"], "vars": {"ansible_port": 2200, "role": "db"}},
            "_meta": {"hostvars": {
                "db1": {"ansible_host": "10.0.0.1", "ansible_become": "yes", "role": "primary", "w": 1.5},
                "ghost": {"role": "nobody lists me"}}}}"#,
        "",
        0,
    );
    assert_eq!(
        render(&load(&path).unwrap()),
        lines(
            "db1 @10.0.0.1:2200 user=deploy become dc=lon group=db role=primary w=1.5
             db2:2200 user=deploy dc=lon group=db role=db"
        )
    );
}

#[test]
fn a_failing_program_is_exit_2_with_its_stderr() {
    let (dir, path) = program("", "cannot reach the CMDB\nretry later", 3);
    assert_eq!(
        shown_err(&dir, load(&path)),
        "T/inv.sh: the inventory program `T/inv.sh --list` exited with code 3; its stderr:\n    \
         cannot reach the CMDB\n    retry later\n  \
         help: run it by hand to see why; wavectl reads only what it prints with --list and exit code 0"
    );
    assert_eq!(
        load(&path).unwrap_err().file.as_deref(),
        Some(path.as_path()),
        "the error names the inventory"
    );
}

#[test]
fn bad_json_is_exit_2_with_where_and_its_stderr() {
    let (dir, path) = program("{\"web\": [\"h1\",]}", "warning: stale cache", 0);
    assert_eq!(
        shown_err(&dir, load(&path)),
        "T/inv.sh: the output of `T/inv.sh --list` is not JSON: trailing comma at line 1 column \
         15; its stderr:\n    warning: stale cache\n  \
         help: an Ansible dynamic inventory prints one JSON object with --list: its groups and `_meta.hostvars`"
    );
    assert_eq!(
        err(""),
        "T/inv.sh: the inventory program `T/inv.sh --list` printed nothing\n  \
         help: an Ansible dynamic inventory prints one JSON object with --list: its groups and `_meta.hostvars`"
    );
}

#[test]
fn shapes_ansible_would_read_otherwise_are_refused() {
    let cases = [
        (
            "[\"h1\"]",
            "the output of `T/inv.sh --list` is not a JSON object of groups",
        ),
        (
            "{\"web\": [\"h1\"]}",
            "the output of `T/inv.sh --list` has no `_meta.hostvars` (Ansible would then run the \
             program again with --host HOST for every host, which wavectl does not)",
        ),
        (
            &format!("{{\"web\": {{\"host\": [\"h1\"]}}, {META}}}"),
            "`web` in the output of `T/inv.sh --list` has the unknown key `host`",
        ),
        (
            &format!("{{\"web\": {{}}, {META}}}"),
            "`web` in the output of `T/inv.sh --list` is an empty object (Ansible would read it \
             as a host named like the group)",
        ),
        (
            &format!("{{\"web\": \"h1\", {META}}}"),
            "`web` in the output of `T/inv.sh --list` is neither a list of hosts nor an object",
        ),
        (
            &format!("{{\"web\": {{\"hosts\": \"h1\"}}, {META}}}"),
            "`web.hosts` in the output of `T/inv.sh --list` is not a list of names",
        ),
        (
            &format!("{{\"web\": {{\"hosts\": [\"h1\", 7]}}, {META}}}"),
            "`web.hosts` in the output of `T/inv.sh --list` is not a list of names",
        ),
        (
            &format!("{{\"web\": {{\"vars\": [1]}}, {META}}}"),
            "`web.vars` in the output of `T/inv.sh --list` is not an object",
        ),
        (
            &format!("{{\"web\": {{\"children\": [\"all\"]}}, {META}}}"),
            "`web.children[0]` in the output of `T/inv.sh --list` makes `all` a child group",
        ),
        (
            &format!("{{\"web servers\": [\"h1\"], {META}}}"),
            "`[\"web servers\"]` in the output of `T/inv.sh --list` names a bad group: group name \
             `web servers` contains ' '",
        ),
        (
            "{\"web\": [\"h1\"], \"_meta\": {\"hostvars\": []}}",
            "`_meta.hostvars` in the output of `T/inv.sh --list` is not an object",
        ),
    ];
    for (json, message) in cases {
        let e = err(json);
        assert_eq!(
            e.lines().next().unwrap(),
            format!("T/inv.sh: {message}"),
            "{json}"
        );
    }
}

#[test]
fn a_hostile_ansible_host_from_a_program_is_refused_with_its_place() {
    let e = err(
        r#"{"web": ["h1"], "_meta": {"hostvars": {"h1": {"ansible_host": "ssh://-oProxyCommand=touch${IFS}x"}}}}"#,
    );
    assert!(
        e.starts_with(
            "T/inv.sh: `_meta.hostvars.h1.ansible_host` in the output of `T/inv.sh --list`: "
        ),
        "{e}"
    );
}

#[test]
fn bad_values_name_their_place_in_the_output() {
    let e = err(r#"{"web": ["h1", "h2"], "_meta": {"hostvars": {"h2": {"ansible_port": "ssh"}}}}"#);
    assert_eq!(
        e,
        "T/inv.sh: `_meta.hostvars.h2.ansible_port` in the output of `T/inv.sh --list`: \
         ansible_port `ssh` is not a number\n  help: a port is a number from 1 to 65535"
    );
    let e = err(&format!("{{\"web\": [\"-h1\"], {META}}}"));
    assert_eq!(
        e.lines().next().unwrap(),
        "T/inv.sh: `web[0]` in the output of `T/inv.sh --list`: host name `-h1` must not start \
         with '-'"
    );
    let e = err(
        r#"{"a": {"children": ["b"]}, "b": {"children": ["a"], "hosts": ["h"]}, "_meta": {"hostvars": {}}}"#,
    );
    assert!(
        e.starts_with("T/inv.sh: `") && e.contains("in the output of `T/inv.sh --list`: group `"),
        "{e}"
    );
}

#[test]
fn a_program_that_hangs_or_floods_is_killed() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("slow.sh");
    std::fs::write(
        &path,
        "#!/bin/sh\necho 'looking up the CMDB' >&2\nexec sleep 600\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let e = dynamic::load_within(&path, Duration::from_millis(300), 1024).unwrap_err();
    assert_eq!(
        e.to_string()
            .replace(&dir.path().display().to_string(), "T"),
        "T/slow.sh: the inventory program `T/slow.sh --list` did not finish within 300ms: killed; \
         its stderr:\n    looking up the CMDB\n  help: make it answer faster (cache what it \
         fetches), or write its output to a file once and give wavectl that file (`.json`)"
    );
    let flood = dir.path().join("flood.sh");
    std::fs::write(&flood, "#!/bin/sh\nexec yes\n").unwrap();
    std::fs::set_permissions(&flood, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let e = dynamic::load_within(&flood, Duration::from_secs(60), 2 << 20).unwrap_err();
    assert!(
        e.to_string().contains("printed more than 2 MiB: killed"),
        "{e}"
    );
}

#[test]
fn an_executable_static_inventory_is_run_and_says_so() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("hosts");
    std::fs::write(&path, "[web]\nh1\n").unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let e = load(&path).unwrap_err().to_string();
    assert!(
        e.contains("cannot run the inventory program")
            && e.contains("(a static inventory must not be executable: chmod -x it)"),
        "{e}"
    );
    // The same file, not executable, is an INI inventory; a TOML one is TOML either way.
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    assert_eq!(load(&path).unwrap().hosts[0].name, "h1");
    let toml = dir.path().join("inv.toml");
    std::fs::write(&toml, "[[host]]\nname = \"t1\"\n").unwrap();
    std::fs::set_permissions(&toml, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert_eq!(load(&toml).unwrap().hosts[0].name, "t1");
}

#[test]
fn group_vars_beside_a_program_are_refused_as_beside_a_file() {
    let (dir, path) = program(&format!("{{\"web\": [\"h1\"], {META}}}"), "", 0);
    std::fs::create_dir(dir.path().join("group_vars")).unwrap();
    assert!(shown_err(&dir, load(&path)).contains("group_vars is beside this inventory"));
}
