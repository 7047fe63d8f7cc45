import CoopFormats
import Foundation
import Testing

/// LXD's and Incus's `metadata.yaml` as coop reads it from an image: dates, properties, templates, and
/// the one piece of LXD's template language coop renders.
@Suite("LXD image metadata")
struct LXDImageMetadataTests {
    static let sample = """
        architecture: x86_64
        creation_date: 1764374400
        expiry_date: 1766966400
        properties:
          os: Debian
          release: bookworm
        templates:
          /etc/hostname:
            when: [create, copy]
            template: hostname.tpl
          /etc/cloud/seed:
            when: [start]
            template: seed.tpl
        """

    @Test("Dates, properties and templates are read; templates sorted by path")
    func reads() throws {
        let metadata = try LXDImageMetadata(yaml: Self.sample, source: "test")
        #expect(metadata.architecture == "x86_64")
        #expect(metadata.creationDate == 1_764_374_400 && metadata.expiryDate == 1_766_966_400)
        #expect(metadata.properties == ["os": "Debian", "release": "bookworm"])
        #expect(metadata.templates.map(\.path) == ["/etc/cloud/seed", "/etc/hostname"])
        #expect(metadata.templates[1].when == ["create", "copy"] && metadata.templates[1].file == "hostname.tpl")
    }

    @Test(
        "Hostile or broken metadata is refused with the field named",
        arguments: [
            ("templates:\n  etc/hostname: {template: a.tpl}\n", "template path"),
            ("templates:\n  /etc/../../x: {template: a.tpl}\n", "template path"),
            ("templates:\n  /etc/hostname: {template: ../../x}\n", "template of /etc/hostname"),
            ("templates:\n  /etc/hostname: {template: a/b.tpl}\n", "template of /etc/hostname"),
            ("expiry_date: soon\n", "expiry_date"),
            ("- a list\n", "top level"),
            ("a: [unclosed\n", "is not YAML"),
        ])
    func refuses(yaml: String, named: String) {
        #expect {
            try LXDImageMetadata(yaml: yaml, source: "test")
        } throws: { error in
            "\(error)".contains(named) && "\(error)".contains("fix:")
        }
    }

    @Test("The instance's name is rendered; any other template construct is not")
    func renders() {
        #expect(LXDImageMetadata.render("{{ container.name }}\n", name: "web") == "web\n")
        #expect(LXDImageMetadata.render("127.0.1.1\t{{instance.name}}\n{x}", name: "a") == "127.0.1.1\ta\n{x}")
        #expect(LXDImageMetadata.render("{% if true %}x{% endif %}", name: "a") == nil)
        #expect(LXDImageMetadata.render("{{ config_get(\"user.x\", \"\") }}", name: "a") == nil)
        #expect(LXDImageMetadata.render("{{ container.name", name: "a") == nil)
        #expect(LXDImageMetadata.render("{# comment #}", name: "a") == nil)
    }
}
