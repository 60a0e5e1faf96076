//! `sqlx::migrate!` embeds the migration files at compile time but cannot tell cargo about them on
//! stable Rust: a migration added to either set must rebuild the crate, or the new binary would run
//! without it.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
