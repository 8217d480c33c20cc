//! The fixed weather table: which cities exist and what the "sky" over them looks like.
//!
//! Temperatures are invented but fixed, so notebook output is reproducible (Edmonton is 3 °C,
//! as in the course text). Coordinates and UTC offsets are the real, rounded ones; condition
//! codes follow OpenWeatherMap's published "weather condition codes". City ids are ours (1..),
//! not OpenWeatherMap's.

/// The 9 cities of the chapter's notebook (cell `In[7]`), in the notebook's order.
pub const CITIES: [&str; 9] = [
    "Edmonton",
    "Victoria",
    "Winnipeg",
    "Fredericton",
    "Halifax",
    "Toronto",
    "Charlottetown",
    "Quebec",
    "Regina",
];

/// The book's 10-city variant: the notebook's list with "Quebec City" instead of "Quebec",
/// plus "St. John's" (whose apostrophe and space exercise URL encoding).
pub const BOOK_CITIES: [&str; 10] = [
    "Edmonton",
    "Victoria",
    "Winnipeg",
    "Fredericton",
    "St. John's",
    "Halifax",
    "Toronto",
    "Charlottetown",
    "Quebec City",
    "Regina",
];

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct City {
    pub id: u32,
    pub name: &'static str,
    pub lat: f64,
    pub lon: f64,
    /// UTC offset in seconds (standard time), OpenWeatherMap's `timezone` field.
    pub timezone: i32,
    pub temp_c: f64,
    pub humidity: u32,
    pub pressure: u32,
    pub wind_speed: f64,
    pub wind_deg: u32,
    /// OpenWeatherMap condition: (id, main, description, icon).
    pub sky: (u32, &'static str, &'static str, &'static str),
}

const CLEAR: (u32, &str, &str, &str) = (800, "Clear", "clear sky", "01d");
const CLOUDS: (u32, &str, &str, &str) = (803, "Clouds", "broken clouds", "04d");
const SNOW: (u32, &str, &str, &str) = (600, "Snow", "light snow", "13d");
const RAIN: (u32, &str, &str, &str) = (500, "Rain", "light rain", "10d");
const MIST: (u32, &str, &str, &str) = (701, "Mist", "mist", "50d");

#[rustfmt::skip] // one city per line reads as a table
const TABLE: [City; 11] = [
    City { id: 1, name: "Edmonton", lat: 53.55, lon: -113.49, timezone: -25200, temp_c: 3.2, humidity: 64, pressure: 1018, wind_speed: 3.6, wind_deg: 250, sky: CLEAR },
    City { id: 2, name: "Victoria", lat: 48.43, lon: -123.37, timezone: -28800, temp_c: 8.6, humidity: 87, pressure: 1009, wind_speed: 4.1, wind_deg: 200, sky: RAIN },
    City { id: 3, name: "Winnipeg", lat: 49.90, lon: -97.14, timezone: -21600, temp_c: -4.3, humidity: 79, pressure: 1021, wind_speed: 5.1, wind_deg: 320, sky: SNOW },
    City { id: 4, name: "Fredericton", lat: 45.96, lon: -66.64, timezone: -14400, temp_c: 1.7, humidity: 70, pressure: 1013, wind_speed: 2.6, wind_deg: 270, sky: CLOUDS },
    City { id: 5, name: "Halifax", lat: 44.65, lon: -63.57, timezone: -14400, temp_c: 4.8, humidity: 81, pressure: 1012, wind_speed: 6.2, wind_deg: 230, sky: MIST },
    City { id: 6, name: "Toronto", lat: 43.65, lon: -79.38, timezone: -18000, temp_c: 6.4, humidity: 66, pressure: 1016, wind_speed: 4.6, wind_deg: 240, sky: CLOUDS },
    City { id: 7, name: "Charlottetown", lat: 46.24, lon: -63.13, timezone: -14400, temp_c: 2.6, humidity: 83, pressure: 1011, wind_speed: 7.2, wind_deg: 250, sky: RAIN },
    City { id: 8, name: "Quebec", lat: 46.81, lon: -71.21, timezone: -18000, temp_c: -1.2, humidity: 74, pressure: 1017, wind_speed: 3.1, wind_deg: 290, sky: SNOW },
    City { id: 9, name: "Regina", lat: 50.45, lon: -104.61, timezone: -21600, temp_c: -2.1, humidity: 68, pressure: 1022, wind_speed: 5.7, wind_deg: 300, sky: CLEAR },
    City { id: 10, name: "St. John's", lat: 47.56, lon: -52.71, timezone: -12600, temp_c: 3.9, humidity: 88, pressure: 1008, wind_speed: 8.2, wind_deg: 210, sky: MIST },
    City { id: 11, name: "Quebec City", lat: 46.81, lon: -71.21, timezone: -18000, temp_c: -1.2, humidity: 74, pressure: 1017, wind_speed: 3.1, wind_deg: 290, sky: SNOW },
];

/// Looks a city up by name, ignoring ASCII case and surrounding spaces (as the real API does).
pub(crate) fn find(name: &str) -> Option<&'static City> {
    let name = name.trim();
    TABLE.iter().find(|c| c.name.eq_ignore_ascii_case(name))
}

/// The temperature, in °C, that the weather server reports for `city` (case-insensitive), or
/// `None` if the server does not know the city. Handy for checking a notebook's results.
///
/// ```
/// assert_eq!(kettle_lab::expected_temperature("Edmonton"), Some(3.2));
/// assert_eq!(kettle_lab::expected_temperature("Atlantis"), None);
/// ```
pub fn expected_temperature(city: &str) -> Option<f64> {
    find(city).map(|c| c.temp_c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_city_is_in_the_table() {
        for name in CITIES.iter().chain(BOOK_CITIES.iter()) {
            assert!(find(name).is_some(), "{name} missing");
        }
        assert_eq!(find(" edmonton ").unwrap().name, "Edmonton");
    }

    #[test]
    fn no_temperature_prints_as_minus_zero() {
        // `{:.0}` of a value in (-0.5, 0) prints "-0"; keep the table clear of that.
        for c in TABLE {
            assert!(!(-0.5..0.0).contains(&c.temp_c), "{}", c.name);
        }
    }
}
