//! The merchant server: a shop page, invoices, and the pay endpoint.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | HTML shop page; each item's "pay" link is its invoice |
//! | `GET /item/{sku}/invoice?payer=ID` | a new order: its `Invoice` under [`INVOICE`] |
//! | `GET /order/{tid}/invoice` | the invoice of an existing order |
//! | `POST /order/{tid}/pay` | `SendCoins` in, `PaymentResult` out |
//! | `GET /order/{tid}` | the order's status and receipt, as a page |
//! | `GET /assets/shop.js` | the catalog's script: pay buttons open the user's purse page |
//! | `GET /merchant/login?token=T` | the merchant's one-time link: a session cookie, then `/merchant` |
//! | `GET /merchant` | the merchant's takings (its session only) |
//!
//! The pages are in `merchant/pages.rs`.
//!
//! An order is identified by its invoice's `TID_PY` (hex). Paying it: the
//! server wraps the payer's sealed coins in a ValidationRequest with its own
//! key share (refresh, redeem or aggregate, per item or by configuration),
//! journals it in the merchant's purse BEFORE sending it to the issuer,
//! stores what comes back (new coins) in one durable purse transaction,
//! acknowledges, and answers the payer with its signed receipt or the
//! issuer's signed rejection. A retry of the same SendCoins gets the same
//! answer; a lost issuer answer is recovered by re-sending the journaled
//! request (the issuer answers it idempotently), also at the next start
//! (and, if the issuer does not answer then either, by the retry thread).
//!
//! Orders live in memory, bounded ([`ORDERS_OPEN_MAX`], and
//! [`ORDERS_OPEN_PER_CLIENT_MAX`] per source (an IPv4 address, an IPv6 /64),
//! checked before the invoice is signed); an unpaid invoice expires after
//! [`ORDER_LIFETIME_SECS`]. The money is in the purse.
//!
//! A validation the issuer refuses outright (a corrupt SendCoins posted by
//! anyone who knows the order id) leaves the journal at once: the order
//! stays payable by the honest payer's SendCoins. Nothing else drops one:
//! a validation whose answer was lost may be committed at the issuer, so it
//! is re-sent every [`MERCHANT_COLLECTION_RETRY_MS`] (after
//! [`MERCHANT_COLLECTION_RETRIES_AT_PERIOD`] unanswered re-sends, at waits
//! that double up to [`MERCHANT_COLLECTION_RETRY_MS_MAX`]) until the issuer
//! answers, whether or not the payer comes back (a payer told "no answer"
//! reclaims its coins through the issuer, and is refused "already spent"
//! if the merchant's validation committed: the coins are then the
//! merchant's to collect).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use ledger::{Amount, BankAccount, CoinSpec, Denomination, ParticipantId, Timestamp};
use protocol::crypto::{PublicKey, SecretKey, SuiteId};
use protocol::flows::{PayeeAwaitingIssuance, PayeeOutcome, PaymentPayee};
use protocol::wire::payment::{PDesc, PaymentIssuance1, PaymentResult, SendCoins, VOption};
use protocol::wire::registration::Certificate;
use protocol::wire::{PaymentTid, WireMessage, decode, encode};
use purse::{
    Completion, Destination, JournalEntry, NewTransaction, Purse, Refusal, SessionSecret, Step,
    TxKind, TxRef,
};

use crate::body::{BodyLimits, message_response, read_bounded, require_media_type};
use crate::client::{ClientConfig, ClientError, IssuerClient};
use crate::constants::{
    MERCHANT_COLLECTION_RETRIES_AT_PERIOD, MERCHANT_COLLECTION_RETRY_MS,
    MERCHANT_COLLECTION_RETRY_MS_MAX, ORDER_LIFETIME_SECS, ORDERS_KEPT_MAX, ORDERS_OPEN_MAX,
    ORDERS_OPEN_PER_CLIENT_MAX, PAY_REFUSAL_CLIENTS_MAX, PAY_REFUSALS_PER_CLIENT_MAX,
    PAY_REFUSALS_WINDOW_SECS, RETRY_AFTER_SECS, SKU_BYTES_MAX,
};
use crate::error::{ApiError, GatewayError};
use crate::media::{ErrorCode, INVOICE, POSTCARD};
use crate::metrics::{MetricsSource, counter, gauge};
use crate::server::{self, ServerConfig, ServerHandle, get_resource, post_resource};
use crate::sources::Source;

mod pages;

/// What the merchant takes for the coins it is paid with (`V-DESC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CollectOption {
    /// Fresh coins of the amount, kept in the merchant's purse.
    Refresh,
    /// An ACH credit to this (enrolled) account.
    Redeem { bank_account: BankAccount },
    /// A credit to the merchant's aggregated balance at the issuer.
    Aggregate,
}

/// One thing the shop sells.
#[derive(Debug, Clone)]
pub struct CatalogItem {
    /// URL-safe id: ASCII letters, digits, `-`, `_`; at most
    /// [`SKU_BYTES_MAX`] bytes.
    pub sku: String,
    pub title: String,
    pub price: Amount,
    /// Overrides [`MerchantConfig::collect`] for this item.
    pub collect: Option<CollectOption>,
}

/// How to run a merchant server.
#[derive(Debug, Clone)]
pub struct MerchantConfig {
    pub server: ServerConfig,
    pub shop_name: String,
    pub catalog: Vec<CatalogItem>,
    /// What to take for payments, unless an item says otherwise.
    pub collect: CollectOption,
    /// How to reach the issuer (its URL is in the purse's issuer record).
    pub client: ClientConfig,
}

