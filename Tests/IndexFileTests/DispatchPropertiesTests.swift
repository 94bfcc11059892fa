@testable import IndexFile
import Testing

/// The dispatcher's one-walk property scan finds what `propertyValue` finds, key by key.
@Suite struct DispatchPropertiesTests {
    static let samples: [[UInt8]] = [
        [],
        Array("TAGS\u{1}a\u{2}KEYS\u{1}k1 k2\u{2}UNIQ_KEY\u{1}ABC".utf8),
        Array("UNIQ_KEY\u{1}X\u{2}WAIT\u{1}true\u{2}".utf8),
        Array("TAGS\u{1}first\u{2}TAGS\u{1}second\u{2}KEYS\u{1}\u{2}".utf8),  // the first of a repeat wins; an empty value
        Array("TAGS\u{2}KEYS\u{1}k\u{2}".utf8),  // a pair without its name separator runs into the next
        Array("KEYS\u{1}a\u{1}b\u{2}TAGS".utf8),  // a value holding the name separator; a last name without one
        Array("\u{2}\u{2}\u{1}\u{2}UNIQ_KEY\u{1}".utf8),
        Array("TAG\u{1}x\u{2}TAGSS\u{1}y\u{2}UNIQ_KE\u{1}z".utf8),
    ]

    @Test(arguments: samples)
    func findsWhatPropertyValueFinds(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { properties in
            let found = DispatchProperties(properties)
            #expect(found.tags.map(Array.init) == propertyValue(properties, "TAGS").map(Array.init))
            #expect(found.keys.map(Array.init) == propertyValue(properties, "KEYS").map(Array.init))
            #expect(found.uniqueKey.map(Array.init) == propertyValue(properties, "UNIQ_KEY").map(Array.init))
        }
    }
}
