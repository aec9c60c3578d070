//! Peer libraries on the same workloads: Apache OpenDAL (KV), omniqueue
//! (queues), redis-benchmark (plain get/set).

pub mod omniqueue;
pub mod opendal;
pub mod redis_benchmark;
