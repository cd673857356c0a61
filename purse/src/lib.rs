//! A participant's durable purse: coins, selection, and a journal of in-flight transactions.
