#if canImport(Glibc)
import Glibc
#endif
import Common

/// Java's `%-Ns`: `text` padded with spaces on the right to `width` (never cut).
func left(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

/// Java's `%Ns`: `text` padded with spaces on the left to `width` (never cut).
func right(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

/// RocketMQ's `UtilAll.frontStringAtLeast`: the first `size` characters.
func front(_ text: String, _ size: Int) -> String { String(text.prefix(size)) }

/// Java's `%.Nf` (half-up rounding of the decimal digits).
func fixed(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return value.isNaN ? "NaN" : (value < 0 ? "-Infinity" : "Infinity") }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = (abs(value) * scale).rounded()
    let whole = Int64(scaled / scale)
    let fraction = Int64(scaled - Double(whole) * scale)
    let sign = value < 0 && scaled != 0 ? "-" : ""
    guard digits > 0 else { return sign + "\(whole)" }
    let fractionText = "\(fraction)"
    return sign + "\(whole)." + String(repeating: "0", count: max(0, digits - fractionText.count)) + fractionText
}

/// `yyyy-MM-dd HH:mm:ss` in local time (RocketMQ's `UtilAll.YYYY_MM_DD_HH_MM_SS`).
func formatSeconds(_ millis: Int64) -> String {
    var seconds = time_t(millis / 1000)
    var parts = tm()
    localtime_r(&seconds, &parts)
    return "\(Int(parts.tm_year) + 1900)-" + two(Int(parts.tm_mon) + 1) + "-" + two(Int(parts.tm_mday)) + " "
        + two(Int(parts.tm_hour)) + ":" + two(Int(parts.tm_min)) + ":" + two(Int(parts.tm_sec))
}

/// `yyyy-MM-dd#HH:mm:ss:SSS` parsed in local time (RocketMQ's `UtilAll.YYYY_MM_DD_HH_MM_SS_SSS`), or nil.
func parseMillisTimestamp(_ text: String) -> Int64? {
    let parts = text.split(whereSeparator: { "-#:".contains($0) }).map { Int($0) }
    guard parts.count == 7, parts.allSatisfy({ $0 != nil }) else { return nil }
    let values = parts.map { $0! }
    var fields = tm()
    fields.tm_year = Int32(values[0] - 1900)
    fields.tm_mon = Int32(values[1] - 1)
    fields.tm_mday = Int32(values[2])
    fields.tm_hour = Int32(values[3])
    fields.tm_min = Int32(values[4])
    fields.tm_sec = Int32(values[5])
    fields.tm_isdst = -1
    let seconds = mktime(&fields)
    guard seconds != -1 else { return nil }
    return Int64(seconds) * 1000 + Int64(values[6])
}

/// An argument value or a missing thing a command checks itself: thrown inside `withAdmin`, it prints
/// `mqadmin: <reason>` and exits 1.
func failArgument(_ reason: String) -> ArgumentProblem { ArgumentProblem(reason: reason) }

struct ArgumentProblem: Error, CustomStringConvertible {
    var reason: String
    var description: String { reason }
}

extension SubscriptionGroupConfig {
    /// RocketMQ's `SubscriptionGroupConfig.toString`.
    var javaDescription: String {
        "SubscriptionGroupConfig [groupName=\(groupName), consumeEnable=\(consumeEnable), consumeFromMinEnable=\(consumeFromMinEnable), "
            + "consumeBroadcastEnable=\(consumeBroadcastEnable), retryQueueNums=\(retryQueueNums), retryMaxTimes=\(retryMaxTimes), "
            + "brokerId=\(brokerId), whichBrokerWhenConsumeSlowly=\(whichBrokerWhenConsumeSlowly), "
            + "notifyConsumerIdsChangedEnable=\(notifyConsumerIdsChangedEnable)]"
    }
}
