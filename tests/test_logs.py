"""Worker logging: RedisHandler, attach/detach, read_log and print_log."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import rushopt
from rushopt import Rush, RushWorker
from rushopt.core.controller.logs import LOG_COLUMNS
from rushopt.core.worker.log_handler import RedisHandler, attach_log_handler, detach_log_handler
from tests.conftest import eventually

LOGGER = "my.test.logger"
COLUMNS = ["worker_id", "timestamp", "level", "logger", "msg"]

MakeWorker = Callable[..., RushWorker]


@pytest.fixture
def make_worker(rush: Rush, redis_url: str) -> Iterator[MakeWorker]:
    """In-process workers logging ``LOGGER`` at INFO; their handlers are removed afterwards."""
    made: list[RushWorker] = []

    def make(log_buffer_size: int = 0, **kwargs: Any) -> RushWorker:
        kwargs.setdefault("log_thresholds", {LOGGER: "INFO"})
        worker = RushWorker(
            rush.network_id, config=redis_url, log_buffer_size=log_buffer_size, **kwargs
        )
        made.append(worker)
        return worker

    level = logging.getLogger(LOGGER).level
    yield make
    for worker in made:
        detach_log_handler(worker.log_handler)
    logger = logging.getLogger(LOGGER)
    assert not [h for h in logger.handlers if isinstance(h, RedisHandler)]
    logger.setLevel(level)


def _log() -> logging.Logger:
    return logging.getLogger(LOGGER)


# ------------------------------------------------------------------ in process
def test_records_at_or_above_the_threshold_reach_the_network(
    rush: Rush, make_worker: MakeWorker
) -> None:
    # Given a worker logging LOGGER at INFO, unbuffered
    worker = make_worker()
    # When it logs at DEBUG, INFO and WARNING
    before = time.time()
    _log().debug("hidden")
    _log().info("hello %s", "world")
    _log().warning("careful")
    # Then the DEBUG record is dropped and the others are read back in order
    log = rush.read_log()
    assert list(log.columns) == COLUMNS
    assert list(LOG_COLUMNS) == COLUMNS
    assert log["msg"].tolist() == ["hello world", "careful"]
    assert log["level"].tolist() == ["INFO", "WARNING"]
    assert log["logger"].tolist() == [LOGGER, LOGGER]
    assert log["worker_id"].tolist() == [worker.worker_id] * 2
    assert all(before - 1 <= t <= time.time() + 1 for t in log["timestamp"])
    assert isinstance(log["timestamp"].iloc[0], float)


def test_read_log_without_records_has_the_columns(rush: Rush) -> None:
    # Given a network nobody logged to / When the log is read / Then it is empty with the columns
    log = rush.read_log()
    assert log.empty
    assert list(log.columns) == COLUMNS


def test_records_are_stored_as_json_objects(
    rush: Rush, make_worker: MakeWorker, redis_client: Any
) -> None:
    # Given a worker / When it logs one record
    worker = make_worker()
    _log().info("one")
    # Then the log list holds one JSON object with the five fields
    (raw,) = redis_client.lrange(rush.network.keys.log, 0, -1)
    record = json.loads(raw)
    assert sorted(record) == sorted(COLUMNS)
    assert record["worker_id"] == worker.worker_id


def test_buffer_is_written_once_more_than_n_records_are_held(
    rush: Rush, make_worker: MakeWorker
) -> None:
    # Given a worker buffering 2 records
    make_worker(log_buffer_size=2)
    # When it logs two records, then nothing is written yet
    _log().info("a")
    _log().info("b")
    assert len(rush.read_log()) == 0
    # When it logs the third, all three are written
    _log().info("c")
    assert rush.read_log()["msg"].tolist() == ["a", "b", "c"]
    # And the buffer starts over
    _log().info("d")
    assert len(rush.read_log()) == 3


def test_error_flushes_the_buffer_at_once(rush: Rush, make_worker: MakeWorker) -> None:
    # Given a worker buffering 10 records that logged one
    make_worker(log_buffer_size=10)
    _log().info("before")
    assert len(rush.read_log()) == 0
    # When it logs an ERROR
    _log().error("broken")
    # Then both are written at once
    log = rush.read_log()
    assert log["msg"].tolist() == ["before", "broken"]
    assert log["level"].tolist() == ["INFO", "ERROR"]


def test_flush_and_detach_write_the_rest(rush: Rush, make_worker: MakeWorker) -> None:
    # Given a worker buffering 10 records
    worker = make_worker(log_buffer_size=10)
    handler = worker.log_handler
    assert isinstance(handler, RedisHandler)
    # When it flushes after one record, then that record is written
    _log().info("first")
    handler.flush()
    assert rush.read_log()["msg"].tolist() == ["first"]
    # When the handler is detached after another record
    _log().info("second")
    detach_log_handler(handler)
    # Then the record is written and the logger no longer has the handler
    assert rush.read_log()["msg"].tolist() == ["first", "second"]
    assert handler not in _log().handlers
    _log().info("third")
    assert len(rush.read_log()) == 2


def test_exception_text_is_included(rush: Rush, make_worker: MakeWorker) -> None:
    # Given a worker / When it logs an exception
    make_worker()
    try:
        raise ValueError("bad value")
    except ValueError:
        _log().exception("it failed")
    # Then the message holds the traceback
    (msg,) = rush.read_log()["msg"]
    assert msg.startswith("it failed\n")
    assert "Traceback" in msg
    assert "ValueError: bad value" in msg


def test_child_logger_records_are_written_once(rush: Rush, make_worker: MakeWorker) -> None:
    # Given a worker logging a logger and its child
    make_worker(log_thresholds={LOGGER: "INFO", f"{LOGGER}.child": "DEBUG"})
    # When the child logs at DEBUG
    logging.getLogger(f"{LOGGER}.child").debug("from the child")
    # Then the record is written once (not once per logger with the handler)
    log = rush.read_log()
    assert log["msg"].tolist() == ["from the child"]
    assert log["logger"].tolist() == [f"{LOGGER}.child"]


def test_detach_restores_the_logger_levels(rush: Rush, redis_url: str) -> None:
    # Given a logger at WARNING
    logger = logging.getLogger("my.test.levels")
    logger.setLevel(logging.WARNING)
    worker = RushWorker(rush.network_id, config=redis_url)
    # When a handler is attached at DEBUG and detached again
    handler = attach_log_handler(worker, {"my.test.levels": "DEBUG"}, 0)
    assert logger.level == logging.DEBUG
    assert handler in logger.handlers
    detach_log_handler(handler)
    # Then the logger is back at WARNING without the handler
    assert logger.level == logging.WARNING
    assert handler not in logger.handlers
    logger.setLevel(logging.NOTSET)


def test_read_log_filters_by_worker_ids(rush: Rush, make_worker: MakeWorker) -> None:
    # Given two workers on the same logger that each logged once
    first = make_worker()
    _log().info("once")  # before the second worker exists
    second = make_worker(log_thresholds={"my.test.other": "INFO"})
    logging.getLogger("my.test.other").info("second only")
    # When the log is read per worker
    by_first = rush.read_log(worker_ids=first.worker_id)
    by_second = rush.read_log(worker_ids=[second.worker_id])
    # Then each frame holds that worker's records
    assert by_first["msg"].tolist() == ["once"]
    assert by_second["msg"].tolist() == ["second only"]
    assert list(by_second.columns) == COLUMNS
    assert len(rush.read_log(worker_ids=[first.worker_id, second.worker_id])) == 2
    assert rush.read_log(worker_ids=["nobody"]).empty
    with pytest.raises(TypeError):
        rush.read_log(worker_ids=[1])  # type: ignore[list-item]


def test_print_log_prints_only_new_records(
    rush: Rush, make_worker: MakeWorker, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a worker that logged two records
    worker = make_worker()
    _log().info("one")
    _log().warning("two")
    # When the log is printed
    rush.print_log()
    lines = capsys.readouterr().out.splitlines()
    # Then each record is one line with worker, time, level, logger and message
    assert len(lines) == 2
    assert lines[0].startswith(f"[{worker.worker_id}] ")
    assert lines[0].endswith(f" INFO {LOGGER}: one")
    assert lines[1].endswith(f" WARNING {LOGGER}: two")
    # When it is printed again, nothing is printed
    rush.print_log()
    assert capsys.readouterr().out == ""
    # When one more record comes, only it is printed
    _log().info("three")
    rush.print_log()
    (line,) = capsys.readouterr().out.splitlines()
    assert line.endswith(f" INFO {LOGGER}: three")


def test_print_log_starts_over_after_a_reset(
    rush: Rush, make_worker: MakeWorker, capsys: pytest.CaptureFixture[str], redis_client: Any
) -> None:
    # Given a printed log
    make_worker()
    _log().info("old")
    rush.print_log()
    capsys.readouterr()
    # When the log list is deleted and two new records come
    redis_client.delete(rush.network.keys.log)
    _log().info("new 1")
    _log().info("new 2")
    rush.print_log()
    # Then both are printed
    lines = capsys.readouterr().out.splitlines()
    assert [line.rsplit(": ", 1)[1] for line in lines] == ["new 1", "new 2"]


def test_handler_rejects_a_negative_buffer_size(rush: Rush, redis_url: str) -> None:
    worker = RushWorker(rush.network_id, config=redis_url)
    with pytest.raises(ValueError, match="buffer_size"):
        RedisHandler(worker, buffer_size=-1)


def test_write_failure_does_not_raise(
    rush: Rush, make_worker: MakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a worker whose Redis writes fail
    worker = make_worker()
    handler = worker.log_handler
    assert handler is not None
    errors: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", errors.append)

    def fail(*args: Any) -> None:
        raise ConnectionError("down")

    monkeypatch.setattr(worker.network.redis, "rpush", fail)
    # When it logs / Then nothing raises and the error is reported
    _log().info("lost")
    assert len(errors) == 1


# ------------------------------------------------------------------ processes
_EXIT_SCRIPT = textwrap.dedent(
    """
    import logging, os, sys
    from rushopt import RushWorker

    worker = RushWorker(sys.argv[1], config=sys.argv[2], log_thresholds={"exit.test": "INFO"},
                        log_buffer_size=10)
    log = logging.getLogger("exit.test")
    log.info("parent")
    pid = os.fork()
    if pid == 0:
        log.info("child")  # the child exits normally: atexit runs in it too
    else:
        os.waitpid(pid, 0)
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_buffered_records_are_flushed_at_exit_once_despite_a_fork(
    rush: Rush, redis_url: str
) -> None:
    # Given a process whose buffered record is inherited by a forked child
    # When both exit without flushing
    subprocess.run(
        [sys.executable, "-c", _EXIT_SCRIPT, rush.network_id, redis_url],
        check=True,
        timeout=60,
        capture_output=True,
    )
    # Then the parent's record is written once and the child's own record too
    assert sorted(rush.read_log()["msg"]) == ["child", "parent"]


