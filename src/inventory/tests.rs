//! Tests of `inventory::load` on files in a temp dir: values and defaults, and the
//! exact error for each bad input.

use super::*;

fn load_text(text: &str) -> (tempfile::TempDir, Result<Inventory, InputError>) {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("inv.toml");
    std::fs::write(&path, text).unwrap();
    let r = load(&path);
    (dir, r)
}

/// The error's display, with the temp dir shown as `T`.
fn err(text: &str) -> String {
    let (dir, r) = load_text(text);
    match r {
        Ok(inv) => panic!("expected an error, got {inv:?}"),
        Err(e) => e
            .to_string()
            .replace(&dir.path().display().to_string(), "T"),
    }
}

fn host(name: &str, extra: &str) -> String {
    format!("[[host]]\nname = \"{name}\"\n{extra}")
}

#[test]
fn hosts_get_defaults_and_keep_file_order() {
    let text = format!(
        "[defaults]\nuser = \"ops\"\nport = 2200\nhost_key_check = \"accept-new\"\n{}{}",
        host(
            "b-1",
            "labels = { role = \"db\", \"k8s.io/zone\" = \"lon 1\" }\n"
        ),
        host(
            "a-1",
            "address = \"10.0.0.1\"\nport = 22\nuser = \"root\"\nhost_key_check = \"strict\"\n"
        ),
    );
    let (_dir, inv) = load_text(&text);
    let inv = inv.unwrap();
    let b = &inv.hosts[0];
    assert_eq!((b.name.as_str(), b.address.as_str()), ("b-1", "b-1"));
    assert_eq!(
        (b.port, b.user.as_deref(), b.host_key_check),
        (Some(2200), Some("ops"), HostKeyCheck::AcceptNew)
    );
    assert_eq!(b.labels.get("role").map(String::as_str), Some("db"));
    assert_eq!(
        b.labels.get("k8s.io/zone").map(String::as_str),
        Some("lon 1")
    );
    let a = inv.get("a-1").unwrap();
    assert_eq!(a.address, "10.0.0.1");
    assert_eq!(
        (a.port, a.user.as_deref(), a.host_key_check),
        (Some(22), Some("root"), HostKeyCheck::Strict)
    );
    assert!(a.labels.is_empty());
}

#[test]
fn without_defaults_port_and_user_are_left_to_ssh() {
    let (_dir, inv) = load_text(&host("h", ""));
    let h = &inv.unwrap().hosts[0];
    assert_eq!(
        (h.port, h.user.as_ref(), h.host_key_check),
        (None, None, HostKeyCheck::Strict)
    );
}

#[test]
fn example_inventory_loads() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/inventory.toml");
    let inv = load(&path).unwrap();
    assert_eq!(inv.hosts.len(), 8);
    assert_eq!(inv.get("web-2").unwrap().port, Some(2222));
}

#[test]
fn file_errors() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("none.toml");
    let e = load(&path)
        .unwrap_err()
        .to_string()
        .replace(&dir.path().display().to_string(), "T");
    assert_eq!(
        e,
        "T/none.toml: inventory not found\n  \
         help: check the path; relative paths are resolved against the current directory"
    );
    assert_eq!(
        err("# nothing yet\n"),
        "T/inv.toml: the inventory has no hosts\n  help: add at least one [[host]] table with a `name`"
    );
    assert_eq!(
        err("[[host]]\nname = \"a\"\nadress = \"x\"\n"),
        "T/inv.toml:3:1: unknown field `adress`, expected one of `name`, `address`, `port`, `user`, \
         `labels`, `host_key_check`, `become`\n  help: remove the key or fix its spelling"
    );
    assert_eq!(
        err("[defaults]\nhost_key_check = \"no\"\n"),
        "T/inv.toml:2:18: unknown variant `no`, expected `strict` or `accept-new`\n  \
         help: use one of the listed values"
    );
    assert_eq!(
        err("[[host]]\naddress = \"x\"\n"),
        "T/inv.toml:1:1: missing field `name`\n  help: add the missing key"
    );
}

#[test]
fn duplicate_host() {
    assert_eq!(
        err(&format!(
            "{}{}{}",
            host("a", ""),
            host("b", ""),
            host("a", "")
        )),
        "T/inv.toml:6:8: duplicate host `a` (first defined at line 2)\n  \
         help: give each [[host]] a unique name, or remove the duplicate"
    );
}

#[test]
fn bad_values() {
    let name_help =
        "help: a host name uses letters, digits, '.', '_' and '-', starts with a letter \
                     or digit, at most 253 characters";
    assert_eq!(
        err(&host("-a", "")),
        format!("T/inv.toml:2:8: host name `-a` must not start with '-'\n  {name_help}")
    );
    assert_eq!(
        err(&host("a b", "")),
        format!("T/inv.toml:2:8: host name `a b` contains ' '\n  {name_help}")
    );
    assert_eq!(
        err(&host("a", "address = \"-oProxyCommand=touch /tmp/x\"\n")),
        "T/inv.toml:3:11: host address `-oProxyCommand=touch /tmp/x` starts with '-'\n  \
         help: ssh would read it as an option; write the address without a leading '-'"
    );
    let addr_help =
        "help: write an IP address, a DNS name or an ssh_config alias (or leave `address` \
                     out to use the host name)";
    assert_eq!(
        err(&host("a", "address = \"\"\n")),
        format!("T/inv.toml:3:11: host address is empty\n  {addr_help}")
    );
    assert_eq!(
        err(&host("a", "address = \"10.0.0.1 x\"\n")),
        format!("T/inv.toml:3:11: host address `10.0.0.1 x` contains whitespace\n  {addr_help}")
    );
    assert_eq!(
        err(&host("a", "port = 0\n")),
        "T/inv.toml:3:8: port 0 is out of range\n  help: a port is a number from 1 to 65535"
    );
    assert_eq!(
        err("[defaults]\nport = 70000\n"),
        "T/inv.toml:2:8: port 70000 is out of range\n  help: a port is a number from 1 to 65535"
    );
    assert_eq!(
        err(&host("a", "user = \"-l\"\n")),
        "T/inv.toml:3:8: user name `-l` must not start with '-'\n  help: a user name uses letters, \
         digits, '.', '_' and '-', and does not start with '-'"
    );
    assert_eq!(
        err(&host("a", "labels = { \"ro le\" = \"db\" }\n")),
        "T/inv.toml:3:12: label key `ro le` contains ' '\n  \
         help: a label key uses letters, digits, '_', '.', '/' and '-'"
    );
    assert_eq!(
        err(&host("a", "labels = { role = \"d\\nb\" }\n")),
        "T/inv.toml:3:19: label `role` has a value with the control character '\\n'\n  \
         help: label values may be any text on one line, without control characters"
    );
    assert_eq!(
        err(&host("a", "labels = { rack = 12 }\n")),
        "T/inv.toml:3:19: invalid type: integer `12`, expected a string\n  \
         help: change the value to the expected type"
    );
}
