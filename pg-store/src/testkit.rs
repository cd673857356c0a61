//! Scratch databases for tests (cargo feature `testkit`): each test gets
//! a database of its own on the server `VC_TEST_POSTGRES_URL` names (a
//! superuser's URL; `./test.sh` starts a cluster with
//! `scripts/pg-cluster.sh` and sets it), dropped when the test ends.
//!
//! Without the variable a test is skipped with a notice on stderr, except
//! under `CI=true`, where a missing database fails the test: CI must not
//! pass by testing nothing.

use postgres::{Client, NoTls};

/// The variable holding the superuser URL of the test server.
pub const TEST_URL_VAR: &str = "VC_TEST_POSTGRES_URL";

/// A database (and a read-only login) that exist while this lives.
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    reader: String,
    reader_password: String,
}

/// The superuser URL of the test server; `None` (with a notice) when it is
/// not configured outside CI.
///
/// # Panics
/// Under `CI=true` when the variable is missing.
pub fn admin_url(test: &str) -> Option<String> {
    match std::env::var(TEST_URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{TEST_URL_VAR} is not set in CI: .ci/run and ./test.sh start a cluster"
            );
            eprintln!(
                "skipped {test}: {TEST_URL_VAR} is not set (scripts/pg-cluster.sh start, \
                 then export it from the cluster's cluster.env)"
            );
            None
        }
    }
}

/// `url` with its database name replaced by `dbname`, and the user and
/// password by `user_password` if given.
pub fn with_database(url: &str, dbname: &str, user_password: Option<(&str, &str)>) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let (authority, _db) = rest.split_once('/').unwrap_or((rest, ""));
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let userinfo = match user_password {
        Some((user, password)) => format!("{user}:{password}@"),
        None => authority
            .rsplit_once('@')
            .map_or(String::new(), |(u, _)| format!("{u}@")),
    };
    let mut out = format!("{scheme}://{userinfo}{hosts}/{dbname}");
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut bytes).expect("the OS random source");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[allow(clippy::expect_used)]
impl ScratchDatabase {
    /// A fresh database on the test server, or `None` (skipped) when none
    /// is configured outside CI.
    pub fn create(test: &str) -> Option<ScratchDatabase> {
        let admin_url = admin_url(test)?;
        let suffix = random_hex();
        let name = format!("vc_test_{suffix}");
        let reader = format!("vc_test_reader_{suffix}");
        let reader_password = random_hex();
        let mut admin = Client::connect(&admin_url, NoTls).expect("connecting to the test server");
        // One statement per call: CREATE DATABASE refuses a transaction block.
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("creating a scratch database");
        admin
            .batch_execute(&format!(
                "DO $$ BEGIN
                     IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'vc_log_reader') THEN
                         CREATE ROLE vc_log_reader NOLOGIN;
                     END IF;
                 END $$;
                 CREATE ROLE {reader} LOGIN PASSWORD '{reader_password}' IN ROLE vc_log_reader;"
            ))
            .expect("creating a scratch reader");
        Some(ScratchDatabase {
            admin_url,
            name,
            reader,
            reader_password,
        })
    }

    /// The superuser's URL of this database (the writer's, in tests).
    pub fn url(&self) -> String {
        with_database(&self.admin_url, &self.name, None)
    }

    /// The URL of a login in `vc_log_reader`: it may read the log, no more.
    pub fn reader_url(&self) -> String {
        with_database(
            &self.admin_url,
            &self.name,
            Some((&self.reader, &self.reader_password)),
        )
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let dropped = Client::connect(&self.admin_url, NoTls).and_then(|mut admin| {
            admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))?;
            admin.batch_execute(&format!("DROP ROLE IF EXISTS {}", self.reader))
        });
        if let Err(e) = dropped {
            eprintln!("dropping scratch database {}: {e}", self.name);
        }
    }
}
