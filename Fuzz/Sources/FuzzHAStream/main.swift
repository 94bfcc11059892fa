// The HA stream over arbitrary bytes cut at arbitrary points: a master reading slave reports, a slave reading
// transfer frames. Invariants: no read outside the input; a report is the last complete 8 bytes; a frame's body
// bytes are exactly the announced size, handed out in order, never more than the decoder's limit.
import FuzzSupport
import Replication

@_cdecl("LLVMFuzzerTestOneInput")
func testOneInput(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt { fuzzOne(data, count) }

func seeds() -> [[UInt8]] {
    var frame = [UInt8](repeating: 0, count: HAProtocol.headerSize)
    frame.withUnsafeMutableBytes { HAProtocol.encodeHeader(offset: 4096, bodySize: 5, into: $0.baseAddress!) }
    var report = [UInt8](repeating: 0, count: HAProtocol.reportSize)
    report.withUnsafeMutableBytes { HAProtocol.encodeReport(1 << 30, into: $0.baseAddress!) }
    return [[3] + frame + Array("hello".utf8) + frame + Array("world".utf8), [5] + report + report, [1] + frame]
}

fuzzMain(seeds: seeds) { input in
    guard let cut = input.first else { return }
    let bytes = UnsafeRawBufferPointer(rebasing: input[1...])
    let step = Int(cut % 17) + 1
    var reports = ReportDecoder()
    var frames = TransferDecoder(bodySizeMax: 64)
    var announced = 0
    var received = 0
    var at = 0
    while at < bytes.count {
        let piece = UnsafeRawBufferPointer(rebasing: bytes[at..<min(bytes.count, at + step)])
        at += piece.count
        _ = try? reports.decode(piece)
        var rest = piece
        while !rest.isEmpty {
            guard let event = try? frames.next(&rest) else { return }
            switch event {
            case .header(let header):
                guard received == announced else { fuzzFailure("a header came before the last body was whole") }
                guard header.bodySize >= 0, header.bodySize <= 64 else { fuzzFailure("accepted body size \(header.bodySize)") }
                announced = header.bodySize
                received = 0
            case .body(_, let body):
                received += body.count
                guard received <= announced else { fuzzFailure("body bytes past the announced size") }
            }
        }
    }
}
