//! The local lab fleet: real sshd hosts, each in its own namespaces with overlays
//! (used by `wavectl demo` and by the tests).
