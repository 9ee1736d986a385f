#!/usr/bin/python3
"""Tornado 6 twin of build/bin/framework_bench (bench/run.py `json` and `routes`):

    /                "Hello, world" (what the harness probes before measuring)
    /json            {"message": "Hello, World!"} serialised per request
    /item/([0-9]+)   "item N", the last of --routes N rules (N-3 fillers before it)

    /usr/bin/python3 bench/peers/tornado_framework.py --port N [--address A] [--routes N]
"""
import argparse
import asyncio

import tornado.web


class HelloHandler(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world")


class JSONHandler(tornado.web.RequestHandler):
    def get(self):
        self.write({"message": "Hello, World!"})


class ItemHandler(tornado.web.RequestHandler):
    def get(self, item):
        self.set_header("Content-Type", "text/plain")
        self.write("item " + item)


class FillerHandler(tornado.web.RequestHandler):
    def get(self, *args, **kwargs):
        self.write("filler")


async def main(port, address, routes):
    rules = [(r"/", HelloHandler), (r"/json", JSONHandler)]
    rules += [(rf"/api/v1/resource{i}/(?P<id>[0-9]+)/(?P<name>[a-z]+)", FillerHandler)
              for i in range(routes - 3)]
    rules.append((r"/item/([0-9]+)", ItemHandler))
    # log_function: no access log on stderr, as framework_bench.
    app = tornado.web.Application(rules, log_function=lambda handler: None)
    app.listen(port, address, backlog=1024)
    print(f"tornado framework ({routes} routes) on http://{address}:{port}/", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--routes", type=int, default=3)
    args = parser.parse_args()
    try:
        asyncio.run(main(args.port, args.address, args.routes))
    except KeyboardInterrupt:
        pass
