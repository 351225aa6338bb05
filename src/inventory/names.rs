//! Character rules for what the inventory names: hosts, addresses, users, labels.
//! Pure checks returning a message and a hint; callers add file and position.

/// What is wrong with a value, and how to fix it (file and position are added by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bad {
    pub message: String,
    pub help: String,
}

impl Bad {
    pub fn new(message: impl Into<String>, help: impl Into<String>) -> Bad {
        Bad {
            message: message.into(),
            help: help.into(),
        }
    }
}

/// A value shown inside a message: escaped so control characters stay visible.
pub(crate) fn shown(s: &str) -> String {
    format!("`{}`", s.escape_debug())
}

/// A name made of a first character, then more characters, at most `max` long.
pub(crate) struct NameRule {
    /// What the name is, for messages ("host name").
    pub what: &'static str,
    pub first: fn(char) -> bool,
    pub rest: fn(char) -> bool,
    pub max: usize,
    /// The rule in words, for the hint.
    pub describe: &'static str,
}

impl NameRule {
    pub fn check(&self, s: &str) -> Result<(), Bad> {
        let help = || format!("a {} uses {}", self.what, self.describe);
        let mut chars = s.chars();
        let Some(first) = chars.next() else {
            return Err(Bad::new(format!("{} is empty", self.what), help()));
        };
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(Bad::new(
                format!(
                    "{} {} contains the control character {:?}",
                    self.what,
                    shown(s),
                    c
                ),
                help(),
            ));
        }
        if !(self.first)(first) {
            return Err(Bad::new(
                format!("{} {} must not start with {:?}", self.what, shown(s), first),
                help(),
            ));
        }
        if let Some(c) = chars.find(|c| !(self.rest)(*c)) {
            return Err(Bad::new(
                format!("{} {} contains {:?}", self.what, shown(s), c),
                help(),
            ));
        }
        let len = s.chars().count();
        if len > self.max {
            return Err(Bad::new(
                format!(
                    "{} is {} characters long, at most {} are allowed",
                    self.what, len, self.max
                ),
                help(),
            ));
        }
        Ok(())
    }
}

fn alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

pub(crate) const HOST_NAME: NameRule = NameRule {
    what: "host name",
    first: alnum,
    rest: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
    max: 253,
    describe:
        "letters, digits, '.', '_' and '-', starts with a letter or digit, at most 253 characters",
};

pub(crate) const USER: NameRule = NameRule {
    what: "user name",
    first: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_'),
    rest: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
    max: 256,
    describe: "letters, digits, '.', '_' and '-', and does not start with '-'",
};

pub(crate) const LABEL_KEY: NameRule = NameRule {
    what: "label key",
    first: |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'),
    rest: |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-'),
    max: 253,
    describe: "letters, digits, '_', '.', '/' and '-'",
};

/// What a host address that is not an IPv6 address may hold: a DNS name, an IPv4
/// address or an ssh_config alias.
const ADDRESS_NAME: NameRule = NameRule {
    what: "host address",
    first: |c| c.is_ascii_alphanumeric() || c == '_',
    rest: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
    max: 253,
    describe: "letters, digits, '.', '_' and '-' (a host name, an IPv4 address or an \
               ssh_config alias), or is an IPv6 address like 2001:db8::1",
};

/// What ssh connects to: a host name, an IPv4 or IPv6 address, or an ssh_config alias —
/// and nothing else: no `ssh://` URL and no `user@` (the transport would take a user and
/// a port from them, past the inventory's), no brackets or `:port`, nothing a shell or
/// ssh's option parser reads (`-`, `;`, `` ` ``, `$`, quotes, spaces).
pub(crate) fn check_address(s: &str) -> Result<(), Bad> {
    let help = "write an IP address, a DNS name or an ssh_config alias (or leave `address` out to use the host name)";
    let apart = "write the host name or IP address alone: the user goes in `user` \
                 (ansible_user), the port in `port` (ansible_port)";
    if s.is_empty() {
        return Err(Bad::new("host address is empty", help));
    }
    if s.starts_with('-') {
        return Err(Bad::new(
            format!("host address {} starts with '-'", shown(s)),
            "ssh would read it as an option; write the address without a leading '-'",
        ));
    }
    if let Some(c) = s.chars().find(|c| c.is_control()) {
        return Err(Bad::new(
            format!(
                "host address {} contains the control character {:?}",
                shown(s),
                c
            ),
            help,
        ));
    }
    if s.chars().any(char::is_whitespace) {
        return Err(Bad::new(
            format!("host address {} contains whitespace", shown(s)),
            help,
        ));
    }
    if s.contains("://") {
        return Err(Bad::new(
            format!("host address {} is a URL", shown(s)),
            apart,
        ));
    }
    if s.contains('@') {
        return Err(Bad::new(
            format!("host address {} contains '@'", shown(s)),
            apart,
        ));
    }
    if is_ipv6(s) {
        return Ok(());
    }
    if s.starts_with('[') {
        return Err(Bad::new(
            format!("host address {} is in brackets", shown(s)),
            "write an IPv6 address without brackets (2001:db8::1); the port goes in `port` (ansible_port)",
        ));
    }
    if s.contains(':') {
        return Err(Bad::new(
            format!(
                "host address {} contains ':' but is not an IPv6 address",
                shown(s)
            ),
            apart,
        ));
    }
    ADDRESS_NAME.check(s)
}

/// An IPv6 address, with an optional `%zone` (an interface name).
fn is_ipv6(s: &str) -> bool {
    let (addr, zone) = match s.split_once('%') {
        Some((a, z)) => (a, Some(z)),
        None => (s, None),
    };
    addr.parse::<std::net::Ipv6Addr>().is_ok()
        && zone.is_none_or(|z| {
            !z.is_empty()
                && z.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        })
}

