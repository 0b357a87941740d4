//! What to subscribe to (the `[subscription]` settings), as Notifications API
//! topics or an analytics-stream filter, and the REST shapes of channels and subscriptions.

pub mod actor;

use serde::{Deserialize, Serialize};

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

    #[test]
    fn analytics_filter_names_channels() {
        let interest = Interest { media: vec!["voice".into()], ..Default::default() };
        assert_eq!(interest.analytics_filter(), serde_json::json!({"filter":{"channels":["voice"]}}));
    }
}
