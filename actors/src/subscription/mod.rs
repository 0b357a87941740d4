//! What to subscribe to (the `[subscription]` settings), as Notifications API
//! topics or an analytics-stream filter, and the REST shapes of channels and subscriptions.
//! Genesys Cloud allows [`MAX_TOPICS_PER_CHANNEL`] topics per channel and
//! [`MAX_CHANNELS`] channels per OAuth client: [`Interest::split`] spreads the topics over
//! as few channels as hold them, and [`Shard`] gives one instance of several its share.

pub mod actor;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Topics one channel may subscribe to; over it the subscriptions call answers 400.
pub const MAX_TOPICS_PER_CHANNEL: usize = 1000;
/// Channels one OAuth client may hold.
pub const MAX_CHANNELS: usize = 20;
/// Topics per subscribed conversation: its detail events for four kinds, start and end.
const TOPICS_PER_CONVERSATION: usize = 8;

/// The desired subscription, from settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Interest {
    pub queues: Vec<String>,
    pub users: Vec<String>,
    pub conversations: Vec<String>,
    /// `[]` = all media (the plain `.conversations` topics); else per-media topics.
    pub media: Vec<String>,
}

/// Per-media topic suffix for a media name (the seed's channel filter names).
pub fn media_topic_suffix(media: &str) -> &str {
    match media {
        "voice" | "call" | "calls" => "calls",
        "chat" | "chats" => "chats",
        "message" | "messages" => "messages",
        "email" | "emails" => "emails",
        "callback" | "callbacks" => "callbacks",
        "video" | "videos" => "videos",
        other => other,
    }
}

impl Interest {
    /// Notifications API topic names.
    pub fn topics(&self) -> Vec<String> {
        let mut topics = Vec::new();
        let scoped = [("v2.routing.queues", &self.queues), ("v2.users", &self.users)];
        for (prefix, ids) in scoped {
            for id in ids {
                if self.media.is_empty() {
                    topics.push(format!("{prefix}.{id}.conversations"));
                } else {
                    for media in &self.media {
                        topics.push(format!("{prefix}.{id}.conversations.{}", media_topic_suffix(media)));
                    }
                }
            }
        }
        for id in &self.conversations {
            for kind in ["customer", "user", "acd", "flow"] {
                for phase in ["start", "end"] {
                    topics.push(format!("v2.detail.events.conversation.{id}.{kind}.{phase}"));
                }
            }
        }
        topics
    }

    /// Topics per queue or user: one per media, or the one all-media topic.
    fn topics_per_scope(&self) -> usize {
        self.media.len().max(1)
    }

    /// How many topics [`Interest::topics`] names, without naming them.
    pub fn topic_count(&self) -> usize {
        (self.queues.len() + self.users.len()).saturating_mul(self.topics_per_scope())
            + self.conversations.len().saturating_mul(TOPICS_PER_CONVERSATION)
    }

    /// The same interest spread over channels of at most `per_channel` topics each, in
    /// order (queues, then users, then conversations), each channel filled before the
    /// next; every channel keeps the media filter. Never empty: an interest with nothing
    /// in it is one channel with no topics. An id whose topics alone exceed `per_channel`
    /// gets a channel of its own (the service will refuse it; `check-config` does first).
    pub fn split(&self, per_channel: usize) -> Vec<Interest> {
        let empty = || Interest { media: self.media.clone(), ..Interest::default() };
        let mut channels = vec![empty()];
        let mut used = 0;
        let ids = self
            .queues
            .iter()
            .map(|id| (0, id, self.topics_per_scope()))
            .chain(self.users.iter().map(|id| (1, id, self.topics_per_scope())))
            .chain(self.conversations.iter().map(|id| (2, id, TOPICS_PER_CONVERSATION)));
        for (scope, id, topics) in ids {
            if used > 0 && used + topics > per_channel {
                channels.push(empty());
                used = 0;
            }
            used += topics;
            let Some(channel) = channels.last_mut() else {
                continue; // cannot happen: `channels` starts with one and only grows
            };
            let list = match scope {
                0 => &mut channel.queues,
                1 => &mut channel.users,
                _ => &mut channel.conversations,
            };
            list.push(id.clone());
        }
        channels
    }

