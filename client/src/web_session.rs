//! What the browser-facing routes share: answering with a page (and the
//! headers that keep it from being framed, sniffed, cached or leaking its
//! address), secrets for one-time links, session cookies and CSRF tokens,
//! reading cookies, and reading a small form body.
//!
//! A browser cannot sign requests, so each browser-facing server hands out
//! a session cookie in exchange for a one-time secret it printed or signed
//! (`purse ui`'s link, `merchant serve`'s link, the operator's signed
//! dashboard link), and checks it on every request; forms that change
//! something also carry a CSRF token bound to the session.

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use actix_web::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use actix_web::{HttpResponse, HttpResponseBuilder, web};
use subtle::ConstantTimeEq;

use crate::body::{BodyLimits, read_bounded};
use crate::error::ApiError;

/// Bytes of entropy in a session cookie, login secret or CSRF token.
pub const WEB_SECRET_BYTES: usize = 32;
/// The largest form a browser-facing route reads.
pub const WEB_FORM_BYTES_MAX: usize = 4096;

/// A random secret, hex: a login link's, a session's, a CSRF token.
#[derive(Clone, PartialEq, Eq)]
pub struct WebSecret(String);

impl std::fmt::Debug for WebSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebSecret(..)")
    }
}

impl WebSecret {
    /// A fresh secret from the operating system's generator.
    pub fn random() -> Result<WebSecret, getrandom::Error> {
        let mut bytes = [0u8; WEB_SECRET_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(WebSecret(hex::encode(bytes)))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares in constant time with what a request presented.
    pub fn matches(&self, presented: &str) -> bool {
        self.0.len() == presented.len() && bool::from(self.0.as_bytes().ct_eq(presented.as_bytes()))
    }
}

fn page_headers(mut builder: HttpResponseBuilder) -> HttpResponseBuilder {
    builder
        .insert_header((CONTENT_SECURITY_POLICY, web_pages::CONTENT_SECURITY_POLICY))
        .insert_header((X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((X_FRAME_OPTIONS, "DENY"))
        .insert_header((REFERRER_POLICY, "same-origin"))
        .insert_header((CACHE_CONTROL, "no-store"));
    builder
}

/// `page` as `text/html`, with `status`.
pub fn page_response(status: StatusCode, page: web_pages::Page) -> HttpResponse {
    page_headers(HttpResponse::build(status))
        .insert_header((CONTENT_TYPE, "text/html; charset=utf-8"))
        .body(page.into_string())
}

/// A script of this crate's pages (never the caller's text).
pub fn script_response(script: &'static str) -> HttpResponse {
    page_headers(HttpResponse::Ok())
        .insert_header((CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .body(script)
}

/// 303 to `location` (after a form, so a reload does not post it again).
pub fn see_other(location: &str) -> HttpResponse {
    page_headers(HttpResponse::SeeOther())
        .insert_header((LOCATION, location))
        .finish()
}

/// 303 to `location`, setting `cookie` (a full Set-Cookie value).
pub fn see_other_with_cookie(location: &str, cookie: String) -> HttpResponse {
    page_headers(HttpResponse::SeeOther())
        .insert_header((LOCATION, location))
        .insert_header((actix_web::http::header::SET_COOKIE, cookie))
        .finish()
}

/// The value of cookie `name` in the request, if any.
pub fn cookie<'r>(req: &'r HttpRequest, name: &str) -> Option<&'r str> {
    req.headers()
        .get_all(COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// The value of query parameter `name`, percent-decoded.
pub fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .ok()?
        .into_inner()
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// Reads an `application/x-www-form-urlencoded` body of at most
/// [`WEB_FORM_BYTES_MAX`] bytes into its fields.
pub async fn read_form(
    req: &HttpRequest,
    payload: web::Payload,
    limits: BodyLimits,
) -> Result<Vec<(String, String)>, ApiError> {
    let bytes = read_bounded(req, payload, "form", WEB_FORM_BYTES_MAX, limits).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ApiError::malformed("form is not UTF-8"))?;
    web::Query::<Vec<(String, String)>>::from_query(text)
        .map(|q| q.into_inner())
        .map_err(|_| ApiError::malformed("not a form"))
}

/// Field `name` of a form read by [`read_form`].
pub fn field<'f>(form: &'f [(String, String)], name: &str) -> Option<&'f str> {
    form.iter()
        .find_map(|(k, v)| (k == name).then_some(v.as_str()))
}

/// Whether the request's `Host` is exactly `host` (`127.0.0.1:PORT`): a
/// page reached under another name (DNS rebinding) is refused.
pub fn host_is(req: &HttpRequest, host: &str) -> bool {
    req.headers()
        .get(actix_web::http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|h| h == host)
}

/// Whether a state-changing request comes from a page of `origin`: its
/// `Origin` header, when the browser sends one, must be `origin`.
pub fn origin_allows(req: &HttpRequest, origin: &str) -> bool {
    match req.headers().get(actix_web::http::header::ORIGIN) {
        None => true,
        Some(v) => v.to_str().is_ok_and(|v| v == origin),
    }
}

/// Percent-encodes `text` for a query parameter.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `secs` since the Unix epoch as `YYYY-MM-DD HH:MM UTC`.
pub fn utc(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3_600,
        (rem % 3_600) / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn secrets_are_fresh_and_compared_whole() {
        let a = WebSecret::random().expect("random");
        let b = WebSecret::random().expect("random");
        assert_ne!(a, b);
        assert!(a.matches(a.expose()));
        assert!(!a.matches(&a.expose()[..10]));
        assert!(!a.matches(b.expose()));
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn cookies_and_query_parameters_are_read_by_name() {
        let req = TestRequest::default()
            .insert_header((COOKIE, "a=1; vc=two"))
            .uri("/p?invoice=https%3A%2F%2Fs%2Fitem%2Fb%2Finvoice&x=1")
            .to_http_request();
        assert_eq!(cookie(&req, "vc"), Some("two"));
        assert_eq!(cookie(&req, "v"), None);
        assert_eq!(
            query_param(&req, "invoice").as_deref(),
            Some("https://s/item/b/invoice")
        );
        assert_eq!(
            percent_encode("http://127.0.0.1:80"),
            "http%3A%2F%2F127.0.0.1%3A80"
        );
    }

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_764_936_000), "2025-12-05 12:00 UTC");
    }
}
