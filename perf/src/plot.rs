//! Every chart the project draws, as SVG text: line charts over steps
//! (`prior perf report`'s throughput, stall share and loss; the experiment
//! report's training loss) and grouped bar charts with error bars (the
//! experiment report's misalignment rates and held-out losses).
//!
//! It lives in prior-perf because the design gives plots to this crate;
//! prior-eval uses it through this module's small types (prior-perf does
//! not depend on prior-eval, so there is no cycle). Callers hand over
//! numbers and names and get an SVG document back; how a chart is laid out
//! is decided here, once, so both reports look alike.
//!
//! Drawing is plotters' SVG backend with no font feature: text (titles,
//! axis names, tick labels, legends) is written as `<text>` elements that
//! the viewer renders with its own sans-serif font, and plotters lays it out
//! with its built-in size estimate rather than by loading system fonts
//! (which would need fontconfig and freetype). The backend escapes every
//! text and attribute it writes, so a name with `<` or `&` in it stays text.
//!
//! Points or bars whose value is not finite are left out rather than drawn
//! at a made-up position; a chart with nothing to draw still has its
//! frame, title and legend.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Tableau 10's first eight: distinct in colour and in grey.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0x9c, 0x75, 0x5f),
];

/// Error bars: dark, but not the axes' black.
const WHISKER: RGBColor = RGBColor(0x33, 0x33, 0x33);

const FONT: &str = "sans-serif";
const TITLE_SIZE: u32 = 18;
const LABEL_SIZE: u32 = 13;

/// A chart that could not be drawn (plotters refused the layout, say a
/// canvas too small for its labels).
#[derive(Debug, thiserror::Error)]
#[error("chart {title:?}: {detail}")]
pub struct PlotError {
    pub title: String,
    pub detail: String,
}

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// One named line of (x, y) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Lines over a shared x axis, one legend entry per series.
#[derive(Debug, Clone)]
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub series: &'a [Series],
    /// Width and height in pixels.
    pub size: (u32, u32),
    /// The y axis starts at 0 (or below, for negative values) and leaves
    /// 5% above the largest value; otherwise it spans the data exactly,
    /// which shows small changes (a loss curve) at full height.
    pub y_from_zero: bool,
}

/// One bar: its height and the half-length of its error bar (0: none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    pub value: f64,
    pub error: f64,
}

/// One legend entry of a bar chart: its bar in each group, in group order
/// (a missing or non-finite bar is not drawn).
#[derive(Debug, Clone, PartialEq)]
pub struct BarSeries {
    pub name: String,
    pub bars: Vec<Bar>,
}

/// Groups along x, one bar per series in each group.
#[derive(Debug, Clone)]
pub struct BarChart<'a> {
    pub title: &'a str,
    pub y_label: &'a str,
    pub groups: &'a [String],
    pub series: &'a [BarSeries],
    /// Top of the y axis (a rate's 1.0, say); `None`: at least 15% above
    /// the highest bar with its error, more where the legend needs the
    /// room to sit above the bars.
    pub y_max: Option<f64>,
    /// Width and height in pixels.
    pub size: (u32, u32),
}

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Draws on a white canvas of `size` and returns the SVG document.
fn render(
    title: &str,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> DrawResult,
) -> Result<String, PlotError> {
    let failed = |e: DrawingAreaErrorKind<std::io::Error>| PlotError {
        title: title.to_string(),
        detail: e.to_string(),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        draw(&root).map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// The legend, in `corner` over a translucent white box.
fn legend<'a, X, Y>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    corner: SeriesLabelPosition,
) -> DrawResult
where
    X: plotters::coord::ranged1d::Ranged,
    Y: plotters::coord::ranged1d::Ranged,
{
    chart
        .configure_series_labels()
        .position(corner)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, LABEL_SIZE))
        .draw()
}

/// The corner of the plot where the legend hides the least data: the one
/// with the fewest of `points` (scaled to 0..1 on both axes, y up) in the
/// box a legend takes there, preferring upper right, then lower right,
/// upper left and lower left on ties.
fn legend_corner(points: impl Iterator<Item = (f64, f64)>) -> SeriesLabelPosition {
    use SeriesLabelPosition::*;
    // About the legend's share of the plot for a few entries.
    let (w, h) = (0.3, 0.3);
    let corners = [
        (UpperRight, 1.0 - w..=1.0, 1.0 - h..=1.0),
        (LowerRight, 1.0 - w..=1.0, 0.0..=h),
        (UpperLeft, 0.0..=w, 1.0 - h..=1.0),
        (LowerLeft, 0.0..=w, 0.0..=h),
    ];
    let mut hidden = [0usize; 4];
    for (x, y) in points {
        for (k, (_, xs, ys)) in corners.iter().enumerate() {
            hidden[k] += (xs.contains(&x) && ys.contains(&y)) as usize;
        }
    }
    let best = (0..corners.len()).min_by_key(|&k| hidden[k]).unwrap_or(0);
    corners[best].0.clone()
}

