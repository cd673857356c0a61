//! The issuer: actix actors over plain-Rust cores (coin shards, coordinator, log writer, mint, bank, registry, sessions).
