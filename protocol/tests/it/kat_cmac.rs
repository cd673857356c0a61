//! Known-answer tests of the suites' raw primitives against NIST:
//! CMAC-AES-256 and CMAC-TDES (three-key) from SP 800-38B Appendix D, and
//! CTR-AES-256 from SP 800-38A F.5.5. The TDES tags are those of NIST's
//! updated examples (the original 2005 text printed wrong tags for Mlen 64
//! and 160; the errata values are used here and by every other implementation).

use vc_protocol::crypto::SuiteId;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test vector hex")
}

/// The example message of SP 800-38B; each example takes a prefix of it.
const AES_MESSAGE: &str = "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710";

/// The AES-256 suites: `dhaes` and `aes256` share the block cipher.
const AES_SUITES: [SuiteId; 2] = [SuiteId::Dhaes, SuiteId::Aes256];

#[test]
fn cmac_aes256_matches_sp800_38b_d3() {
    let key = unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
    let message = unhex(AES_MESSAGE);
    for suite in AES_SUITES {
        for (len, tag) in [
            (0, "028962f61b7bf89efc6b551f4667d983"),
            (16, "28a7023f452e8f82bd4bf28d8c37c35c"),
            (40, "aaf3d8f1de5640c232f5b169b9c911e6"),
            (64, "e1992190549f6ed5696a2c056c315410"),
        ] {
            let got = suite.cmac(&key, &[&message[..len]]).expect("cmac");
            assert_eq!(hex::encode(got), tag, "{suite}: Mlen = {} bits", len * 8);
        }
    }
}

#[test]
fn cmac_tdes_three_key_matches_sp800_38b_d4() {
    let key = unhex("8aa83bf8cbda10620bc1bf19fbb6cd58bc313d4a371ca8b5");
    let message = unhex(AES_MESSAGE);
    for (len, tag) in [
        (0, "b7a688e122ffaf95"),
        (8, "8e8f293136283797"),
        (20, "743ddbe0ce2dc2ed"),
        (32, "33e6b1092400eae5"),
    ] {
        let got = SuiteId::Tdes.cmac(&key, &[&message[..len]]).expect("cmac");
        assert_eq!(hex::encode(got), tag, "Mlen = {} bits", len * 8);
    }
}

#[test]
fn cmac_over_parts_equals_cmac_over_their_concatenation() {
    let key = unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
    let message = unhex(AES_MESSAGE);
    let (a, b) = message[..40].split_at(13);
    assert_eq!(
        hex::encode(SuiteId::Aes256.cmac(&key, &[a, b]).expect("cmac")),
        "aaf3d8f1de5640c232f5b169b9c911e6"
    );
}

#[test]
fn ctr_aes256_matches_sp800_38a_f55() {
    let key = unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
    let counter = unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
    for suite in AES_SUITES {
        let mut buf = unhex(AES_MESSAGE);
        suite.ctr_apply(&key, &counter, &mut buf).expect("ctr");
        assert_eq!(
            hex::encode(&buf),
            "601ec313775789a5b7a7f504bbf3d228f443e3ca4d62b59aca84e990cacaf5c5\
             2b0930daa23de94ce87017ba2d84988ddfc9c58db67aada613c2dd08457941a6"
        );
        suite.ctr_apply(&key, &counter, &mut buf).expect("ctr");
        assert_eq!(hex::encode(&buf), AES_MESSAGE);
    }
}

#[test]
fn wrong_key_lengths_are_refused_not_padded() {
    for suite in SuiteId::ALL {
        let key = vec![0u8; suite.key_bytes() - 1];
        assert!(suite.cmac(&key, &[b"m"]).is_err());
    }
}
