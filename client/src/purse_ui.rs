//! The purse in a browser (`varietycash purse ui`): a server on 127.0.0.1
//! over one [`Wallet`], for its owner's browser only.
//!
//! | route | what |
//! |---|---|
//! | `GET /login?token=T` | the one-time secret printed by `purse ui`: sets the session cookie, then `/` |
//! | `GET /` | balance, coins by epoch and expiry, transactions under way with their steps, receipts, history |
//! | `POST /buy` | buys a coin spec (in the background; `/` shows its steps) |
//! | `GET /pay?invoice=URL` | fetches the invoice at a shop's pay link and shows merchant, item and amount |
//! | `POST /pay/confirm` | pays exactly the invoice shown, then shows the merchant's verified receipt |
//! | `GET /visit?shop=URL` | a page that opens the shop with this purse's address (`?purse=`), so its pay buttons come here |
//! | `POST /refresh`, `/resume`, `/refund` | upkeep, in the background |
//!
//! Who may drive it: whoever presents the session cookie, which is
//! handed out once, in exchange for the random token in the URL `purse ui`
//! prints (other users of the machine can connect to 127.0.0.1, but do
//! not know it). Every request must name the server by its own address
//! (`Host: 127.0.0.1:PORT`: DNS rebinding), carry the cookie (HttpOnly,
//! SameSite=Lax: a shop's link to `/pay` carries it, a shop's form post
//! does not), and every POST the session's CSRF token and, when the
//! browser sends one, this server's `Origin`. A pay link only shows an
//! invoice; paying it takes the confirmation form, which only this
//! server's page holds. The server binds loopback only and speaks plain
//! HTTP: a browser treats 127.0.0.1 as a secure context, and the purse's
//! own connections (issuer, shops) stay TLS, pinned.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use ledger::{Amount, BankAccount, CoinSpec, Denomination};
use protocol::flows::PayerOutcome;
use protocol::wire::payment::Invoice;
use purse::{Step, TxKind};
use web_pages::purse::{
    BalanceView, CoinGroup, ConfirmView, HistoryRow, HomeView, InFlightView, Progress, ReceiptView,
};

use crate::body::BodyLimits;
use crate::client::{ClientConfig, MerchantClient};
use crate::error::GatewayError;
use crate::server::{self, ServerConfig, ServerHandle, get_resource, post_resource};
use crate::wallet::{PurchaseOutcome, RefundOutcome, Wallet, WalletError};
use crate::web_session::{
    WebSecret, cookie, field, host_is, origin_allows, page_response, percent_encode, query_param,
    read_form, see_other, see_other_with_cookie, utc,
};

/// The session cookie's name.
const COOKIE: &str = "vc_purse_session";
/// Invoices shown and not yet confirmed or dropped, at most.
const CONFIRMS_MAX: usize = 16;
/// Receipts of this run kept for the home page, at most.
const RECEIPTS_MAX: usize = 32;
/// Closed transactions the history shows, newest first.
const HISTORY_ROWS_MAX: usize = 50;
const SITE: &str = "VarietyCash purse";

/// How to serve the purse page.
#[derive(Debug, Clone)]
pub struct PurseUiConfig {
    /// A loopback address; port 0 picks a free one.
    pub bind: SocketAddr,
    /// The account `buy` debits unless the form names another.
    pub default_account: Option<BankAccount>,
    /// How the purse reaches shops (the issuer's authority pinned).
    pub client: ClientConfig,
}

/// A served purse page: the server, and the one-time link to open it with.
#[derive(Debug)]
pub struct PurseUi {
    pub server: ServerHandle,
    /// `http://127.0.0.1:PORT/login?token=…`: valid once.
    pub login_url: String,
    /// `http://127.0.0.1:PORT`: what a shop is told (no secret in it).
    pub origin: String,
}

struct Session {
    cookie: WebSecret,
    csrf: WebSecret,
}

/// An invoice shown to the user, waiting for the confirmation.
struct Shown {
    shop_url: String,
    invoice: Invoice,
}

