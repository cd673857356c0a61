//! Cipher suites, wire messages and the client side of every flow (no I/O).
