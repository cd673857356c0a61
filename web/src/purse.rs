//! The purse's pages, served on the user's own machine by
//! `varietycash purse ui`: the home page (balance, coins by epoch and
//! expiry, transactions under way with their steps, history, and the forms
//! to buy, pay, refresh and refund), the page that shows an invoice and
//! asks before paying it, and the receipt.
//!
//! Every form that changes something posts a `csrf` field the server
//! checks against the session's token.

use maud::{Markup, html};

use crate::layout::{Page, page};

const SITE: &str = "VarietyCash purse";

/// The purse's money, formatted by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BalanceView {
    pub available: String,
    pub pending: String,
    pub bad: String,
    pub n_available: usize,
    pub n_pending: usize,
    pub n_bad: usize,
}

/// Coins of one value, epoch, expiry and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoinGroup {
    pub epoch: u32,
    pub expiry: String,
    pub value: String,
    pub count: usize,
    pub state: String,
}

/// The steps of a flow, in order, and how many are done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub steps: Vec<String>,
    pub done: usize,
}

/// A transaction under way (journaled, not closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlightView {
    pub kind: String,
    pub amount: String,
    pub progress: Progress,
}

/// A closed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub at: String,
    pub kind: String,
    pub value_out: String,
    pub value_in: String,
    pub holdings_after: String,
    pub refused: bool,
}

/// A payment made from this page, with the merchant's verified receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptView {
    pub merchant: String,
    pub item: String,
    pub amount: String,
    pub order: String,
    /// The order's page at the shop (status and the shop's copy of the receipt).
    pub order_url: String,
    /// What was checked, in words.
    pub proof: String,
}

/// Everything the home page shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeView {
    pub participant: String,
    pub issuer_url: String,
    pub csrf: String,
    pub balance: BalanceView,
    pub coins: Vec<CoinGroup>,
    pub in_flight: Vec<InFlightView>,
    /// An operation started from this page that has not ended yet.
    pub busy: Option<String>,
    /// What the last operation did (or why it failed).
    pub notice: Option<(bool, String)>,
    pub receipts: Vec<ReceiptView>,
    pub history: Vec<HistoryRow>,
    /// The account `buy` debits unless the form names another.
    pub default_account: String,
}

