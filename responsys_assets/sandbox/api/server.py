"""EmulatorServer: the emulator served by uvicorn on 127.0.0.1 in a daemon thread."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import uvicorn

from responsys_assets.sandbox.api.app import create_app
from responsys_assets.sandbox.api.faults import FaultInjector
from responsys_assets.sandbox.api.settings import EmulatorSettings
from responsys_assets.sandbox.store import Store


class EmulatorServer:
    """The emulator on 127.0.0.1 in a daemon thread, with its state in `state_dir`."""

    def __init__(
        self, state_dir: Path, settings: EmulatorSettings, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        if host not in ("127.0.0.1", "localhost"):
            raise ValueError("the emulator listens on 127.0.0.1 only")
        self.state_dir = Path(state_dir)
        self.settings = settings
        self.host = "127.0.0.1"
        self.port = port
        self.store = Store(self.state_dir / "responsys_emulator.sqlite")
        self.faults = FaultInjector()
        self.base_url: str | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"EmulatorServer(base_url={self.base_url!r}, state_dir={str(self.state_dir)!r})"

    def start(self, timeout_seconds: float = 10.0) -> str:
        """Serve and return the base URL once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("emulator already started")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        port = sock.getsockname()[1]
        app = create_app(self.store, self.settings, self.faults)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            http="h11",
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name="responsys-emulator",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_seconds
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Responsys emulator did not start on 127.0.0.1:{port}")
            time.sleep(0.01)
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        return self.base_url

    def stop(self, timeout_seconds: float = 10.0) -> None:
        """Stop serving; the store stays open for inspection."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout_seconds)
        self._server = None
        self._thread = None

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
