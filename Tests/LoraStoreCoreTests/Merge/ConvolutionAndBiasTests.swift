import Foundation
import Testing
@testable import LoraStoreCore

/// PEFT cases the fixtures do not cover: LoRA on a convolution (delta = B·A over the flattened kernel) and a
/// LoRA bias (`lora_B.bias`, scaled, added to the base bias), on a small model written by the test.
@Suite("Convolution LoRA and LoRA bias")
struct ConvolutionAndBiasTests {
    private let scale = 6.0 / 2.0

    /// A base with a conv kernel [4, 3, 2, 2] and its bias [4], and an adapter of rank 2 with a LoRA bias;
    /// with `trainedBias`, the adapter was trained with `bias="all"` and carries its own copy of the base
    /// bias (`conv.base_layer.bias`), as PEFT saves it.
    private func write(
        _ directory: URL, groupedKernel: Bool = false, trainedBias: Bool = false
    ) throws -> (base: URL, adapter: URL, values: [String: [Float]]) {
        func values(_ count: Int, _ seed: Int) -> [Float] { (0..<count).map { Float(sin(Double($0 * 7 + seed))) * 0.1 } }
        let kernelShape = groupedKernel ? [4, 1, 2, 2] : [4, 3, 2, 2]
        let tensors: [String: [Float]] = [
            "conv.weight": values(kernelShape.reduce(1, *), 1), "conv.bias": values(4, 2),
            "base_model.model.conv.lora_A.weight": values(2 * 3 * 2 * 2, 3),
            "base_model.model.conv.lora_B.weight": values(4 * 2, 4),
            "base_model.model.conv.lora_B.bias": values(4, 5),
            "base_model.model.conv.base_layer.bias": values(4, 6),
        ]
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let base = directory.appending(path: "base.safetensors")
        try AdapterFolder.writeF32(
            [("conv.weight", kernelShape, tensors["conv.weight"]!), ("conv.bias", [4], tensors["conv.bias"]!)], to: base)
        let adapter = directory.appending(path: "adapter")
        try FileManager.default.createDirectory(at: adapter, withIntermediateDirectories: true)
        let bias = trainedBias ? "all" : "none"
        try #"{"peft_type": "LORA", "r": 2, "lora_alpha": 6, "target_modules": ["conv"], "lora_bias": true, "bias": "\#(bias)"}"#
            .write(to: adapter.appending(path: "adapter_config.json"), atomically: true, encoding: .utf8)
        var adapterTensors = [
            ("base_model.model.conv.lora_A.weight", [2, 3, 2, 2], tensors["base_model.model.conv.lora_A.weight"]!),
            ("base_model.model.conv.lora_B.weight", [4, 2, 1, 1], tensors["base_model.model.conv.lora_B.weight"]!),
            ("base_model.model.conv.lora_B.bias", [4], tensors["base_model.model.conv.lora_B.bias"]!),
        ]
        if trainedBias {
            adapterTensors.append(("base_model.model.conv.base_layer.bias", [4], tensors["base_model.model.conv.base_layer.bias"]!))
        }
        try AdapterFolder.writeF32(adapterTensors, to: adapter.appending(path: "adapter_model.safetensors"))
        return (base, adapter, tensors)
    }

    /// Expects the merged `conv.bias` to be `start` + s·lora_B.bias.
    private func expectBias(_ merged: [String: LoadedTensor], startingFrom start: [Float], values: [String: [Float]]) throws {
        let bias = try #require(merged["conv.bias"]).floats
        let loraBias = try #require(values["base_model.model.conv.lora_B.bias"])
        for out in 0..<4 {
            #expect(abs(Double(bias[out]) - (Double(start[out]) + scale * Double(loraBias[out]))) <= 1e-6)
        }
    }

    /// Pushes `base` as tiny/conv and `adapter` as tiny/lora into a new store in `directory`, and merges them.
    private func pushAndMerge(base: URL, adapter: URL, in directory: URL) throws -> [String: LoadedTensor] {
        let test = try TestStore(in: directory)
        try test.store.push(base, to: try Reference(parsing: "tiny/conv"))
        try test.store.push(adapter, to: try Reference(parsing: "tiny/lora"), options: PushOptions(base: try Reference(parsing: "tiny/conv")))
        return try test.merge(base: "tiny/conv", adapters: [("tiny/lora", 1)])
    }

