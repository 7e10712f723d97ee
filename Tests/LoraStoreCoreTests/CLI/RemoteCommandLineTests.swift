import Glibc
import Foundation
import Testing
@testable import LoraStoreCore

/// The `lorastore` command against a `lorastore serve` process over loopback: tokens, remote push and pull.
@Suite("Remote command line")
struct RemoteCommandLineTests {
    /// A port nothing listens on now (the kernel's pick for an ephemeral bind, released at once).
    private func freePort() throws -> Int {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafeMutablePointer(to: &address) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                guard bind(socket, socketAddress, length) == 0, getsockname(socket, socketAddress, &length) == 0 else {
                    throw FileAccessError(.open, path: "127.0.0.1:0")
                }
            }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test func pushAndPullThroughAServerProcess() throws {
        try TemporaryDirectory.with { directory in
            let server = directory.appending(path: "server").path
            let local = directory.appending(path: "local").path
            let port = try freePort()
            let (serve, _) = try CommandLineTool.start(["serve", "--port", String(port), "--store", server])
            defer {
                serve.terminate()
                serve.waitUntilExit()
            }
            let created = try CommandLineTool.run(["token", "create", "--scope", "push", "--store", server])
            try #require(created.status == 0, "\(created.output)")
            let token = created.output.split(separator: "\n").last.map(String.init) ?? ""
            let remote = ["--remote", "http://127.0.0.1:\(port)"]
            var ready = false
            for _ in 0..<200 where !ready {
                ready = try CommandLineTool.run(["ls", "--json"] + remote).status == 0
                if !ready { usleep(50_000) }
            }
            try #require(ready, "the server did not come up")

            let refused = try CommandLineTool.run(["push", Fixtures.url("base_fp32").path, "micro/base"] + remote)
            #expect(refused.status != 0, "a push without a token is refused: \(refused.output)")
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
