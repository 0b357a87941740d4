//! Playback's side of the hub: each transition published to the sockets that listen for
//! it, and the conversations played so far kept for backfill, the details query and the
//! ground truth.

use super::*;

impl Hub {
    /// Plays one transition: updates the conversation store and queues its frames on
    /// every socket with a matching subscription. The transition's [`Ticket`] learns who
    /// should have received it, so a loss to a fault is known (see `outbound.rs`).
    pub(crate) fn publish(&self, step: &Step) {
        let mut guard = self.lock();
        let state = &mut *guard;
        state.record(step);
        let ticket = Ticket::new(&self.outlet, &step.conversation.id, self.send_log_key(step));
        if !state.is_listening() {
            // Nobody connected: whatever this transition carried is lost for good.
            ticket.owe();
        }

        let now = Instant::now();
        let topics = protocol::topics_for(step);
        let mut bodies: [Option<String>; 3] = [None, None, None];
        let duplicates = self.settings.duplicates;
        for channel in &state.channels {
            if !channel.is_alive(now) {
                continue;
            }
            for (topic, kind) in &topics {
                if !channel.topics.contains(topic) {
                    continue;
                }
                let Some((_, tx)) = &channel.socket else {
                    // Subscribed, but no socket to carry it.
                    ticket.owe();
                    continue;
                };
                let body = bodies[body_slot(*kind)].get_or_insert_with(|| protocol::body(*kind, step));
                let correlation_id = seeded_uuid(&mut state.rng);
                let frame: Arc<str> = protocol::notification(topic, body, &correlation_id).into();
                send_data(tx, frame, &ticket, duplicates, &mut state.rng);
            }
        }

        if state.analytics.is_empty() {
            return;
        }
        let Some(event) = protocol::analytics_event(step) else {
            return;
        };
        let frame: Arc<str> = event.into();
        for listener in state.analytics.values() {
            if listener.filter.matches(&step.conversation) {
                send_data(&listener.tx, frame.clone(), &ticket, duplicates, &mut state.rng);
            }
        }
    }

    /// The join or leave `step` is, for the send log (none without one, or for a missed
    /// alert's end).
    fn send_log_key(&self, step: &Step) -> Option<TransitionKey> {
        if !self.outlet.keeps_send_log() {
            return None;
        }
        let participant = step.participant();
        participant.connected_at?;
        Some(TransitionKey {
            conversation: step.conversation.id.clone(),
            participant: participant.id.clone(),
            joined: step.transition().kind == generator::TransitionKind::Connected,
        })
    }

    /// Hands `frames` to the first listening socket (the oldest notification channel with
    /// a socket and a topic, else an analytics listener), whose writer plays them at
    /// `rate` frames per second. `None` when nobody listens. The frames are sent as they
    /// are, whatever the socket subscribed to: the benchmarks' fast playback.
    pub(crate) fn stream(
        &self,
        frames: Box<dyn Iterator<Item = Arc<str>> + Send>,
        rate: u32,
    ) -> Option<tokio::sync::oneshot::Receiver<StreamReport>> {
        let state = self.lock();
        let tx = state
            .channels
            .iter()
            .filter(|c| !c.topics.is_empty())
            .find_map(|c| c.socket.as_ref().map(|(_, tx)| tx))
            .or_else(|| state.analytics.values().next().map(|l| &l.tx))?;
        let (done, report) = tokio::sync::oneshot::channel();
        tx.offer(Outbound::Stream(FrameStream { frames, rate, done })).then_some(report)
    }

    /// The conversation as it stands now, in the full snapshot shape.
    pub(crate) fn conversation(&self, conversation_id: &str) -> Option<String> {
        let state = self.lock();
        let order = state.order_by_id.get(conversation_id)?;
        let played = state.conversations.get(order)?;
        Some(protocol::conversation_resource(&played.conversation, played.played))
    }

    /// One page of the conversation-details query over the conversations played so far
    /// (an endless run searches the ones it still keeps).
    pub(crate) fn details(&self, query: &DetailsQuery) -> String {
        let state = self.lock();
        details::answer(query, state.conversations.values().map(|p| (&*p.conversation, p.played)))
    }

    /// Every conversation played so far, in start order.
    pub(crate) fn truth(&self) -> Vec<TimelineRecord> {
        self.lock().conversations.values().map(|p| generator::timeline(&p.conversation, p.played)).collect()
    }
}

impl State {
    fn record(&mut self, step: &Step) {
        let conversation = &step.conversation;
        if let Some(order) = self.order_by_id.get(&conversation.id) {
            if let Some(played) = self.conversations.get_mut(order) {
                played.played = played.played.max(step.played());
            }
            return;
        }
        let order = self.next_order;
        self.next_order += 1;
        self.order_by_id.insert(conversation.id.clone(), order);
        self.conversations
            .insert(order, Played { conversation: conversation.clone(), played: step.played() });
        if self.conversations.len() > MAX_RETAINED {
            // The oldest conversation ended long ago in any realistic run; an open one is
            // kept until it has ended.
            if let Some(entry) = self.conversations.first_entry() {
                let oldest = entry.get();
                if oldest.played == oldest.conversation.transitions.len() {
                    let played = entry.remove();
                    self.order_by_id.remove(&played.conversation.id);
                }
            }
        }
    }
}

fn body_slot(kind: BodyKind) -> usize {
    match kind {
        BodyKind::Full => 0,
        BodyKind::Flat => 1,
        BodyKind::Detail => 2,
    }
}

/// Queues a data frame, and with `duplicates` on sometimes queues it twice, verbatim.
fn send_data(tx: &SocketTx, frame: Arc<str>, ticket: &Arc<Ticket>, duplicates: bool, rng: &mut ChaCha8Rng) {
    if duplicates && rng.random_bool(DUPLICATE_RATE) {
        tx.offer_data(frame.clone(), ticket);
    }
    tx.offer_data(frame, ticket);
}
