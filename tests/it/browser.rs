//! VarietyCash in a real browser (Debian's chromium, driven through
//! chromedriver): a user opens the purse page `purse ui` printed, buys
//! coins and watches them arrive, opens a shop from the purse, presses an
//! item's pay button (the shop hands the invoice to the purse page), is
//! shown the merchant, item and amount and confirms, sees the merchant's
//! verified receipt, the order paid at the shop and the balance fallen by
//! the price; the operator opens the dashboard with a signed link and sees
//! the payment. A stranger without the session is refused, and the purse's
//! one-time link does not work twice. Every input of the pages is labelled
//! and every button and link named, and the payment is confirmed with the
//! keyboard. Screenshots of each page are kept in
//! target/browser-screenshots/ (and copied to docs/screenshots/ with
//! VC_UPDATE_SCREENSHOTS=1).
//!
//! Needs /usr/bin/chromium and /usr/bin/chromedriver (`apt-get install
//! chromium chromium-driver`; VC_CHROMIUM, VC_CHROMEDRIVER name others).
//! Without them the test says so and passes, except under CI=true, where
//! it fails.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use crate::util;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use util::process::{
    alice_enrolled, an_enrolled_shop, free_port, kill_hard, ok, serve_new_issuer, spawn,
    spawn_piped, terminate, wait_healthy,
};

fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium =
        PathBuf::from(std::env::var("VC_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()));
    let driver = PathBuf::from(
        std::env::var("VC_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into()),
    );
    if chromium.exists() && driver.exists() {
        return Some((chromium, driver));
    }
    let notice = format!(
        "browser test skipped: {} or {} is missing (apt-get install chromium chromium-driver)",
        chromium.display(),
        driver.display()
    );
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{notice}: CI must run it"
    );
    eprintln!("{notice}");
    None
}

fn screenshots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn screenshot(client: &Client, name: &str, for_docs: bool) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(screenshots_dir().join(format!("{name}.png")), &png).expect("write png");
    if for_docs && std::env::var("VC_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&docs).expect("docs/screenshots");
        std::fs::write(docs.join(format!("{name}.png")), &png).expect("write png");
    }
}

