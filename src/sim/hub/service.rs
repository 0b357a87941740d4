//! The service's side of the hub: OAuth tokens, notification channels with their topics
//! and socket, and analytics-stream listeners.

use super::*;

impl Hub {
    /// Issues a bearer token; returns it with its `expires_in` in seconds.
    pub(crate) fn issue_token(&self) -> (String, u64) {
        let mut state = self.lock();
        let now = Instant::now();
        state.tokens.retain(|_, expires| *expires > now);
        let token = format!("sim-{:032x}", state.rng.random::<u128>());
        let lifetime = self.settings.token_lifetime;
        // A lifetime past the clock's range (a test of hostile `expires_in`) never ends.
        let expires = now.checked_add(lifetime).unwrap_or(now + Duration::from_secs(100 * 365 * 86_400));
        state.tokens.insert(token.clone(), expires);
        (token, lifetime.as_secs())
    }

    pub(crate) fn token_is_valid(&self, token: &str) -> bool {
        self.lock().tokens.get(token).is_some_and(|expires| *expires > Instant::now())
    }

    /// A new channel for the client holding `token` (with `channel_dies_with_token`, the
    /// channel dies with it). At [`MAX_CHANNELS`] the oldest channel without an open socket
    /// makes room; `None`: every one has a socket, and the channel is refused.
    pub(crate) fn create_channel(&self, token: &str) -> Option<ChannelInfo> {
        let mut state = self.lock();
        if state.channels.len() >= MAX_CHANNELS {
            let unconnected = state.channels.iter().position(|c| c.socket.is_none())?;
            state.channels.remove(unconnected);
        }
        let id = format!("streaming-0-{:032x}", state.rng.random::<u128>());
        let lifetime = self.settings.channel_lifetime;
        let dies_at =
            if self.settings.channel_dies_with_token { state.tokens.get(token).copied() } else { None };
        state.channels.push_back(Channel {
            id: id.clone(),
            topics: BTreeSet::new(),
            expires_at: Instant::now() + lifetime,
            dies_at,
            socket: None,
        });
        let expires = Utc::now() + lifetime;
        let connect_uri = match state.connect_uri_fault.take() {
            Some((uri, remaining)) => {
                if remaining > 1 {
                    state.connect_uri_fault = Some((uri.clone(), remaining - 1));
                }
                Some(uri)
            }
            None => None,
        };
        Some(ChannelInfo { id, expires: format_millis(&expires), connect_uri })
    }

    pub(crate) fn channel_is_alive(&self, channel_id: &str) -> bool {
        let now = Instant::now();
        self.lock().channels.iter().any(|c| c.id == channel_id && c.is_alive(now))
    }

    /// The REST subscriptions call on a channel. PUT and POST answer one entity per
    /// requested topic (in request order); GET lists the channel's topics; DELETE empties it.
    pub(crate) fn subscriptions(
        &self,
        channel_id: &str,
        op: SubscriptionOp,
        requested: Vec<String>,
    ) -> Result<Vec<TopicState>, SubscriptionError> {
        let mut state = self.lock();
        let now = Instant::now();
        let lifetime = self.settings.channel_lifetime;
        let channel = state
            .channels
            .iter_mut()
            .find(|c| c.id == channel_id && c.is_alive(now))
            .ok_or(SubscriptionError::UnknownChannel)?;
        let mut requested_unique = Vec::new();
        for topic in requested {
            if !requested_unique.contains(&topic) {
                requested_unique.push(topic);
            }
        }
        let answer = |topics: &[String]| -> Vec<TopicState> {
            topics
                .iter()
                .map(|t| TopicState { id: t.clone(), rejection: protocol::check_topic(t).err() })
                .collect()
        };
        let entities = match op {
            SubscriptionOp::List => {
                return Ok(channel
                    .topics
                    .iter()
                    .map(|t| TopicState { id: t.clone(), rejection: None })
                    .collect())
            }
            SubscriptionOp::RemoveAll => {
                channel.topics.clear();
                return Ok(Vec::new());
            }
            SubscriptionOp::Replace => {
                if requested_unique.len() > MAX_TOPICS {
                    return Err(SubscriptionError::TooManyTopics);
                }
                let entities = answer(&requested_unique);
                channel.topics = permitted(&entities);
                entities
            }
            SubscriptionOp::Add => {
                let entities = answer(&requested_unique);
                let mut topics = channel.topics.clone();
                topics.extend(permitted(&entities));
                if topics.len() > MAX_TOPICS {
                    return Err(SubscriptionError::TooManyTopics);
                }
                channel.topics = topics;
                entities
            }
        };
        // Subscribing again is what keeps a channel alive past its first day.
        channel.expires_at = now + lifetime;
        self.wake_playback(&mut state);
        Ok(entities)
    }

