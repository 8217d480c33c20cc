//! Building, signing and queueing the messages the kernel sends: replies on shell/control/stdin
//! and publications on iopub. Every thread that sends holds a clone of [`Outgoing`].

use crate::transport::Outbox;
use crate::wire::{Content, ExecutionState, Header, Message, Metadata, Signer, Status};
use std::sync::Arc;

/// `username` in our headers.
const USERNAME: &str = "kettle";

/// The kernel's identity (session id, signing key) plus the iopub queue.
#[derive(Clone)]
pub struct Outgoing {
    signer: Signer,
    session: Arc<str>,
    iopub: Outbox,
}

impl Outgoing {
    pub fn new(signer: Signer, iopub: Outbox) -> Outgoing {
        Outgoing {
            signer,
            // One id for the kernel's lifetime: clients use it to tell kernels apart.
            session: uuid::Uuid::new_v4().to_string().into(),
            iopub,
        }
    }

    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    fn message(
        &self,
        identities: Vec<Vec<u8>>,
        parent: Option<&Header>,
        content: Content,
    ) -> Message {
        Message {
            identities,
            header: Header::new(content.msg_type(), &self.session, USERNAME),
            parent_header: parent.cloned(),
            metadata: Metadata::new(),
            content,
            buffers: Vec::new(),
        }
    }

    /// Answers `request` on `socket` (shell, control or stdin): same identities, the request's
    /// header as parent.
    pub fn reply(&self, socket: &Outbox, request: &Message, content: impl Into<Content>) {
        let message = self.message(
            request.identities.clone(),
            Some(&request.header),
            content.into(),
        );
        socket.send(message.encode(&self.signer));
    }

    /// Sends a kernel-initiated request (an `input_request`) to the client behind `parent`.
    pub fn request(&self, socket: &Outbox, parent: &Message, content: impl Into<Content>) {
        self.reply(socket, parent, content);
    }

    /// Publishes on iopub with `parent` as parent header. The topic is the message type, the
    /// convention the spec describes (clients subscribe to everything anyway).
    pub fn publish(&self, parent: Option<&Header>, content: impl Into<Content>) {
        let content = content.into();
        let topic = content.msg_type().as_bytes().to_vec();
        let message = self.message(vec![topic], parent, content);
        self.iopub.send(message.encode(&self.signer));
    }

    /// Publishes `status`.
    pub fn status(&self, parent: Option<&Header>, execution_state: ExecutionState) {
        self.publish(parent, Status { execution_state });
    }
}
