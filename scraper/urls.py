"""URL helpers shared by the parser, the sanitizer and the store's dedup keys."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

__all__ = ["absolute", "canonical_url", "host_of"]

_TRACKING = {"spm", "fbclid", "gclid", "mc_cid", "mc_eid", "from", "ref", "cmpid"}


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered.startswith("utm_") or lowered in _TRACKING


def canonical_url(url: str) -> str:
    """The form two links to one article share: scheme and host lower-cased,
    default port, fragment and tracking parameters (`utm_*`, `spm`, ...) dropped;
    the other parameters keep their order. Unparseable input comes back stripped."""
    url = url.strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    if parts.username or parts.password:
        host = f"{parts.netloc.rsplit('@', 1)[0]}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        kept = [(k, v) for k, v in pairs if not _is_tracking(k)]
        if len(kept) != len(pairs):
            query = urlencode(kept)
    return urlunsplit((scheme, host, parts.path or ("/" if host else ""), query, ""))


def absolute(url: str, base: str) -> str:
    """`url` resolved against `base`; unchanged when it cannot be resolved."""
    url = url.strip()
    if not base:
        return url
    try:
        return urljoin(base, url)
    except ValueError:
        return url


def host_of(url: str) -> str:
    """Lower-cased host name of `url` without port ('' if none)."""
    try:
        return (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return ""