def _logging_fun() -> Callable[..., dict[str, Any]]:
    def fun(x: int) -> dict[str, Any]:
        log = logging.getLogger("rushopt.test")
        log.debug("debug %s", x)
        log.info("info %s", x)
        log.warning("warning %s", x)
        return {"y": x}

    return fun


def test_local_worker_records_are_flushed_when_it_terminates(rush: Rush) -> None:
    # Given a local worker logging "rushopt.test" at INFO with a buffer of 5
    (worker_id,) = rush.start_local_workers(
        n_workers=1,
        fun=_logging_fun(),
        log_thresholds={"rushopt.test": "INFO"},
        log_buffer_size=5,
    )
    # When it runs two tasks (4 records, all buffered) and is terminated
    keys = rush.push_tasks([{"x": 1}, {"x": 2}])
    assert rush.wait_for_tasks(keys, timeout=30)
    rush.stop_workers("terminate")
    eventually(lambda: rush.n_terminated_workers == 1, timeout=30)
    # Then its buffered records were written before it was marked terminated
    log = rush.read_log()
    assert list(log.columns) == COLUMNS
    assert log["msg"].tolist() == ["info 1", "warning 1", "info 2", "warning 2"]
    assert set(log["worker_id"]) == {worker_id}
    assert set(log["logger"]) == {"rushopt.test"}


