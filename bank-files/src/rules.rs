//! What the ISO 20022 schemas (and the SEPA rulebooks' usage of them)
//! demand of the three messages, checked on the XML itself with
//! `quick-xml`'s event reader: a second reading, independent of the serde
//! types that wrote or will read the file.
//!
//! The XSDs (`pain.008.001.08.xsd`, `pain.001.001.09.xsd`,
//! `camt.053.001.08.xsd`) are not in this repository, so these checks do
//! not validate against them; they encode the rules of the elements this
//! system writes and reads: the root and its namespace; the order and
//! multiplicity of each element's children; `Max35Text` ids (1 to 35
//! characters of the SEPA character set) and unique end-to-end ids; names
//! of 1 to 140 characters; IBANs by mod-97 and BICs by shape; amounts of
//! at most two fraction digits, above zero, in a three-letter currency;
//! ISO dates and date-times; the code lists used (payment method, sequence
//! type, local instrument, credit/debit, entry status, balance type); and
//! the sums: `NbOfTxs` and `CtrlSum` equal to the transactions, a
//! statement's closing balance equal to its opening balance plus its
//! booked credits less its booked debits.

use std::collections::HashSet;

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::amount;
use crate::error::BankFileError;
use crate::iban::{Bic, Iban};
use crate::{
    FILE_BYTES_MAX, MAX35_TEXT_CHARS_MAX, MAX140_TEXT_CHARS_MAX, TRANSACTIONS_PER_FILE_MAX,
};

/// Deepest nesting read.
const DEPTH_MAX: usize = 32;
/// Most elements read from one file.
const ELEMENTS_MAX: usize = 64 * TRANSACTIONS_PER_FILE_MAX;

/// One element: name, attributes, text, children.
#[derive(Debug, Default)]
struct Node {
    name: String,
    attributes: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

impl Node {
    fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The element at `path` below this one (`"Id/IBAN"`).
    fn at(&self, path: &str) -> Option<&Node> {
        path.split('/')
            .try_fold(self, |node, name| node.child(name))
    }
}

struct Checker {
    message: &'static str,
}

impl Checker {
    fn fail(&self, rule: impl Into<String>) -> BankFileError {
        BankFileError::Rule {
            message: self.message,
            rule: rule.into(),
        }
    }