    /// Makes `tx` the channel's socket, closing the one it had. `false`: no such channel.
    pub(crate) fn attach_socket(&self, channel_id: &str, socket_id: u64, tx: SocketTx) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        let Some(channel) = state.channels.iter_mut().find(|c| c.id == channel_id && c.is_alive(now)) else {
            return false;
        };
        channel.close_socket("another socket connected to this channel");
        channel.socket = Some((socket_id, tx.clone()));
        state.sockets.insert(socket_id, OpenSocket { tx, dialect: Dialect::Notifications });
        self.live_sockets.fetch_add(1, Ordering::SeqCst);
        self.wake_playback(&mut state);
        true
    }

    /// Forgets a socket whose reader has ended (either dialect); called once per socket
    /// that [`Hub::attach_socket`] or [`Hub::register_socket`] accepted.
    pub(crate) fn detach_socket(&self, socket_id: u64) {
        self.live_sockets.fetch_sub(1, Ordering::SeqCst);
        let mut state = self.lock();
        state.sockets.remove(&socket_id);
        state.analytics.remove(&socket_id);
        for channel in &mut state.channels {
            if channel.socket.as_ref().is_some_and(|(id, _)| *id == socket_id) {
                channel.socket = None;
            }
        }
    }

    /// A `{"message":"subscribe"}` on the socket: adds the permitted topics and queues the
    /// reply (404 when the socket no longer owns a live channel).
    pub(crate) fn subscribe_on_socket(
        &self,
        channel_id: &str,
        socket_id: u64,
        topics: Vec<String>,
        correlation_id: Option<&serde_json::Value>,
        reply_to: &SocketTx,
    ) {
        let mut state = self.lock();
        let now = Instant::now();
        let channel = state.channels.iter_mut().find(|c| {
            c.id == channel_id && c.is_alive(now) && c.socket.as_ref().is_some_and(|(id, _)| *id == socket_id)
        });
        let alive = match channel {
            Some(channel) => {
                let permitted = topics.into_iter().filter(|t| protocol::check_topic(t).is_ok());
                let mut wanted = channel.topics.clone();
                wanted.extend(permitted);
                if wanted.len() <= MAX_TOPICS {
                    channel.topics = wanted;
                }
                true
            }
            None => false,
        };
        reply_to.offer(Outbound::Control(protocol::subscribe_reply(alive, correlation_id).into()));
        if alive {
            self.wake_playback(&mut state);
        }
    }

    /// When the socket's channel ends, or `None` once the socket no longer owns a live
    /// channel (replaced, evicted, expired).
    pub(crate) fn socket_deadline(&self, channel_id: &str, socket_id: u64) -> Option<ChannelDeadline> {
        self.lock()
            .channels
            .iter()
            .find(|c| c.id == channel_id && c.socket.as_ref().is_some_and(|(id, _)| *id == socket_id))
            .map(|c| ChannelDeadline { expires_at: c.expires_at, dies_at: c.dies_at })
    }

    /// Drops an expired channel and closes its socket.
    pub(crate) fn expire_channel(&self, channel_id: &str) {
        let mut state = self.lock();
        let now = Instant::now();
        if let Some(index) = state.channels.iter().position(|c| c.id == channel_id && !c.is_alive(now)) {
            if let Some(mut channel) = state.channels.remove(index) {
                channel.close_socket("channel expired");
            }
        }
    }

    pub(crate) fn next_socket_id(&self) -> u64 {
        self.next_socket.fetch_add(1, Ordering::SeqCst)
    }

    /// A seeded correlation id for frames built outside [`Hub::publish`].
    pub(crate) fn correlation_id(&self) -> String {
        seeded_uuid(&mut self.lock().rng)
    }

    /// Registers an analytics socket as soon as it opens, so `close_all` reaches it.
    pub(crate) fn register_socket(&self, socket_id: u64, tx: SocketTx) {
        self.live_sockets.fetch_add(1, Ordering::SeqCst);
        self.lock().sockets.insert(socket_id, OpenSocket { tx, dialect: Dialect::Analytics });
    }

    /// Sets (or replaces) an analytics socket's filter and queues `{"status":"subscribed"}`
    /// ahead of any event it matches.
    pub(crate) fn subscribe_analytics(&self, socket_id: u64, tx: &SocketTx, filter: AnalyticsFilter) {
        let mut state = self.lock();
        tx.offer(Outbound::Control(protocol::ANALYTICS_SUBSCRIBED.into()));
        state.analytics.insert(socket_id, AnalyticsListener { tx: tx.clone(), filter });
        self.wake_playback(&mut state);
    }
}

/// The topics of a subscription answer that were not rejected.
fn permitted(entities: &[TopicState]) -> BTreeSet<String> {
    entities.iter().filter(|e| e.rejection.is_none()).map(|e| e.id.clone()).collect()
}
