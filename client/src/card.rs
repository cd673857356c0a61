//! Cards over the wire: the issuer as the card systems' payment agency
//! (`actors::CardAgency`), reached by a card system through the issuer's
//! gateway instead of in its process, so the issuer keeps serving.
//!
//! One operator route, `POST /admin/card/agency`, carries an
//! [`AgencyCall`] (each step of card-bridge's `Agency` and `SoftCash`
//! traits) signed by an operator key listed in `issuer.toml`: the card
//! system's load/unload server is run under the issuer's operator, and what
//! it asks moves the issuer's money (guarantees, loads owed, clearing).
//! Every step is idempotent at the agency (by `(LUS, card, NT)`, transfer
//! or period), so the client retries a step that got no answer.
//! [`RemoteAgency`] is the client side: it implements both traits over
//! [`IssuerClient`], so card-bridge's `Transfers`, `CardTerminal` and
//! `clear` run unchanged against a serving issuer.

use card_bridge::agency::{Agency, AgencyError};
use card_bridge::records::{CardTxRecord, LoadRequest, Settlement};
use card_bridge::transfer::{SoftCash, SoftCashError, TransferId};
use ledger::{Amount, CardId, Coin, LusId};
use protocol::wire::WireMessage;
use serde::{Deserialize, Serialize};

use crate::client::IssuerClient;

/// Largest agency call: a load's coins (at most `COINS_PER_TX_MAX`) with
/// its request.
pub const AGENCY_MESSAGE_BYTES_MAX: usize =
    protocol::wire::limits::COINS_BYTES_MAX + protocol::wire::limits::SMALL_MESSAGE_BYTES_MAX;
/// Largest agency answer: a clearing period's finished records (about
/// 100,000 of them) or a load's coins.
pub const AGENCY_ANSWER_BYTES_MAX: usize = 8 * 1024 * 1024;

/// One step a card system asks of the issuer as its agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgencyCall {
    Guarantee(LoadRequest),
    OpenGuarantees(CardId),
    LoadCommitted(CardTxRecord),
    LoadRejected(CardTxRecord),
    UnloadCommitted(CardTxRecord),
    UnloadRejected(CardTxRecord),
    FinishedRecords {
        lus: LusId,
        period: u32,
    },
    Settle(Settlement),
    ValueOf(Vec<Coin>),
    BuyCoinsWithUnload {
        transfer: TransferId,
        unload: CardTxRecord,
    },
    RedeemForLoad {
        transfer: TransferId,
        coins: Vec<Coin>,
        load: LoadRequest,
    },
}

impl WireMessage for AgencyCall {
    const NAME: &'static str = "AgencyCall";
    const BYTES_MAX: usize = AGENCY_MESSAGE_BYTES_MAX;
}

/// Why the agency refused a step, as card-bridge's errors say it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgencyRefusal {
    UnknownLoad,
    Conflict,
    Overflow,
    Refused(String),
    InvalidCoins(String),
    UnloadNotCommitted,
    AmountMismatch,
    Issuer(String),
}

/// The agency's answer to an [`AgencyCall`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgencyAnswer {
    Done,
    Guarantees(Vec<LoadRequest>),
    Records(Vec<CardTxRecord>),
    Value(Amount),
    Coins(Vec<Coin>),
    Refused(AgencyRefusal),
}

impl WireMessage for AgencyAnswer {
    const NAME: &'static str = "AgencyAnswer";
    const BYTES_MAX: usize = AGENCY_ANSWER_BYTES_MAX;
}

impl From<AgencyError> for AgencyRefusal {
    fn from(e: AgencyError) -> AgencyRefusal {
        match e {
            AgencyError::UnknownLoad => AgencyRefusal::UnknownLoad,
            AgencyError::Conflict => AgencyRefusal::Conflict,
            AgencyError::Overflow => AgencyRefusal::Overflow,
            AgencyError::Refused(why) => AgencyRefusal::Refused(why),
            other => AgencyRefusal::Issuer(other.to_string()),
        }
    }
}

impl From<SoftCashError> for AgencyRefusal {
    fn from(e: SoftCashError) -> AgencyRefusal {
        match e {
            SoftCashError::InvalidCoins(why) => AgencyRefusal::InvalidCoins(why),
            SoftCashError::UnloadNotCommitted => AgencyRefusal::UnloadNotCommitted,
            SoftCashError::AmountMismatch => AgencyRefusal::AmountMismatch,
            SoftCashError::Issuer(why) => AgencyRefusal::Issuer(why),
            other => AgencyRefusal::Issuer(other.to_string()),
        }
    }
}

