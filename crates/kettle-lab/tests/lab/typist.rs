//! The typist pipe (C1–C3).

use std::io::{BufRead, Read};
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn reader_blocks_until_the_line_is_typed_while_main_keeps_counting() {
    let per_char = Duration::from_millis(10);
    let text = kettle_lab::TYPED_TEXT;
    let start = Instant::now();
    let mut keyboard = kettle_lab::typist(text, per_char);
    let reader = thread::spawn(move || {
        let mut line = String::new();
        keyboard.read_line(&mut line).unwrap();
        (line, start.elapsed())
    });
    let mut count = 0u64;
    while !reader.is_finished() {
        count += 1;
    }
    let (line, took) = reader.join().unwrap();
    assert_eq!(line, text);
    let typing = per_char * text.chars().count() as u32;
    assert!(
        took >= typing,
        "line arrived after {took:?}, typing takes {typing:?}"
    );
    assert!(count > 0, "the main thread ran while the reader waited");
}

#[test]
fn pipe_reaches_end_of_file_after_the_text() {
    let mut keyboard = kettle_lab::typist("one\ntwo\n", Duration::from_millis(1));
    let mut lines = Vec::new();
    let mut line = String::new();
    while keyboard.read_line(&mut line).unwrap() > 0 {
        lines.push(std::mem::take(&mut line));
    }
    assert_eq!(lines, ["one\n", "two\n"]);
    let mut rest = Vec::new();
    assert_eq!(keyboard.read_to_end(&mut rest).unwrap(), 0);
}
