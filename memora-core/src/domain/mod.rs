//! The domain model: every entity of the Memora data model as plain Rust
//! types. Constructors validate ("parse, don't validate"), so a value of these
//! types is always internally consistent. No I/O and no wire format lives here
//! (serde only where the type *is* a content format: stage configs and
//! content bundles).

pub mod academic;
pub mod commerce;
pub mod content;
pub mod institution;
pub mod memory;
pub mod player;
pub mod quest;
pub mod season;
pub mod user;

pub use academic::*;
pub use commerce::*;
pub use content::*;
pub use institution::*;
pub use memory::*;
pub use player::*;
pub use quest::*;
pub use season::*;
pub use user::*;
