//! The HTML report: one self-contained page (no script, no external file)
//! with the verdict, the summary tables, and an inline SVG chart of
//! outstanding e-money and of the volume moved per calendar day (UTC), over
//! log time: the issuer's time that every record carries.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ledger::Timestamp;

use crate::logtime::{SECS_PER_DAY, format_day, format_utc};
use crate::report::{AuditReport, Outcome, format_minor};
use crate::stats::SeriesPoint;

const CHART_WIDTH_PX: f64 = 900.0;
const LINE_HEIGHT_PX: f64 = 220.0;
const BARS_HEIGHT_PX: f64 = 140.0;
const MARGIN_LEFT_PX: f64 = 90.0;
const MARGIN_PX: f64 = 20.0;

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The chart's time axis: log time from `first` to `last` seconds, mapped
/// onto the plot's width.
#[derive(Debug, Clone, Copy)]
struct TimeAxis {
    first: u64,
    last: u64,
}

impl TimeAxis {
    fn x(self, at: u64) -> f64 {
        let span = (self.last.saturating_sub(self.first)).max(1) as f64;
        MARGIN_LEFT_PX
            + (at.clamp(self.first, self.last) - self.first) as f64 / span
                * (CHART_WIDTH_PX - MARGIN_LEFT_PX - MARGIN_PX)
    }
}

