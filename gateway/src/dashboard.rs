//! The issuer's dashboard, for its operators' browsers.
//!
//! | route | what |
//! |---|---|
//! | `GET /dashboard/login?grant=HEX` | a signed [`DashboardGrant`]: a session cookie, then `/dashboard` |
//! | `GET /dashboard` | the dashboard (the session only) |
//!
//! A browser cannot sign, so the operator's command line does, once:
//! `varietycash issuer dashboard-link` signs a [`DashboardGrant`] as an
//! [`crate::operator::OperatorRequest`] for the route `/dashboard/login`
//! with an operator key of `issuer.toml`, and prints a link carrying it.
//! The gateway checks it exactly as every operator request
//! ([`crate::operator::OperatorAuth::authorize`]: listed key, this issuer, this route,
//! signed within the window, signature, nonce never seen, remembered
//! durably), so the link works once and only for
//! `OPERATOR_REQUEST_WINDOW_SECS`; it is exchanged for a random session
//! cookie (HttpOnly, SameSite=Strict, Path=/dashboard, Secure over TLS)
//! that lasts [`DASHBOARD_SESSION_SECS`]. The dashboard only reads.
//!
//! Figures: the issuer's running totals, the log read from its start
//! by this module (coins issued and spent per key epoch, purchases
//! waiting for the bank, payments, the last checkpoint record; a bounded
//! number of records per page view, so a long log is caught up over a few
//! views), the published signed head, and the server's answers per second
//! (`crate::metrics::Timeline`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use actors::IssuerCore;
use ledger::{Amount, Event, EventStore, PurchaseId, Seq, SpendCause};
use protocol::wire::WireMessage;
use serde::{Deserialize, Serialize};
use web_pages::dashboard::{DashboardView, EpochRow};

use crate::server::{ServerState, get_resource};
use crate::web_session::{WebSecret, cookie, page_response, query_param, see_other_with_cookie};

/// How long a dashboard session lasts.
pub const DASHBOARD_SESSION_SECS: u64 = 900;
/// Sessions open at once, at most (the oldest gives way).
const SESSIONS_MAX: usize = 16;
/// Log records read per page view, at most.
const RECORDS_PER_VIEW_MAX: usize = 200_000;
/// Records per read of the log.
const RECORDS_PER_READ: usize = 4_096;
/// Seconds per point of the charts, and points shown.
const SAMPLE_SECS: u64 = 5;
const SAMPLES: u64 = 60;
/// The route a dashboard grant is signed for.
pub const DASHBOARD_LOGIN_ROUTE: &str = "/dashboard/login";
const COOKIE: &str = "vc_dashboard_session";
const SITE: &str = "VarietyCash issuer";

/// What `issuer dashboard-link` signs: "open a dashboard session". It
/// carries nothing; the signature, route, time and nonce around it are the
/// grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardGrant {}

impl WireMessage for DashboardGrant {
    const NAME: &'static str = "DashboardGrant";
    const BYTES_MAX: usize = 16;
}

/// The log, folded for the dashboard.
#[derive(Debug, Default)]
struct Fold {
    next_seq: u64,
    /// Per epoch: minor units and coins issued, minor units and coins spent.
    epochs: BTreeMap<u32, [u64; 4]>,
    pending: HashMap<PurchaseId, u64>,
    settled: u64,
    payments: u64,
    last_checkpoint: Option<u64>,
}

impl Fold {
    fn apply(&mut self, seq: u64, event: &Event) {
        match event {
            Event::CoinsIssued { coins, .. } => {
                for c in coins {
                    let e = self.epochs.entry(c.epoch.0).or_default();
                    e[0] = e[0].saturating_add(c.value.minor_units());
                    e[1] += 1;
                }
            }
            Event::CoinsSpent { coins, cause } => {
                for c in coins {
                    let e = self.epochs.entry(c.epoch.0).or_default();
                    e[2] = e[2].saturating_add(c.value.minor_units());
                    e[3] += 1;
                }
                if matches!(cause, SpendCause::Payment(_)) {
                    self.payments += 1;
                }
            }
            Event::PurchaseRequested {
                purchase, amount, ..
            } => {
                self.pending.insert(*purchase, amount.minor_units());
            }
            Event::PurchaseSettled { purchase, .. } if self.pending.remove(purchase).is_some() => {
                self.settled += 1;
            }
            Event::PurchaseRejected { purchase, .. } => {
                self.pending.remove(purchase);
            }
            Event::Checkpoint(_) => self.last_checkpoint = Some(seq),
            _ => {}
        }
    }
}

