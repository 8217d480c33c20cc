//! Golden JSON for every message type: each content is serialised and compared with a JSON
//! literal written from the spec, then parsed back from that literal.

use super::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

#[track_caller]
fn golden(content: impl Into<Content>, expected: Value) {
    let content = content.into();
    let got = content.to_value();
    assert_eq!(
        got,
        expected,
        "{}:\n  expected {expected}\n  got      {got}",
        content.msg_type()
    );
    let back = Content::from_type_and_content(content.msg_type(), expected).unwrap();
    assert_eq!(back, content);
}

fn bundle(text: &str) -> MimeBundle {
    let mut b = MimeBundle::new();
    b.insert("text/plain".into(), json!(text));
    b
}

#[test]
fn execute_request() {
    golden(
        ExecuteRequest {
            code: "1 + 1".into(),
            silent: false,
            store_history: true,
            user_expressions: BTreeMap::from([("x".to_string(), "x * 2".to_string())]),
            allow_stdin: true,
            stop_on_error: true,
        },
        json!({"code": "1 + 1", "silent": false, "store_history": true,
               "user_expressions": {"x": "x * 2"}, "allow_stdin": true, "stop_on_error": true}),
    );
}

#[test]
fn execute_request_defaults_follow_the_spec() {
    let c = Content::from_type_and_content("execute_request", json!({"code": "x"})).unwrap();
    let Content::ExecuteRequest(r) = c else {
        panic!("{c:?}")
    };
    assert!(!r.silent && r.store_history && r.allow_stdin && r.stop_on_error);
    assert!(r.stores_history());
    let silent: ExecuteRequest =
        serde_json::from_value(json!({"code": "", "silent": true})).unwrap();
    assert!(!silent.stores_history());
}

#[test]
fn execute_reply_ok_error_aborted() {
    golden(
        ExecuteReply {
            status: ReplyStatus::Ok,
            execution_count: ExecutionCount(3),
            user_expressions: BTreeMap::from([
                (
                    "a".to_string(),
                    ExpressionResult::Ok {
                        data: bundle("2"),
                        metadata: Metadata::new(),
                    },
                ),
                (
                    "b".to_string(),
                    ExpressionResult::Error(ErrorInfo {
                        ename: "E0425".into(),
                        evalue: "cannot find value `y`".into(),
                        traceback: vec![],
                    }),
                ),
            ]),
            payload: vec![],
        },
        json!({"status": "ok", "execution_count": 3, "payload": [],
               "user_expressions": {
                   "a": {"status": "ok", "data": {"text/plain": "2"}, "metadata": {}},
                   "b": {"status": "error", "ename": "E0425",
                         "evalue": "cannot find value `y`", "traceback": []}}}),
    );
    golden(
        ExecuteReply {
            status: ReplyStatus::Error(ErrorInfo {
                ename: "Panic".into(),
                evalue: "boom".into(),
                traceback: vec!["line 1".into()],
            }),
            execution_count: ExecutionCount(1),
            user_expressions: BTreeMap::new(),
            payload: vec![],
        },
        json!({"status": "error", "ename": "Panic", "evalue": "boom", "traceback": ["line 1"],
               "execution_count": 1, "user_expressions": {}, "payload": []}),
    );
    golden(
        ExecuteReply {
            status: ReplyStatus::Aborted,
            execution_count: ExecutionCount(1),
            user_expressions: BTreeMap::new(),
            payload: vec![],
        },
        json!({"status": "aborted", "execution_count": 1, "user_expressions": {},
               "payload": []}),
    );
}

#[test]
fn ipykernel_error_reply_without_ok_fields_parses() {
    let c = Content::from_type_and_content(
        "execute_reply",
        json!({"status": "error", "ename": "E", "evalue": "v", "traceback": [],
               "execution_count": 2}),
    )
    .unwrap();
    assert!(matches!(
        c,
        Content::ExecuteReply(ExecuteReply {
            status: ReplyStatus::Error(_),
            ..
        })
    ));
}

#[test]
fn inspect() {
    golden(
        InspectRequest {
            code: "Vec::new".into(),
            cursor_pos: Some(5),
            detail_level: 0,
        },
        json!({"code": "Vec::new", "cursor_pos": 5, "detail_level": 0}),
    );
    golden(
        InspectReply {
            status: ReplyStatus::Ok,
            found: true,
            data: bundle("struct Vec"),
            metadata: Metadata::new(),
        },
        json!({"status": "ok", "found": true, "data": {"text/plain": "struct Vec"},
               "metadata": {}}),
    );
}

