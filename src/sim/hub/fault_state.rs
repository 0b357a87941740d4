//! The faults' side of the hub: switching a fault on (`apply`), the injected HTTP errors
//! answered per request, the hostile peer's schedule, and the record of requests.

use super::*;

impl Hub {
    /// Applies one (valid) fault to the service as it is now.
    pub(crate) fn apply(&self, fault: &Fault) {
        let mut state = self.lock();
        self.apply_locked(&mut state, fault);
    }

    /// Keep `method target` of a request (the last `REQUESTS_KEPT`).
    pub(crate) fn record_request(&self, method: &str, target: &str) {
        let mut state = self.lock();
        if state.requests.len() == REQUESTS_KEPT {
            state.requests.pop_front();
        }
        state.requests.push_back((Instant::now(), format!("{method} {target}")));
    }

    pub(crate) fn requests(&self) -> Vec<(Instant, String)> {
        self.lock().requests.iter().cloned().collect()
    }

    /// The rate of the hostile peer while a `Fault::Hostile` lasts.
    pub(crate) fn hostile_rate(&self) -> Option<u32> {
        let state = self.lock();
        state.hostile.filter(|(until, _)| Instant::now() < *until).map(|(_, rate)| rate)
    }

    /// `frame` to every open socket, as `Fault::Inject` does.
    pub(crate) fn offer_to_every_socket(&self, frame: FaultFrame) {
        let state = self.lock();
        for socket in state.sockets.values() {
            socket.tx.offer(Outbound::Fault(frame.clone()));
        }
    }

    pub(crate) fn faults_applied(&self) -> u64 {
        self.faults_applied.load(Ordering::SeqCst)
    }

    /// Conversations with a transition no listening socket received.
    pub(crate) fn hidden(&self) -> BTreeSet<String> {
        self.outlet.hidden()
    }

    pub(super) fn apply_locked(&self, state: &mut State, fault: &Fault) {
        self.faults_applied.fetch_add(1, Ordering::SeqCst);
        let now = Instant::now();
        match fault {
            Fault::DropSocket => {
                for socket in state.sockets.values() {
                    socket.tx.abort();
                }
                state.forget_listeners();
            }
            Fault::DropChannelSocket { topic } => {
                for channel in state.channels.iter_mut().filter(|c| c.topics.contains(topic)) {
                    if let Some((_, tx)) = channel.socket.take() {
                        tx.abort(); // its reader ends and detaches it
                    }
                }
            }
            Fault::Close { code } => {
                for socket in state.sockets.values() {
                    socket.tx.offer(Outbound::Close(Some(CloseReason {
                        code: CloseCode::from(*code),
                        description: Some("closed by a simulated fault".to_owned()),
                    })));
                }
                state.forget_listeners();
            }
            Fault::Stall { seconds } => {
                // `validate` has checked the number; a bad one stalls nothing.
                let until =
                    Duration::try_from_secs_f64(*seconds).ok().and_then(|stall| now.checked_add(stall));
                if let Some(until) = until {
                    for socket in state.sockets.values() {
                        socket.tx.stall(until);
                    }
                }
            }
            Fault::SocketClosing { close_after } => announce_socket_closing(state, now, *close_after),
            Fault::ExpireChannel => {
                state.channels.retain_mut(|channel| {
                    if channel.socket.is_none() {
                        return true;
                    }
                    channel.close_socket("channel expired");
                    false
                });
            }
            Fault::Http { path, status, retry_after, count } => state.http_faults.push_back(HttpFault {
                path: path.clone(),
                answer: HttpAnswer { status: *status, retry_after: *retry_after },
                remaining: *count,
            }),
            Fault::Malformed { count } => self.send_malformed(state, *count),
            Fault::Oversized { bytes } => {
                for socket in state.sockets.values() {
                    let frame = faults::oversized_frame(socket.dialect, *bytes);
                    socket.tx.offer(Outbound::Fault(FaultFrame::Text(frame)));
                }
            }
            Fault::Inject { text, binary } => {
                if let Some(frame) = faults::injected_frame(text.as_deref(), binary.as_deref()) {
                    for socket in state.sockets.values() {
                        socket.tx.offer(Outbound::Fault(frame.clone()));
                    }
                }
            }
            Fault::EvictChannel => {
                // As if MAX_CHANNELS more were created: every channel there is goes.
                for mut evicted in std::mem::take(&mut state.channels) {
                    evicted.close_socket("channel evicted");
                }
            }
            Fault::RevokeToken => state.tokens.clear(),
            Fault::ConnectUri { uri, count } => state.connect_uri_fault = Some((uri.clone(), *count)),
            Fault::Hostile { seconds, rate } => {
                // `validate` has checked the number; a bad one starts nothing.
                let until =
                    Duration::try_from_secs_f64(*seconds).ok().and_then(|lasts| now.checked_add(lasts));
                state.hostile = until.map(|until| (until, *rate));
            }
        }
    }

    /// `count` malformed frames of each socket's dialect on every socket.
    fn send_malformed(&self, state: &mut State, count: u64) {
        let sockets: Vec<(SocketTx, Dialect)> =
            state.sockets.values().map(|s| (s.tx.clone(), s.dialect)).collect();
        for (tx, dialect) in sockets {
            for n in 0..count {
                let conversation = seeded_uuid(&mut state.rng);
                let participant = seeded_uuid(&mut state.rng);
                let correlation = seeded_uuid(&mut state.rng);
                let ids = BadFrameIds {
                    queue: &self.settings.malformed_queue,
                    conversation: &conversation,
                    participant: &participant,
                    correlation: &correlation,
                };
                tx.offer(Outbound::Fault(faults::malformed_frame(dialect, n, &ids)));
            }
        }
    }

    /// An injected error for a request to `path`, if one is due (and counts it). The
    /// simulator's own `/sim` endpoints are never faulted.
    pub(crate) fn take_http_fault(&self, path: &str) -> Option<HttpAnswer> {
        if path.starts_with("/sim/") {
            return None;
        }
        let mut state = self.lock();
        let index = state.http_faults.iter().position(|f| path.starts_with(&f.path))?;
        let fault = &mut state.http_faults[index];
        let answer = fault.answer;
        fault.remaining -= 1;
        if fault.remaining == 0 {
            state.http_faults.remove(index);
        }
        Some(answer)
    }
}

/// Every notifications socket is told `socket_closing`, then closed `close_after` later.
fn announce_socket_closing(state: &mut State, now: Instant, close_after: Duration) {
    let close_at = now.checked_add(close_after).unwrap_or(now);
    let sockets: Vec<SocketTx> = state
        .sockets
        .values()
        .filter(|s| s.dialect == Dialect::Notifications)
        .map(|s| s.tx.clone())
        .collect();
    for tx in sockets {
        let frame = protocol::socket_closing(&seeded_uuid(&mut state.rng));
        tx.offer(Outbound::Control(frame.into()));
        tx.offer(Outbound::CloseAt(
            close_at,
            CloseReason { code: CloseCode::Away, description: Some("socket closing".to_owned()) },
        ));
    }
}
