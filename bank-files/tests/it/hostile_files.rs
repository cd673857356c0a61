//! Files from the bank (statements) and files handed back to the issuer
//! are input from outside: whatever text an element holds, reading the
//! file gives a typed error or a value, never a panic. Each test takes a
//! file this crate writes and puts hostile text (multi-byte characters
//! across the fixed offsets a date or time is read at, digits from other
//! scripts, huge numbers, empty text) into every element in turn.

use bank_files::camt053::{Entry, EntryKind, Statement};
use bank_files::pain001::{CreditTransferFile, Debtor, Transfer};
use bank_files::pain008::{Creditor, Debit, DirectDebitFile};
use bank_files::{BankFileError, Bic, Iban, rules};
use ledger::Amount;

fn iban(text: &str) -> Iban {
    Iban::parse(text).expect("a valid IBAN")
}

/// Opening 100.00, one collected purchase of 10.00, closing 110.00.
pub(crate) fn statement_xml() -> String {
    Statement {
        message_id: "BANK-STMT-0001".into(),
        created_at: "2026-12-08T06:00:00".into(),
        statement_id: "STMT-2026-12-08".into(),
        account: iban("DE89370400440532013000"),
        opening: Amount::from_minor(10_000),
        closing: Amount::from_minor(11_000),
        entries: vec![Entry {
            end_to_end_id: "0a1b2c3d4e5f60718293a4b5c6d7e8f9".into(),
            amount: Amount::from_minor(1000),
            kind: EntryKind::Collected,
            booked_on: "2026-12-07".into(),
        }],
    }
    .to_xml()
    .expect("written")
}

fn debits_xml() -> String {
    DirectDebitFile {
        message_id: "VC-DD-0001".into(),
        created_at: "2026-12-07T10:00:00".into(),
        collection_date: "2026-12-07".into(),
        creditor: Creditor {
            name: "VarietyCash Issuer".into(),
            iban: iban("DE89370400440532013000"),
            bic: Bic::parse("COBADEFFXXX").expect("bic"),
            scheme_id: "DE98ZZZ09999999999".into(),
        },
        debits: vec![Debit {
            end_to_end_id: "0a1b2c3d4e5f60718293a4b5c6d7e8f9".into(),
            amount: Amount::from_minor(1000),
            debtor_name: "Alice".into(),
            debtor_iban: iban("GB82WEST12345698765432"),
            mandate_id: "VC-MANDATE-alice".into(),
            mandate_signed_on: "2026-12-01".into(),
        }],
    }
    .to_xml()
    .expect("written")
}

fn transfers_xml() -> String {
    CreditTransferFile {
        message_id: "VC-CT-0001".into(),
        created_at: "2026-12-07T10:00:00".into(),
        execution_date: "2026-12-07".into(),
        debtor: Debtor {
            name: "VarietyCash Issuer".into(),
            iban: iban("DE89370400440532013000"),
            bic: Bic::parse("COBADEFFXXX").expect("bic"),
        },
        transfers: vec![Transfer {
            end_to_end_id: "00112233445566778899aabbccddeeff".into(),
            amount: Amount::from_minor(500),
            creditor_name: "The Bookshop".into(),
            creditor_iban: iban("FR1420041010050500013M02606"),
        }],
    }
    .to_xml()
    .expect("written")
}

/// Text an attacker may put in an element: a multi-byte character across
/// byte 10 (where a date-time's `T` is read) and across the time's
/// fields, digits of other scripts, a number past `u64::MAX`, nothing.
const HOSTILE_TEXTS: &[&str] = &[
    "2026-12-0\u{e9}T06:00:00",
    "2026-12-08\u{e9}06:00:00",
    "2026-12-08T0\u{e9}:00:00",
    "2026-12-08T06:00:0\u{e9}",
    "2026-12-\u{20ac}08T06:00:00",
    "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}",
    "\u{0662}\u{0660}\u{0662}\u{0666}-12-08T06:00:00",
    "2026-12-\u{0660}8",
    "99999999999999999999999999.99",
    "184467440737095516.16",
    "",
    "GB82WEST1234569876543\u{e9}",
    "COBADEFF\u{e9}",
];

/// Every element text of `xml`, as (start, end) byte ranges.
fn text_ranges(xml: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let bytes = xml.as_bytes();
    let mut i = 0;
    while let Some(gt) = xml[i..].find('>') {
        let start = i + gt + 1;
        let Some(lt) = xml[start..].find('<') else {
            break;
        };
        let end = start + lt;
        if end > start && bytes[start] != b'\n' {
            out.push((start, end));
        }
        i = end;
    }
    out
}

/// Runs `read` over every hostile variant of `xml`; a panic fails the test
/// with the variant that caused it.
fn no_variant_panics(
    xml: &str,
    read: impl Fn(&str) -> Result<(), BankFileError> + std::panic::RefUnwindSafe,
) {
    let ranges = text_ranges(xml);
    assert!(!ranges.is_empty());
    for (start, end) in ranges {
        for hostile in HOSTILE_TEXTS {
            let variant = format!("{}{}{}", &xml[..start], hostile, &xml[end..]);
            let outcome = std::panic::catch_unwind(|| read(&variant));
            assert!(
                outcome.is_ok(),
                "reading panicked with {hostile:?} in place of {:?}",
                &xml[start..end]
            );
        }
    }
}

#[test]
fn a_statement_with_hostile_text_in_any_element_is_refused_without_a_panic() {
    let xml = statement_xml();
    no_variant_panics(&xml, rules::check_camt053);
    no_variant_panics(&xml, |x| Statement::from_xml(x).map(|_| ()));
}

#[test]
fn issuer_files_with_hostile_text_in_any_element_are_refused_without_a_panic() {
    let debits = debits_xml();
    no_variant_panics(&debits, rules::check_pain008);
    no_variant_panics(&debits, |x| DirectDebitFile::from_xml(x).map(|_| ()));
    let transfers = transfers_xml();
    no_variant_panics(&transfers, rules::check_pain001);
    no_variant_panics(&transfers, |x| CreditTransferFile::from_xml(x).map(|_| ()));
}

#[test]
fn a_date_time_with_a_multi_byte_character_at_its_fixed_offsets_is_a_broken_rule() {
    let xml = statement_xml();
    for bad in &HOSTILE_TEXTS[..5] {
        let variant = xml.replacen("2026-12-08T06:00:00", bad, 1);
        assert_ne!(variant, xml);
        match rules::check_camt053(&variant) {
            Err(BankFileError::Rule { rule, .. }) => {
                assert!(rule.contains("date-time"), "{bad:?}: {rule}")
            }
            other => panic!("{bad:?}: expected the date-time rule, got {other:?}"),
        }
    }
}

// The rules allow any three-letter currency; the issuer's debits and
// payouts are in euros: a file of another currency is not read as euros.
#[test]
fn issuer_files_in_another_currency_are_refused() {
    let debits = debits_xml().replace("Ccy=\"EUR\"", "Ccy=\"USD\"");
    rules::check_pain008(&debits).expect("within the rules");
    assert!(matches!(
        DirectDebitFile::from_xml(&debits),
        Err(BankFileError::BadField { .. })
    ));
    let transfers = transfers_xml().replace("Ccy=\"EUR\"", "Ccy=\"USD\"");
    rules::check_pain001(&transfers).expect("within the rules");
    assert!(matches!(
        CreditTransferFile::from_xml(&transfers),
        Err(BankFileError::BadField { .. })
    ));
}
