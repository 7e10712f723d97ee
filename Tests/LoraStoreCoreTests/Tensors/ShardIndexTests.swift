import Foundation
import LoraStoreCore
import Testing

@Suite("Shard index")
struct ShardIndexTests {
    private func index(_ json: String) throws(ShardIndexError) -> ShardIndex {
        try ShardIndex(data: Data(json.utf8), label: "index.json")
    }

    @Test func readsTheFixtureAndWritesItBackByteForByte() throws {
        let url = Fixtures.url("base_fp32_sharded/model.safetensors.index.json")
        let index = try ShardIndex(contentsOf: url)
        #expect(index.totalSize == 494_848)
        #expect(index.totalParameters == 123_712)
        #expect(index.weightMap.count == 21)
        #expect(index.weightMap["lm_head.weight"] == "model-00003-of-00003.safetensors")
        #expect(index.shardFiles == (1 ... 3).map { "model-0000\($0)-of-00003.safetensors" })
        #expect(index.encoded() == (try Data(contentsOf: url)))
    }

    @Test func roundTripsThroughItsEncoding() throws {
        let index = try ShardIndex(totalSize: 10, weightMap: ["b": "s2.safetensors", "a": "s1.safetensors", "é\"": "s1.safetensors"])
        let encoded = String(decoding: index.encoded(), as: UTF8.self)
        #expect(encoded == """
            {
              "metadata": {
                "total_size": 10
              },
              "weight_map": {
                "a": "s1.safetensors",
                "b": "s2.safetensors",
                "\\u00e9\\"": "s1.safetensors"
              }
            }

            """)
        #expect(try ShardIndex(data: index.encoded(), label: "x") == index)
        #expect(index.shardFiles == ["s1.safetensors", "s2.safetensors"])

        let empty = try ShardIndex(totalSize: 0, weightMap: [:])
        #expect(String(decoding: empty.encoded(), as: UTF8.self) == "{\n  \"metadata\": {\n    \"total_size\": 0\n  },\n  \"weight_map\": {}\n}\n")
        #expect(try ShardIndex(data: empty.encoded(), label: "x") == empty)
    }

    @Test func acceptsAnIntegralFloatTotalSizeAndIgnoresOtherKeys() throws {
        let parsed = try index(#"{"metadata":{"total_size":1.2e3,"format":"pt"},"weight_map":{"a":"s.safetensors"},"x":1}"#)
        #expect(parsed.totalSize == 1200)
        #expect(parsed.totalParameters == nil)
    }

    @Test("Rejects malformed indexes", arguments: [
        ("[", ShardIndexError.Kind.invalidJSON, nil),
        ("[]", .invalidField, nil),
        (#"{"weight_map":{}}"#, .missingField, "metadata"),
        (#"{"metadata":{"total_size":1}}"#, .missingField, "weight_map"),
        (#"{"metadata":{},"weight_map":{}}"#, .missingField, "metadata.total_size"),
        (#"{"metadata":{"total_size":"1"},"weight_map":{}}"#, .invalidField, "metadata.total_size"),
        (#"{"metadata":{"total_size":-1},"weight_map":{}}"#, .invalidField, "metadata.total_size"),
        (#"{"metadata":{"total_size":1.5},"weight_map":{}}"#, .invalidField, "metadata.total_size"),
        (#"{"metadata":{"total_size":1,"total_parameters":null},"weight_map":{}}"#, .invalidField, "metadata.total_parameters"),
        (#"{"metadata":{"total_size":1},"weight_map":[]}"#, .invalidField, "weight_map"),
        (#"{"metadata":{"total_size":1},"weight_map":{"a":1}}"#, .invalidField, #"weight_map["a"]"#),
        (#"{"metadata":{"total_size":1},"weight_map":{"a":"x","a":"y"}}"#, .duplicateKey, "weight_map"),
        (#"{"metadata":{"total_size":1},"metadata":{"total_size":1},"weight_map":{}}"#, .duplicateKey, nil),
        (#"{"metadata":{"total_size":1},"weight_map":{"a":"../x.safetensors"}}"#, .invalidFileName, #"weight_map["a"]"#),
        (#"{"metadata":{"total_size":1},"weight_map":{"a":"sub/x.safetensors"}}"#, .invalidFileName, #"weight_map["a"]"#),
        (#"{"metadata":{"total_size":1},"weight_map":{"a":".."}}"#, .invalidFileName, #"weight_map["a"]"#),
        (#"{"metadata":{"total_size":1},"weight_map":{"a":""}}"#, .invalidFileName, #"weight_map["a"]"#),
        (#"{"metadata":{"total_size":1},"weight_map":{"a":"c:\\x"}}"#, .invalidFileName, #"weight_map["a"]"#),
    ] as [(String, ShardIndexError.Kind, String?)])
    func rejects(_ json: String, kind: ShardIndexError.Kind, field: String?) {
        let error = #expect(throws: ShardIndexError.self) { try index(json) }
        #expect(error?.kind == kind)
        #expect(error?.field == field)
        #expect(error?.description.hasPrefix("index.json: " + (field.map { "\($0): " } ?? "")) == true)
    }

    @Test func validatesFileNamesWhenBuilt() {
        let error = #expect(throws: ShardIndexError.self) {
            try ShardIndex(totalSize: 4, weightMap: ["w": "/etc/passwd"])
        }
        #expect(error?.kind == .invalidFileName)
        #expect(error?.description == #"model.safetensors.index.json: weight_map["w"]: "/etc/passwd" is not a plain file name"#)
    }
}
