//! The issuer's dashboard: the money (outstanding e-money, aggregated
//! balances, card float, real money held), issued and spent per key epoch,
//! purchases waiting for the bank, the last signed head and the log's
//! checkpoints, and charts of throughput and refusals over the last
//! minutes. Served only to an operator's session (the gateway checks it).

use maud::html;

use crate::chart::{Series, line_chart};
use crate::layout::{Page, page};

/// One key epoch's coins, formatted by the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochRow {
    pub epoch: u32,
    pub issued: String,
    pub n_issued: u64,
    pub spent: String,
    pub n_spent: u64,
    pub current: bool,
}

/// What the dashboard shows.
#[derive(Debug, Clone, PartialEq)]
pub struct DashboardView {
    pub issuer: String,
    pub outstanding: String,
    pub aggregates: String,
    pub card_float: String,
    pub real_held: String,
    pub unspent_coins: u64,
    pub epochs: Vec<EpochRow>,
    pub purchases_pending: u64,
    pub purchases_pending_amount: String,
    pub purchases_settled: u64,
    pub payments: u64,
    /// The last head the issuer signed and published, as published.
    pub signed_head: Option<String>,
    pub log_last_seq: u64,
    /// Sequence number of the last checkpoint record in the log.
    pub last_checkpoint_seq: Option<u64>,
    /// Records of the log read by the dashboard so far (it reads the log
    /// incrementally; below `log_last_seq` it is still catching up).
    pub log_read_seq: u64,
    /// Seconds per sample of the charts.
    pub sample_secs: u64,
    pub validations_per_sample: Vec<f64>,
    pub requests_per_sample: Vec<f64>,
    pub refusals_per_sample: Vec<f64>,
    /// When the session ends, in words.
    pub session_ends: String,
}

/// The dashboard page.
pub fn dashboard(view: &DashboardView) -> Page {
    let x_label = format!("one point per {} s, oldest left", view.sample_secs);
    let body = html! {
        p { "Issuer " strong #issuer { (view.issuer) } ". " a href="/dashboard" { "Refresh" } ". " span.hint { (view.session_ends) } }
        section aria-labelledby="money-h" {
            h2 #money-h { "Money" }
            div.figures {
                div.card { div.label { "Outstanding e-money" } div.big #outstanding { (view.outstanding) }
                    div.label { (view.unspent_coins) " unspent coin(s)" } }
                div.card { div.label { "Float: real money held" } div.big #float { (view.real_held) } }
                div.card { div.label { "Merchants' aggregated balances" } div.big { (view.aggregates) } }
                div.card { div.label { "Owed to card systems" } div.big { (view.card_float) } }
            }
        }
        section aria-labelledby="epochs-h" {
            h2 #epochs-h { "Issued and spent per key epoch" }
            table #epochs {
                thead { tr { th scope="col" { "Epoch" } th.num scope="col" { "Issued" } th.num scope="col" { "Coins" }
                    th.num scope="col" { "Spent" } th.num scope="col" { "Coins" } } }
                tbody {
                    @for e in &view.epochs {
                        tr {
                            td { (e.epoch) @if e.current { " (current)" } }
                            td.num { (e.issued) } td.num { (e.n_issued) } td.num { (e.spent) } td.num { (e.n_spent) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="activity-h" {
            h2 #activity-h { "Purchases and payments" }
            table {
                tr { th scope="row" { "Purchases waiting for the bank" } td.num #pending { (view.purchases_pending) } td.num { (view.purchases_pending_amount) } }
                tr { th scope="row" { "Purchases settled" } td.num #settled { (view.purchases_settled) } td {} }
                tr { th scope="row" { "Payments validated" } td.num #payments { (view.payments) } td {} }
            }
        }
        section aria-labelledby="log-h" {
            h2 #log-h { "Log" }
            table {
                tr { th scope="row" { "Last record" } td.num #log-seq { (view.log_last_seq) } }
                tr { th scope="row" { "Last checkpoint record" } td.num {
                    @match view.last_checkpoint_seq { Some(seq) => { (seq) } None => { "none yet" } } } }
                tr { th scope="row" { "Read by this dashboard" } td.num { (view.log_read_seq) } }
            }
            h3 { "Last signed head" }
            @match &view.signed_head {
                Some(text) => { pre.mono #signed-head { (text) } }
                None => { p { "The issuer has signed no head yet." } }
            }
        }
        section aria-labelledby="charts-h" {
            h2 #charts-h { "Over time" }
            (line_chart("throughput", "Throughput", &x_label, &[
                Series::new(0, "payments validated", view.validations_per_sample.clone()),
                Series::new(2, "requests answered", view.requests_per_sample.clone()),
            ]))
            (line_chart("refusals", "Refusals", &x_label, &[
                Series::new(1, "requests refused (4xx and 5xx)", view.refusals_per_sample.clone()),
            ]))
        }
    };
    page("VarietyCash issuer", "Dashboard", &[], body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_escapes_the_head_and_draws_two_charts() {
        let view = DashboardView {
            issuer: "<issuer>".into(),
            outstanding: "10.00".into(),
            aggregates: "0.00".into(),
            card_float: "0.00".into(),
            real_held: "10.00".into(),
            unspent_coins: 4,
            epochs: vec![EpochRow {
                epoch: 1,
                issued: "10.00".into(),
                n_issued: 4,
                spent: "0.00".into(),
                n_spent: 0,
                current: true,
            }],
            purchases_pending: 0,
            purchases_pending_amount: "0.00".into(),
            purchases_settled: 1,
            payments: 0,
            signed_head: Some("seq 3\n<hash>".into()),
            log_last_seq: 3,
            last_checkpoint_seq: Some(3),
            log_read_seq: 3,
            sample_secs: 5,
            validations_per_sample: vec![0.0, 1.0],
            requests_per_sample: vec![1.0, 2.0],
            refusals_per_sample: vec![0.0, 0.0],
            session_ends: "15 min".into(),
        };
        let html = dashboard(&view).into_string();
        assert!(html.contains("&lt;issuer&gt;") && html.contains("&lt;hash&gt;"));
        assert_eq!(html.matches("<svg").count(), 2);
    }
}
