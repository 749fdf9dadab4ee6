//! Searching one's own photos: `index`, `search`, `duplicates` and `serve`.

mod duplicates_cmd;
mod index_cmd;
mod model;
mod picture;
mod search_cmd;
mod serve_cmd;

pub use duplicates_cmd::{DuplicatesArgs, run as duplicates};
pub use index_cmd::{IndexArgs, run as index};
pub use search_cmd::{SearchArgs, run as search};
pub use serve_cmd::{ServeArgs, run as serve};