/// Whether `sku` may name a catalog item (it goes into URLs as is).
pub fn is_valid_sku(sku: &str) -> bool {
    !sku.is_empty()
        && sku.len() <= SKU_BYTES_MAX
        && sku
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Where an order stands.
enum OrderStatus {
    /// Invoiced; payable. `pending` is a validation journaled in the purse
    /// whose answer was lost: the next attempt re-sends it, and so does the
    /// merchant's retry every [`MERCHANT_COLLECTION_RETRY_MS`].
    Open { pending: Option<Journaled> },
    /// A payment attempt is under way.
    Paying,
    /// Paid: the SendCoins that paid it and the answer given.
    Paid {
        send_coins: Vec<u8>,
        result: PaymentResult,
    },
}

/// A validation in the merchant's journal, and the SendCoins it was
/// built for (what a paid order answers a retry of).
struct Journaled {
    tx: TxRef,
    send_coins: Vec<u8>,
    /// Re-sends that found no answer yet.
    retries: u32,
    /// The merchant's next re-send, not before.
    next_retry: Instant,
}

impl Journaled {
    fn new(tx: TxRef, send_coins: Vec<u8>) -> Journaled {
        Journaled {
            tx,
            send_coins,
            retries: 0,
            // Due at the retry thread's next round.
            next_retry: Instant::now(),
        }
    }

    /// After a re-send found no answer: the wait doubles, up to
    /// [`MERCHANT_COLLECTION_RETRY_MS_MAX`].
    fn unanswered(mut self) -> Journaled {
        self.retries = self.retries.saturating_add(1);
        self.next_retry = Instant::now() + collection_retry_wait(self.retries);
        self
    }
}

/// The wait before the re-send that follows `retries` unanswered ones:
/// the retry thread's period for the first few (an issuer restarting is
/// back within them), then doubling up to the most.
fn collection_retry_wait(retries: u32) -> Duration {
    let doublings = retries
        .saturating_sub(MERCHANT_COLLECTION_RETRIES_AT_PERIOD)
        .min(16);
    let ms = MERCHANT_COLLECTION_RETRY_MS
        .saturating_mul(1u64 << doublings)
        .min(MERCHANT_COLLECTION_RETRY_MS_MAX);
    Duration::from_millis(ms)
}

struct Order {
    payee: PaymentPayee,
    collect: CollectOption,
    created: Instant,
    status: OrderStatus,
    /// The source that asked for the invoice: its IPv4 address or the /64
    /// of its IPv6 one, as the server's own limits count it (one host holds
    /// a whole /64; none if unknown).
    client: Option<Source>,
}

/// What one client (source address) may cost a merchant server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientLimits {
    /// Open orders (invoiced, unpaid) one client may hold.
    pub orders_open_max: usize,
    /// SendCoins the issuer refused that one client may post in
    /// [`PAY_REFUSALS_WINDOW_SECS`].
    pub pay_refusals_max: u32,
}

impl Default for ClientLimits {
    /// [`ORDERS_OPEN_PER_CLIENT_MAX`], [`PAY_REFUSALS_PER_CLIENT_MAX`].
    fn default() -> ClientLimits {
        ClientLimits {
            orders_open_max: ORDERS_OPEN_PER_CLIENT_MAX,
            pay_refusals_max: PAY_REFUSALS_PER_CLIENT_MAX,
        }
    }
}

/// SendCoins refused outright, counted per client in a window.
#[derive(Default)]
struct Refusals {
    by_client: HashMap<Option<Source>, (Instant, u32)>,
}

impl Refusals {
    fn window() -> Duration {
        Duration::from_secs(PAY_REFUSALS_WINDOW_SECS)
    }

    /// Refuses `client` (429) while it is over its `max` refusals of the
    /// window.
    fn check(&self, client: Option<Source>, max: u32) -> Result<(), ApiError> {
        match self.by_client.get(&client) {
            Some((since, n)) if since.elapsed() <= Self::window() && *n >= max => {
                Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::Overloaded,
                    "too many refused payments from this client",
                )
                .with_retry_after(RETRY_AFTER_SECS))
            }
            _ => Ok(()),
        }
    }

    fn record(&mut self, client: Option<Source>) {
        if self.by_client.len() >= PAY_REFUSAL_CLIENTS_MAX {
            self.by_client
                .retain(|_, (since, _)| since.elapsed() <= Self::window());
            if self.by_client.len() >= PAY_REFUSAL_CLIENTS_MAX {
                // Still full of live windows: forget them all rather than
                // grow (a flood from that many addresses is the global
                // limits' to bound).
                self.by_client.clear();
            }
        }
        let entry = self.by_client.entry(client).or_insert((Instant::now(), 0));
        if entry.0.elapsed() > Self::window() {
            *entry = (Instant::now(), 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }
}

#[derive(Default)]
struct Orders {
    by_tid: HashMap<PaymentTid, Order>,
    limits: ClientLimits,
    refusals: Refusals,
    /// Creation order, for forgetting the oldest.
    fifo: VecDeque<PaymentTid>,
    n_paid_total: u64,
    n_rejected_total: u64,
}

impl Orders {
    fn n_open(&self) -> usize {
        self.by_tid
            .values()
            .filter(|o| !matches!(o.status, OrderStatus::Paid { .. }))
            .count()
    }

    fn n_open_of(&self, client: Option<Source>) -> usize {
        self.by_tid
            .values()
            .filter(|o| o.client == client && !matches!(o.status, OrderStatus::Paid { .. }))
            .count()
    }

    /// Whether a new order for `client` fits: room among the open orders,
    /// and `client` holds fewer than its limit's open orders.
    fn room_for(&mut self, client: Option<Source>) -> Result<(), ApiError> {
        self.prune(Duration::from_secs(ORDER_LIFETIME_SECS));
        if self.n_open() >= ORDERS_OPEN_MAX {
            return Err(ApiError::overloaded());
        }
        if self.n_open_of(client) >= self.limits.orders_open_max {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::Overloaded,
                "too many open orders from this client: pay or let them expire",
            )
            .with_retry_after(RETRY_AFTER_SECS));
        }
        Ok(())
    }

    /// Forgets expired unpaid orders, and the oldest paid ones past the
    /// memory bound.
    fn prune(&mut self, lifetime: Duration) {
        self.by_tid.retain(|_, o| {
            !(matches!(o.status, OrderStatus::Open { pending: None })
                && o.created.elapsed() > lifetime)
        });
        while self.by_tid.len() > ORDERS_KEPT_MAX {
            match self.fifo.pop_front() {
                Some(tid) => {
                    if matches!(
                        self.by_tid.get(&tid).map(|o| &o.status),
                        Some(OrderStatus::Paid { .. })
                    ) {
                        self.by_tid.remove(&tid);
                    }
                }
                None => break,
            }
        }
        let by_tid = &self.by_tid;
        self.fifo.retain(|tid| by_tid.contains_key(tid));
    }
}

