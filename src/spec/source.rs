//! A TOML file being read: its path and text, turning byte spans into `InputError`s
//! that name the file and line:col. Pure; the caller reads the file.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::diag::{InputError, Pos};

/// The path and text of one input file, for errors that point into it.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// As the user named it (errors show it this way).
    pub path: PathBuf,
    pub text: String,
}

impl SourceFile {
    /// Read `path` as UTF-8 text; `what` names the file's role in errors ("rollout spec").
    pub fn read(path: &Path, what: &str) -> Result<SourceFile, InputError> {
        let bytes = std::fs::read(path).map_err(|e| {
            let (message, help) = match e.kind() {
                std::io::ErrorKind::NotFound => (
                    format!("{what} not found"),
                    "check the path; relative paths are resolved against the current directory"
                        .to_string(),
                ),
                std::io::ErrorKind::PermissionDenied => (
                    format!("{what} is not readable: permission denied"),
                    "fix the file's permissions or run as a user that can read it".to_string(),
                ),
                _ => (
                    format!("cannot read {what}: {}", lower_io(&e)),
                    "check that the path names a readable file".to_string(),
                ),
            };
            InputError::in_file(path, message).help(help)
        })?;
        let text = String::from_utf8(bytes).map_err(|e| {
            let pos = Pos::of_offset(
                &String::from_utf8_lossy(e.as_bytes()),
                e.utf8_error().valid_up_to(),
            );
            InputError::in_file(path, format!("{what} is not valid UTF-8"))
                .at(pos)
                .help("save the file as UTF-8")
        })?;
        Ok(SourceFile {
            path: path.to_path_buf(),
            text,
        })
    }

    /// An error at the start of `span`.
    pub fn err(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> InputError {
        InputError::in_file(&self.path, message)
            .at(self.pos(span))
            .help(help)
    }

    /// An error about the whole file (a missing key, an empty inventory).
    pub fn err_file(&self, message: impl Into<String>, help: impl Into<String>) -> InputError {
        InputError::in_file(&self.path, message).help(help)
    }

    pub fn pos(&self, span: Range<usize>) -> Pos {
        Pos::of_offset(&self.text, span.start)
    }

    /// Deserialize the text, mapping TOML syntax and shape errors to `InputError`s.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, InputError> {
        toml::from_str(&self.text).map_err(|e| self.toml_error(&e))
    }

    fn toml_error(&self, e: &toml::de::Error) -> InputError {
        let message = e.message().trim().replace('\n', "; ");
        let help = if message.starts_with("unknown field") {
            "remove the key or fix its spelling"
        } else if message.starts_with("missing field") {
            "add the missing key"
        } else if message.starts_with("unknown variant") {
            "use one of the listed values"
        } else if message.starts_with("duplicate key") {
            "remove one of the two definitions of this key"
        } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
            "change the value to the expected type"
        } else {
            "fix the TOML syntax (see https://toml.io)"
        };
        let err = InputError::in_file(&self.path, message).help(help);
        match e.span() {
            Some(span) => err.at(self.pos(span)),
            None => err,
        }
    }
}

/// An io::Error's text with a lowercase first letter, to read as a message fragment.
pub(crate) fn lower_io(e: &std::io::Error) -> String {
    let s = e.to_string();
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => s,
    }
}
