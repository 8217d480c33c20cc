/// X1 (a): a thread borrows a local counter. The thread may outlive the function, and the
/// counter with it: rustc refuses (E0373).
fn count_in_a_thread() {
    let mut counter = 0;
    let handle = thread::spawn(|| counter += 1);
    handle.join().unwrap();
    println!("counter = {counter}");
}