/// The home page. While something is under way it reloads itself every
/// second, so the purchase's steps show as they pass.
pub fn home(view: &HomeView) -> Page {
    let refreshing = view.busy.is_some() || !view.in_flight.is_empty();
    let body = html! {
        @if refreshing {
            meta http-equiv="refresh" content="1";
        }
        p { "Purse of " strong #participant { (view.participant) } ", issuer " code { (view.issuer_url) } }
        @if let Some((ok, text)) = &view.notice {
            p role="status" #notice class={"card " (if *ok { "ok" } else { "bad" })} { (text) }
        }
        @if let Some(busy) = &view.busy {
            p.card role="status" #busy { (busy) "…" }
        }
        section aria-labelledby="balance-h" {
            h2 #balance-h { "Balance" }
            div.figures {
                div.card { div.label { "Available" } div.big #available { (view.balance.available) }
                    div.label { (view.balance.n_available) " coin(s)" } }
                div.card { div.label { "Pending (in transactions under way)" } div.big #pending { (view.balance.pending) }
                    div.label { (view.balance.n_pending) " coin(s)" } }
                div.card { div.label { "Bad (refused by the issuer)" } div.big #bad { (view.balance.bad) }
                    div.label { (view.balance.n_bad) " coin(s)" } }
            }
        }
        @if !view.in_flight.is_empty() {
            section aria-labelledby="flight-h" {
                h2 #flight-h { "Under way" }
                @for t in &view.in_flight {
                    div.card {
                        strong { (t.kind) " " (t.amount) }
                        (progress(&t.progress))
                    }
                }
            }
        }
        section aria-labelledby="pay-h" {
            h2 #pay-h { "Pay" }
            form method="get" action="/pay" {
                label for="invoice" { "Invoice address (a shop's pay link)" }
                input #invoice type="url" name="invoice" required
                    placeholder="https://shop.example/item/book/invoice";
                button type="submit" { "Show the invoice" }
            }
            form method="get" action="/visit" {
                label for="shop" { "Visit a shop (its pay buttons then open here)" }
                input #shop type="url" name="shop" required placeholder="https://shop.example/";
                button.secondary type="submit" { "Open the shop" }
            }
        }
        section aria-labelledby="buy-h" {
            h2 #buy-h { "Buy coins" }
            form method="post" action="/buy" {
                input type="hidden" name="csrf" value=(view.csrf);
                label for="spec" { "Coins (COUNT x VALUE, comma separated)" }
                input #spec type="text" name="spec" required placeholder="4x2.50,1x1.00";
                label for="account" { "Bank account debited" }
                input #account type="text" name="account" value=(view.default_account);
                button #buy type="submit" { "Buy" }
            }
            p.hint { "A purchase goes WRequest1 → WRequest2 → WRequest3 → Issuance1 → Issuance2; its steps show above while it runs." }
        }
        section aria-labelledby="coins-h" {
            h2 #coins-h { "Coins" }
            @if view.coins.is_empty() {
                p { "No coins." }
            } @else {
                table #coins {
                    caption.hint { "By key epoch and expiry" }
                    thead { tr { th scope="col" { "Epoch" } th scope="col" { "Expires" } th.num scope="col" { "Value" }
                        th.num scope="col" { "Count" } th scope="col" { "State" } } }
                    tbody {
                        @for c in &view.coins {
                            tr { td { (c.epoch) } td { (c.expiry) } td.num { (c.value) } td.num { (c.count) } td { (c.state) } }
                        }
                    }
                }
            }
        }
        section aria-labelledby="upkeep-h" {
            h2 #upkeep-h { "Upkeep" }
            (post_button("/refresh", &view.csrf, "Refresh expired coins", "refresh"))
            (post_button("/resume", &view.csrf, "Finish transactions under way", "resume"))
            (post_button("/refund", &view.csrf, "Refund (after restoring a lost purse)", "refund"))
            p.hint { "Back up the purse's keys from the command line: " code { "varietycash purse backup FILE" } }
        }
        @if !view.receipts.is_empty() {
            section #receipts aria-labelledby="receipts-h" {
                h2 #receipts-h { "Receipts" }
                @for r in &view.receipts { (receipt(r)) }
            }
        }
        section aria-labelledby="history-h" {
            h2 #history-h { "History" }
            @if view.history.is_empty() {
                p { "Nothing yet." }
            } @else {
                table #history {
                    thead { tr { th scope="col" { "When" } th scope="col" { "What" } th.num scope="col" { "Out" }
                        th.num scope="col" { "In" } th.num scope="col" { "Holdings after" } } }
                    tbody {
                        @for h in &view.history {
                            tr {
                                td { (h.at) }
                                td { (h.kind) @if h.refused { " " span.bad { "(refused)" } } }
                                td.num { (h.value_out) } td.num { (h.value_in) } td.num { (h.holdings_after) }
                            }
                        }
                    }
                }
            }
        }
    };
    page(SITE, "Your purse", &[], body)
}

fn post_button(action: &str, csrf: &str, label: &str, id: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            input type="hidden" name="csrf" value=(csrf);
            button.secondary id=(id) type="submit" { (label) }
        }
    }
}

fn progress(p: &Progress) -> Markup {
    html! {
        ol.steps aria-label="Steps" {
            @for (i, step) in p.steps.iter().enumerate() {
                @if i < p.done {
                    li.done { "✓ " (step) }
                } @else if i == p.done {
                    li aria-current="step" { "… " (step) }
                } @else {
                    li.todo { (step) }
                }
            }
        }
    }
}

fn receipt(r: &ReceiptView) -> Markup {
    html! {
        div.card.receipt {
            p { strong { "Paid " (r.amount) } " to " strong.merchant { (r.merchant) } " for " strong.item { (r.item) } }
            p.hint { "Order " span.mono { (r.order) } }
            p.ok { (r.proof) }
            p { a href=(r.order_url) rel="noreferrer" { "The order at the shop" } }
        }
    }
}

