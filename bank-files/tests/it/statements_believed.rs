//! What a statement makes the issuer (and the auditor, which reads the
//! same entries) believe: only entries the bank booked, in the issuer's
//! currency, never a reversal it cannot place, and the one opening and
//! closing balance the rules checked. Each test takes a statement this
//! crate writes and changes one thing a bank's file could say.

use bank_files::BankFileError;
use bank_files::camt053::{EntryKind, Statement};
use ledger::Amount;

use crate::hostile_files::statement_xml;

/// `xml` with the last occurrence of `from` replaced by `to`.
fn replace_last(xml: &str, from: &str, to: &str) -> String {
    let at = xml.rfind(from).expect("the text to replace");
    format!("{}{}{}", &xml[..at], to, &xml[at + from.len()..])
}

// A pending (or informational) entry is in no balance the rules check:
// read as collected, it would settle a purchase, and show the auditor
// money in, that the bank never booked.
#[test]
fn entries_not_booked_are_not_read() {
    let xml = statement_xml();
    assert_eq!(Statement::from_xml(&xml).expect("read").entries.len(), 1);
    for status in ["PDNG", "INFO"] {
        let pending = replace_last(&xml, "<Cd>BOOK</Cd>", &format!("<Cd>{status}</Cd>"));
        // Not booked: the closing balance is the opening one.
        let pending = replace_last(&pending, ">110.00<", ">100.00<");
        let statement = Statement::from_xml(&pending).expect("a valid statement");
        assert!(
            statement.entries.is_empty(),
            "a {status} entry was read as booked: {:?}",
            statement.entries
        );
    }
}

// The issuer's account and its purchases are in euros: 10.00 of another
// currency is not 10.00 euros collected.
#[test]
fn amounts_in_another_currency_are_refused() {
    let xml = statement_xml();
    let entry_in_usd = replace_last(&xml, "Ccy=\"EUR\"", "Ccy=\"USD\"");
    assert!(
        bank_files::rules::check_camt053(&entry_in_usd).is_ok(),
        "the schema's rules allow any currency"
    );
    assert!(matches!(
        Statement::from_xml(&entry_in_usd),
        Err(BankFileError::BadField { .. })
    ));
    let all_in_usd = xml.replace("Ccy=\"EUR\"", "Ccy=\"JPY\"");
    assert!(matches!(
        Statement::from_xml(&all_in_usd),
        Err(BankFileError::BadField { .. })
    ));
}

// A reversal (`RvslInd` true) undoes an earlier entry of the opposite
// direction: a credit that reverses a payout is not a collected purchase.
#[test]
fn a_reversal_entry_is_refused() {
    let xml = statement_xml();
    let reversal = replace_last(&xml, "</CdtDbtInd>", "</CdtDbtInd><RvslInd>true</RvslInd>");
    assert!(bank_files::rules::check_camt053(&reversal).is_ok());
    assert!(matches!(
        Statement::from_xml(&reversal),
        Err(BankFileError::BadField { .. })
    ));
    // `false` says it is an ordinary entry.
    let ordinary = replace_last(&xml, "</CdtDbtInd>", "</CdtDbtInd><RvslInd>false</RvslInd>");
    assert_eq!(
        Statement::from_xml(&ordinary).expect("read").entries.len(),
        1
    );
}

// The balances read are the ones the rules added up: a second closing
// (or opening) balance is refused, not one of them picked.
#[test]
fn a_balance_given_twice_is_refused() {
    let xml = statement_xml();
    let closing = xml
        .find("<Bal><Tp><CdOrPrtry><Cd>CLBD")
        .expect("a closing balance");
    let forged = "<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">999999.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-12-08</Dt></Dt></Bal>";
    let twice = format!("{}{}{}", &xml[..closing], forged, &xml[closing..]);
    assert!(matches!(
        bank_files::rules::check_camt053(&twice),
        Err(BankFileError::Rule { .. })
    ));
    assert!(Statement::from_xml(&twice).is_err());
    let opening = xml
        .find("<Bal><Tp><CdOrPrtry><Cd>OPBD")
        .expect("an opening balance");
    let forged = forged.replace("CLBD", "PRCD");
    let twice = format!("{}{}{}", &xml[..opening], forged, &xml[opening..]);
    assert!(matches!(
        bank_files::rules::check_camt053(&twice),
        Err(BankFileError::Rule { .. })
    ));
}

