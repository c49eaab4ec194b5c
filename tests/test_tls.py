"""TLS with a CA and client certificates, end to end.

The bundled redis-server is built without TLS, so the test puts a real TLS terminator in
front of it: a thread that accepts TLS connections (server certificate signed by a test CA,
client certificates required and checked against that CA) and relays the bytes to the
plain server. The controller, a worker started from its script with ``--tls-*`` options,
and ``tune`` connect through it with ``rediss://``. Certificates come from ``openssl``.
"""

from __future__ import annotations

import contextlib
import select
import shutil
import socket
import ssl
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rushopt import Float, RedisConfig, RedisServer, Rush, tune
from rushopt.exceptions import RedisUnavailableError
from tests.conftest import eventually

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None, reason="needs the openssl command to make certificates"
)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_certificates(d: Path) -> None:
    ca = ("-subj", "/CN=rushopt test CA", "-keyout", "ca.key", "-out", "ca.pem")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", *ca, cwd=d)
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name, cn in (("server", "localhost"), ("client", "rushopt worker")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={cn}",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-extfile", "san.ext",
                 "-out", f"{name}.pem", cwd=d)  # fmt: skip


class _TlsTerminator:
    """Accept TLS (client certificates required) on a free port and relay to ``target``."""

    def __init__(self, target_port: int, certs: Path) -> None:
        self.target_port = target_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certs / "server.pem", certs / "server.key")
        self.context.load_verify_locations(certs / "ca.pem")
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.refused = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            tls = self.context.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.refused += 1
            raw.close()
            return
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        _relay(tls, upstream)

    def close(self) -> None:
        self.listener.close()


def _relay(tls: ssl.SSLSocket, upstream: socket.socket) -> None:
    """Copy both ways in this one thread until either side closes.

    One thread only: OpenSSL objects are not safe to use from two threads at
    once (a pump per direction, one closing the TLS socket while the other
    read from it, crashed the test process with a segmentation fault).
    """
    try:
        while True:
            # bytes OpenSSL already decrypted do not make the socket readable
            ready = [tls] if tls.pending() else select.select([tls, upstream], [], [])[0]
            for source in ready:
                data = source.recv(65536)
                if not data:
                    return
                (upstream if source is tls else tls).sendall(data)
    except OSError:
        pass
    finally:
        for s in (tls, upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    _make_certificates(d)
    return d


@pytest.fixture(scope="module")
def tls_port(redis_server: RedisServer, certs: Path) -> Iterator[int]:
    assert redis_server.port is not None
    terminator = _TlsTerminator(redis_server.port, certs)
    yield terminator.port
    terminator.close()


def _tls_config(port: int, certs: Path, **extra: Any) -> RedisConfig:
    return RedisConfig(
        f"rediss://127.0.0.1:{port}/0",
        ssl_ca_certs=str(certs / "ca.pem"),
        ssl_certfile=str(certs / "client.pem"),
        ssl_keyfile=str(certs / "client.key"),
        **extra,
    )


def _square() -> Callable[..., dict[str, Any]]:
    def fun(x: float) -> dict[str, Any]:
        return {"y": x * x}

    return fun


def test_controller_and_script_worker_connect_with_client_certificates(
    tls_port: int, certs: Path, tmp_path: Path
) -> None:
    # Given a controller that connects through TLS with a client certificate
    rush = Rush(network_id=f"tls-{uuid.uuid4().hex[:6]}", config=_tls_config(tls_port, certs))
    try:
        rush.start_remote_workers(fun=_square(), heartbeat_period=1)

        # When a worker runs the script (its --tls-ca-cert/--tls-cert/--tls-key options)
        script = rush.create_worker_script()
        assert "--tls-cert" in script and "--tls-key" in script
        with open(tmp_path / "w.log", "wb") as log:
            proc = subprocess.Popen(["sh", "-c", script], stdout=log, stderr=subprocess.STDOUT)
        try:
            # Then it joins over TLS and evaluates tasks
            eventually(lambda: rush.n_running_workers == 1 or proc.poll() is not None, 60)
            assert proc.poll() is None, (tmp_path / "w.log").read_text()
            keys = rush.push_tasks([{"x": 4.0}])
            assert rush.wait_for_tasks(keys, timeout=60)
            assert list(rush.fetch_finished_tasks()["y"]) == [16.0]
            rush.stop_workers("terminate")
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    finally:
        rush.reset()


def test_tune_runs_over_tls(tls_port: int, certs: Path) -> None:
    result = tune(
        lambda x: {"y": x},
        {"x": Float(0.0, 1.0)},
        optimizer="random",
        n_evals=6,
        n_workers=2,
        config=_tls_config(tls_port, certs),
        progress=False,
    )
    assert len(result.archive) == 6


def test_a_client_without_certificate_is_refused(tls_port: int, certs: Path) -> None:
    config = RedisConfig(f"rediss://127.0.0.1:{tls_port}/0", ssl_ca_certs=str(certs / "ca.pem"))
    with pytest.raises(RedisUnavailableError):
        Rush(network_id="no-cert", config=config)
