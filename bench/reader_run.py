"""lemon24/reader's side of bench/speed.py; runs in the benchmark's own venv.

    python reader_run.py update DB URLS_FILE [WORKERS]   # add feeds, update_feeds()
    python reader_run.py titles DB                       # JSON {link: title}
"""

from __future__ import annotations

import json
import sys

from reader import make_reader


def main() -> None:
    command, db = sys.argv[1], sys.argv[2]
    reader = make_reader(db)
    if command == "update":
        with open(sys.argv[3], encoding="utf-8") as f:
            urls = f.read().split()
        workers = int(sys.argv[4]) if len(sys.argv) > 4 else 1
        for url in urls:
            reader.add_feed(url, exist_ok=True)
        # scheduled=False: poll every feed now (3.26's default skips feeds not yet
        # due, so a second pass would send no request at all)
        reader.update_feeds(workers=workers, scheduled=False)
    elif command == "titles":
        print(json.dumps({e.link: e.title for e in reader.get_entries()}, ensure_ascii=False))
    reader.close()


if __name__ == "__main__":
    main()
