//! The merchant's pages: the catalog with a pay button per item, an
//! order's status and receipt, and the merchant's own page (takings, and
//! how to cash out).
//!
//! A pay button hands the item's invoice address to the user's purse page
//! ([`SCRIPT`]): the purse's address (`http://127.0.0.1:PORT`, which
//! `purse ui` prints and which carries no secret) comes from the `purse`
//! query parameter the purse adds when it opens the shop, or from a field
//! on the page, and is kept in the shop's local storage. Only a loopback
//! `http` address is taken. Without the script the button is a link to
//! the invoice itself, under the invoice media type (the paper's way: the
//! browser hands the document to the purse registered for that type).

use maud::{Markup, html};

use crate::layout::{Page, page};

/// The path the shop's script is served at (by the merchant server).
pub const SCRIPT_PATH: &str = "/assets/shop.js";

/// The shop's script: takes the purse's address, and makes each pay
/// button open the purse's "pay this invoice" page.
pub const SCRIPT: &str = r#"// VarietyCash shop: hands an item's invoice address to the user's purse page.
(function () {
  "use strict";
  var KEY = "varietycash-purse";
  var LOOPBACK = /^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):[0-9]{1,5}$/;
  function purse() {
    var given = new URLSearchParams(window.location.search).get("purse");
    if (given && LOOPBACK.test(given)) { try { localStorage.setItem(KEY, given); } catch (e) {} return given; }
    try { var kept = localStorage.getItem(KEY); if (kept && LOOPBACK.test(kept)) { return kept; } } catch (e) {}
    return null;
  }
  function show(address) {
    var out = document.getElementById("purse-address");
    if (out) { out.textContent = address ? address : "none yet"; }
    var field = document.getElementById("purse-field");
    if (field && address) { field.value = address; }
  }
  document.addEventListener("DOMContentLoaded", function () {
    show(purse());
    var form = document.getElementById("purse-form");
    if (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var value = document.getElementById("purse-field").value.trim().replace(/\/+$/, "");
        var message = document.getElementById("purse-message");
        if (!LOOPBACK.test(value)) { message.textContent = "Not a purse address: http://127.0.0.1:PORT, as purse ui prints it."; return; }
        try { localStorage.setItem(KEY, value); } catch (e) {}
        message.textContent = "Saved.";
        show(value);
      });
    }
    var buttons = document.querySelectorAll("a[data-invoice]");
    for (var i = 0; i < buttons.length; i++) {
      buttons[i].addEventListener("click", function (event) {
        var address = purse();
        if (!address) { return; }
        event.preventDefault();
        var invoice = new URL(this.getAttribute("data-invoice"), window.location.href).href;
        window.location.href = address + "/pay?invoice=" + encodeURIComponent(invoice);
      });
    }
  });
})();
"#;

/// One item on sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemView {
    pub sku: String,
    pub title: String,
    pub price: String,
}

/// The catalog page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogView {
    pub shop_name: String,
    /// The media type of the invoice documents the pay links point to.
    pub invoice_media_type: String,
    pub items: Vec<ItemView>,
}

/// The shop's catalog. `sku`s are URL-safe (the merchant server checks
/// them at start), so they go into the links as they are.
pub fn catalog(view: &CatalogView) -> Page {
    let body = html! {
        p { "Pay with VarietyCash: each pay button hands the item's invoice to your purse, which shows it and asks you before paying." }
        table #items {
            thead { tr { th scope="col" { "Item" } th.num scope="col" { "Price" } th scope="col" { span.skip { "Pay" } } } }
            tbody {
                @for item in &view.items {
                    tr {
                        td.title { (item.title) }
                        td.num.price { (item.price) }
                        td {
                            @let invoice = format!("/item/{}/invoice", item.sku);
                            a.button id={"pay-" (item.sku)} href=(invoice) data-invoice=(invoice)
                                type=(view.invoice_media_type) aria-label={"Pay " (item.price) " for " (item.title)} {
                                "Pay with VarietyCash"
                            }
                        }
                    }
                }
            }
        }
        (purse_form())
    };
    page(&view.shop_name, &view.shop_name, &[SCRIPT_PATH], body)
}

