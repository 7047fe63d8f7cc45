import CoopSupport
import Foundation
import Yams

/// `metadata.yaml` of an LXD or Incus image: its architecture, dates, properties, and the templates that
/// write files of the rootfs when an instance is created (or copied, renamed, started).
///
/// The file comes from an image, so it is held to a grammar: dates are integers, template paths absolute
/// without `..`, template files plain names below `templates/`. Anything else is an error naming the field.
public struct LXDImageMetadata: Sendable, Equatable {
    public struct Template: Sendable, Equatable {
        /// Where the rendered file goes in the rootfs (absolute).
        public var path: String
        /// The triggers: `create`, `copy`, `rename`, `start`.
        public var when: [String]
        /// The file below `templates/` in the metadata tarball.
        public var file: String
    }

    public var architecture: String?
    public var creationDate: Int?
    public var expiryDate: Int?
    public var properties: [String: String]
    public var templates: [Template]

    public init(yaml text: String, source: String) throws {
        let problem = { (field: String, expected: String) in
            CoopError(
                .verification, "metadata.yaml of \(source)", cause: "its \(field) is not \(expected)",
                fix: "do not use this image, or ask its publisher to fix its metadata")
        }
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw CoopError(
                .verification, "metadata.yaml of \(source)", cause: "is not YAML: \(Console.escaped("\(error)"))",
                fix: "do not use this image, or ask its publisher to fix its metadata")
        }
        guard let top = node?.mapping else { throw problem("top level", "a mapping") }
        func scalar(_ key: String) -> String? { top[Node(key)]?.scalar?.string }
        func integer(_ key: String) throws -> Int? {
            guard let text = scalar(key) else { return nil }
            guard let value = Int(text), value >= 0 else { throw problem(key, "a date in epoch seconds") }
            return value
        }
        architecture = scalar("architecture")
        creationDate = try integer("creation_date")
        expiryDate = try integer("expiry_date")
        var properties: [String: String] = [:]
        for (key, value) in top[Node("properties")]?.mapping ?? [:] {
            if let key = key.scalar?.string, let value = value.scalar?.string { properties[key] = value }
        }
        self.properties = properties
        var templates: [Template] = []
        for (key, value) in top[Node("templates")]?.mapping ?? [:] {
            guard let path = key.scalar?.string, path.hasPrefix("/"),
                !path.split(separator: "/").contains(".."), !path.contains("\0")
            else { throw problem("template path \(Console.escaped(key.scalar?.string ?? "?"))", "an absolute path") }
            guard let entry = value.mapping, let file = entry[Node("template")]?.scalar?.string,
                !file.isEmpty, !file.contains("/"), file != "..", file != "."
            else { throw problem("template of \(path)", "a file name below templates/") }
            let when = (entry[Node("when")]?.sequence ?? []).compactMap { $0.scalar?.string }
            templates.append(Template(path: path, when: when, file: file))
        }
        self.templates = templates.sorted { $0.path < $1.path }
    }

    /// `template` rendered for an instance named `name`, when it uses nothing but the instance's name
    /// (`{{ container.name }}` or `{{ instance.name }}`); nil for any other pongo2 construct, which coop does
    /// not render.
    public static func render(_ template: String, name: String) -> String? {
        var result = ""
        var rest = Substring(template)
        while let open = rest.range(of: "{") {
            let next = rest[open.upperBound...].first
            if next == "%" || next == "#" { return nil }
            guard next == "{" else {
                result += rest[..<open.upperBound]
                rest = rest[open.upperBound...]
                continue
            }
            guard let close = rest[open.upperBound...].range(of: "}}") else { return nil }
            let expression = rest[rest.index(after: open.upperBound)..<close.lowerBound]
                .trimmingCharacters(in: .whitespaces)
            guard expression == "container.name" || expression == "instance.name" else { return nil }
            result += rest[..<open.lowerBound] + name
            rest = rest[close.upperBound...]
        }
        return result + rest
    }
}