struct UiState {
    wallet: Arc<Wallet>,
    client: ClientConfig,
    default_account: Option<BankAccount>,
    /// `127.0.0.1:PORT`, once bound.
    host: OnceLock<String>,
    login: Mutex<Option<WebSecret>>,
    session: Mutex<Option<Session>>,
    /// The operation running in the background, in words.
    busy: Arc<Mutex<Option<String>>>,
    notice: Arc<Mutex<Option<(bool, String)>>>,
    receipts: Mutex<Vec<ReceiptView>>,
    shown: Mutex<HashMap<String, Shown>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl UiState {
    fn host(&self) -> &str {
        self.host.get().map(String::as_str).unwrap_or("")
    }

    fn origin(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The session's CSRF token if the request carries the session cookie
    /// and names this server; `None` otherwise.
    fn session_csrf(&self, req: &HttpRequest) -> Option<WebSecret> {
        if !host_is(req, self.host()) {
            return None;
        }
        let presented = cookie(req, COOKIE)?;
        let session = lock(&self.session);
        let session = session.as_ref()?;
        session
            .cookie
            .matches(presented)
            .then(|| session.csrf.clone())
    }

    /// Checks a state-changing form: session, Origin, CSRF token.
    fn check_post(&self, req: &HttpRequest, form: &[(String, String)]) -> bool {
        let Some(csrf) = self.session_csrf(req) else {
            return false;
        };
        origin_allows(req, &self.origin()) && field(form, "csrf").is_some_and(|t| csrf.matches(t))
    }
}

fn refused() -> HttpResponse {
    page_response(
        StatusCode::FORBIDDEN,
        web_pages::message_page(
            SITE,
            "Not signed in",
            "Open the purse with the link `varietycash purse ui` printed.",
            None,
        ),
    )
}

fn problem(status: StatusCode, text: &str) -> HttpResponse {
    page_response(
        status,
        web_pages::message_page(SITE, "Not done", text, Some(("/", "Back to the purse"))),
    )
}

/// Serves the purse page over `wallet`; returns once it listens.
pub fn serve_purse_ui(wallet: Wallet, config: PurseUiConfig) -> Result<PurseUi, GatewayError> {
    if !config.bind.ip().is_loopback() {
        return Err(GatewayError::Config(
            "the purse page listens on a loopback address only".into(),
        ));
    }
    let rng = |e: getrandom::Error| GatewayError::Config(format!("random: {e}"));
    let login = WebSecret::random().map_err(rng)?;
    let login_token = login.expose().to_owned();
    let state = web::Data::new(UiState {
        wallet: Arc::new(wallet),
        client: config.client.clone(),
        default_account: config.default_account.clone(),
        host: OnceLock::new(),
        login: Mutex::new(Some(login)),
        session: Mutex::new(None),
        busy: Arc::new(Mutex::new(None)),
        notice: Arc::new(Mutex::new(None)),
        receipts: Mutex::new(Vec::new()),
        shown: Mutex::new(HashMap::new()),
    });
    let routes_state = state.clone();
    let server = server::start(
        &ServerConfig::new(config.bind),
        "vc_purse_ui",
        None,
        move |cfg| {
            cfg.app_data(routes_state.clone())
                .service(get_resource("/login", login_route))
                .service(get_resource("/", home))
                .service(post_resource("/buy", buy))
                .service(get_resource("/pay", show_invoice))
                .service(post_resource("/pay/confirm", confirm_pay))
                .service(get_resource("/visit", visit))
                .service(post_resource("/refresh", upkeep))
                .service(post_resource("/resume", upkeep))
                .service(post_resource("/refund", upkeep));
        },
    )?;
    let host = server.addr().to_string();
    let _ = state.host.set(host.clone());
    Ok(PurseUi {
        login_url: format!("http://{host}/login?token={login_token}"),
        origin: format!("http://{host}"),
        server,
    })
}

async fn login_route(req: HttpRequest, state: web::Data<UiState>) -> HttpResponse {
    if !host_is(&req, state.host()) {
        return refused();
    }
    let Some(token) = query_param(&req, "token") else {
        return refused();
    };
    {
        let mut login = lock(&state.login);
        match login.as_ref() {
            Some(secret) if secret.matches(&token) => *login = None,
            _ => return refused(),
        }
    }
    let (Ok(cookie_secret), Ok(csrf)) = (WebSecret::random(), WebSecret::random()) else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "no randomness");
    };
    let value = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Lax",
        cookie_secret.expose()
    );
    *lock(&state.session) = Some(Session {
        cookie: cookie_secret,
        csrf,
    });
    tracing::info!("purse page: signed in");
    see_other_with_cookie("/", value)
}

