import CoopArchive
import CoopFormats
import CoopSupport
import Foundation

/// The templates of an LXD or Incus image (`metadata.yaml`, `templates/NAME.tpl`), applied at create as LXD
/// applies them: each file whose template names the `create` trigger is written with the container's name.
/// coop renders the instance's name only; a template that asks for more is left out, with a warning.
struct LXDTemplates {
    let meta: MetaArchive
    /// The image's `metadata.yaml`, read once; nil for an image with LXC's metadata.
    let metadata: LXDImageMetadata?

    init(_ meta: MetaArchive) throws {
        self.meta = meta
        metadata = try meta.lxdMetadata.map { try LXDImageMetadata(yaml: $0, source: "the image") }
    }

    /// Paths whose names are filled in at create: LXC's templates, and the files LXD's templates write.
    var paths: [String] {
        let written = metadata?.templates.filter { $0.when.contains("create") }.map(\.path) ?? []
        return meta.templates + written.filter { !meta.templates.contains($0) }
    }

    /// The files LXD's `create` templates write for a container named `name`.
    func rendered(name: String, quiet: Bool) throws -> [String: String] {
        guard let metadata else { return [:] }
        var files: [String: String] = [:]
        for template in metadata.templates where template.when.contains("create") {
            guard let text = meta.files["templates/\(template.file)"] else {
                throw CoopError(
                    .verification, "template \(Console.escaped(template.file)) of \(Console.escaped(template.path))",
                    cause: "is named in metadata.yaml but missing from the metadata tarball",
                    fix: "do not use this image, or ask its publisher to fix its metadata")
            }
            guard let rendered = LXDImageMetadata.render(text, name: name) else {
                if !quiet {
                    Console.warning(
                        "the image's template for \(Console.escaped(template.path)) uses more of LXD's template "
                            + "language than the instance's name, which coop does not render: the file stays as the "
                            + "image has it")
                }
                continue
            }
            files[template.path] = rendered
        }
        return files
    }
}