/// The merchant: identity, keys, purse, issuer, orders.
struct Merchant {
    shop_name: String,
    purse: Arc<Purse>,
    issuer: IssuerClient,
    id_py: ParticipantId,
    id_i: ParticipantId,
    pk_i: PublicKey,
    sk_py: SecretKey,
    cert_py: Option<Certificate>,
    suite: SuiteId,
    catalog: BTreeMap<String, CatalogItem>,
    collect: CollectOption,
    orders: Mutex<Orders>,
    /// The merchant's own access to its page.
    owner: pages::Owner,
    /// The issuer's validator nodes that take `/v1/validate` and its ack
    /// (none: the issuer's own gateway does), tried in turn.
    validators: Vec<crate::client::HttpClient>,
    next_validator: std::sync::atomic::AtomicUsize,
    /// Collections an earlier run left in the journal that the start could
    /// not finish (the issuer down, or not answering): no open order holds
    /// them, so the retry thread re-sends them, with the same back-off.
    leftovers: Mutex<Vec<Journaled>>,
}

impl Merchant {
    /// Sends a payment step to the issuer's validator nodes, starting from
    /// the next in turn (spreading payments over them) and moving on past
    /// one that is unreachable or says "retry", for up to the client's
    /// attempts in rounds; to the issuer's own gateway when none is listed.
    /// The same bytes go to every node: the issuer answers a repeat of a
    /// committed payment with its logged outcome, wherever it arrives.
    fn post_payment<T>(
        &self,
        send: impl Fn(&crate::client::HttpClient) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let n = self.validators.len();
        if n == 0 {
            return send(self.issuer.http());
        }
        let start = self
            .next_validator
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut last = None;
        for round in 0..crate::constants::CLIENT_ATTEMPTS_MAX {
            if round > 0 {
                std::thread::sleep(Duration::from_millis(
                    crate::constants::CLIENT_RETRY_PAUSE_MS,
                ));
            }
            for i in 0..n {
                match send(&self.validators[(start + i) % n]) {
                    Err(e) if e.is_transient() => last = Some(e),
                    other => return other,
                }
            }
        }
        Err(last.unwrap_or_else(|| unreachable!("at least one node was tried")))
    }
}

/// The open orders, never recovered from a poisoned lock: a holder that
/// panicked may have left an order `Paying` or paid with no bytes, and
/// serving on from that could answer a payer wrongly. It panics instead, and
/// `varietycash merchant serve` exits (fail-stop, as the issuer does); its
/// journal finishes every collection on restart.
fn lock(orders: &Mutex<Orders>) -> std::sync::MutexGuard<'_, Orders> {
    ledger::sync::lock(orders)
}

/// Starts a merchant server over its purse (opened by the caller, who may
/// keep the `Arc` to read balances); returns once it listens. In-flight
/// collections left in the purse's journal by an earlier run are finished
/// first.
pub fn serve_merchant(
    config: &MerchantConfig,
    purse: Arc<Purse>,
) -> Result<ServerHandle, GatewayError> {
    serve_merchant_with_limits(config, purse, ClientLimits::default())
}

/// [`serve_merchant`] with other per-client limits: for tests and benches
/// whose many clients all come from one address (loopback).
pub fn serve_merchant_with_limits(
    config: &MerchantConfig,
    purse: Arc<Purse>,
    limits: ClientLimits,
) -> Result<ServerHandle, GatewayError> {
    serve_merchant_for_owner(config, purse, limits).map(|(server, _)| server)
}

/// [`serve_merchant_with_limits`], and the merchant's one-time link to its
/// own page (`URL/merchant/login?token=…`, valid once).
pub fn serve_merchant_for_owner(
    config: &MerchantConfig,
    purse: Arc<Purse>,
    limits: ClientLimits,
) -> Result<(ServerHandle, String), GatewayError> {
    serve_merchant_via_validators(config, purse, limits, &[])
}

/// [`serve_merchant_for_owner`], sending payments (`/v1/validate` and its
/// ack) to the issuer's validator nodes at `validators` (each checked
/// against the same pinned authority as the issuer), in turn.
pub fn serve_merchant_via_validators(
    config: &MerchantConfig,
    purse: Arc<Purse>,
    limits: ClientLimits,
    validators: &[String],
) -> Result<(ServerHandle, String), GatewayError> {
    let validators = validators
        .iter()
        .map(|url| {
            // One attempt each: post_payment moves on to the next node.
            let config = ClientConfig {
                attempts_max: 1,
                ..config.client.clone()
            };
            crate::client::HttpClient::new(url, config)
                .map_err(|e| GatewayError::Config(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    for item in &config.catalog {
        if !is_valid_sku(&item.sku) {
            return Err(GatewayError::Config(format!("bad item id {:?}", item.sku)));
        }
        if item.price.is_zero() {
            return Err(GatewayError::Config(format!(
                "item {} has no price",
                item.sku
            )));
        }
    }
    let profile = purse.profile()?;
    let issuer_info = purse.issuer()?.ok_or(GatewayError::NoIssuer)?;
    let issuer = IssuerClient::new(&issuer_info.gateway_url, config.client.clone())
        .map_err(|e| GatewayError::Config(e.to_string()))?;
    let cert_py = match &profile.certificate {
        Some(bytes) => Some(
            decode::<Certificate>(bytes)
                .map_err(|e| GatewayError::Config(format!("stored certificate: {e}")))?,
        ),
        None => None,
    };
    let (owner, owner_token) =
        pages::Owner::new().map_err(|e| GatewayError::Config(format!("random: {e}")))?;
    let merchant = Arc::new(Merchant {
        owner,
        shop_name: config.shop_name.clone(),
        id_py: profile.participant.clone(),
        id_i: issuer_info.issuer.clone(),
        pk_i: issuer_info.key()?,
        sk_py: profile.secret_key()?,
        cert_py,
        suite: profile.suite,
        catalog: config
            .catalog
            .iter()
            .map(|i| (i.sku.clone(), i.clone()))
            .collect(),
        collect: config.collect.clone(),
        issuer,
        purse,
        orders: Mutex::new(Orders {
            limits,
            ..Orders::default()
        }),
        validators,
        next_validator: std::sync::atomic::AtomicUsize::new(0),
        leftovers: Mutex::new(Vec::new()),
    });
    merchant.resume_collections();
    spawn_collection_retries(Arc::downgrade(&merchant))?;
    let source: Arc<dyn MetricsSource> = Arc::new(MerchantMetrics(merchant.clone()));
    let state = web::Data::new(merchant);
    let server = server::start(&config.server, "vc_merchant", Some(source), move |cfg| {
        cfg.app_data(state.clone())
            .service(get_resource("/", pages::shop_page))
            .service(get_resource("/item/{sku}/invoice", new_order))
            .service(get_resource("/order/{tid}/invoice", order_invoice))
            .service(post_resource("/order/{tid}/pay", pay))
            .service(get_resource("/order/{tid}", pages::order_page))
            .service(get_resource(
                web_pages::shop::SCRIPT_PATH,
                pages::shop_script,
            ))
            .service(get_resource("/merchant/login", pages::owner_login))
            .service(get_resource("/merchant", pages::owner_page));
    })?;
    let link = format!("{}/merchant/login?token={owner_token}", server.url());
    Ok((server, link))
}

/// Re-sends, every [`MERCHANT_COLLECTION_RETRY_MS`], the journaled
/// validations of open orders (`Merchant::retry_pending_collections`);
/// ends once the server has dropped the merchant.
fn spawn_collection_retries(merchant: Weak<Merchant>) -> Result<(), GatewayError> {
    std::thread::Builder::new()
        .name("vc-merchant-collect".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(MERCHANT_COLLECTION_RETRY_MS));
                let Some(merchant) = merchant.upgrade() else {
                    return;
                };
                merchant.retry_pending_collections();
                merchant.retry_leftover_collections();
            }
        })?;
    Ok(())
}

fn parse_tid(text: &str) -> Result<PaymentTid, ApiError> {
    let unknown = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::UnknownOrder,
            "no such order",
        )
    };
    // Hex digits only: `from_str_radix` also takes a sign, so "+f" would
    // name the order "0f" does.
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(unknown());
    }
    let mut bytes = [0u8; 16];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or_else(unknown)?, 16)
            .map_err(|_| unknown())?;
    }
    Ok(PaymentTid::from_bytes(bytes))
}