#[test]
fn complete() {
    golden(
        CompleteRequest {
            code: "std::th".into(),
            cursor_pos: Some(7),
        },
        json!({"code": "std::th", "cursor_pos": 7}),
    );
    golden(
        CompleteReply {
            status: ReplyStatus::Ok,
            matches: vec!["thread".into()],
            cursor_start: 5,
            cursor_end: 7,
            metadata: Metadata::new(),
        },
        json!({"status": "ok", "matches": ["thread"], "cursor_start": 5, "cursor_end": 7,
               "metadata": {}}),
    );
}

#[test]
fn history() {
    golden(
        HistoryRequest {
            output: false,
            raw: true,
            hist_access_type: HistAccessType::Search,
            session: 0,
            start: 0,
            stop: None,
            n: Some(10),
            pattern: Some("let*".into()),
            unique: true,
        },
        json!({"output": false, "raw": true, "hist_access_type": "search", "session": 0,
               "start": 0, "stop": null, "n": 10, "pattern": "let*", "unique": true}),
    );
    let tail = Content::from_type_and_content(
        "history_request",
        json!({"hist_access_type": "tail", "n": 3, "output": false, "raw": true}),
    )
    .unwrap();
    assert!(matches!(
        tail,
        Content::HistoryRequest(HistoryRequest { n: Some(3), .. })
    ));
    golden(
        HistoryReply {
            status: ReplyStatus::Ok,
            history: vec![
                HistoryEntry::Input(1, 1, "let x = 1;".into()),
                HistoryEntry::WithOutput(1, 2, ("x".into(), Some("1".into()))),
            ],
        },
        json!({"status": "ok", "history": [[1, 1, "let x = 1;"], [1, 2, ["x", "1"]]]}),
    );
}

#[test]
fn is_complete() {
    golden(
        IsCompleteRequest {
            code: "fn f() {".into(),
        },
        json!({"code": "fn f() {"}),
    );
    golden(IsCompleteReply::Complete, json!({"status": "complete"}));
    golden(
        IsCompleteReply::Incomplete {
            indent: "    ".into(),
        },
        json!({"status": "incomplete", "indent": "    "}),
    );
    golden(IsCompleteReply::Invalid, json!({"status": "invalid"}));
    golden(IsCompleteReply::Unknown, json!({"status": "unknown"}));
}

#[test]
fn comm_info() {
    golden(CommInfoRequest { target_name: None }, json!({}));
    golden(
        CommInfoRequest {
            target_name: Some("jupyter.widget".into()),
        },
        json!({"target_name": "jupyter.widget"}),
    );
    golden(
        CommInfoReply {
            status: ReplyStatus::Ok,
            comms: BTreeMap::new(),
        },
        json!({"status": "ok", "comms": {}}),
    );
}

#[test]
fn kernel_info() {
    golden(KernelInfoRequest {}, json!({}));
    golden(
        KernelInfoReply {
            status: ReplyStatus::Ok,
            protocol_version: "5.4".into(),
            implementation: "kettle".into(),
            implementation_version: "0.1.0".into(),
            language_info: LanguageInfo {
                name: "rust".into(),
                version: "1.95.0".into(),
                mimetype: "text/rust".into(),
                file_extension: ".rs".into(),
                pygments_lexer: "rust".into(),
                codemirror_mode: json!("rust"),
                nbconvert_exporter: "script".into(),
            },
            banner: "kettle".into(),
            help_links: vec![HelpLink {
                text: "Rust std".into(),
                url: "https://doc.rust-lang.org/std/".into(),
            }],
            debugger: false,
            supported_features: vec![],
        },
        json!({"status": "ok", "protocol_version": "5.4", "implementation": "kettle",
               "implementation_version": "0.1.0",
               "language_info": {"name": "rust", "version": "1.95.0", "mimetype": "text/rust",
                                 "file_extension": ".rs", "pygments_lexer": "rust",
                                 "codemirror_mode": "rust", "nbconvert_exporter": "script"},
               "banner": "kettle",
               "help_links": [{"text": "Rust std", "url": "https://doc.rust-lang.org/std/"}],
               "debugger": false, "supported_features": []}),
    );
}

