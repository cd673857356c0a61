//! The auditor: replays a log and proves the chain, the checkpoints and conservation of cash.
