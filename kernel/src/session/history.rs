//! This kernel's input history, answering `history_request` (tail, range, search).
//! Spec: "History". Only inputs run with `store_history` are recorded; the line number is the
//! cell's execution count, so `In[n]` and history line `n` agree.

use crate::wire::{HistAccessType, HistoryEntry, HistoryRequest};

/// Our session number in history replies. We keep no history across kernel starts, so the
/// current session is the only one; the spec lets clients say 0 for "current" too.
pub const SESSION: i64 = 1;

/// How many cells `tail` returns when the request gives no `n` (IPython's default).
const DEFAULT_TAIL: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    line: u32,
    input: String,
    output: Option<String>,
}

/// Executed inputs, in order.
#[derive(Debug, Default)]
pub struct History {
    entries: Vec<Entry>,
}

impl History {
    /// Records cell `line` with its input and the `text/plain` of its result, if any.
    pub fn record(&mut self, line: u32, input: &str, output: Option<String>) {
        self.entries.push(Entry {
            line,
            input: input.to_string(),
            output,
        });
    }

    /// The entries a request asks for.
    pub fn query(&self, request: &HistoryRequest) -> Vec<HistoryEntry> {
        let picked: Vec<&Entry> = match request.hist_access_type {
            HistAccessType::Tail => {
                let n = request.n.map_or(DEFAULT_TAIL, |n| n as usize);
                self.entries[self.entries.len().saturating_sub(n)..]
                    .iter()
                    .collect()
            }
            HistAccessType::Range => self.range(request),
            HistAccessType::Search => self.search(request),
            HistAccessType::Other => Vec::new(),
        };
        picked
            .into_iter()
            .map(|e| {
                if request.output {
                    HistoryEntry::WithOutput(SESSION, e.line, (e.input.clone(), e.output.clone()))
                } else {
                    HistoryEntry::Input(SESSION, e.line, e.input.clone())
                }
            })
            .collect()
    }

    fn range(&self, request: &HistoryRequest) -> Vec<&Entry> {
        // IPython: session <= 0 is relative to the current one, so only 0 means "us".
        if request.session != 0 && request.session != SESSION {
            return Vec::new();
        }
        let last = self.entries.last().map_or(0, |e| i64::from(e.line));
        // As in IPython, a negative start counts back from the end, and a missing or zero stop
        // means "to the end"; `stop` itself is excluded.
        let start = if request.start < 0 {
            last + 1 + request.start
        } else {
            request.start
        };
        let stop = match request.stop {
            Some(stop) if stop > 0 => stop,
            _ => i64::MAX,
        };
        self.entries
            .iter()
            .filter(|e| (start..stop).contains(&i64::from(e.line)))
            .collect()
    }

    fn search(&self, request: &HistoryRequest) -> Vec<&Entry> {
        let pattern: Vec<char> = request.pattern.as_deref().unwrap_or("*").chars().collect();
        let mut found: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| glob_match(&pattern, &e.input.chars().collect::<Vec<_>>()))
            .collect();
        if request.unique {
            // Keep the most recent occurrence of each input, in history order.
            let mut seen = std::collections::HashSet::new();
            found.reverse();
            found.retain(|e| seen.insert(e.input.as_str()));
            found.reverse();
        }
        if let Some(n) = request.n.filter(|&n| n > 0) {
            let n = n as usize;
            found.drain(..found.len().saturating_sub(n));
        }
        found
    }
}

/// Whole-string glob match with `*` (any run) and `?` (one character), case-sensitive like
/// IPython's SQLite `GLOB`.
fn glob_match(pattern: &[char], text: &[char]) -> bool {
    // Iterative matcher with backtracking to the last `*`: linear in practice, no recursion.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str, t: &str) -> bool {
        glob_match(
            &p.chars().collect::<Vec<_>>(),
            &t.chars().collect::<Vec<_>>(),
        )
    }

    fn history() -> History {
        let mut h = History::default();
        h.record(1, "let x = 1;", None);
        h.record(2, "x + 1", Some("2".into()));
        h.record(3, "let y = 2;", None);
        h.record(4, "x + 1", Some("2".into()));
        h.record(5, "println!(\"héllo\")", None);
        h
    }

    fn lines(entries: &[HistoryEntry]) -> Vec<u32> {
        entries
            .iter()
            .map(|e| match e {
                HistoryEntry::Input(_, l, _) | HistoryEntry::WithOutput(_, l, _) => *l,
            })
            .collect()
    }

    fn req(kind: HistAccessType) -> HistoryRequest {
        HistoryRequest {
            hist_access_type: kind,
            ..Default::default()
        }
    }

    #[test]
    fn glob_semantics() {
        assert!(glob("*", ""));
        assert!(glob("let*", "let x = 1;"));
        assert!(!glob("let", "let x = 1;"));
        assert!(glob("*x*", "let x = 1;"));
        assert!(glob("x ? 1", "x + 1"));
        assert!(glob("*h?llo*", "println!(\"héllo\")"));
        assert!(!glob("X*", "x + 1"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
    }

    #[test]
    fn tail_returns_the_last_n() {
        let h = history();
        let r = HistoryRequest {
            n: Some(2),
            ..req(HistAccessType::Tail)
        };
        assert_eq!(lines(&h.query(&r)), [4, 5]);
        assert_eq!(lines(&h.query(&req(HistAccessType::Tail))), [1, 2, 3, 4, 5]);
        let r = HistoryRequest {
            n: Some(1),
            ..req(HistAccessType::Tail)
        };
        assert_eq!(
            h.query(&r),
            [HistoryEntry::Input(
                SESSION,
                5,
                "println!(\"héllo\")".into()
            )]
        );
    }

    #[test]
    fn range_is_start_inclusive_stop_exclusive() {
        let h = history();
        let r = HistoryRequest {
            start: 2,
            stop: Some(4),
            ..req(HistAccessType::Range)
        };
        assert_eq!(lines(&h.query(&r)), [2, 3]);
        let all = req(HistAccessType::Range);
        assert_eq!(lines(&h.query(&all)), [1, 2, 3, 4, 5]);
        let own = HistoryRequest {
            session: SESSION,
            start: 4,
            ..all.clone()
        };
        assert_eq!(lines(&h.query(&own)), [4, 5]);
        let earlier = HistoryRequest {
            session: -1,
            ..all.clone()
        };
        assert!(h.query(&earlier).is_empty());
        let from_end = HistoryRequest { start: -2, ..all };
        assert_eq!(lines(&h.query(&from_end)), [4, 5]);
    }

    #[test]
    fn search_with_unique_and_n() {
        let h = history();
        let r = HistoryRequest {
            pattern: Some("x*".into()),
            ..req(HistAccessType::Search)
        };
        assert_eq!(lines(&h.query(&r)), [2, 4]);
        let unique = HistoryRequest {
            unique: true,
            ..r.clone()
        };
        assert_eq!(lines(&h.query(&unique)), [4]);
        let all_let = HistoryRequest {
            pattern: Some("let*".into()),
            n: Some(1),
            ..r
        };
        assert_eq!(lines(&h.query(&all_let)), [3]);
    }

    #[test]
    fn output_gives_input_output_pairs() {
        let h = history();
        let r = HistoryRequest {
            output: true,
            start: 2,
            stop: Some(3),
            ..req(HistAccessType::Range)
        };
        assert_eq!(
            h.query(&r),
            [HistoryEntry::WithOutput(
                SESSION,
                2,
                ("x + 1".into(), Some("2".into()))
            )]
        );
    }
}
