//! memora-cache-redis