/// A tick label with as many decimals as ticks `span` apart need: none
/// for a span of 100 or more (steps, tokens/s), 1 for about 1 to 10, ...
fn tick(v: f64, span: f64) -> String {
    let decimals = if span >= 100.0 || span <= 0.0 || !span.is_finite() {
        0
    } else {
        (-(span / 10.0).log10()).ceil().clamp(0.0, 6.0) as usize
    };
    format!("{v:.decimals$}")
}

/// The smallest range holding `values`, at least `min_span` wide; 0..1
/// when there are none.
fn span(values: impl Iterator<Item = f64>, min_span: f64) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return (0.0, 1.0);
    }
    (lo, hi.max(lo + min_span))
}

/// A line chart as an SVG document.
pub fn line_chart(c: &LineChart) -> Result<String, PlotError> {
    let finite = || {
        c.series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let (x0, x1) = span(finite().map(|p| p.0), 1.0);
    let (y0, y1) = match c.y_from_zero {
        true => {
            let (lo, hi) = span(finite().map(|p| p.1), 1e-9);
            (lo.min(0.0), hi * 1.05)
        }
        false => span(finite().map(|p| p.1), 1e-6),
    };
    render(c.title, c.size, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(c.title, (FONT, TITLE_SIZE))
            .margin(12)
            .x_label_area_size(40)
            .margin_right(24)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)?;
        let (x_tick, y_tick) = (|v: &f64| tick(*v, x1 - x0), |v: &f64| tick(*v, y1 - y0));
        chart
            .configure_mesh()
            .x_desc(c.x_label)
            .y_desc(c.y_label)
            .label_style((FONT, LABEL_SIZE))
            .axis_desc_style((FONT, LABEL_SIZE))
            .x_label_formatter(&x_tick)
            .y_label_formatter(&y_tick)
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
        for (i, s) in c.series.iter().enumerate() {
            let style = color(i).stroke_width(2);
            let points = s
                .points
                .iter()
                .copied()
                .filter(|(x, y)| x.is_finite() && y.is_finite());
            chart
                .draw_series(LineSeries::new(points, style))?
                .label(s.name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
        if !c.series.is_empty() {
            let scaled = finite().map(|(x, y)| ((x - x0) / (x1 - x0), (y - y0) / (y1 - y0)));
            legend(&mut chart, legend_corner(scaled))?;
        }
        Ok(())
    })
}

/// Pixel width plotters' built-in estimate gives `text` at `size` (what
/// its layout uses too, since no font is loaded).
fn text_width(text: &str, size: u32) -> f64 {
    let em = size as f64 / 1.24 / 1.24;
    em * 0.7 * text.chars().count() as f64
}

/// A grouped bar chart as an SVG document. Group names are written under
/// their groups, turned upright when they are too long to fit side by side.
pub fn bar_chart(c: &BarChart) -> Result<String, PlotError> {
    let n = c.groups.len().max(1);
    let bars = || {
        c.series
            .iter()
            .flat_map(|s| s.bars.iter())
            .filter(|b| b.value.is_finite())
    };
    let (left, margin) = (64u32, 12u32);
    let group_px = (c.size.0.saturating_sub(left + 2 * margin)) as f64 / n as f64;
    let widest = c
        .groups
        .iter()
        .map(|g| text_width(g, LABEL_SIZE))
        .fold(0.0, f64::max);
    let upright = widest > group_px * 0.95;
    let label_area = match upright {
        true => (widest + 16.0).min(c.size.1 as f64 / 2.0) as u32,
        false => 32,
    };
    let top = c.y_max.unwrap_or_else(|| {
        let highest = bars()
            .map(|b| b.value + b.error.max(0.0))
            .fold(0.0, f64::max);
        // Room above the highest bar for the legend (about 18 px an entry
        // and its box), and at least 15% of headroom.
        let plot_px = c.size.1 as f64 - (TITLE_SIZE + 2 * margin + label_area) as f64 - 30.0;
        let legend_px = 24.0 + 18.0 * c.series.len() as f64;
        let free = (1.0 - legend_px / plot_px.max(1.0)).clamp(0.5, 1.0 / 1.15);
        highest / free
    });
    let top = if top > 0.0 && top.is_finite() {
        top
    } else {
        1.0
    };
    render(c.title, c.size, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(c.title, (FONT, TITLE_SIZE))
            .margin(margin)
            .x_label_area_size(label_area)
            .y_label_area_size(left)
            .build_cartesian_2d(0.0..n as f64, 0.0..top)?;
        let y_tick = |v: &f64| tick(*v, top);
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(c.y_label)
            .label_style((FONT, LABEL_SIZE))
            .axis_desc_style((FONT, LABEL_SIZE))
            .y_label_formatter(&y_tick)
            // Group names are drawn below, under their groups' centres.
            .x_labels(0)
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;
        let slot = 0.8 / c.series.len().max(1) as f64;
        for (si, s) in c.series.iter().enumerate() {
            let fill = color(si).filled();
            let drawn: Vec<(f64, Bar)> = s
                .bars
                .iter()
                .take(c.groups.len())
                .enumerate()
                .filter(|(_, b)| b.value.is_finite())
                .map(|(g, b)| (g as f64 + 0.1 + si as f64 * slot, *b))
                .collect();
            chart
                .draw_series(drawn.iter().map(|&(x, b)| {
                    Rectangle::new([(x, 0.0), (x + slot * 0.9, b.value.clamp(0.0, top))], fill)
                }))?
                .label(s.name.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], fill));
            let whisker = WHISKER.stroke_width(1);
            for &(x, b) in drawn.iter().filter(|(_, b)| b.error > 0.0) {
                let (cx, cap) = (x + slot * 0.45, slot * 0.15);
                let (lo, hi) = (
                    (b.value - b.error).clamp(0.0, top),
                    (b.value + b.error).clamp(0.0, top),
                );
                chart.draw_series([
                    PathElement::new(vec![(cx, lo), (cx, hi)], whisker),
                    PathElement::new(vec![(cx - cap, lo), (cx + cap, lo)], whisker),
                    PathElement::new(vec![(cx - cap, hi), (cx + cap, hi)], whisker),
                ])?;
            }
        }
        // Upright names read from the bottom up, ending just under the axis.
        let (transform, h_pos, v_pos) = match upright {
            true => (FontTransform::Rotate270, HPos::Right, VPos::Center),
            false => (FontTransform::None, HPos::Center, VPos::Top),
        };
        let style = TextStyle::from((FONT, LABEL_SIZE).into_font())
            .transform(transform)
            .pos(Pos::new(h_pos, v_pos));
        for (g, name) in c.groups.iter().enumerate() {
            let (px, py) = chart.backend_coord(&(g as f64 + 0.5, 0.0));
            root.draw(&Text::new(name.as_str(), (px, py + 8), style.clone()))?;
        }
        if !c.series.is_empty() {
            // A bar fills its column from the axis up: every height below
            // its top is covered.
            let covered = c.series.iter().enumerate().flat_map(|(si, s)| {
                let bars = s.bars.iter().take(c.groups.len()).enumerate();
                bars.filter(|(_, b)| b.value.is_finite())
                    .flat_map(move |(g, b)| {
                        let x = (g as f64 + 0.1 + (si as f64 + 0.5) * slot) / n as f64;
                        let y = (b.value + b.error.max(0.0)).clamp(0.0, top) / top;
                        (0..=10).map(move |k| (x, y * k as f64 / 10.0))
                    })
            });
            legend(&mut chart, legend_corner(covered))?;
        }
        Ok(())
    })
}

