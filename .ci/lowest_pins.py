"""The requirements users install, for the lowest-versions run of `.ci/deps`.

Prints the runtime dependencies and the runtime extras of pyproject.toml, which
`.ci/deps lock` resolves lowest-first (uv's lowest-direct), so the lowest run
tests exactly the ranges we publish. `--names` prints only their names.
`--check FILE` reads that resolution and fails, naming the fix, when a bound
could not be honoured (another requirement forced a higher version): a range we
publish must start at a version we test.
"""

import re
import sys
import tomllib

RUNTIME_EXTRAS = ("redis", "sandbox", "mcp")
REQUIREMENT = re.compile(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?\s*(?:>=\s*([0-9][A-Za-z0-9.]*))?")


def runtime_requirements() -> list[str]:
    with open("pyproject.toml", "rb") as file:
        project = tomllib.load(file)["project"]
    requirements = list(project["dependencies"])
    for extra in RUNTIME_EXTRAS:
        requirements += project["optional-dependencies"][extra]
    # Self-references (flask-toucan[redis]) add no range of their own.
    return [r for r in requirements if not r.startswith(project["name"])]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def release(version: str) -> tuple[int, ...]:
    parts = [int(p) for p in re.findall(r"\d+", version)]
    while parts and parts[-1] == 0:  # 3.0 == 3.0.0
        parts.pop()
    return tuple(parts)


def check(resolved_file: str) -> int:
    with open(resolved_file) as file:
        resolved = dict(
            (canonical(name), version)
            for name, version in re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", file.read(), re.M)
        )
    wrong = 0
    for requirement in runtime_requirements():
        match = REQUIREMENT.match(requirement)
        assert match, requirement
        name, bound = canonical(match[1]), match[2]
        if bound and release(resolved[name]) != release(bound):
            print(
                f"pyproject.toml: {name}>={bound} cannot be tested (the lowest resolution needs "
                f"{resolved[name]}): raise the bound to {name}>={resolved[name]}",
                file=sys.stderr,
            )
            wrong += 1
    return 1 if wrong else 0


if __name__ == "__main__":
    if "--check" in sys.argv:
        sys.exit(check(sys.argv[sys.argv.index("--check") + 1]))
    for requirement in runtime_requirements():
        print(canonical(REQUIREMENT.match(requirement)[1]) if "--names" in sys.argv else requirement)
