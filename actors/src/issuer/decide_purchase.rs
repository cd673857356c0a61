//! The pure decisions of a coin purchase: WRequest3 (refuse it, or the
//! `PurchaseRequested` to log) and the settlement (the bank's answer turned
//! into the batch to log). Everything they read is read before (the
//! purchaser's enrollment, the bank's debit status, the purchase as the
//! log knows it) and everything that needs randomness or keys is made
//! before (the sealed identity and account, the fresh coin bodies); the
//! caller logs what they return. No clock, lock or I/O here.
//!
//! Refusals ([`PurchaseRefusal`]) are answers signed to the purchaser
//! (`reject_purchase`), never technical failures: those stay `IssuerError`.

use ledger::{
    Amount, BankAccount, CoinBody, CoinId, Event, IssueCause, PurchaseId, SealedBankAccount,
    SealedIdentity, TxId,
};
use protocol::flows::issuer::PurchaseOrder;
use protocol::wire::RejectReason;

use crate::bank::DebitStatus;
use crate::issuer::core::PurchaseToSettle;

/// A domain refusal of a WRequest3, signed to the purchaser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PurchaseRefusal {
    pub(crate) reason: RejectReason,
}

/// What WRequest3's decision reads besides the order.
#[derive(Debug, Clone)]
pub(crate) struct OrderView<'a> {
    /// The account enrolled for the purchaser as coin purchaser, if it is
    /// enrolled.
    pub(crate) enrolled_account: Option<&'a BankAccount>,
    /// The purchaser's identity, sealed for the log.
    pub(crate) purchaser: SealedIdentity,
    /// The order's account, sealed for the log.
    pub(crate) bank_account: SealedBankAccount,
}

/// WRequest3: the event that logs the purchase, or why it is refused. The
/// signature on W-DESC proves who asks, not that the account is theirs:
/// only the account enrolled for the purchaser is debited; and the amount
/// debited must be what the coins are worth.
pub(crate) fn decide_order(
    view: OrderView<'_>,
    order: &PurchaseOrder,
) -> Result<Event, PurchaseRefusal> {
    let refuse = |reason| Err(PurchaseRefusal { reason });
    match view.enrolled_account {
        None => return refuse(RejectReason::NotEnrolled),
        Some(enrolled) if *enrolled != order.w_desc.bank_account => {
            return refuse(RejectReason::AccountNotEnrolled);
        }
        Some(_) => {}
    }
    if order.w_desc.spec.total().ok() != Some(order.w_desc.amount) {
        return refuse(RejectReason::AmountMismatch);
    }
    Ok(Event::PurchaseRequested {
        purchase: order.purchase,
        purchaser: view.purchaser,
        bank_account: view.bank_account,
        spec: order.w_desc.spec.clone(),
        amount: order.w_desc.amount,
        anonymous: order.w_desc.anonymous,
        authorization: order.authorization.to_ledger(),
    })
}

/// What settling a pending purchase reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SettlementView<'a> {
    pub(crate) purchase: PurchaseId,
    pub(crate) amount: Amount,
    pub(crate) to_settle: &'a PurchaseToSettle,
    /// What the bank says of the debit.
    pub(crate) debit: &'a DebitStatus,
}

/// A pending purchase's settlement, once the bank decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settlement {
    pub(crate) tx: TxId,
    pub(crate) events: Vec<Event>,
    /// The coins the batch issues.
    pub(crate) issued: Vec<CoinBody>,
    /// The issued coins to record against the purchaser (for a refund):
    /// none for an anonymous purchase.
    pub(crate) holder_coins: Vec<CoinId>,
}

/// The batch that settles or rejects a purchase, or `None` while the bank
/// has not decided. `fresh` holds bodies of the purchase's spec, minted by
/// the caller when the debit settled (W2: coins exist only with a settled
/// debit, in the same batch as the settlement); it is ignored otherwise.
pub(crate) fn decide_settlement(
    view: SettlementView<'_>,
    fresh: Vec<CoinBody>,
) -> Option<Settlement> {
    let purchase = view.purchase;
    match view.debit {
        DebitStatus::Pending => None,
        DebitStatus::Rejected(reason) => Some(Settlement {
            tx: purchase_tx("vc/tx/purchase-rejected", purchase),
            events: vec![Event::PurchaseRejected {
                purchase,
                reason: *reason,
            }],
            issued: Vec::new(),
            holder_coins: Vec::new(),
        }),
        DebitStatus::Settled => {
            let anonymous = view.to_settle.anonymous;
            let holder = (!anonymous).then(|| view.to_settle.purchaser.clone());
            let holder_coins = if anonymous {
                Vec::new()
            } else {
                fresh.iter().map(|c| c.id).collect()
            };
            Some(Settlement {
                tx: purchase_tx("vc/tx/purchase-settled", purchase),
                events: vec![
                    Event::PurchaseSettled {
                        purchase,
                        amount: view.amount,
                    },
                    Event::CoinsIssued {
                        coins: fresh.clone(),
                        holder,
                        cause: IssueCause::Purchase(purchase),
                    },
                ],
                issued: fresh,
                holder_coins,
            })
        }
    }
}

