/// The HTML report of a chaos run: the verdict, the counts, recovery per fault kind, every fault, and a timeline
/// (sends per bucket by answer, stacked; each fault as a shaded span; each outage as a bar under the axis).
extension ChaosResult {
    var html: String {
        let faultRows = verdict.recoveries.map { recovery in
            [recovery.fault.kind.rawValue, recovery.fault.node, format(seconds(recovery.fault.injectedAt), 2),
             recovery.fault.healedAt.map { format(seconds($0), 2) } ?? "-",
             recovery.firstFailureAt.map { format(seconds($0), 2) } ?? "no failed send", millis(recovery.millis),
             recovery.fault.detail ?? ""]
        }
        let intro = Report.escape("\(label); faults \(kinds.map(\.rawValue).joined(separator: ", ")); seed \(seed). \(settings).")
            + (outcome.interrupted ? " <b>Interrupted</b>: what was measured until Ctrl-C." : "")
        let verdictHTML = "<p>\(Report.escape(guarantee.claim))</p><p><b style=\"color:\(brokePromise ? "#d62728" : "#2ca02c")\">"
            + Report.escape(verdictLine) + "</b></p><p>" + Report.escape(replicaLine) + "</p><p>" + Report.escape(reasonLine) + "</p>"
        return Report.page(title: "bench chaos", intro: intro, sections: [
            ("Guarantee", verdictHTML),
            ("Timeline", timeline(width: min(1_800, max(960, 220 + 64 * verdict.recoveries.count)))),
            ("Messages", Report.table(["", "count"], countRows)),
            ("Recovery per fault kind (first failed send to the first acknowledged send after it)", Report.table(Self.summaryHeader, summaryRows)),
            ("Faults", Report.table(["fault", "node", "injected s", "healed s", "first failure s", "recovery ms", "power cut"], faultRows)),
        ])
    }

    static let answerColors: [(ChaosAnswer, String)] = [(.ok, "#2ca02c"), (.unknown, "#ff7f0e"), (.failed, "#d62728")]
    /// One per fault kind, in `FaultKind.allCases` order (none is an answer's green or red).
    static let faultColors = ["#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"]

    /// Sends per second in buckets of the run, stacked by answer, with the faults drawn over them.
    func timeline(width: Int = 960, height: Int = 340) -> String {
        let end = max(seconds(outcome.ended), 1)
        let buckets = min(400, max(20, Int(end * 2)))
        let bucketSeconds = end / Double(buckets)
        var counts = [[Int]](repeating: [0, 0, 0], count: buckets)
        for send in outcome.sends {
            let at = seconds(send.sentAt)
            guard at >= 0, at < end else { continue }
            let index = Swift.min(buckets - 1, Int(at / bucketSeconds))
            counts[index][ChaosAnswer.allCases.firstIndex(of: send.answer)!] += 1
        }
        let left = 70.0, right = 150.0, top = 30.0, bottom = 60.0
        let plotWidth = Double(width) - left - right, plotHeight = Double(height) - top - bottom
        let peak = Report.niceCeiling(Double(max(1, counts.map { $0.reduce(0, +) }.max() ?? 1)) / bucketSeconds)
        func px(_ second: Double) -> Double { left + second / end * plotWidth }
        func py(_ rate: Double) -> Double { top + plotHeight - rate / peak * plotHeight }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" class=\"chart\">"
        svg += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"#ffffff\"/>"
        svg += faultSpans(px: px, top: top, plotHeight: plotHeight)
        for (index, bucket) in counts.enumerated() {
            var base = 0.0
            for (answer, color) in Self.answerColors {
                let rate = Double(bucket[ChaosAnswer.allCases.firstIndex(of: answer)!]) / bucketSeconds
                guard rate > 0 else { continue }
                let x = px(Double(index) * bucketSeconds), barWidth = max(1, plotWidth / Double(buckets) - 0.5)
                svg += "<rect x=\"\(Report.f(x))\" y=\"\(Report.f(py(base + rate)))\" width=\"\(Report.f(barWidth))\" "
                    + "height=\"\(Report.f(py(base) - py(base + rate)))\" fill=\"\(color)\"/>"
                base += rate
            }
        }
        svg += axes(end: end, peak: peak, px: px, py: py, top: top, plotHeight: plotHeight, plotWidth: plotWidth, left: left, height: height)
        for (index, (answer, color)) in Self.answerColors.enumerated() {
            let y = top + 10 + Double(index) * 20
            svg += "<rect x=\"\(Report.f(left + plotWidth + 16))\" y=\"\(Report.f(y - 9))\" width=\"14\" height=\"10\" fill=\"\(color)\"/>"
            svg += "<text x=\"\(Report.f(left + plotWidth + 36))\" y=\"\(Report.f(y))\" font-size=\"12\">\(answer.rawValue)</text>"
        }
        return svg + "</svg>"
    }