    fn parse(&self, xml: &str) -> Result<Node, BankFileError> {
        if xml.len() > FILE_BYTES_MAX {
            return Err(BankFileError::TooLarge(FILE_BYTES_MAX));
        }
        let mut reader = Reader::from_str(xml);
        reader.config_mut().trim_text(true);
        let mut stack: Vec<Node> = vec![Node::default()];
        let mut n_elements = 0usize;
        let xml_error = |e: &dyn std::fmt::Display| BankFileError::Xml(e.to_string());
        loop {
            match reader.read_event().map_err(|e| xml_error(&e))? {
                Event::Start(e) => {
                    let node = self.element(&e, &mut n_elements, stack.len())?;
                    stack.push(node);
                }
                Event::Empty(e) => {
                    let node = self.element(&e, &mut n_elements, stack.len())?;
                    push_child(&mut stack, node)?;
                }
                Event::End(_) => {
                    let node = stack.pop().ok_or_else(|| self.fail("unbalanced"))?;
                    push_child(&mut stack, node)?;
                }
                Event::Text(t) => {
                    let text = t.decode().map_err(|e| xml_error(&e))?;
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&text);
                    }
                }
                Event::CData(t) => {
                    let text = t.decode().map_err(|e| xml_error(&e))?;
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(&text);
                    }
                }
                Event::GeneralRef(r) => {
                    let name = r.decode().map_err(|e| xml_error(&e))?;
                    let resolved = quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| self.fail(format!("unknown entity &{name};")))?;
                    if let Some(top) = stack.last_mut() {
                        top.text.push_str(resolved);
                    }
                }
                Event::DocType(_) => return Err(self.fail("no document type declarations")),
                Event::Eof => break,
                Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            }
        }
        let mut top = stack.pop().ok_or_else(|| self.fail("unbalanced"))?;
        if !stack.is_empty() || top.children.len() != 1 {
            return Err(self.fail("exactly one root element"));
        }
        top.children
            .pop()
            .ok_or_else(|| self.fail("no root element"))
    }

    fn element(
        &self,
        e: &quick_xml::events::BytesStart<'_>,
        n_elements: &mut usize,
        depth: usize,
    ) -> Result<Node, BankFileError> {
        let xml_error = |e: &dyn std::fmt::Display| BankFileError::Xml(e.to_string());
        if depth > DEPTH_MAX {
            return Err(self.fail("nested too deep"));
        }
        *n_elements += 1;
        if *n_elements > ELEMENTS_MAX {
            return Err(self.fail("too many elements"));
        }
        let name = std::str::from_utf8(e.name().as_ref())
            .map_err(|e| xml_error(&e))?
            .to_owned();
        let mut node = Node {
            name,
            ..Node::default()
        };
        for a in e.attributes() {
            let a = a.map_err(|e| xml_error(&e))?;
            let key = std::str::from_utf8(a.key.as_ref())
                .map_err(|e| xml_error(&e))?
                .to_owned();
            let value = a.unescape_value().map_err(|e| xml_error(&e))?.into_owned();
            node.attributes.push((key, value));
        }
        Ok(node)
    }

    /// `node`'s children are exactly `order`'s names, in that order, each
    /// `(name, min, max)` times.
    fn sequence(&self, node: &Node, order: &[(&str, usize, usize)]) -> Result<(), BankFileError> {
        let mut i = 0;
        for &(name, min, max) in order {
            let mut n = 0;
            while node.children.get(i).is_some_and(|c| c.name == name) {
                n += 1;
                i += 1;
            }
            if n < min || n > max {
                return Err(self.fail(format!(
                    "{}: {name} {n} times, expected {min} to {max}",
                    node.name
                )));
            }
        }
        if let Some(extra) = node.children.get(i) {
            return Err(self.fail(format!(
                "{}: {} is not expected there",
                node.name, extra.name
            )));
        }
        Ok(())
    }

    fn need<'a>(&self, node: &'a Node, path: &str) -> Result<&'a Node, BankFileError> {
        node.at(path)
            .ok_or_else(|| self.fail(format!("{}: {path} is missing", node.name)))
    }

    fn max35(&self, node: &Node, path: &str) -> Result<String, BankFileError> {
        let text = &self.need(node, path)?.text;
        let n = text.chars().count();
        if n == 0 || n > MAX35_TEXT_CHARS_MAX {
            return Err(self.fail(format!("{path}: 1 to 35 characters")));
        }
        // The SEPA character set (EPC guidance on the Latin subset).
        if !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/-?:().,'+ ".contains(c))
            || text.starts_with('/')
            || text.contains("//")
        {
            return Err(self.fail(format!("{path}: outside the SEPA character set")));
        }
        Ok(text.clone())
    }

    fn name(&self, node: &Node, path: &str) -> Result<(), BankFileError> {
        let n = self.need(node, path)?.text.chars().count();
        if n == 0 || n > MAX140_TEXT_CHARS_MAX {
            return Err(self.fail(format!("{path}: 1 to 140 characters")));
        }
        Ok(())
    }

    fn iban(&self, node: &Node, path: &str) -> Result<(), BankFileError> {
        Iban::parse(&self.need(node, path)?.text)
            .map(|_| ())
            .map_err(|e| self.fail(format!("{path}: {e}")))
    }

    fn bic(&self, node: &Node, path: &str) -> Result<(), BankFileError> {
        Bic::parse(&self.need(node, path)?.text)
            .map(|_| ())
            .map_err(|e| self.fail(format!("{path}: {e}")))
    }

    /// An amount element: `Ccy`, above zero, at most two fraction digits.
    fn amount(&self, node: &Node, path: &str) -> Result<ledger::Amount, BankFileError> {
        let element = self.need(node, path)?;
        let ccy = element.attribute("Ccy").unwrap_or("");
        if ccy.len() != 3 || !ccy.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(self.fail(format!("{path}: Ccy is a three-letter currency code")));
        }
        let value =
            amount::from_text(&element.text).map_err(|e| self.fail(format!("{path}: {e}")))?;
        if value == ledger::Amount::ZERO {
            return Err(self.fail(format!("{path}: at least 0.01")));
        }
        Ok(value)
    }

    fn code(&self, node: &Node, path: &str, allowed: &[&str]) -> Result<(), BankFileError> {
        let text = &self.need(node, path)?.text;
        if allowed.contains(&text.as_str()) {
            Ok(())
        } else {
            Err(self.fail(format!("{path}: one of {allowed:?}")))
        }
    }

    fn date(&self, node: &Node, path: &str) -> Result<(), BankFileError> {
        if is_date(&self.need(node, path)?.text) {
            Ok(())
        } else {
            Err(self.fail(format!("{path}: an ISO date YYYY-MM-DD")))
        }
    }

    fn date_time(&self, node: &Node, path: &str) -> Result<(), BankFileError> {
        let text = &self.need(node, path)?.text;
        // `get` rather than indexing: a multi-byte character across the
        // fixed offsets is a broken rule, not a panic.
        let ok = text.get(..10).is_some_and(is_date)
            && text.as_bytes().get(10) == Some(&b'T')
            && text.get(11..19).is_some_and(is_time);
        if ok {
            Ok(())
        } else {
            Err(self.fail(format!("{path}: an ISO date-time YYYY-MM-DDThh:mm:ss")))
        }
    }

    fn root(&self, xml: &str, namespace: &str) -> Result<Node, BankFileError> {
        let root = self.parse(xml)?;
        if root.name != "Document" {
            return Err(self.fail("the root element is Document"));
        }
        if root.attribute("xmlns") != Some(namespace) {
            return Err(self.fail(format!("the namespace is {namespace}")));
        }
        Ok(root)
    }

    /// `NbOfTxs` and `CtrlSum` of `node` against `amounts`.
    fn totals(&self, node: &Node, amounts: &[ledger::Amount]) -> Result<(), BankFileError> {
        let n = &self.need(node, "NbOfTxs")?.text;
        if n.parse::<usize>().ok() != Some(amounts.len()) {
            return Err(self.fail(format!(
                "{}: NbOfTxs is the number of transactions",
                node.name
            )));
        }
        if let Some(sum) = node.child("CtrlSum") {
            let mut total = ledger::Amount::ZERO;
            for a in amounts {
                total = total
                    .checked_add(*a)
                    .map_err(|_| self.fail("the control sum overflows"))?;
            }
            if amount::from_text(&sum.text).ok() != Some(total) {
                return Err(self.fail(format!("{}: CtrlSum is the sum of the amounts", node.name)));
            }
        }
        Ok(())
    }

    fn unique(&self, ids: &[String]) -> Result<(), BankFileError> {
        let mut seen = HashSet::new();
        if ids.iter().all(|id| seen.insert(id)) {
            Ok(())
        } else {
            Err(self.fail("every EndToEndId is different"))
        }
    }

    fn group_header(&self, header: &Node) -> Result<(), BankFileError> {
        self.sequence(
            header,
            &[
                ("MsgId", 1, 1),
                ("CreDtTm", 1, 1),
                ("NbOfTxs", 1, 1),
                ("CtrlSum", 0, 1),
                ("InitgPty", 1, 1),
            ],
        )?;
        self.max35(header, "MsgId")?;
        self.date_time(header, "CreDtTm")?;
        self.name(header, "InitgPty/Nm")
    }
}

