"""The parts of the project's Markdown that its docs test reads: fenced blocks with their ``docs-test`` directives,
links, headings and inline code (pure text work, no package imports).

A directive is an HTML comment on the line directly above a fence (several may stack):

    <!-- docs-test: shorten --epochs 1 --steps 2 -->   run the block's commands with these run-length options
    <!-- docs-test: needs-internet -->                 the block downloads (a URL or a published model): not run
    <!-- docs-test: needs-gpus -->                     the block trains on several GPUs (--strategy mirrored): not run
    <!-- docs-test: needs-cluster -->                  the block needs machines named in TF_CONFIG: not run
"""

import dataclasses
import os
import re
from typing import Dict, List, Tuple

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir))

# What a fence's language may be: code that runs, and the kinds of text that only show something.
RUN_LANGUAGES = ("bash", "python")
SHOW_LANGUAGES = ("text", "csv", "ini", "json")
DIRECTIVE = re.compile(r"^\s*<!--\s*docs-test:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)\s*$")
# Options a `shorten` directive may give: each only makes a run shorter (fewer epochs, steps, frames, samples).
SHORTENING_OPTIONS = ("--epochs", "--steps", "--max-frames", "--representative-samples")
FLAG_DIRECTIVES = ("needs-internet", "needs-gpus", "needs-cluster")


class DocsError(AssertionError):
    """A doc that breaks the docs test's rules; the message names the file and line."""


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced block: where it is, its language, its text (indentation removed) and its directives."""

    path: str  # relative to the repository
    line: int  # the line of its opening fence, from 1
    language: str
    text: str
    directives: Tuple[str, ...]

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def has(self, flag: str) -> bool:
        return flag in self.directives

    @property
    def shortening(self) -> List[str]:
        """The options of its `shorten` directive, as tokens (empty without one)."""
        for directive in self.directives:
            if directive.split()[0] == "shorten":
                return directive.split()[1:]
        return []


def doc_paths() -> List[str]:
    """README.md and every docs/*.md, relative to the repository."""
    docs = sorted(name for name in os.listdir(os.path.join(ROOT, "docs")) if name.endswith(".md"))
    return ["README.md"] + [f"docs/{name}" for name in docs]


def read_doc(path: str) -> str:
    with open(os.path.join(ROOT, path), encoding="utf8") as file:
        return file.read()


def check_directive(path: str, line: int, text: str) -> str:
    """The directive, if it is one the runner knows and well formed; else DocsError."""
    words = text.split()
    if not words:
        raise DocsError(f"{path}:{line}: empty docs-test directive")
    if words[0] in FLAG_DIRECTIVES and len(words) == 1:
        return text
    if words[0] == "shorten":
        pairs = words[1:]
        if not pairs or len(pairs) % 2:
            raise DocsError(f"{path}:{line}: 'shorten' takes option-value pairs, got {' '.join(pairs)!r}")
        for option, value in zip(pairs[::2], pairs[1::2]):
            if option not in SHORTENING_OPTIONS:
                raise DocsError(f"{path}:{line}: 'shorten' may only give {', '.join(SHORTENING_OPTIONS)}, "
                                f"not {option}")  # fmt: skip
            if not value.isdigit() or int(value) < 1:
                raise DocsError(f"{path}:{line}: {option} needs a positive whole number, got {value!r}")
        return text
    raise DocsError(f"{path}:{line}: unknown docs-test directive {text!r} "
                    f"(known: shorten OPTION N ..., {', '.join(FLAG_DIRECTIVES)})")  # fmt: skip


def blocks_of(path: str, text: str = None) -> List[Block]:
    """Every fenced block of a doc, in order. Raises DocsError for an unclosed fence, a fence without a known
    language, a directive that is not directly above a fence, or an unknown directive."""
    lines = (read_doc(path) if text is None else text).splitlines()
    blocks: List[Block] = []
    pending: List[Tuple[int, str]] = []  # directives seen directly above the current line
    index = 0
    while index < len(lines):
        line = lines[index]
        directive = DIRECTIVE.match(line)
        fence = FENCE.match(line)
        if directive:
            pending.append((index + 1, check_directive(path, index + 1, directive.group(1))))
            index += 1
            continue
        if "<!--" in line and "docs-test" in line:
            raise DocsError(f"{path}:{index + 1}: a docs-test directive must be a whole line: <!-- docs-test: ... -->")
        if fence is None:
            if pending:
                raise DocsError(f"{path}:{pending[0][0]}: a docs-test directive must be directly above a fence")
            index += 1
            continue
        indent, marker, language = fence.groups()
        if language not in RUN_LANGUAGES + SHOW_LANGUAGES:
            raise DocsError(f"{path}:{index + 1}: a fence needs one of the languages "
                            f"{', '.join(RUN_LANGUAGES + SHOW_LANGUAGES)}, got {language or 'none'!r}")  # fmt: skip
        body: List[str] = []
        end = index + 1
        while end < len(lines) and lines[end].strip() != marker:
            body.append(lines[end][len(indent):] if lines[end].startswith(indent) else lines[end].lstrip())
            end += 1
        if end == len(lines):
            raise DocsError(f"{path}:{index + 1}: the fence is never closed")
        directives = tuple(text for _, text in pending)
        if directives and language not in RUN_LANGUAGES:
            raise DocsError(f"{path}:{pending[0][0]}: docs-test directives apply to bash and python blocks only")
        if language != "bash" and any(text.split()[0] == "shorten" for text in directives):
            raise DocsError(f"{path}:{pending[0][0]}: 'shorten' applies to the commands of a bash block")
        blocks.append(Block(path, index + 1, language, "\n".join(body) + "\n", directives))
        pending = []
        index = end + 1
    if pending:
        raise DocsError(f"{path}:{pending[0][0]}: a docs-test directive must be directly above a fence")
    return blocks


def prose_of(text: str) -> str:
    """The doc without its fenced blocks (their lines blanked, so that line numbers stay)."""
    lines = text.splitlines()
    out, inside, marker = [], False, None
    for line in lines:
        fence = FENCE.match(line)
        if not inside and fence:
            inside, marker = True, fence.group(2)
            out.append("")
        elif inside and line.strip() == marker:
            inside = False
            out.append("")
        else:
            out.append("" if inside else line)
    return "\n".join(out)


def inline_code(text: str) -> List[Tuple[int, str]]:
    """(line, content) of every `inline code` span in the prose (a span may run over a line break), with the
    line its paragraph starts on."""
    spans = []
    paragraph: List[str] = []
    start = 0
    for number, line in enumerate(prose_of(text).splitlines() + [""], start=1):
        if line.strip():
            start = start or number
            paragraph.append(line.strip())
            continue
        joined = " ".join(paragraph)
        for match in re.finditer(r"(`+)(.+?)\1", joined):
            spans.append((start, match.group(2).strip()))
        paragraph, start = [], 0
    return spans


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors_of(text: str) -> Dict[str, int]:
    """{anchor: line} of every heading of a doc (a repeated heading gets -1, -2, ... as on GitHub)."""
    anchors: Dict[str, int] = {}
    for number, line in enumerate(prose_of(text).splitlines(), start=1):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            name, count = base, 1
            while name in anchors:
                name, count = f"{base}-{count}", count + 1
            anchors[name] = number
    return anchors


def links_of(text: str) -> List[Tuple[int, str]]:
    """(line, target) of every Markdown link and image in the prose."""
    found = []
    for number, line in enumerate(prose_of(text).splitlines(), start=1):
        for match in re.finditer(r"!?\[[^\]]*\]\(([^)\s]+)\)", line):
            found.append((number, match.group(1)))
    return found
