//! The integration tests of `varietycash`: one binary (`tests/it`), one module
//! per concern. A new test file goes here as `tests/it/NAME.rs` with
//! `mod NAME;` below; a file of its own under `tests/` would be another
//! binary to link (`tests/it/crate_edges.rs` of the workspace root refuses it).

mod audit_anchors;
mod bank_file_exchange;
mod browser;
mod card_image_tampering;
mod card_transfer_retries;
mod cards_over_the_wire;
mod cash_out;
mod cli_processes;
mod cluster_faults;
mod cluster_validators;
mod coin_status;
mod concurrent_purses;
mod crate_edges;
mod demo_binary;
mod epoch_erasure;
mod epoch_revocation;
mod files_private;
mod fuzz_regressions;
mod issuer_fail_stop;
mod issuer_killed_and_restarted;
mod kill9_soak;
mod p1_valid_payments;
mod p2_double_spend;
mod p3_diverted_payment;
mod p4_signed_statement;
mod participant_lifecycle;
mod payer_pays_whom_it_meant;
mod postgres_failover;
mod purse_killed_mid_payment;
mod purse_passphrase;
mod refund_after_a_lost_purse;
mod refund_covers_change;
mod refund_run_again;
mod returned_debit;
mod tidy;
mod user_index_service;
mod util;
mod w1_valid_purchase;
mod w2_no_coins_without_debit;
mod w3_replayed_wrequest3;
mod whole_issuer_on_postgresql;