    @Test func mergesAConvolutionKernelAndTheLoRABias() throws {
        try TemporaryDirectory.with { directory in
            let (base, adapter, values) = try write(directory)
            let merged = try pushAndMerge(base: base, adapter: adapter, in: directory)
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
            try expectBias(merged, startingFrom: try #require(values["conv.bias"]), values: values)
        }
    }

    /// With `bias="all"` PEFT loads the adapter's trained bias into the base layer, then its merge adds the
    /// scaled LoRA bias to that: b' = trained + s·lora_B.bias (the LoRA bias used to be dropped here).
    @Test func addsTheLoRABiasToTheTrainedBaseBias() throws {
        try TemporaryDirectory.with { directory in
            let (base, adapter, values) = try write(directory, trainedBias: true)
            let merged = try pushAndMerge(base: base, adapter: adapter, in: directory)
            try expectBias(merged, startingFrom: try #require(values["base_model.model.conv.base_layer.bias"]), values: values)
        }
    }

    /// One adapter's trained bias and another's LoRA bias on the same layer do not combine: refused, as a
    /// replaced weight that another adapter changes is.
    @Test func refusesAnotherAdaptersLoRABiasOnATrainedBias() throws {
        try TemporaryDirectory.with { directory in
            let trained = try write(directory.appending(path: "trained"), trainedBias: true)
            let plain = try write(directory.appending(path: "plain"))
            let test = try TestStore(in: directory)
            try test.store.push(trained.base, to: try Reference(parsing: "tiny/conv"))
            let onBase = PushOptions(base: try Reference(parsing: "tiny/conv"))
            try test.store.push(trained.adapter, to: try Reference(parsing: "tiny/trained"), options: onBase)
            try test.store.push(plain.adapter, to: try Reference(parsing: "tiny/plain"), options: onBase)
            #expect {
                try test.merge(base: "tiny/conv", adapters: [("tiny/trained", 1), ("tiny/plain", 1)])
            } throws: { error in
                "\(error)".contains("conv.bias") && "\(error)".contains("changed by LoRA from another")
            }
            let alone = try test.merge(base: "tiny/conv", adapters: [("tiny/trained", 1)], name: "alone")
            #expect(alone["conv.bias"] != nil, "its own LoRA bias adds to its trained bias")
        }
    }

    /// PEFT saves a `modules_to_save` module whole: a classification head `classifier` saves the tensors
    /// of `classifier.dense` and `classifier.out_proj`, each replacing the base's.
    @Test func aSavedModuleReplacesTheTensorsOfItsSubmodules() throws {
        try TemporaryDirectory.with { directory in
            let (base, adapter, _) = try write(directory)
            let head: [(name: String, shape: [Int], values: [Float])] = [
                ("classifier.dense.weight", [2, 2], [1, 2, 3, 4]), ("classifier.out_proj.weight", [1, 2], [5, 6]),
            ]
            let kernel = try LoadedTensor.file(base)
            try AdapterFolder.writeF32(
                kernel.sorted { $0.key < $1.key }.map { ($0.key, $0.value.shape, $0.value.floats) } + head, to: base)
            try #"{"peft_type": "LORA", "r": 2, "lora_alpha": 6, "target_modules": ["conv"], "lora_bias": true, "modules_to_save": ["classifier"]}"#
                .write(to: adapter.appending(path: "adapter_config.json"), atomically: true, encoding: .utf8)
            let file = adapter.appending(path: "adapter_model.safetensors")
            let trained = head.map { ("base_model.model." + $0.name, $0.shape, $0.values.map { $0 + 10 }) }
            try AdapterFolder.writeF32(
                try LoadedTensor.file(file).sorted { $0.key < $1.key }.map { ($0.key, $0.value.shape, $0.value.floats) } + trained,
                to: file)
            let merged = try pushAndMerge(base: base, adapter: adapter, in: directory)
            #expect(try #require(merged["classifier.dense.weight"]).floats == [11, 12, 13, 14])
            #expect(try #require(merged["classifier.out_proj.weight"]).floats == [15, 16])
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