/// The text of every `<text>` element of an SVG document (or of a page
/// that holds several), trimmed and still escaped: what a reader of the
/// chart sees, for tests and scripts that check a chart's titles, axes and
/// legend.
pub fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            Some(
                t.split_once('>')?
                    .1
                    .split_once("</text>")?
                    .0
                    .trim()
                    .to_string(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stroke(c: RGBColor) -> String {
        format!(r##"stroke="#{:02X}{:02X}{:02X}""##, c.0, c.1, c.2)
    }

    fn fill(c: RGBColor) -> String {
        format!(r##"fill="#{:02X}{:02X}{:02X}""##, c.0, c.1, c.2)
    }

    #[test]
    fn a_line_chart_has_its_title_axis_names_and_a_legend_entry_per_series() {
        let series = [
            Series {
                name: "train".into(),
                points: vec![(1.0, 5.0), (2.0, 4.0), (3.0, f64::NAN), (4.0, 3.0)],
            },
            Series {
                name: "held-out a<b".into(),
                points: vec![(2.0, 4.5), (4.0, 3.5)],
            },
        ];
        let svg = line_chart(&LineChart {
            title: "Loss",
            x_label: "step",
            y_label: "nats/token",
            series: &series,
            size: (720, 300),
            y_from_zero: false,
        })
        .unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        let t = svg_texts(&svg);
        for want in ["Loss", "step", "nats/token", "train", "held-out a&lt;b"] {
            assert!(t.iter().any(|x| x == want), "{want} in {t:?}");
        }
        // A curve and a legend sample per series, in the series' colour;
        // the NaN point is left out, not drawn.
        let curves = |c: RGBColor| -> Vec<usize> {
            svg.split("<polyline")
                .filter(|p| p.contains(&stroke(c)))
                .filter_map(|p| Some(p.split_once("points=\"")?.1.split_once('"')?.0))
                .map(|pts| pts.split_whitespace().count())
                .collect()
        };
        assert_eq!(curves(PALETTE[0]), [3, 2], "{svg}");
        assert_eq!(curves(PALETTE[1]), [2, 2], "{svg}");
        assert!(!svg.contains("NaN"), "{svg}");
    }

    #[test]
    fn a_bar_chart_draws_a_bar_per_finite_value_and_its_error_bar() {
        let groups = ["base".to_string(), "late".to_string()];
        let series = [
            BarSeries {
                name: "heldout".into(),
                bars: vec![
                    Bar {
                        value: 0.4,
                        error: 0.05,
                    },
                    Bar {
                        value: 0.3,
                        error: 0.0,
                    },
                ],
            },
            BarSeries {
                name: "train_like".into(),
                bars: vec![
                    Bar {
                        value: f64::NAN,
                        error: 0.0,
                    },
                    Bar {
                        value: 0.6,
                        error: 0.1,
                    },
                ],
            },
        ];
        let svg = bar_chart(&BarChart {
            title: "Misalignment",
            y_label: "rate",
            groups: &groups,
            series: &series,
            y_max: Some(1.0),
            size: (760, 420),
        })
        .unwrap();
        let t = svg_texts(&svg);
        for want in [
            "Misalignment",
            "rate",
            "base",
            "late",
            "heldout",
            "train_like",
        ] {
            assert!(t.iter().any(|x| x == want), "{want} in {t:?}");
        }
        // A bar per finite value and a legend swatch per series, filled
        // in the series' colour.
        let filled = |c: RGBColor| svg.matches(&fill(c)).count();
        assert_eq!(filled(PALETTE[0]), 2 + 1, "{svg}");
        assert_eq!(filled(PALETTE[1]), 1 + 1, "{svg}");
        // Two error bars of three strokes each.
        let whiskers = svg
            .split("<polyline")
            .filter(|p| p.contains(&stroke(WHISKER)))
            .count();
        assert_eq!(whiskers, 2 * 3, "{svg}");
    }

    #[test]
    fn ticks_have_the_decimals_their_spacing_needs() {
        assert_eq!(tick(200.0, 199.0), "200");
        assert_eq!(tick(12000.0, 13000.0), "12000");
        assert_eq!(tick(3.5, 3.0), "3.5");
        assert_eq!(tick(0.3, 1.0), "0.3");
        assert_eq!(tick(0.012, 0.05), "0.012");
    }

    #[test]
    fn the_legend_goes_where_it_hides_the_least() {
        use SeriesLabelPosition::*;
        let falling = (0..100).map(|i| (i as f64 / 99.0, 1.0 - i as f64 / 99.0));
        assert_eq!(legend_corner(falling), UpperRight);
        let high = (0..100).map(|i| (i as f64 / 99.0, 0.95));
        assert_eq!(legend_corner(high), LowerRight);
        let rising = (0..100).map(|i| (i as f64 / 99.0, i as f64 / 99.0));
        assert_eq!(legend_corner(rising), LowerRight);
    }

    #[test]
    fn long_group_names_stand_upright() {
        let groups: Vec<String> = (0..6)
            .map(|i| format!("a_rather_long_condition_name_{i}"))
            .collect();
        let series = [BarSeries {
            name: "s".into(),
            bars: vec![
                Bar {
                    value: 1.0,
                    error: 0.0
                };
                6
            ],
        }];
        let svg = bar_chart(&BarChart {
            title: "t",
            y_label: "y",
            groups: &groups,
            series: &series,
            y_max: None,
            size: (760, 420),
        })
        .unwrap();
        assert_eq!(svg.matches("rotate(270").count(), 6 + 1, "{svg}");
        assert!(svg_texts(&svg).contains(&"a_rather_long_condition_name_5".to_string()));
    }
}
