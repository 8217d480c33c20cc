/// X1 (c): `Rc` counts its owners without atomic instructions, so two threads must never hold
/// clones of one `Rc`. It is not `Send`, and rustc says so (E0277).
fn rc_to_a_thread() {
    use std::{cell::RefCell, rc::Rc};
    let counter = Rc::new(RefCell::new(0));
    let for_thread = Rc::clone(&counter);
    thread::spawn(move || *for_thread.borrow_mut() += 1)
        .join()
        .unwrap();
    println!("counter = {}", counter.borrow());
}