#[test]
fn shutdown_and_interrupt() {
    golden(ShutdownRequest { restart: true }, json!({"restart": true}));
    golden(
        ShutdownReply {
            status: ReplyStatus::Ok,
            restart: true,
        },
        json!({"status": "ok", "restart": true}),
    );
    golden(InterruptRequest {}, json!({}));
    golden(
        InterruptReply {
            status: ReplyStatus::Ok,
        },
        json!({"status": "ok"}),
    );
}

#[test]
fn comms() {
    let mut data = serde_json::Map::new();
    data.insert("k".into(), json!(1));
    golden(
        CommOpen {
            comm_id: "c1".into(),
            target_name: "jupyter.widget".into(),
            data: data.clone(),
            target_module: None,
        },
        json!({"comm_id": "c1", "target_name": "jupyter.widget", "data": {"k": 1}}),
    );
    golden(
        CommMsg {
            comm_id: "c1".into(),
            data,
        },
        json!({"comm_id": "c1", "data": {"k": 1}}),
    );
    golden(
        CommClose {
            comm_id: "c1".into(),
            data: Default::default(),
        },
        json!({"comm_id": "c1", "data": {}}),
    );
}

#[test]
fn iopub_messages() {
    golden(
        Status {
            execution_state: ExecutionState::Starting,
        },
        json!({"execution_state": "starting"}),
    );
    golden(
        Status {
            execution_state: ExecutionState::Busy,
        },
        json!({"execution_state": "busy"}),
    );
    golden(
        Status {
            execution_state: ExecutionState::Idle,
        },
        json!({"execution_state": "idle"}),
    );
    golden(
        ExecuteInput {
            code: "1".into(),
            execution_count: ExecutionCount(1),
        },
        json!({"code": "1", "execution_count": 1}),
    );
    golden(
        ExecuteResult {
            execution_count: ExecutionCount(1),
            data: bundle("1"),
            metadata: Metadata::new(),
            transient: None,
        },
        json!({"execution_count": 1, "data": {"text/plain": "1"}, "metadata": {}}),
    );
    golden(
        Stream {
            name: StreamName::Stdout,
            text: "héllo\n".into(),
        },
        json!({"name": "stdout", "text": "héllo\n"}),
    );
    golden(
        Stream {
            name: StreamName::Stderr,
            text: "oops".into(),
        },
        json!({"name": "stderr", "text": "oops"}),
    );
    golden(
        DisplayData {
            data: bundle("d"),
            metadata: Metadata::new(),
            transient: Some(Transient {
                display_id: Some("p1".into()),
            }),
        },
        json!({"data": {"text/plain": "d"}, "metadata": {}, "transient": {"display_id": "p1"}}),
    );
    golden(
        DisplayData {
            data: bundle("d"),
            metadata: Metadata::new(),
            transient: None,
        },
        json!({"data": {"text/plain": "d"}, "metadata": {}}),
    );
    golden(
        UpdateDisplayData {
            data: bundle("e"),
            metadata: Metadata::new(),
            transient: Transient {
                display_id: Some("p1".into()),
            },
        },
        json!({"data": {"text/plain": "e"}, "metadata": {}, "transient": {"display_id": "p1"}}),
    );
    golden(ClearOutput { wait: true }, json!({"wait": true}));
    golden(
        ErrorInfo {
            ename: "Panic".into(),
            evalue: "boom".into(),
            traceback: vec!["at main".into()],
        },
        json!({"ename": "Panic", "evalue": "boom", "traceback": ["at main"]}),
    );
}

#[test]
fn stdin_messages() {
    golden(
        InputRequest {
            prompt: "name? ".into(),
            password: false,
        },
        json!({"prompt": "name? ", "password": false}),
    );
    golden(
        InputReply {
            value: "Ferris".into(),
        },
        json!({"value": "Ferris"}),
    );
}

#[test]
fn unknown_types_keep_their_json() {
    let c = Content::from_type_and_content("debug_request", json!({"seq": 1})).unwrap();
    assert_eq!(c.msg_type(), "debug_request");
    assert_eq!(c.to_value(), json!({"seq": 1}));
}

#[test]
fn extra_fields_are_tolerated() {
    // "Both sides should allow ... extra fields in known message types" (spec, Compatibility).
    let c =
        Content::from_type_and_content("kernel_info_request", json!({"future_field": [1, 2, 3]}));
    assert!(c.is_ok());
}
