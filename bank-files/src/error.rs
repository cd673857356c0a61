//! Why a bank file or one of its fields was refused.

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BankFileError {
    #[error("not an IBAN: {0}")]
    BadIban(&'static str),
    #[error("not a BIC: {0}")]
    BadBic(&'static str),
    #[error("not an amount: {0}")]
    BadAmount(&'static str),
    #[error("{field}: {reason}")]
    BadField {
        field: &'static str,
        reason: &'static str,
    },
    #[error("the file breaks a rule of {message}: {rule}")]
    Rule { message: &'static str, rule: String },
    #[error("XML: {0}")]
    Xml(String),
    #[error("the file is larger than {0} bytes")]
    TooLarge(usize),
}
