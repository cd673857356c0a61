//! The page shell every page shares: document head, inline stylesheet,
//! skip link and main landmark, and the Content-Security-Policy that goes
//! with it.

use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The Content-Security-Policy every page is served with: nothing from
/// elsewhere; the inline stylesheet; scripts only from the page's own
/// server; forms post only to it; no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; \
     script-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

const STYLE: &str = r#"
:root { font-family: system-ui, sans-serif; color: #1b1b1b; background: #fafaf7; }
body { margin: 0; }
header { background: #23395d; color: #fff; padding: .6rem 1.2rem; }
header a { color: #fff; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem 1.2rem 3rem; }
h1 { font-size: 1.5rem; margin: .2rem 0; }
h2 { font-size: 1.15rem; margin-top: 1.6rem; border-bottom: 1px solid #ccd; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { text-align: left; padding: .25rem .7rem; border-bottom: 1px solid #e2e2e8; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.big { font-size: 2rem; font-weight: 600; }
.ok { color: #1d6b2f; } .bad { color: #a11d1d; }
.card { background: #fff; border: 1px solid #dde; border-radius: .4rem; padding: .8rem 1rem; margin: .8rem 0; }
.figures { display: flex; flex-wrap: wrap; gap: .8rem; }
.figures .card { min-width: 11rem; margin: 0; }
.figures .label { font-size: .85rem; color: #555; }
form.inline { display: inline; }
label { display: block; margin: .4rem 0 .15rem; font-weight: 600; }
input[type=text], input[type=url] { width: 100%; max-width: 32rem; padding: .35rem; font-size: 1rem; }
button, .button { font-size: 1rem; padding: .4rem .9rem; margin: .3rem .3rem .3rem 0; border-radius: .3rem;
  border: 1px solid #23395d; background: #23395d; color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
button.secondary, .button.secondary { background: #fff; color: #23395d; }
a:focus, button:focus, input:focus, .button:focus { outline: 3px solid #f0a500; outline-offset: 2px; }
.skip { position: absolute; left: -999px; } .skip:focus { left: 1rem; top: 1rem; background: #fff; color: #000; padding: .3rem; }
ol.steps li.done { color: #1d6b2f; } ol.steps li.todo { color: #777; }
svg.chart { background: #fff; border: 1px solid #dde; }
code, .mono { font-family: ui-monospace, monospace; font-size: .9em; word-break: break-all; }
pre.mono { white-space: pre-wrap; }
.hint { color: #555; font-size: .9rem; }
"#;

/// A rendered page: its HTML, ready to serve as `text/html; charset=utf-8`
/// with [`CONTENT_SECURITY_POLICY`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page(pub String);

impl Page {
    pub fn into_string(self) -> String {
        self.0
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Wraps `body` in the shared shell. `site` names the party whose page it
/// is (shown in the header), `title` the page.
pub(crate) fn page(site: &str, title: &str, scripts: &[&str], body: Markup) -> Page {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · " (site) }
                style { (PreEscaped(STYLE)) }
                @for src in scripts {
                    script src=(src) defer {}
                }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header { strong { (site) } }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    Page(markup.into_string())
}

/// A page saying one thing (an error, a refusal), with a link onwards.
pub fn message_page(site: &str, title: &str, text: &str, back: Option<(&str, &str)>) -> Page {
    page(
        site,
        title,
        &[],
        html! {
            p role="alert" { (text) }
            @if let Some((href, label)) = back {
                p { a href=(href) { (label) } }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_of_a_message_page_is_escaped() {
        let page = message_page(
            "<script>alert(1)</script>",
            "a \"title\" & more",
            "<img src=x onerror=alert(1)>",
            Some(("/?a=1&b=\"2\"", "<b>back</b>")),
        );
        let html = page.as_str();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(!html.contains("<b>back"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("href=\"/?a=1&amp;b=&quot;2&quot;\""));
    }
}