fn purse_form() -> Markup {
    html! {
        section.card aria-labelledby="purse-h" {
            h2 #purse-h { "Your purse" }
            p { "Pay buttons open your purse at " strong #purse-address { "none yet" } "." }
            form #purse-form {
                label for="purse-field" { "Your purse's address (as " code { "varietycash purse ui" } " prints it, without the token)" }
                input #purse-field type="url" name="purse" placeholder="http://127.0.0.1:PORT";
                button.secondary type="submit" { "Use this purse" }
                p #purse-message role="status" {}
            }
        }
    }
}

/// Where an order stands, in words the page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderState {
    /// Invoiced, not paid.
    Open,
    /// A payment is being validated with the issuer.
    Paying,
    /// Paid; the receipt the merchant gave the payer (hex of its signature),
    /// if it signs receipts.
    Paid { receipt: Option<String> },
}

/// One order's page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderView {
    pub shop_name: String,
    pub order: String,
    pub item: String,
    pub amount: String,
    pub merchant: String,
    pub state: OrderState,
}

/// An order's status and, once paid, its receipt.
pub fn order(view: &OrderView) -> Page {
    let body = html! {
        div.card {
            table {
                tr { th scope="row" { "Order" } td.mono #order { (view.order) } }
                tr { th scope="row" { "Item" } td #item { (view.item) } }
                tr { th scope="row" { "Amount" } td #amount { (view.amount) } }
                tr { th scope="row" { "Status" } td #status {
                    @match &view.state {
                        OrderState::Open => { "awaiting payment" }
                        OrderState::Paying => { "payment being validated" }
                        OrderState::Paid { .. } => { span.ok { "paid" } }
                    }
                } }
            }
        }
        @if let OrderState::Paid { receipt } = &view.state {
            section.card #receipt aria-labelledby="receipt-h" {
                h2 #receipt-h { "Receipt" }
                p { (view.merchant) " received " (view.amount) " for " (view.item) ", validated by the issuer." }
                @if let Some(signature) = receipt {
                    p { "Signed by " (view.merchant) " over this order's commitment: " span.mono { (signature) } }
                }
            }
        }
        p { a href="/" { "Back to the shop" } }
    };
    page(&view.shop_name, "Your order", &[], body)
}

/// The merchant's own page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantView {
    pub shop_name: String,
    pub merchant: String,
    pub holdings: String,
    pub n_coins: usize,
    pub orders_open: usize,
    pub orders_paid: u64,
    pub payments_rejected: u64,
}

/// The merchant's takings, and how to cash out.
pub fn merchant(view: &MerchantView) -> Page {
    let body = html! {
        div.figures {
            div.card { div.label { "In the shop's purse" } div.big #holdings { (view.holdings) }
                div.label { (view.n_coins) " coin(s)" } }
            div.card { div.label { "Orders paid since start" } div.big #paid { (view.orders_paid) } }
            div.card { div.label { "Orders open" } div.big { (view.orders_open) } }
            div.card { div.label { "Payments the issuer refused" } div.big { (view.payments_rejected) } }
        }
        section aria-labelledby="cash-h" {
            h2 #cash-h { "Cash out the aggregated balance" }
            p { "The issuer keeps a balance for " (view.merchant) " of the payments collected with the aggregate option. "
                "Cashing it out pays it into the merchant's enrolled bank account, signed with the merchant's key, "
                "from the command line while this server is stopped (it holds the purse): " }
            pre.mono { "varietycash merchant cash-out --dir DIR [AMOUNT]" }
        }
    };
    page(&view.shop_name, "Takings", &[], body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_titles_and_the_shop_name_are_escaped() {
        let html = catalog(&CatalogView {
            shop_name: "<b>Shop</b>".into(),
            invoice_media_type: "application/vnd.varietycash.invoice".into(),
            items: vec![ItemView {
                sku: "book".into(),
                title: "\"><script>alert(1)</script>".into(),
                price: "5.00".into(),
            }],
        })
        .into_string();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<b>Shop"), "{html}");
        assert!(html.contains("data-invoice=\"/item/book/invoice\""));
        assert!(html.contains(SCRIPT_PATH));
    }

    #[test]
    fn a_paid_order_shows_its_receipt() {
        let html = order(&OrderView {
            shop_name: "Shop".into(),
            order: "ab".into(),
            item: "<book>".into(),
            amount: "5.00".into(),
            merchant: "shop".into(),
            state: OrderState::Paid {
                receipt: Some("00ff".into()),
            },
        })
        .into_string();
        assert!(html.contains("Receipt") && html.contains("00ff"));
        assert!(html.contains("&lt;book&gt;"));
    }
}
