/// Self-contained HTML reports (inline SVG charts, no scripts, no network): they open offline.
struct ChartSeries {
    var name: String
    var points: [(x: Double, y: Double)]
    /// The colour's index when a mode keeps its colour across charts that show only some modes (default: the
    /// series' position).
    var colorIndex: Int? = nil
}

enum Report {
    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "&": out += "&amp;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }

    /// A line chart with axes, ticks, legend; `xLog` spaces x logarithmically; `xTickLabels` names x values.
    static func lineChart(title: String, xLabel: String, yLabel: String, series: [ChartSeries], xLog: Bool = false,
                          xTicks: [(Double, String)]? = nil, width: Int = 760, height: Int = 380) -> String {
        // The legend column widens for long names (`SYNC_FLUSH/io_uring, SYNC_MASTER+SLAVE`) instead of overflowing.
        let legendChars = series.map(\.name.count).max() ?? 0
        let right = max(190.0, 44 + 8.5 * Double(legendChars))  // 8.5 px: a capital at 12 px, with room
        let width = width + Int(right - 190)
        let left = 80.0, top = 40.0, bottom = 56.0
        let plotWidth = Double(width) - left - right, plotHeight = Double(height) - top - bottom
        let xs = series.flatMap { $0.points.map(\.x) }, ys = series.flatMap { $0.points.map(\.y) }
        func tx(_ x: Double) -> Double { xLog ? log10(max(x, 1e-9)) : x }
        var xMin = xs.map(tx).min() ?? 0, xMax = xs.map(tx).max() ?? 1
        if xMax - xMin < 1e-9 { xMin -= 0.5; xMax += 0.5 }
        let yMax = niceCeiling(max(ys.max() ?? 1, 1e-9))
        func px(_ x: Double) -> Double { left + (tx(x) - xMin) / (xMax - xMin) * plotWidth }
        func py(_ y: Double) -> Double { top + plotHeight - y / yMax * plotHeight }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" class=\"chart\">"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"#ffffff\"/>"
        svg += "<text x=\"\(width / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">\(escape(title))</text>"
        // Grid and y ticks.
        for step in 0...5 {
            let value = yMax * Double(step) / 5
            let y = py(value)
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(y))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(y))\" stroke=\"#e0e0e0\"/>"
            svg += "<text x=\"\(f(left - 6))\" y=\"\(f(y + 4))\" text-anchor=\"end\" font-size=\"11\">\(escape(short(value)))</text>"
        }
        let ticks = xTicks ?? Array(Set(xs)).sorted().map { ($0, short($0)) }
        for (value, label) in ticks {
            let x = px(value)
            svg += "<line x1=\"\(f(x))\" y1=\"\(f(top + plotHeight))\" x2=\"\(f(x))\" y2=\"\(f(top + plotHeight + 5))\" stroke=\"#333\"/>"
            svg += "<text x=\"\(f(x))\" y=\"\(f(top + plotHeight + 18))\" text-anchor=\"middle\" font-size=\"11\">\(escape(label))</text>"
        }
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + plotHeight))\" stroke=\"#333\"/>"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(top + plotHeight))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(top + plotHeight))\" stroke=\"#333\"/>"
        svg += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(height - 12)\" text-anchor=\"middle\" font-size=\"12\">\(escape(xLabel))</text>"
        svg += "<text x=\"16\" y=\"\(f(top + plotHeight / 2))\" text-anchor=\"middle\" font-size=\"12\" transform=\"rotate(-90 16 \(f(top + plotHeight / 2)))\">\(escape(yLabel))</text>"
        for (index, line) in series.enumerated() {
            let color = colors[(line.colorIndex ?? index) % colors.count]
            let points = line.points.sorted { $0.x < $1.x }
            if points.count > 1 {
                svg += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"3\" points=\"" + points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ") + "\"/>"
            }
            for point in points {
                svg += "<circle cx=\"\(f(px(point.x)))\" cy=\"\(f(py(point.y)))\" r=\"4.5\" fill=\"\(color)\"><title>\(escape(line.name)): \(escape(short(point.y)))</title></circle>"
            }
            let legendY = top + 10 + Double(index) * 20
            svg += "<rect x=\"\(f(left + plotWidth + 16))\" y=\"\(f(legendY - 9))\" width=\"14\" height=\"10\" fill=\"\(color)\"/>"
            svg += "<text x=\"\(f(left + plotWidth + 36))\" y=\"\(f(legendY))\" font-size=\"12\">\(escape(line.name))</text>"
        }
        return svg + "</svg>"
    }

    static func page(title: String, intro: String, sections: [(heading: String, html: String)]) -> String {
        var html = """
            <!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
            <style>body{font-family:sans-serif;margin:24px;color:#222;background:#fafafa}h1{font-size:22px}h2{font-size:17px;margin-top:28px}
            table{border-collapse:collapse;font-size:13px;background:#fff}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
            th{background:#eee}td:first-child,th:first-child{text-align:left}.chart{border:1px solid #ddd;margin:8px 8px 8px 0}
            .charts{display:flex;flex-wrap:wrap}</style></head><body><h1>\(escape(title))</h1><p>\(intro)</p>
            """
        for section in sections { html += "<h2>\(escape(section.heading))</h2>" + section.html }
        return html + "</body></html>\n"
    }

    static func table(_ header: [String], _ rows: [[String]]) -> String {
        "<table><tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>"
            + rows.map { "<tr>" + $0.map { "<td>\(escape($0))</td>" }.joined() + "</tr>" }.joined() + "</table>"
    }

    static func niceCeiling(_ value: Double) -> Double {
        let exponent = floor(log10(value))
        let base = pow(10, exponent)
        for step in [1.0, 2.0, 2.5, 5.0, 10.0] where step * base >= value { return step * base }
        return 10 * base
    }

    static func short(_ value: Double) -> String {
        if value >= 1_000_000 { return format(value / 1_000_000, 2) + "M" }
        if value >= 10_000 { return format(value / 1_000, 1) + "k" }
        if value == value.rounded() { return format(value, 0) }
        return format(value, value < 1 ? 3 : 2)
    }

    static func f(_ value: Double) -> String { format(value, 1) }
}

#if canImport(Glibc)
import Glibc
#endif
