//! Permission and routing caches, rate limiter and pub/sub, in Redis or in process.
