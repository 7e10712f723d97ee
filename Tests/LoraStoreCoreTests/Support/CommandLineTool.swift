import Foundation

/// Runs the `lorastore` executable built beside the test bundle, as a separate process.
enum CommandLineTool {
    /// The built `lorastore` binary (`swift build` puts it next to the test bundle).
    static var executable: URL {
        var directory = Bundle.main.bundleURL
        while directory.path != "/" {
            let candidate = directory.appending(path: "lorastore")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appending(path: "lorastore")
    }

    /// Starts `lorastore arguments...` and returns the process (not yet finished).
    static func start(_ arguments: [String], environment: [String: String] = [:]) throws -> (Process, Pipe) {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        return (process, output)
    }

    /// Runs `lorastore arguments...` to completion; returns its exit status and combined output.
    @discardableResult
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        finish(try start(arguments, environment: environment))
    }

    /// Waits for a process from ``start(_:environment:)``; returns its exit status and combined output.
    static func finish(_ started: (Process, Pipe)) -> (status: Int32, output: String) {
        let (process, pipe) = started
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
