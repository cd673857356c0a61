//! Connection strings: parsed by the client, checked to stay on this
//! machine, and described without their password.
//!
//! This build speaks to PostgreSQL without TLS, so it connects only over a
//! Unix socket or a loopback address: a database on another machine would
//! see the issuer's password and log in the clear. Every host of a
//! multi-host string (the fail-over form: `host1:port1,host2:port2` with
//! `target_session_attrs=read-write`) is checked.

use ledger::StoreError;
use postgres::Config;
use postgres::config::Host;

/// Parses `url` (`postgres://user:password@host:port/db?...` or the
/// key=value form) and refuses a host that is not this machine.
pub fn parse(url: &str) -> Result<Config, StoreError> {
    let config: Config = url.parse().map_err(|e: postgres::Error| {
        StoreError::Backend(format!(
            "postgres: the connection string does not parse: {e}"
        ))
    })?;
    if config.get_hosts().is_empty() {
        return Err(StoreError::Backend(
            "postgres: the connection string names no host".to_string(),
        ));
    }
    for host in config.get_hosts() {
        if let Host::Tcp(name) = host
            && !is_loopback(name)
        {
            return Err(StoreError::Backend(format!(
                "postgres: host {name} is not a loopback address or a Unix socket, \
                 and this build connects without TLS"
            )));
        }
    }
    Ok(config)
}

fn is_loopback(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// `user@host:port,.../dbname`: enough to say which database, never the
/// password.
pub fn describe(config: &Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    format!(
        "{}@{}/{}",
        config.get_user().unwrap_or("?"),
        hosts.join(","),
        config.get_dbname().unwrap_or("?")
    )
}

/// `url` as it may be shown: the password replaced by `***` (a string
/// that does not parse is shown as `postgres://…`).
pub fn redacted(url: &str) -> String {
    match parse(url) {
        Ok(config) => format!("postgres://{}", describe(&config)),
        Err(_) => "postgres://…".to_string(),
    }
}

/// Whether `text` names a PostgreSQL database rather than a file.
pub fn is_postgres_url(text: &str) -> bool {
    text.starts_with("postgres://") || text.starts_with("postgresql://")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_and_sockets_are_accepted_others_refused() {
        for ok in [
            "postgres://u:p@127.0.0.1:5432/db",
            "postgres://u:p@localhost/db",
            "postgres://u:p@127.0.0.1:1,127.0.0.1:2/db?target_session_attrs=read-write",
            "host=/tmp user=u dbname=db",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for refused in [
            "postgres://u:p@db.example.com/db",
            "postgres://u:p@127.0.0.1:1,10.0.0.2:2/db",
            "postgres://u:p@192.168.1.1/db",
        ] {
            let err = parse(refused).expect_err(refused);
            assert!(err.to_string().contains("without TLS"), "{err}");
        }
    }

    #[test]
    fn descriptions_never_hold_the_password() {
        let url = "postgres://auditor:s3cret-pw@127.0.0.1:55432,127.0.0.1:55433/varietycash";
        let shown = redacted(url);
        assert!(!shown.contains("s3cret-pw"), "{shown}");
        assert!(shown.contains("auditor@127.0.0.1:55432,127.0.0.1:55433/varietycash"));
        let err = parse("postgres://u:s3cret-pw@example.com/db").expect_err("remote");
        assert!(!err.to_string().contains("s3cret-pw"));
    }
}
