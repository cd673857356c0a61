//! Hostile bytes: every card message and a card memory image decode to a
//! typed error or a value, never a panic; what decodes re-encodes to the
//! same bytes; a decoded MAC of any claimed length verifies as false.

use ledger::CardId;
use proptest::prelude::*;
use vc_card_bridge::card::{Eeprom, SmartCard};
use vc_card_bridge::crypto::{CardKey, Mac, MacInput, Suite};
use vc_card_bridge::wire::{
    self, CardProof, L1, L2, L3, PurchaseProof, PurchaseRequest, RejectProof,
};

fn round_trips<T>(bytes: &[u8])
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    if let Ok(msg) = wire::decode::<T>(bytes) {
        assert_eq!(
            wire::encode(&msg),
            bytes,
            "decoded message re-encodes differently"
        );
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic_a_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut versioned = bytes.clone();
        versioned.insert(0, wire::WIRE_VERSION);
        for b in [&bytes, &versioned] {
            round_trips::<L1>(b);
            round_trips::<L2>(b);
            round_trips::<L3>(b);
            round_trips::<RejectProof>(b);
            round_trips::<CardProof>(b);
            round_trips::<PurchaseRequest>(b);
            round_trips::<PurchaseProof>(b);
        }
    }

    #[test]
    fn a_mac_of_any_claimed_length_does_not_verify(len in any::<u8>(), body in any::<[u8; 16]>()) {
        let mut encoded = vec![wire::WIRE_VERSION, len];
        encoded.extend_from_slice(&body);
        if let Ok(mac) = wire::decode::<Mac>(&encoded) {
            let key = CardKey::from_bytes(Suite::Tdes, &[3; 16]).expect("16 bytes");
            let input = MacInput::new("vc/test");
            prop_assert!(input.verify(&key, &mac).is_err() || mac == input.sign(&key));
        }
    }

    #[test]
    fn a_scribbled_card_image_powers_up_or_refuses(offset in 0usize..SmartCard::IMAGE_BYTES, junk in proptest::collection::vec(any::<u8>(), 1..64)) {
        let masters = vc_card_bridge::crypto::MasterKeys::random(Suite::Tdes);
        let card = SmartCard::issue(&masters, CardId::from_bytes([1; 8]), ledger::Timestamp(10), ledger::Amount::from_minor(100))
            .expect("issue");
        let mut image = card.eeprom().image().to_vec();
        let end = (offset + junk.len()).min(image.len());
        image[offset..end].copy_from_slice(&junk[..end - offset]);
        let eeprom = Eeprom::from_image(image, SmartCard::IMAGE_BYTES).expect("size");
        let _ = SmartCard::from_eeprom(eeprom);
    }
}
