#!/usr/bin/python3
"""Tornado 6 with asyncpg (Debian's python3-asyncpg): the peer of build/bin/08_async_db's
`GET /` (every row of `entries` as JSON, one query per request through a pool of the
same size).

    /usr/bin/python3 bench/peers/tornado_pg.py --dsn postgresql://postgres@127.0.0.1:PORT/postgres \
        [--pool 10] [--port N] [--address 127.0.0.1]
"""
import argparse
import asyncio

import asyncpg
import tornado.web


class EntriesHandler(tornado.web.RequestHandler):
    def initialize(self, pool):
        self.pool = pool

    async def get(self):
        rows = await self.pool.fetch("SELECT id, title, body FROM entries ORDER BY id")
        self.write({"entries": [dict(r) for r in rows]})


async def main(args):
    pool = await asyncpg.create_pool(args.dsn, min_size=args.pool, max_size=args.pool)
    await pool.execute("CREATE TABLE IF NOT EXISTS entries "
                       "(id bigserial PRIMARY KEY, title text NOT NULL, body text NOT NULL)")
    if await pool.fetchval("SELECT count(*) FROM entries") == 0:
        await pool.execute("INSERT INTO entries (title, body) VALUES ($1, $2)", "Hello", "The first entry.")
    app = tornado.web.Application([(r"/", EntriesHandler, {"pool": pool})])
    app.listen(args.port, args.address, backlog=1024)
    print(f"tornado asyncpg on http://{args.address}:{args.port}/", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--pool", type=int, default=10)
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--address", default="127.0.0.1")
    asyncio.run(main(parser.parse_args()))
