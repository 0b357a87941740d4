//! The bodies of the fuzz targets, one `pub fn` per target, each feeding bytes to the
//! daemon's decoder of one kind of outside input. The libFuzzer binaries in
//! `fuzz_targets/` call them, and so does the stable regression test
//! (`tests/fuzz_regressions.rs` includes this file), so a saved crash input replays
//! exactly what the fuzzer ran. A panic here is a finding; an `Err` is a correct answer.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use timelined_actors::connection::{Fragment, FrameKind, Reassembly, ReassemblyError};
use timelined_actors::wire::{self, Decoded, Dialect, RawFrame};

/// One fuzz target's body: the input bytes in, a panic if the decoder misbehaved.
pub type Target = fn(&[u8]);

/// The targets by name, as `cargo fuzz list` names them and as the directories under
/// `fuzz/regressions/` and `fuzz/seeds/` are named.
pub const TARGETS: [(&str, Target); 6] = [
    ("notifications_frame", notifications_frame),
    ("analytics_frame", analytics_frame),
    ("continuation", continuation),
    ("rest_response", rest_response),
    ("checkpoint", checkpoint),
    ("config", config),
];

/// One Notifications API frame, as text and as binary (which that socket refuses).
pub fn notifications_frame(data: &[u8]) {
    let text = wire::decode(Dialect::Notifications, RawFrame::Text(data));
    describe(&text);
    let binary = wire::decode(Dialect::Notifications, RawFrame::Binary(data));
    assert!(binary.is_err(), "a binary frame on the notifications socket must be refused");
}

/// One analytics-stream frame: text and binary frames carry the same JSON and must decode
/// alike.
pub fn analytics_frame(data: &[u8]) {
    let text = wire::decode(Dialect::AnalyticsStream, RawFrame::Text(data));
    describe(&text);
    let binary = wire::decode(Dialect::AnalyticsStream, RawFrame::Binary(data));
    assert_eq!(text, binary, "text and binary frames decode alike");
}

/// What the connection actor does with a decoded frame besides matching on it: log it.
fn describe(decoded: &Result<Decoded, wire::DecodeError>) {
    match decoded {
        Ok(Decoded::Events(events)) => {
            for event in &events.events {
                std::hint::black_box(format!("{event:?}"));
            }
            for rejection in &events.rejected {
                std::hint::black_box(rejection.reason.as_str());
            }
        }
        Ok(other) => {
            std::hint::black_box(format!("{other:?}"));
        }
        Err(error) => {
            std::hint::black_box((error.to_string(), error.reason.as_str()));
        }
    }
}

/// The size limit of the reassembly under test: small, so the fuzzer reaches it easily.
pub const CONTINUATION_LIMIT: usize = 64;

/// A sequence of continuation fragments: each starts with a control byte whose low two bits
/// say which fragment (first text, first binary, continue, last) and whose high six bits
/// say how many of the following bytes are its payload (0–63, fewer at the end of the
/// input). The reassembly is checked against a plain model of RFC 6455 reassembly after
/// every fragment, and must never hold more than its limit.
pub fn continuation(data: &[u8]) {
    let mut reassembly = Reassembly::new(CONTINUATION_LIMIT);
    // What the reassembly should hold: the kind and bytes of the message being assembled.
    let mut model: Option<(FrameKind, Vec<u8>)> = None;
    let mut rest = data;
    while let Some((&control, tail)) = rest.split_first() {
        let length = usize::from(control >> 2).min(tail.len());
        let (payload, tail) = tail.split_at(length);
        rest = tail;
        let bytes = Bytes::copy_from_slice(payload);
        let (fragment, expected) = match control & 3 {
            kind @ (0 | 1) => {
                let kind = if kind == 0 { FrameKind::Text } else { FrameKind::Binary };
                model = Some((kind, payload.to_vec()));
                (Fragment::First(kind, bytes), Ok(None))
            }
            2 => (Fragment::Continue(bytes), model_extend(&mut model, payload).map(|()| None)),
            _ => {
                let expected = model_extend(&mut model, payload)
                    .map(|()| model.take().map(|(kind, buffer)| (kind, Bytes::from(buffer))));
                (Fragment::Last(bytes), expected)
            }
        };
        let expected = expected.and_then(|whole| {
            // An oversized first fragment is refused as the first thing it is.
            if model.as_ref().is_some_and(|(_, buffer)| buffer.len() > CONTINUATION_LIMIT) {
                model = None;
                return Err(ReassemblyError::Oversized { limit: CONTINUATION_LIMIT });
            }
            Ok(whole)
        });
        let got = reassembly.push(fragment);
        if let Ok(Some((_, whole))) = &got {
            assert!(whole.len() <= CONTINUATION_LIMIT, "a message of {} bytes came out", whole.len());
        }
        assert_eq!(got, expected, "reassembly and model disagree");
        assert!(reassembly.held() <= CONTINUATION_LIMIT, "holds {} bytes", reassembly.held());
        assert_eq!(reassembly.held(), model.as_ref().map_or(0, |(_, buffer)| buffer.len()));
    }
}

