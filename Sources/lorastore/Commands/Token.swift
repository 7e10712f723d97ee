import ArgumentParser
import Foundation
import LoraStoreCore

extension TokenScope: ExpressibleByArgument {}

struct Token: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the registry's access tokens (the store keeps only their hashes).",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a token and print its secret, this once.")

        @Option(help: "read, push or admin (each includes the ones before).")
        var scope: TokenScope

        @Option(help: "The repositories it applies to: * (all), NAME/* or a repository name.")
        var namespace = "*"

        @OptionGroup var global: GlobalOptions

        func run() throws {
            let created: NewToken
            do {
                created = try global.openStore(creating: true).createToken(scope: scope, namespace: namespace)
            } catch let error as ReferenceError {
                throw CommandError("--namespace: \(error.description)")
            }
            if global.json {
                try Output.json(created)
                return
            }
            print(created.secret)
            Output.note("token \(created.token.id): \(scope.rawValue) on \(namespace). The secret is shown only now; store it safely.")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List tokens (never their secrets).")

        @OptionGroup var global: GlobalOptions

        func run() throws {
            let tokens = try global.openStore().tokens()
            if global.json {
                try Output.json(tokens)
                return
            }
            let formatter = ISO8601DateFormatter()
            Output.table(
                [["ID", "SCOPE", "NAMESPACE", "CREATED", "REVOKED"]]
                    + tokens.map {
                        [$0.id, $0.scope.rawValue, $0.namespace, formatter.string(from: $0.createdAt), $0.revokedAt.map(formatter.string(from:)) ?? "-"]
                    })
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a token: requests with it are refused at once.")

        @Argument(help: "The token's id (from `token ls`).")
        var id: String

        @OptionGroup var global: GlobalOptions

        func run() throws {
            try global.openStore().revokeToken(id: id)
            if global.json { return try Output.json(["revoked": id]) }
            print("revoked token \(id)")
        }
    }
}
