//! memora-store-postgres
