import Foundation
import Testing
@testable import LoraStoreCore

/// The `lorastore` command against a `lorastore serve` process over loopback: tokens, remote push and pull.
@Suite("Remote command line")
struct RemoteCommandLineTests {
    /// Starts `lorastore serve --port 0` on `store` and returns the process and the port it printed once
    /// listening (the kernel's pick, so no other test's server can take it in between); nil if it exited
    /// first. The rest of its output is drained, so its logging never blocks it.
    private func serve(store: String) throws -> (process: Process, port: Int?) {
        let (process, pipe) = try CommandLineTool.start(["serve", "--port", "0", "--store", store])
        let handle = pipe.fileHandleForReading
        var output = ""
        var port: Int?
        while port == nil {
            let chunk = handle.availableData
            guard !chunk.isEmpty else { break }
            output += String(decoding: chunk, as: UTF8.self)
            port = output.firstMatch(of: /on http:\/\/127\.0\.0\.1:(\d+)/).flatMap { Int($0.1) }
        }
        DispatchQueue.global().async { _ = handle.readDataToEndOfFile() }
        return (process, port)
    }

    /// A port no socket can have is refused with the option named, before NIO (which would trap on it)
    /// sees it.
    @Test func portsOutsideTheirRangeAreRefused() throws {
        try TemporaryDirectory.with { directory in
            let store = directory.appending(path: "store").path
            let serve = try CommandLineTool.run(["serve", "--port", "70000", "--store", store])
            #expect(serve.status != 0 && serve.output.contains("--port 70000"), "\(serve.output)")
            let list = try CommandLineTool.run(["ls", "--remote", "http://127.0.0.1:99999"])
            #expect(list.status != 0 && list.output.contains("--remote http://127.0.0.1:99999"), "\(list.output)")
        }
    }

    @Test func pushAndPullThroughAServerProcess() throws {
        try TemporaryDirectory.with { directory in
            let server = directory.appending(path: "server").path
            let local = directory.appending(path: "local").path
            let (serve, listening) = try serve(store: server)
            defer {
                serve.terminate()
                serve.waitUntilExit()
            }
            let port = try #require(listening, "the server did not start")
            let created = try CommandLineTool.run(["token", "create", "--scope", "push", "--store", server])
            try #require(created.status == 0, "\(created.output)")
            let token = created.output.split(separator: "\n").last.map(String.init) ?? ""
            let remote = ["--remote", "http://127.0.0.1:\(port)"]
            let refused = try CommandLineTool.run(["push", Fixtures.url("base_fp32").path, "micro/base"] + remote)
            #expect(refused.status == 1 && refused.output.contains("401"), "a push without a token is refused: \(refused.output)")
            let pushed = try CommandLineTool.run(["push", Fixtures.url("base_fp32").path, "micro/base", "--token", token] + remote)
            #expect(pushed.status == 0, "\(pushed.output)")
            let adapter = try CommandLineTool.run(
                ["push", Fixtures.url("adapters/a_r8_qv").path, "acme/a", "--base", "micro/base", "--token", token] + remote)
            #expect(adapter.status == 0, "\(adapter.output)")
            let build = try CommandLineTool.run(
                ["build", "create", "acme/merged", "--base", "micro/base", "--adapter", "acme/a@0.5", "--token", token] + remote)
            #expect(build.status == 0, "\(build.output)")
            let pulled = try CommandLineTool.run(["pull", "acme/merged", "-o", directory.appending(path: "remote-pull").path] + remote)
            #expect(pulled.status == 0, "\(pulled.output)")

            #expect(try CommandLineTool.run(["push", Fixtures.url("base_fp32").path, "micro/base", "--store", local]).status == 0)
            #expect(try CommandLineTool.run(["push", Fixtures.url("adapters/a_r8_qv").path, "acme/a", "--base", "micro/base", "--store", local]).status == 0)
            #expect(try CommandLineTool.run(["pull", "micro/base+acme/a@0.5", "-o", directory.appending(path: "local-pull").path, "--store", local]).status == 0)
            let remoteFile = try SafetensorsFile(contentsOf: directory.appending(path: "remote-pull/model.safetensors"))
            let localFile = try SafetensorsFile(contentsOf: directory.appending(path: "local-pull/model.safetensors"))
            #expect(remoteFile.tensors.map(\.name) == localFile.tensors.map(\.name))
            for (remoteTensor, localTensor) in zip(remoteFile.tensors, localFile.tensors) {
                #expect(Array(remoteFile.bytes(of: remoteTensor)) == Array(localFile.bytes(of: localTensor)), "\(remoteTensor.name)")
            }
        }
    }
}
