"""Every C++ block in README.md and docs/*.md compiles against the headers as a user
would include them.

A block is compiled as one translation unit. A block that is a fragment (the body of a
handler, statements inside a coroutine) says so with an HTML comment on the line before
its fence, `<!-- compile: CONTEXT -->`, naming tests/docs/CONTEXT.cpp: that file holds
the includes and the surrounding code, and the block replaces its `@example@` line. The
compiler flags are those the build used for a file of the same library (from
compile_commands.json), with -fsyntax-only.
"""
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from conftest import BUILD, ROOT

FENCE = re.compile(r"^```(cpp|c\+\+)\s*$")
CONTEXT = re.compile(r"^<!--\s*compile:\s*([a-z0-9_]+)\s*-->\s*$")
CONTEXTS = ROOT / "tests" / "docs"


def doc_blocks():
    """(doc path, line, context or None, code) for every C++ block."""
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        lines = doc.read_text().splitlines()
        i = 0
        while i < len(lines):
            if FENCE.match(lines[i]):
                context = CONTEXT.match(lines[i - 1]) if i > 0 else None
                start = i + 1
                end = start
                while end < len(lines) and lines[end].strip() != "```":
                    end += 1
                code = "\n".join(lines[start:end]) + "\n"
                yield doc, start, context.group(1) if context else None, code
                i = end
            i += 1


def compile_flags():
    """Include paths, defines and the standard the build used for the gateway (the library
    whose headers reach furthest: core, Python, nlohmann), plus the database layer's."""
    commands = json.loads((BUILD / "compile_commands.json").read_text())
    flags = []
    compiler = None
    for wanted in ("/gateway/tronada/gateway/wsgi_container.cpp", "/src/tronada/db/pg_pool.cpp"):
        entry = next(c for c in commands if c["file"].endswith(wanted))
        argv = shlex.split(entry["command"])
        compiler = compiler or [a for a in argv[:2] if not a.endswith("ccache")][0]
        for j, arg in enumerate(argv):
            if arg in ("-isystem", "-I") and j + 1 < len(argv):
                flags += [arg, argv[j + 1]]
            elif arg.startswith(("-I", "-D", "-std=", "-fsanitize=")):
                flags.append(arg)
    return [compiler] + sorted(set(flags), key=flags.index)


BLOCKS = list(doc_blocks())


def test_the_docs_have_cpp_examples():
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("doc,line,context,code", BLOCKS,
                         ids=[f"{b[0].name}:{b[1]}" for b in BLOCKS])
def test_doc_example_compiles(doc, line, context, code, tmp_path):
    if context:
        template = (CONTEXTS / f"{context}.cpp").read_text()
        assert "@example@" in template, f"tests/docs/{context}.cpp has no @example@ line"
        code = template.replace("@example@", code)
    source = tmp_path / "example.cpp"
    source.write_text(code)
    argv = compile_flags() + ["-fsyntax-only", "-Wall", "-Wextra", "-Werror",
                              "-Wno-missing-field-initializers", "-Wno-unused-parameter",
                              "-Wno-unused-variable", str(source)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (
        f"{doc.relative_to(ROOT)}:{line}: the example does not compile"
        + (f" (in context tests/docs/{context}.cpp)" if context else "")
        + f":\n{result.stderr[-4000:]}")
