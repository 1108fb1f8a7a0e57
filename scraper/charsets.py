"""Charset labels that are read as GB18030, as browsers read them.

Chinese feeds and pages often say `gb2312` or `gbk` yet hold characters only a
larger set has: 镕 and 堃 are GBK, not GB2312; 䶮 is GB18030 only. Decoded by
the label, such text fails or turns into replacement characters. The WHATWG
Encoding Standard, which browsers follow, decodes every GB2312 and GBK label
with the GB18030 decoder: GB18030 is a superset of both, byte for byte, so
text that really is GB2312 or GBK comes out the same.

The feed parser relabels the HTTP header and the XML declaration before
parsing (`relabel_content_type`, `relabel_xml_declaration`); the article
extractor relabels every charset it is told or detects (`relabel`).
"""

from __future__ import annotations

import codecs
import re

__all__ = ["GB18030", "header_charset", "relabel", "relabel_content_type",
           "relabel_xml_declaration", "xml_encoding"]

GB18030 = "gb18030"

# WHATWG's labels of the GBK encoding; Python's own aliases of gb2312 and gbk
# (cp936, euc-cn, ...) are recognised by codec lookup
_WHATWG_GBK = frozenset({
    "chinese", "csgb2312", "csiso58gb231280", "gb2312", "gb_2312", "gb_2312-80", "gbk",
    "iso-ir-58", "x-gbk",
})
_CHARSET_PARAM = re.compile(r"(charset\s*=\s*[\"']?)([\w.:-]+)", re.I)
_XML_ENCODING = re.compile(rb"(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?encoding\s*=\s*[\"']([\w.:-]+)",
                           re.I)


def _is_gb(label: str) -> bool:
    label = label.strip().lower()
    if label in _WHATWG_GBK:
        return True
    try:
        return codecs.lookup(label).name in ("gb2312", "gbk")
    except LookupError:
        return False


def header_charset(content_type: str) -> str | None:
    """The charset parameter of a Content-Type header, as written."""
    match = _CHARSET_PARAM.search(content_type)
    return match.group(2) if match else None


def xml_encoding(content: bytes) -> str | None:
    """The encoding named by a document's XML declaration, as written."""
    match = _XML_ENCODING.match(content)
    return match.group(1).decode("ascii") if match else None


def relabel(label: str) -> str:
    """`gb18030` when `label` names GB2312 or GBK, else `label` unchanged."""
    return GB18030 if _is_gb(label) else label


def relabel_content_type(value: str) -> str:
    """A Content-Type header with a GB2312/GBK charset parameter made gb18030."""
    return _CHARSET_PARAM.sub(lambda m: m.group(1) + relabel(m.group(2)), value)


def relabel_xml_declaration(content: bytes) -> bytes:
    """`content` with a GB2312/GBK encoding in its XML declaration made gb18030."""
    match = _XML_ENCODING.match(content)
    if not match or not _is_gb(match.group(1).decode("ascii")):
        return content
    return content[:match.start(1)] + GB18030.encode("ascii") + content[match.end(1):]