fn push_child(stack: &mut [Node], node: Node) -> Result<(), BankFileError> {
    match stack.last_mut() {
        Some(parent) => {
            parent.children.push(node);
            Ok(())
        }
        None => Err(BankFileError::Xml(
            "an element closes outside the root".into(),
        )),
    }
}

fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && [0, 1, 2, 3, 5, 6, 8, 9]
            .iter()
            .all(|&i| b[i].is_ascii_digit())
        && (1..=12).contains(&text[5..7].parse::<u8>().unwrap_or(0))
        && (1..=31).contains(&text[8..10].parse::<u8>().unwrap_or(0))
}

fn is_time(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 8
        && b[2] == b':'
        && b[5] == b':'
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit())
        && text[..2].parse::<u8>().unwrap_or(99) < 24
        && text[3..5].parse::<u8>().unwrap_or(99) < 60
        && text[6..8].parse::<u8>().unwrap_or(99) < 61
}

fn account(c: &Checker, node: &Node, path: &str) -> Result<(), BankFileError> {
    c.iban(node, &format!("{path}/Id/IBAN"))
}

/// The rules of a pain.008.001.08 direct debit initiation.
pub fn check_pain008(xml: &str) -> Result<(), BankFileError> {
    let c = Checker {
        message: "pain.008.001.08",
    };
    let root = c.root(xml, crate::pain008::NAMESPACE)?;
    c.sequence(&root, &[("CstmrDrctDbtInitn", 1, 1)])?;
    let initiation = c.need(&root, "CstmrDrctDbtInitn")?;
    c.sequence(initiation, &[("GrpHdr", 1, 1), ("PmtInf", 1, 1)])?;
    let header = c.need(initiation, "GrpHdr")?;
    c.group_header(header)?;
    let p = c.need(initiation, "PmtInf")?;
    c.sequence(
        p,
        &[
            ("PmtInfId", 1, 1),
            ("PmtMtd", 1, 1),
            ("NbOfTxs", 0, 1),
            ("CtrlSum", 0, 1),
            ("PmtTpInf", 0, 1),
            ("ReqdColltnDt", 1, 1),
            ("Cdtr", 1, 1),
            ("CdtrAcct", 1, 1),
            ("CdtrAgt", 1, 1),
            ("CdtrSchmeId", 0, 1),
            ("DrctDbtTxInf", 1, TRANSACTIONS_PER_FILE_MAX),
        ],
    )?;
    c.max35(p, "PmtInfId")?;
    c.code(p, "PmtMtd", &["DD"])?;
    c.code(p, "PmtTpInf/SvcLvl/Cd", &["SEPA"])?;
    c.code(p, "PmtTpInf/LclInstrm/Cd", &["CORE", "B2B"])?;
    c.code(p, "PmtTpInf/SeqTp", &["FRST", "RCUR", "OOFF", "FNAL"])?;
    c.date(p, "ReqdColltnDt")?;
    c.name(p, "Cdtr/Nm")?;
    account(&c, p, "CdtrAcct")?;
    c.bic(p, "CdtrAgt/FinInstnId/BICFI")?;
    let mut amounts = Vec::new();
    let mut ids = Vec::new();
    for tx in p.all("DrctDbtTxInf") {
        c.sequence(
            tx,
            &[
                ("PmtId", 1, 1),
                ("InstdAmt", 1, 1),
                ("DrctDbtTx", 1, 1),
                ("DbtrAgt", 1, 1),
                ("Dbtr", 1, 1),
                ("DbtrAcct", 1, 1),
            ],
        )?;
        ids.push(c.max35(tx, "PmtId/EndToEndId")?);
        amounts.push(c.amount(tx, "InstdAmt")?);
        c.max35(tx, "DrctDbtTx/MndtRltdInf/MndtId")?;
        c.date(tx, "DrctDbtTx/MndtRltdInf/DtOfSgntr")?;
        c.name(tx, "Dbtr/Nm")?;
        account(&c, tx, "DbtrAcct")?;
    }
    c.unique(&ids)?;
    c.totals(header, &amounts)?;
    c.totals(p, &amounts)
}

