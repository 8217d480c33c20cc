//! What `kernel_info_reply` says about kettle. Spec: "Kernel info". Built without the engine,
//! so it can be answered the moment the sockets are bound (Jupyter waits for it at launch).

use crate::engine::Engine;
use crate::wire::{HelpLink, KernelInfoReply, LanguageInfo, PROTOCOL_VERSION, ReplyStatus};

/// The course README, shown in JupyterLab's Help menu. A path on the Jupyter server that
/// `kettle lab` starts at the repository root.
pub const COURSE_README_URL: &str = "/lab/tree/README.md";

/// The reply, with the Rust version from `rustc --version` (cached by the engine).
pub fn kernel_info() -> KernelInfoReply {
    let rust = Engine::language_version();
    let version = env!("CARGO_PKG_VERSION");
    KernelInfoReply {
        status: ReplyStatus::Ok,
        protocol_version: PROTOCOL_VERSION.to_string(),
        implementation: "kettle".to_string(),
        implementation_version: version.to_string(),
        language_info: LanguageInfo {
            name: "rust".to_string(),
            version: rust.clone(),
            mimetype: "text/rust".to_string(),
            file_extension: ".rs".to_string(),
            pygments_lexer: "rust".to_string(),
            codemirror_mode: "rust".into(),
            nbconvert_exporter: "script".to_string(),
        },
        banner: format!(
            "kettle {version}: Rust {rust} in Jupyter, for studying concurrency.\n\
             Each cell is compiled; variables live on between cells."
        ),
        help_links: vec![
            HelpLink {
                text: "Rust standard library".to_string(),
                url: "https://doc.rust-lang.org/std/".to_string(),
            },
            HelpLink {
                text: "Course README".to_string(),
                url: COURSE_README_URL.to_string(),
            },
        ],
        debugger: false,
        supported_features: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernel_info_has_the_fields_jupyter_needs() {
        let info = super::kernel_info();
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["status"], "ok");
        assert_eq!(json["protocol_version"], "5.4");
        assert_eq!(json["implementation"], "kettle");
        assert_eq!(json["language_info"]["name"], "rust");
        assert_eq!(json["language_info"]["pygments_lexer"], "rust");
        assert_eq!(json["language_info"]["file_extension"], ".rs");
        assert!(json["help_links"].as_array().unwrap().len() >= 2);
    }
}
