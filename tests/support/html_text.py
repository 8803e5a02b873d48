"""A small reader for the pages the dashboard renders: find elements by tag and attributes, read their text.

Tests check what a person reads (an element's text) and the stable attributes the templates promise
(`data-phase`, `data-status`, ...), not the markup around them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

# Elements a browser shows apart from their neighbours (cells, lines, blocks): their text is spaced.
_APART = {"br", "dd", "div", "dt", "h1", "h2", "h3", "li", "p", "section", "summary", "td", "th", "tr"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """All text inside, whitespace collapsed as a browser shows it."""
        return re.sub(r"\s+", " ", "".join(self._pieces())).strip()

    def _pieces(self) -> list[str]:
        out: list[str] = []
        for child in self.children:
            if isinstance(child, str):
                out.append(child)
            else:
                gap = " " if child.tag in _APART else ""
                out.extend([gap, *child._pieces(), gap])
        return out

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        """Descendants with `tag` (any if None) and these attribute values (`data_phase` means data-phase;
        `class` matches when the element has all the given classes, as a CSS selector would)."""
        wanted = {name.replace("_", "-"): value for name, value in attrs.items()}
        found = []
        for child in self.children:
            if isinstance(child, str):
                continue
            if (tag is None or child.tag == tag) and all(_matches(child, k, v) for k, v in wanted.items()):
                found.append(child)
            found.extend(child.find_all(tag, **attrs))
        return found

    def one(self, tag: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, **attrs)
        assert len(found) == 1, f"expected one <{tag or '*'} {attrs}>, found {len(found)}"
        return found[0]


def _matches(element: Element, name: str, value: str) -> bool:
    if name == "class":
        return set(value.split()) <= set(element.attrs.get("class", "").split())
    return element.attrs.get(name) == value


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.stack[-1].children.append(element)
        if tag not in _VOID:
            self.stack.append(element)

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Element:
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root
