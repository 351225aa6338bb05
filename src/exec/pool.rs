//! Connections kept for reuse between the actions of one phase (the deploy's login serves
//! the first run; a bake's logins serve every probe round), one per host.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::transport::Conn;

#[derive(Default)]
pub struct Pool {
    conns: Mutex<HashMap<String, Conn>>,
}

impl Pool {
    pub fn take(&self, host: &str) -> Option<Conn> {
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(host)
    }

    pub fn put(&self, host: &str, conn: Conn) {
        let old = self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(host.to_string(), conn);
        if let Some(old) = old {
            tokio::spawn(old.close());
        }
    }

    /// Close every connection.
    pub async fn close_all(&self) {
        let all: Vec<Conn> = self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, c)| c)
            .collect();
        futures::future::join_all(all.into_iter().map(Conn::close)).await;
    }
}
