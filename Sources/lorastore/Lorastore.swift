import ArgumentParser
import Foundation
import LoraStoreCore

/// The `lorastore` command: push adapters, pull merged builds, query storage savings.
@main
struct Lorastore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lorastore",
        abstract: "A LoRA adapter store: push base models and adapters, pull merged builds, see what it saves.",
        discussion: """
            The store lives in --store PATH, else $LORASTORE_HOME, else ./store (the repository's store/ folder \
            when run from its root). References are NAME[:TAG] (tag defaults to latest), NAME@sha256:<hex> or \
            sha256:<hex>.
            """,
        version: LoraStoreVersion.current,
        subcommands: [
            Demo.self, Push.self, Pull.self, List.self, Show.self, Tag.self, Remove.self, Build.self, LineageCommand.self,
            Cache.self, Stats.self, GarbageCollect.self, Verify.self, Merge.self, Quantize.self, Serve.self, Token.self,
        ]
    )

    /// Runs the command. With `--json`, an error is also written for scripts: one JSON object
    /// (`{"error": {"message": ..., "exitCode": ...}}`) on standard error instead of `Error: ...`, with the
    /// same exit status.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            var command = try parseAsRoot(arguments)
            if var command = command as? AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            let error = explained(error)
            let code = exitCode(for: error)
            let message = self.message(for: error)
            let scripted = arguments.prefix { $0 != "--" }.contains("--json")
            guard scripted, code != .success, !message.isEmpty, let json = JSONError(message: message, exitCode: code).text
            else { exit(withError: error) }
            FileHandle.standardError.write(Data((json + "\n").utf8))
            exit(withError: ExitCode(code.rawValue))
        }
    }

    /// SQLite's errors about the index file itself, said for people: a damaged index or a full disk is the
    /// store's state, which the user has to act on, not a lorastore bug.
    private static func explained(_ error: any Error) -> any Error {
        if StoreIndex.isDamage(error) {
            return CommandError("the store's index is damaged (\(error)); `lorastore verify` says what to do")
        }
        if StoreIndex.isFull(error) {
            return CommandError("the disk holding the store's index is full (\(error)); free space on it and run the command again")
        }
        return error
    }

    /// The error object `--json` writes.
    private struct JSONError: Encodable {
        struct Body: Encodable {
            let message: String
            let exitCode: Int32
        }

        let error: Body

        init(message: String, exitCode: ExitCode) {
            error = Body(message: message, exitCode: exitCode.rawValue)
        }

        /// The object as one line of JSON.
        var text: String? {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) }
        }
    }
}
