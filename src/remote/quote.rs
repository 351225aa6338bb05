//! POSIX shell quoting: the one place a string becomes part of a shell command.
//! Pure; the tests run `sh` and `bash` locally to prove the round trip.

/// Quotes `s` as one POSIX shell word: `it's` → `'it'\''s'`, the empty string → `''`.
///
/// Inside single quotes nothing is special to sh, dash or bash, so the only
/// character to handle is `'` itself (close, escaped quote, reopen). Every
/// other byte — newlines, `$`, backticks, `\`, non-ASCII — passes through as is.
pub fn sh_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Quotes every argument and joins them with single spaces.
pub fn sh_join(args: &[&str]) -> String {
    args.iter()
        .map(|a| sh_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn hostile(marker: &str) -> Vec<String> {
        vec![
            String::new(),
            "plain".into(),
            "it's".into(),
            "'".into(),
            "''".into(),
            "'\\''".into(),
            "\"double\"".into(),
            format!("$(touch {marker})"),
            format!("`touch {marker}`"),
            format!("'$(touch {marker})'"),
            format!("; touch {marker}"),
            format!("&& touch {marker} &&"),
            format!("| touch {marker}"),
            format!("\ntouch {marker}\n"),
            "with spaces  and\ttabs".into(),
            "*".into(),
            "/*".into(),
            "~".into(),
            "-n".into(),
            "--".into(),
            "-e \\n".into(),
            "back\\slash\\".into(),
            "${HOME}$HOME$0$1$@".into(),
            "héllo wörld ✓ 日本".into(),
            "a\nb\n\n".into(),
            "!event".into(),
            "#comment".into(),
            "{a,b}".into(),
            ">out <in".into(),
        ]
    }

    #[test]
    fn quotes_simple_cases() {
        assert_eq!(sh_quote(""), "''");
        assert_eq!(sh_quote("abc"), "'abc'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
        assert_eq!(sh_quote("$(x)"), "'$(x)'");
        assert_eq!(sh_join(&["a b", "", "c'd"]), "'a b' '' 'c'\\''d'");
        assert_eq!(sh_join(&[]), "");
    }

    /// Each hostile string, quoted and given to `printf '%s\0'` by a real shell,
    /// comes back byte for byte, and the marker file is never created.
    #[test]
    fn round_trips_through_sh_and_bash() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("pwned");
        let marker = marker.to_str().unwrap();
        let strings = hostile(marker);
        for shell in ["sh", "bash", "dash"] {
            assert!(
                Command::new(shell).arg("-c").arg("true").status().is_ok(),
                "{shell} is needed by this test (apt-get install -y dash bash)"
            );
            for s in &strings {
                let line = format!("printf '%s' {}", sh_quote(s));
                let out = Command::new(shell).arg("-c").arg(&line).output().unwrap();
                assert!(out.status.success(), "{shell}: {line}");
                assert_eq!(
                    String::from_utf8(out.stdout).unwrap(),
                    *s,
                    "{shell}: {line}"
                );
            }
            // All of them at once, as separate words.
            let refs: Vec<&str> = strings.iter().map(String::as_str).collect();
            let line = format!("printf '%s\\0' {}", sh_join(&refs));
            let out = Command::new(shell).arg("-c").arg(&line).output().unwrap();
            let expected: String = strings.iter().map(|s| format!("{s}\0")).collect();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), expected, "{shell}");
            // Nested: a quoted line given to `sh -c` as a quoted word (what ssh does).
            let outer = format!("sh -c {} wavectl", sh_quote(&line));
            let out = Command::new(shell).arg("-c").arg(&outer).output().unwrap();
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                expected,
                "{shell} nested"
            );
        }
        assert!(!std::path::Path::new(marker).exists(), "marker created");
    }
}