/// An invoice fetched for the user to look at before paying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmView {
    pub merchant: String,
    pub item: String,
    pub amount: String,
    pub order: String,
    pub shop_url: String,
    /// Whether the merchant signed the invoice under a certificate of the
    /// issuer (an unsigned one is not paid).
    pub signed: bool,
    pub available: String,
    /// Names this invoice among those shown (the server keeps it).
    pub confirm_id: String,
    pub csrf: String,
}

/// The invoice, and a question: pay it?
pub fn confirm(view: &ConfirmView) -> Page {
    let body = html! {
        div.card #invoice-card {
            table {
                tr { th scope="row" { "Merchant" } td #merchant { (view.merchant) } }
                tr { th scope="row" { "Item" } td #item { (view.item) } }
                tr { th scope="row" { "Amount" } td #amount.big { (view.amount) } }
                tr { th scope="row" { "Order" } td.mono { (view.order) } }
                tr { th scope="row" { "Shop" } td.mono { (view.shop_url) } }
                tr { th scope="row" { "Signed" } td {
                    @if view.signed { span.ok { "yes: by the merchant, under its certificate from the issuer" } }
                    @else { span.bad { "no: this invoice will not be paid" } }
                } }
            }
        }
        p { "Available in the purse: " (view.available) }
        form method="post" action="/pay/confirm" {
            input type="hidden" name="csrf" value=(view.csrf);
            input type="hidden" name="confirm" value=(view.confirm_id);
            button #confirm type="submit" disabled[!view.signed] { "Pay " (view.amount) " to " (view.merchant) }
            a.button.secondary href="/" { "Cancel" }
        }
    };
    page(SITE, "Pay this invoice?", &[], body)
}

/// After a payment: the merchant's receipt, checked.
pub fn paid(receipt_view: &ReceiptView, available: &str) -> Page {
    let body = html! {
        p role="status" #paid.ok { "Paid. The merchant's receipt verified." }
        (receipt(receipt_view))
        p { "Available now: " strong #available { (available) } }
        p { a href="/" { "Back to the purse" } }
    };
    page(SITE, "Receipt", &[], body)
}

/// On the way to a shop: the form that asked for it may only lead back to
/// the purse (the pages' `form-action 'self'`), so this page goes on by
/// itself, with a link for when it does not.
pub fn opening_shop(shop_url: &str) -> Page {
    let refresh = format!("0;url={shop_url}");
    let body = html! {
        meta http-equiv="refresh" content=(refresh);
        p { "Opening " a #shop-link href=(shop_url) rel="noreferrer" { (shop_url) } "…" }
    };
    page(SITE, "Opening the shop", &[], body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home_view(text: &str) -> HomeView {
        HomeView {
            participant: text.into(),
            issuer_url: text.into(),
            csrf: "\"><script>".into(),
            balance: BalanceView::default(),
            coins: vec![CoinGroup {
                epoch: 1,
                expiry: text.into(),
                value: text.into(),
                count: 2,
                state: text.into(),
            }],
            in_flight: vec![InFlightView {
                kind: text.into(),
                amount: text.into(),
                progress: Progress {
                    steps: vec![text.into(), text.into()],
                    done: 1,
                },
            }],
            busy: Some(text.into()),
            notice: Some((false, text.into())),
            receipts: vec![ReceiptView {
                merchant: text.into(),
                item: text.into(),
                amount: text.into(),
                order: text.into(),
                order_url: "javascript:alert(1)\"".into(),
                proof: text.into(),
            }],
            history: vec![],
            default_account: text.into(),
        }
    }

    #[test]
    fn no_text_of_the_purse_reaches_the_page_unescaped() {
        let html = home(&home_view("<script>alert(1)</script>")).into_string();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("\"><script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn an_unsigned_invoice_cannot_be_confirmed() {
        let view = ConfirmView {
            merchant: "shop".into(),
            item: "<i>book</i>".into(),
            amount: "5.00".into(),
            order: "00".into(),
            shop_url: "https://shop".into(),
            signed: false,
            available: "10.00".into(),
            confirm_id: "c".into(),
            csrf: "t".into(),
        };
        let html = confirm(&view).into_string();
        assert!(html.contains("disabled"), "{html}");
        assert!(html.contains("&lt;i&gt;book"));
    }
}