/// The rules of a pain.001.001.09 credit transfer initiation.
pub fn check_pain001(xml: &str) -> Result<(), BankFileError> {
    let c = Checker {
        message: "pain.001.001.09",
    };
    let root = c.root(xml, crate::pain001::NAMESPACE)?;
    c.sequence(&root, &[("CstmrCdtTrfInitn", 1, 1)])?;
    let initiation = c.need(&root, "CstmrCdtTrfInitn")?;
    c.sequence(initiation, &[("GrpHdr", 1, 1), ("PmtInf", 1, 1)])?;
    let header = c.need(initiation, "GrpHdr")?;
    c.group_header(header)?;
    let p = c.need(initiation, "PmtInf")?;
    c.sequence(
        p,
        &[
            ("PmtInfId", 1, 1),
            ("PmtMtd", 1, 1),
            ("NbOfTxs", 0, 1),
            ("CtrlSum", 0, 1),
            ("ReqdExctnDt", 1, 1),
            ("Dbtr", 1, 1),
            ("DbtrAcct", 1, 1),
            ("DbtrAgt", 1, 1),
            ("CdtTrfTxInf", 1, TRANSACTIONS_PER_FILE_MAX),
        ],
    )?;
    c.max35(p, "PmtInfId")?;
    c.code(p, "PmtMtd", &["TRF"])?;
    c.date(p, "ReqdExctnDt/Dt")?;
    c.name(p, "Dbtr/Nm")?;
    account(&c, p, "DbtrAcct")?;
    c.bic(p, "DbtrAgt/FinInstnId/BICFI")?;
    let mut amounts = Vec::new();
    let mut ids = Vec::new();
    for tx in p.all("CdtTrfTxInf") {
        c.sequence(
            tx,
            &[
                ("PmtId", 1, 1),
                ("Amt", 1, 1),
                ("Cdtr", 1, 1),
                ("CdtrAcct", 1, 1),
            ],
        )?;
        ids.push(c.max35(tx, "PmtId/EndToEndId")?);
        amounts.push(c.amount(tx, "Amt/InstdAmt")?);
        c.name(tx, "Cdtr/Nm")?;
        account(&c, tx, "CdtrAcct")?;
    }
    c.unique(&ids)?;
    c.totals(header, &amounts)?;
    c.totals(p, &amounts)
}