fn purchase_steps(step: Step) -> Progress {
    let steps = [
        "WRequest1 sent: session opened",
        "WRequest3 sent: purchase asked",
        "waiting for the bank to settle",
        "coins stored (Issuance1), acknowledging (Issuance2)",
    ];
    let done = match step {
        Step::SessionOpen => 0,
        Step::Request => 1,
        Step::Poll => 2,
        Step::Acknowledge => 3,
    };
    Progress {
        steps: steps.iter().map(|s| (*s).to_owned()).collect(),
        done,
    }
}

fn other_steps(step: Step) -> Progress {
    let steps = ["request sent", "waiting for the answer", "acknowledging"];
    let done = match step {
        Step::SessionOpen | Step::Request => 0,
        Step::Poll => 1,
        Step::Acknowledge => 2,
    };
    Progress {
        steps: steps.iter().map(|s| (*s).to_owned()).collect(),
        done,
    }
}

fn home_view(state: &UiState, csrf: String) -> Result<HomeView, purse::PurseError> {
    let purse = state.wallet.purse();
    let balance = purse.balance()?;
    let mut groups: BTreeMap<(u32, u64, Amount, &'static str), usize> = BTreeMap::new();
    for c in purse.coins()? {
        if matches!(c.state, purse::CoinState::Spent(_)) {
            continue;
        }
        *groups
            .entry((
                c.coin.body.epoch.0,
                c.coin.body.expiry.0,
                c.coin.value(),
                c.state.name(),
            ))
            .or_insert(0) += 1;
    }
    let coins = groups
        .into_iter()
        .map(|((epoch, expiry, value, state), count)| CoinGroup {
            epoch,
            expiry: utc(expiry),
            value: value.to_string(),
            count,
            state: state.to_owned(),
        })
        .collect();
    let in_flight = purse
        .in_flight()?
        .into_iter()
        .map(|e| InFlightView {
            kind: e.kind.name().to_owned(),
            amount: e.amount.to_string(),
            progress: if e.kind == TxKind::Purchase {
                purchase_steps(e.step)
            } else {
                other_steps(e.step)
            },
        })
        .collect();
    let mut history: Vec<_> = purse.history()?;
    history.sort_by_key(|h| std::cmp::Reverse(h.last_step_at.0));
    let history = history
        .into_iter()
        .take(HISTORY_ROWS_MAX)
        .map(|h| HistoryRow {
            at: utc(h.last_step_at.0),
            kind: h.kind.name().to_owned(),
            value_out: h.value_out.to_string(),
            value_in: h.value_in.to_string(),
            holdings_after: h.holdings_after.to_string(),
            refused: h.refused,
        })
        .collect();
    let profile = purse.profile()?;
    let issuer_url = purse.issuer()?.map(|i| i.gateway_url).unwrap_or_default();
    Ok(HomeView {
        participant: profile.participant.as_str().to_owned(),
        issuer_url,
        csrf,
        balance: BalanceView {
            available: balance.available.to_string(),
            pending: balance.pending.to_string(),
            bad: balance.bad.to_string(),
            n_available: balance.n_available,
            n_pending: balance.n_pending,
            n_bad: balance.n_bad,
        },
        coins,
        in_flight,
        busy: lock(&state.busy).clone(),
        notice: lock(&state.notice).clone(),
        receipts: lock(&state.receipts).iter().rev().cloned().collect(),
        history,
        default_account: state
            .default_account
            .as_ref()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default(),
    })
}

async fn home(req: HttpRequest, state: web::Data<UiState>) -> HttpResponse {
    let Some(csrf) = state.session_csrf(&req) else {
        return refused();
    };
    let worker = state.clone();
    let csrf = csrf.expose().to_owned();
    match web::block(move || home_view(&worker, csrf)).await {
        Ok(Ok(view)) => page_response(StatusCode::OK, web_pages::purse::home(&view)),
        Ok(Err(e)) => problem(StatusCode::INTERNAL_SERVER_ERROR, &format!("purse: {e}")),
        Err(e) => problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// Runs `work` on a thread of its own unless another operation runs;
/// what it returns becomes the notice.
fn in_background(
    state: &UiState,
    what: String,
    work: impl FnOnce(&Wallet) -> (bool, String) + Send + 'static,
) -> Result<(), &'static str> {
    {
        let mut busy = lock(&state.busy);
        if busy.is_some() {
            return Err("another operation is under way");
        }
        *busy = Some(what);
    }
    let wallet = state.wallet.clone();
    let busy = state.busy.clone();
    let notice = state.notice.clone();
    let spawned = std::thread::Builder::new()
        .name("vc-purse-ui-op".into())
        .spawn(move || {
            let outcome = work(&wallet);
            *lock(&notice) = Some(outcome);
            *lock(&busy) = None;
        });
    if spawned.is_err() {
        *lock(&state.busy) = None;
        return Err("could not start the operation");
    }
    Ok(())
}

fn parse_spec(text: &str) -> Result<CoinSpec, String> {
    let mut lines = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (count, value) = part
            .split_once(['x', 'X'])
            .ok_or_else(|| format!("`{part}` is not COUNTxVALUE (e.g. 2x2.50)"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("`{count}` is not a coin count"))?;
        let value: Amount = value
            .trim()
            .parse()
            .map_err(|_| format!("`{value}` is not an amount"))?;
        lines.push(Denomination { count, value });
    }
    if lines.is_empty() {
        return Err("no coins asked for".into());
    }
    CoinSpec::new(lines).map_err(|e| format!("not a valid coin spec: {e}"))
}

async fn buy(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<UiState>,
    limits: web::Data<BodyLimits>,
) -> HttpResponse {
    let form = match read_form(&req, payload, **limits).await {
        Ok(form) => form,
        Err(e) => return problem(e.status, &e.message),
    };
    if !state.check_post(&req, &form) {
        return refused();
    }
    let spec = match parse_spec(field(&form, "spec").unwrap_or("")) {
        Ok(spec) => spec,
        Err(why) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &why),
    };
    let account = match field(&form, "account")
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        Some(text) => match BankAccount::new(text) {
            Ok(account) => account,
            Err(e) => return problem(StatusCode::UNPROCESSABLE_ENTITY, &format!("account: {e}")),
        },
        None => match &state.default_account {
            Some(account) => account.clone(),
            None => return problem(StatusCode::UNPROCESSABLE_ENTITY, "which bank account?"),
        },
    };
    let total = spec.total().map(|t| t.to_string()).unwrap_or_default();
    let started = in_background(
        &state,
        format!("Buying {total}"),
        move |wallet| match wallet.buy(spec, account, false) {
            Ok(PurchaseOutcome::Issued(coins)) => {
                (true, format!("Bought {total} in {} coin(s).", coins.len()))
            }
            Ok(PurchaseOutcome::Rejected(r)) => (
                false,
                format!(
                    "The bank refused the debit ({:?}); the issuer's statement verified.",
                    r.reason
                ),
            ),
            Ok(PurchaseOutcome::Pending(_)) => (
                true,
                "The bank has not settled yet: \"Finish transactions under way\" asks again."
                    .into(),
            ),
            Err(e) => (false, format!("The purchase failed: {e}")),
        },
    );
    match started {
        Ok(()) => see_other("/"),
        Err(why) => problem(StatusCode::CONFLICT, why),
    }
}

