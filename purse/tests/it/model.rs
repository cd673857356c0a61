//! The store against a reference model: random sequences of purchases,
//! payments (with change first where needed), completions, refusals naming
//! random inputs, and reopenings. After every operation each coin's state
//! and the balance equal the model's, so no sequence loses or double-counts
//! a coin.

use crate::util;

use std::collections::BTreeMap;

use ledger::{Amount, CoinId};
use proptest::prelude::*;
use util::{NOW, coin, new_purse, new_tx, passphrase, purse_path};
use vc_purse::{BadKind, CoinState, Completion, Purse, Refusal, Selection, TxKind, TxRef};

#[derive(Debug, Clone)]
enum Op {
    Fund(Vec<u64>),
    Pay(u64),
    /// Finish the open transaction at this index (mod the number open).
    Complete(usize),
    /// Refuse it, naming the inputs whose bit is set as already spent.
    Refuse(usize, u32),
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        proptest::collection::vec(1u64..500, 1..5).prop_map(Op::Fund),
        (1u64..1500).prop_map(Op::Pay),
        (0usize..8).prop_map(Op::Complete),
        (0usize..8, any::<u32>()).prop_map(|(i, m)| Op::Refuse(i, m)),
        Just(Op::Reopen),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Model {
    Available,
    Pending(TxRef),
    Spent(TxRef),
    Bad,
}

struct Open {
    tx: TxRef,
    inputs: Vec<(CoinId, u64)>,
    want: Vec<u64>,
}

fn check(purse: &Purse, model: &BTreeMap<CoinId, (u64, Model)>) {
    let stored = purse.coins().expect("coins");
    assert_eq!(stored.len(), model.len(), "coin count");
    for c in &stored {
        let (value, state) = &model[&c.coin.id()];
        assert_eq!(c.coin.value().minor_units(), *value);
        let same = match (&c.state, state) {
            (CoinState::Available, Model::Available) => true,
            (CoinState::Pending(a), Model::Pending(b)) | (CoinState::Spent(a), Model::Spent(b)) => {
                a == b
            }
            (CoinState::Bad(_), Model::Bad) => true,
            _ => false,
        };
        assert!(same, "{:?} vs model {state:?}", c.state);
    }
    let sum = |want: fn(&Model) -> bool| -> u64 {
        model
            .values()
            .filter(|(_, s)| want(s))
            .map(|(v, _)| v)
            .sum()
    };
    let balance = purse.balance().expect("balance");
    assert_eq!(
        balance.available.minor_units(),
        sum(|s| *s == Model::Available)
    );
    assert_eq!(
        balance.pending.minor_units(),
        sum(|s| matches!(s, Model::Pending(_)))
    );
    assert_eq!(balance.bad.minor_units(), sum(|s| *s == Model::Bad));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_the_model(ops in proptest::collection::vec(op(), 1..24)) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut purse = new_purse(dir.path());
        let mut model: BTreeMap<CoinId, (u64, Model)> = BTreeMap::new();
        let mut open: Vec<Open> = Vec::new();
        for op in ops {
            match op {
                Op::Fund(values) => {
                    for c in util::fund(&purse, &values) {
                        model.insert(c.id(), (c.value().minor_units(), Model::Available));
                    }
                }
                Op::Pay(amount) => {
                    let (kind, coins, want) = match purse.select(Amount::from_minor(amount), NOW).expect("select") {
                        Selection::Exact(coins) => (TxKind::Pay, coins, vec![]),
                        Selection::NeedsChange { give, want } => {
                            (TxKind::Change, give, want.values().map(Amount::minor_units).collect())
                        }
                        Selection::Insufficient { .. } => continue,
                    };
                    let value = coins.iter().map(|c| c.value().minor_units()).sum();
                    let tx = purse.begin(new_tx(kind, Amount::from_minor(value), &coins)).expect("begin");
                    for c in &coins {
                        model.get_mut(&c.id()).expect("known").1 = Model::Pending(tx);
                    }
                    let inputs = coins.iter().map(|c| (c.id(), c.value().minor_units())).collect();
                    open.push(Open { tx, inputs, want });
                }
                Op::Complete(i) if !open.is_empty() => {
                    let t = open.remove(i % open.len());
                    let received: Vec<_> = t.want.iter().map(|&v| coin(v)).collect();
                    let spent = t.inputs.iter().map(|(id, _)| *id).collect();
                    purse.complete(t.tx, Completion { spent, received: received.clone(), ..Completion::default() }).expect("complete");
                    for (id, _) in &t.inputs {
                        model.get_mut(id).expect("known").1 = Model::Spent(t.tx);
                    }
                    for c in received {
                        model.insert(c.id(), (c.value().minor_units(), Model::Available));
                    }
                }
                Op::Refuse(i, mask) if !open.is_empty() => {
                    let t = open.remove(i % open.len());
                    let bad: Vec<_> = t.inputs.iter().enumerate()
                        .filter(|(n, _)| mask & (1 << (n % 32)) != 0)
                        .map(|(_, (id, _))| (*id, BadKind::AlreadySpent))
                        .collect();
                    purse.refuse(t.tx, Refusal { bad: bad.clone(), statement: b"S_I".to_vec() }).expect("refuse");
                    for (id, _) in &t.inputs {
                        let now_bad = bad.iter().any(|(b, _)| b == id);
                        model.get_mut(id).expect("known").1 = if now_bad { Model::Bad } else { Model::Available };
                    }
                }
                Op::Reopen => {
                    drop(purse);
                    purse = Purse::open(purse_path(dir.path()), &passphrase()).expect("reopen");
                    let journal: Vec<TxRef> = purse.in_flight().expect("journal").iter().map(|e| e.tx).collect();
                    let mut expected: Vec<TxRef> = open.iter().map(|t| t.tx).collect();
                    let mut got = journal.clone();
                    got.sort();
                    expected.sort();
                    prop_assert_eq!(got, expected);
                }
                Op::Complete(_) | Op::Refuse(..) => {}
            }
            check(&purse, &model);
        }
    }
}
