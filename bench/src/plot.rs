//! The scale curves as an SVG (plotters' SVG backend, no system fonts):
//! median latency against stored size, log-log, one line per backend
//! (its raw driver's curve, where measured, thin with crosses in the same
//! colour), scan page on the left, receive on the right, and one legend
//! for both under them (a backend has the same colour in both panels).

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;

use crate::results::ScalePoint;
use crate::scale::{RAW_MARK, RECEIVE, SCAN};

const COLOURS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

const WIDTH: u32 = 1200;
const CHART_HEIGHT: u32 = 520;
/// Legend rows under the charts, and their height.
const LEGEND_COLUMNS: usize = 3;
const LEGEND_ROW: i32 = 20;

/// How one curve is drawn.
struct Style {
    colour: RGBColor,
    raw: bool,
}

/// The curves in first-seen order, each with its style: a backend's
/// colour is its place among the backends (raw curves take their
/// adapter's).
fn styles(points: &[ScalePoint]) -> Vec<(String, Style)> {
    let mut bases: Vec<&str> = Vec::new();
    let mut out: Vec<(String, Style)> = Vec::new();
    for p in points {
        if out.iter().any(|(name, _)| *name == p.backend) {
            continue;
        }
        let base = p.backend.split(RAW_MARK).next().unwrap_or(&p.backend);
        let i = match bases.iter().position(|b| *b == base) {
            Some(i) => i,
            None => {
                bases.push(base);
                bases.len() - 1
            }
        };
        out.push((
            p.backend.clone(),
            Style {
                colour: COLOURS[i % COLOURS.len()],
                raw: base.len() != p.backend.len(),
            },
        ));
    }
    out
}

/// Writes the plot to `path`.
pub fn draw(path: &Path, points: &[ScalePoint]) -> Result<()> {
    let styles = styles(points);
    let rows = styles.len().div_ceil(LEGEND_COLUMNS) as u32;
    let height = CHART_HEIGHT + 20 + rows * LEGEND_ROW as u32;
    let root = SVGBackend::new(path, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let (charts, legend) = root.split_vertically(CHART_HEIGHT);
    let panels = charts.split_evenly((1, 2));
    for (panel, metric) in panels.iter().zip([SCAN, RECEIVE]) {
        panel_chart(panel, metric, points, &styles)?;
    }
    draw_legend(&legend, &styles)?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    styles: &[(String, Style)],
) -> Result<()> {
    let column = (WIDTH as i32 - 80) / LEGEND_COLUMNS as i32;
    for (i, (name, style)) in styles.iter().enumerate() {
        let x = 60 + (i % LEGEND_COLUMNS) as i32 * column;
        let y = 10 + (i / LEGEND_COLUMNS) as i32 * LEGEND_ROW;
        let width = if style.raw { 1 } else { 2 };
        area.draw(&PathElement::new(
            vec![(x, y), (x + 24, y)],
            style.colour.stroke_width(width),
        ))
        .map_err(|e| anyhow!("{e}"))?;
        if style.raw {
            area.draw(&Cross::new((x + 12, y), 4, style.colour.stroke_width(1)))
        } else {
            area.draw(&Circle::new((x + 12, y), 3, style.colour.filled()))
        }
        .map_err(|e| anyhow!("{e}"))?;
        area.draw(&Text::new(
            name.clone(),
            (x + 32, y - 7),
            ("sans-serif", 14).into_font(),
        ))
        .map_err(|e| anyhow!("{e}"))?;
    }
    Ok(())
}

fn panel_chart(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    metric: &str,
    points: &[ScalePoint],
    styles: &[(String, Style)],
) -> Result<()> {
    let ours: Vec<&ScalePoint> = points.iter().filter(|p| p.metric == metric).collect();
    let (ymin, ymax) = ours.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(p.p50_us), b.max(p.p50_us))
    });
    let (ymin, ymax) = if ours.is_empty() {
        (1.0, 10.0)
    } else {
        ((ymin / 2.0).max(0.01), ymax * 2.0)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{metric}: median latency vs stored"),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((500u64..2_000_000u64).log_scale(), (ymin..ymax).log_scale())
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("entries / messages stored")
        .y_desc("µs (median)")
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    for (name, style) in styles {
        let series: Vec<(u64, f64)> = ours
            .iter()
            .filter(|p| p.backend == *name)
            .map(|p| (p.size.max(1), p.p50_us))
            .collect();
        if series.is_empty() {
            continue;
        }
        let colour = style.colour;
        let width = if style.raw { 1 } else { 2 };
        chart
            .draw_series(LineSeries::new(series.clone(), colour.stroke_width(width)))
            .map_err(|e| anyhow!("{e}"))?;
        if style.raw {
            chart.draw_series(
                series
                    .into_iter()
                    .map(|p| Cross::new(p, 4, colour.stroke_width(1))),
            )
        } else {
            chart.draw_series(
                series
                    .into_iter()
                    .map(|p| Circle::new(p, 3, colour.filled())),
            )
        }
        .map_err(|e| anyhow!("{e}"))?;
    }
    Ok(())
}
