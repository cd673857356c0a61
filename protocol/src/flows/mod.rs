//! Client-side protocol state machines. (Being written.)
