//! Policies changed: every queue and exchange of the vhost gets what the policies that apply
//! now give it (RabbitMQ re-evaluates them on every policy change, not only at declare).

use super::{timers, VHost};
use crate::broker::access::Access;
use crate::broker::exchange::Exchange;
use crate::broker::queue::Queue;
use std::sync::Arc;

impl VHost {
    /// Re-applies the policies and operator policies of this vhost to its queues (limits,
    /// TTLs, dead-lettering, x-expires; a lower length limit takes effect at once) and its
    /// exchanges (alternate exchange).
    pub fn apply_policies(&self, access: &Access) {
        let queues: Vec<Arc<Queue>> = self.queues.read().values().cloned().collect();
        for q in queues {
            let policy = access.queue_policy(&self.name, q.name(), q.quorum);
            let (expires_started, fx) = q.apply_policy(policy.as_ref());
            self.carry_out(&q, fx);
            if expires_started {
                timers::start_idle_timer(self, &q);
            }
        }
        let exchanges: Vec<Arc<Exchange>> = self.exchanges.read().values().cloned().collect();
        for x in exchanges {
            let alternate = access.exchange_policy_alternate(&self.name, &x.spec.name);
            x.set_policy_alternate(alternate.as_deref());
        }
    }
}
