import Foundation
import Hummingbird
import HummingbirdTesting
import LoraStoreCore
import LoraStoreServer

/// The registry application over a fresh store, driven through Hummingbird's router test client (no
/// socket), for checking answers route by route.
enum RouterTest {
    /// Runs `body` with the router test client of an application configured by `configuration`, over a
    /// store holding the micro base (`micro/base:fp32`) and adapter a (`acme/a`), and an admin token's secret.
    /// The store is opened with `maintenanceWait` (``Store/maintenanceWait``) and `indexBusyTimeout`.
    static func with(
        _ configuration: RegistryConfiguration = RegistryConfiguration(workerThreads: 2), maintenanceWait: Duration? = nil,
        indexBusyTimeout: Duration = .seconds(30),
        _ body: @Sendable @escaping (any TestClientProtocol, Store, String) async throws -> Void
    ) async throws {
        try await TemporaryDirectory.with { directory in
            let store = try Store(
                root: directory.appending(path: "store"), maintenanceWait: maintenanceWait, indexBusyTimeout: indexBusyTimeout)
            let base = try Reference(parsing: "micro/base:fp32")
            try store.push(Fixtures.url("base_fp32"), to: base)
            try store.push(Fixtures.url("adapters/a_r8_qv"), to: try Reference(parsing: "acme/a"), options: PushOptions(base: base))
            let admin = try store.createToken(scope: .admin).secret
            let app = buildApplication(store: store, configuration: configuration)
            try await app.test(.router) { client in try await body(client, store, admin) }
        }
    }

    /// The code and message of an error answer's JSON body (`{"error": {"code", "message"}}`, API.md).
    static func error(in body: Data) throws -> (code: String, message: String) {
        struct Body: Decodable {
            struct Detail: Decodable {
                var code: String
                var message: String
            }
            var error: Detail
        }
        let detail = try JSONDecoder().decode(Body.self, from: body).error
        return (detail.code, detail.message)
    }

    /// The code of an error answer, or nil when the body is not one.
    static func code(of response: TestResponse) -> String? {
        try? error(in: Data(buffer: response.body)).code
    }
}
