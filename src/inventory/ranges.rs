//! Ansible host patterns as an inventory writes them: `web[01:20].example.com`
//! (zero-padded numbers), `web[1:20:2]` (a step), `db-[a:f]` (letters), several ranges in
//! one name, and `name:port`. Pure.
//!
//! As Ansible's `expand_hostname_range`: a range is `[begin:end]` or `[begin:end:step]`,
//! both ends included; an empty begin is 0; a begin written with a leading zero
//! (`01`) pads every number to its width and then the end must have the same width;
//! letters run through `a`..`z` then `A`..`Z`. Unlike Ansible, a range that would give no
//! host (`[5:1]`) is an error, not an empty list, and so is a pattern that gives more
//! than [`MAX_HOSTS`] hosts.

use super::names::{check_port, shown, Bad};

/// At most this many hosts from one pattern (a typo like `h[1:10000000]` stops here).
pub(crate) const MAX_HOSTS: usize = 100_000;

/// Ansible's letter order for `[a:f]` ranges (Python's `string.ascii_letters`).
const LETTERS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

const HELP: &str =
    "write a range as [start:end] or [start:end:step], e.g. web[01:20].example.com or db-[a:f]";

/// The host names a pattern stands for, and the port it names (`name:port`), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expanded {
    pub names: Vec<String>,
    pub port: Option<u16>,
}

/// Expand one host pattern of an inventory.
pub(crate) fn expand(pattern: &str) -> Result<Expanded, Bad> {
    let (base, port) = split_port(pattern)?;
    let mut names = Vec::new();
    expand_into(base, &mut names, base)?;
    Ok(Expanded { names, port })
}

/// `name:port` → (`name`, port); a ':' inside `[...]` belongs to a range.
fn split_port(pattern: &str) -> Result<(&str, Option<u16>), Bad> {
    let mut depth = 0i32;
    let (mut colon, mut colons) = (None, 0);
    for (i, c) in pattern.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ':' if depth == 0 => {
                colon = Some(i);
                colons += 1;
            }
            _ => {}
        }
    }
    let Some(i) = colon else {
        return Ok((pattern, None));
    };
    let (base, port) = (&pattern[..i], &pattern[i + 1..]);
    if port.is_empty() {
        return Err(Bad::new(
            format!("host pattern {} ends in ':'", shown(pattern)),
            "write a port after the ':' (host:2222), or remove the ':'",
        ));
    }
    if !port.chars().all(|c| c.is_ascii_digit()) || colons > 1 {
        return Err(Bad::new(
            format!(
                "host pattern {} has a ':' that is not before a port",
                shown(pattern)
            ),
            "write `name:port` (web1:2222); an IPv6 address goes in ansible_host",
        ));
    }
    let n: i64 = port.parse().unwrap_or(i64::MAX);
    Ok((base, Some(check_port(n)?)))
}

fn expand_into(name: &str, out: &mut Vec<String>, whole: &str) -> Result<(), Bad> {
    let Some(open) = name.find('[') else {
        out.push(name.to_string());
        return Ok(());
    };
    let Some(close) = name[open..].find(']').map(|c| open + c) else {
        return Err(Bad::new(
            format!("host pattern {} has a '[' without a ']'", shown(name)),
            HELP,
        ));
    };
    let (head, inner, tail) = (&name[..open], &name[open + 1..close], &name[close + 1..]);
    let parts: Vec<&str> = inner.split(':').collect();
    let bad = |why: &str| {
        Bad::new(
            format!("host range [{}] in {}: {why}", inner, shown(name)),
            HELP,
        )
    };
    if parts.len() != 2 && parts.len() != 3 {
        return Err(bad("it is not start:end or start:end:step"));
    }
    let begin = if parts[0].is_empty() { "0" } else { parts[0] };
    let end = parts[1];
    if end.is_empty() {
        return Err(bad("it has no end"));
    }
    let step = match parts.get(2) {
        None => 1,
        Some(s) => match s.parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => return Err(bad("the step must be a whole number of at least 1")),
        },
    };
    let items: Vec<String> = if let (Some(b), Some(e)) = (letter(begin), letter(end)) {
        if b > e {
            return Err(bad("it starts after its end"));
        }
        LETTERS[b..=e]
            .chars()
            .step_by(step)
            .map(String::from)
            .collect()
    } else if begin.chars().all(|c| c.is_ascii_digit()) && end.chars().all(|c| c.is_ascii_digit()) {
        let width = if begin.len() > 1 && begin.starts_with('0') {
            if end.len() != begin.len() {
                return Err(bad(
                    "a zero-padded start and its end must have the same number of digits",
                ));
            }
            begin.len()
        } else {
            0
        };
        let (Ok(b), Ok(e)) = (begin.parse::<u64>(), end.parse::<u64>()) else {
            return Err(bad("a number is too large"));
        };
        if b > e {
            return Err(bad("it starts after its end"));
        }
        let count = (e - b) / step as u64 + 1;
        if count > MAX_HOSTS as u64 {
            return Err(too_many(whole));
        }
        (b..=e)
            .step_by(step)
            .map(|n| format!("{n:0width$}"))
            .collect()
    } else {
        return Err(bad(
            "start and end must both be numbers or both single letters",
        ));
    };
    for item in items {
        expand_into(&format!("{head}{item}{tail}"), out, whole)?;
        if out.len() > MAX_HOSTS {
            return Err(too_many(whole));
        }
    }
    Ok(())
}

