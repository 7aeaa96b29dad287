"""Builds a skills folder that looks like what people bring from public skill collections.

`write_corpus(folder)` writes 120 skill folders from five made-up collections: Claude Code's
extra front-matter keys, Claude Code tool names in `allowed-tools` (with patterns such as
`Bash(git status:*)`), bodies up to 40 KB, files outside scripts/references/assets (forms.md,
workflows/, templates/), folders whose `name` differs from the folder, the same skill in two
collections, and a few skills the spec truly forbids. Deterministic: the same folder every run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["TOPICS", "CorpusStats", "write_corpus"]

# (name, description): skills of the kinds public collections hold.
TOPICS: tuple[tuple[str, str], ...] = (
    ("pdf", "Extract text and tables from PDF files, fill PDF forms, merge and split PDF documents."),
    ("docx", "Create and edit Word documents (.docx): tracked changes, comments, headings and styles."),
    ("xlsx", "Read and write Excel spreadsheets: formulas, pivot tables, charts and cell formatting."),
    ("pptx", "Build PowerPoint slide decks with layouts, speaker notes and images."),
    ("git-commit", "Write a conventional commit message from the staged git diff."),
    ("code-review", "Review a pull request diff for bugs, security issues and style problems."),
    ("unit-tests", "Write unit tests with pytest for a Python module, covering edge cases."),
    ("frontend-design", "Design web pages and React components with a distinctive visual style."),
    ("api-docs", "Write reference documentation for a REST API from its OpenAPI specification."),
    ("sql-queries", "Write and optimise SQL queries for PostgreSQL and SQLite databases."),
    ("dockerfile", "Write a Dockerfile and docker compose file for an application."),
    ("kubernetes", "Write Kubernetes manifests: deployments, services, ingress and config maps."),
    ("security-audit", "Audit source code for vulnerabilities such as injection and leaked secrets."),
    ("changelog", "Generate a changelog from git history grouped by feature, fix and breaking change."),
    ("release-notes", "Write user-facing release notes for a new software version."),
    ("translate", "Translate documents between languages while keeping Markdown formatting."),
    ("meeting-notes", "Turn a meeting transcript into notes with decisions and action items."),
    ("brand-guidelines", "Apply a company's brand colours, fonts and tone of voice to documents."),
    ("slack-gif", "Create animated GIFs sized for Slack emoji and messages."),
    ("mcp-builder", "Build a Model Context Protocol server that exposes tools to an agent."),
    ("webapp-testing", "Test a local web application in a browser with Playwright and screenshots."),
    ("algorithmic-art", "Create generative art with p5.js using seeded randomness and flow fields."),
    ("csv-analysis", "Analyse CSV data: summary statistics, grouping, outliers and charts."),
    ("regex-helper", "Write and explain regular expressions for matching and extracting text."),
    ("shell-scripts", "Write portable bash shell scripts with error handling and argument parsing."),
    ("email-drafts", "Draft professional emails: replies, follow-ups and announcements."),
    ("resume-writer", "Write and improve a resume or CV for a job application."),
    ("recipe-planner", "Plan weekly meals and shopping lists from recipes and dietary needs."),
    ("travel-itinerary", "Plan a travel itinerary with flights, hotels and daily activities."),
    ("math-tutor", "Explain maths problems step by step: algebra, calculus and probability."),
)
SOURCES = ("anthropic", "community", "obra", "awesome", "team")
CLAUDE_TOOLS = ("Read", "Write", "Edit", "Bash", "Grep", "Glob", "LS", "Bash(git status:*)", "WebFetch")
EXTRA_KEYS = (
    ("argument-hint", "[file]"),
    ("disable-model-invocation", False),
    ("type", "reference"),
    ("effort", "high"),
    ("model", "sonnet"),
    ("user-invocable", True),
)
LONG_BODY_BYTES = 40_000


@dataclass(frozen=True)
class CorpusStats:
    folders: int
    valid: int
    invalid: int
    long_bodies: tuple[str, ...]
    mismatched: tuple[str, ...]
    with_claude_tools: tuple[str, ...]
    with_extra_keys: tuple[str, ...]


def write_corpus(root: Path) -> CorpusStats:
    """Writes the corpus under `root` (one folder per skill) and says what it holds."""
    root.mkdir(parents=True, exist_ok=True)
    long_bodies: list[str] = []
    mismatched: list[str] = []
    claude: list[str] = []
    extra: list[str] = []
    folders = 0
    index = 0
    for source in SOURCES[:4]:
        for name, description in TOPICS:
            index += 1
            # A quarter of the second collection repeats the first's names in folders of its own.
            folder_name = name if source == "anthropic" else f"{source}-{name}"
            declared = name if (source == "community" and index % 4 == 0) else folder_name
            front: dict[str, object] = {"name": declared, "description": f"{description} ({source} collection)"}
            if index % 3 == 0:
                front["allowed-tools"] = ", ".join(CLAUDE_TOOLS[index % 5 : index % 5 + 4])
                claude.append(folder_name)
            elif index % 3 == 1:
                front["allowed-tools"] = "read_file list_dir find_files"
            if index % 2 == 0:
                key, value = EXTRA_KEYS[index % len(EXTRA_KEYS)]
                front[key] = value
                extra.append(folder_name)
            if index % 5 == 0:
                front["metadata"] = {"author": source, "version": "1.0"}
            long = index % 6 == 0
            body = _body(name, description, long)
            if long:
                long_bodies.append(folder_name)
            if declared != folder_name:
                mismatched.append(folder_name)
            folder = root / folder_name
            _write_skill(folder, front, body)
            _write_files(folder, index)
            folders += 1
    invalid = _write_forbidden(root)
    folders += invalid
    return CorpusStats(
        folders=folders,
        valid=folders - invalid,
        invalid=invalid,
        long_bodies=tuple(long_bodies),
        mismatched=tuple(mismatched),
        with_claude_tools=tuple(claude),
        with_extra_keys=tuple(extra),
    )


def _front_matter(front: dict[str, object]) -> str:
    # JSON scalars are valid YAML, whatever the text holds.
    lines = []
    for key, value in front.items():
        if isinstance(value, dict):
            lines.append(f"{key}:")
            lines += [f"  {k}: {json.dumps(v)}" for k, v in value.items()]
        else:
            lines.append(f"{key}: {json.dumps(value)}")
    return "---\n" + "\n".join(lines) + "\n---\n"


def _body(name: str, description: str, long: bool) -> str:
    head = f"# {name}\n\n{description}\n\n## Steps\n1. Read `forms.md` first.\n2. Follow `workflows/main.md`.\n"
    if not long:
        return head + "3. Answer briefly.\n"
    section = (
        "\n## Details {n}\n"
        "When the input is large, work through it in sections and keep notes of what each holds. "
        "Check every value against the reference tables before writing the result, and say which "
        "values could not be checked. Prefer the simplest method that gives a correct answer.\n"
    )
    parts = [head]
    n = 1
    while sum(len(part) for part in parts) < LONG_BODY_BYTES:
        parts.append(section.format(n=n))
        n += 1
    parts.append("\n## Last step\nEND-OF-LONG-BODY: give the answer.\n")
    return "".join(parts)


def _write_skill(folder: Path, front: dict[str, object], body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "SKILL.md").write_text(_front_matter(front) + "\n" + body, encoding="utf-8")


def _write_files(folder: Path, index: int) -> None:
    (folder / "forms.md").write_text(f"# Forms\nField list for skill {folder.name}.\n", encoding="utf-8")
    (folder / "workflows").mkdir(exist_ok=True)
    (folder / "workflows" / "main.md").write_text("# Main workflow\n1. Gather.\n2. Check.\n3. Write.\n")
    if index % 2:
        (folder / "templates").mkdir(exist_ok=True)
        (folder / "templates" / "report.txt").write_text("Report for {{name}}\n")
    if index % 3 == 0:
        (folder / "scripts").mkdir(exist_ok=True)
        (folder / "scripts" / "run.sh").write_text("#!/bin/sh\necho run\n")


def _write_forbidden(root: Path) -> int:
    """Skills the spec forbids in any mode: each must be reported, none loaded."""
    cases: dict[str, dict[str, object]] = {
        "Bad_Name": {"name": "Bad_Name", "description": "Upper case and underscore."},
        "no-description": {"name": "no-description"},
        "long-description": {"name": "long-description", "description": "x" * 1100},
        "double--hyphen": {"name": "double--hyphen", "description": "Two hyphens in a row."},
    }
    for folder_name, front in cases.items():
        _write_skill(root / folder_name, front, "Body.\n")
    return len(cases)
