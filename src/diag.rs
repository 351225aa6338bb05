//! Errors a user can fix (bad spec, inventory or flags): what, where, and how to fix it.
//! They all end the program with exit code 2 before any host is contacted.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a file, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

impl Pos {
    /// Line and column of a byte offset in `text`.
    pub fn of_offset(text: &str, offset: usize) -> Pos {
        let offset = offset.min(text.len());
        let before = &text[..offset];
        let line = before.matches('\n').count() + 1;
        let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
        Pos { line, col }
    }
}

/// A user error: the file it comes from (if any), where in it, what is wrong, and a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file the bad value comes from; `None` for command-line flags.
    pub file: Option<PathBuf>,
    /// Where in the file, when known.
    pub pos: Option<Pos>,
    /// What is wrong, a lowercase fragment.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

impl InputError {
    pub fn new(message: impl Into<String>) -> Self {
        InputError {
            file: None,
            pos: None,
            message: message.into(),
            help: None,
        }
    }
    pub fn in_file(file: &Path, message: impl Into<String>) -> Self {
        InputError {
            file: Some(file.to_path_buf()),
            pos: None,
            message: message.into(),
            help: None,
        }
    }
    pub fn at(mut self, pos: Pos) -> Self {
        self.pos = Some(pos);
        self
    }
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.pos) {
            (Some(file), Some(p)) => write!(f, "{}:{}:{}: ", file.display(), p.line, p.col)?,
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            _ => {}
        }
        write!(f, "{}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "\n  help: {help}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_to_line_and_column() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(Pos::of_offset(text, 0), Pos { line: 1, col: 1 });
        assert_eq!(Pos::of_offset(text, 6), Pos { line: 2, col: 1 });
        assert_eq!(Pos::of_offset(text, 11), Pos { line: 2, col: 6 });
    }

    #[test]
    fn display_names_file_line_column_and_help() {
        let e = InputError::in_file(Path::new("r.toml"), "bad duration `5x`")
            .at(Pos { line: 3, col: 9 })
            .help("write a duration like \"90s\" or \"10m\"");
        assert_eq!(
            e.to_string(),
            "r.toml:3:9: bad duration `5x`\n  help: write a duration like \"90s\" or \"10m\""
        );
    }
}
