//! Showing a value richly as the *result* of a cell, through evcxr's `evcxr_display`
//! convention: when a cell's final expression has a method `fn evcxr_display(&self)`, evcxr
//! calls it and reads MIME blocks from stdout.
//!
//! In a notebook, implement [`Rich`](crate::Rich) and bring [`RichValue`] into scope (it is in
//! `use kettle_display::*`): every `Rich` type then has that method. A crate defining its own
//! types can use [`rich_value!`](crate::rich_value) to give them an inherent one instead.

use std::io::Write;

use crate::bundle::Rich;

/// Prints `x`'s bundle as `EVCXR_BEGIN_CONTENT <mime>` ... `EVCXR_END_CONTENT` blocks, one per
/// MIME type, which the kernel turns into the cell's `execute_result`.
///
/// Use it to implement the method evcxr looks for:
///
/// ```
/// use kettle_display::{Bundle, Rich};
///
/// struct Score(u32);
/// impl Rich for Score {
///     fn bundle(&self) -> Bundle {
///         Bundle::text(format!("{} points", self.0)).with_html(format!("<b>{}</b> points", self.0))
///     }
/// }
/// impl Score {
///     /// Called by the kernel when a `Score` is a cell's last expression.
///     pub fn evcxr_display(&self) {
///         kettle_display::show_as_value(self)
///     }
/// }
/// // Or, equivalently: kettle_display::rich_value!(Score);
/// ```
///
/// Use [`display`](crate::display) instead when you want output *during* the cell: value
/// display only happens when the cell ends, and only once per cell.
pub fn show_as_value<T: Rich + ?Sized>(x: &T) {
    let bundle = x.bundle();
    let mut out = String::new();
    for mime in bundle.mimes() {
        let data = bundle.get(mime).unwrap_or("");
        out.push_str("EVCXR_BEGIN_CONTENT ");
        out.push_str(mime);
        out.push('\n');
        out.push_str(data);
        if !data.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("EVCXR_END_CONTENT\n");
    }
    // One locked write, so another thread's println! cannot land inside a block.
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

/// Gives every [`Rich`](crate::Rich) type the method evcxr calls on a cell's final value, so a
/// `Rich` value shows richly as the cell's result once this trait is in scope.
///
/// A trait rather than a macro-generated `impl` because evcxr keeps `use` lines and trait
/// impls from cell to cell, while a macro call in a cell runs as a statement of that cell only.
///
/// ```
/// use kettle_display::{Bundle, Rich, RichValue};
///
/// struct Score(u32);
/// impl Rich for Score {
///     fn bundle(&self) -> Bundle {
///         Bundle::text(format!("{} points", self.0)).with_html(format!("<b>{}</b> points", self.0))
///     }
/// }
/// Score(7).evcxr_display(); // what the kernel calls when `Score(7)` ends a cell
/// ```
pub trait RichValue {
    /// Prints this value's bundle in evcxr's display convention (see [`show_as_value`]).
    fn evcxr_display(&self);
}

impl<T: Rich + ?Sized> RichValue for T {
    fn evcxr_display(&self) {
        show_as_value(self)
    }
}

/// Gives a type that implements [`Rich`](crate::Rich) the `evcxr_display` method, so it shows
/// richly when it is the last expression of a cell.
///
/// ```
/// struct Hello;
/// impl kettle_display::Rich for Hello {
///     fn bundle(&self) -> kettle_display::Bundle {
///         kettle_display::html("<i>hello</i>")
///     }
/// }
/// kettle_display::rich_value!(Hello);
/// Hello.evcxr_display(); // what the kernel calls; prints the MIME blocks
/// ```
#[macro_export]
macro_rules! rich_value {
    ($($ty:ty),+ $(,)?) => {
        $(
            impl $ty {
                /// Shows this value richly as a cell's result (evcxr's display convention).
                pub fn evcxr_display(&self) {
                    $crate::show_as_value(self)
                }
            }
        )+
    };
}