    /// Only the queues, users and conversations that `shard` takes.
    pub fn shard(&self, shard: Shard) -> Interest {
        let take = |ids: &[String]| ids.iter().filter(|id| shard.takes(id)).cloned().collect();
        Interest {
            queues: take(&self.queues),
            users: take(&self.users),
            conversations: take(&self.conversations),
            media: self.media.clone(),
        }
    }

    /// The analytics-stream filter message.
    pub fn analytics_filter(&self) -> serde_json::Value {
        let channels: Vec<&str> = if self.media.is_empty() {
            vec!["voice", "chat", "message", "email", "callback", "video"]
        } else {
            self.media.iter().map(String::as_str).collect()
        };
        let mut filter = serde_json::json!({ "channels": channels });
        if let [only] = self.conversations.as_slice() {
            filter["id"] = serde_json::Value::String(only.clone());
        }
        serde_json::json!({ "filter": filter })
    }
}

/// Instance `index` of `count` (`subscription.shard = "index/count"`): it takes the ids
/// that a stable hash puts in its share. The hash is jump consistent hashing over the
/// SHA-256 of the id: it depends on nothing but the id and `count`, so adding a queue moves
/// no other, and going from N to N+1 instances moves only about 1/(N+1) of the ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("expected \"k/N\" (this instance k of N, from 0), e.g. \"0/2\"")]
    Shape,
    #[error("N must be at least 1")]
    NoInstances,
    #[error("k must be below N (instances are numbered from 0)")]
    IndexPastCount,
}

impl std::str::FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Shard, ShardError> {
        let (index, count) = text.trim().split_once('/').ok_or(ShardError::Shape)?;
        let parse = |part: &str| part.trim().parse::<u32>().map_err(|_| ShardError::Shape);
        let shard = Shard { index: parse(index)?, count: parse(count)? };
        if shard.count == 0 {
            return Err(ShardError::NoInstances);
        }
        if shard.index >= shard.count {
            return Err(ShardError::IndexPastCount);
        }
        Ok(shard)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The whole: one instance takes everything.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// The instance (from 0) that takes `id`.
    pub fn owner(count: u32, id: &str) -> u32 {
        let digest = Sha256::digest(id.as_bytes());
        let mut key = u64::from_be_bytes(digest[..8].try_into().unwrap_or_default());
        jump_consistent_hash(&mut key, count)
    }

    pub fn takes(&self, id: &str) -> bool {
        Shard::owner(self.count, id) == self.index
    }
}

/// Lamping and Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm" (2014): the
/// bucket in `0..buckets` for `key`; a key moves only to the new bucket when one is added.
fn jump_consistent_hash(key: &mut u64, buckets: u32) -> u32 {
    let (mut bucket, mut next) = (-1_i64, 0_i64);
    while next < i64::from(buckets) {
        bucket = next;
        *key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // The published algorithm's float step (a cast from f64 saturates: no overflow).
        next = ((bucket + 1) as f64 * ((1_i64 << 31) as f64 / ((*key >> 33) + 1) as f64)) as i64;
    }
    bucket.max(0) as u32
}

#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Channel {
    pub id: String,
    pub connect_uri: String,
    pub expires: Option<chrono::DateTime<chrono::Utc>>,
}

impl std::fmt::Debug for Channel {
    // The channel id grants access to the stream: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").field("expires", &self.expires).finish_non_exhaustive()
    }
}

#[derive(Serialize)]
pub(crate) struct TopicRef<'a> {
    pub id: &'a str,
}

