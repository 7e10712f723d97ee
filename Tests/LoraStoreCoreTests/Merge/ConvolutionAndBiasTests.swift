import Foundation
import Testing
@testable import LoraStoreCore

/// PEFT cases the fixtures do not cover: LoRA on a convolution (delta = B·A over the flattened kernel) and a
/// LoRA bias (`lora_B.bias`, scaled, added to the base bias), on a small model written by the test.
@Suite("Convolution LoRA and LoRA bias")
struct ConvolutionAndBiasTests {
    private let scale = 6.0 / 2.0

    /// A base with a conv kernel [4, 3, 2, 2] and its bias [4], and an adapter of rank 2 with a LoRA bias.
    private func write(_ directory: URL, groupedKernel: Bool = false) throws -> (base: URL, adapter: URL, values: [String: [Float]]) {
        func values(_ count: Int, _ seed: Int) -> [Float] { (0..<count).map { Float(sin(Double($0 * 7 + seed))) * 0.1 } }
        let kernelShape = groupedKernel ? [4, 1, 2, 2] : [4, 3, 2, 2]
        let tensors: [String: [Float]] = [
            "conv.weight": values(kernelShape.reduce(1, *), 1), "conv.bias": values(4, 2),
            "base_model.model.conv.lora_A.weight": values(2 * 3 * 2 * 2, 3),
            "base_model.model.conv.lora_B.weight": values(4 * 2, 4),
            "base_model.model.conv.lora_B.bias": values(4, 5),
        ]
        let base = directory.appending(path: "base.safetensors")
        try AdapterFolder.writeF32(
            [("conv.weight", kernelShape, tensors["conv.weight"]!), ("conv.bias", [4], tensors["conv.bias"]!)], to: base)
        let adapter = directory.appending(path: "adapter")
        try FileManager.default.createDirectory(at: adapter, withIntermediateDirectories: true)
        try #"{"peft_type": "LORA", "r": 2, "lora_alpha": 6, "target_modules": ["conv"], "lora_bias": true, "bias": "none"}"#
            .write(to: adapter.appending(path: "adapter_config.json"), atomically: true, encoding: .utf8)
        try AdapterFolder.writeF32(
            [
                ("base_model.model.conv.lora_A.weight", [2, 3, 2, 2], tensors["base_model.model.conv.lora_A.weight"]!),
                ("base_model.model.conv.lora_B.weight", [4, 2, 1, 1], tensors["base_model.model.conv.lora_B.weight"]!),
                ("base_model.model.conv.lora_B.bias", [4], tensors["base_model.model.conv.lora_B.bias"]!),
            ],
            to: adapter.appending(path: "adapter_model.safetensors"))
        return (base, adapter, tensors)
    }

    @Test func mergesAConvolutionKernelAndTheLoRABias() throws {
        try TemporaryDirectory.with { directory in
            let (base, adapter, values) = try write(directory)
            let test = try TestStore(in: directory)
            try test.store.push(base, to: try Reference(parsing: "tiny/conv"))
            try test.store.push(adapter, to: try Reference(parsing: "tiny/lora"), options: PushOptions(base: try Reference(parsing: "tiny/conv")))
            let merged = try test.merge(base: "tiny/conv", adapters: [("tiny/lora", 1)])
            let a = try #require(values["base_model.model.conv.lora_A.weight"])
            let b = try #require(values["base_model.model.conv.lora_B.weight"])
            let w = try #require(values["conv.weight"])
            let kernel = try #require(merged["conv.weight"]).floats
            for out in 0..<4 {
                for column in 0..<12 {
                    let delta = (0..<2).reduce(0.0) { $0 + Double(b[out * 2 + $1]) * Double(a[$1 * 12 + column]) }
                    #expect(abs(Double(kernel[out * 12 + column]) - (Double(w[out * 12 + column]) + scale * delta)) <= 1e-6)
                }
            }
            let bias = try #require(merged["conv.bias"]).floats
            let loraBias = try #require(values["base_model.model.conv.lora_B.bias"])
            let baseBias = try #require(values["conv.bias"])
            for out in 0..<4 {
                #expect(abs(Double(bias[out]) - (Double(baseBias[out]) + scale * Double(loraBias[out]))) <= 1e-6)
            }
        }
    }

    @Test func refusesAGroupedConvolutionAsPEFTDoes() throws {
        try TemporaryDirectory.with { directory in
            let (base, adapter, _) = try write(directory, groupedKernel: true)
            let test = try TestStore(in: directory)
            try test.store.push(base, to: try Reference(parsing: "tiny/conv"))
            #expect {
                try test.store.push(adapter, to: try Reference(parsing: "tiny/lora"), options: PushOptions(base: try Reference(parsing: "tiny/conv")))
            } throws: { error in
                "\(error)".contains("grouped convolutions") && "\(error)".contains("base_model.model.conv.lora_A.weight")
            }
        }
    }
}
