//! The issuer's directory holds session key shares, identities and bank
//! accounts (sessions.redb, registry.redb, card-agency.redb, all sealed
//! under registry.key): only its own user may enter it. That no issuer
//! file but the log names a card after card transfers and clearing is
//! checked in `card_agency.rs`
//! (`the_agency_file_in_the_issuers_directory_names_no_card`).

use crate::util;

use std::os::unix::fs::PermissionsExt;

use util::Harness;

#[test]
fn the_issuer_directory_is_private_to_its_user() {
    let mut h = Harness::new();
    let dir = h.dir.path().join("issuer");
    let mode = std::fs::metadata(&dir)
        .expect("issuer dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);

    // A directory loosened by hand is tightened again at the next start.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    h.restart();
    let mode = std::fs::metadata(&dir)
        .expect("issuer dir")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

/// Every file the issuer and its bank keep is 0600 on its own, not only
/// behind the directory: a copy or a backup of `sessions.redb` (key shares),
/// `registry.redb` (bank accounts), `card-agency.redb` or `bank.redb` must not come out
/// readable. A file loosened by hand is tightened again at the next start.
/// Checked to fail when the stores were opened with `redb::Database::create`
/// alone (0644 under the usual umask).
#[test]
fn every_file_the_issuer_and_its_bank_keep_is_0600_and_a_loosened_one_is_tightened() {
    let mut h = Harness::new();
    // The card agency makes its file when it first opens.
    drop(vc_actors::CardAgency::open(h.core()).expect("card agency opens"));
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    let issuer_dir = h.dir.path().join("issuer");
    let mut seen = Vec::new();
    for dir in [h.dir.path().to_path_buf(), issuer_dir.clone()] {
        for entry in std::fs::read_dir(&dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                assert_eq!(
                    mode(&path),
                    0o600,
                    "{} is {:o}",
                    path.display(),
                    mode(&path)
                );
                seen.push(
                    path.file_name()
                        .expect("name")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    for name in [
        "sessions.redb",
        "registry.redb",
        "bank.redb",
        "log.redb",
        "issuer.key",
        "card-agency.redb",
    ] {
        assert!(seen.iter().any(|s| s == name), "no {name} among {seen:?}");
    }

    for name in [
        "issuer/sessions.redb",
        "issuer/registry.redb",
        "issuer/card-agency.redb",
        "bank.redb",
    ] {
        let path = h.dir.path().join(name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    }
    h.restart();
    for name in [
        "issuer/sessions.redb",
        "issuer/registry.redb",
        "issuer/card-agency.redb",
        "bank.redb",
    ] {
        assert_eq!(
            mode(&h.dir.path().join(name)),
            0o600,
            "{name} not tightened"
        );
    }
}
