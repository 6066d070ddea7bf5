//! The digest's charts: drawn as SVG with plotters, rasterised to PNG with resvg (mail
//! clients show PNG inline; few show SVG).
//!
//! resvg draws no text without a font, and a Latin font draws Chinese as nothing at all,
//! so [`fonts`] loads `[digest] font_file` or the first CJK font of a Debian system
//! (`fonts-wqy-microhei`, which the package depends on and the test set-up installs) and
//! makes it the sans-serif family plotters names. Labels come from configuration and
//! triage (agent names, categories); they are cut to a length and stripped of control
//! characters before they are drawn.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use resvg::usvg;

/// Chart size in CSS pixels (rendered at twice that for sharp text on high-DPI screens).
pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 300;
const SCALE: f32 = 2.0;

/// Font files tried in order when `[digest] font_file` names none: CJK first.
pub const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
];

/// Fonts the charts are drawn with, and the family name used as sans-serif.
pub struct Fonts {
    db: Arc<usvg::fontdb::Database>,
    pub family: Option<String>,
    pub files: Vec<PathBuf>,
}

impl Fonts {
    /// Loads `files` (those that exist and parse); the first font's family becomes
    /// sans-serif.
    pub fn load(files: &[PathBuf]) -> Fonts {
        let mut db = usvg::fontdb::Database::new();
        let mut loaded = Vec::new();
        for f in files {
            let Ok(bytes) = std::fs::read(f) else {
                continue;
            };
            let before = db.len();
            db.load_font_data(bytes);
            if db.len() > before {
                loaded.push(f.clone());
            }
        }
        let family = db
            .faces()
            .next()
            .and_then(|face| face.families.first())
            .map(|(name, _)| name.clone());
        if let Some(f) = &family {
            db.set_sans_serif_family(f.clone());
        }
        Fonts {
            db: Arc::new(db),
            family,
            files: loaded,
        }
    }
}

/// The process's fonts, loaded once: `font_file` if given, else the candidates that exist.
pub fn fonts(font_file: Option<&Path>) -> &'static Fonts {
    static FONTS: OnceLock<Fonts> = OnceLock::new();
    FONTS.get_or_init(|| {
        let files: Vec<PathBuf> = match font_file {
            Some(f) => vec![f.to_path_buf()],
            None => FONT_CANDIDATES
                .iter()
                .map(PathBuf::from)
                .filter(|p| p.exists())
                .collect(),
        };
        let f = Fonts::load(&files);
        match &f.family {
            Some(name) => tracing::info!("Charts: drawing text with {name:?}"),
            None => tracing::warn!(
                "Charts: no font found (tried {}); charts will have no labels. Install \
                 fonts-wqy-microhei or set [digest] font_file",
                files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
        f
    })
}

/// A chart drawn for a mail.
#[derive(Debug, Clone)]
pub struct InlineChart {
    /// Short name: the image's Content-ID is `<id>@postdesk`, its file `<id>.png`.
    pub id: String,
    pub title: String,
    pub png: Vec<u8>,
}

/// A label made safe to draw: no control characters, at most `max` characters.
pub fn label(s: &str, max: usize) -> String {
    let clean: String = s.chars().filter(|c| !c.is_control()).collect();
    if clean.chars().count() > max {
        let mut cut: String = clean.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        clean
    }
}

/// Rasterises an SVG to PNG bytes with `fonts`.
pub fn to_png(svg: &str, fonts: &Fonts) -> Result<Vec<u8>> {
    let opt = usvg::Options {
        fontdb: Arc::clone(&fonts.db),
        ..usvg::Options::default()
    };
    let tree = usvg::Tree::from_str(svg, &opt).context("Reading the chart's SVG")?;
    let size = tree.size();
    let (w, h) = (
        (size.width() * SCALE).ceil() as u32,
        (size.height() * SCALE).ceil() as u32,
    );
    let mut pixmap = resvg::tiny_skia::Pixmap::new(w.max(1), h.max(1))
        .ok_or_else(|| anyhow!("a {w}x{h} chart is too large"))?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(SCALE, SCALE),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().context("Encoding the chart as PNG")
}

const NEW: RGBColor = RGBColor(37, 99, 235);
const RESOLVED: RGBColor = RGBColor(22, 163, 74);
const BAR: RGBColor = RGBColor(79, 70, 229);
const FONT: &str = "sans-serif";

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("Drawing a chart: {e:?}")
}

