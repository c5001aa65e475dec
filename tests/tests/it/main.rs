//! The integration test binary of `memora-tests` (one binary keeps link
//! times down): port conformance on every adapter and fault tests.

mod boards_redis;
mod cache_cluster;
mod cache_memory;
mod cache_redis;
mod fast_memory;
mod fast_redis;
mod integrity_memory;
mod integrity_postgres;
mod integrity_redis;
mod ops_postgres;
mod pool_postgres;
mod queue_redis;
mod rebuild_memory;
mod reconcile_redis;
mod replica_postgres;
mod store_memory;
mod store_postgres;
mod store_replica;
