//! `sqlx::migrate!` embeds `migrations/` at compile time, but Cargo does not
//! know the macro reads it: without this, adding a migration to an
//! already-built tree left the old set embedded (sqlx's documented fix).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