    /// A shaded span per fault (injected to healed) with its name, and its outage as a black bar under the axis.
    private func faultSpans(px: (Double) -> Double, top: Double, plotHeight: Double) -> String {
        var svg = ""
        for (index, recovery) in verdict.recoveries.enumerated() {
            let from = seconds(recovery.fault.injectedAt), to = recovery.fault.healedAt.map(seconds) ?? seconds(outcome.ended)
            let color = Self.faultColors[(FaultKind.allCases.firstIndex(of: recovery.fault.kind) ?? 0) % Self.faultColors.count]
            svg += "<rect x=\"\(Report.f(px(from)))\" y=\"\(Report.f(top))\" width=\"\(Report.f(max(1, px(to) - px(from))))\" "
                + "height=\"\(Report.f(plotHeight))\" fill=\"\(color)\" fill-opacity=\"0.18\"><title>"
                + Report.escape("\(recovery.fault.kind.rawValue) \(recovery.fault.node)") + "</title></rect>"
            // Labels on three rows, so that those of neighbouring faults do not overlap.
            svg += "<text x=\"\(Report.f(px(from) + 2))\" y=\"\(Report.f(top + 12 + Double(index % 3) * 12))\" font-size=\"10\" fill=\"\(color)\">"
                + Report.escape("\(recovery.fault.kind.rawValue) \(recovery.fault.node)") + "</text>"
            if let first = recovery.firstFailureAt {
                let until = recovery.recoveredAt.map(seconds) ?? seconds(outcome.ended)
                svg += "<rect x=\"\(Report.f(px(seconds(first))))\" y=\"\(Report.f(top + plotHeight + 24))\" "
                    + "width=\"\(Report.f(max(1, px(until) - px(seconds(first)))))\" height=\"6\" fill=\"#222\"><title>"
                    + Report.escape("outage \(millis(recovery.millis)) ms") + "</title></rect>"
            }
        }
        return svg
    }

    private func axes(end: Double, peak: Double, px: (Double) -> Double, py: (Double) -> Double, top: Double, plotHeight: Double,
                      plotWidth: Double, left: Double, height: Int) -> String {
        var svg = ""
        for step in 0...5 {
            let value = peak * Double(step) / 5
            svg += "<line x1=\"\(Report.f(left))\" y1=\"\(Report.f(py(value)))\" x2=\"\(Report.f(left + plotWidth))\" y2=\"\(Report.f(py(value)))\" stroke=\"#e0e0e0\"/>"
            svg += "<text x=\"\(Report.f(left - 6))\" y=\"\(Report.f(py(value) + 4))\" text-anchor=\"end\" font-size=\"11\">\(Report.short(value))</text>"
        }
        let tickStep = Report.niceCeiling(end / 10)
        var tick = 0.0
        while tick <= end + 1e-9 {
            svg += "<text x=\"\(Report.f(px(tick)))\" y=\"\(Report.f(top + plotHeight + 16))\" text-anchor=\"middle\" font-size=\"11\">\(Report.short(tick))</text>"
            tick += tickStep
        }
        svg += "<line x1=\"\(Report.f(left))\" y1=\"\(Report.f(top + plotHeight))\" x2=\"\(Report.f(left + plotWidth))\" y2=\"\(Report.f(top + plotHeight))\" stroke=\"#333\"/>"
        svg += "<text x=\"\(Report.f(left + plotWidth / 2))\" y=\"\(height - 8)\" text-anchor=\"middle\" font-size=\"12\">"
            + "seconds (shaded: a fault from injection to heal; black bars: first failed send to the first acknowledged one after it)</text>"
        svg += "<text x=\"14\" y=\"\(Report.f(top + plotHeight / 2))\" text-anchor=\"middle\" font-size=\"12\" "
            + "transform=\"rotate(-90 14 \(Report.f(top + plotHeight / 2)))\">sends/s by answer</text>"
        return svg
    }
}
