import Common
import NIOCore
import Remoting

/// GET_BROKER_CONFIG and UPDATE_BROKER_CONFIG (RocketMQ's `Configuration`): the settings as `key=value` lines, and
/// updates of known keys. `brokerPermission` applies at once (the broker re-registers, its topics' permissions limited
/// to it); every accepted key is written into the broker's config file (`mqbroker -c`), replacing its line or appended,
/// so the others take effect at the next start. An unknown key or a bad value changes nothing.
extension AdminBrokerProcessor {
    static let configCodes = [RequestCode.getBrokerConfig, RequestCode.updateBrokerConfig]

    func answerConfig(_ request: RemotingCommand) -> RemotingCommand {
        if request.code == RequestCode.getBrokerConfig {
            var config = services.config
            config.brokerPermission = services.runtime.brokerPermission
            let text = config.properties.map { "\($0.0)=\($0.1)\n" }.joined()
            return .response(to: request, code: ResponseCode.success, body: ByteBuffer(string: text))
        }
        let pairs: [(String, String)]
        switch parseProperties(request.body.map { String(buffer: $0) } ?? "") {
        case .success(let parsed) where !parsed.isEmpty: pairs = parsed
        case .success: return .response(to: request, code: ResponseCode.systemError, remark: "string2Properties error: no key=value line")
        case .failure(let error): return .response(to: request, code: ResponseCode.systemError, remark: "string2Properties error: \(error)")
        }
        var scratch = services.config
        for (key, value) in pairs {
            do {
                guard try scratch.set(key, value) else {
                    return .response(to: request, code: ResponseCode.systemError, remark: "\(key) is not a broker setting")
                }
            } catch {
                return .response(to: request, code: ResponseCode.systemError, remark: "\(key): \(error)")
            }
        }
        if let problem = persist(pairs) { return .response(to: request, code: ResponseCode.systemError, remark: problem) }
        if pairs.contains(where: { $0.0 == "brokerPermission" }) {
            services.runtime.brokerPermission = scratch.brokerPermission
            services.topics.bumpDataVersion()
            services.topicsChanged()
        }
        let later = pairs.map(\.0).filter { !BrokerConfig.runtimeKeys.contains($0) }
        services.log("broker: config updated: \(pairs.map { "\($0.0)=\($0.1)" }.joined(separator: ", "))")
        return .response(to: request, code: ResponseCode.success,
                         remark: later.isEmpty ? nil : "\(later.joined(separator: ", ")) take effect at the next start")
    }

    /// Writes `pairs` into the config file (atomically); the reason when it cannot.
    func persist(_ pairs: [(String, String)]) -> String? {
        guard let path = services.config.configFilePath else { return "the broker was started without a config file (-c)" }
        return services.runtime.fileLock.withLock { _ -> String? in
            guard let text = TextFile.read(path) else { return "cannot read \(path)" }
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if lines.last == "" { lines.removeLast() }
            for (key, value) in pairs {
                let index = lines.lastIndex { line in
                    let trimmed = line.drop { $0 == " " }
                    return trimmed.hasPrefix(key) && trimmed.dropFirst(key.count).drop { $0 == " " }.first == "="
                }
                if let index { lines[index] = "\(key)=\(value)" } else { lines.append("\(key)=\(value)") }
            }
            return TextFile.writeAtomically(path, lines.joined(separator: "\n") + "\n") ? nil : "cannot write \(path)"
        }
    }
}
