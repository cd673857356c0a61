//! Property tests: every decoder of this module takes arbitrary bytes (as
//! from the network or a file) without panicking, and the symmetric
//! primitives round-trip arbitrary bodies under arbitrary labels.

use proptest::prelude::*;

use super::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn envelope_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
        if let Ok(env) = Envelope::from_bytes(&bytes) {
            // Whatever decodes must still refuse to open under a key that did not seal it.
            prop_assert!(test_keys::rsa_2048().open("vc/test/any", &env).is_err());
        }
    }

    #[test]
    fn public_key_and_signature_decoding_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let _ = PublicKey::from_spki_der(&bytes);
        let _ = postcard::from_bytes::<PublicKey>(&bytes);
        if let Ok(sig) = postcard::from_bytes::<Signature>(&bytes) {
            let public = test_keys::rsa_2048().public();
            prop_assert!(public.verify("vc/test/any", b"m", &sig).is_err());
        }
    }

    #[test]
    fn session_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let key = SessionKey::combine(SuiteId::Tdes, &KeyShare::random(), &KeyShare::random());
        if let Ok(ct) = postcard::from_bytes::<Ciphertext>(&bytes) {
            let _ = key.decrypt("vc/test/any", &ct);
        }
        if let Ok(tag) = postcard::from_bytes::<MacTag>(&bytes) {
            prop_assert!(key.verify_mac("vc/test/any", &bytes, &tag).is_err());
        }
        let _ = postcard::from_bytes::<KeyShare>(&bytes);
        let _ = postcard::from_bytes::<Nonce>(&bytes);
        let _ = postcard::from_bytes::<SuiteId>(&bytes);
    }

    #[test]
    fn session_encryption_and_mac_round_trip(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        label in "[a-z/0-9]{0,24}",
        aes in any::<bool>(),
    ) {
        let suite = if aes { SuiteId::Aes256 } else { SuiteId::Tdes };
        let a = KeyShare::random();
        let b = KeyShare::random();
        let sender = SessionKey::combine(suite, &a, &b);
        let receiver = SessionKey::combine(suite, &b, &a);
        let ct = sender.encrypt(&label, &body);
        let tag = sender.mac(&label, &ct.mac_input());
        prop_assert!(receiver.verify_mac(&label, &ct.mac_input(), &tag).is_ok());
        prop_assert_eq!(receiver.decrypt(&label, &ct).expect("decrypts"), body);
    }
}
