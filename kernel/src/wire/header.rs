//! The message header: who sent a message, when, and of which type.
//! Spec: "General Message Format".

use serde::{Deserialize, Serialize};

/// The protocol version this kernel speaks (in every header and in `kernel_info_reply`).
/// 5.4 only deprecates `shutdown_request` on shell, which we still honour for old clients.
pub const PROTOCOL_VERSION: &str = "5.4";

/// A message header. `parent_header` of a reply is a copy of the request's header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub msg_id: String,
    // The fields below are always sent by jupyter_client, but hand-rolled clients (and the
    // pre-5.1 spec, which forgot `date`) omit some; a header is still usable without them.
    #[serde(default)]
    pub session: String,
    #[serde(default)]
    pub username: String,
    /// ISO 8601 with a timezone. Kept as text: we never compute with a client's clock, and a
    /// client's odd date format must not make its message unreadable.
    #[serde(default)]
    pub date: String,
    pub msg_type: String,
    #[serde(default)]
    pub version: String,
}

impl Header {
    /// A fresh header for a message this kernel sends: new UUID, current UTC time with
    /// microseconds (as jupyter_client writes it), our protocol version.
    pub fn new(msg_type: &str, session: &str, username: &str) -> Header {
        Header {
            msg_id: uuid::Uuid::new_v4().to_string(),
            session: session.to_string(),
            username: username.to_string(),
            date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            msg_type: msg_type.to_string(),
            version: PROTOCOL_VERSION.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_header_has_a_timezone_and_version() {
        let h = Header::new("status", "sess", "kettle");
        assert!(h.date.ends_with('Z'), "{}", h.date);
        assert!(chrono::DateTime::parse_from_rfc3339(&h.date).is_ok());
        assert_eq!(h.version, "5.4");
        assert_eq!(h.msg_id.len(), 36);
        assert_ne!(h.msg_id, Header::new("status", "sess", "kettle").msg_id);
    }

    #[test]
    fn golden_header() {
        let h = Header {
            msg_id: "m1".into(),
            session: "s1".into(),
            username: "u".into(),
            date: "2024-01-02T03:04:05.000006Z".into(),
            msg_type: "execute_request".into(),
            version: "5.3".into(),
        };
        let json = serde_json::json!({
            "msg_id": "m1", "session": "s1", "username": "u",
            "date": "2024-01-02T03:04:05.000006Z", "msg_type": "execute_request", "version": "5.3"
        });
        assert_eq!(serde_json::to_value(&h).unwrap(), json);
        assert_eq!(serde_json::from_value::<Header>(json).unwrap(), h);
    }

    #[test]
    fn minimal_header_parses() {
        let h: Header =
            serde_json::from_str(r#"{"msg_id": "x", "msg_type": "kernel_info_request"}"#).unwrap();
        assert_eq!(h.msg_type, "kernel_info_request");
        assert_eq!(h.session, "");
    }
}
