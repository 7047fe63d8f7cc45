/// The private IPv4 network a fleet's nodes share: the gateway takes the first host address, nodes the ones after.
///
/// Only private ranges are accepted, so that a fleet can never shadow a real address on the host's routes,
/// and only prefixes from /16 to /29: a larger network is more than any fleet needs, a smaller one holds no nodes.
public struct IPv4Subnet: Sendable, Equatable, CustomStringConvertible {
    /// The network address, host bits zero.
    public let network: UInt32
    /// The number of leading bits that name the network.
    public let prefix: Int

    /// The prefixes a fleet may use.
    public static let prefixes = 16...29

    /// The subnet written as "A.B.C.D/P", or nil when `problem(with:)` names a reason.
    public init?(_ text: String) {
        guard case .success(let parsed) = Self.parse(text) else { return nil }
        (network, prefix) = parsed
    }

    /// Why `text` is not a subnet a fleet can use, for an error message; nil when it is one.
    /// The reason names only the parsed numbers, never the raw text, so it is safe to print.
    public static func problem(with text: String) -> String? {
        if case .failure(let problem) = parse(text) { return problem.reason }
        return nil
    }

    public var description: String { "\(Self.dotted(network))/\(prefix)" }

    /// The host side of the network: the first address.
    public var gateway: String { Self.dotted(network + 1) }

    /// How many nodes fit: every address but the network, the broadcast and the gateway.
    public var capacity: Int { (1 << (32 - prefix)) - 3 }

    /// The address of the node at `index` (0 is the first node): the addresses after the gateway, in order.
    public func address(ofNode index: Int) -> String {
        precondition((0..<capacity).contains(index), "node \(index) does not fit in \(self)")
        return Self.dotted(network + 2 + UInt32(index))
    }

    /// The smallest subnet around this one's address that holds `count` nodes; nil when even a /16 cannot.
    public func widened(toHold count: Int) -> IPv4Subnet? {
        guard let prefix = (Self.prefixes.lowerBound...prefix).last(where: { (1 << (32 - $0)) - 3 >= count }) else {
            return nil
        }
        return IPv4Subnet(network: network & Self.mask(prefix), prefix: prefix)
    }

    private init(network: UInt32, prefix: Int) {
        self.network = network
        self.prefix = prefix
    }

    /// The private ranges of RFC 1918, as (network, prefix).
    private static let privateRanges: [(network: UInt32, prefix: Int)] = [
        (0x0A00_0000, 8), (0xAC10_0000, 12), (0xC0A8_0000, 16),
    ]

    private struct Problem: Error {
        let reason: String
    }

    private static func parse(_ text: String) -> Result<(UInt32, Int), Problem> {
        let halves = text.split(separator: "/", omittingEmptySubsequences: false)
        guard halves.count == 2, let address = address(halves[0]), let prefix = number(halves[1], upTo: 32) else {
            return .failure(Problem(reason: "not a subnet in the form A.B.C.D/P, such as 10.123.0.0/24"))
        }
        guard prefixes.contains(prefix) else {
            return .failure(
                Problem(
                    reason: "the prefix must be /\(prefixes.lowerBound) to /\(prefixes.upperBound), not /\(prefix)"))
        }
        let network = address & mask(prefix)
        guard network == address else {
            return .failure(
                Problem(
                    reason: "host bits are set: the network address of this /\(prefix) is \(dotted(network))"))
        }
        guard privateRanges.contains(where: { network & mask($0.prefix) == $0.network }) else {
            return .failure(
                Problem(
                    reason:
                        "\(dotted(network))/\(prefix) is not private: use 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16"
                ))
        }
        return .success((network, prefix))
    }

    private static func mask(_ prefix: Int) -> UInt32 {
        prefix == 0 ? 0 : UInt32.max << (32 - prefix)
    }

    /// Four decimal parts of 0...255; no leading zeros, which some tools read as octal.
    private static func address(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard let byte = number(part, upTo: 255) else { return nil }
            value = value << 8 | UInt32(byte)
        }
        return value
    }

    private static func number(_ text: Substring, upTo limit: Int) -> Int? {
        guard (1...3).contains(text.count), text.allSatisfy({ $0.isASCII && $0.isNumber }),
            text == "0" || !text.hasPrefix("0"), let value = Int(text), value <= limit
        else { return nil }
        return value
    }

    private static func dotted(_ address: UInt32) -> String {
        [24, 16, 8, 0].map { String(address >> $0 & 0xFF) }.joined(separator: ".")
    }
}