fn unknown_order() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::UnknownOrder,
        "no such order (or its invoice expired)",
    )
}

/// The `payer` query parameter: the payer's `ID_PA`, part of `Com`.
fn payer_of(req: &HttpRequest) -> Result<ParticipantId, ApiError> {
    let payer = req
        .query_string()
        .split('&')
        .find_map(|pair| pair.strip_prefix("payer="))
        .ok_or_else(|| ApiError::malformed("the payer query parameter (ID_PA) is required"))?;
    ParticipantId::new(payer).map_err(|e| ApiError::malformed(format!("payer: {e}")))
}

async fn new_order(
    req: HttpRequest,
    path: web::Path<String>,
    merchant: web::Data<Arc<Merchant>>,
) -> Result<HttpResponse, ApiError> {
    let sku = path.into_inner();
    let item = merchant
        .catalog
        .get(&sku)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "no such item"))?;
    let id_pa = payer_of(&req)?;
    let p_desc = PDesc::new(item.title.clone())
        .map_err(|_| ApiError::internal("catalog", &"item title too long"))?;
    // Checked before the invoice is signed (an RSA private operation), so a
    // client over its share of open orders costs the merchant no signature.
    let client = req.peer_addr().map(|a| Source::of(a.ip()));
    lock(&merchant.orders).room_for(client)?;
    let signer = merchant.cert_py.as_ref().map(|c| (&merchant.sk_py, c));
    let (payee, invoice) = PaymentPayee::invoice(
        merchant.id_py.clone(),
        id_pa,
        merchant.id_i.clone(),
        p_desc,
        item.price,
        signer,
    );
    let mut orders = lock(&merchant.orders);
    // Again under the lock that inserts: concurrent requests of one client
    // may all have passed the first check.
    orders.room_for(client)?;
    orders.by_tid.insert(
        invoice.tid_py,
        Order {
            payee,
            collect: item
                .collect
                .clone()
                .unwrap_or_else(|| merchant.collect.clone()),
            created: Instant::now(),
            status: OrderStatus::Open { pending: None },
            client,
        },
    );
    orders.fifo.push_back(invoice.tid_py);
    drop(orders);
    Ok(message_response(&invoice, INVOICE))
}

async fn order_invoice(
    path: web::Path<String>,
    merchant: web::Data<Arc<Merchant>>,
) -> Result<HttpResponse, ApiError> {
    let tid = parse_tid(&path.into_inner())?;
    let orders = lock(&merchant.orders);
    let order = orders.by_tid.get(&tid).ok_or_else(unknown_order)?;
    Ok(message_response(order.payee.invoice_sent(), INVOICE))
}

/// What one payment attempt needs, taken from the order under the lock.
struct Attempt {
    tid: PaymentTid,
    payee: PaymentPayee,
    collect: CollectOption,
    /// The order's journaled validation, with the SendCoins it was built
    /// for: re-sent first, and if it pays the order, that SendCoins is
    /// the one a retry is answered for.
    pending: Option<Journaled>,
    /// Who posted the SendCoins (its refusals are counted).
    client: Option<Source>,
}

