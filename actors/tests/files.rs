//! The issuer's directory holds session key shares, identities and bank
//! accounts (sessions.redb, registry.redb): only its own user may enter it.

mod util;

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