/// The chart as an SVG element over log time: outstanding e-money as a line
/// on top (one point per span of transactions, at its latest time), and the
/// value moved per calendar day (UTC) as bars below, on the same time axis.
pub fn chart_svg(series: &[SeriesPoint], daily_volume: &BTreeMap<u64, u128>) -> String {
    // Top margin, line panel, gap, bar panel, room for the axis labels.
    let height = LINE_HEIGHT_PX + BARS_HEIGHT_PX + 4.0 * MARGIN_PX;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{CHART_WIDTH_PX}" height="{height}" viewBox="0 0 {CHART_WIDTH_PX} {height}" role="img" aria-label="outstanding e-money and daily volume over log time">"#
    );
    let (Some(first), Some(last)) = (series.first(), series.last()) else {
        svg.push_str(r#"<text x="20" y="40">no transactions</text></svg>"#);
        return svg;
    };
    let first_day = daily_volume.keys().next().copied();
    let last_day = daily_volume.keys().next_back().copied();
    let axis = TimeAxis {
        first: first_day.map_or(first.at, |d| (d * SECS_PER_DAY).min(first.at)),
        last: last_day.map_or(last.at, |d| ((d + 1) * SECS_PER_DAY).max(last.at)),
    };
    let max_outstanding = series
        .iter()
        .map(|p| p.outstanding_minor)
        .max()
        .unwrap_or(0)
        .max(1);
    let max_volume = daily_volume.values().copied().max().unwrap_or(0).max(1);

    // Outstanding e-money: a polyline in the top panel.
    let top = MARGIN_PX;
    let bottom = MARGIN_PX + LINE_HEIGHT_PX;
    let points: Vec<String> = series
        .iter()
        .map(|p| {
            let y = bottom
                - (p.outstanding_minor.max(0) as f64 / max_outstanding as f64) * LINE_HEIGHT_PX;
            format!("{:.1},{:.1}", axis.x(p.at), y)
        })
        .collect();
    let _ = write!(
        svg,
        r##"<text x="{MARGIN_LEFT_PX}" y="{:.1}" font-size="12">outstanding e-money</text><line x1="{MARGIN_LEFT_PX}" y1="{bottom}" x2="{:.1}" y2="{bottom}" stroke="#999"/><text x="4" y="{:.1}" font-size="11">{}</text><text x="4" y="{bottom}" font-size="11">0.00</text><polyline fill="none" stroke="#1f5fa8" stroke-width="1.5" points="{}"/>"##,
        top - 4.0,
        CHART_WIDTH_PX - MARGIN_PX,
        top + 10.0,
        escape(&format_minor(max_outstanding)),
        points.join(" ")
    );

    // Daily volume: one bar per calendar day (UTC) in the bottom panel.
    let bars_top = bottom + 2.0 * MARGIN_PX;
    let bars_bottom = bars_top + BARS_HEIGHT_PX;
    let _ = write!(
        svg,
        r##"<text x="{MARGIN_LEFT_PX}" y="{:.1}" font-size="12">volume moved per day (UTC)</text><line x1="{MARGIN_LEFT_PX}" y1="{bars_bottom}" x2="{:.1}" y2="{bars_bottom}" stroke="#999"/><text x="4" y="{:.1}" font-size="11">{}</text>"##,
        bars_top - 4.0,
        CHART_WIDTH_PX - MARGIN_PX,
        bars_top + 10.0,
        escape(&format_minor(max_volume as i128)),
    );
    for (day, volume) in daily_volume {
        let h = *volume as f64 / max_volume as f64 * BARS_HEIGHT_PX;
        let x0 = axis.x(day * SECS_PER_DAY);
        let x1 = axis.x((day + 1) * SECS_PER_DAY);
        let _ = write!(
            svg,
            r##"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="#6a9f4e"><title>{}: {}</title></rect>"##,
            bars_bottom - h,
            (x1 - x0 - 1.0).max(1.0),
            format_day(*day),
            escape(&format_minor(*volume as i128))
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{MARGIN_LEFT_PX}" y="{:.1}" font-size="11">{}</text><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{} (log time)</text></svg>"#,
        bars_bottom + 14.0,
        escape(&format_utc(Timestamp(axis.first))),
        CHART_WIDTH_PX - MARGIN_PX,
        bars_bottom + 14.0,
        escape(&format_utc(Timestamp(axis.last)))
    );
    svg
}

impl AuditReport {
    /// A self-contained HTML page.
    pub fn to_html(&self) -> String {
        let mut page = String::new();
        let (class, colour) = match &self.outcome {
            Outcome::Holds => ("holds", "#1b7a2f"),
            Outcome::Violation(_) => ("violation", "#b3261e"),
            Outcome::Truncated { .. } => ("truncated", "#a86b00"),
            Outcome::NothingToAudit => ("nothing to audit", "#a86b00"),
        };
        let _ = write!(
            page,
            r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>VarietyCash audit</title><style>body{{font-family:sans-serif;margin:2em;max-width:960px}}h1.{class}{{color:{colour}}}table{{border-collapse:collapse}}td,th{{padding:2px 10px;border-bottom:1px solid #ddd;text-align:right}}td:first-child,th:first-child{{text-align:left}}</style></head><body><h1 class="{class}">{}</h1>"#,
            escape(&self.headline())
        );
        let _ = write!(
            page,
            "<p>log <code>{}</code>, audited through record {} (hash <code>{}</code>); {} records, {} transactions.</p>",
            escape(&self.log),
            self.audited_through,
            escape(&self.audited_through_hash),
            self.stats.records,
            self.stats.transactions
        );
        if let Some(span) = self.log_time_span() {
            let _ = write!(page, "<p>log time: {}</p>", escape(&span));
        }
        page.push_str("<h2>Outstanding e-money and daily volume</h2>");
        page.push_str(&chart_svg(
            &self.stats.series,
            &self.stats.daily_volume_minor,
        ));
        if self.stats.daily_volume_days_dropped > 0 {
            let _ = write!(
                page,
                "<p><em>daily volume shows the latest {} days; {} earlier days are not drawn</em></p>",
                self.stats.daily_volume_minor.len(),
                self.stats.daily_volume_days_dropped
            );
        }
        page.push_str("<h2>Money</h2><table>");
        let t = &self.totals;
        for (label, minor) in [
            ("real money in", self.stats.money_in_minor as i128),
            ("real money out", self.stats.money_out_minor as i128),
            ("outstanding e-money", t.outstanding),
            ("aggregated balances", t.aggregates),
            ("owed to card systems", t.card_float),
            ("forfeited (breakage)", t.forfeited),
        ] {
            let _ = write!(
                page,
                "<tr><td>{label}</td><td>{}</td></tr>",
                format_minor(minor)
            );
        }
        page.push_str("</table><h2>Events by kind</h2><table>");
        for (kind, n) in &self.stats.events_by_kind {
            let _ = write!(page, "<tr><td>{}</td><td>{n}</td></tr>", escape(kind));
        }
        page.push_str("</table>");
        if !self.stats.largest.is_empty() {
            page.push_str("<h2>Largest transactions</h2><table><tr><th>value</th><th>record</th><th>transaction</th><th>events</th></tr>");
            for tx in &self.stats.largest {
                let _ = write!(
                    page,
                    "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                    format_minor(tx.value_minor as i128),
                    tx.seq,
                    tx.tx,
                    escape(&tx.kinds)
                );
            }
            page.push_str("</table>");
        }
        for note in &self.notes {
            let _ = write!(page, "<p><em>{}</em></p>", escape(note));
        }
        page.push_str("</body></html>\n");
        page
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
    }

    #[test]
    fn chart_draws_one_bar_per_calendar_day_and_one_line_over_log_time() {
        // Five points over three days, the last day twice as busy.
        let day0 = 20_000u64;
        let series: Vec<SeriesPoint> = (0..5u64)
            .map(|i| SeriesPoint {
                seq: i * 10,
                at: day0 * SECS_PER_DAY + i * SECS_PER_DAY / 2,
                outstanding_minor: i as i128 * 100,
                volume_minor: 50,
                transactions: 1,
            })
            .collect();
        let daily: BTreeMap<u64, u128> = [(day0, 100), (day0 + 1, 100), (day0 + 2, 200)].into();
        let svg = chart_svg(&series, &daily);
        assert_eq!(svg.matches("<rect").count(), 3);
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert!(svg.contains(&format_day(day0 + 2)), "{svg}");
        assert!(svg.contains("(log time)"));
        assert!(svg.ends_with("</svg>"));
        // The busiest day's bar is the full height of the panel.
        assert!(
            svg.contains(&format!("height=\"{BARS_HEIGHT_PX:.1}\"")),
            "{svg}"
        );
    }
}