async fn pay(
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
    merchant: web::Data<Arc<Merchant>>,
    limits: web::Data<BodyLimits>,
) -> Result<HttpResponse, ApiError> {
    let tid = parse_tid(&path.into_inner())?;
    require_media_type(&req, POSTCARD)?;
    let bytes = read_bounded(
        &req,
        payload,
        SendCoins::NAME,
        SendCoins::BYTES_MAX,
        **limits,
    )
    .await?
    .to_vec();
    let send_coins: SendCoins = decode(&bytes)?;
    let client = req.peer_addr().map(|a| Source::of(a.ip()));
    let attempt = {
        let mut orders = lock(&merchant.orders);
        // Before any work: a client posting SendCoins the issuer refuses
        // costs the merchant a signature each.
        let max = orders.limits.pay_refusals_max;
        orders.refusals.check(client, max)?;
        let order = orders.by_tid.get_mut(&tid).ok_or_else(unknown_order)?;
        match &order.status {
            OrderStatus::Paid {
                send_coins: paid_with,
                result,
            } => {
                if *paid_with == bytes {
                    return Ok(message_response(result, POSTCARD));
                }
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    ErrorCode::Refused,
                    "order already paid",
                ));
            }
            OrderStatus::Paying => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    ErrorCode::InFlight,
                    "a payment of this order is under way; retry",
                )
                .with_retry_after(RETRY_AFTER_SECS));
            }
            OrderStatus::Open { pending } => {
                if pending.is_none()
                    && order.created.elapsed() > Duration::from_secs(ORDER_LIFETIME_SECS)
                {
                    return Err(unknown_order());
                }
                let pending = match std::mem::replace(&mut order.status, OrderStatus::Paying) {
                    OrderStatus::Open { pending } => pending,
                    _ => None,
                };
                Attempt {
                    tid,
                    payee: order.payee.clone(),
                    collect: order.collect.clone(),
                    pending,
                    client,
                }
            }
        }
    };
    let worker = merchant.get_ref().clone();
    // The attempt records its own end in the order, so a payer that hangs
    // up mid-validation leaves no order stuck in `Paying`.
    match web::block(move || worker.pay_and_record(attempt, send_coins, bytes)).await {
        Ok(answer) => answer.map(|result| message_response(&result, POSTCARD)),
        Err(e) => {
            let mut orders = lock(&merchant.orders);
            if let Some(order) = orders.by_tid.get_mut(&tid)
                && matches!(order.status, OrderStatus::Paying)
            {
                order.status = OrderStatus::Open { pending: None };
            }
            Err(ApiError::internal("blocking pool", &e))
        }
    }
}

fn purse_error(e: purse::PurseError) -> ApiError {
    ApiError::internal("merchant purse", &e)
}

fn issuer_unreachable(e: &dyn std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        ErrorCode::IssuerUnavailable,
        format!("issuer: {e}"),
    )
}

impl Merchant {
    /// One payment attempt, then its end recorded in the order: paid (with
    /// the bytes that paid it), or open again (a rejection; or a failure,
    /// keeping the journaled validation to re-send).
    fn pay_and_record(
        &self,
        attempt: Attempt,
        send_coins: SendCoins,
        bytes: Vec<u8>,
    ) -> Result<PaymentResult, ApiError> {
        let outcome = self.collect(&attempt, send_coins);
        let Attempt {
            tid,
            pending,
            client,
            ..
        } = attempt;
        let mut orders = lock(&self.orders);
        match &outcome {
            Ok((PaymentResult::Paid(_), _)) => orders.n_paid_total += 1,
            Ok((PaymentResult::Rejected(_), _)) => {
                orders.n_rejected_total += 1;
                orders.refusals.record(client);
            }
            Err((None, e)) if e.code == ErrorCode::Refused => orders.refusals.record(client),
            Err(_) => {}
        }
        let status = attempt_end(pending, bytes, &outcome);
        if let Some(order) = orders.by_tid.get_mut(&tid) {
            order.status = status;
        }
        outcome.map(|(result, _)| result).map_err(|(_, e)| e)
    }

    fn v_option(&self, collect: &CollectOption, amount: Amount) -> Result<VOption, ApiError> {
        Ok(match collect {
            CollectOption::Refresh => VOption::Refresh {
                spec: CoinSpec::new(vec![Denomination {
                    count: 1,
                    value: amount,
                }])
                .map_err(|e| ApiError::internal("coin spec", &e))?,
            },
            CollectOption::Redeem { bank_account } => VOption::Redeem {
                bank_account: bank_account.clone(),
            },
            CollectOption::Aggregate => VOption::Aggregate,
        })
    }

