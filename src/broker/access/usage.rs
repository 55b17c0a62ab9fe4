//! What users and vhosts use now (open connections, open channels), checked against their
//! limits when a connection opens and when a channel opens. Touched only on those events,
//! never per message.

use super::{UserLimits, VhostLimits};
use crate::error::{AmqpError, AmqpResult};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Default)]
struct Counts {
    /// Open connections per vhost.
    vhost_connections: HashMap<String, u64>,
    /// Open connections and channels per user.
    user_connections: HashMap<String, u64>,
    user_channels: HashMap<String, u64>,
}

/// The broker's usage counters.
#[derive(Debug, Default)]
pub struct Usage {
    counts: Mutex<Counts>,
}

fn over(limit: Option<u64>, used: u64) -> Option<u64> {
    limit.filter(|max| used >= *max)
}

impl Usage {
    /// Counts a connection of `user` to `vhost`, unless a limit says no (RabbitMQ's checks at
    /// connection.open, in its order: the vhost's limit, then the user's; 530 NOT_ALLOWED).
    pub fn open_connection(
        self: &Arc<Self>,
        vhost: &str,
        vhost_limits: VhostLimits,
        user: &str,
        user_limits: UserLimits,
    ) -> AmqpResult<ConnectionSlot> {
        let mut c = self.counts.lock();
        let in_vhost = c.vhost_connections.get(vhost).copied().unwrap_or(0);
        if let Some(max) = over(vhost_limits.max_connections, in_vhost) {
            return Err(AmqpError::not_allowed(format!(
                "access to vhost '{vhost}' refused for user '{user}': connection limit ({max}) is reached"
            )));
        }
        let of_user = c.user_connections.get(user).copied().unwrap_or(0);
        if let Some(max) = over(user_limits.max_connections, of_user) {
            return Err(AmqpError::not_allowed(format!(
                "Connection refused for user '{user}': user connection limit ({max}) is reached"
            )));
        }
        *c.vhost_connections.entry(vhost.to_string()).or_default() += 1;
        *c.user_connections.entry(user.to_string()).or_default() += 1;
        Ok(ConnectionSlot {
            usage: self.clone(),
            vhost: vhost.to_string(),
            user: user.to_string(),
            max_channels: user_limits.max_channels,
            channels: 0,
        })
    }

    /// Open connections in `vhost`.
    pub fn vhost_connections(&self, vhost: &str) -> u64 {
        self.counts
            .lock()
            .vhost_connections
            .get(vhost)
            .copied()
            .unwrap_or(0)
    }
}

/// One open connection's place in the counts; given back when dropped.
#[derive(Debug)]
pub struct ConnectionSlot {
    usage: Arc<Usage>,
    vhost: String,
    user: String,
    max_channels: Option<u64>,
    channels: u64,
}

impl ConnectionSlot {
    /// Counts a channel.open, unless the user's max-channels says no (530, RabbitMQ's text).
    pub fn open_channel(&mut self) -> AmqpResult<()> {
        let mut c = self.usage.counts.lock();
        let of_user = c.user_channels.get(&self.user).copied().unwrap_or(0);
        if let Some(max) = over(self.max_channels, of_user) {
            return Err(AmqpError::not_allowed(format!(
                "number of channels opened for user '{}' has reached the maximum allowed user limit of ({max})",
                self.user
            )));
        }
        *c.user_channels.entry(self.user.clone()).or_default() += 1;
        self.channels += 1;
        Ok(())
    }

    /// `n` channels of this connection are gone.
    pub fn close_channels(&mut self, n: u64) {
        let n = n.min(self.channels);
        if n == 0 {
            return;
        }
        self.channels -= n;
        let mut c = self.usage.counts.lock();
        if let Some(count) = c.user_channels.get_mut(&self.user) {
            *count = count.saturating_sub(n);
        }
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.close_channels(self.channels);
        let mut c = self.usage.counts.lock();
        if let Some(count) = c.vhost_connections.get_mut(&self.vhost) {
            *count = count.saturating_sub(1);
        }
        if let Some(count) = c.user_connections.get_mut(&self.user) {
            *count = count.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_open_connections_and_channels_and_give_them_back() {
        let usage = Arc::new(Usage::default());
        let vhost = VhostLimits {
            max_connections: Some(2),
            max_queues: None,
        };
        let user = UserLimits {
            max_connections: Some(1),
            max_channels: Some(2),
        };
        let mut a = usage
            .open_connection("v", vhost, "alice", user)
            .expect("first");
        let e = usage
            .open_connection("v", vhost, "alice", user)
            .expect_err("alice's limit");
        assert_eq!(e.text, "NOT_ALLOWED - Connection refused for user 'alice': user connection limit (1) is reached");
        let _b = usage
            .open_connection("v", vhost, "bob", UserLimits::default())
            .expect("bob");
        let e = usage
            .open_connection("v", vhost, "carol", UserLimits::default())
            .expect_err("the vhost's limit");
        assert_eq!(e.text, "NOT_ALLOWED - access to vhost 'v' refused for user 'carol': connection limit (2) is reached");
        a.open_channel().expect("1");
        a.open_channel().expect("2");
        assert!(a.open_channel().is_err());
        a.close_channels(1);
        a.open_channel().expect("again");
        drop(a);
        assert_eq!(usage.vhost_connections("v"), 1);
        usage
            .open_connection("v", vhost, "alice", user)
            .expect("alice again");
    }
}