/// The dashboard's own state: the issuer, the fold, the sessions.
pub struct DashboardState {
    core: Arc<IssuerCore>,
    fold: Mutex<Fold>,
    sessions: Mutex<Vec<(WebSecret, Instant)>>,
}

impl DashboardState {
    pub fn new(core: Arc<IssuerCore>) -> DashboardState {
        DashboardState {
            core,
            fold: Mutex::new(Fold {
                next_seq: 1,
                ..Fold::default()
            }),
            sessions: Mutex::new(Vec::new()),
        }
    }

    fn session_left(&self, req: &HttpRequest) -> Option<Duration> {
        let presented = cookie(req, COOKIE)?;
        let mut sessions = lock(&self.sessions);
        let lifetime = Duration::from_secs(DASHBOARD_SESSION_SECS);
        sessions.retain(|(_, at)| at.elapsed() < lifetime);
        sessions
            .iter()
            .find(|(s, _)| s.matches(presented))
            .map(|(_, at)| lifetime.saturating_sub(at.elapsed()))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Adds the dashboard's routes.
pub fn routes(cfg: &mut web::ServiceConfig, state: web::Data<DashboardState>) {
    cfg.app_data(state)
        .service(get_resource(DASHBOARD_LOGIN_ROUTE, login))
        .service(get_resource("/dashboard", dashboard));
}

fn refused(text: &str) -> HttpResponse {
    page_response(
        StatusCode::FORBIDDEN,
        web_pages::message_page(SITE, "Not signed in", text, None),
    )
}

async fn login(
    req: HttpRequest,
    state: web::Data<DashboardState>,
    server: web::Data<ServerState>,
) -> HttpResponse {
    let Some(bytes) = query_param(&req, "grant").and_then(|g| hex::decode(g).ok()) else {
        return refused(
            "Open the dashboard with the link `varietycash issuer dashboard-link` prints.",
        );
    };
    let operators = server.operators.clone();
    let authorized = web::block(move || {
        operators.authorize(&bytes, DASHBOARD_LOGIN_ROUTE, crate::operator::now_micros())
    })
    .await;
    let authorized = match authorized {
        Ok(Ok(authorized)) => authorized,
        Ok(Err(e)) => {
            tracing::warn!(route = DASHBOARD_LOGIN_ROUTE, refusal = %e, "dashboard grant refused");
            return refused(&format!(
                "This link does not open the dashboard: {e}. Make a new one."
            ));
        }
        Err(e) => return refused(&e.to_string()),
    };
    if protocol::wire::decode::<DashboardGrant>(&authorized.body).is_err() {
        return refused("This link does not carry a dashboard grant.");
    }
    tracing::info!(
        route = DASHBOARD_LOGIN_ROUTE,
        operator_key = %authorized.key.short(),
        operator = %authorized.key_name,
        "dashboard session opened"
    );
    let Ok(session) = WebSecret::random() else {
        return refused("no randomness");
    };
    let secure = if req.connection_info().scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    let value = format!(
        "{COOKIE}={}; Path=/dashboard; HttpOnly; SameSite=Strict; Max-Age={DASHBOARD_SESSION_SECS}{secure}",
        session.expose()
    );
    {
        let mut sessions = lock(&state.sessions);
        if sessions.len() >= SESSIONS_MAX {
            sessions.remove(0);
        }
        sessions.push((session, Instant::now()));
    }
    see_other_with_cookie("/dashboard", value)
}

fn money(minor: i128) -> String {
    match u64::try_from(minor) {
        Ok(m) => Amount::from_minor(m).to_string(),
        Err(_) => format!("{minor} (minor units)"),
    }
}

fn view(
    state: &DashboardState,
    server: &ServerState,
    left: Duration,
) -> Result<DashboardView, String> {
    let core = &state.core;
    let totals = core.totals();
    let head = EventStore::head(core.store().as_ref()).map_err(|e| e.to_string())?;
    let mut fold = lock(&state.fold);
    let mut read = 0;
    while fold.next_seq <= head.last_seq.0 && read < RECORDS_PER_VIEW_MAX {
        let records = core
            .store()
            .read(Seq(fold.next_seq), RECORDS_PER_READ)
            .map_err(|e| e.to_string())?;
        if records.is_empty() {
            break;
        }
        for r in &records {
            fold.apply(r.record.seq.0, &r.record.event);
            fold.next_seq = r.record.seq.0 + 1;
        }
        read += records.len();
    }
    let current = core.current_epoch().map(|(e, _)| e.0);
    let epochs = fold
        .epochs
        .iter()
        .map(|(epoch, [issued, n_issued, spent, n_spent])| EpochRow {
            epoch: *epoch,
            issued: Amount::from_minor(*issued).to_string(),
            n_issued: *n_issued,
            spent: Amount::from_minor(*spent).to_string(),
            n_spent: *n_spent,
            current: Some(*epoch) == current,
        })
        .collect();
    let pending_minor = fold
        .pending
        .values()
        .fold(0u64, |a, b| a.saturating_add(*b));
    let (validations, requests, refusals) = samples(&server.metrics.timeline());
    Ok(DashboardView {
        issuer: core.id().as_str().to_owned(),
        outstanding: money(totals.outstanding),
        aggregates: money(totals.aggregates),
        card_float: money(totals.card_float),
        real_held: money(totals.real_in - totals.real_out),
        unspent_coins: core.n_unspent() as u64,
        epochs,
        purchases_pending: fold.pending.len() as u64,
        purchases_pending_amount: Amount::from_minor(pending_minor).to_string(),
        purchases_settled: fold.settled,
        payments: fold.payments,
        signed_head: core.published_head().ok().flatten(),
        log_last_seq: head.last_seq.0,
        last_checkpoint_seq: fold.last_checkpoint,
        log_read_seq: fold.next_seq.saturating_sub(1),
        sample_secs: SAMPLE_SECS,
        validations_per_sample: validations,
        requests_per_sample: requests,
        refusals_per_sample: refusals,
        session_ends: format!("This session ends in {} min.", left.as_secs().div_ceil(60)),
    })
}

/// The last [`SAMPLES`] periods of [`SAMPLE_SECS`], oldest first.
fn samples(seconds: &[crate::metrics::SecondCounts]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let n = SAMPLES as usize;
    let (mut v, mut r, mut f) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
    for s in seconds {
        let age = now.saturating_sub(s.second) / SAMPLE_SECS;
        if age < SAMPLES {
            let i = n - 1 - age as usize;
            v[i] += s.validations as f64;
            r[i] += s.requests as f64;
            f[i] += s.refusals as f64;
        }
    }
    (v, r, f)
}

async fn dashboard(
    req: HttpRequest,
    state: web::Data<DashboardState>,
    server: web::Data<ServerState>,
) -> HttpResponse {
    let Some(left) = state.session_left(&req) else {
        return refused(
            "Open the dashboard with the link `varietycash issuer dashboard-link` prints.",
        );
    };
    let worker = state.clone();
    let built = web::block(move || view(&worker, &server, left)).await;
    match built {
        Ok(Ok(view)) => page_response(StatusCode::OK, web_pages::dashboard::dashboard(&view)),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "dashboard: the log could not be read");
            unreadable()
        }
        Err(_) => unreadable(),
    }
}

fn unreadable() -> HttpResponse {
    page_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        web_pages::message_page(SITE, "Dashboard", "The log could not be read.", None),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_put_recent_seconds_last() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let seconds = [crate::metrics::SecondCounts {
            second: now,
            requests: 3,
            validations: 2,
            refusals: 1,
        }];
        let (v, r, f) = samples(&seconds);
        assert_eq!(v.len(), SAMPLES as usize);
        assert_eq!(
            (v[v.len() - 1], r[r.len() - 1], f[f.len() - 1]),
            (2.0, 3.0, 1.0)
        );
    }
}
