//! The three ISO 20022 messages written, read back and checked by the
//! schema's rules: what the issuer sends (pain.008 for purchases, pain.001
//! for payouts) round-trips; a statement with a returned debit reads as
//! one; and files broken the ways real files break (a wrong check digit,
//! a count or sum that does not add up, a missing or misplaced element,
//! an id too long, a balance that does not follow from the entries, a
//! foreign namespace, a DTD) are refused with the rule they break.

use bank_files::camt053::{Entry, EntryKind, ReturnReason, Statement};
use bank_files::pain001::{CreditTransferFile, Debtor, Transfer};
use bank_files::pain008::{Creditor, Debit, DirectDebitFile};
use bank_files::{BankFileError, Bic, Iban, rules};
use ledger::Amount;

fn iban(text: &str) -> Iban {
    Iban::parse(text).expect("a valid IBAN")
}

fn debits() -> DirectDebitFile {
    DirectDebitFile {
        message_id: "VC-DD-0001".into(),
        created_at: "2026-12-05T14:00:00".into(),
        collection_date: "2026-12-07".into(),
        creditor: Creditor {
            name: "VarietyCash Issuer".into(),
            iban: iban("DE89 3704 0044 0532 0130 00"),
            bic: Bic::parse("COBADEFFXXX").expect("bic"),
            scheme_id: "DE98ZZZ09999999999".into(),
        },
        debits: vec![
            Debit {
                end_to_end_id: "0a1b2c3d4e5f60718293a4b5c6d7e8f9".into(),
                amount: Amount::from_minor(1000),
                debtor_name: "Alice & Co".into(),
                debtor_iban: iban("GB82WEST12345698765432"),
                mandate_id: "VC-MANDATE-alice".into(),
                mandate_signed_on: "2026-12-01".into(),
            },
            Debit {
                end_to_end_id: "ffeeddccbbaa99887766554433221100".into(),
                amount: Amount::from_minor(250),
                debtor_name: "Bob".into(),
                debtor_iban: iban("NL91ABNA0417164300"),
                mandate_id: "VC-MANDATE-bob".into(),
                mandate_signed_on: "2026-12-02".into(),
            },
        ],
    }
}

fn transfers() -> CreditTransferFile {
    CreditTransferFile {
        message_id: "VC-CT-0001".into(),
        created_at: "2026-12-05T14:00:00".into(),
        execution_date: "2026-12-06".into(),
        debtor: Debtor {
            name: "VarietyCash Issuer".into(),
            iban: iban("DE89370400440532013000"),
            bic: Bic::parse("COBADEFF").expect("bic"),
        },
        transfers: vec![Transfer {
            end_to_end_id: "00112233445566778899aabbccddeeff".into(),
            amount: Amount::from_minor(500),
            creditor_name: "The Bookshop".into(),
            creditor_iban: iban("FR1420041010050500013M02606"),
        }],
    }
}

fn statement() -> Statement {
    Statement {
        message_id: "BANK-STMT-0001".into(),
        created_at: "2026-12-08T06:00:00".into(),
        statement_id: "STMT-2026-12-08".into(),
        account: iban("DE89370400440532013000"),
        opening: Amount::from_minor(10_000),
        closing: Amount::from_minor(10_000 + 1000 + 250 - 500 - 250),
        entries: vec![
            Entry {
                end_to_end_id: "0a1b2c3d4e5f60718293a4b5c6d7e8f9".into(),
                amount: Amount::from_minor(1000),
                kind: EntryKind::Collected,
                booked_on: "2026-12-07".into(),
            },
            Entry {
                end_to_end_id: "ffeeddccbbaa99887766554433221100".into(),
                amount: Amount::from_minor(250),
                kind: EntryKind::Collected,
                booked_on: "2026-12-07".into(),
            },
            Entry {
                end_to_end_id: "00112233445566778899aabbccddeeff".into(),
                amount: Amount::from_minor(500),
                kind: EntryKind::Paid,
                booked_on: "2026-12-07".into(),
            },
            Entry {
                end_to_end_id: "ffeeddccbbaa99887766554433221100".into(),
                amount: Amount::from_minor(250),
                kind: EntryKind::Returned(ReturnReason::InsufficientFunds),
                booked_on: "2026-12-08".into(),
            },
        ],
    }
}

fn broken_rule(result: Result<(), BankFileError>) -> String {
    match result {
        Err(BankFileError::Rule { rule, .. }) => rule,
        other => panic!("expected a broken rule, got {other:?}"),
    }
}

#[test]
fn a_direct_debit_file_round_trips_and_keeps_the_rules() {
    let file = debits();
    let xml = file.to_xml().expect("written");
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.008.001.08\">"));
    assert!(
        xml.contains("<NbOfTxs>2</NbOfTxs><CtrlSum>12.50</CtrlSum>"),
        "{xml}"
    );
    assert!(
        xml.contains("<InstdAmt Ccy=\"EUR\">10.00</InstdAmt>"),
        "{xml}"
    );
    // A name with an ampersand is escaped and reads back as written.
    assert!(xml.contains("Alice &amp; Co"), "{xml}");
    rules::check_pain008(&xml).expect("rules");
    assert_eq!(DirectDebitFile::from_xml(&xml).expect("read"), file);
}

