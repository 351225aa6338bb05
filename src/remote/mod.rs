//! The on-host side: every remote command line and script, built and quoted in one place.
//! Pure text building and parsing; the transport carries the commands out.

pub mod quote;
