/// X1 (b): two scoped threads both change one counter. Scoped threads may borrow locals, but
/// only one mutable borrow can exist at a time: a data race, refused (E0499).
fn two_threads_one_counter() {
    let mut counter = 0;
    thread::scope(|s| {
        s.spawn(|| counter += 1);
        s.spawn(|| counter += 1);
    });
    println!("counter = {counter}");
}