/// Runs `call` against `agency` (the issuer's side of the route).
pub fn answer_agency_call<A: SoftCash<Coins = Vec<Coin>>>(
    agency: &A,
    call: AgencyCall,
) -> AgencyAnswer {
    let done = |r: Result<(), AgencyError>| match r {
        Ok(()) => AgencyAnswer::Done,
        Err(e) => AgencyAnswer::Refused(e.into()),
    };
    let refused = |e: AgencyRefusal| AgencyAnswer::Refused(e);
    match call {
        AgencyCall::Guarantee(req) => done(agency.guarantee(&req)),
        AgencyCall::OpenGuarantees(card) => agency
            .open_guarantees(&card)
            .map_or_else(|e| refused(e.into()), AgencyAnswer::Guarantees),
        AgencyCall::LoadCommitted(rec) => done(agency.load_committed(&rec)),
        AgencyCall::LoadRejected(rec) => done(agency.load_rejected(&rec)),
        AgencyCall::UnloadCommitted(rec) => done(agency.unload_committed(&rec)),
        AgencyCall::UnloadRejected(rec) => done(agency.unload_rejected(&rec)),
        AgencyCall::FinishedRecords { lus, period } => agency
            .finished_records(lus, period)
            .map_or_else(|e| refused(e.into()), AgencyAnswer::Records),
        AgencyCall::Settle(settlement) => done(agency.settle(&settlement)),
        AgencyCall::ValueOf(coins) => agency
            .value_of(&coins)
            .map_or_else(|e| refused(e.into()), AgencyAnswer::Value),
        AgencyCall::BuyCoinsWithUnload { transfer, unload } => agency
            .buy_coins_with_unload(transfer, &unload)
            .map_or_else(|e| refused(e.into()), AgencyAnswer::Coins),
        AgencyCall::RedeemForLoad {
            transfer,
            coins,
            load,
        } => match agency.redeem_for_load(transfer, &coins, &load) {
            Ok(()) => AgencyAnswer::Done,
            Err(e) => refused(e.into()),
        },
    }
}

/// The issuer's card agency as a card system reaches it over the gateway
/// (an [`IssuerClient`] with an operator key).
#[derive(Debug)]
pub struct RemoteAgency {
    client: IssuerClient,
}

impl RemoteAgency {
    pub fn new(client: IssuerClient) -> RemoteAgency {
        RemoteAgency { client }
    }

    fn call(&self, call: &AgencyCall) -> Result<AgencyAnswer, AgencyRefusal> {
        match self.client.card_agency(call) {
            Ok(AgencyAnswer::Refused(why)) => Err(why),
            Ok(answer) => Ok(answer),
            Err(e) => Err(AgencyRefusal::Issuer(e.to_string())),
        }
    }
}

fn agency_error(r: AgencyRefusal) -> AgencyError {
    match r {
        AgencyRefusal::UnknownLoad => AgencyError::UnknownLoad,
        AgencyRefusal::Conflict => AgencyError::Conflict,
        AgencyRefusal::Overflow => AgencyError::Overflow,
        AgencyRefusal::Refused(why)
        | AgencyRefusal::InvalidCoins(why)
        | AgencyRefusal::Issuer(why) => AgencyError::Refused(why),
        other => AgencyError::Refused(format!("{other:?}")),
    }
}

fn soft_cash_error(r: AgencyRefusal) -> SoftCashError {
    match r {
        AgencyRefusal::InvalidCoins(why) => SoftCashError::InvalidCoins(why),
        AgencyRefusal::UnloadNotCommitted => SoftCashError::UnloadNotCommitted,
        AgencyRefusal::AmountMismatch => SoftCashError::AmountMismatch,
        AgencyRefusal::Issuer(why) | AgencyRefusal::Refused(why) => SoftCashError::Issuer(why),
        other => SoftCashError::Issuer(format!("{other:?}")),
    }
}

fn unexpected(answer: AgencyAnswer) -> AgencyRefusal {
    AgencyRefusal::Issuer(format!("unexpected answer from the agency: {answer:?}"))
}

impl RemoteAgency {
    fn done(&self, call: AgencyCall) -> Result<(), AgencyError> {
        match self.call(&call).map_err(agency_error)? {
            AgencyAnswer::Done => Ok(()),
            other => Err(agency_error(unexpected(other))),
        }
    }
}

impl Agency for RemoteAgency {
    fn guarantee(&self, req: &LoadRequest) -> Result<(), AgencyError> {
        self.done(AgencyCall::Guarantee(req.clone()))
    }

    fn open_guarantees(&self, card: &CardId) -> Result<Vec<LoadRequest>, AgencyError> {
        match self
            .call(&AgencyCall::OpenGuarantees(*card))
            .map_err(agency_error)?
        {
            AgencyAnswer::Guarantees(g) => Ok(g),
            other => Err(agency_error(unexpected(other))),
        }
    }

    fn load_committed(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        self.done(AgencyCall::LoadCommitted(rec.clone()))
    }

    fn load_rejected(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        self.done(AgencyCall::LoadRejected(rec.clone()))
    }

    fn unload_committed(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        self.done(AgencyCall::UnloadCommitted(rec.clone()))
    }