    /// One payment attempt, blocking: journal, validate with the issuer,
    /// store, acknowledge. On failure, the journaled transaction (if any) is
    /// handed back so the next attempt re-sends it.
    fn collect(
        &self,
        attempt: &Attempt,
        send_coins: SendCoins,
    ) -> Result<(PaymentResult, Paid), (Option<TxRef>, ApiError)> {
        if let Some(tx) = attempt.pending.as_ref().map(|j| j.tx) {
            let entry = self.purse.entry(tx).map_err(|e| (None, purse_error(e)))?;
            let awaiting = awaiting_of(&entry).map_err(|e| (Some(tx), e))?;
            match self.finish(tx, &awaiting, &entry.last_sent) {
                Ok(outcome) => {
                    let result = awaiting.result_for_payer(&outcome, Some(&self.sk_py));
                    return Ok((result, Paid::ByJournaled));
                }
                Err(Unfinished::Kept(e)) => return Err((Some(tx), e)),
                // The journaled request (someone's earlier SendCoins) is
                // refused for good and gone: this attempt's SendCoins gets
                // its own validation now, rather than a refusal meant for
                // the other.
                Err(Unfinished::Dropped(_)) => {}
            }
        }
        let (tx, awaiting, message) = {
            let amount = attempt.payee.invoice_sent().amount;
            let option = self
                .v_option(&attempt.collect, amount)
                .map_err(|e| (None, e))?;
            let (awaiting, request) = attempt
                .payee
                .on_send_coins(self.suite, &self.pk_i, &self.sk_py, send_coins, option)
                .map_err(|e| {
                    (
                        None,
                        ApiError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            ErrorCode::Refused,
                            e.to_string(),
                        ),
                    )
                })?;
            let message = encode(&request);
            let secret =
                SessionSecret::from_state(&awaiting).map_err(|e| (None, purse_error(e)))?;
            let tx = self
                .purse
                .begin(NewTransaction {
                    kind: TxKind::Collect,
                    amount,
                    reserve: Vec::new(),
                    step: Step::Request,
                    to: Destination::Issuer,
                    message: message.clone(),
                    secrets: vec![secret],
                    context: attempt.tid.as_bytes().to_vec(),
                    now: Timestamp::now(),
                })
                .map_err(|e| (None, purse_error(e)))?;
            (tx, awaiting, message)
        };
        let outcome = self.finish(tx, &awaiting, &message).map_err(|e| match e {
            Unfinished::Kept(e) => (Some(tx), e),
            Unfinished::Dropped(e) => (None, e),
        })?;
        let result = awaiting.result_for_payer(&outcome, Some(&self.sk_py));
        Ok((result, Paid::ByThisAttempt))
    }

    /// Sends the journaled ValidationRequest, checks and stores the answer,
    /// acknowledges new coins. A request the issuer refuses outright (it
    /// does not open, its coins envelope is corrupt, ...: a 4xx that is not
    /// "retry") committed nothing and never will, so it leaves the journal:
    /// re-sending it would only fail again, and would block the order for
    /// the honest payer whose SendCoins comes next.
    fn finish(
        &self,
        tx: TxRef,
        awaiting: &PayeeAwaitingIssuance,
        message: &[u8],
    ) -> Result<PayeeOutcome, Unfinished> {
        let issuance: PaymentIssuance1 = match self
            .post_payment(|http| http.post_encoded("/v1/validate", message))
        {
            Ok(issuance) => issuance,
            Err(e) if refused_for_good(&e) => {
                self.purse
                    .refuse(
                        tx,
                        Refusal {
                            bad: Vec::new(),
                            statement: Vec::new(),
                        },
                    )
                    .map_err(|e| Unfinished::Kept(purse_error(e)))?;
                tracing::info!(%tx, error = %e, "the issuer refused a collection; dropped from the journal");
                return Err(Unfinished::Dropped(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorCode::Refused,
                    format!("the issuer refused this payment: {e}"),
                )));
            }
            Err(e) => return Err(Unfinished::Kept(issuer_unreachable(&e))),
        };
        self.finish_answer(tx, awaiting, &issuance)
            .map_err(Unfinished::Kept)
    }

    /// Checks and stores the issuer's answer, acknowledges new coins.
    fn finish_answer(
        &self,
        tx: TxRef,
        awaiting: &PayeeAwaitingIssuance,
        issuance: &PaymentIssuance1,
    ) -> Result<PayeeOutcome, ApiError> {
        let outcome = awaiting
            .on_issuance1(&self.sk_py, issuance)
            .map_err(|e| issuer_unreachable(&format!("answer does not check: {e}")))?;
        match &outcome {
            PayeeOutcome::Coins { coins, ack } => {
                let ack_bytes = encode(ack);
                self.purse
                    .complete(
                        tx,
                        Completion {
                            received: coins.clone(),
                            acknowledge: Some(ack_bytes.clone()),
                            ..Completion::default()
                        },
                    )
                    .map_err(purse_error)?;
                self.deliver_ack(tx, &ack_bytes);
            }
            PayeeOutcome::Receipt(_) => {
                self.purse
                    .complete(tx, Completion::default())
                    .map_err(purse_error)?;
            }
            PayeeOutcome::Rejected(reject) => {
                self.purse
                    .refuse(
                        tx,
                        Refusal {
                            bad: Vec::new(),
                            statement: encode(reject),
                        },
                    )
                    .map_err(purse_error)?;
            }
        }
        Ok(outcome)
    }

    /// Issuance2; on failure it stays journaled and is re-sent at the next
    /// start (the coins are already ours either way). An ack the issuer
    /// refuses for good (its ack session expired, or a crash lost it) closes
    /// the entry: re-sending it could only be refused again.
    fn deliver_ack(&self, tx: TxRef, ack: &[u8]) {
        match self.post_payment(|http| http.post_encoded_ack("/v1/validate/ack", ack)) {
            Ok(()) => {
                if let Err(e) = self.purse.close(tx) {
                    tracing::warn!(%tx, error = %e, "could not close an acknowledged collection");
                }
            }
            Err(e) if e.refuses_the_bytes() => {
                tracing::info!(%tx, error = %e, "the issuer refused the ack for good; the coins are stored");
                if let Err(e) = self.purse.close(tx) {
                    tracing::warn!(%tx, error = %e, "could not close a collection");
                }
            }
            Err(e) => tracing::warn!(%tx, error = %e, "ack not delivered; kept in the journal"),
        }
    }

    /// Re-sends the journaled validation of every open order whose issuer
    /// answer was lost, each order held `Paying` meanwhile (a payer's
    /// retry is told to retry), and records how it ended as a payment
    /// attempt would: paid (coins stored, acknowledged), open again after
    /// a refusal, or still pending.
    fn retry_pending_collections(&self) {
        let now = Instant::now();
        let due: Vec<(PaymentTid, Journaled)> = {
            let mut orders = lock(&self.orders);
            let mut due = Vec::new();
            for (tid, order) in orders.by_tid.iter_mut() {
                if let OrderStatus::Open { pending } = &mut order.status
                    && pending.as_ref().is_some_and(|j| j.next_retry <= now)
                    && let Some(journaled) = pending.take()
                {
                    order.status = OrderStatus::Paying;
                    due.push((*tid, journaled));
                }
            }
            due
        };
        for (tid, journaled) in due {
            let outcome = self
                .purse
                .entry(journaled.tx)
                .map_err(|e| Unfinished::Dropped(purse_error(e)))
                .and_then(|entry| {
                    let awaiting = awaiting_of(&entry).map_err(Unfinished::Kept)?;
                    self.finish(journaled.tx, &awaiting, &entry.last_sent)
                        .map(|outcome| awaiting.result_for_payer(&outcome, Some(&self.sk_py)))
                });
            let mut orders = lock(&self.orders);
            let status = match outcome {
                Ok(result @ PaymentResult::Paid(_)) => {
                    tracing::info!(tx = %journaled.tx, "a journaled collection was answered on retry");
                    orders.n_paid_total += 1;
                    OrderStatus::Paid {
                        send_coins: journaled.send_coins,
                        result,
                    }
                }
                Ok(PaymentResult::Rejected(_)) => {
                    orders.n_rejected_total += 1;
                    OrderStatus::Open { pending: None }
                }
                Err(Unfinished::Kept(_)) => OrderStatus::Open {
                    pending: Some(journaled.unanswered()),
                },
                Err(Unfinished::Dropped(_)) => OrderStatus::Open { pending: None },
            };
            if let Some(order) = orders.by_tid.get_mut(&tid) {
                order.status = status;
            }
        }
    }

    /// Finishes collections an earlier run left in the journal: re-sends
    /// each recorded request or ack (the issuer answers repeats as it did
    /// the first time). One the issuer does not answer yet is kept for the
    /// retry thread ([`Merchant::retry_leftover_collections`]).
    fn resume_collections(&self) {
        let entries = match self.purse.in_flight() {
            Ok(entries) => entries,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the purse journal");
                return;
            }
        };
        for entry in entries.into_iter().filter(|e| e.kind == TxKind::Collect) {
            if !self.resume_collection(&entry) {
                ledger::sync::lock(&self.leftovers)
                    .push(Journaled::new(entry.tx, Vec::new()).unanswered());
            }
        }
    }

    /// Re-sends the leftover collections that are due; each still
    /// unanswered waits longer, up to [`MERCHANT_COLLECTION_RETRY_MS_MAX`].
    /// Only this thread touches them once the server runs: no order or
    /// payer attempt holds them.
    fn retry_leftover_collections(&self) {
        let now = Instant::now();
        let due: Vec<Journaled> = {
            let mut leftovers = ledger::sync::lock(&self.leftovers);
            let (due, waiting) = std::mem::take(&mut *leftovers)
                .into_iter()
                .partition(|j| j.next_retry <= now);
            *leftovers = waiting;
            due
        };
        for journaled in due {
            let finished = match self.purse.entry(journaled.tx) {
                Ok(entry) => self.resume_collection(&entry),
                // Gone from the journal (closed): nothing left to send.
                Err(purse::PurseError::UnknownTransaction(_)) => true,
                Err(e) => {
                    tracing::warn!(tx = %journaled.tx, error = %e, "cannot read a journaled collection");
                    false
                }
            };
            if !finished {
                ledger::sync::lock(&self.leftovers).push(journaled.unanswered());
            }
        }
    }

    /// Re-sends one journaled collection's request or ack; whether it is
    /// done with (answered, or refused for good).
    fn resume_collection(&self, entry: &JournalEntry) -> bool {
        let tx = entry.tx;
        if entry.is_settled() {
            self.deliver_ack(tx, &entry.last_sent);
            return matches!(
                self.purse.entry(tx),
                Err(purse::PurseError::UnknownTransaction(_))
            );
        }
        let resumed = awaiting_of(entry)
            .map_err(Unfinished::Kept)
            .and_then(|awaiting| self.finish(tx, &awaiting, &entry.last_sent));
        match resumed {
            Ok(_) => {
                tracing::info!(%tx, "resumed a collection");
                true
            }
            Err(Unfinished::Kept(e)) => {
                tracing::warn!(%tx, error = %e, "collection still unfinished");
                false
            }
            Err(Unfinished::Dropped(e)) => {
                tracing::info!(%tx, error = %e, "collection refused by the issuer");
                true
            }
        }
    }
}

