//! POSIX shell quoting: the one place a string becomes part of a shell command.