/// The rules of a camt.053.001.08 statement, balances included.
pub fn check_camt053(xml: &str) -> Result<(), BankFileError> {
    let c = Checker {
        message: "camt.053.001.08",
    };
    let root = c.root(xml, crate::camt053::NAMESPACE)?;
    c.sequence(&root, &[("BkToCstmrStmt", 1, 1)])?;
    let b = c.need(&root, "BkToCstmrStmt")?;
    c.sequence(b, &[("GrpHdr", 1, 1), ("Stmt", 1, 1)])?;
    let header = c.need(b, "GrpHdr")?;
    c.sequence(header, &[("MsgId", 1, 1), ("CreDtTm", 1, 1)])?;
    c.max35(header, "MsgId")?;
    c.date_time(header, "CreDtTm")?;
    let s = c.need(b, "Stmt")?;
    c.sequence(
        s,
        &[
            ("Id", 1, 1),
            ("CreDtTm", 1, 1),
            ("Acct", 1, 1),
            ("Bal", 1, 8),
            ("Ntry", 0, TRANSACTIONS_PER_FILE_MAX),
        ],
    )?;
    c.max35(s, "Id")?;
    c.date_time(s, "CreDtTm")?;
    account(&c, s, "Acct")?;
    let mut opening = None;
    let mut closing = None;
    for bal in s.all("Bal") {
        c.sequence(
            bal,
            &[
                ("Tp", 1, 1),
                ("Amt", 1, 1),
                ("CdtDbtInd", 1, 1),
                ("Dt", 1, 1),
            ],
        )?;
        c.code(
            bal,
            "Tp/CdOrPrtry/Cd",
            &["OPBD", "CLBD", "ITBD", "CLAV", "PRCD"],
        )?;
        c.code(bal, "CdtDbtInd", &["CRDT", "DBIT"])?;
        c.date(bal, "Dt/Dt")?;
        let element = c.need(bal, "Amt")?;
        let value =
            amount::from_text(&element.text).map_err(|e| c.fail(format!("Bal/Amt: {e}")))?;
        let signed = i128::from(value.minor_units())
            * if c.need(bal, "CdtDbtInd")?.text == "DBIT" {
                -1
            } else {
                1
            };
        // One of each: a second would be a balance the sum below never
        // checked, for a reader that takes the other one.
        let slot = match c.need(bal, "Tp/CdOrPrtry/Cd")?.text.as_str() {
            "OPBD" | "PRCD" => &mut opening,
            "CLBD" => &mut closing,
            _ => continue,
        };
        if slot.replace(signed).is_some() {
            return Err(c.fail("one opening (OPBD or PRCD) and one closing (CLBD) balance"));
        }
    }
    let (Some(opening), Some(closing)) = (opening, closing) else {
        return Err(c.fail("an opening (OPBD) and a closing (CLBD) balance"));
    };
    let mut booked = 0i128;
    for entry in s.all("Ntry") {
        c.sequence(
            entry,
            &[
                ("Amt", 1, 1),
                ("CdtDbtInd", 1, 1),
                ("RvslInd", 0, 1),
                ("Sts", 1, 1),
                ("BookgDt", 1, 1),
                ("BkTxCd", 1, 1),
                ("NtryDtls", 0, 1),
            ],
        )?;
        let value = c.amount(entry, "Amt")?;
        c.code(entry, "CdtDbtInd", &["CRDT", "DBIT"])?;
        c.code(entry, "Sts/Cd", &["BOOK", "PDNG", "INFO"])?;
        c.date(entry, "BookgDt/Dt")?;
        c.code(entry, "BkTxCd/Domn/Cd", &["PMNT"])?;
        if let Some(details) = entry.at("NtryDtls/TxDtls") {
            c.max35(details, "Refs/EndToEndId")?;
            if details.child("RtrInf").is_some() {
                let code = &c.need(details, "RtrInf/Rsn/Cd")?.text;
                if code.len() != 4 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(c.fail("RtrInf/Rsn/Cd: a four-character reason code"));
                }
            }
        }
        if c.need(entry, "Sts/Cd")?.text == "BOOK" {
            let sign = if c.need(entry, "CdtDbtInd")?.text == "DBIT" {
                -1
            } else {
                1
            };
            booked += sign * i128::from(value.minor_units());
        }
    }
    if opening + booked != closing {
        return Err(c.fail(
            "the closing balance is the opening balance plus booked credits less booked debits",
        ));
    }
    Ok(())
}
