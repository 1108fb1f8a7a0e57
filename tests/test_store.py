"""Storage: dedup rules, revisions, feed state, full-text search (Chinese too)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scraper.models import FeedOutcome
from scraper.record import Record
from scraper.store import Store, StoreError

WHEN = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def _rec(n: int = 1, **kw: object) -> Record:
    base = dict(url=f"https://news.example/a/{n}", guid=f"g{n}", feed_url="http://feed/1",
                title=f"Title {n}", author="src", categories=("c", "src", "ch"),
                headimg="", body=f"<p>body {n}</p>", published=WHEN)
    base.update(kw)
    return Record(**base)  # type: ignore[arg-type]


def _save(store: Store, *records: Record, feed: str = "http://feed/1") -> tuple[int, int, int]:
    s = store.save(FeedOutcome(feed_url=feed, status="200", records=records))
    return s.new, s.updated, s.unchanged


@pytest.fixture
def store(tmp_path: Path) -> Store:
    with Store(tmp_path / "a.db") as s:
        yield s


def test_schema_wal_and_tables(store: Store, tmp_path: Path) -> None:
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    names = set(store.db.table_names())
    assert {"articles", "feeds", "revisions", "articles_fts"} <= names
    columns = set(store.db["articles"].columns_dict)
    assert {"id", "url", "guid", "feed_url", "title", "author", "categories", "headimg",
            "thumbnail", "date", "published", "first_seen", "updated", "body",
            "content_hash"} <= columns
    assert {"url", "title", "etag", "last_modified", "last_polled", "last_status",
            "last_error", "error_count", "redirect_url"} <= set(store.db["feeds"].columns_dict)


def test_unchanged_entry_writes_nothing(store: Store) -> None:
    assert _save(store, _rec(1), _rec(2)) == (2, 0, 0)
    before = store.db.execute("SELECT group_concat(updated) FROM articles").fetchone()
    assert _save(store, _rec(1), _rec(2)) == (0, 0, 2)
    assert store.db.execute("SELECT group_concat(updated) FROM articles").fetchone() == before
    assert store.count("revisions") == 0


def test_canonical_url_dedups_across_feeds(store: Store) -> None:
    _save(store, _rec(1))
    other = _rec(1, url="HTTPS://News.Example/a/1?utm_source=x&utm_medium=y#top",
                 guid="other", feed_url="http://feed/2")
    assert _save(store, other, feed="http://feed/2") == (0, 0, 1)
    assert store.count() == 1


def test_tracking_parameters_dropped_but_others_kept_in_order(store: Store) -> None:
    _save(store, _rec(1, url="https://n.example/a?id=7&spm=1&page=2&from=rss"))
    hit = store.article("https://n.example/a?id=7&page=2")
    assert hit is not None
    assert store.article("https://n.example/a?page=2&id=7") is None


def test_guid_then_title_and_date_rules(store: Store) -> None:
    _save(store, _rec(1, url=""), _rec(2, url="", guid=""))
    # same guid, same feed, no link: same article (changed body -> update)
    assert _save(store, _rec(1, url="", body="<p>new</p>")) == (0, 1, 0)
    # no link, no guid: feed + title + date
    assert _save(store, _rec(2, url="", guid="")) == (0, 0, 1)
    # same guid in another feed is another article
    assert _save(store, _rec(1, url="", feed_url="http://feed/9"), feed="http://feed/9") == (1, 0, 0)


def test_changed_article_keeps_previous_version(store: Store) -> None:
    _save(store, _rec(1))
    assert _save(store, _rec(1, title="Title 1 (corrected)", body="<p>v2</p>")) == (0, 1, 0)
    assert _save(store, _rec(1, title="Title 1 (final)", body="<p>v3</p>")) == (0, 1, 0)
    article = store.article("https://news.example/a/1")
    assert article is not None and article.revision == 3
    assert article.record.title == "Title 1 (final)"
    old = store.revisions(article.id)
    assert [r["body"] for r in old] == ["<p>body 1</p>", "<p>v2</p>"]
    assert [r["title"] for r in old] == ["Title 1", "Title 1 (corrected)"]
    assert store.search("corrected") == []  # the index follows the current version
    assert [h.id for h in store.search("final")] == [article.id]


def test_one_article_listed_twice_in_a_feed_is_stored_once(store: Store) -> None:
    assert _save(store, _rec(1), _rec(1, body="<p>dup</p>")) == (1, 0, 1)
    assert store.article("https://news.example/a/1").record.body == "<p>body 1</p>"


def test_feed_state_failures_and_recovery(store: Store) -> None:
    url = "http://feed/1"
    store.save(FeedOutcome(feed_url=url, status="200", etag='"v1"', last_modified="Mon"))
    store.save(FeedOutcome(feed_url=url, status="timeout", error="no answer"))
    store.save(FeedOutcome(feed_url=url, status="503", error="HTTP 503"))
    row = store.db["feeds"].get(url)
    assert (row["last_status"], row["error_count"], row["last_error"]) == ("503", 2, "HTTP 503")
    assert row["etag"] == '"v1"'  # kept for the next conditional GET
    store.save(FeedOutcome(feed_url=url, status="304"))
    row = store.db["feeds"].get(url)
    assert (row["error_count"], row["last_error"], row["etag"]) == (0, "", '"v1"')
    store.save(FeedOutcome(feed_url=url, status="200", redirect_url="http://new/feed"))
    assert store.feed_state(url).redirect_url == "http://new/feed"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("降准", {1}),  # a two-character word inside a sentence
        ("降", {1, 2}),  # one character
        ("存款准备金率", {1}),
        ("准降", set()),  # characters present but not side by side
        ("央行 降息", {2}),  # every word must occur
        ("rates", {3}),
        ("RATE", set()),  # whole words for English
        ("Powell", {3}),
        ("A股", {2}),
        ('"quoted', set()),  # FTS syntax characters are harmless
        ("AND OR NOT", set()),
    ],
)
def test_full_text_search_finds_chinese_and_english_words(
    store: Store, query: str, expected: set[int]
) -> None:
    _save(
        store,
        _rec(1, title="央行宣布降准", body="<p>中国人民银行决定下调金融机构存款准备金率0.5个百分点。</p>"),
        _rec(2, title="A股收评", body="<p>市场预期央行可能降息，沪指下跌。</p>"),
        _rec(3, title="Fed holds rates", body="<p>Chair Powell said rates stay.</p>"),
    )
    assert {h.id for h in store.search(query)} == expected


def test_search_snippet_shows_the_match(store: Store) -> None:
    _save(store, _rec(1, body="<p>" + "前文" * 80 + "央行宣布降准" + "后文" * 80 + "</p>"))
    (hit,) = store.search("降准")
    assert "降准" in hit.snippet and hit.snippet.startswith("…") and len(hit.snippet) < 130


def test_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "not.db"
    bad.write_text("this is not sqlite " * 100)
    with pytest.raises(StoreError, match=r"not\.db"):
        Store(bad)
    assert bad.read_text().startswith("this is not sqlite")  # left as it was


def test_writes_are_one_transaction_per_feed(store: Store) -> None:
    class Boom(Record):
        @property
        def content_hash(self) -> str:
            raise RuntimeError("boom")

    good = _rec(1)
    bad = Boom(**{f: getattr(_rec(2), f) for f in good.__dataclass_fields__})
    with pytest.raises(RuntimeError):
        _save(store, good, bad)
    assert store.count() == 0  # the good one was rolled back with the rest
    assert store.integrity() == "ok"
    _save(store, replace(good))
    assert store.count() == 1
    with sqlite3.connect(store.path) as other:  # another reader sees committed data
        assert other.execute("SELECT count(*) FROM articles").fetchone()[0] == 1


def test_an_archive_with_the_old_search_index_is_reindexed(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with Store(db) as store:
        _save(store, _rec(1, title="央行宣布降准", body="<p>下调存款准备金率</p>"),
              _rec(2, title="Fed holds rates", body="<p>no change</p>"))
    with sqlite3.connect(db) as conn:  # the layout of earlier versions: text kept twice
        conn.execute("DROP TABLE articles_fts")
        conn.execute("CREATE VIRTUAL TABLE articles_fts USING fts5(title, body, "
                     "tokenize = 'unicode61 remove_diacritics 2')")
        conn.execute("PRAGMA user_version = 0")
    with Store(db) as store:
        assert [h.title for h in store.search("降准")] == ["央行宣布降准"]
        assert [h.title for h in store.search("rates")] == ["Fed holds rates"]
        sql = store.db.execute("SELECT sql FROM sqlite_master WHERE name = 'articles_fts'")
        assert "content=''" in sql.fetchone()[0]
        # an update after the rebuild removes exactly the old tokens
        _save(store, _rec(2, title="Fed cuts rates", body="<p>a quarter point</p>"))
        assert [h.title for h in store.search("holds")] == []
        assert [h.title for h in store.search("quarter")] == ["Fed cuts rates"]
        assert store.db.execute(
            "INSERT INTO articles_fts(articles_fts, rank) VALUES ('integrity-check', 0)"
        ).fetchall() == []


@pytest.mark.parametrize("text", ["", "plain ascii words", "央行宣布降准", "a央行b c", "𠀀𠀁 x 降准。",
                                  "café 株式会社 déjà", "全角　空格"])
def test_segmentation_sets_every_cjk_character_apart(text: str) -> None:
    from scraper.fts import _CJK_RUN, segment

    expected = _CJK_RUN.sub(lambda m: " " + " ".join(m.group()) + " ", text)
    assert segment(text) == expected
    assert all(len(tok) == 1 or not _CJK_RUN.search(tok) for tok in segment(text).split())


def test_an_archive_from_an_earlier_version_gains_the_new_columns_and_keeps_its_data(
    tmp_path: Path,
) -> None:
    db = tmp_path / "old.db"
    with Store(db) as store:
        _save(store, _rec(1, title="Fed holds rates"))
    with sqlite3.connect(db) as conn:  # as versions before page retries and body hashes
        conn.execute("ALTER TABLE articles DROP COLUMN page_failures")
        conn.execute("ALTER TABLE feeds DROP COLUMN body_hash")
        conn.execute("DROP INDEX idx_articles_published")
    with Store(db) as store:
        assert {"page_failures"} <= set(store.db["articles"].columns_dict)
        assert {"body_hash"} <= set(store.db["feeds"].columns_dict)
        assert "idx_articles_published" in {i.name for i in store.db["articles"].indexes}
        assert [h.title for h in store.search("rates")] == ["Fed holds rates"]
        assert _save(store, _rec(1, title="Fed holds rates")) == (0, 0, 1)


def test_the_archiver_process_never_loads_sqlite_utils(tmp_path: Path) -> None:
    """sqlite-utils (with click, dateutil, pluggy) creates and migrates the
    schema in a helper process: the process that polls creates an archive,
    reads it and writes it without loading it."""
    db = tmp_path / "a.db"
    code = (
        "import sys\nfrom scraper.store import Store\nfrom scraper.models import FeedOutcome\n"
        f"from test_store import _rec, _save\ns = Store({str(db)!r})\n"
        "_save(s, _rec(1))\n"
        "s.save(FeedOutcome(feed_url='http://feed/1', status='304'))\n"
        "print(s.count(), s.search('body')[0].title, 'sqlite_utils' in sys.modules)\n"
    )
    for _ in ("a new archive", "the same archive again"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).parent).stdout.split()
        assert out == ["1", "Title", "1", "False"]


def test_a_schema_that_cannot_be_made_is_a_clear_error_and_keeps_the_rows(
    tmp_path: Path,
) -> None:
    """The helper process's error reaches the caller as a StoreError naming
    the file and the cause; nothing already in the file is lost."""
    db = tmp_path / "odd.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.execute("INSERT INTO notes VALUES ('keep me')")
    conn.execute("CREATE VIEW feeds AS SELECT 'x' AS url")  # a view where a table belongs
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"odd\.db: cannot use as an archive database: .*feeds"):
        Store(db)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT text FROM notes").fetchall() == [("keep me",)]
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_an_in_memory_archive_is_made_in_this_process() -> None:
    """No helper process can reach a database in memory: its schema is made
    here, and it works like a file."""
    with Store(":memory:") as store:
        assert _save(store, _rec(1), _rec(2)) == (2, 0, 0)
        assert store.count() == 2
        assert sorted(h.title for h in store.search("body")) == ["Title 1", "Title 2"]