/// The name of the item centred on `x` (item i sits at x = i), or nothing between items.
fn name_at(names: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() < 1e-6 && i >= 0.0 {
        names.get(i as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}

/// Tickets new and resolved per day: two lines over the days' labels.
pub fn volume_svg(title: &str, days: &[(String, i64, i64)]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let n = days.len().max(1) as i32;
        let top = days.iter().map(|d| d.1.max(d.2)).max().unwrap_or(0).max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(label(title, 60), (FONT, 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(44)
            .build_cartesian_2d(-0.5f64..(f64::from(n) - 0.5), 0f64..(top as f64 * 1.15))
            .map_err(err)?;
        let names: Vec<String> = days.iter().map(|d| label(&d.0, 10)).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(days.len().max(1))
            .x_label_formatter(&|x| name_at(&names, *x))
            // Counts: whole numbers only (small ranges would repeat "2" for 1.5 and 2.5).
            .y_label_formatter(&|y| {
                if (y - y.round()).abs() < 1e-6 {
                    format!("{y:.0}")
                } else {
                    String::new()
                }
            })
            .label_style((FONT, 13))
            .draw()
            .map_err(err)?;
        for (name, color, pick) in [("new", NEW, 1usize), ("resolved", RESOLVED, 2usize)] {
            let points: Vec<(f64, f64)> = days
                .iter()
                .enumerate()
                .map(|(i, d)| (i as f64, if pick == 1 { d.1 } else { d.2 } as f64))
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
                });
            chart
                .draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// One bar per named value (an agent's median first response in hours, a category's
/// resolution rate in percent).
pub fn bars_svg(title: &str, unit: &str, bars: &[(String, f64)]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let n = bars.len().max(1) as f64;
        let top = bars.iter().map(|b| b.1).fold(0.0, f64::max).max(1.0);
        let names: Vec<String> = bars.iter().map(|b| label(&b.0, 14)).collect();
        // Bar i is centred on x = i; the slots are one unit wide, a bar three fifths.
        let mut chart = ChartBuilder::on(&root)
            .caption(label(title, 60), (FONT, 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(-0.5f64..(n - 0.5), 0f64..(top * 1.15))
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bars.len().max(1))
            .x_label_formatter(&|x| name_at(&names, *x))
            .y_desc(label(unit, 20))
            .y_label_formatter(&|y| {
                if top < 10.0 {
                    format!("{y:.1}")
                } else {
                    format!("{y:.0}")
                }
            })
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 13))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let x = i as f64;
                Rectangle::new([(x - 0.3, 0.0), (x + 0.3, *v)], BAR.filled())
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Arrivals by weekday (rows, Monday first) and hour: darker is busier.
pub fn heatmap_svg(title: &str, grid: &[[i64; 24]; 7], days: &[&str; 7]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let max = grid.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
        let names: Vec<String> = days.iter().map(|d| label(d, 6)).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(label(title, 60), (FONT, 18))
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d((0i32..23).into_segmented(), (0i32..6).into_segmented())
            .map_err(err)?;
        let center = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) => Some(*i),
            _ => None,
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(24)
            .y_labels(7)
            .x_label_formatter(&|v| match center(v) {
                Some(h) if h % 3 == 0 => format!("{h:02}"),
                _ => String::new(),
            })
            .y_label_formatter(&|v| {
                // Monday on top: row 6 is Monday.
                center(v)
                    .and_then(|d| usize::try_from(6 - d).ok())
                    .and_then(|i| names.get(i).cloned())
                    .unwrap_or_default()
            })
            .label_style((FONT, 12))
            .draw()
            .map_err(err)?;
        let cells = grid.iter().enumerate().flat_map(|(d, row)| {
            row.iter()
                .enumerate()
                .map(move |(h, n)| (d as i32, h as i32, *n))
        });
        chart
            .draw_series(cells.map(|(d, h, n)| {
                let t = n as f64 / max;
                let shade =
                    |lo: u8, hi: u8| (f64::from(lo) + (f64::from(hi) - f64::from(lo)) * t) as u8;
                let color = RGBColor(shade(239, 30), shade(246, 64), shade(255, 175));
                let (x, y) = (SegmentValue::Exact(h), SegmentValue::Exact(6 - d));
                let (x1, y1) = (SegmentValue::Exact(h + 1), SegmentValue::Exact(7 - d));
                let mut r = Rectangle::new([(x, y), (x1, y1)], color.filled());
                r.set_margin(1, 1, 1, 1);
                r
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CJK font the test set-up installs; under CI its absence fails the test.
    fn cjk() -> Option<Fonts> {
        let f = Fonts::load(&[PathBuf::from(FONT_CANDIDATES[0])]);
        if f.family.is_none() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{} is missing: scripts/test-deps.sh installs fonts-wqy-microhei",
                FONT_CANDIDATES[0]
            );
            eprintln!("skipped: no CJK font at {}", FONT_CANDIDATES[0]);
        }
        f.family.is_some().then_some(f)
    }

    fn pixels(png: &[u8]) -> resvg::tiny_skia::Pixmap {
        resvg::tiny_skia::Pixmap::decode_png(png).unwrap()
    }

    /// Pixels that differ between two images of the same size, and their bounding box.
    fn diff(
        a: &resvg::tiny_skia::Pixmap,
        b: &resvg::tiny_skia::Pixmap,
    ) -> (usize, (u32, u32, u32, u32)) {
        assert_eq!((a.width(), a.height()), (b.width(), b.height()));
        let (mut n, mut bx) = (0, (u32::MAX, u32::MAX, 0, 0));
        for (i, (p, q)) in a.pixels().iter().zip(b.pixels()).enumerate() {
            if p != q {
                n += 1;
                let (x, y) = (i as u32 % a.width(), i as u32 / a.width());
                bx = (bx.0.min(x), bx.1.min(y), bx.2.max(x), bx.3.max(y));
            }
        }
        (n, bx)
    }

    fn dark(p: &resvg::tiny_skia::Pixmap, (x0, y0, x1, y1): (u32, u32, u32, u32)) -> usize {
        let mut n = 0;
        for y in y0..=y1 {
            for x in x0..=x1 {
                if let Some(c) = p.pixel(x, y)
                    && u32::from(c.red()) + u32::from(c.green()) + u32::from(c.blue()) < 300
                {
                    n += 1;
                }
            }
        }
        n
    }

    #[test]
    fn chinese_labels_are_drawn_as_glyphs() {
        let Some(fonts) = cjk() else { return };
        let chart = |first: &str| {
            let svg = bars_svg(
                "解决率 by category",
                "%",
                &[(first.to_string(), 80.0), ("login".to_string(), 55.0)],
            )
            .unwrap();
            pixels(&to_png(&svg, &fonts).unwrap())
        };
        let refund = chart("退款");
        assert_eq!(refund.width(), WIDTH * 2);
        // The same two characters in the other order: missing glyphs ("tofu" boxes, or
        // nothing) look alike whatever the character; real glyphs do not.
        let swapped = chart("款退");
        let (changed, bx) = diff(&refund, &swapped);
        assert!(
            changed > 50,
            "the two labels drew the same pixels: {changed}"
        );
        // Only the label changed: a small box low in the chart (the x axis labels).
        assert!(bx.1 > refund.height() / 2, "{bx:?}");
        assert!(bx.2 - bx.0 < refund.width() / 4, "{bx:?}");
        assert!(dark(&refund, bx) > 40, "the glyphs are inked");
        // With a Latin-only font the Chinese label draws nothing at all.
        let latin = Fonts::load(&[PathBuf::from(
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        )]);
        if latin.family.is_some() {
            let svg = bars_svg("t", "%", &[("退款".into(), 80.0), ("login".into(), 55.0)]).unwrap();
            let a = pixels(&to_png(&svg, &latin).unwrap());
            let svg = bars_svg("t", "%", &[("款退".into(), 80.0), ("login".into(), 55.0)]).unwrap();
            let b = pixels(&to_png(&svg, &latin).unwrap());
            assert_eq!(
                diff(&a, &b).0,
                0,
                "no CJK glyphs: both labels look the same"
            );
        }
    }

    #[test]
    fn every_chart_renders_and_hostile_labels_are_tamed() {
        let Some(fonts) = cjk() else { return };
        let days: Vec<(String, i64, i64)> = (1..=7)
            .map(|d| (format!("12-0{d}"), d * 3, d * 2))
            .collect();
        let grid = {
            let mut g = [[0i64; 24]; 7];
            g[0][9] = 12;
            g[4][15] = 3;
            g
        };
        for svg in [
            volume_svg("Tickets per day", &days).unwrap(),
            volume_svg("empty", &[]).unwrap(),
            bars_svg(
                "First response",
                "hours",
                &[("alice".into(), 1.5), ("王芳".into(), 0.0)],
            )
            .unwrap(),
            bars_svg("none", "%", &[]).unwrap(),
            heatmap_svg(
                "Peak hours",
                &grid,
                &["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
            )
            .unwrap(),
            bars_svg(
                "<script>&",
                "%",
                &[("</text><svg onload=x>\u{1b}[2J".into(), 1.0)],
            )
            .unwrap(),
        ]
        .into_iter()
        .enumerate()
        {
            let png = to_png(&svg.1, &fonts).unwrap();
            // POSTDESK_CHARTS_OUT=DIR keeps the images, to look at them.
            if let Ok(dir) = std::env::var("POSTDESK_CHARTS_OUT") {
                std::fs::write(format!("{dir}/chart-{}.png", svg.0), &png).unwrap();
            }
            let p = pixels(&png);
            assert_eq!((p.width(), p.height()), (WIDTH * 2, HEIGHT * 2));
            assert!(
                p.pixels().iter().any(|c| c.red() < 200),
                "something is drawn"
            );
        }
        assert_eq!(label("a\u{1b}b\nc", 10), "abc");
        assert_eq!(label("abcdefghijkl", 5), "abcd…");
    }

    /// Browsers refuse a negative width or height (the dashboard drew a lone bar with a
    /// width of -224 once); each bar is as wide as the others and sits on the axis.
    #[test]
    fn bars_have_a_positive_size_however_many_there_are() {
        let sizes = |svg: &str, attr: &str| -> Vec<f64> {
            svg.split(&format!(" {attr}=\""))
                .skip(1)
                .filter_map(|rest| rest.split('"').next()?.parse().ok())
                .collect()
        };
        for n in 0..=6usize {
            let bars: Vec<(String, f64)> =
                (0..n).map(|i| (format!("b{i}"), 1.0 + i as f64)).collect();
            let svg = bars_svg("t", "%", &bars).unwrap();
            for attr in ["width", "height"] {
                let all = sizes(&svg, attr);
                assert!(all.iter().all(|v| *v >= 0.0), "{n} bars: {attr} {all:?}");
            }
            // The bars are the filled rectangles in the bar colour.
            let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", BAR.0, BAR.1, BAR.2);
            let drawn: Vec<f64> = svg
                .split("<rect")
                .filter(|r| r.split('>').next().is_some_and(|r| r.contains(&fill)))
                .filter_map(|r| {
                    sizes(r.split('>').next().unwrap_or_default(), "width")
                        .first()
                        .copied()
                })
                .collect();
            assert_eq!(drawn.len(), n, "{n} bars drawn: {svg}");
            assert!(
                drawn
                    .iter()
                    .all(|w| *w > 10.0 && (w - drawn[0]).abs() <= 1.0),
                "{n} bars: widths {drawn:?}"
            );
        }
    }
}
