//! What `--store` names: a `postgres://` URL (sqlx reads it, `sslmode` and the rest
//! as libpq does) or a libpq conninfo (`host=… dbname=… user=…`), read here. The
//! password, wherever it is given, never shows: [`redact`].

use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

/// The connection options `spec` names; what is wrong with it otherwise (the text
/// names no password).
pub fn parse_options(spec: &str) -> Result<PgConnectOptions, String> {
    let s = spec.trim();
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        return PgConnectOptions::from_str(s).map_err(|e| redact(&e.to_string()));
    }
    if !s.contains('=') {
        return Err("not a postgres:// URL nor a conninfo (key=value ...)".into());
    }
    let mut o = PgConnectOptions::new();
    for (k, v) in pairs(s)? {
        o = match k.as_str() {
            "host" | "hostaddr" => o.host(&v),
            "port" => o.port(
                v.parse()
                    .map_err(|_| format!("port `{v}` is not a number"))?,
            ),
            "user" => o.username(&v),
            "password" => o.password(&v),
            "dbname" => o.database(&v),
            "sslmode" => {
                o.ssl_mode(PgSslMode::from_str(&v).map_err(|_| format!("unknown sslmode `{v}`"))?)
            }
            "sslrootcert" => o.ssl_root_cert(&v),
            "sslcert" => o.ssl_client_cert(&v),
            "sslkey" => o.ssl_client_key(&v),
            "application_name" => o.application_name(&v),
            "connect_timeout" => o,
            other => return Err(format!("conninfo key `{other}` is not supported here")),
        };
    }
    Ok(o)
}

/// `key=value` pairs of a conninfo; values may be single-quoted (`\'` and `\\` inside).
fn pairs(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(format!("conninfo: `{key}` has no `=value`"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => {
                        return Err(format!(
                            "conninfo: the value of `{key}` has no closing quote"
                        ))
                    }
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

/// `spec` with any password hidden: a URL's `user:secret@` and `password=` (a
/// conninfo key or a URL parameter) show as `***`.
pub fn redact(spec: &str) -> String {
    let mut s = spec.to_string();
    if let Some(scheme) = s.find("://") {
        let rest = scheme + 3;
        let end = s[rest..].find(['/', '?']).map_or(s.len(), |i| rest + i);
        if let Some(at) = s[rest..end].rfind('@') {
            let at = rest + at;
            if let Some(colon) = s[rest..at].find(':') {
                s.replace_range(rest + colon + 1..at, "***");
            }
        }
    }
    // `password=...` as a conninfo key or a URL query parameter.
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(off) = lower[i..].find("password") {
        let k = i + off;
        let mut j = k + "password".len();
        let bytes = s.as_bytes();
        while j < s.len() && bytes[j] == b' ' {
            j += 1;
        }
        if j < s.len() && bytes[j] == b'=' {
            j += 1;
            while j < s.len() && bytes[j] == b' ' {
                j += 1;
            }
            let end = if j < s.len() && bytes[j] == b'\'' {
                let mut e = j + 1;
                while e < s.len() && bytes[e] != b'\'' {
                    e += if bytes[e] == b'\\' { 2 } else { 1 };
                }
                (e + 1).min(s.len())
            } else {
                s[j..].find([' ', '&']).map_or(s.len(), |e| j + e)
            };
            out.push_str(&s[i..j]);
            out.push_str("***");
            i = end;
        } else {
            out.push_str(&s[i..j]);
            i = j;
        }
    }
    out.push_str(&s[i..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact("postgres://ann:s3cret@db:5432/wavectl?sslmode=require"),
            "postgres://ann:***@db:5432/wavectl?sslmode=require"
        );
        assert_eq!(redact("postgres://ann@db/w"), "postgres://ann@db/w");
        assert_eq!(
            redact("postgresql://db/w?user=ann&password=s3cret&sslmode=verify-full"),
            "postgresql://db/w?user=ann&password=***&sslmode=verify-full"
        );
        assert_eq!(
            redact("host=db password='a b\\' c' dbname=w"),
            "host=db password=*** dbname=w"
        );
        assert_eq!(
            redact("host=db password = x user=ann"),
            "host=db password = *** user=ann"
        );
    }

    #[test]
    fn a_conninfo_reads_as_libpq_reads_it() {
        let o = parse_options(
            "host=db.example port=6432 user=ann dbname='wave ctl' sslmode=verify-full",
        )
        .unwrap();
        assert_eq!(o.get_host(), "db.example");
        assert_eq!(o.get_port(), 6432);
        assert_eq!(o.get_username(), "ann");
        assert_eq!(o.get_database(), Some("wave ctl"));
        assert!(matches!(o.get_ssl_mode(), PgSslMode::VerifyFull));
        let e = parse_options("host=db sslmode=sometimes").unwrap_err();
        assert!(e.contains("sslmode"), "{e}");
        assert!(parse_options("db.example").is_err());
        let e = parse_options("host=db password='x").unwrap_err();
        assert!(e.contains("closing quote"), "{e}");
    }
}
