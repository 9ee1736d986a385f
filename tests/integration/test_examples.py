"""The tour's examples run and do what the tour says."""
import subprocess
import urllib.request

from conftest import BIN


def test_getting_started_answers_hello_world(start_server):
    server = start_server("01_getting_started")
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=5) as r:
        assert r.status == 200 and r.read() == b"Hello, world"


def test_async_callback_client_fetches_from_the_server(start_server):
    server = start_server("01_getting_started")
    p = subprocess.run([str(BIN / "0a_async_callback"), f"http://127.0.0.1:{server.port}/"],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0
    assert "HTTP/1.0 200 OK" in p.stdout and p.stdout.rstrip().endswith("Hello, world")


def test_async_handler_finishes_from_callback_and_coroutine(start_server):
    server = start_server("03_async_handler")
    for path, text in (("/", b"finished from a callback\n"), ("/coro", b"finished after co_await sleep\n")):
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as r:
            assert r.read() == text


def test_scheduled_tasks_and_task_examples_run():
    p = subprocess.run([str(BIN / "02_scheduled_tasks")], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "periodic tick 5" in p.stdout and "call_later" in p.stdout
    p = subprocess.run([str(BIN / "05_task")], capture_output=True, text=True, timeout=10)
    assert p.returncode == 0 and "hello, cy" in p.stdout and "gathered" in p.stdout


def test_forms_example_rejects_post_without_xsrf(start_server):
    server = start_server("09_forms_cookies")
    req = urllib.request.Request(f"http://127.0.0.1:{server.port}/", data=b"name=x", method="POST")
    try:
        urllib.request.urlopen(req, timeout=5)
        assert False, "POST without an XSRF token must fail"
    except urllib.error.HTTPError as e:
        assert e.code == 403


def test_websocket_examples_echo_and_chat(start_server):
    import asyncio
    import websockets

    echo = start_server("ws_echo")
    chat = start_server("06_websocket")

    async def go():
        async with websockets.connect(f"ws://127.0.0.1:{echo.port}/ws") as ws:
            await ws.send("text")
            assert await ws.recv() == "text"
            await ws.send(b"bin")
            assert await ws.recv() == b"bin"
        origin = f"http://127.0.0.1:{chat.port}"
        async with websockets.connect(f"ws://127.0.0.1:{chat.port}/chatsocket", origin=origin) as ws:
            await ws.send("hello chat")
            assert await ws.recv() == "hello chat"
    asyncio.run(asyncio.wait_for(go(), 20))
    with urllib.request.urlopen(f"http://127.0.0.1:{chat.port}/", timeout=5) as r:
        assert b"/chatsocket" in r.read()