#[test]
fn a_credit_transfer_file_round_trips_and_keeps_the_rules() {
    let file = transfers();
    let xml = file.to_xml().expect("written");
    rules::check_pain001(&xml).expect("rules");
    assert_eq!(CreditTransferFile::from_xml(&xml).expect("read"), file);
}

#[test]
fn a_statement_reads_back_with_its_returned_debit_and_reason() {
    let stmt = statement();
    let xml = stmt.to_xml().expect("written");
    assert!(
        xml.contains("<RtrInf><Rsn><Cd>AM04</Cd></Rsn></RtrInf>"),
        "{xml}"
    );
    let read = Statement::from_xml(&xml).expect("read");
    assert_eq!(read, stmt);
    let returned: Vec<_> = read
        .entries
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Returned(_)))
        .collect();
    assert_eq!(returned.len(), 1);
    assert_eq!(
        returned[0].end_to_end_id,
        "ffeeddccbbaa99887766554433221100"
    );
}

#[test]
fn files_broken_as_real_files_break_are_refused_with_their_rule() {
    let good = debits().to_xml().expect("written");
    // A changed check digit in the debtor's IBAN.
    let bad = good.replace("GB82WEST12345698765432", "GB83WEST12345698765432");
    assert!(broken_rule(rules::check_pain008(&bad)).contains("check digits"));
    // A count that does not match.
    let bad = good.replacen("<NbOfTxs>2</NbOfTxs>", "<NbOfTxs>3</NbOfTxs>", 1);
    assert!(broken_rule(rules::check_pain008(&bad)).contains("NbOfTxs"));
    // A control sum that does not add up.
    let bad = good.replacen("<CtrlSum>12.50</CtrlSum>", "<CtrlSum>12.51</CtrlSum>", 1);
    assert!(broken_rule(rules::check_pain008(&bad)).contains("CtrlSum"));
    // Three fraction digits.
    let bad = good.replace(">10.00<", ">10.000<");
    assert!(broken_rule(rules::check_pain008(&bad)).contains("InstdAmt"));
    // An end-to-end id longer than Max35Text.
    let bad = good.replace(
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9-and-more",
    );
    assert!(broken_rule(rules::check_pain008(&bad)).contains("1 to 35"));
    // The same end-to-end id twice.
    let bad = good.replace(
        "ffeeddccbbaa99887766554433221100",
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    );
    assert!(broken_rule(rules::check_pain008(&bad)).contains("EndToEndId"));
    // A required element missing, and one out of its place.
    let bad = good.replace("<ReqdColltnDt>2026-12-07</ReqdColltnDt>", "");
    assert!(broken_rule(rules::check_pain008(&bad)).contains("ReqdColltnDt"));
    let bad = good.replacen(
        "<PmtInfId>VC-DD-0001</PmtInfId><PmtMtd>DD</PmtMtd>",
        "<PmtMtd>DD</PmtMtd><PmtInfId>VC-DD-0001</PmtInfId>",
        1,
    );
    assert!(rules::check_pain008(&bad).is_err());
    // Another message's namespace, and a document type declaration.
    let bad = good.replace("pain.008.001.08", "pain.008.001.02");
    assert!(broken_rule(rules::check_pain008(&bad)).contains("namespace"));
    let bad = good.replacen(
        "<Document",
        "<!DOCTYPE Document [<!ENTITY x \"y\">]><Document",
        1,
    );
    assert!(rules::check_pain008(&bad).is_err());
    // An impossible date.
    let bad = good.replace("2026-12-07", "2026-13-07");
    assert!(broken_rule(rules::check_pain008(&bad)).contains("date"));
    // A statement whose closing balance does not follow from its entries.
    let stmt = statement().to_xml().expect("written");
    let bad = stmt.replace(">105.00</Amt>", ">105.01</Amt>");
    assert_ne!(bad, stmt);
    assert!(broken_rule(rules::check_camt053(&bad)).contains("closing balance"));
    // A pain.001 whose creditor IBAN has a letter where a digit belongs.
    let ct = transfers().to_xml().expect("written");
    let bad = ct.replace("FR1420041010050500013M02606", "FR14200410100505000I3M02606");
    assert!(rules::check_pain001(&bad).is_err());
    // Not XML at all.
    assert!(rules::check_camt053("<Document><unclosed></Document>").is_err());
    assert!(Statement::from_xml("garbage").is_err());
}

#[test]
fn a_writer_refuses_what_the_rules_refuse() {
    let mut file = debits();
    file.debits[0].end_to_end_id = "x".repeat(36);
    assert!(file.to_xml().is_err());
    let mut file = transfers();
    file.transfers.clear();
    assert!(file.to_xml().is_err(), "a file without transfers");
}
