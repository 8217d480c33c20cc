//! Cells C4–C5 as a program: `cargo run -p kettle-lab --example temp_getter`.
//!
//! Fetches the notebook's 9 temperatures from the local weather server, first with one thread
//! per city, then one after another, and prints what the chapter printed.

use std::thread;
use std::time::Instant;

use kettle_lab::{CITIES, LabError, WeatherServer, get_temperature};

/// The book's TempGetter: a city, and the temperature its `run` fetched.
struct TempGetter {
    city: &'static str,
    temperature: Result<f64, LabError>,
}

impl TempGetter {
    fn new(city: &'static str) -> Self {
        TempGetter {
            city,
            temperature: Err(LabError::BadResponse("not run yet".into())),
        }
    }

    fn run(&mut self, base_url: &str) {
        self.temperature = get_temperature(base_url, self.city);
    }
}

fn report(getters: &[TempGetter], start: Instant) {
    let secs = start.elapsed().as_secs_f64();
    for t in getters {
        match &t.temperature {
            Ok(temp) => println!("it is {temp:.0}°C in {}", t.city),
            Err(e) => println!("no temperature for {}: {e}", t.city),
        }
    }
    println!("Got {} temps in {secs:.2} seconds", getters.len());
}

fn main() -> std::io::Result<()> {
    let server = WeatherServer::start()?;
    let url = server.url();

    println!("C4: one thread per city");
    let start = Instant::now();
    let getters: Vec<TempGetter> = thread::scope(|s| {
        let threads: Vec<_> = CITIES
            .iter()
            .map(|&city| {
                s.spawn(|| {
                    let mut getter = TempGetter::new(city);
                    getter.run(&url);
                    getter
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a TempGetter panicked"))
            .collect()
    });
    report(&getters, start);

    println!("\nC5: run() on the main thread, one city after another");
    let start = Instant::now();
    let mut getters: Vec<TempGetter> = CITIES.iter().map(|&city| TempGetter::new(city)).collect();
    for getter in &mut getters {
        getter.run(&url);
    }
    report(&getters, start);
    Ok(())
}
