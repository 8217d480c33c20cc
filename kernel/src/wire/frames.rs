//! The multipart frame codec. Spec: "The Wire Protocol":
//!
//! ```text
//! [identity ...] <IDS|MSG> signature header parent_header metadata content [buffer ...]
//! ```
//!
//! Anything a peer sends can be garbage; every failure is a [`WireError`], never a panic.

use super::{Content, Frames, Header, Metadata, Signer, WireError};
use serde_json::Value;

/// The frame separating routing identities from the message.
pub const DELIMITER: &[u8] = b"<IDS|MSG>";

/// A message split into its frames but not yet verified or parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// ROUTER identities (or the iopub topic) before the delimiter.
    pub identities: Frames,
    pub signature: Vec<u8>,
    pub header: Vec<u8>,
    pub parent_header: Vec<u8>,
    pub metadata: Vec<u8>,
    pub content: Vec<u8>,
    /// Extra binary buffers after the four JSON frames.
    pub buffers: Frames,
}

impl RawMessage {
    /// Splits a multipart message at the delimiter.
    pub fn split(mut frames: Frames) -> Result<RawMessage, WireError> {
        let n = frames.len();
        let delim = frames
            .iter()
            .position(|f| f == DELIMITER)
            .ok_or(WireError::MissingDelimiter { frames: n })?;
        let got = n - delim - 1;
        if got < 5 {
            return Err(WireError::TooFewFrames { got });
        }
        let mut rest = frames.split_off(delim + 1);
        frames.pop(); // the delimiter itself
        let buffers = rest.split_off(5);
        let mut it = rest.into_iter();
        let mut next = || it.next().expect("five frames checked above");
        Ok(RawMessage {
            identities: frames,
            signature: next(),
            header: next(),
            parent_header: next(),
            metadata: next(),
            content: next(),
            buffers,
        })
    }

    /// Checks the signature against the exact bytes received.
    pub fn verify(&self, signer: &Signer) -> Result<(), WireError> {
        signer.verify(
            &self.signature,
            [
                &self.header,
                &self.parent_header,
                &self.metadata,
                &self.content,
            ],
        )
    }

    /// Parses the JSON frames into a typed [`Message`] (without checking the signature).
    pub fn parse(self) -> Result<Message, WireError> {
        let json = |frame: &'static str, bytes: &[u8]| -> Result<Value, WireError> {
            serde_json::from_slice(bytes).map_err(|source| WireError::Json { frame, source })
        };
        let header: Header =
            serde_json::from_slice(&self.header).map_err(|source| WireError::Json {
                frame: "header",
                source,
            })?;
        // `{}` means "no parent". A parent we cannot read is not worth dropping the message
        // for: the kernel never acts on an incoming message's parent.
        let parent_header = match json("parent_header", &self.parent_header)? {
            Value::Object(map) if map.is_empty() => None,
            other => serde_json::from_value(other).ok(),
        };
        let metadata: Metadata = match json("metadata", &self.metadata)? {
            Value::Object(map) => map,
            // Some clients send `null` for "no metadata".
            _ => Metadata::new(),
        };
        let content = json("content", &self.content)?;
        let content =
            Content::from_type_and_content(&header.msg_type, content).map_err(|source| {
                WireError::Json {
                    frame: "content",
                    source,
                }
            })?;
        Ok(Message {
            identities: self.identities,
            header,
            parent_header,
            metadata,
            content,
            buffers: self.buffers,
        })
    }
}

/// A complete, typed message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Where a reply goes (ROUTER identities), or the topic on iopub.
    pub identities: Frames,
    pub header: Header,
    pub parent_header: Option<Header>,
    pub metadata: Metadata,
    pub content: Content,
    pub buffers: Frames,
}

impl Message {
    /// Splits, verifies and parses a received multipart message.
    pub fn decode(frames: Frames, signer: &Signer) -> Result<Message, WireError> {
        let raw = RawMessage::split(frames)?;
        raw.verify(signer)?;
        raw.parse()
    }

