import Foundation
import GRDB

/// An adapter's metadata as the index's `adapter` table holds it, so it can be queried with SQL.
public struct AdapterRecord: Sendable, Hashable, Codable {
    public var baseDigest: Digest
    public var peftType: String
    public var rank: Int
    public var alpha: Double
    public var useRSLoRA: Bool
    public var useDoRA: Bool
    public var fanInFanOut: Bool
    /// The dtype of the LoRA factors.
    public var dtype: DType
    public var bias: String
    public var taskType: String?
    /// The configured `target_modules` (a list, or a regular expression).
    public var targetModules: AdapterConfig.TargetModules
    /// The numbered layers the file changes.
    public var layers: [Int]
    public var modulesToSave: [String]
    public var rankPattern: [AdapterConfig.PatternEntry]
    public var alphaPattern: [AdapterConfig.PatternEntry]

    init(
        baseDigest: Digest, peftType: String, rank: Int, alpha: Double, useRSLoRA: Bool, useDoRA: Bool,
        fanInFanOut: Bool, dtype: DType, bias: String, taskType: String?, targetModules: AdapterConfig.TargetModules,
        layers: [Int], modulesToSave: [String], rankPattern: [AdapterConfig.PatternEntry],
        alphaPattern: [AdapterConfig.PatternEntry]
    ) {
        self.baseDigest = baseDigest
        self.peftType = peftType
        self.rank = rank
        self.alpha = alpha
        self.useRSLoRA = useRSLoRA
        self.useDoRA = useDoRA
        self.fanInFanOut = fanInFanOut
        self.dtype = dtype
        self.bias = bias
        self.taskType = taskType
        self.targetModules = targetModules
        self.layers = layers
        self.modulesToSave = modulesToSave
        self.rankPattern = rankPattern
        self.alphaPattern = alphaPattern
    }

    init(config: AdapterConfig, layout: AdapterLayout, dtype: DType, base: Digest) {
        baseDigest = base
        peftType = config.peftType
        rank = config.rank
        alpha = config.alpha
        useRSLoRA = config.useRSLoRA
        useDoRA = config.useDoRA
        fanInFanOut = config.fanInFanOut
        self.dtype = dtype
        bias = config.bias
        taskType = config.taskType
        targetModules = config.targetModules
        layers = layout.layerIndices
        modulesToSave = config.modulesToSave
        rankPattern = config.rankPattern
        alphaPattern = config.alphaPattern
    }

    /// Reads the record of the adapter manifest `digest`, if it is one.
    static func fetch(_ db: Database, manifest digest: Digest) throws -> AdapterRecord? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM adapter WHERE manifest_digest = ?", arguments: [digest])
        else { return nil }
        func decode<T: Decodable>(_ column: String, as type: T.Type) throws -> T {
            let text: String = row[column]
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        }
        let targetModules: AdapterConfig.TargetModules
        if let names = try? decode("target_modules", as: [String].self) {
            targetModules = .names(names)
        } else if let pattern = try? decode("target_modules", as: String.self) {
            targetModules = .pattern(pattern)
        } else {
            targetModules = .unspecified
        }
        let dtypeName: String = row["dtype"]
        return AdapterRecord(
            baseDigest: row["base_digest"], peftType: row["peft_type"], rank: row["rank"], alpha: row["alpha"],
            useRSLoRA: row["use_rslora"], useDoRA: row["use_dora"], fanInFanOut: row["fan_in_fan_out"],
            dtype: DType(rawValue: dtypeName) ?? .f32, bias: row["bias"], taskType: row["task_type"],
            targetModules: targetModules, layers: try decode("layers", as: [Int].self),
            modulesToSave: try decode("modules_to_save", as: [String].self),
            rankPattern: try decode("rank_pattern", as: [AdapterConfig.PatternEntry].self),
            alphaPattern: try decode("alpha_pattern", as: [AdapterConfig.PatternEntry].self))
    }

    func insert(_ db: Database, manifest: Digest) throws {
        func json(_ value: some Encodable) throws -> String {
            String(decoding: try CanonicalJSON.encode(value), as: UTF8.self)
        }
        let targets: String
        switch targetModules {
        case .names(let names): targets = try json(names)
        case .pattern(let pattern): targets = try json(pattern)
        case .unspecified: targets = "null"
        }
        try db.cachedStatement(
            sql: """
                INSERT INTO adapter (manifest_digest, base_digest, peft_type, rank, alpha, use_rslora, use_dora,
                    fan_in_fan_out, dtype, bias, task_type, target_modules, layers, modules_to_save, rank_pattern,
                    alpha_pattern)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(
            arguments: [
                manifest, baseDigest, peftType, rank, alpha, useRSLoRA, useDoRA, fanInFanOut, dtype.rawValue, bias,
                taskType, targets, try json(layers), try json(modulesToSave), try json(rankPattern),
                try json(alphaPattern),
            ])
    }
}
