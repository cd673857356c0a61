//! Every wire message of PROTOCOLS.md. (Being written.)