    /// Serialises and signs the message into frames ready for a socket.
    pub fn encode(&self, signer: &Signer) -> Frames {
        let to_bytes = |v: &Value| serde_json::to_vec(v).expect("JSON values always serialize");
        let header = to_bytes(&serde_json::to_value(&self.header).expect("header serializes"));
        let parent = match &self.parent_header {
            Some(p) => to_bytes(&serde_json::to_value(p).expect("header serializes")),
            None => b"{}".to_vec(),
        };
        let metadata = to_bytes(&Value::Object(self.metadata.clone()));
        let content = to_bytes(&self.content.to_value());
        let signature = signer.sign([&header, &parent, &metadata, &content]);

        let mut frames = self.identities.clone();
        frames.push(DELIMITER.to_vec());
        frames.push(signature.into_bytes());
        frames.extend([header, parent, metadata, content]);
        frames.extend(self.buffers.iter().cloned());
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{KernelInfoRequest, Status};

    const KEY: &str = "a0436f6c-1916-498b-8eb9-e81ab9368e84";
    const HEADER: &[u8] = br#"{"msg_id":"m1","msg_type":"kernel_info_request"}"#;
    // See signing.rs: computed with Python's hmac module.
    const SIG: &[u8] = b"af879f65bfee16049d5760f3b66a9f884cfccc44068b3a1260fffcac18da3fa9";

    fn frames(parts: &[&[u8]]) -> Frames {
        parts.iter().map(|p| p.to_vec()).collect()
    }

    fn signer() -> Signer {
        Signer::new("hmac-sha256", KEY).unwrap()
    }

    #[test]
    fn decodes_a_signed_message_with_identities_and_buffers() {
        let f = frames(&[
            b"id-1",
            b"id-2",
            DELIMITER,
            SIG,
            HEADER,
            b"{}",
            b"{}",
            b"{}",
            b"\x00\xffbuffer",
        ]);
        let msg = Message::decode(f, &signer()).unwrap();
        assert_eq!(msg.identities, frames(&[b"id-1", b"id-2"]));
        assert_eq!(msg.header.msg_id, "m1");
        assert_eq!(msg.parent_header, None);
        assert_eq!(
            msg.content,
            Content::KernelInfoRequest(KernelInfoRequest {})
        );
        assert_eq!(msg.buffers, frames(&[b"\x00\xffbuffer"]));
    }

    #[test]
    fn no_identities_is_fine() {
        let f = frames(&[DELIMITER, SIG, HEADER, b"{}", b"{}", b"{}"]);
        let msg = Message::decode(f, &signer()).unwrap();
        assert!(msg.identities.is_empty() && msg.buffers.is_empty());
    }

    #[test]
    fn bad_signature_is_rejected() {
        let f = frames(&[b"id", DELIMITER, b"00", HEADER, b"{}", b"{}", b"{}"]);
        assert!(matches!(
            Message::decode(f, &signer()),
            Err(WireError::BadSignature)
        ));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let cases: Vec<Frames> = vec![
            vec![],
            frames(&[b"just one frame"]),
            frames(&[b"id", b"no delimiter", b"{}", b"{}", b"{}", b"{}"]),
            frames(&[DELIMITER]),
            frames(&[DELIMITER, b"", b"{}", b"{}", b"{}"]),
            frames(&[b"id", DELIMITER, b"", b"not json", b"{}", b"{}", b"{}"]),
            frames(&[DELIMITER, b"", b"\xff\xfe", b"{}", b"{}", b"{}"]),
            frames(&[DELIMITER, b"", br#"{"msg_id": "x"}"#, b"{}", b"{}", b"{}"]),
            frames(&[DELIMITER, b"", HEADER, b"[", b"{}", b"{}"]),
            frames(&[DELIMITER, b"", HEADER, b"{}", b"{}", b"\"\xc3\x28\""]),
            // A known type with the wrong content shape.
            frames(&[
                DELIMITER,
                b"",
                br#"{"msg_id":"x","msg_type":"execute_request"}"#,
                b"{}",
                b"{}",
                br#"{"silent": true}"#,
            ]),
        ];
        for f in cases {
            let shown = format!("{f:?}");
            assert!(
                Message::decode(f, &Signer::unsigned()).is_err(),
                "accepted {shown}"
            );
        }
        let err = RawMessage::split(frames(&[b"a", b"b"])).unwrap_err();
        assert!(matches!(err, WireError::MissingDelimiter { frames: 2 }));
        let err = RawMessage::split(frames(&[DELIMITER, b"", b"{}"])).unwrap_err();
        assert!(matches!(err, WireError::TooFewFrames { got: 2 }));
    }

    #[test]
    fn unknown_message_types_are_data() {
        let f = frames(&[
            DELIMITER,
            b"",
            br#"{"msg_id":"x","msg_type":"future_request"}"#,
            b"{}",
            b"null",
            br#"{"a": 1}"#,
        ]);
        let msg = Message::decode(f, &Signer::unsigned()).unwrap();
        assert_eq!(msg.content.msg_type(), "future_request");
        assert!(matches!(msg.content, Content::Unknown { .. }));
    }

    #[test]
    fn encode_then_decode_round_trips_and_signs_exact_bytes() {
        let parent = Header::new("execute_request", "client", "me");
        let msg = Message {
            identities: frames(&[b"status"]),
            header: Header::new("status", "kernel", "kettle"),
            parent_header: Some(parent),
            metadata: Metadata::new(),
            content: Status {
                execution_state: crate::wire::ExecutionState::Busy,
            }
            .into(),
            buffers: frames(&[b"bin"]),
        };
        let encoded = msg.encode(&signer());
        assert_eq!(encoded[1], DELIMITER);
        // The signature covers the exact JSON bytes that were sent.
        let expected = signer().sign([&encoded[3], &encoded[4], &encoded[5], &encoded[6]]);
        assert_eq!(encoded[2], expected.into_bytes());
        assert_eq!(Message::decode(encoded, &signer()).unwrap(), msg);
    }

    #[test]
    fn no_parent_encodes_as_empty_object() {
        let msg = Message {
            identities: vec![],
            header: Header::new("status", "k", "kettle"),
            parent_header: None,
            metadata: Metadata::new(),
            content: KernelInfoRequest {}.into(),
            buffers: vec![],
        };
        let encoded = msg.encode(&Signer::unsigned());
        assert_eq!(encoded[1], b"");
        assert_eq!(encoded[3], b"{}");
        assert_eq!(encoded[4], b"{}");
    }
}
