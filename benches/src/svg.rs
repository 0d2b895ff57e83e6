//! A latency-percentile plot as a standalone SVG, in the HdrHistogram
//! style: the x axis runs 0%, 90%, 99%, 99.9%, … on a log scale of
//! 1/(1-p); the y axis is latency on a log scale (decades), so the median
//! and the far tail are both readable. No plotting dependency: the plot is a
//! few polylines and labels.

use std::fmt::Write;

/// One curve: a name and (percentile in 0..100, latency in ns) points.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points, in increasing percentile.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// The percentile curve of `h` (values in ns), up to 99.999%.
    pub fn from_histogram(name: impl Into<String>, h: &hdrhistogram::Histogram<u64>) -> Self {
        Series {
            name: name.into(),
            points: h
                .iter_quantiles(1)
                .map(|v| {
                    (
                        v.quantile_iterated_to() * 100.0,
                        v.value_iterated_to() as f64,
                    )
                })
                .take_while(|(p, _)| *p < 99.999)
                .collect(),
        }
    }
}

const COLORS: [&str; 4] = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];

/// Render `series` as an SVG document titled `title`, its latency axis
/// labelled `y_label` (what was timed: "round trip", "end to end").
pub fn percentile_plot(title: &str, y_label: &str, series: &[Series]) -> String {
    let (w, h, left, right, top, bottom) = (820.0, 480.0, 80.0, 50.0, 40.0, 60.0);
    let max_nines = 5.0; // up to 99.999%
    let x_of = |p: f64| {
        let nines = (-(1.0 - p / 100.0).max(1e-5).log10()).min(max_nines);
        left + nines / max_nines * (w - left - right)
    };
    let values = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1.max(1.0)))
    };
    let decade_low = values().fold(1e12f64, f64::min).log10().floor();
    let decade_high = values()
        .fold(1.0f64, f64::max)
        .log10()
        .ceil()
        .max(decade_low + 1.0);
    let y_of = |ns: f64| {
        let t = (ns.max(1.0).log10() - decade_low) / (decade_high - decade_low);
        h - bottom - t * (h - top - bottom)
    };

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = write!(
        svg,
        r#"<text x="{}" y="24" font-size="16" text-anchor="middle">{}</text>"#,
        w / 2.0,
        escape(title)
    );
    for (i, label) in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"]
        .iter()
        .enumerate()
    {
        let x = left + i as f64 / max_nines * (w - left - right);
        let _ = write!(
            svg,
            r##"<line x1="{x}" y1="{top}" x2="{x}" y2="{}" stroke="#ddd"/>"##,
            h - bottom
        );
        let _ = write!(
            svg,
            r#"<text x="{x}" y="{}" text-anchor="middle">{label}</text>"#,
            h - bottom + 18.0
        );
    }
    for decade in decade_low as i32..=decade_high as i32 {
        let v = 10f64.powi(decade);
        let y = y_of(v);
        let _ = write!(
            svg,
            r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/>"##,
            w - right
        );
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + 4.0,
            human_ns(v)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile</text>"#,
        w / 2.0,
        h - 16.0
    );
    let _ = write!(
        svg,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">{}</text>"#,
        h / 2.0,
        h / 2.0,
        escape(y_label)
    );
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(p, ns)| format!("{:.1},{:.1}", x_of(p), y_of(ns)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            points.join(" ")
        );
        let ly = top + 16.0 + i as f64 * 18.0;
        let _ = write!(
            svg,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{color}" stroke-width="3"/>"#,
            left + 12.0,
            left + 36.0
        );
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}">{}</text>"#,
            left + 42.0,
            ly + 4.0,
            escape(&s.name)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// `v` nanoseconds as a short label: 100ns, 10us, 1ms.
fn human_ns(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{}s", v / 1e9),
        v if v >= 1e6 => format!("{}ms", v / 1e6),
        v if v >= 1e3 => format!("{}us", v / 1e3),
        v => format!("{v}ns"),
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_has_one_polyline_per_series_and_escapes_names() {
        let series = [
            Series {
                name: "a<b".into(),
                points: vec![(0.0, 100.0), (99.0, 250.0)],
            },
            Series {
                name: "c".into(),
                points: vec![(50.0, 80.0), (99.9, 900.0)],
            },
        ];
        let svg = percentile_plot("t", "round trip", &series);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a&lt;b"));
        assert!(svg.contains(">10ns<") && svg.contains(">1us<"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }

    #[test]
    fn latency_labels_are_short() {
        assert_eq!(human_ns(100.0), "100ns");
        assert_eq!(human_ns(10_000.0), "10us");
        assert_eq!(human_ns(1e6), "1ms");
    }
}
