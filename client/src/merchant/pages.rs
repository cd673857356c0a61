//! The merchant server's pages for browsers: the catalog (`GET /`), the
//! shop's script (`GET /assets/shop.js`), an order's status and receipt
//! (`GET /order/{tid}`), and the merchant's own page (`GET /merchant`,
//! reached through the one-time link `merchant serve` prints).
//!
//! An order's page tells whoever knows its random 128-bit `TID_PY` what the
//! invoice already told them, and whether it is paid: the same people the
//! order's other routes answer. The merchant's page (takings) answers only
//! the session cookie handed out for the one-time link: HttpOnly, Secure,
//! SameSite=Strict, Path=/merchant.

use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use protocol::wire::payment::PaymentResult;
use web_pages::shop::{CatalogView, ItemView, MerchantView, OrderState, OrderView};

use super::{Merchant, OrderStatus, lock, parse_tid};
use crate::media::INVOICE;
use crate::web_session::{
    WebSecret, cookie, page_response, query_param, script_response, see_other_with_cookie,
};

const OWNER_COOKIE: &str = "vc_merchant_session";

/// The merchant's own access to its page: a one-time login secret, then
/// a session cookie.
pub(super) struct Owner {
    login: Mutex<Option<WebSecret>>,
    session: Mutex<Option<WebSecret>>,
}

impl Owner {
    /// A fresh login secret (what the printed link carries).
    pub(super) fn new() -> Result<(Owner, String), getrandom::Error> {
        let login = WebSecret::random()?;
        let token = login.expose().to_owned();
        Ok((
            Owner {
                login: Mutex::new(Some(login)),
                session: Mutex::new(None),
            },
            token,
        ))
    }

    fn is_owner(&self, req: &HttpRequest) -> bool {
        let Some(presented) = cookie(req, OWNER_COOKIE) else {
            return false;
        };
        self.session
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|s| s.matches(presented))
    }
}

fn not_found(shop: &str) -> HttpResponse {
    page_response(
        StatusCode::NOT_FOUND,
        web_pages::message_page(
            shop,
            "No such order",
            "No such order (or its invoice expired).",
            Some(("/", "Back to the shop")),
        ),
    )
}

pub(super) async fn shop_page(merchant: web::Data<Arc<Merchant>>) -> HttpResponse {
    let view = CatalogView {
        shop_name: merchant.shop_name.clone(),
        invoice_media_type: INVOICE.to_owned(),
        items: merchant
            .catalog
            .values()
            .map(|item| ItemView {
                sku: item.sku.clone(),
                title: item.title.clone(),
                price: item.price.to_string(),
            })
            .collect(),
    };
    page_response(StatusCode::OK, web_pages::shop::catalog(&view))
}

pub(super) async fn shop_script() -> HttpResponse {
    script_response(web_pages::shop::SCRIPT)
}

pub(super) async fn order_page(
    path: web::Path<String>,
    merchant: web::Data<Arc<Merchant>>,
) -> HttpResponse {
    let Ok(tid) = parse_tid(&path.into_inner()) else {
        return not_found(&merchant.shop_name);
    };
    let view = {
        let orders = lock(&merchant.orders);
        let Some(order) = orders.by_tid.get(&tid) else {
            return not_found(&merchant.shop_name);
        };
        let invoice = order.payee.invoice_sent();
        OrderView {
            shop_name: merchant.shop_name.clone(),
            order: tid.to_string(),
            item: invoice.p_desc.as_str().to_owned(),
            amount: invoice.amount.to_string(),
            merchant: invoice.id_py.as_str().to_owned(),
            state: match &order.status {
                OrderStatus::Open { .. } => OrderState::Open,
                OrderStatus::Paying => OrderState::Paying,
                OrderStatus::Paid { result, .. } => OrderState::Paid {
                    receipt: match result {
                        PaymentResult::Paid(Some(receipt)) => {
                            Some(hex::encode(receipt.signature.as_bytes()))
                        }
                        _ => None,
                    },
                },
            },
        }
    };
    page_response(StatusCode::OK, web_pages::shop::order(&view))
}

pub(super) async fn owner_login(
    req: HttpRequest,
    merchant: web::Data<Arc<Merchant>>,
) -> HttpResponse {
    let owner = &merchant.owner;
    let presented = query_param(&req, "token").unwrap_or_default();
    {
        let mut login = owner.login.lock().unwrap_or_else(|p| p.into_inner());
        match login.as_ref() {
            Some(secret) if secret.matches(&presented) => *login = None,
            _ => return refused(&merchant.shop_name),
        }
    }
    let Ok(session) = WebSecret::random() else {
        return refused(&merchant.shop_name);
    };
    let value = format!(
        "{OWNER_COOKIE}={}; Path=/merchant; HttpOnly; Secure; SameSite=Strict",
        session.expose()
    );
    *owner.session.lock().unwrap_or_else(|p| p.into_inner()) = Some(session);
    see_other_with_cookie("/merchant", value)
}

fn refused(shop: &str) -> HttpResponse {
    page_response(
        StatusCode::FORBIDDEN,
        web_pages::message_page(
            shop,
            "Not signed in",
            "Open this page with the link `merchant serve` printed.",
            None,
        ),
    )
}

pub(super) async fn owner_page(
    req: HttpRequest,
    merchant: web::Data<Arc<Merchant>>,
) -> HttpResponse {
    if !merchant.owner.is_owner(&req) {
        return refused(&merchant.shop_name);
    }
    let (orders_open, orders_paid, payments_rejected) = {
        let orders = lock(&merchant.orders);
        (
            orders.n_open(),
            orders.n_paid_total,
            orders.n_rejected_total,
        )
    };
    let worker = merchant.clone();
    let balance = web::block(move || worker.purse.balance()).await;
    let (holdings, n_coins) = match balance {
        Ok(Ok(b)) => (
            b.holdings().map(|h| h.to_string()).unwrap_or_default(),
            b.n_available + b.n_pending,
        ),
        _ => ("unreadable".to_owned(), 0),
    };
    let view = MerchantView {
        shop_name: merchant.shop_name.clone(),
        merchant: merchant.id_py.as_str().to_owned(),
        holdings,
        n_coins,
        orders_open,
        orders_paid,
        payments_rejected,
    };
    page_response(StatusCode::OK, web_pages::shop::merchant(&view))
}
