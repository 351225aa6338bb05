//! Standard output that never panics. `println!` panics when stdout is a pipe whose
//! reader went away (`wavectl status | head`); a run must not stop for that, nor a
//! listing crash: what cannot be written is dropped (the journal is the record).

use std::io::Write;

/// Write `args` to stdout, dropping it if stdout is closed.
pub fn write(args: std::fmt::Arguments<'_>, newline: bool) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args);
    if newline {
        let _ = out.write_all(b"\n");
    }
}

/// `println!` that never panics (see the module).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::out::write(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), true)
    };
}

/// `print!` that never panics (see the module).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::out::write(format_args!($($arg)*), false)
    };
}
