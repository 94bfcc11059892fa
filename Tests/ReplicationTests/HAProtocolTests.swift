import CommitLog
import Replication
import Testing

/// The HA stream's bytes: encoders against frames built by hand from RocketMQ's layout, decoders fed
/// whole, cut at every split point and byte by byte; bad values rejected with a typed error.
@Suite struct HAProtocolTests {
    /// `[offset i64 BE][size i32 BE][body]`, written out byte by byte.
    static let referenceFrames: [(offset: UInt64, body: [UInt8])] = [
        (0x0000_0000_0001_0000, Array("hello, slave".utf8)),
        (0x0000_0000_0001_000C, []),  // a heartbeat
        (0x0102_0304_0506_0708, [0xCB, 0xD4, 0x31, 0x94, 0, 0, 0, 0]),
        (0x0000_0000_0000_0000, [UInt8](repeating: 0xAB, count: 300)),
    ]

    static func handBuilt(_ offset: UInt64, _ body: [UInt8]) -> [UInt8] {
        var bytes: [UInt8] = []
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: offset >> UInt64(shift))) }
        let size = UInt32(body.count)
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: size >> UInt32(shift))) }
        return bytes + body
    }

    static var stream: [UInt8] { referenceFrames.flatMap { handBuilt($0.offset, $0.body) } }

    /// Feeds `pieces` to a decoder and reassembles frames from its events.
    static func decodeFrames(_ pieces: [[UInt8]], bodySizeMax: Int = 4096) throws(HAProtocolError) -> [(offset: UInt64, body: [UInt8])] {
        var decoder = TransferDecoder(bodySizeMax: bodySizeMax)
        var frames: [(offset: UInt64, body: [UInt8])] = []
        var expectedBodyOffset: UInt64 = 0
        for piece in pieces {
            let failure: HAProtocolError? = piece.withUnsafeBytes { raw in
                var input = raw
                do throws(HAProtocolError) {
                    while let event = try decoder.next(&input) {
                        switch event {
                        case .header(let header):
                            frames.append((header.physicalOffset, []))
                            expectedBodyOffset = header.physicalOffset
                        case .body(let offset, let bytes):
                            #expect(offset == expectedBodyOffset)
                            expectedBodyOffset += UInt64(bytes.count)
                            frames[frames.count - 1].body += Array(bytes)
                        }
                    }
                } catch { return error }
                return nil
            }
            if let failure { throw failure }
        }
        #expect(decoder.isAtFrameBoundary)
        return frames
    }

    static func same(_ a: [(offset: UInt64, body: [UInt8])], _ b: [(offset: UInt64, body: [UInt8])]) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0.offset == $1.offset && $0.body == $1.body }
    }

    @Test func encodersWriteRocketMQBytes() {
        var header = [UInt8](repeating: 0, count: HAProtocol.headerSize)
        header.withUnsafeMutableBytes { HAProtocol.encodeHeader(offset: 0x0102_0304_0506_0708, bodySize: 0x0A0B_0C0D, into: $0.baseAddress!) }
        #expect(header == [1, 2, 3, 4, 5, 6, 7, 8, 0x0A, 0x0B, 0x0C, 0x0D])
        var report = [UInt8](repeating: 0, count: HAProtocol.reportSize)
        report.withUnsafeMutableBytes { HAProtocol.encodeReport(1_073_741_824 + 5, into: $0.baseAddress!) }
        #expect(report == [0, 0, 0, 0, 0x40, 0, 0, 5])
        #expect(HAProtocol.headerSize == 12)
        #expect(HAProtocol.reportSize == 8)
    }

    @Test func framesDecodeWholeAndByteByByte() throws {
        let stream = Self.stream
        #expect(Self.same(try Self.decodeFrames([stream]), Self.referenceFrames))
        #expect(Self.same(try Self.decodeFrames(stream.map { [$0] }), Self.referenceFrames))
    }

    @Test func framesDecodeCutAtEverySplitPoint() throws {
        let stream = Self.stream
        for cut in 0...stream.count {
            let frames = try Self.decodeFrames([Array(stream[..<cut]), Array(stream[cut...])])
            #expect(Self.same(frames, Self.referenceFrames), "cut at \(cut)")
        }
    }

    @Test func badFramesAreRejected() {
        #expect(throws: HAProtocolError(code: .negativeOffset, value: -1, limit: 0)) {
            try Self.decodeFrames([[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]])
        }
        #expect(throws: HAProtocolError(code: .negativeBodySize, value: -2, limit: 0)) {
            try Self.decodeFrames([[0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFE]])
        }
        #expect(throws: HAProtocolError(code: .bodyTooLarge, value: 4097, limit: 4096)) {
            try Self.decodeFrames([Self.handBuilt(0, [UInt8](repeating: 1, count: 4097))])
        }
        // Garbage reads as an absurd size: refused before a byte of body is waited for.
        #expect(throws: HAProtocolError.self) { try Self.decodeFrames([Array("GET / HTTP/1.1\r\n".utf8)]) }
        // A cut frame is no error by itself: the decoder just is not at a boundary.
        var decoder = TransferDecoder(bodySizeMax: 4096)
        Self.handBuilt(8, [1, 2, 3])[..<13].withUnsafeBytes { raw in
            var input = UnsafeRawBufferPointer(raw)
            while (try? decoder.next(&input)) != nil {}
        }
        #expect(!decoder.isAtFrameBoundary)
    }

    @Test func reportsDecodeLastCompleteOneAtAnySplit() throws {
        let offsets: [Int64] = [0, 4096, 0x7FFF_FFFF_FFFF_FFFF, 1 << 33]
        let stream = offsets.flatMap { bigEndianBytes($0) }
        for cut in 0...stream.count {
            var decoder = ReportDecoder()
            let first = try Array(stream[..<cut]).withUnsafeBytes { raw in try decoder.decode(raw) }
            #expect(first == (cut >= 8 ? UInt64(offsets[cut / 8 - 1]) : nil), "cut at \(cut)")
            #expect(decoder.hasPartialReport == (cut % 8 != 0))
            let second = try Array(stream[cut...]).withUnsafeBytes { raw in try decoder.decode(raw) }
            #expect(second == (cut < stream.count ? UInt64(offsets.last!) : nil))
        }
        var decoder = ReportDecoder()
        var seen: [UInt64] = []
        for byte in stream {
            if let offset = try [byte].withUnsafeBytes({ raw in try decoder.decode(raw) }) { seen.append(offset) }
        }
        #expect(seen == offsets.map { UInt64($0) })
    }

    @Test func negativeReportIsRejected() {
        var decoder = ReportDecoder()
        #expect(throws: HAProtocolError(code: .negativeOffset, value: Int64.min, limit: 0)) {
            try bigEndianBytes(Int64.min).withUnsafeBytes { raw in _ = try decoder.decode(raw) }
        }
    }

    @Test func settingsKeepRocketMQDefaultsAndRejectBadOnes() throws {
        let settings = HASettings()
        #expect(settings.haListenPort == 10912)
        #expect(settings.haTransferBatchSize == 32_768)
        #expect(settings.haSendHeartbeatIntervalMillis == 5_000)
        #expect(settings.haHousekeepingIntervalMillis == 20_000)
        #expect(settings.haMaxGapNotInSync == 268_435_456)
        #expect(settings.slaveTimeoutMillis == 3_000)
        _ = try settings.validated()
        var bad = settings
        bad.haTransferBatchSize = bad.haTransferBodySizeMax + 1
        #expect(throws: StoreError.self) { try bad.validated() }
    }
}
