//! The weather stand-in for cells C4–C5 (TempGetter): the city table and the HTTP server.
//! The matching client lives in [`crate::client`].

mod cities;
mod server;

pub use cities::{BOOK_CITIES, CITIES, expected_temperature};
pub use server::{WEATHER_PATH, WeatherServer, WeatherServerBuilder};