// The rules let an entry name no transaction (the bank's fee): such an
// entry is none of the issuer's, and reading the statement goes on; were
// it refused, one fee line would leave every collected debit unbooked.
#[test]
fn an_entry_that_names_no_transaction_is_passed_over() {
    let xml = statement_xml();
    let fee = "<Ntry><Amt Ccy=\"EUR\">1.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><Dt>2026-12-07</Dt></BookgDt><BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>CCRD</Cd><SubFmlyCd>CHRG</SubFmlyCd></Fmly></Domn></BkTxCd></Ntry></Stmt>";
    let with_fee = replace_last(&xml, "</Stmt>", fee);
    let with_fee = replace_last(&with_fee, ">110.00<", ">109.00<");
    bank_files::rules::check_camt053(&with_fee).expect("within the rules");
    let statement = Statement::from_xml(&with_fee).expect("read");
    assert_eq!(statement.entries.len(), 1);
    assert_eq!(statement.entries[0].kind, EntryKind::Collected);
}

// An amount naming its currency twice is no amount: the rules and the
// reader could each take another of the two.
#[test]
fn a_currency_given_twice_is_refused() {
    let xml = statement_xml();
    for twice in ["Ccy=\"USD\" Ccy=\"EUR\"", "Ccy=\"EUR\" Ccy=\"USD\""] {
        let forged = replace_last(&xml, "Ccy=\"EUR\"", twice);
        assert!(Statement::from_xml(&forged).is_err(), "{twice} read");
    }
}

// Text split by a comment or a CDATA section, or padded with white space,
// is read whole and trimmed by the rules; the reader takes the same text
// (a padded `BOOK` left the booked entry, which the balances count, out).
#[test]
fn text_split_or_padded_reads_as_the_rules_read_it() {
    let xml = statement_xml();
    for split in [
        ">1<!-- x -->0.00<",
        ">1<![CDATA[0]]>.00<",
        "><![CDATA[10.00]]><",
        ">10<?pi x?>.00<",
        "> 10.00\n<",
    ] {
        let variant = replace_last(&xml, ">10.00<", split);
        bank_files::rules::check_camt053(&variant).expect("within the rules");
        let statement = Statement::from_xml(&variant).expect("read");
        assert_eq!(
            statement.entries[0].amount,
            Amount::from_minor(1000),
            "{split}"
        );
    }
    // Likewise a status and an end-to-end id padded with white space
    // (which the rules trim): booked, and the purchase's id, for both.
    let padded = replace_last(&xml, "<Cd>BOOK</Cd>", "<Cd>\n  BOOK </Cd>");
    let padded = padded.replace(
        ">0a1b2c3d4e5f60718293a4b5c6d7e8f9<",
        ">\n 0a1b2c3d4e5f60718293a4b5c6d7e8f9 <",
    );
    bank_files::rules::check_camt053(&padded).expect("within the rules");
    let statement = Statement::from_xml(&padded).expect("read");
    assert_eq!(statement.entries.len(), 1, "a booked entry left out");
    assert_eq!(
        statement.entries[0].end_to_end_id,
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
    );
}

// The rules look at an entry's first transaction details; a second one
// the reader could take instead is refused.
#[test]
fn an_entry_with_two_transaction_details_is_refused() {
    let xml = statement_xml();
    let second = "<TxDtls><Refs><EndToEndId>ffffffffffffffffffffffffffffffff</EndToEndId></Refs></TxDtls></NtryDtls>";
    let twice = replace_last(&xml, "</NtryDtls>", second);
    assert_eq!(twice.matches("<TxDtls>").count(), 2, "{twice}");
    let read = Statement::from_xml(&twice);
    assert!(read.is_err(), "read as {read:?}");
}