/// The text of element `id`, once it exists (the page may be loading).
async fn text_of(client: &Client, id: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(element) = client.find(Locator::Id(id)).await
            && let Ok(text) = element.text().await
        {
            return text;
        }
        assert!(Instant::now() < deadline, "no element #{id}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reloads `url` until element `id` reads `want`.
async fn wait_for_text(client: &Client, url: &str, id: &str, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        client.goto(url).await.expect("goto");
        if let Ok(element) = client.find(Locator::Id(id)).await
            && element.text().await.is_ok_and(|t| t.trim() == want)
        {
            return;
        }
        if Instant::now() > deadline {
            let page = client.source().await.unwrap_or_default();
            panic!("#{id} never read {want}:\n{page}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// A plain GET of `path` from the purse page without its cookie: the
/// status line.
fn status_of_stranger_get(port: u16, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

/// Every visible input of the page has a label, and every button and
/// link a name.
async fn assert_every_control_is_labelled(client: &Client) {
    let unlabelled = client
        .execute(
            "return Array.from(document.querySelectorAll('input:not([type=hidden]), button, a'))\
               .filter(e => e.tagName === 'INPUT' ? e.labels.length === 0\
                 : (e.textContent.trim() === '' && !e.getAttribute('aria-label')))\
               .map(e => e.outerHTML);",
            vec![],
        )
        .await
        .expect("script runs");
    assert_eq!(unlabelled, serde_json::json!([]), "unlabelled controls");
}

/// Reads the purse page's printed lines: its origin and one-time link.
fn purse_page_links(ui: &mut Child) -> (String, String) {
    let stdout = ui.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut origin = None;
    while let Some(Ok(line)) = lines.next() {
        if let Some(rest) = line.strip_prefix("purse page at ") {
            origin = rest.split(' ').next().map(str::to_owned);
        }
        if let Some(link) = line.strip_prefix("open (works once): ") {
            return (origin.expect("origin printed first"), link.to_owned());
        }
    }
    panic!("purse ui printed no link");
}

#[test]
fn a_user_buys_coins_pays_a_shop_in_the_browser_and_the_operator_sees_the_payment() {
    let Some((chromium, chromedriver)) = browser() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (issuer, ip) = serve_new_issuer(dir);
    let issuer_url = format!("https://127.0.0.1:{ip}");
    alice_enrolled(dir, &issuer_url);
    an_enrolled_shop(dir, &issuer_url);
    let mp = free_port();
    let shop_url = format!("https://127.0.0.1:{mp}");
    let shop = spawn(
        dir,
        &[
            "merchant",
            "serve",
            "--purse",
            "shop.purse",
            "--listen",
            &format!("127.0.0.1:{mp}"),
            "--item",
            "book=5.00=A book",
            "--item",
            "tea=2.50=A pot of tea",
        ],
    );
    wait_healthy(mp);
    let mut ui = spawn_piped(dir, &["purse", "ui", "--purse", "alice.purse"]);
    let (origin, login) = purse_page_links(&mut ui);
    let ui_port: u16 = origin.rsplit(':').next().unwrap().parse().unwrap();

    let driver_port = free_port();
    let driver = Command::new(&chromedriver)
        .arg(format!("--port={driver_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    wait_healthy(driver_port);
    let profile = dir.join("chromium-profile");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    // The shop and the issuer serve certificates of the
                    // issuer's own authority, which this profile does not
                    // trust; the purse's own connections stay pinned to it.
                    "--ignore-certificate-errors",
                    "--window-size=1100,1500",
                    format!("--user-data-dir={}", profile.display()),
                ],
            }),
        );
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
            .expect("a chromium session");

        // The one-time link opens the purse; nobody else gets in.
        client.goto(&login).await.expect("login");
        assert_eq!(text_of(&client, "participant").await, "alice");
        assert!(status_of_stranger_get(ui_port, "/").contains("403"));
        assert!(status_of_stranger_get(ui_port, &login[origin.len()..]).contains("403"));

        // Buy 4 × 2.50: the page shows the purchase's steps, then the coins.
        client
            .find(Locator::Id("spec"))
            .await
            .unwrap()
            .send_keys("4x2.50")
            .await
            .unwrap();
        client
            .find(Locator::Id("account"))
            .await
            .unwrap()
            .send_keys("ACH-alice")
            .await
            .unwrap();
        client
            .find(Locator::Id("buy"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        // The form posted and the page came back showing the purchase.
        let shown = Instant::now();
        while client.find(Locator::Id("busy")).await.is_err()
            && client.find(Locator::Id("notice")).await.is_err()
        {
            if shown.elapsed() > Duration::from_secs(20) {
                let page = client.source().await.unwrap_or_default();
                panic!("the purchase never showed:\n{page}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        wait_for_text(&client, &format!("{origin}/"), "available", "10.00").await;
        assert!(text_of(&client, "coins").await.contains("2.50"));
        screenshot(&client, "purse-bought", false).await;
        assert_every_control_is_labelled(&client).await;

        // Open the shop from the purse; its pay button hands the invoice over.
        client
            .find(Locator::Id("shop"))
            .await
            .unwrap()
            .send_keys(&shop_url)
            .await
            .unwrap();
        client
            .find(Locator::Css("form[action='/visit'] button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert!(text_of(&client, "items").await.contains("A book"));
        assert_eq!(text_of(&client, "purse-address").await, origin);
        screenshot(&client, "shop", true).await;
        assert_every_control_is_labelled(&client).await;
        client
            .find(Locator::Id("pay-book"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        // The purse shows what it is asked to pay, and asks.
        assert_eq!(text_of(&client, "merchant").await, "shop");
        assert_eq!(text_of(&client, "item").await, "A book");
        assert_eq!(text_of(&client, "amount").await, "5.00");
        screenshot(&client, "confirm", false).await;
        client
            .find(Locator::Id("confirm"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();

        // The merchant's receipt, verified; the balance down by the price.
        assert!(text_of(&client, "paid").await.contains("receipt verified"));
        assert_eq!(text_of(&client, "available").await, "5.00");
        screenshot(&client, "receipt", false).await;
        client
            .find(Locator::Css(".receipt a"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        assert_eq!(text_of(&client, "status").await, "paid");
        assert!(text_of(&client, "receipt").await.contains("Signed by shop"));
        screenshot(&client, "order", false).await;
        wait_for_text(&client, &format!("{origin}/"), "available", "5.00").await;
        assert!(text_of(&client, "receipts").await.contains("A book"));
        assert!(text_of(&client, "history").await.contains("pay"));
        screenshot(&client, "purse", true).await;

        // The operator's signed link opens the dashboard; the payment shows.
        let link = ok(dir, &["issuer", "dashboard-link", "--dir", "iss"]);
        let unsigned = format!("{issuer_url}/dashboard");
        client.goto(&unsigned).await.unwrap();
        assert!(client.source().await.unwrap().contains("Not signed in"));
        client.goto(link.trim()).await.expect("dashboard");
        assert_eq!(text_of(&client, "payments").await, "1");
        assert_eq!(text_of(&client, "outstanding").await, "10.00");
        // Issued: the 10.00 bought and the shop's fresh 5.00; spent: 5.00.
        let epochs = text_of(&client, "epochs").await;
        assert!(
            epochs.contains("15.00") && epochs.contains("5.00"),
            "{epochs}"
        );
        screenshot(&client, "dashboard", true).await;
        // The link worked once.
        client.goto(link.trim()).await.unwrap();
        assert!(client.source().await.unwrap().contains("already used"));

        client.close().await.expect("close the browser");
    });
    kill_hard(driver);
    terminate(ui);
    terminate(shop);
    terminate(issuer);
}
