//! The connection file Jupyter writes before it launches a kernel: where to bind the five
//! sockets and how to sign messages.
//! Spec: <https://jupyter-client.readthedocs.io/en/latest/kernels.html#connection-files>.

use super::WireError;
use serde::{Deserialize, Serialize};

/// How the sockets are reached: TCP ports or Unix-domain (ipc) socket files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    #[default]
    Tcp,
    Ipc,
}

/// The parsed connection file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    // jupyter_client always writes `transport`, but hand-written files and some older launchers
    // leave it out; TCP is what they mean.
    #[serde(default)]
    pub transport: TransportKind,
    /// For TCP an address (`127.0.0.1`, `::1`, `0.0.0.0`); for ipc the path prefix of the socket
    /// files.
    pub ip: String,
    pub shell_port: u16,
    pub iopub_port: u16,
    pub stdin_port: u16,
    pub control_port: u16,
    pub hb_port: u16,
    /// Only `hmac-sha256` is supported; absent means that.
    #[serde(default = "default_scheme")]
    pub signature_scheme: String,
    /// The HMAC key; empty disables signing (the spec's "authentication disabled").
    #[serde(default)]
    pub key: String,
    /// Written by jupyter_client >= 7, unused by the kernel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_name: Option<String>,
}

fn default_scheme() -> String {
    "hmac-sha256".to_string()
}

impl ConnectionInfo {
    /// Parses the JSON text of a connection file (reading the file is the caller's job).
    pub fn from_json(text: &str) -> Result<ConnectionInfo, WireError> {
        serde_json::from_str(text).map_err(|source| WireError::Json {
            frame: "connection file",
            source,
        })
    }

    /// The ZeroMQ endpoint for `port`, named the way jupyter_client names it: `tcp://ip:port`
    /// (IPv6 addresses in brackets, as libzmq requires) or `ipc://ip-port`.
    pub fn endpoint(&self, port: u16) -> String {
        match self.transport {
            TransportKind::Tcp if self.is_ipv6() => format!("tcp://[{}]:{port}", self.ip),
            TransportKind::Tcp => format!("tcp://{}:{port}", self.ip),
            TransportKind::Ipc => format!("ipc://{}-{port}", self.ip),
        }
    }

    /// Whether `ip` is an IPv6 address (the socket then needs `ZMQ_IPV6`).
    pub fn is_ipv6(&self) -> bool {
        self.transport == TransportKind::Tcp && self.ip.contains(':')
    }

    pub fn shell_endpoint(&self) -> String {
        self.endpoint(self.shell_port)
    }
    pub fn iopub_endpoint(&self) -> String {
        self.endpoint(self.iopub_port)
    }
    pub fn stdin_endpoint(&self) -> String {
        self.endpoint(self.stdin_port)
    }
    pub fn control_endpoint(&self) -> String {
        self.endpoint(self.control_port)
    }
    pub fn hb_endpoint(&self) -> String {
        self.endpoint(self.hb_port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // As written by jupyter_client 8 (`jupyter kernel` / JupyterLab).
    const TCP_FILE: &str = r#"{
      "shell_port": 50001, "iopub_port": 50002, "stdin_port": 50003,
      "control_port": 50004, "hb_port": 50005, "ip": "127.0.0.1",
      "key": "a0436f6c-1916-498b-8eb9-e81ab9368e84", "transport": "tcp",
      "signature_scheme": "hmac-sha256", "kernel_name": "rust"
    }"#;

    #[test]
    fn parses_a_jupyter_client_tcp_file() {
        let info = ConnectionInfo::from_json(TCP_FILE).unwrap();
        assert_eq!(info.transport, TransportKind::Tcp);
        assert_eq!(info.key, "a0436f6c-1916-498b-8eb9-e81ab9368e84");
        assert_eq!(info.kernel_name.as_deref(), Some("rust"));
        assert_eq!(info.shell_endpoint(), "tcp://127.0.0.1:50001");
        assert_eq!(info.iopub_endpoint(), "tcp://127.0.0.1:50002");
        assert_eq!(info.stdin_endpoint(), "tcp://127.0.0.1:50003");
        assert_eq!(info.control_endpoint(), "tcp://127.0.0.1:50004");
        assert_eq!(info.hb_endpoint(), "tcp://127.0.0.1:50005");
    }

    #[test]
    fn ipc_endpoints_follow_jupyter_client_naming() {
        let text = r#"{"transport": "ipc", "ip": "/tmp/kernel-x", "shell_port": 1,
            "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5, "key": ""}"#;
        let info = ConnectionInfo::from_json(text).unwrap();
        assert_eq!(info.shell_endpoint(), "ipc:///tmp/kernel-x-1");
        assert_eq!(info.hb_endpoint(), "ipc:///tmp/kernel-x-5");
        assert_eq!(info.signature_scheme, "hmac-sha256");
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        let mut info = ConnectionInfo::from_json(TCP_FILE).unwrap();
        info.ip = "::1".into();
        assert!(info.is_ipv6());
        assert_eq!(info.shell_endpoint(), "tcp://[::1]:50001");
    }

    #[test]
    fn missing_ports_are_an_error_not_a_panic() {
        let err = ConnectionInfo::from_json(r#"{"ip": "127.0.0.1"}"#).unwrap_err();
        assert!(matches!(err, WireError::Json { .. }));
    }
}
