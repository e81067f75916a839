"""Real redis-server and Sentinel processes on free loopback ports, for outage and failover tests.

Each process runs in the test's temporary directory with persistence off and is always killed at teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import redis.asyncio as aioredis

REDIS_SERVER = shutil.which("redis-server")
HOST = "127.0.0.1"
MASTER_NAME = "posomni"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


async def wait_for(predicate: Callable[[], bool], within: float, what: str, interval: float = 0.01) -> float:
    """Poll `predicate` until true; the seconds it took. Fails after `within` seconds."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > within:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(interval)
    return time.monotonic() - start


async def answers_ping(port: int) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout=0.5)
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"PING\r\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout=0.5)
        return line == b"+PONG\r\n"
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def direct_client(port: int) -> aioredis.Redis:
    return aioredis.Redis(host=HOST, port=port, socket_timeout=2, decode_responses=True)


class RedisProcess:
    def __init__(self, directory: Path, port: int, args: list[str]) -> None:
        self.directory = directory
        self.port = port
        self._args = args
        self._process: asyncio.subprocess.Process | None = None
        self._frozen = False

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        assert REDIS_SERVER is not None
        assert not self.running, "already running"
        self._process = await asyncio.create_subprocess_exec(
            REDIS_SERVER,
            *self._args,
            cwd=self.directory,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 5
        while not await answers_ping(self.port):
            if not self.running:
                raise RuntimeError(f"redis-server on port {self.port} exited; see {self.directory}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on port {self.port} did not answer within 5 s")
            await asyncio.sleep(0.02)

    async def kill(self) -> None:
        """SIGKILL: the process dies at once, as in a crash; the kernel resets its connections."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        if self._frozen:
            process.send_signal(signal.SIGCONT)
            self._frozen = False
        process.kill()
        await asyncio.wait_for(process.wait(), timeout=5)

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections but nothing is ever answered, like a hung server."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)
        self._frozen = True

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)
        self._frozen = False


class Servers:
    """Starts processes in one directory and kills every one of them at the end."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._processes: list[RedisProcess] = []

    async def redis(self, *extra: str, port: int | None = None) -> RedisProcess:
        port = port or free_port()
        args = ["--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--daemonize", "no"]
        # No 5 s wait before a replica's first sync (the diskless default), so a replica is ready at once.
        args += ["--repl-diskless-sync-delay", "0", "--logfile", f"redis-{port}.log", *extra]
        process = RedisProcess(self.directory, port, args)
        self._processes.append(process)
        await process.start()
        return process

    async def sentinel(self, master_port: int, quorum: int = 2) -> RedisProcess:
        port = free_port()
        config = self.directory / f"sentinel-{port}.conf"
        config.write_text(
            "\n".join(
                [
                    f"port {port}",
                    f"bind {HOST}",
                    "daemonize no",
                    f'logfile "sentinel-{port}.log"',
                    "sentinel resolve-hostnames no",
                    f"sentinel monitor {MASTER_NAME} {HOST} {master_port} {quorum}",
                    f"sentinel down-after-milliseconds {MASTER_NAME} 1000",
                    f"sentinel failover-timeout {MASTER_NAME} 3000",
                    f"sentinel parallel-syncs {MASTER_NAME} 1",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        # Sentinel rewrites its configuration file, so it gets its own in the temporary directory.
        process = RedisProcess(self.directory, port, [str(config), "--sentinel"])
        self._processes.append(process)
        await process.start()
        return process

    async def stop_all(self) -> None:
        for process in self._processes:
            await process.kill()
