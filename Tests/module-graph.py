#!/usr/bin/python3
"""Checks that Package.swift declares exactly the edges the code imports, and that every edge points
down the pipeline (a module imports only modules listed before it in ORDER). Run by `make lint`."""
import glob
import re
import sys

# The pipeline from the bottom up: the OS and format layers, then the stages in the order data flows.
ORDER = [
    "CLibcrypto", "CCoopNamespace", "CArchive", "CLZMA", "CCurl", "CGPGME",
    "CoopSupport", "CoopSystem", "CoopArchive", "CoopFormats",
    "CoopTransfer", "CoopTrust", "CoopStore", "CoopFetch", "CoopRootfs", "CoopContainer",
    "CoopRuntime", "CoopBuild", "CoopPublish", "CoopFleet", "CoopCLI", "CoopUnitTests", "CoopSystemTests",
]
# Modules of the toolchain and of packages, which Package.swift declares differently or not at all.
OUTSIDE = {"Foundation", "FoundationEssentials", "Glibc", "Dispatch", "Testing", "ArgumentParser", "Synchronization", "Yams"}

package = open("Package.swift").read()
declared = {}
# Each target's text runs from its `.target(` to the next target.
pieces = re.split(r'\.(?:target|executableTarget|testTarget|systemLibrary)\(', package)[1:]
for piece in pieces:
    name = re.match(r'\s*name: "(\w+)"', piece).group(1)
    deps = re.search(r'dependencies: \[(.*?)\]', piece, re.S)
    listed = re.sub(r'\.product\(.*?\)', '', deps.group(1), flags=re.S) if deps else ""
    declared[name] = set(re.findall(r'"(\w+)"', listed))

problems = []
for name, deps in sorted(declared.items()):
    folder = f"Tests/{name}" if name.endswith("Tests") else f"Sources/{name}"
    imported = set()
    for path in glob.glob(f"{folder}/**/*.swift", recursive=True):
        text = open(path).read()
        imported |= set(re.findall(r'^(?:@preconcurrency |@testable )?import (\w+)', text, re.M))
    imported -= OUTSIDE
    if not glob.glob(f"{folder}/**/*.swift", recursive=True):
        continue  # C targets: their edges are in their headers
    for missing in sorted(imported - deps):
        problems.append(f"{name} imports {missing} but Package.swift does not declare it")
    for unused in sorted(deps - imported):
        problems.append(f"{name} declares {unused} but imports it nowhere")
    for dep in sorted(deps & imported):
        if name in ORDER and dep in ORDER and ORDER.index(dep) >= ORDER.index(name):
            problems.append(f"{name} depends on {dep}, which comes after it in the pipeline")
        if dep not in ORDER:
            problems.append(f"{dep} (imported by {name}) has no place in the pipeline order of {sys.argv[0]}")
    if name not in ORDER:
        problems.append(f"{name} has no place in the pipeline order of {sys.argv[0]}")

for line in problems:
    print(f"module graph: {line}", file=sys.stderr)
sys.exit(1 if problems else 0)