/// Whose SendCoins an attempt's answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Paid {
    /// The order's journaled validation, re-sent first: the SendCoins it
    /// was built for.
    ByJournaled,
    /// The SendCoins this attempt posted.
    ByThisAttempt,
}

/// How a payment attempt leaves its order. A paid order keeps the bytes
/// of the SendCoins that paid it (a retry of exactly those is answered
/// again, anything else is "already paid"), so when the journaled
/// validation paid it, they are that validation's SendCoins, not the
/// bytes this attempt posted: otherwise a stranger's post while an
/// answer was lost would take the receipt, and the payer's own retry
/// would be refused, reclaim its coins and be told they are spent. A
/// validation still unanswered stays journaled with the SendCoins it was
/// built for.
fn attempt_end(
    pending: Option<Journaled>,
    bytes: Vec<u8>,
    outcome: &Result<(PaymentResult, Paid), (Option<TxRef>, ApiError)>,
) -> OrderStatus {
    match outcome {
        Ok((result @ PaymentResult::Paid(_), paid)) => OrderStatus::Paid {
            send_coins: match (paid, pending) {
                (Paid::ByJournaled, Some(journaled)) => journaled.send_coins,
                _ => bytes,
            },
            result: result.clone(),
        },
        Ok((PaymentResult::Rejected(_), _)) | Err((None, _)) => OrderStatus::Open { pending: None },
        Err((Some(tx), _)) => OrderStatus::Open {
            pending: Some(match pending {
                Some(journaled) if journaled.tx == *tx => journaled.unanswered(),
                _ => Journaled::new(*tx, bytes),
            }),
        },
    }
}

/// Why a journaled collection did not finish, and whether it stays
/// journaled.
enum Unfinished {
    /// The issuer may still answer it (no answer, busy, an answer that did
    /// not check): kept, re-sent by the next attempt and at start.
    Kept(ApiError),
    /// The issuer refused it for good: nothing was committed; dropped.
    Dropped(ApiError),
}

/// Whether the issuer's error says the request's own bytes are refused
/// (malformed, too large, a validation that does not open or check:
/// 400, 413, 415, 422), so that re-sending them can only be refused again
/// and nothing was committed (the issuer checks them before its replay
/// check). Everything else may hide a committed validation whose coins the
/// merchant is owed: "retry" answers (busy, in flight, a body that timed
/// out), 5xx, lost answers, and refusals of who the merchant is (401,
/// 403: not registered, suspended, not enrolled), which a later answer may
/// lift.
fn refused_for_good(e: &ClientError) -> bool {
    e.refuses_the_bytes()
}

fn awaiting_of(entry: &JournalEntry) -> Result<PayeeAwaitingIssuance, ApiError> {
    entry
        .secrets
        .first()
        .ok_or_else(|| ApiError::internal("journal", &"collection without its session"))?
        .to_state()
        .map_err(purse_error)
}

struct MerchantMetrics(Arc<Merchant>);

