//! Line charts as inline SVG, built from numbers only: no text of the
//! caller's reaches the SVG but through `maud`'s escaping, so a chart
//! carries no script and loads nothing.

use maud::{Markup, html};

/// Width and height of a chart's drawing area, in SVG user units.
const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 160.0;
/// Room for the axis labels.
const MARGIN_LEFT: f64 = 48.0;
const MARGIN_BOTTOM: f64 = 22.0;

/// One line: its name and a value per sample, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// A colour this crate picks (see [`Series::new`]), not the caller's text.
    colour: &'static str,
    pub values: Vec<f64>,
}

const COLOURS: [&str; 4] = ["#23395d", "#c0392b", "#1d6b2f", "#b9770e"];

impl Series {
    /// The `index`th line of a chart (its colour follows from the index).
    pub fn new(index: usize, name: impl Into<String>, values: Vec<f64>) -> Series {
        Series {
            name: name.into(),
            colour: COLOURS[index % COLOURS.len()],
            values,
        }
    }
}

/// A chart of `series` over the same samples, `x_label` saying what one
/// sample step is. The SVG is described for screen readers by `title` and
/// a summary of the last values; the numbers are also in a table.
pub fn line_chart(id: &str, title: &str, x_label: &str, series: &[Series]) -> Markup {
    let n = series.iter().map(|s| s.values.len()).max().unwrap_or(0);
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let top = if max <= 0.0 { 1.0 } else { nice_ceiling(max) };
    let x_of = |i: usize| {
        if n <= 1 {
            MARGIN_LEFT
        } else {
            MARGIN_LEFT + (WIDTH - MARGIN_LEFT) * i as f64 / (n - 1) as f64
        }
    };
    let y_of = |v: f64| {
        let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
        (HEIGHT - MARGIN_BOTTOM) * (1.0 - v / top)
    };
    let summary: Vec<String> = series
        .iter()
        .map(|s| {
            format!(
                "{}: last {}, peak {}",
                s.name,
                fmt_number(s.values.last().copied().unwrap_or(0.0)),
                fmt_number(s.values.iter().copied().fold(0.0, f64::max))
            )
        })
        .collect();
    let title_id = format!("{id}-title");
    let desc_id = format!("{id}-desc");
    html! {
        figure {
            svg.chart id=(id) role="img" aria-labelledby={(title_id) " " (desc_id)}
                viewBox={"0 0 " (WIDTH + 10.0) " " (HEIGHT)} width=(WIDTH + 10.0) height=(HEIGHT)
                xmlns="http://www.w3.org/2000/svg" {
                title id=(title_id) { (title) }
                desc id=(desc_id) { (summary.join("; ")) }
                line x1=(MARGIN_LEFT) y1="0" x2=(MARGIN_LEFT) y2=(HEIGHT - MARGIN_BOTTOM) stroke="#999" {}
                line x1=(MARGIN_LEFT) y1=(HEIGHT - MARGIN_BOTTOM) x2=(WIDTH) y2=(HEIGHT - MARGIN_BOTTOM) stroke="#999" {}
                text x="2" y="12" font-size="11" { (fmt_number(top)) }
                text x="2" y=(HEIGHT - MARGIN_BOTTOM) font-size="11" { "0" }
                text x=(MARGIN_LEFT) y=(HEIGHT - 4.0) font-size="11" { (x_label) }
                @for s in series {
                    polyline fill="none" stroke=(s.colour) stroke-width="2"
                        points=(points(&s.values, &x_of, &y_of)) {}
                }
            }
            figcaption {
                (title) ": "
                @for (i, s) in series.iter().enumerate() {
                    @if i > 0 { ", " }
                    span style={"color:" (s.colour)} { "━ " } (s.name)
                }
            }
        }
    }
}

fn points(values: &[f64], x_of: &dyn Fn(usize) -> f64, y_of: &dyn Fn(f64) -> f64) -> String {
    let mut out = String::new();
    for (i, v) in values.iter().enumerate() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("{:.1},{:.1}", x_of(i), y_of(*v)));
    }
    out
}

/// The smallest of 1, 2, 5 × 10^k at or above `v` (a readable axis top).
fn nice_ceiling(v: f64) -> f64 {
    let mut step = 1.0;
    while step * 10.0 <= v {
        step *= 10.0;
    }
    while step > v {
        step /= 10.0;
    }
    for m in [1.0, 2.0, 5.0, 10.0] {
        if step * m >= v {
            return step * m;
        }
    }
    step * 10.0
}

fn fmt_number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round_numbers_at_or_above_the_peak() {
        assert_eq!(nice_ceiling(0.3), 0.5);
        assert_eq!(nice_ceiling(1.0), 1.0);
        assert_eq!(nice_ceiling(7.0), 10.0);
        assert_eq!(nice_ceiling(120.0), 200.0);
    }

    #[test]
    fn a_series_name_is_escaped_inside_the_svg() {
        let chart = line_chart(
            "c",
            "<t>",
            "s",
            &[Series::new(
                0,
                "<script>x</script>",
                vec![1.0, f64::NAN, 3.0],
            )],
        )
        .into_string();
        assert!(!chart.contains("<script>"), "{chart}");
        assert!(chart.contains("&lt;script&gt;"));
        assert!(chart.contains("polyline"));
    }
}