async fn upkeep(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<UiState>,
    limits: web::Data<BodyLimits>,
) -> HttpResponse {
    let form = match read_form(&req, payload, **limits).await {
        Ok(form) => form,
        Err(e) => return problem(e.status, &e.message),
    };
    if !state.check_post(&req, &form) {
        return refused();
    }
    let started = match req.path() {
        "/refresh" => in_background(&state, "Refreshing expired coins".into(), |w| {
            match w.refresh_expired() {
                Ok(coins) => (true, format!("Refreshed {} expired coin(s).", coins.len())),
                Err(e) => (false, format!("Refresh failed: {e}")),
            }
        }),
        "/resume" => in_background(&state, "Finishing transactions".into(), |w| {
            match w.resume() {
                Ok(r) => (
                    true,
                    format!("{} finished, {} still under way.", r.finished, r.unfinished),
                ),
                Err(e) => (false, format!("Resume failed: {e}")),
            }
        }),
        _ => in_background(&state, "Asking for a refund".into(), |w| match w.refund() {
            Ok(RefundOutcome::Replaced { revoked, coins }) => (
                true,
                format!(
                    "Refunded: {revoked} coin(s) revoked, {} new coin(s).",
                    coins.len()
                ),
            ),
            Ok(RefundOutcome::Rejected(r)) => (
                false,
                format!(
                    "The issuer refused the refund ({:?}), statement verified.",
                    r.reason
                ),
            ),
            Err(e) => (false, format!("Refund failed: {e}")),
        }),
    };
    match started {
        Ok(()) => see_other("/"),
        Err(why) => problem(StatusCode::CONFLICT, why),
    }
}