fn letter(s: &str) -> Option<usize> {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => LETTERS.find(c),
        _ => None,
    }
}

fn too_many(name: &str) -> Bad {
    Bad::new(
        format!(
            "host pattern {} stands for more than {MAX_HOSTS} hosts",
            shown(name)
        ),
        "check the range's ends; split a fleet this large over several inventories",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(p: &str) -> Vec<String> {
        expand(p).unwrap().names
    }

    fn err(p: &str) -> String {
        expand(p).unwrap_err().message
    }

    #[test]
    fn numeric_ranges_pad_as_written() {
        assert_eq!(
            names("www[01:03].example.com"),
            [
                "www01.example.com",
                "www02.example.com",
                "www03.example.com"
            ]
        );
        assert_eq!(names("h[8:11]"), ["h8", "h9", "h10", "h11"]);
        assert_eq!(names("h[:2]"), ["h0", "h1", "h2"]);
        assert_eq!(names("h[0:0]"), ["h0"]);
        assert_eq!(names("www[01:10:3]"), ["www01", "www04", "www07", "www10"]);
        assert_eq!(names("www[001:100]").len(), 100);
        assert_eq!(names("www[001:100]")[99], "www100");
    }

    #[test]
    fn letter_ranges_and_several_ranges() {
        assert_eq!(
            names("db-[a:f].example.com"),
            [
                "db-a.example.com",
                "db-b.example.com",
                "db-c.example.com",
                "db-d.example.com",
                "db-e.example.com",
                "db-f.example.com"
            ]
        );
        assert_eq!(names("x[y:B]"), ["xy", "xz", "xA", "xB"]);
        assert_eq!(names("x[a:e:2]"), ["xa", "xc", "xe"]);
        assert_eq!(names("r[1:2]-n[a:b]"), ["r1-na", "r1-nb", "r2-na", "r2-nb"]);
    }

    #[test]
    fn ports() {
        assert_eq!(
            expand("badwolf.example.com:5309").unwrap(),
            Expanded {
                names: vec!["badwolf.example.com".into()],
                port: Some(5309)
            }
        );
        let e = expand("web[1:2]:2222").unwrap();
        assert_eq!(
            (e.names, e.port),
            (vec!["web1".into(), "web2".into()], Some(2222))
        );
        assert_eq!(expand("plain").unwrap().port, None);
        assert_eq!(err("web:"), "host pattern `web:` ends in ':'");
        assert_eq!(err("web:0"), "port 0 is out of range");
        assert_eq!(err("web:70000"), "port 70000 is out of range");
        assert_eq!(
            err("fe80::1"),
            "host pattern `fe80::1` has a ':' that is not before a port"
        );
        assert_eq!(
            err("web:ssh"),
            "host pattern `web:ssh` has a ':' that is not before a port"
        );
    }

    #[test]
    fn bad_ranges() {
        assert_eq!(
            err("h[5:1]"),
            "host range [5:1] in `h[5:1]`: it starts after its end"
        );
        assert_eq!(
            err("h[f:a]"),
            "host range [f:a] in `h[f:a]`: it starts after its end"
        );
        assert_eq!(
            err("h[01:100]"),
            "host range [01:100] in `h[01:100]`: a zero-padded start and its end must have the same number of digits"
        );
        assert_eq!(err("h[1:]"), "host range [1:] in `h[1:]`: it has no end");
        assert_eq!(
            err("h[1:3:0]"),
            "host range [1:3:0] in `h[1:3:0]`: the step must be a whole number of at least 1"
        );
        assert_eq!(
            err("h[1]"),
            "host range [1] in `h[1]`: it is not start:end or start:end:step"
        );
        assert_eq!(
            err("h[a:3]"),
            "host range [a:3] in `h[a:3]`: start and end must both be numbers or both single letters"
        );
        assert_eq!(err("h[1:2"), "host pattern `h[1:2` has a '[' without a ']'");
        assert_eq!(
            err("h[0:99999999]"),
            "host pattern `h[0:99999999]` stands for more than 100000 hosts"
        );
        assert_eq!(
            err("h[0:999]x[0:999]"),
            "host pattern `h[0:999]x[0:999]` stands for more than 100000 hosts"
        );
    }
}
