//! The control thread: `interrupt_request`, `shutdown_request`, and the cheap requests that
//! need no engine (kernel_info, comm_info, is_complete). It never waits for the engine, so it
//! answers while a cell runs. Spec: "Kernel shutdown", "Kernel interrupt" (5.3), and 5.5's
//! kernel_info on control.

use super::kernel_info::kernel_info;
use super::log;
use super::outgoing::Outgoing;
use super::shell::{ShellInput, completeness_reply, empty_comm_info};
use super::{StdinInput, decode};
use crate::transport::Outbox;
use crate::wire::{
    Content, ExecutionState, Frames, InterruptReply, Message, ReplyStatus, ShutdownReply,
};
use std::sync::mpsc::{Receiver, Sender};

/// The control thread's state.
pub struct Control {
    pub out: Outgoing,
    pub control: Outbox,
    pub inbox: Receiver<Frames>,
    /// Stops the running cell (the engine's `Interrupter`); returns at once.
    pub interrupt: Box<dyn Fn() + Send>,
    /// To hand a shutdown to the shell thread, which owns the engine.
    pub shell: Sender<ShellInput>,
    /// To cancel a pending `input_request` wait on the shell thread.
    pub stdin: Sender<StdinInput>,
}

impl Control {
    /// Serves control requests. Returns `true` after a `shutdown_request`, `false` when the
    /// socket closed.
    pub fn run(self) -> bool {
        while let Ok(frames) = self.inbox.recv() {
            let Some(message) = decode(frames, self.out.signer(), "control") else {
                continue;
            };
            if self.handle(&message) {
                // Only now, with the reply and `idle` queued, let the shell thread stop: once
                // it has, the sockets close, and anything queued later would be lost.
                let _ = self.stdin.send(StdinInput::Cancel);
                let _ = self.shell.send(ShellInput::Shutdown);
                return true;
            }
        }
        false
    }

    /// Serves one request; `true` means shut down.
    fn handle(&self, message: &Message) -> bool {
        let parent = &message.header;
        self.out.status(Some(parent), ExecutionState::Busy);
        let mut shutdown = false;
        match &message.content {
            Content::InterruptRequest(_) => {
                (self.interrupt)();
                // A cell blocked on `input_request` is interrupted too.
                let _ = self.stdin.send(StdinInput::Cancel);
                self.reply(
                    message,
                    InterruptReply {
                        status: ReplyStatus::Ok,
                    },
                );
            }
            Content::ShutdownRequest(request) => {
                // Stop a running cell so the shell thread gets to the shutdown (sent by `run`
                // after this reply), which it finds behind whatever was already queued.
                (self.interrupt)();
                self.reply(
                    message,
                    ShutdownReply {
                        status: ReplyStatus::Ok,
                        restart: request.restart,
                    },
                );
                shutdown = true;
            }
            Content::KernelInfoRequest(_) => self.reply(message, kernel_info()),
            Content::CommInfoRequest(_) => self.reply(message, empty_comm_info()),
            Content::IsCompleteRequest(request) => {
                self.reply(message, completeness_reply(&request.code))
            }
            other => log::warn(format_args!(
                "control: ignored a {} message",
                other.msg_type()
            )),
        }
        self.out.status(Some(parent), ExecutionState::Idle);
        shutdown
    }

    fn reply(&self, request: &Message, content: impl Into<Content>) {
        self.out.reply(&self.control, request, content);
    }
}
