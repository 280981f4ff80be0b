//! Health at a glance: command rate, p99 latency, conflicts, cache hit ratio and pool use over
//! the last minutes, drawn as inline SVG from the console's own samples of `/metrics`. The
//! script refreshes the charts every few seconds (`GET /console/health/charts`).

use std::fmt::Write;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};

use super::layout::{self, Section};
use crate::ConsoleState;
use crate::guard::Staff;
use crate::health::{Point, SAMPLE_EVERY};

const WIDTH: f64 = 300.0;
const HEIGHT: f64 = 60.0;

/// `GET /console/health`.
pub async fn show(State(state): State<ConsoleState>, staff: Staff) -> Response {
    let body = html! {
        p class="hint" {
            "Sampled from this instance's metrics every " (SAMPLE_EVERY.as_secs()) " s, for the last ten minutes."
        }
        div data-charts data-refresh="/console/health/charts" { (charts_markup(&state.console.health.points())) }
    };
    layout::page(&staff, Section::Health, "Health", body).into_response()
}

/// `GET /console/health/charts`: the charts alone, for the page's refresh.
pub async fn charts(State(state): State<ConsoleState>, _staff: Staff) -> Response {
    charts_markup(&state.console.health.points()).into_response()
}

struct Chart {
    title: &'static str,
    unit: &'static str,
    values: Vec<Option<f64>>,
    /// A fixed top of the scale (ratios), or `None` to scale to the largest value.
    max: Option<f64>,
}

fn charts_markup(points: &[Point]) -> Markup {
    let series = |f: fn(&Point) -> Option<f64>| points.iter().map(f).collect::<Vec<_>>();
    let charts = [
        Chart {
            title: "Commands per second",
            unit: "/s",
            values: series(|p| Some(p.command_rate)),
            max: None,
        },
        Chart {
            title: "Command latency, p99",
            unit: " ms",
            values: series(|p| p.p99_ms),
            max: None,
        },
        Chart {
            title: "Conflicts per second",
            unit: "/s",
            values: series(|p| Some(p.conflict_rate)),
            max: None,
        },
        Chart {
            title: "Cache hit ratio",
            unit: " %",
            values: series(|p| p.cache_hit_ratio.map(|r| r * 100.0)),
            max: Some(100.0),
        },
        Chart {
            title: "Database pool in use",
            unit: " %",
            values: series(|p| Some(p.pool_use * 100.0)),
            max: Some(100.0),
        },
    ];
    html! {
        div class="charts" {
            @for chart in &charts { (chart_markup(chart)) }
        }
    }
}

fn chart_markup(chart: &Chart) -> Markup {
    let latest = chart.values.iter().rev().flatten().next().copied();
    let now = match latest {
        Some(v) => format!("{v:.1}{}", chart.unit),
        None => "no data yet".to_owned(),
    };
    let largest = chart
        .values
        .iter()
        .flatten()
        .fold(0.0_f64, |a, b| a.max(*b));
    let max = chart.max.unwrap_or(largest).max(f64::EPSILON);
    let description = format!(
        "{}: now {now}, highest in the window {largest:.1}{}",
        chart.title, chart.unit
    );
    html! {
        figure class="chart" {
            figcaption { (chart.title) ": " strong { (now) } }
            (layout::svg(polyline(&chart.values, max, &description)))
        }
    }
}

/// An SVG line of `values` (gaps where a value is missing) scaled to `max`.
fn polyline(values: &[Option<f64>], max: f64, description: &str) -> String {
    let mut svg = String::new();
    let escaped = maud::html! { (description) }.into_string();
    let _ = write!(
        svg,
        r#"<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escaped}" preserveAspectRatio="none"><rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="none" stroke="currentColor" stroke-opacity="0.2"/>"#
    );
    let step = if values.len() > 1 {
        WIDTH / (values.len() - 1) as f64
    } else {
        WIDTH
    };
    let mut run = Vec::new();
    let flush = |run: &mut Vec<String>, svg: &mut String| {
        if let [alone] = run.as_slice() {
            // One point between gaps: a dot, since a line of one point draws nothing.
            if let Some((x, y)) = alone.split_once(',') {
                let _ = write!(
                    svg,
                    r#"<circle cx="{x}" cy="{y}" r="1.5" fill="currentColor"/>"#
                );
            }
            run.clear();
        } else if !run.is_empty() {
            let _ = write!(
                svg,
                r#"<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{}"/>"#,
                run.join(" ")
            );
            run.clear();
        }
    };
    for (i, value) in values.iter().enumerate() {
        match value {
            Some(v) => {
                let x = i as f64 * step;
                let y = HEIGHT - (v / max).clamp(0.0, 1.0) * (HEIGHT - 2.0) - 1.0;
                run.push(format!("{x:.1},{y:.1}"));
            }
            None => flush(&mut run, &mut svg),
        }
    }
    flush(&mut run, &mut svg);
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_breaks_where_values_are_missing_and_its_label_is_escaped() {
        let svg = polyline(&[Some(1.0), Some(2.0), None, Some(2.0)], 2.0, "a <b> & c");
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(
            svg.matches("<circle").count(),
            1,
            "the point after the gap is a dot"
        );
        assert!(svg.contains("aria-label=\"a &lt;b&gt; &amp; c\""));
        assert!(svg.contains("points=\"0.0,30.0 100.0,1.0\""), "{svg}");
    }
}
