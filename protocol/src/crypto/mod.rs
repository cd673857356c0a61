//! Cipher suites and primitives. (Being written.)
