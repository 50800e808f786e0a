"""``iconoscope serve``: the real command line, a real server process, then a clean stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import serve_fixtures as F

from iconoscope.cli import main


def test_serve_help_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["serve", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--host" in out and "--port" in out and "ICONOSCOPE_TOKEN" in out


def test_serve_runs_the_app_and_prints_a_token(tmp_path: Path) -> None:
    ws = F.build_workspace(tmp_path / "ws")
    ws.close()                                  # the server process takes the store's lock
    port = F.free_port()
    env = {**os.environ, "ICONOSCOPE_SERVE_TEST_TOKEN_UNSET": ""}
    cmd = [sys.executable, "-c", "from iconoscope.cli import main; main()", "-w", str(tmp_path / "ws"), "serve",
           "--port", str(port)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
    try:
        assert proc.stderr is not None
        lines = [proc.stderr.readline() for _ in range(3)]
        assert f"serving 'pomona' at http://127.0.0.1:{port}/" in lines[0]
        assert "review token for this run" in lines[1]
        token = lines[1].rsplit(":", 1)[1].strip()
        assert "stop it before CLI commands that write" in lines[2]
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.2)
        r = httpx.get(base + "/api/search", params={"q": "cherry"})
        assert r.status_code == 200 and r.json()["total"] >= 3
        # no token was configured: the printed one-time token authorises writes, nothing else does
        ann = httpx.get(base + "/api/review", params={"kind": "noise"}).json()["items"][0]["annotation"]
        body = {"annotation": ann, "decision": "rejected"}
        assert httpx.post(base + "/api/review", json=body).status_code == 401
        r = httpx.post(base + "/api/review", json=body, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200 and r.json()["status"] == "rejected"
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
