import CoopSupport
import Foundation

/// Simplestreams, as Incus and LXD image servers publish it: `streams/v1/index.json` (an `Index`) names the
/// products file (`Products`), whose products (`distro:release:arch:variant`) list versions with their items.
/// The reader here and `coop publish` share these models, and so their field names and their grammar.
public enum Simplestreams {
    public static let indexPath = "streams/v1/index.json"
    /// Where `coop publish` writes the products file (clients find it through the index).
    public static let productsPath = "streams/v1/images.json"

    /// The products file the index names for image downloads: a `.json` path below the remote.
    public static func productsPath(fromIndex data: Data, source: String, remote: String = "?") throws -> String {
        let index: Index
        do { index = try JSONDecoder().decode(Index.self, from: data) } catch {
            throw CoopError(
                .verification, "simplestreams index \(source)", cause: "not valid JSON: \(error)",
                wrapping: error)
        }
        guard let entry = index.imageDownloads else {
            throw CoopError(.verification, "simplestreams index \(source)", cause: "lists no image-downloads products")
        }
        do { try Index.checkProductsPath(entry.path) } catch {
            throw IndexField.refusal(remote: remote, source: source, error)
        }
        return entry.path
    }

    /// Parses a products file; every product key, version key and item of a usable version must match its
    /// grammar in `IndexField`, or the whole file is refused.
    public static func parseProducts(_ data: Data, source: String, remote: String = "?") throws -> [ImageBuild] {
        let products: Products
        do { products = try JSONDecoder().decode(Products.self, from: data) } catch {
            throw CoopError(
                .verification, "simplestreams products \(source)", cause: "not valid JSON: \(error)",
                wrapping: error)
        }
        do { return try products.builds() } catch { throw IndexField.refusal(remote: remote, source: source, error) }
    }

    /// JSON as `coop publish` writes it: indented, keys sorted, so that the same builds give the same bytes.
    public static func encoded(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(value)
    }
}