/// A shop's pay link `BASE/item/SKU/invoice`, split into the shop's base
/// URL and the item. Only `https://` (or `http://`, which the purse's
/// pinned client refuses unless it runs with plain HTTP) is taken.
fn split_invoice_url(url: &str) -> Option<(String, String)> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return None;
    }
    let url = url.split(['?', '#']).next()?;
    let rest = url.strip_suffix("/invoice")?;
    let (base, sku) = rest.rsplit_once("/item/")?;
    if base.is_empty() || !crate::merchant::is_valid_sku(sku) || base.ends_with("//") {
        return None;
    }
    Some((base.to_owned(), sku.to_owned()))
}

async fn show_invoice(req: HttpRequest, state: web::Data<UiState>) -> HttpResponse {
    let Some(csrf) = state.session_csrf(&req) else {
        return refused();
    };
    let Some(url) = query_param(&req, "invoice") else {
        return problem(StatusCode::BAD_REQUEST, "no invoice address given");
    };
    let Some((shop_url, sku)) = split_invoice_url(&url) else {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not a shop's pay link (https://SHOP/item/ITEM/invoice)",
        );
    };
    let worker = state.clone();
    let base = shop_url.clone();
    let fetched = web::block(move || {
        let merchant = MerchantClient::new(&base, worker.client.clone())?;
        let invoice = merchant.invoice(&sku, worker.wallet.id())?;
        let available = worker.wallet.purse().balance()?.available;
        Ok::<_, WalletError>((invoice, available))
    })
    .await;
    let (invoice, available) = match fetched {
        Ok(Ok(fetched)) => fetched,
        Ok(Err(e)) => {
            return problem(StatusCode::BAD_GATEWAY, &format!("the shop's invoice: {e}"));
        }
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    let Ok(confirm_id) = WebSecret::random() else {
        return problem(StatusCode::INTERNAL_SERVER_ERROR, "no randomness");
    };
    let view = ConfirmView {
        merchant: invoice.id_py.as_str().to_owned(),
        item: invoice.p_desc.as_str().to_owned(),
        amount: invoice.amount.to_string(),
        order: invoice.tid_py.to_string(),
        shop_url: shop_url.clone(),
        signed: invoice.commitment.is_some() && invoice.id_pa == *state.wallet.id(),
        available: available.to_string(),
        confirm_id: confirm_id.expose().to_owned(),
        csrf: csrf.expose().to_owned(),
    };
    {
        let mut shown = lock(&state.shown);
        if shown.len() >= CONFIRMS_MAX {
            shown.clear();
        }
        shown.insert(confirm_id.expose().to_owned(), Shown { shop_url, invoice });
    }
    page_response(StatusCode::OK, web_pages::purse::confirm(&view))
}