/// The transaction of one step (`label`) of `purchase`: a retry of the step
/// is the same transaction.
pub(crate) fn purchase_tx(label: &str, purchase: PurchaseId) -> TxId {
    TxId::derive(label, &[purchase.as_bytes()])
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use ledger::{BankRejection, CoinSpec, Denomination, Flows, KeyEpoch, Timestamp};
    use protocol::crypto::Signature;
    use protocol::wire::purchase::WDesc;

    use super::*;

    fn account(name: &str) -> BankAccount {
        BankAccount::new(name.to_owned()).expect("account")
    }

    fn order(spec_minor: u64, amount_minor: u64, bank_account: BankAccount) -> PurchaseOrder {
        PurchaseOrder {
            purchase: PurchaseId::random(),
            id_cp: ledger::ParticipantId::new("alice").expect("id"),
            w_desc: WDesc {
                spec: CoinSpec::new(vec![Denomination {
                    count: 2,
                    value: Amount::from_minor(spec_minor),
                }])
                .expect("spec"),
                amount: Amount::from_minor(amount_minor),
                bank_account,
                anonymous: false,
            },
            authorization: Signature::from_bytes(vec![7; 64]).expect("signature"),
        }
    }

    fn view(enrolled: Option<&BankAccount>) -> OrderView<'_> {
        OrderView {
            enrolled_account: enrolled,
            purchaser: SealedIdentity::from_sealed_bytes(vec![1; 32]).expect("sealed"),
            bank_account: SealedBankAccount::from_sealed_bytes(vec![2; 32]).expect("sealed"),
        }
    }

    fn body(minor: u64) -> CoinBody {
        CoinBody {
            id: CoinId::random(),
            value: Amount::from_minor(minor),
            expiry: Timestamp(10_000),
            epoch: KeyEpoch(1),
        }
    }

    // Given a purchaser not enrolled, or an order debiting another account
    // than its enrolled one, or an amount other than the spec's total, the
    // order is refused with that reason; otherwise it is logged as asked.
    #[test]
    fn an_order_is_logged_only_for_the_enrolled_account_and_the_spec_total() {
        let enrolled = account("acct-alice");
        let good = order(100, 200, enrolled.clone());
        let refusal = |reason| Err(PurchaseRefusal { reason });
        assert_eq!(
            decide_order(view(None), &good),
            refusal(RejectReason::NotEnrolled)
        );
        assert_eq!(
            decide_order(
                view(Some(&enrolled)),
                &order(100, 200, account("acct-mallory"))
            ),
            refusal(RejectReason::AccountNotEnrolled)
        );
        assert_eq!(
            decide_order(view(Some(&enrolled)), &order(100, 300, enrolled.clone())),
            refusal(RejectReason::AmountMismatch)
        );
        match decide_order(view(Some(&enrolled)), &good) {
            Ok(Event::PurchaseRequested {
                purchase,
                amount,
                anonymous,
                ..
            }) => {
                assert_eq!(purchase, good.purchase);
                assert_eq!(amount, Amount::from_minor(200));
                assert!(!anonymous);
            }
            other => panic!("not logged: {other:?}"),
        }
    }

    fn to_settle(anonymous: bool) -> PurchaseToSettle {
        PurchaseToSettle {
            spec: CoinSpec::new(vec![Denomination {
                count: 2,
                value: Amount::from_minor(100),
            }])
            .expect("spec"),
            anonymous,
            purchaser: SealedIdentity::from_sealed_bytes(vec![1; 32]).expect("sealed"),
        }
    }

    // Given the bank's answer: pending decides nothing; a rejection logs
    // the rejection and issues nothing; a settlement issues the fresh
    // coins in the same balanced batch, recorded against the purchaser
    // unless the purchase is anonymous.
    #[test]
    fn a_settlement_issues_coins_only_with_the_settled_debit() {
        let purchase = PurchaseId::random();
        let amount = Amount::from_minor(200);
        let fresh = vec![body(100), body(100)];
        for anonymous in [false, true] {
            let to_settle = to_settle(anonymous);
            let view = |debit| SettlementView {
                purchase,
                amount,
                to_settle: &to_settle,
                debit,
            };
            assert_eq!(
                decide_settlement(view(&DebitStatus::Pending), fresh.clone()),
                None
            );
            let rejected = decide_settlement(
                view(&DebitStatus::Rejected(BankRejection::InsufficientFunds)),
                fresh.clone(),
            )
            .expect("decided");
            assert!(rejected.issued.is_empty());
            assert_eq!(rejected.events.len(), 1);
            let settled =
                decide_settlement(view(&DebitStatus::Settled), fresh.clone()).expect("decided");
            assert_eq!(settled.issued, fresh);
            assert_ne!(settled.tx, rejected.tx);
            Flows::of(&settled.events)
                .check_balanced()
                .expect("a settlement balances");
            assert_eq!(settled.holder_coins.is_empty(), anonymous);
        }
    }
}
