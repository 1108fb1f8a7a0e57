"""Every fault at once, beside good feeds, through the real CLI in one run."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conftest import make_config, run_cli
from fault_server import HANG_SECONDS, FaultServer

FAULTS = {
    # path: (status the user sees, words in the error)
    "/500": ("500", "HTTP 500"),
    "/404": ("404", "HTTP 404"),
    "/429-date": ("429", "HTTP 429"),
    "/hang": ("timeout", "within"),
    "/trickle": ("timeout", "within"),
    "/reset": ("connection", ""),
    "/oversized": ("too-large", "limit"),
    "/gzip-bomb": ("too-large", "limit"),
    "/loop-a": ("redirect", "loop"),
    "/html": ("parse", "HTML"),
}
GOOD = ["/good/alpha", "/good/beta", "/good/gamma", "/429-seconds", "/moved", "/wrong-charset"]


def test_faults_beside_good_feeds(tmp_path: Path) -> None:
    with FaultServer() as server:
        feeds = [{"url": server.url(p), "source": p.strip("/"), "full_text": "never"}
                 for p in [*GOOD, *FAULTS]]
        config = make_config(tmp_path / "c.toml", feeds,
                             http={"timeout": 2, "retries": 1, "max_bytes": 1_000_000})
        db = tmp_path / "a.db"
        result = run_cli("fetch", "--json", "--config", str(config), "--db", str(db))
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        by_path = {f["url"].split(str(server.httpd.server_address[1]), 1)[1]: f
                   for f in result.json()["feeds"]}
        for path in GOOD:
            assert by_path[path]["error"] == "", (path, by_path[path])
            assert by_path[path]["new"] >= 1, path
        for path, (status, words) in FAULTS.items():
            assert by_path[path]["status"] == status, (path, by_path[path])
            assert words in by_path[path]["error"], (path, by_path[path])
        # retried exactly as configured (retries = 1): 5xx twice, 404 once
        assert server.hits["/500"] == 2 and server.hits["/404"] == 1
        assert server.hits["/429-seconds"] == 2 and server.hits["/429-date"] == 1
        # no fault holds the run: the client's 2 s deadline hung up on every slow
        # request (both attempts) long before the server would have let go
        assert server.endings("/hang", 2) == ([0, 0], 0)
        trickled, outlasted = server.endings("/trickle", 2)
        assert outlasted == 0 and len(trickled) == 2, (trickled, outlasted)
        assert max(trickled) < HANG_SECONDS // 2, trickled  # of the HANG_SECONDS it would send

        # the permanent redirect is remembered; the next poll goes straight there
        moved_before = server.hits["/moved"]
        again = run_cli("fetch", "--json", "--feed", "moved", "--config", str(config),
                        "--db", str(db))
        assert again.returncode == 0
        assert server.hits["/moved"] == moved_before
        assert server.hits["/good/moved-here"] == 2

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        titles = {r[0] for r in conn.execute("SELECT title FROM articles")}
        assert "央行宣布降准0.5个百分点" in titles  # wrong charset detected, no mojibake
        row = conn.execute("SELECT url, redirect_url FROM feeds WHERE url LIKE '%/moved'")
        url, redirect = row.fetchone()
        assert url.endswith("/moved") and redirect.endswith("/good/moved-here")
        failing = conn.execute("SELECT count(*) FROM feeds WHERE error_count > 0").fetchone()[0]
        assert failing == len(FAULTS)
    listing = run_cli("feeds", "--config", str(config), "--db", str(db))
    assert listing.stdout.count("FAILING x1") == len(FAULTS)