async fn confirm_pay(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<UiState>,
    limits: web::Data<BodyLimits>,
) -> HttpResponse {
    let form = match read_form(&req, payload, **limits).await {
        Ok(form) => form,
        Err(e) => return problem(e.status, &e.message),
    };
    if !state.check_post(&req, &form) {
        return refused();
    }
    let Some(shown) = field(&form, "confirm").and_then(|id| lock(&state.shown).remove(id)) else {
        return problem(
            StatusCode::NOT_FOUND,
            "that invoice is no longer waiting: open the pay link again",
        );
    };
    {
        let mut busy = lock(&state.busy);
        if busy.is_some() {
            return problem(StatusCode::CONFLICT, "another operation is under way");
        }
        *busy = Some(format!("Paying {}", shown.invoice.amount));
    }
    let worker = state.clone();
    let Shown { shop_url, invoice } = shown;
    let paid_invoice = invoice.clone();
    let base = shop_url.clone();
    let outcome = web::block(move || {
        let outcome = worker.wallet.pay_invoice(&base, &paid_invoice);
        let available = worker
            .wallet
            .purse()
            .balance()
            .map(|b| b.available.to_string())
            .unwrap_or_default();
        (outcome, available)
    })
    .await;
    *lock(&state.busy) = None;
    let (outcome, available) = match outcome {
        Ok(done) => done,
        Err(e) => return problem(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    };
    match outcome {
        Ok(PayerOutcome::Paid {
            receipt_verified: true,
        }) => {
            let receipt = ReceiptView {
                merchant: invoice.id_py.as_str().to_owned(),
                item: invoice.p_desc.as_str().to_owned(),
                amount: invoice.amount.to_string(),
                order: invoice.tid_py.to_string(),
                order_url: format!("{shop_url}/order/{}", invoice.tid_py),
                proof: "The merchant's receipt verified under its certificate from the issuer."
                    .into(),
            };
            {
                let mut receipts = lock(&state.receipts);
                if receipts.len() >= RECEIPTS_MAX {
                    receipts.remove(0);
                }
                receipts.push(receipt.clone());
            }
            *lock(&state.notice) = Some((
                true,
                format!("Paid {} to {}.", invoice.amount, invoice.id_py.as_str()),
            ));
            page_response(StatusCode::OK, web_pages::purse::paid(&receipt, &available))
        }
        Ok(PayerOutcome::Paid {
            receipt_verified: false,
        }) => problem(
            StatusCode::BAD_GATEWAY,
            "the merchant's answer proved nothing; the coins go back through the issuer",
        ),
        Ok(PayerOutcome::Rejected { reason, .. }) => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            &format!("refused by the issuer ({reason:?}), statement verified"),
        ),
        Err(e) => problem(StatusCode::BAD_GATEWAY, &format!("not paid: {e}")),
    }
}

async fn visit(req: HttpRequest, state: web::Data<UiState>) -> HttpResponse {
    if state.session_csrf(&req).is_none() {
        return refused();
    }
    let Some(shop) = query_param(&req, "shop") else {
        return problem(StatusCode::BAD_REQUEST, "which shop?");
    };
    if !(shop.starts_with("https://") || shop.starts_with("http://"))
        || shop.chars().any(|c| c.is_control() || c == ' ')
    {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "a shop's address starts with https://",
        );
    }
    let shop = shop.split('#').next().unwrap_or("");
    let separator = if shop.contains('?') { '&' } else { '?' };
    let url = format!("{shop}{separator}purse={}", percent_encode(&state.origin()));
    page_response(StatusCode::OK, web_pages::purse::opening_shop(&url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_shops_pay_link_is_split_into_shop_and_item() {
        assert_eq!(
            split_invoice_url("https://127.0.0.1:8081/item/book/invoice"),
            Some(("https://127.0.0.1:8081".into(), "book".into()))
        );
        assert_eq!(
            split_invoice_url("https://s.example/shop/item/tea-1/invoice?payer=x"),
            Some(("https://s.example/shop".into(), "tea-1".into()))
        );
        for bad in [
            "javascript:alert(1)//item/a/invoice",
            "file:///item/a/invoice",
            "https://s/item/a b/invoice",
            "https://s/item//invoice",
            "https://s/item/a",
            "https:///item/a/invoice",
        ] {
            assert_eq!(split_invoice_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn coin_specs_read_as_the_command_line_takes_them() {
        let spec = parse_spec("4x2.50, 1X1.00").expect("parses");
        assert_eq!(spec.total().expect("total").to_string(), "11.00");
        assert!(parse_spec("").is_err());
        assert!(parse_spec("2.50").is_err());
        assert!(parse_spec("ax1").is_err());
    }
}
