import Foundation
import Testing

@testable import LoraStoreCore

@Suite struct ModelConfigTests {
    private func edited(_ text: String, to type: DType) -> String? {
        ModelConfig.settingDType(of: Data(text.utf8), to: type).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Every `dtype` and `torch_dtype` member names the new type; the rest of the text stays as it was.
    @Test func theTypeMembersChangeAndNothingElse() {
        let config = """
            {
              "architectures": ["LlamaForCausalLM"],
              "dtype": "float32",
              "rms_norm_eps": 1e-05,
              "text_config": {"torch_dtype" :  "bfloat16"}
            }
            """
        let expected = """
            {
              "architectures": ["LlamaForCausalLM"],
              "dtype": "float16",
              "rms_norm_eps": 1e-05,
              "text_config": {"torch_dtype" :  "float16"}
            }
            """
        #expect(edited(config, to: .f16) == expected)
        #expect(edited(#"{"dtype": "float16"}"#, to: .f16) == nil, "already that type")
        #expect(edited(#"{"model_type": "llama"}"#, to: .bf16) == nil, "no type named")
        #expect(edited(#"{"dtype": "float32"}"#, to: .i8) == nil, "not a type a merge writes")
    }
}
