//! A latency-percentile plot as a standalone SVG, in the HdrHistogram
//! style: the x axis runs 0%, 90%, 99%, 99.9%, … on a log scale of
//! 1/(1-p), the y axis is latency. No plotting dependency: the plot is a few
//! polylines and labels.

use std::fmt::Write;

/// One curve: a name and (percentile in 0..100, latency in ns) points.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points, in increasing percentile.
    pub points: Vec<(f64, f64)>,
}

const COLORS: [&str; 4] = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];

/// Render `series` as an SVG document titled `title`.
pub fn percentile_plot(title: &str, series: &[Series]) -> String {
    let (w, h, left, right, top, bottom) = (820.0, 480.0, 80.0, 20.0, 40.0, 60.0);
    let max_nines = 5.0; // up to 99.999%
    let x_of = |p: f64| {
        let nines = (-(1.0 - p / 100.0).max(1e-5).log10()).min(max_nines);
        left + nines / max_nines * (w - left - right)
    };
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.0f64, f64::max);
    let y_top = nice_ceiling(y_max);
    let y_of = |ns: f64| h - bottom - ns / y_top * (h - top - bottom);
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
    for i in 0..=5 {
        let v = y_top * i as f64 / 5.0;
        let y = y_of(v);
        let _ = write!(
            svg,
            r##"<line x1="{left}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/>"##,
            w - right
        );
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{:.0}</text>"#,
            left - 6.0,
            y + 4.0,
            v
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
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">round trip (ns)</text>"#,
        h / 2.0,
        h / 2.0
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

/// 1, 2 or 5 times a power of ten, at least `v`.
fn nice_ceiling(v: f64) -> f64 {
    let magnitude = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|c| *c >= v)
        .unwrap_or(10.0 * magnitude)
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
        let svg = percentile_plot("t", &series);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a&lt;b"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
    }

    #[test]
    fn ceilings_are_round() {
        assert_eq!(nice_ceiling(730.0), 1000.0);
        assert_eq!(nice_ceiling(150.0), 200.0);
        assert_eq!(nice_ceiling(4.2), 5.0);
    }
}
