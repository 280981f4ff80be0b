//! Rebuild when a migration is added or changed: `sqlx::migrate!` embeds the files at compile
//! time, and cargo does not otherwise know that they are inputs (a stale binary would miss a new
//! migration).
fn main() {
    println!("cargo:rerun-if-changed=../../migrations/sqlite");
}