impl MetricsSource for MerchantMetrics {
    fn render(&self, out: &mut String) {
        let (n_open, n_paid, n_rejected) = {
            let orders = lock(&self.0.orders);
            (
                orders.n_open(),
                orders.n_paid_total,
                orders.n_rejected_total,
            )
        };
        gauge(
            out,
            "vc_merchant_orders_open",
            "Orders invoiced and not yet paid.",
            n_open as f64,
        );
        counter(
            out,
            "vc_merchant_orders_paid_total",
            "Orders paid since start.",
            n_paid as f64,
        );
        counter(
            out,
            "vc_merchant_payments_rejected_total",
            "Payments the issuer rejected since start.",
            n_rejected as f64,
        );
        match self.0.purse.balance().map(|b| b.holdings()) {
            Ok(Ok(holdings)) => gauge(
                out,
                "vc_merchant_purse_holdings_minor",
                "Value of the coins in the merchant's purse (minor units).",
                holdings.minor_units() as f64,
            ),
            _ => tracing::warn!("purse balance unreadable for metrics"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn order_ids_are_32_hex_digits_and_anything_else_is_an_unknown_order() {
        let tid = PaymentTid::random();
        assert_eq!(parse_tid(&tid.to_string()).expect("parses"), tid);
        let signed = format!("+f{}", &tid.to_string()[2..]);
        for bad in [
            "",
            "zz",
            &"g".repeat(32),
            &"0".repeat(31),
            &"é".repeat(16),
            &signed,
        ] {
            let e = parse_tid(bad).expect_err("refused");
            assert_eq!(e.code, ErrorCode::UnknownOrder, "{bad:?}");
        }
    }

    #[test]
    fn orders_poisoned_by_a_panicking_holder_are_never_served_again() {
        use std::panic::{AssertUnwindSafe, catch_unwind};
        let orders = Mutex::new(Orders::default());
        let holder = catch_unwind(AssertUnwindSafe(|| {
            let mut held = lock(&orders);
            held.n_paid_total += 1;
            panic!("a broken invariant while holding the orders (test)");
        }));
        assert!(holder.is_err());
        let next = catch_unwind(AssertUnwindSafe(|| lock(&orders).n_paid_total));
        let Err(why) = next else {
            panic!("a poisoned lock was recovered");
        };
        assert_eq!(
            why.downcast_ref::<String>().map(String::as_str),
            Some(ledger::sync::POISONED_LOCK)
        );
    }

    /// Two addresses of one IPv6 /64 (one host may hold all of them), or an
    /// IPv4 address and its IPv4-mapped IPv6 form, are one client: its
    /// open orders and its refused payments are counted together.
    #[test]
    fn one_ipv6_64_is_one_client_for_orders_and_refusals() {
        let ip = |s: &str| Some(Source::of(s.parse::<IpAddr>().expect("address")));
        let (a, b) = (ip("2001:db8::1"), ip("2001:db8::ffff:2"));
        let mut orders = Orders {
            limits: ClientLimits {
                orders_open_max: 1,
                pay_refusals_max: 2,
            },
            ..Orders::default()
        };
        let (payee, invoice) = PaymentPayee::invoice(
            ParticipantId::new("shop").expect("id"),
            ParticipantId::new("alice").expect("id"),
            ParticipantId::new("issuer").expect("id"),
            PDesc::new("a book".to_owned()).expect("desc"),
            Amount::from_minor(100),
            None,
        );
        orders.room_for(a).expect("a first order");
        orders.by_tid.insert(
            invoice.tid_py,
            Order {
                payee,
                collect: CollectOption::Aggregate,
                created: Instant::now(),
                status: OrderStatus::Open { pending: None },
                client: a,
            },
        );
        assert!(orders.room_for(b).is_err(), "the same /64 has its order");
        orders.room_for(ip("2001:db8:0:1::1")).expect("another /64");
        orders.refusals.record(a);
        orders.refusals.record(b);
        assert!(orders.refusals.check(ip("2001:db8::3"), 2).is_err());
        orders.refusals.record(ip("192.0.2.7"));
        orders.refusals.record(ip("192.0.2.7"));
        assert!(orders.refusals.check(ip("::ffff:192.0.2.7"), 2).is_err());
    }

    /// The journaled validation of S1 paid the order during an attempt
    /// that posted S2: the order is paid by S1 (the payer's retry of S1 gets
    /// its receipt; S2 again is "already paid"). Still unanswered, it stays
    /// journaled with S1 and counts the unanswered re-send.
    #[test]
    fn an_order_paid_by_its_journaled_validation_keeps_that_send_coins() {
        let tx = TxRef::from_bytes([1; 16]);
        let s1 = b"S1".to_vec();
        let s2 = b"S2".to_vec();
        let paid = Ok((PaymentResult::Paid(None), Paid::ByJournaled));
        match attempt_end(Some(Journaled::new(tx, s1.clone())), s2.clone(), &paid) {
            OrderStatus::Paid { send_coins, .. } => assert_eq!(send_coins, s1),
            _ => panic!("not paid"),
        }
        let paid_now = Ok((PaymentResult::Paid(None), Paid::ByThisAttempt));
        match attempt_end(None, s2.clone(), &paid_now) {
            OrderStatus::Paid { send_coins, .. } => assert_eq!(send_coins, s2),
            _ => panic!("not paid"),
        }
        let lost = Err((Some(tx), ApiError::malformed("no answer (test)")));
        match attempt_end(Some(Journaled::new(tx, s1.clone())), s2.clone(), &lost) {
            OrderStatus::Open {
                pending: Some(journaled),
            } => {
                assert_eq!(journaled.send_coins, s1);
                assert_eq!(journaled.retries, 1);
            }
            _ => panic!("not kept"),
        }
        let other = TxRef::from_bytes([2; 16]);
        let lost_new = Err((Some(other), ApiError::malformed("no answer (test)")));
        match attempt_end(None, s2.clone(), &lost_new) {
            OrderStatus::Open {
                pending: Some(journaled),
            } => assert_eq!((journaled.tx, journaled.send_coins), (other, s2)),
            _ => panic!("not kept"),
        }
    }

    #[test]
    fn skus_are_url_safe_and_bounded() {
        assert!(is_valid_sku("book-1_a"));
        assert!(!is_valid_sku(""));
        assert!(!is_valid_sku("a/b"));
        assert!(!is_valid_sku("a b"));
        assert!(!is_valid_sku(&"a".repeat(SKU_BYTES_MAX + 1)));
    }
}

#[cfg(test)]
mod retry_tests {
    use super::*;

    #[test]
    fn collection_retries_keep_the_period_then_back_off_to_the_most() {
        let period = Duration::from_millis(MERCHANT_COLLECTION_RETRY_MS);
        for retries in 0..=MERCHANT_COLLECTION_RETRIES_AT_PERIOD {
            assert_eq!(collection_retry_wait(retries), period);
        }
        let after = MERCHANT_COLLECTION_RETRIES_AT_PERIOD + 1;
        assert_eq!(collection_retry_wait(after), 2 * period);
        assert_eq!(collection_retry_wait(after + 1), 4 * period);
        let most = Duration::from_millis(MERCHANT_COLLECTION_RETRY_MS_MAX);
        assert_eq!(collection_retry_wait(after + 10), most);
        assert_eq!(collection_retry_wait(u32::MAX), most);
    }
}
