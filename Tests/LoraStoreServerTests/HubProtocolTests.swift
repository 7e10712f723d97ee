import Foundation
import LoraStoreClient
import LoraStoreCore
import Testing

/// The real `huggingface_hub` client downloading from the server with `HF_ENDPOINT`.
@Suite struct HubProtocolTests {
    /// The Python of the virtual environment `.ci/run` creates with huggingface_hub and safetensors.
    static let python = ProcessInfo.processInfo.environment["LORASTORE_PYTHON"]

    // Skipped without LORASTORE_PYTHON: the test needs huggingface_hub and safetensors, which `.ci/run`
    // installs into a virtual environment from the package registry (not available everywhere).
    @Test(.enabled(if: python != nil, "LORASTORE_PYTHON is not set (no Python with huggingface_hub)"))
    func snapshotDownloadGetsTheFilesOfALocalPull() async throws {
        try await TestRegistry.with { registry in
            try await TestRegistry.seed(registry.client())
            let local = try Store(root: registry.directory.appending(path: "local-store"))
            try TestRegistry.seed(local)
            let expectedBuild = registry.directory.appending(path: "expected-build")
            let expectedAdapter = registry.directory.appending(path: "expected-adapter")
            try local.pull("acme/merged:v1", to: expectedBuild)
            try local.pull("acme/a", to: expectedAdapter)

            let build = registry.directory.appending(path: "hf-build")
            let adapter = registry.directory.appending(path: "hf-adapter")
            let script = """
                import sys
                from huggingface_hub import snapshot_download
                from safetensors.numpy import load_file
                snapshot_download("acme/merged", revision="v1", local_dir=sys.argv[1])
                snapshot_download("acme/a", local_dir=sys.argv[2])
                tensors = load_file(sys.argv[2] + "/adapter_model.safetensors")
                print(len(tensors))
                """
            let output = try await Self.runPython(
                script, arguments: [build.path, adapter.path], registry: registry)
            #expect(Int(output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 > 0)
            #expect(try folderContents(build) == folderContents(expectedBuild))
            #expect(try folderContents(adapter) == folderContents(expectedAdapter))
        }
    }

    /// A `separate` build's adapters are files in folders (`adapters/<n>-<digest>/...`): the Hub client
    /// lists and downloads them with the rest, as a local pull writes them.
    @Test(.enabled(if: python != nil, "LORASTORE_PYTHON is not set (no Python with huggingface_hub)"))
    func snapshotDownloadGetsTheAdapterFoldersOfASeparateBuild() async throws {
        try await TestRegistry.with { registry in
            try await TestRegistry.seed(registry.client())
            let quantized = try Reference(parsing: "micro/base:i8")
            try registry.store.quantize(try Reference(parsing: "micro/base:fp32"), scheme: .int8Row, to: quantized)
            try registry.store.createBuild(
                base: quantized, adapters: [(try Reference(parsing: "acme/a"), 1)],
                options: MergeOptions(quantizedBase: .separate), tag: try Reference(parsing: "acme/separate:v1"))
            let expected = registry.directory.appending(path: "expected-separate")
            try registry.store.pull("acme/separate:v1", to: expected)
            let downloaded = registry.directory.appending(path: "hf-separate")
            let script = """
                import sys
                from huggingface_hub import snapshot_download
                snapshot_download("acme/separate", revision="v1", local_dir=sys.argv[1])
                """
            _ = try await Self.runPython(script, arguments: [downloaded.path], registry: registry)
            let files = try folderContents(downloaded)
            #expect(files == (try folderContents(expected)))
            #expect(files.keys.contains { $0.hasPrefix("adapters/1-") && $0.hasSuffix("adapter_config.json") })
        }
    }

    /// Runs a Python script with the Hub pointed at the server; returns its standard output.
    private static func runPython(_ script: String, arguments: [String], registry: TestRegistry) async throws -> String {
        guard let python else { return "" }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-c", script] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["HF_ENDPOINT"] = registry.endpoint.absoluteString
        environment["HF_TOKEN"] = registry.adminToken
        environment["HF_HUB_DISABLE_TELEMETRY"] = "1"
        environment["HF_HUB_OFFLINE"] = nil
        environment["HF_HOME"] = registry.directory.appending(path: "hf-home").path
        environment["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        environment["HF_HUB_DISABLE_XET"] = "1"
        process.environment = environment
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Blocking reads stay off Swift's cooperative threads: with two tests at once on two cores they
        // would take both, and the servers the scripts talk to could never answer.
        async let output = Self.readToEnd(stdout.fileHandleForReading)
        async let errors = Self.readToEnd(stderr.fileHandleForReading)
        let (outputBytes, errorBytes) = await (output, errors)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(String(decoding: errorBytes, as: UTF8.self))")
        return String(decoding: outputBytes, as: UTF8.self)
    }

    /// Everything left in `handle`, read on a Dispatch thread.
    private static func readToEnd(_ handle: FileHandle) async -> Data {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(returning: handle.readDataToEndOfFile()) }
        }
    }
}