    fn unload_rejected(&self, rec: &CardTxRecord) -> Result<(), AgencyError> {
        self.done(AgencyCall::UnloadRejected(rec.clone()))
    }

    fn finished_records(&self, lus: LusId, period: u32) -> Result<Vec<CardTxRecord>, AgencyError> {
        match self
            .call(&AgencyCall::FinishedRecords { lus, period })
            .map_err(agency_error)?
        {
            AgencyAnswer::Records(r) => Ok(r),
            other => Err(agency_error(unexpected(other))),
        }
    }

    fn settle(&self, settlement: &Settlement) -> Result<(), AgencyError> {
        self.done(AgencyCall::Settle(settlement.clone()))
    }
}

impl SoftCash for RemoteAgency {
    type Coins = Vec<Coin>;

    fn value_of(&self, coins: &Vec<Coin>) -> Result<Amount, SoftCashError> {
        match self
            .call(&AgencyCall::ValueOf(coins.clone()))
            .map_err(soft_cash_error)?
        {
            AgencyAnswer::Value(v) => Ok(v),
            other => Err(soft_cash_error(unexpected(other))),
        }
    }

    fn buy_coins_with_unload(
        &self,
        transfer: TransferId,
        unload: &CardTxRecord,
    ) -> Result<Vec<Coin>, SoftCashError> {
        let call = AgencyCall::BuyCoinsWithUnload {
            transfer,
            unload: unload.clone(),
        };
        match self.call(&call).map_err(soft_cash_error)? {
            AgencyAnswer::Coins(c) => Ok(c),
            other => Err(soft_cash_error(unexpected(other))),
        }
    }

    fn redeem_for_load(
        &self,
        transfer: TransferId,
        coins: &Vec<Coin>,
        load: &LoadRequest,
    ) -> Result<(), SoftCashError> {
        let call = AgencyCall::RedeemForLoad {
            transfer,
            coins: coins.clone(),
            load: load.clone(),
        };
        match self.call(&call).map_err(soft_cash_error)? {
            AgencyAnswer::Done => Ok(()),
            other => Err(soft_cash_error(unexpected(other))),
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::web;
    use card_bridge::records::LoadId;
    use card_bridge::wire::{Direction, Outcome};
    use ledger::ParticipantId;
    use protocol::crypto::{SecretKey, SuiteId};

    use super::*;
    use crate::api::IssuerDescriptor;
    use crate::body::message_response;
    use crate::client::ClientConfig;
    use crate::media::POSTCARD;
    use crate::operator::OperatorKey;
    use crate::server::{self, ServerConfig, get_resource, post_resource};

    /// A clearing period's finished records answered in one message far
    /// above the default answer size (but within `AgencyAnswer`'s limit)
    /// reach the card system: read at the default size, a busy period
    /// could never be cleared.
    #[test]
    fn a_busy_periods_finished_records_are_read_whole() {
        const N_RECORDS: u32 = 20_000;
        let issuer_key = SecretKey::generate_for(SuiteId::Dhaes, 0).expect("key");
        let descriptor = IssuerDescriptor {
            id_i: ParticipantId::new("issuer").expect("id"),
            public_key: issuer_key.public().to_ledger(),
            suite: SuiteId::Dhaes,
        };
        let records: Vec<CardTxRecord> = (0..N_RECORDS)
            .map(|nt| CardTxRecord {
                lus: LusId(1),
                load_id: LoadId([7; 16]),
                card: CardId::from_bytes([3; 8]),
                nt,
                direction: Direction::Load,
                amount: Amount::from_minor(1_000),
                outcome: Outcome::Committed,
                period: 0,
            })
            .collect();
        let answer = AgencyAnswer::Records(records);
        assert!(
            protocol::wire::encode(&answer).len() > crate::constants::RESPONSE_BODY_BYTES_MAX,
            "the answer must exceed the default answer size"
        );
        let server = server::start(
            &ServerConfig::new("127.0.0.1:0".parse().expect("addr")),
            "vc_test_agency",
            None,
            move |cfg| {
                let (descriptor, answer) = (descriptor.clone(), answer.clone());
                cfg.service(get_resource("/v1/issuer", move || {
                    let descriptor = descriptor.clone();
                    async move { message_response(&descriptor, POSTCARD) }
                }))
                .service(post_resource(
                    "/admin/card/agency",
                    move |_body: web::Bytes| {
                        let answer = answer.clone();
                        async move { message_response(&answer, POSTCARD) }
                    },
                ));
            },
        )
        .expect("server");
        let client = IssuerClient::new(&server.url(), ClientConfig::default())
            .expect("client")
            .with_operator(OperatorKey::generate().expect("operator key"));
        let agency = RemoteAgency::new(client);
        let got = agency.finished_records(LusId(1), 0).expect("records");
        assert_eq!(got.len(), N_RECORDS as usize);
    }
}