/// The decoder of the answer to `PUT …/channels/{id}/subscriptions`.
#[derive(Deserialize)]
pub struct SubscriptionEntities {
    #[serde(default)]
    pub entities: Vec<SubscriptionEntity>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionEntity {
    pub id: String,
    pub state: Option<String>,
    pub rejection_reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_per_scope_and_media() {
        let interest = Interest {
            queues: vec!["q1".into()],
            users: vec!["u1".into()],
            conversations: vec![],
            media: vec![],
        };
        assert_eq!(
            interest.topics(),
            vec!["v2.routing.queues.q1.conversations", "v2.users.u1.conversations"]
        );
        let chats_only = Interest { media: vec!["chat".into(), "voice".into()], ..interest };
        assert_eq!(
            chats_only.topics(),
            vec![
                "v2.routing.queues.q1.conversations.chats",
                "v2.routing.queues.q1.conversations.calls",
                "v2.users.u1.conversations.chats",
                "v2.users.u1.conversations.calls"
            ]
        );
    }

    #[test]
    fn detail_topics_for_named_conversations() {
        let interest = Interest { conversations: vec!["c9".into()], ..Default::default() };
        let topics = interest.topics();
        assert_eq!(topics.len(), 8);
        assert!(topics.contains(&"v2.detail.events.conversation.c9.user.end".to_string()));
    }

    fn queues(count: usize) -> Vec<String> {
        (0..count).map(|i| format!("queue-{i:05}")).collect()
    }

    #[test]
    fn split_fills_channels_in_order_and_keeps_every_topic_once() {
        let interest = Interest {
            queues: queues(2_500),
            users: vec!["u1".into()],
            conversations: vec!["c1".into()],
            media: vec![],
        };
        let channels = interest.split(MAX_TOPICS_PER_CHANNEL);
        let sizes: Vec<usize> = channels.iter().map(Interest::topic_count).collect();
        assert_eq!(sizes, vec![1000, 1000, 509]);
        let mut all: Vec<String> = channels.iter().flat_map(Interest::topics).collect();
        assert_eq!(all.len(), interest.topic_count());
        all.sort();
        let mut expected = interest.topics();
        expected.sort();
        assert_eq!(all, expected);
    }

    #[test]
    fn split_counts_media_topics_and_never_breaks_an_id() {
        let interest = Interest {
            queues: queues(700),
            media: vec!["voice".into(), "chat".into()],
            ..Default::default()
        };
        assert_eq!(interest.topic_count(), 1400);
        let channels = interest.split(MAX_TOPICS_PER_CHANNEL);
        assert_eq!(channels.iter().map(|c| c.queues.len()).collect::<Vec<_>>(), vec![500, 200]);
        assert!(channels.iter().all(|c| c.media == interest.media));
        // Eight topics per conversation: 125 fit, the 126th opens a channel.
        let conversations = Interest { conversations: queues(126), ..Default::default() };
        assert_eq!(
            conversations.split(1000).iter().map(|c| c.conversations.len()).collect::<Vec<_>>(),
            vec![125, 1]
        );
        assert_eq!(Interest::default().split(1000), vec![Interest::default()]);
    }

    #[test]
    fn shards_partition_the_ids_and_adding_an_instance_moves_few() {
        let ids = queues(10_000);
        let interest = Interest { queues: ids.clone(), ..Default::default() };
        let halves: Vec<Interest> = (0..2).map(|index| interest.shard(Shard { index, count: 2 })).collect();
        assert_eq!(halves[0].queues.len() + halves[1].queues.len(), ids.len());
        assert!(halves[0].queues.iter().all(|q| !halves[1].queues.contains(q)));
        // Roughly even: within 5 % of half.
        assert!(halves[0].queues.len().abs_diff(5_000) < 250, "{}", halves[0].queues.len());
        // From 4 to 5 instances about a fifth of the ids move, each to the new instance.
        let moved: Vec<&String> =
            ids.iter().filter(|id| Shard::owner(4, id) != Shard::owner(5, id)).collect();
        assert!(moved.iter().all(|id| Shard::owner(5, id) == 4));
        assert!(moved.len().abs_diff(2_000) < 200, "{}", moved.len());
        assert!(ids.iter().all(|id| Shard::WHOLE.takes(id)));
    }

    #[test]
    fn shard_parses_k_of_n_and_names_what_is_wrong() {
        assert_eq!("1/3".parse(), Ok(Shard { index: 1, count: 3 }));
        assert_eq!(" 0 / 1 ".parse(), Ok(Shard::WHOLE));
        assert_eq!("3/3".parse::<Shard>(), Err(ShardError::IndexPastCount));
        assert_eq!("0/0".parse::<Shard>(), Err(ShardError::NoInstances));
        for bad in ["", "1", "a/2", "-1/2", "1/2/3", "99999999999/1"] {
            assert_eq!(bad.parse::<Shard>(), Err(ShardError::Shape), "{bad}");
        }
        assert_eq!(Shard { index: 1, count: 2 }.to_string(), "1/2");
    }

    #[test]
    fn analytics_filter_names_channels() {
        let interest = Interest { media: vec!["voice".into()], ..Default::default() };
        assert_eq!(interest.analytics_filter(), serde_json::json!({"filter":{"channels":["voice"]}}));
    }
}
