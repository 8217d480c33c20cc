//! Integration tests of kettle-lab's stand-ins, driven through real sockets and pipes.
//! One test binary, a module per stand-in; shared helpers in `util`.

mod asyncio;
mod case_study;
mod exercises;
mod futures;
mod multiprocessing;
mod threads;
mod typist;
mod util;
mod weather;
