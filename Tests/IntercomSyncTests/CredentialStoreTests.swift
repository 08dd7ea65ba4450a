import CLISupport
import Foundation
import Testing

@testable import IntercomSync

@Suite struct CredentialStoreTests {
    @Test func fingerprintsAreSHA256() {
        // FIPS 180-4 test vectors, including a two-block message.
        #expect(SHA256.hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(
            SHA256.hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(Credentials.fingerprint(of: "abc") == "sha256:ba7816bf8f01")
    }

    @Test func savedCredentialsReadBackAndOthersCannotReadThem() throws {
        let folder = try TemporaryDirectory()
        let store = CredentialStore(path: folder.path("config/intercom-sync/credentials.json"))
        #expect(try store.load() == nil)
        let credentials = Credentials(
            accessToken: "q7Zx-secret-9", method: .accessToken, adminID: "1", workspaceID: "ws", region: "EU", createdAt: 1)
        try store.save(credentials)
        #expect(try store.load() == credentials)
        #expect(credentials.apiBaseURL.absoluteString == "https://api.eu.intercom.io")
        #expect(!credentials.description.contains("q7Zx-secret-9"))
        chmod(store.path, 0o640)
        #expect(throws: AuthError.self) { try store.load() }
        #expect(try store.remove())
        #expect(try !store.remove())
    }
}
