//! Read models built from the log: coin status, user index (kept apart), accounts and float.
