import Foundation
import Testing
@testable import LoraStoreCore

/// `--json` answers keep every key, absent values as null, and read back as they were written.
@Suite("JSON answers")
struct JSONAnswerTests {
    private func object<T: Codable & Equatable>(_ value: T) throws -> [String: Any] {
        let data = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(T.self, from: data) == value, "reads back")
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test func absentValuesAreNullNotMissing() throws {
        try TemporaryDirectory.with { directory in
            let test = try TestStore(in: directory).withFP32BaseAndAdapterA()
            try test.store.createBuild(
                base: try Reference(parsing: "micro/base:fp32"), adapters: [(try Reference(parsing: "acme/a"), 1)],
                tag: try Reference(parsing: "acme/bot"))

            let status = try object(try test.store.cacheStatus())
            #expect(status["budget"] is NSNull, "unlimited")
            let entry = try #require((status["builds"] as? [[String: Any]])?.first)
            #expect(entry["lastPulledAt"] is NSNull && entry["materializedAt"] is NSNull, "never pulled")

            let lineage = try object(try test.store.lineage(try Reference(parsing: "micro/base:fp32")))
            #expect(lineage["base"] is NSNull)
            #expect((lineage["subject"] as? [String: Any])?["weight"] is NSNull)

            let pulled = try object(try test.store.pull("micro/base:fp32", to: directory.appending(path: "base")))
            #expect(pulled["report"] is NSNull, "a pull that merged nothing")
        }
    }
}