/// A label value: any string without control characters.
pub(crate) fn check_label_value(key: &str, s: &str) -> Result<(), Bad> {
    match s.chars().find(|c| c.is_control()) {
        Some(c) => Err(Bad::new(
            format!("label `{key}` has a value with the control character {c:?}"),
            "label values may be any text on one line, without control characters",
        )),
        None => Ok(()),
    }
}

/// A TCP port from the file: 1..=65535.
pub(crate) fn check_port(n: i64) -> Result<u16, Bad> {
    match u16::try_from(n) {
        Ok(p) if p >= 1 => Ok(p),
        _ => Err(Bad::new(
            format!("port {n} is out of range"),
            "a port is a number from 1 to 65535",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert!(HOST_NAME.check("db-1.lon1_a").is_ok());
        assert_eq!(
            HOST_NAME.check("-db").unwrap_err().message,
            "host name `-db` must not start with '-'"
        );
        assert_eq!(
            HOST_NAME.check("db 1").unwrap_err().message,
            "host name `db 1` contains ' '"
        );
        assert_eq!(
            HOST_NAME.check("").unwrap_err().message,
            "host name is empty"
        );
        assert_eq!(
            HOST_NAME.check("a\nb").unwrap_err().message,
            "host name `a\\nb` contains the control character '\\n'"
        );
        let long = "a".repeat(254);
        assert_eq!(
            HOST_NAME.check(&long).unwrap_err().message,
            "host name is 254 characters long, at most 253 are allowed"
        );
    }

    #[test]
    fn users_and_labels() {
        assert!(USER.check("_svc.deploy").is_ok());
        assert_eq!(
            USER.check("-oFoo").unwrap_err().message,
            "user name `-oFoo` must not start with '-'"
        );
        assert!(LABEL_KEY.check("k8s.io/role").is_ok());
        assert_eq!(
            LABEL_KEY.check("a b").unwrap_err().message,
            "label key `a b` contains ' '"
        );
        assert!(check_label_value("dc", "lon 1").is_ok());
        assert_eq!(
            check_label_value("dc", "a\tb").unwrap_err().message,
            "label `dc` has a value with the control character '\\t'"
        );
    }

    /// Issue 13, case 11b: `ssh://-oProxyCommand=…` (and addresses with `;`, backquotes)
    /// passed `check`. An address is a host name, an IP address or an ssh_config alias.
    #[test]
    fn an_address_is_a_host_name_an_ip_address_or_an_alias() {
        for good in [
            "10.0.0.1",
            "db-1.lon1.example.com",
            "h01",
            "my_alias",
            "::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "fe80::1%eth0",
        ] {
            assert_eq!(check_address(good), Ok(()), "{good}");
        }
        let bad = |s: &str| check_address(s).unwrap_err();
        let b = bad("ssh://-oProxyCommand=touch /tmp/x");
        assert_eq!(
            b.message,
            "host address `ssh://-oProxyCommand=touch /tmp/x` contains whitespace"
        );
        let b = bad("ssh://-oProxyCommand=sh");
        assert_eq!(b.message, "host address `ssh://-oProxyCommand=sh` is a URL");
        assert!(b.help.contains("the user goes in `user`"), "{}", b.help);
        assert_eq!(
            bad("ssh://db-1:2222").message,
            "host address `ssh://db-1:2222` is a URL"
        );
        assert_eq!(
            bad("root@db-1").message,
            "host address `root@db-1` contains '@'"
        );
        assert_eq!(bad("[::1]").message, "host address `[::1]` is in brackets");
        assert_eq!(
            bad("db-1:2222").message,
            "host address `db-1:2222` contains ':' but is not an IPv6 address"
        );
        assert_eq!(
            bad("fe80::1%").message,
            "host address `fe80::1%` contains ':' but is not an IPv6 address"
        );
        for (s, c) in [
            ("db;id", ';'),
            ("db`id`", '`'),
            ("$(id)", '$'),
            ("db$HOME", '$'),
            ("db|x", '|'),
            ("db&x", '&'),
            ("db>x", '>'),
            ("'db'", '\''),
            ("\"db\"", '"'),
            ("db\\x", '\\'),
            ("db*", '*'),
            ("db,x", ','),
            ("db/x", '/'),
            ("db%x", '%'),
        ] {
            let b = bad(s);
            let first = s.starts_with(c);
            let want = if first {
                format!("host address {} must not start with {c:?}", shown(s))
            } else {
                format!("host address {} contains {c:?}", shown(s))
            };
            assert_eq!(b.message, want, "{s}");
            assert!(
                b.help.starts_with("a host address uses letters"),
                "{}",
                b.help
            );
        }
        assert_eq!(
            bad(".db").message,
            "host address `.db` must not start with '.'"
        );
        assert_eq!(
            bad(&"a".repeat(254)).message,
            "host address is 254 characters long, at most 253 are allowed"
        );
    }

    #[test]
    fn addresses_and_ports() {
        assert!(check_address("10.0.0.1").is_ok());
        assert_eq!(
            check_address("-oProxyCommand=sh").unwrap_err().message,
            "host address `-oProxyCommand=sh` starts with '-'"
        );
        assert_eq!(
            check_address("a b").unwrap_err().message,
            "host address `a b` contains whitespace"
        );
        assert_eq!(check_port(0).unwrap_err().message, "port 0 is out of range");
        assert_eq!(
            check_port(65536).unwrap_err().message,
            "port 65536 is out of range"
        );
        assert_eq!(check_port(2222), Ok(2222));
    }
}
