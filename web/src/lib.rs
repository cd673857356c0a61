//! The web pages of VarietyCash: the purse a user drives from a browser,
//! the merchant's shop, and the issuer's dashboard, rendered to HTML.
//!
//! Every page is a pure function from a view (plain data: strings the
//! caller formatted, numbers) to a [`Page`]. Nothing here speaks HTTP,
//! opens a purse or holds a key: the gateway fills the views and serves
//! the pages. Text reaches the HTML only through `maud`, which escapes
//! every interpolated value; the only unescaped markup is this crate's
//! own (the stylesheet, the shop's script, SVG it builds from numbers).
//!
//! Pages load nothing from elsewhere: the stylesheet is inline, the one
//! script (the shop's hand-off to the purse, [`shop::SCRIPT`]) is served by
//! the page's own server, and charts are inline SVG. Every control has a
//! label and works with the keyboard (plain links, buttons and forms).
//!
//! | module | pages |
//! |---|---|
//! | [`purse`] | the purse: balance, coins, buy, pay (confirm, receipt), history |
//! | [`shop`] | the shop's catalog, an order's status and receipt, the merchant's own page |
//! | [`dashboard`] | the issuer's dashboard: money, epochs, purchases, head, charts |
//! | [`chart`] | line charts as inline SVG |

pub mod chart;
pub mod dashboard;
mod layout;
pub mod purse;
pub mod shop;

pub use layout::{CONTENT_SECURITY_POLICY, Page, message_page};
