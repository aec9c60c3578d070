//! The scale curves as an SVG (plotters' SVG backend, no system fonts):
//! median latency against stored size, log-log, one line per backend
//! (its raw driver's curve, where measured, thin in the same colour),
//! scan page on the left, receive on the right.

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

/// Writes the plot to `path`.
pub fn draw(path: &Path, points: &[ScalePoint]) -> Result<()> {
    let root = SVGBackend::new(path, (1200, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let panels = root.split_evenly((1, 2));
    for (panel, metric) in panels.iter().zip([SCAN, RECEIVE]) {
        panel_chart(panel, metric, points)?;
    }
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

fn panel_chart(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    metric: &str,
    points: &[ScalePoint],
) -> Result<()> {
    let ours: Vec<&ScalePoint> = points.iter().filter(|p| p.metric == metric).collect();
    let (ymin, ymax) = ours.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
        (a.min(p.p50_us), b.max(p.p50_us))
    });
    let (ymin, ymax) = if ours.is_empty() {
        (1.0, 10.0)
    } else {
        ((ymin / 2.0).max(0.1), ymax * 2.0)
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
    let mut backends: Vec<&str> = ours.iter().map(|p| p.backend.as_str()).collect();
    backends.dedup();
    // A raw driver's curve takes its adapter's colour, drawn thin with
    // crosses.
    let mut bases: Vec<&str> = Vec::new();
    for b in &backends {
        let base = b.split(RAW_MARK).next().unwrap_or(b);
        if !bases.contains(&base) {
            bases.push(base);
        }
    }
    for b in backends.iter() {
        let base = b.split(RAW_MARK).next().unwrap_or(b);
        let raw = base.len() != b.len();
        let i = bases.iter().position(|x| *x == base).unwrap_or(0);
        let colour = COLOURS[i % COLOURS.len()];
        let series: Vec<(u64, f64)> = ours
            .iter()
            .filter(|p| p.backend == *b)
            .map(|p| (p.size.max(1), p.p50_us))
            .collect();
        let width = if raw { 1 } else { 2 };
        chart
            .draw_series(LineSeries::new(series.clone(), colour.stroke_width(width)))
            .map_err(|e| anyhow!("{e}"))?
            .label(*b)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
        if raw {
            chart
                .draw_series(
                    series
                        .into_iter()
                        .map(|p| Cross::new(p, 4, colour.stroke_width(1))),
                )
                .map_err(|e| anyhow!("{e}"))?;
        } else {
            chart
                .draw_series(
                    series
                        .into_iter()
                        .map(|p| Circle::new(p, 3, colour.filled())),
                )
                .map_err(|e| anyhow!("{e}"))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