def test_plan_log_thresholds_are_the_default_for_workers(rush: Rush, redis_url: str) -> None:
    # Given a plan with log thresholds
    rushopt.rush_plan(config=redis_url, log_thresholds={"rushopt.test.plan": "INFO"})
    # When a worker is built without thresholds of its own
    worker = RushWorker(rush.network_id, config=redis_url)
    try:
        logging.getLogger("rushopt.test.plan").info("from the plan")
        # Then its records reach the network
        assert list(rush.read_log()["msg"]) == ["from the plan"]
    finally:
        detach_log_handler(worker.log_handler)
        worker.set_terminated()


_EXIT_AFTER_REDIS_WENT_AWAY = """
import logging
from rushopt import RedisServer, Rush, RushWorker
from rushopt.core.worker.log_handler import RedisHandler

server = RedisServer().start()
rush = Rush("exit-log", config=server.url)
handler = RedisHandler(RushWorker("exit-log", config=server.url), buffer_size=10)
logging.getLogger("user").addHandler(handler)
logging.getLogger("user").warning("buffered, never written")
server.stop()  # Redis goes away before the handler flushed at exit
"""


def test_records_lost_at_exit_give_one_line_and_no_wait() -> None:
    # The default reconnect_timeout is 60 s: a flush at exit that waited would time out here
    proc = subprocess.run(
        [sys.executable, "-c", _EXIT_AFTER_REDIS_WENT_AWAY],
        capture_output=True,
        text=True,
        timeout=45,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Logging error" not in proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "dropped" in line]
    assert len(lines) == 1
    assert "dropped 1 log record(s): RedisUnavailableError" in lines[0]


def test_a_handler_counts_records_it_could_not_write() -> None:
    with rushopt.RedisServer() as server:
        worker = RushWorker("drops", config=rushopt.RedisConfig(server.url, reconnect_timeout=0))
        handler = RedisHandler(worker, buffer_size=2)
        logger = logging.getLogger("test.drops")
        logger.addHandler(handler)
        try:
            logger.warning("one")
            logger.warning("two")
            server.stop()
            logger.error("three")  # an error writes at once: all three are lost
            handler.flush(once=True)
        finally:
            logger.removeHandler(handler)
    assert handler.n_dropped == 3
