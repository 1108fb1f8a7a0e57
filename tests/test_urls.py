"""URL helpers: the canonical form that dedups articles across feeds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scraper.urls import _split_canonical, canonical_url

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
