import Foundation
import Testing
@testable import LoraStoreCore

/// `ModuleMatcher.targets(module:)` against the cases of PEFT 0.21's `check_target_module_exists`.
@Suite("Which modules a config targets")
struct AdapterTargetingTests {
    private func config(_ fields: String) throws -> ModuleMatcher {
        try ModuleMatcher(AdapterConfig(json: Data("{\"r\": 8, \(fields)}".utf8), file: "adapter_config.json"))
    }

    @Test func namesMatchWholePathsOrLastSegments() throws {
        let names = try config(#""target_modules": ["q_proj", "mlp.down_proj"]"#)
        #expect(try names.targets(module: "model.layers.3.self_attn.q_proj"))
        #expect(try names.targets(module: "model.layers.3.mlp.down_proj"))
        #expect(try !names.targets(module: "model.layers.3.self_attn.xq_proj"), "a suffix must start at a dot")
        #expect(try !names.targets(module: "model.layers.3.self_attn.v_proj"))
    }

    @Test func aPatternMustMatchTheWholePath() throws {
        let pattern = try config(#""target_modules": "model\\.layers\\.[01]\\..*proj""#)
        #expect(try pattern.targets(module: "model.layers.1.self_attn.q_proj"))
        #expect(try !pattern.targets(module: "model.layers.12.self_attn.q_proj"))
        #expect(try !pattern.targets(module: "x.model.layers.1.self_attn.q_proj"))
    }

    @Test func layersToTransformReadsTheFirstLayerIndexNotAnExpertIndex() throws {
        let layers = try config(#""target_modules": ["gate_proj", "model.layers.5.mlp.gate_proj"], "layers_to_transform": [1]"#)
        #expect(try layers.targets(module: "model.layers.1.mlp.experts.0.gate_proj"), "the layer is 1; 0 is the expert")
        #expect(try !layers.targets(module: "model.layers.0.mlp.experts.1.gate_proj"))
        #expect(try layers.targets(module: "model.layers.5.mlp.gate_proj"), "a path named whole skips the layer filter")
        let patterned = try config(#""target_modules": ["q_proj"], "layers_to_transform": 3, "layers_pattern": ["h", "layers"]"#)
        #expect(try patterned.targets(module: "layers.3.q_proj"), "a pattern may open the path")
        #expect(try patterned.targets(module: "transformer.h.3.attn.q_proj"))
        #expect(try !patterned.targets(module: "transformer.blocks.3.attn.q_proj"))
        let emptyPattern = try config(#""target_modules": ["q_proj"], "layers_to_transform": [3], "layers_pattern": """#)
        #expect(try emptyPattern.targets(module: "model.layers.3.self_attn.q_proj"), "an empty pattern is none")
    }

    @Test func excludedAndSavedModulesAreNeverTargets() throws {
        let excluded = try config(#""target_modules": ["q_proj", "v_proj"], "exclude_modules": ["layers.1.self_attn.v_proj"]"#)
        #expect(try excluded.targets(module: "model.layers.0.self_attn.v_proj"))
        #expect(try !excluded.targets(module: "model.layers.1.self_attn.v_proj"))
        let excludedByPattern = try config(#""target_modules": ["q_proj"], "exclude_modules": ".*layers\\.0\\..*""#)
        #expect(try !excludedByPattern.targets(module: "model.layers.0.self_attn.q_proj"))
        #expect(try excludedByPattern.targets(module: "model.layers.10.self_attn.q_proj"))
        let saved = try config(#""target_modules": ["lm_head", "q_proj"], "modules_to_save": ["lm_head"]"#)
        #expect(try !saved.targets(module: "lm_head"))
        #expect(try saved.targets(module: "model.layers.0.self_attn.q_proj"))
    }

    @Test func patternsAreReadWithPythonSyntax() throws {
        let named = try config(#""target_modules": "(?P<path>.*)\\.(?P<name>q|v)_proj""#)
        #expect(try named.targets(module: "model.layers.0.self_attn.q_proj"))
        #expect(try !named.targets(module: "model.layers.0.self_attn.k_proj"))
        let lookahead = try config(#""target_modules": "^(?!vision_tower).*\\.q_proj$""#)
        #expect(try lookahead.targets(module: "model.layers.0.self_attn.q_proj"))
        #expect(try !lookahead.targets(module: "vision_tower.layers.0.self_attn.q_proj"))
        // PEFT embeds a rank_pattern key as `(.*\.)?(KEY)$`: a key naming a middle segment matches nothing.
        let ranks = try config(#""target_modules": ["q_proj"], "rank_pattern": {"self_attn": 4, "layers\\.1\\..*": 2}"#)
        #expect(try ranks.rank(forModule: "model.layers.0.self_attn.q_proj") == 8)
        #expect(try ranks.rank(forModule: "model.layers.1.self_attn.q_proj") == 2)
    }

    /// A backtracking engine takes time exponential in the path's length on this pattern when the path does
    /// not match; a config pushed to a registry must not be able to stall it.
    @Test(.timeLimit(.minutes(1))) func aPatternCannotMakeMatchingTakeExponentialTime() throws {
        let nested = try config(#""target_modules": ".*(a+)+\\.q_proj""#)
        let path = "model." + String(repeating: "a", count: 64) + ".v_proj"
        #expect(try !nested.targets(module: path))
        #expect(try nested.targets(module: "model." + String(repeating: "a", count: 64) + ".q_proj"))
        // A path longer than lorastore matches is refused before any match copies it.
        let longPath = "model." + String(repeating: "a", count: ModuleMatcher.longestModulePath) + ".q_proj"
        #expect { try nested.targets(module: longPath) } throws: { ($0 as? PatternError)?.kind == .tooCostly }
        // Look-arounds multiply the work; past its step budget a match is an error, never a stall.
        let costly = try config(#""target_modules": "(?:(?=.*(?=.*(?=.*x))).)*y""#)
        #expect { try costly.targets(module: String(repeating: "a", count: 3000)) } throws: { error in
            (error as? PatternError)?.kind == .tooCostly
        }
    }
}
