//! Dependencies without a network (issue 7, and "offline by default"): a `:dep` on a crate that
//! is in this machine's cargo cache works with the network cut off, a crate that is not there
//! is fetched online after the cell says so, and a learner's own `:offline` stands.
//!
//! "Cut off" is a proxy on a closed port (`CARGO_HTTP_PROXY`, for the kernel and so for every
//! cargo it runs): any attempt to reach crates.io fails at once, so each cell below shows whether
//! cargo tried. `cfg-if`, `itoa` and `memchr` are dependencies of kettle itself, so building
//! kettle put them into the cache.

use crate::util::{Collected, Kernel, Launch};

const GOING_ONLINE: &str = "not in this machine's cargo cache";
/// What cargo says when it tried to reach the index through the dead proxy.
const TRIED_THE_NETWORK: &str = "index.crates.io";

pub(crate) fn without_network() -> Launch {
    Launch {
        env: vec![
            ("CARGO_HTTP_PROXY".into(), "http://127.0.0.1:9".into()),
            ("CARGO_NET_RETRY".into(), "0".into()),
        ],
        ..Launch::default()
    }
}

/// Whether the cell said the engine goes online for it.
fn went_online(c: &Collected) -> bool {
    c.stream("stderr").contains(GOING_ONLINE)
}

/// The error a failed cell showed; panics with the exchange if it did not fail.
fn error_of(c: &Collected) -> String {
    assert_eq!(c.status(), "error", "{}", c.describe());
    c.error().content.to_string()
}

#[test]
fn cached_crates_need_no_network_missing_ones_are_fetched_and_offline_is_the_learners_to_change() {
    let mut k = Kernel::start_with(&without_network());

    let cached = k.execute(
        ":dep cfg-if = \"1\"\n\
         cfg_if::cfg_if! {\n\
             if #[cfg(unix)] { fn family() -> &'static str { \"unix\" } }\n\
             else { fn family() -> &'static str { \"other\" } }\n\
         }\n\
         family()",
    );
    assert_eq!(
        cached.result_text().as_deref(),
        Some("\"unix\""),
        "{}",
        cached.describe()
    );
    assert!(!went_online(&cached), "{}", cached.describe());

    // Not in any cache: the offline attempt fails, the cell says it goes online, and the error
    // shown is the online attempt's (the dead proxy), not cargo's offline resolution failure.
    let missing = k.execute(":dep kettle-test-no-such-crate = \"1\"\n1");
    let error = error_of(&missing);
    assert!(went_online(&missing), "{}", missing.describe());
    assert!(
        error.contains(TRIED_THE_NETWORK) && !error.contains("--offline"),
        "{}",
        missing.describe()
    );

    // The engine went back offline after that cell: another cached crate still needs no network.
    k.assert_result(
        ":dep itoa = \"1\"\nitoa::Buffer::new().format(42).to_owned()",
        "\"42\"",
    );

    // `:offline 0` from the learner: cargo goes online (and fails here) even for a cached crate
    // (the engine's setting in the environment of evcxr's cargo runs went with it).
    k.execute_ok(":offline 0");
    let online = k.execute(":dep memchr = \"2\"\n1");
    assert!(
        error_of(&online).contains(TRIED_THE_NETWORK),
        "{}",
        online.describe()
    );

    // `:offline 1` from the learner: a crate missing from the cache fails offline, and the
    // engine does not go online for it.
    k.execute_ok(":offline 1");
    let offline = k.execute(":dep kettle-test-no-such-crate = \"1\"\n1");
    assert!(
        error_of(&offline).contains("--offline"),
        "{}",
        offline.describe()
    );
    assert!(!went_online(&offline), "{}", offline.describe());
}
