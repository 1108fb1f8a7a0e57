"""URL helpers: the canonical form that dedups articles across feeds."""

from __future__ import annotations

from urllib.parse import urljoin

from hypothesis import given, settings
from hypothesis import strategies as st

from scraper.urls import _split_canonical, canonical_url, join

_LABEL = st.text(alphabet="aBz09-", min_size=1, max_size=4)
_HOSTS = st.one_of(
    st.sampled_from(["news.example.com", "127.0.0.1", "xn--fiqs8s.cn", "user@h.com", "[::1]"]),
    st.builds(lambda labels, dot: ".".join(labels) + dot,
              st.lists(_LABEL, min_size=1, max_size=3), st.sampled_from(["", "."])),
)
_PORTS = st.sampled_from(["", ":80", ":443", ":8080", ":080", ":0", ":65535", ":65536", ":99999"])
_PATH = st.text(alphabet="abcXYZ019/._-~;:=,%\\ \t\u4e2d\x01", max_size=20)
_TAIL = st.sampled_from(["", "?", "#", "?#", "?a=1", "?utm_source=x&id=2", "#top", "?a=1#b"])


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(["http", "https", "HTTP", "ftp"]), _HOSTS, _PORTS,
       st.sampled_from(["", "/"]), _PATH, _TAIL)
def test_the_quick_path_agrees_with_urlsplit(scheme: str, host: str, port: str, slash: str,
                                             path: str, tail: str) -> None:
    """URLs already in canonical form skip urlsplit; for every URL the answer
    must be the one urlsplit gives."""
    url = f"{scheme}://{host}{port}{slash}{path}{tail}"
    assert canonical_url(url) == _split_canonical(url.strip()), url


def test_canonical_forms() -> None:
    assert canonical_url("HTTPS://News.Example.com:443/a?utm_source=x&id=7#top") == \
        "https://news.example.com/a?id=7"
    assert canonical_url("http://127.0.0.1:8080/a/1.html") == "http://127.0.0.1:8080/a/1.html"
    assert canonical_url("http://example.com") == "http://example.com/"
    assert canonical_url("http://example.com:80/x") == "http://example.com/x"


_BASES = st.sampled_from(["", "http://example.com/feed/", "https://a.example/x/y.xml?q=1",
                          "ftp://files.example/", "example.com/feed", "http://[::1]:8/"])
_AFTER = st.text(alphabet="abZ09/._-~;:=,%@?#&[]\\ \t\n\x01\u3000\u4e2d", max_size=24)


@settings(max_examples=1500, deadline=None)
@given(_BASES, st.sampled_from(["http://", "https://", "HTTP://", "http:/", "http:///", "//", ""]),
       st.text(alphabet="aZ09.-:@[]%", max_size=12), _AFTER)
def test_join_agrees_with_urljoin(base: str, scheme: str, host: str, rest: str) -> None:
    """Links urljoin would give back unchanged skip it; every answer, and
    every ValueError, must be urljoin's."""
    url = f"{scheme}{host}{rest}"
    try:
        expected: str | type[ValueError] = urljoin(base, url)
    except ValueError:
        expected = ValueError
    try:
        got: str | type[ValueError] = join(base, url)
    except ValueError:
        got = ValueError
    assert got == expected, (base, url)


def test_join_resolves_relative_links() -> None:
    assert join("http://example.com/a/b.html", "../c?x=1#y") == "http://example.com/c?x=1#y"
    assert join("https://example.com/a/", "//cdn.example.com/i.png") == "https://cdn.example.com/i.png"
    assert join("http://example.com/a/", "http://other.example/p;v=1") == "http://other.example/p;v=1"
    assert join("http://example.com/", "http://other.example/p?") == "http://other.example/p"