/// The model's continue: an orphan without a message under way, oversized (and dropped)
/// past the limit.
fn model_extend(model: &mut Option<(FrameKind, Vec<u8>)>, payload: &[u8]) -> Result<(), ReassemblyError> {
    let (_, buffer) = model.as_mut().ok_or(ReassemblyError::Orphan)?;
    buffer.extend_from_slice(payload);
    if buffer.len() > CONTINUATION_LIMIT {
        *model = None;
        return Err(ReassemblyError::Oversized { limit: CONTINUATION_LIMIT });
    }
    Ok(())
}

/// The REST answers the daemon reads. The first byte picks the decoder (its value modulo
/// the number of decoders); the rest is the response body:
/// 0 token response, 1 token error body, 2 channel creation, 3 subscriptions,
/// 4 conversation (backfill), 5 analytics details query page.
pub fn rest_response(data: &[u8]) {
    use timelined_actors::backfill::DetailsPage;
    use timelined_actors::subscription::{Channel, SubscriptionEntities};
    use timelined_actors::token::{refresh_at, TokenError, TokenResponse};

    let Some((&selector, body)) = data.split_first() else { return };
    match selector % 6 {
        0 => {
            if let Ok(response) = serde_json::from_slice::<TokenResponse>(body) {
                // As the token actor schedules the refresh.
                let lifetime = response.lifetime();
                let issued = Instant::now();
                let due = refresh_at(issued, lifetime, Duration::from_secs(300));
                assert!(due <= issued + lifetime);
            }
        }
        1 => {
            for status in [400, 401, 403, 429, 500] {
                let error = TokenError::from_status(status, body, None);
                std::hint::black_box((error.to_string(), error.outcome()));
            }
        }
        2 => {
            if let Ok(channel) = serde_json::from_slice::<Channel>(body) {
                // As the subscription actor schedules the channel's rotation.
                if let Some(lifetime) = channel.expires.and_then(|at| (at - chrono::Utc::now()).to_std().ok())
                {
                    let lead = (lifetime / 5).min(Duration::from_secs(600));
                    std::hint::black_box(lifetime.saturating_sub(lead));
                }
                std::hint::black_box(format!("{channel:?}"));
            }
        }
        3 => {
            if let Ok(entities) = serde_json::from_slice::<SubscriptionEntities>(body) {
                for entity in &entities.entities {
                    let printable = timelined_actors::internal_events::printable;
                    std::hint::black_box(printable(&entity.id));
                    std::hint::black_box(entity.state.as_deref().is_some_and(|s| s != "Permitted"));
                    std::hint::black_box(printable(entity.rejection_reason.as_deref().unwrap_or("unknown")));
                }
            }
        }
        4 => match wire::decode_conversation(body) {
            Ok(events) => {
                std::hint::black_box(format!("{events:?}"));
            }
            Err(error) => {
                std::hint::black_box(error.to_string());
            }
        },
        _ => {
            if let Ok(page) = serde_json::from_slice::<DetailsPage>(body) {
                std::hint::black_box((page.conversations.len(), page.total_hits.unwrap_or(0) as usize));
            }
        }
    }
}

/// The bytes of `open-timelines.json`, then, if they are a saved state, start-up's resume
/// from it: restored into a timeline book, saved again, ticked a day later, closed.
pub fn checkpoint(data: &[u8]) {
    use timelined_actors::storage::state_file;
    use timelined_actors::timeline::state::Unwritten;
    use timelined_actors::timeline::{TimelineBook, TimelineRules};

    let Ok(state) = state_file::parse(data) else { return };
    let mut book = TimelineBook::new(TimelineRules::default(), Arc::default());
    let now = Instant::now();
    let restored = book.restore(state, &HashSet::new(), now);
    assert!(book.open_count() <= restored.resumed);
    let saved = serde_json::to_vec(&book.snapshot(&Unwritten::new(0))).expect("a book always saves");
    assert!(state_file::parse(&saved).is_ok(), "a save reads back");
    std::hint::black_box(book.tick(now + Duration::from_secs(24 * 3600)));
    std::hint::black_box(book.close_all(now + Duration::from_secs(24 * 3600)));
}

/// The TOML config file, loaded as the daemon loads it at start-up (from a file: the input
/// is written to a temporary one). Only `Ok` or an error is acceptable. The client secret
/// comes from a systemd-style credential directory, as in production, so that validation
/// gets past the secret to the rest of the settings.
pub fn config(data: &[u8]) {
    use std::io::Write;

    static CREDENTIALS: std::sync::Once = std::sync::Once::new();
    CREDENTIALS.call_once(|| {
        let directory = std::env::temp_dir().join("timelined-fuzz-credentials");
        std::fs::create_dir_all(&directory).expect("the credential directory is made");
        std::fs::write(directory.join("client_secret"), "fuzz-secret\n").expect("the credential is written");
        std::env::set_var("CREDENTIALS_DIRECTORY", directory);
    });
    let mut file = tempfile::NamedTempFile::new().expect("a temporary file");
    file.write_all(data).expect("the temporary file is written");
    file.flush().expect("the temporary file is written");
    match timelined::settings::Settings::load(file.path()) {
        Ok(settings) => {
            std::hint::black_box(settings.to_toml());
        }
        Err(error) => {
            std::hint::black_box(error.to_string());
        }
    }
}
